/**
 * How each command's result looks to a person. Pure functions from a result to text, so they can be
 * tested without a cluster; commands call them only when --json is off.
 *
 * @module
 */
import type { LeaderInfo } from '../cluster/leader.js';
import type { ServiceList } from '../cluster/topology.js';
import type { AuditEntry, ClusterEvent, ClusterTopology, ServiceRecord } from '../types.js';
import { type ServiceDetails, type SetEnabledSummary, type StatusResult } from './cluster-contract.js';
import { ago, c, clip, enabledText, fields, isoTime, MAX_COLUMN_WIDTH, plural, statusText, table, timeLeft } from './render.js';
import { terminalSafe } from '../util/text.js';
import { describeBudget } from '../cluster/detection-budget.js';
import { describeFlapping, describeInstanceMaintenance, describeIntent } from '../cluster/explain.js';

/** Registry data inside a line (a tree, an event): cut like a table cell, so one huge value stays short. */
const cut = (text: string): string => clip(text, MAX_COLUMN_WIDTH);

export function renderStatus(result: StatusResult): string {
  result = terminalSafe(result);
  const r = result.registry;
  const counts = result.counts;
  const entries: [string, string | number | null][] = [
    ['cluster', `${result.clusterName || c.dim('(unnamed)')}, namespace ${result.namespace || c.dim('(unknown)')}`],
    ['registry', registryText(r.kind, r.endpoints)],
    ['reachable', r.reachable ? c.green('yes') : c.red(`no (${r.error ?? 'no answer'})`)],
    ['version', r.version],
    ['revision', r.revision],
    ['leader', result.leader ? `${result.leader.id}${result.leader.host ? ` (${result.leader.host}:${result.leader.port})` : ''}` : counts ? c.yellow('none') : null],
    [
      'services',
      counts
        ? `${counts.total} total, ${c.green(`${counts.healthy} taking traffic`)}, ${counts.unhealthy ? c.red(`${counts.unhealthy} not`) : '0 not'}, ${counts.disabled} disabled`
        : null,
    ],
  ];
  const a = result.agent;
  if (!a) return fields(entries);
  const s = a.currentService;
  return fields([
    ...entries,
    ['agent', `${s.id} (${s.name} at ${s.host}:${s.port}, ${s.region}/${s.zone}, v${s.version})`],
    ['agent status', `${a.status}, instance ${statusText(s.status)}${s.enabled ? '' : c.yellow(', disabled')}`],
    ['role', a.isLeader ? c.bold('leader ★') : `follower (leader: ${a.leaderId ?? 'none'})`],
    ['view', `${plural(a.view.services, 'service')}, revision ${a.view.revision}, ${a.view.stale ? c.yellow('stale') : 'current'}, updated ${ago(a.view.lastUpdate)}`],
    ['lease', a.lease.id ? `${a.lease.id} (ttl ${a.lease.ttl}s, renewed ${ago(a.lease.renewedAt)})` : 'none'],
  ]);
}

/** `etcd http://127.0.0.1:2379`; the memory registry has no endpoints, it lives in the agent's process. */
function registryText(kind: string, endpoints: string): string {
  return kind === 'memory' ? 'memory (embedded in the agent, shared with no other)' : `${kind} ${endpoints}`;
}

export function renderServiceList(list: ServiceList): string {
  list = terminalSafe(list);
  if (list.services.length === 0) return 'No services match.';
  const rows = list.services.map((s) => [
    s.id,
    `${s.host}:${s.port}`,
    `${s.region}/${s.zone}`,
    `${statusText(s.status)}${s.health.flapping ? c.yellow(' (flapping)') : ''}${s.instanceMaintenance && !s.instanceMaintenance.inSync ? c.red(' (instance mismatch)') : ''}`,
    s.role === 'leader' ? c.bold('leader ★') : 'follower',
    adminCell(s),
    s.health.responseTime === null ? '-' : `${s.health.responseTime}ms`,
    ago(s.health.lastCheck),
  ]);
  const summary = `${plural(list.total, 'service')}: ${list.healthy} healthy, ${list.unhealthy} not taking traffic`;
  return `${table(['ID', 'ADDRESS', 'PLACE', 'STATUS', 'ROLE', 'ENABLED', 'LATENCY', 'UPDATED'], rows)}\n${summary}`;
}

/**
 * The last probe, from the service's own agent (its history), which probes far more often than it
 * writes the record; null when no history came back.
 */
function lastProbe(d: ServiceDetails): string | null {
  const h = d.health.history.at(-1);
  if (!h) return null;
  return `${ago(h.at)}, ${h.ok ? c.green('ok') : c.red('failed')} (${h.latencyMs}ms), from its agent`;
}

/** The ENABLED cell: `yes`; `draining 25s`; `no (deploy, 29m left)`. */
export function adminCell(s: ServiceRecord, now = Date.now()): string {
  if (s.enabled) return enabledText(true);
  if (s.adminState === 'draining' && s.drainUntil !== undefined) return c.magenta(`draining ${timeLeft(s.drainUntil, now)}`);
  const reason = s.disabledReason ? (s.disabledReason.length > 24 ? `${s.disabledReason.slice(0, 23)}…` : s.disabledReason) : '';
  const left = s.disabledUntil !== undefined ? `${timeLeft(s.disabledUntil, now)} left` : '';
  const detail = [reason, left].filter(Boolean).join(', ');
  return `${enabledText(false)}${detail ? ` (${detail})` : ''}`;
}

/** One line on operator state for `services show`. */
function adminLine(s: ServiceRecord, now = Date.now()): string {
  if (s.enabled) return 'yes';
  const parts = [c.yellow(s.adminState === 'draining' ? 'no, draining' : 'no')];
  if (s.disabledReason) parts.push(`reason: ${s.disabledReason}`);
  if (s.adminState === 'draining' && s.drainUntil !== undefined) parts.push(`drain ends by ${isoTime(s.drainUntil)} (in ${timeLeft(s.drainUntil, now)})`);
  if (s.disabledUntil !== undefined) parts.push(`re-enabled at ${isoTime(s.disabledUntil)} (in ${timeLeft(s.disabledUntil, now)})`);
  return parts.join('; ');
}

export function renderServiceDetails(d: ServiceDetails): string {
  d = terminalSafe(d);
  const s = d.service;
  const out = [
    c.bold(s.id),
    fields([
      ['name', `${s.name} v${s.version}`],
      ['address', `${s.host}:${s.port}`],
      ['place', `${s.region}/${s.zone}`],
      ['status', `${statusText(s.status)}${s.isHealthy ? '' : c.dim(' (not taking traffic)')}`],
      ['role', s.role === 'leader' ? c.bold('leader ★') : 'follower'],
      ['enabled', adminLine(s)],
      ['intent', d.intent ? `${describeIntent({ ...d.intent, expiresAt: undefined })}${d.intent.at ? ` ${ago(d.intent.at)}` : ''}${d.intent.expiresAt ? `, lapses ${isoTime(d.intent.expiresAt)}` : ''}` : 'none (enabled by default)'],
      ['health', `${s.health.consecutiveFailures} failures / ${s.health.consecutiveSuccesses} successes in a row, record updated ${ago(s.health.lastCheck)}${s.health.responseTime === null ? '' : ` (${s.health.responseTime}ms)`}`],
      ['last probe', lastProbe(d)],
      ['message', s.health.message],
      ['flapping', s.health.flapping ? c.yellow(`${describeFlapping(s.health.flapping, Date.now())} (since ${isoTime(s.health.flapping.since)})`) : null],
      ['instance', s.instanceMaintenance ? (s.instanceMaintenance.inSync ? describeInstanceMaintenance(s.instanceMaintenance) : c.red(describeInstanceMaintenance(s.instanceMaintenance))) : null],
      ['health url', s.healthUrl],
      ['api', s.apiUrl],
      ['tags', s.tags.join(', ')],
      ['metadata', Object.entries(s.metadata).map(([k, v]) => `${k}=${v}`).join(', ')],
      ['registered', `${isoTime(s.registeredAt)} (${ago(s.registeredAt)})`],
    ]),
  ];
  if (s.health.checks && s.health.checks.length > 0) {
    out.push('', c.bold('Checks'));
    const rows = s.health.checks.map((k) => [
      k.name,
      k.kind,
      statusText(k.status),
      k.critical ? 'yes' : c.dim('no'),
      ago(k.lastCheck),
      k.output ?? '',
    ]);
    out.push(table(['CHECK', 'KIND', 'STATUS', 'CRITICAL', 'CHECKED', 'OUTPUT'], rows));
  }
  if (s.checks) out.push('', c.bold('Detection budget (worst case)'), ...describeBudget(s.checks, s.health.checks).map((l) => `  ${l}`));
  if (d.health.history.length > 0) {
    out.push('', c.bold('Health checks (newest last)'));
    const rows = d.health.history.slice(-10).map((h) => [
      isoTime(h.at),
      h.ok ? c.green('ok') : c.red('fail'),
      `${h.latencyMs}ms`,
      h.httpStatus ?? '-',
      `${h.check ? `${h.check}: ` : ''}${h.change ? `${h.change.from} → ${h.change.to}: ${h.change.reason}` : (h.error ?? '')}`,
    ]);
    out.push(table(['AT', 'RESULT', 'LATENCY', 'HTTP', 'NOTE'], rows));
  } else if (d.historyUnavailable) {
    out.push('', c.dim(d.historyUnavailable));
  } else if (d.health.historyUrl) {
    out.push('', c.dim(`Health check history: ${d.health.historyUrl}`));
  } else {
    out.push('', c.dim('probe history unavailable (the service advertises no agent API)'));
  }
  if (d.audit.length > 0) out.push('', c.bold('Audit'), renderAuditTable(d.audit));
  return out.join('\n');
}

export function renderToggle(r: SetEnabledSummary): string {
  r = terminalSafe(r);
  const verb = r.enabled ? 'enabled' : 'disabled';
  if (r.changed) {
    const s = r.service;
    const notes = [
      s?.adminState === 'draining' && s.drainUntil !== undefined ? `draining until ${isoTime(s.drainUntil)}` : '',
      s?.disabledUntil !== undefined ? `re-enabled automatically at ${isoTime(s.disabledUntil)}` : '',
    ].filter(Boolean);
    return `${cut(r.serviceId)} ${verb}${notes.length ? ` (${notes.join('; ')})` : ''}`;
  }
  if (r.repaired !== undefined) return `${cut(r.serviceId)} ${verb}: its stored intent could not be read (${cut(r.repaired)}) and was replaced`;
  if (r.reasonUpdated) return `${cut(r.serviceId)} already ${verb}; reason updated${r.previousReason !== undefined ? ` (was: ${cut(r.previousReason)})` : ''}`;
  return `${cut(r.serviceId)} already ${verb} (no change)`;
}

/** A bulk disable's line for a service the capacity guard kept: why, and how to disable it anyway. */
export function renderKept(k: { serviceId: string; reason: string; override: string }): string {
  k = terminalSafe(k);
  return `${cut(k.serviceId)} kept by the capacity guard: ${k.reason}; ${k.override} disables it anyway`;
}

/** The topology as a tree: region, zone, instance, with counts at each level and the leader marked. */
export function renderTopology(t: ClusterTopology, services: ServiceRecord[]): string {
  t = terminalSafe(t);
  services = terminalSafe(services);
  const leader = t.leader ? `leader ${c.bold(cut(t.leader.id))} ★` : c.yellow('no leader');
  const lines = [
    `${c.bold('Cluster')}: ${plural(t.totalServices, 'service')}, ${c.green(`${t.healthyServices} healthy`)}, ${t.unhealthyServices} not taking traffic, ${t.disabledServices} disabled; ${leader}`,
  ];
  const regions = groupBy(services, (s) => s.region);
  const regionNames = [...regions.keys()].sort();
  regionNames.forEach((region, ri) => {
    const inRegion = regions.get(region)!;
    const lastRegion = ri === regionNames.length - 1;
    lines.push(`${lastRegion ? '└─' : '├─'} ${c.bold(cut(region) || '(no region)')} ${counts(inRegion)}`);
    const zones = groupBy(inRegion, (s) => s.zone);
    const zoneNames = [...zones.keys()].sort();
    const pad1 = lastRegion ? '   ' : '│  ';
    zoneNames.forEach((zone, zi) => {
      const inZone = zones.get(zone)!;
      const lastZone = zi === zoneNames.length - 1;
      lines.push(`${pad1}${lastZone ? '└─' : '├─'} ${cut(zone) || '(no zone)'} ${counts(inZone)}`);
      const pad2 = `${pad1}${lastZone ? '   ' : '│  '}`;
      inZone.forEach((s, si) => {
        const branch = si === inZone.length - 1 ? '└─' : '├─';
        const mark = s.id === t.leader?.id ? ` ${c.yellow('★')} (leader)` : '';
        const off = s.enabled ? '' : ` ${c.yellow('disabled')}${s.disabledReason ? ` (${cut(s.disabledReason)})` : ''}`;
        lines.push(`${pad2}${branch} ${cut(s.id)} ${c.dim(cut(`${s.host}:${s.port}`))} ${statusText(s.status)}${off}${mark}`);
      });
    });
  });
  return lines.join('\n');
}

function counts(services: ServiceRecord[]): string {
  const healthy = services.filter((s) => s.isHealthy).length;
  return c.dim(`(${services.length}, ${healthy} healthy)`);
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k) ?? [];
    list.push(item);
    map.set(k, list);
  }
  return map;
}

/** One line per event: time, type, service id, what changed. */
export function renderEvent(e: ClusterEvent): string {
  e = terminalSafe(e);
  const id = cut('serviceId' in e ? e.serviceId : (e.leaderId ?? '-'));
  let detail = '';
  switch (e.type) {
    case 'serviceJoined':
      detail = `${cut(`${e.service.host}:${e.service.port}`)} ${cut(`${e.service.region}/${e.service.zone}`)} ${statusText(e.service.status)}`;
      break;
    case 'serviceLeft':
      detail = e.service ? cut(`${e.service.host}:${e.service.port}`) : '';
      break;
    case 'serviceHealthChanged':
      detail = `${statusText(e.previousStatus)} → ${statusText(e.status)}${e.service.health.message ? ` (${cut(e.service.health.message)})` : ''}`;
      break;
    case 'serviceEnabled':
    case 'serviceDisabled':
      detail = [e.actor ? `by ${cut(e.actor)}` : '', e.reason ? `reason: ${cut(e.reason)}` : ''].filter(Boolean).join(', ');
      break;
    case 'serviceUpdated':
      detail = `${cut(`${e.service.host}:${e.service.port}`)} v${cut(e.service.version)}${e.service.health.flapping ? ` (${describeFlapping(e.service.health.flapping, e.timestamp)})` : ''}`;
      break;
    case 'leaderElected':
      detail = `previous: ${cut(e.previousLeaderId ?? 'none')}`;
      break;
  }
  return `${c.dim(isoTime(e.timestamp))}  ${e.type.padEnd(20)}  ${id}${detail ? `  ${detail}` : ''}`;
}

export function renderAuditTable(entries: AuditEntry[]): string {
  entries = terminalSafe(entries);
  if (entries.length === 0) return 'No audit entries.';
  const rows = entries.map((e) => [
    isoTime(e.at),
    e.action === 'disable' ? c.yellow(e.action) : e.action,
    e.serviceId,
    e.actor,
    e.changed ? 'yes' : c.dim('no'),
    e.reason ?? '',
    auditNote(e),
  ]);
  return table(['AT', 'ACTION', 'SERVICE', 'ACTOR', 'CHANGED', 'REASON', 'NOTE'], rows);
}

/** What else an audit entry says: forced, expired, a drain's end, start-disabled, a timed disable's end. */
export function auditNote(e: AuditEntry): string {
  const notes: string[] = [];
  if (e.forced) notes.push(c.red('forced'));
  if (e.expired) notes.push('expired');
  if (e.drained) notes.push(e.drained === 'idle' ? 'drained (idle)' : 'drained (deadline)');
  if (e.startDisabled) notes.push('start-disabled');
  if (e.term !== undefined) notes.push(`term ${e.term}`);
  if (e.expiresAt !== undefined && !e.expired) notes.push(`until ${isoTime(e.expiresAt)}`);
  return notes.join(', ');
}

/** `leader`: who leads, its term and fencing revision, and who is next in line. */
export function renderLeader(info: LeaderInfo): string {
  info = terminalSafe(info);
  if (info.leaderId === null) return c.yellow('No leader: no agent campaigns in this namespace.');
  const next = info.candidates.slice(1).map((x) => `${cut(x.serviceId)} (${x.fencingRevision})`);
  return fields([
    ['leader', cut(info.leaderId)],
    ['fencing revision', info.fencingRevision],
    ['term', info.term ?? c.dim('not recorded yet')],
    ['since', info.since !== null ? `${isoTime(info.since)} (${ago(info.since)})` : null],
    ['next in line', next.length ? next.join(', ') : c.dim('none')],
    ['resign asked', info.resignRequest ? `term ${info.resignRequest.term} by ${cut(info.resignRequest.actor)} at ${isoTime(info.resignRequest.at)}` : null],
  ]);
}

/** `leader resign`: whom it asked, and who leads now. */
export function renderResign(r: { requested: { leaderId: string; term: number }; moved: boolean; leader: LeaderInfo }): string {
  r = terminalSafe(r);
  const asked = `asked ${cut(r.requested.leaderId)} (term ${r.requested.term}) to hand over`;
  if (!r.moved) return `${asked}; ${c.yellow('leadership has not moved yet')}`;
  const now = r.leader.leaderId === null ? c.yellow('no leader yet') : `${cut(r.leader.leaderId)} leads now (term ${r.leader.fencingRevision})`;
  return `${asked}: ${now}`;
}

/** `services forget`: what was removed. */
export function renderForget(r: { serviceId: string; removed: { intent: boolean; healthHold: boolean }; live: boolean }): string {
  r = terminalSafe(r);
  const removed = [r.removed.intent ? 'operator intent' : '', r.removed.healthHold ? 'flap-damping hold' : ''].filter(Boolean);
  if (removed.length === 0) return `${cut(r.serviceId)}: nothing stored to forget${r.live ? ' (it is registered)' : ''}`;
  return `${cut(r.serviceId)} forgotten: removed its ${removed.join(' and ')}${r.live ? ` (${c.red('forced')}: it is registered)` : ''}`;
}
