import { Box, Text } from 'ink';
import type { ReactNode } from 'react';
import type { DashboardState } from '../dashboard-state.js';
import { ago, cell, clock, fit, isDraining, latency, left, STATUS_TONE } from '../format.js';
import { useTone } from './theme.js';
import { describeBudget } from '../../cluster/detection-budget.js';
import { describeFlapping, describeInstanceMaintenance } from '../../cluster/explain.js';
import { isoTime } from '../../util/time.js';

/**
 * Everything about one service: the live record (it keeps updating), then what `services show`
 * fetches: the probe history from the service's own agent, the operator intent and the audit trail.
 */
export function DetailPane({ state, width, rows, now }: { state: DashboardState; width: number; rows: number; now: number }) {
  const tone = useTone();
  const d = state.detail;
  if (!d) return null;
  const live = state.service(d.serviceId);
  const s = live ?? d.data?.service;
  const inner = width - 4;
  const lines: ReactNode[] = [];
  const field = (key: string, value: ReactNode) =>
    lines.push(
      <Text key={`f:${key}`} wrap="truncate">
        <Text dimColor>{key.padEnd(11)}</Text>
        {value}
      </Text>,
    );
  if (s) {
    field('name', `${s.name} v${s.version}   ${s.host}:${s.port}   ${s.region}/${s.zone}`);
    field(
      'status',
      <>
        <Text color={tone(STATUS_TONE[s.status])} bold>
          {s.status}
        </Text>
        {s.isHealthy ? ' (taking traffic)' : ' (not taking traffic)'}
        {live ? '' : ' — no longer registered'}
      </>,
    );
    field('role', s.id === state.leaderId ? <Text bold color={tone('warn')}>leader ★</Text> : 'follower');
    field(
      'enabled',
      s.enabled ? (
        'yes'
      ) : (
        <Text color={tone('warn')} bold>
          {`no${s.disabledReason ? ` (${s.disabledReason})` : ''}`}
          {isDraining(s, now) ? ` — draining, disabled in ${left(s.drainUntil, now)}` : ''}
          {s.disabledUntil !== undefined ? ` — re-enabled in ${left(s.disabledUntil, now)}` : ''}
        </Text>
      ),
    );
    const intent = d.data?.intent;
    field(
      'intent',
      d.data
        ? intent
          ? `${intent.enabled ? 'enabled' : 'disabled'} by ${intent.actor}${intent.at ? ` ${ago(intent.at, now)}` : ''}${intent.reason ? `: ${intent.reason}` : ''}${intent.expiresAt ? `, lapses ${clock(intent.expiresAt)}` : ''}`
          : 'none (enabled by default)'
        : '…',
    );
    field(
      'health',
      `${s.health.consecutiveFailures} failures / ${s.health.consecutiveSuccesses} successes in a row; updated ${ago(s.health.lastCheck, now)} (${latency(s.health.responseTime)})${s.health.message ? `; ${s.health.message}` : ''}`,
    );
    if (s.health.flapping) field('flapping', <Text color={tone('bad')} bold>{describeFlapping(s.health.flapping, now)}</Text>);
    if (s.instanceMaintenance) {
      const m = s.instanceMaintenance;
      field('instance', m.inSync ? describeInstanceMaintenance(m) : <Text color={tone('bad')}>{describeInstanceMaintenance(m)}</Text>);
    }
    // One line per check: which one takes the instance out, and what it said.
    (s.health.checks ?? []).forEach((k, i) =>
      lines.push(
        <Text key={`c:${i}`} wrap="truncate">
          <Text dimColor>{(i === 0 ? 'checks' : '').padEnd(11)}</Text>
          <Text color={tone(STATUS_TONE[k.status])}>{cell(k.status, 10)}</Text>
          {`${k.name}${k.critical ? '' : ' (non-critical)'}${k.output ? `: ${k.output}` : ''}`}
        </Text>,
      ),
    );
    if (s.checks) field('budget', describeBudget(s.checks, s.health.checks).slice(0, 2).join('; '));
    field('health url', s.healthUrl);
    if (s.apiUrl) field('api', s.apiUrl);
    if (s.tags.length) field('tags', s.tags.join(', '));
    const meta = Object.entries(s.metadata);
    if (meta.length) field('metadata', meta.map(([k, v]) => `${k}=${v}`).join(', '));
    field('registered', `${isoTime(s.registeredAt)} (${ago(s.registeredAt, now)})`);
  }
  if (d.loading) lines.push(<Text key="loading" dimColor>loading health history, intent and audit…</Text>);
  if (d.error) lines.push(<Text key="error" color={tone('bad')}>{fit(`could not load the details: ${d.error}`, inner)}</Text>);
  if (d.data) {
    const history = d.data.health.history;
    lines.push(<Text key="h:title" bold>{`Health checks (${history.length ? 'newest last' : 'no history'})`}</Text>);
    if (history.length === 0) {
      lines.push(
        <Text key="h:none" dimColor wrap="truncate">
          {d.data.health.historyUrl ? `the service's agent did not answer at ${d.data.health.historyUrl}` : 'this source keeps no probe history and the service advertises no agent API'}
        </Text>,
      );
    }
    const auditRoom = Math.min(6, d.data.audit.length + 1);
    const historyRoom = Math.max(1, rows - 2 - lines.length - auditRoom - 1);
    for (const h of history.slice(-historyRoom)) {
      lines.push(
        <Text key={`h:${h.at}:${h.latencyMs}`} wrap="truncate">
          {'  '}
          {clock(h.at)} <Text color={tone(h.ok ? 'good' : 'bad')}>{cell(h.ok ? 'ok' : 'fail', 5)}</Text>
          {cell(latency(h.latencyMs), 7, 'right')} {cell(String(h.httpStatus ?? '-'), 4)}
          {h.check ? `${h.check}: ` : ''}
          {h.change ? `${h.change.from} → ${h.change.to}: ${h.change.reason}` : (h.error ?? '')}
        </Text>,
      );
    }
    lines.push(<Text key="a:title" bold>{`Audit (${d.data.audit.length ? 'newest first' : 'none'})`}</Text>);
    for (const a of d.data.audit.slice(0, auditRoom - 1)) {
      lines.push(
        <Text key={`a:${a.id}`} wrap="truncate">
          {'  '}
          {clock(a.at)} <Text color={tone(a.action === 'disable' ? 'warn' : 'good')}>{cell(a.action, 8)}</Text>
          {cell(a.actor, 18)} {a.changed ? '' : '(no change) '}
          {a.reason ?? ''}
        </Text>,
      );
    }
  }
  return (
    <Box flexDirection="column" borderStyle="round" width={width} height={rows} paddingX={1}>
      <Box position="absolute" marginTop={-1} marginLeft={1}>
        <Text bold>{` ${d.serviceId}${s?.id === state.leaderId ? ' ★' : ''} `}</Text>
      </Box>
      {lines.slice(0, Math.max(1, rows - 2))}
    </Box>
  );
}
