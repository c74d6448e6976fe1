import { randomBytes } from 'node:crypto';
import type { Registry, TxnCompare, TxnOp } from '../registry/types.js';
import type { AdminIntent, AuditEntry, ServiceRecord } from '../types.js';
import {
  CapacityError,
  checkCapacity,
  DEFAULT_MIN_HEALTHY,
  describeShortfall,
  requiredHealthy,
  type CapacityVerdict,
  type MinHealthy,
} from './capacity.js';
import { parseAdminIntent, parseAuditEntry, parseServiceRecord, withIntent } from './codec.js';
import type { KeyLayout } from './keys.js';
import { ClusterState } from './state.js';

/** The id names no registered service and no stored intent. */
export class ServiceNotFoundError extends Error {
  override name = 'ServiceNotFoundError';
  constructor(readonly serviceId: string) {
    super(`service ${serviceId} not found`);
  }
}

export interface SetEnabledOptions {
  reason?: string;
  /** Who asked: an API key's name, `cli:<user>`, … */
  actor?: string;
  /** Where from: an address, `cli`, `dashboard`. */
  source?: string;
  /** Epoch ms after which the intent lapses (the service counts as enabled again). */
  expiresAt?: number;
  /**
   * A disable only: seconds the instance may drain (finish in-flight work) before it counts as
   * `disabled` (default {@link DEFAULT_DRAIN_TIMEOUT}; 0 = no drain phase). Capped by `expiresAt`.
   * It is not routable from the first moment either way; the drain phase is for the instance.
   */
  drainTimeout?: number;
  /** A disable only: override the capacity guard (audited as `forced`). */
  force?: boolean;
  /**
   * A disable only: the capacity guard's minimum of healthy enabled instances per region and zone
   * (`{count: 1}` by default; `{count: 0}` turns the guard off).
   */
  minHealthy?: MinHealthy;
}

/** Seconds a disable drains by default before it counts as `disabled`. */
export const DEFAULT_DRAIN_TIMEOUT = 30;

export interface SetEnabledResult {
  serviceId: string;
  enabled: boolean;
  /** False when the service already was in the asked state (idempotent; a new reason is still stored). */
  changed: boolean;
  intent: AdminIntent;
  /** The live record with the new intent applied, when the service is registered. */
  service?: ServiceRecord;
  audit: AuditEntry;
}

const MAX_REASON = 500;

/**
 * `options` over `defaults`, where a property set to `undefined` counts as absent: a caller that
 * passes `{ actor: undefined }` gets the default actor, not `unknown`.
 */
export function withDefaultOptions(options: SetEnabledOptions, defaults: SetEnabledOptions = {}): SetEnabledOptions {
  const out: SetEnabledOptions = {};
  for (const key of ['reason', 'actor', 'source', 'expiresAt', 'drainTimeout', 'force', 'minHealthy'] as const) {
    const value = options[key] ?? defaults[key];
    if (value !== undefined) (out as Record<typeof key, unknown>)[key] = value;
  }
  return out;
}

/**
 * Records operator intent for a service at `<ns>/admin/<id>` (no lease: it survives agent and etcd
 * restarts) and appends an audit entry, in one transaction guarded by the intent key's revision so
 * two operators racing cannot lose an update silently.
 *
 * Repeating the current state is a no-op (`changed: false`), except that a new `reason` replaces the
 * stored one (with the new actor and time): the state is unchanged, but the record then says why it
 * is in that state now. The audit entry of such a call has `reasonUpdated: true` and the
 * `previousReason`.
 *
 * Options that are `undefined` count as absent and take their value from `defaults` (the caller's
 * own actor, say); the actor is `unknown` only when neither gives one.
 */
export async function setServiceEnabled(
  registry: Registry,
  layout: KeyLayout,
  serviceId: string,
  enabled: boolean,
  options: SetEnabledOptions = {},
  defaults: SetEnabledOptions = {},
): Promise<SetEnabledResult> {
  options = withDefaultOptions(options, defaults);
  if (options.reason !== undefined && options.reason.length > MAX_REASON) {
    throw new RangeError(`reason: expected at most ${MAX_REASON} characters`);
  }
  const actor = options.actor ?? 'unknown';
  if (options.drainTimeout !== undefined && !(Number.isFinite(options.drainTimeout) && options.drainTimeout >= 0)) {
    throw new RangeError('drainTimeout: expected a duration of 0 seconds or more');
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const [recordKv, intentKv] = await Promise.all([
      registry.get(layout.service(serviceId)),
      registry.get(layout.adminOf(serviceId)),
    ]);
    const record = recordKv ? parseServiceRecord(recordKv.value, serviceId) : undefined;
    const current = intentKv ? parseAdminIntent(intentKv.value) : undefined;
    if (!record?.ok && !current?.ok) throw new ServiceNotFoundError(serviceId);
    const now = Date.now();
    const active = current?.ok && (current.value.expiresAt === undefined || current.value.expiresAt > now) ? current.value : undefined;
    const wasEnabled = active ? active.enabled : true;
    const changed = wasEnabled !== enabled || (options.expiresAt !== undefined && active?.expiresAt !== options.expiresAt);
    // Same state, new reason: keep the state (and its expiry) but record why it holds now.
    const reasonUpdated = !changed && active !== undefined && options.reason !== undefined && options.reason !== active.reason;
    // The capacity guard, for a disable that takes a routable instance out of traffic.
    const guard: TxnCompare[] = [];
    let overridden: CapacityVerdict | undefined;
    const minHealthy = options.minHealthy ?? DEFAULT_MIN_HEALTHY;
    if (!enabled && wasEnabled && requiredHealthy(minHealthy, 1) > 0) {
      const verdict = await capacityVerdict(registry, layout, serviceId, minHealthy);
      if (!verdict.verdict.ok && !options.force) throw new CapacityError(serviceId, verdict.verdict.shortfalls);
      if (!verdict.verdict.ok) overridden = verdict.verdict;
      guard.push(...verdict.compares);
    }
    let intent: AdminIntent;
    if (changed || !active) {
      intent = {
        enabled,
        reason: options.reason,
        actor,
        at: now,
        ...(options.expiresAt !== undefined ? { expiresAt: options.expiresAt } : {}),
      };
      if (!enabled && !wasEnabled && active) {
        // Already disabled, new expiry: the drain that began with the disable goes on as it was.
        const { drainUntil, drainedAt, drainEnd, forced } = active;
        intent = { ...intent, ...definedOnly({ drainUntil, drainedAt, drainEnd, forced }) };
      } else if (!enabled) {
        const drainMs = (options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT) * 1000;
        // A drain is the instance finishing its work: only a registered instance has any.
        if (drainMs > 0 && record?.ok) intent.drainUntil = Math.min(now + drainMs, options.expiresAt ?? Infinity);
        if (options.force) intent.forced = true;
      }
    } else if (reasonUpdated) {
      intent = { ...active, reason: options.reason, actor, at: now };
    } else {
      intent = active;
    }
    const audit: AuditEntry = {
      id: auditId(now),
      at: now,
      actor,
      action: enabled ? 'enable' : 'disable',
      serviceId,
      reason: options.reason,
      source: options.source,
      changed,
      ...(reasonUpdated ? { reasonUpdated: true, ...(active.reason !== undefined ? { previousReason: active.reason } : {}) } : {}),
    };
    if (!enabled && changed) {
      if (options.force) audit.forced = true;
      if (overridden) audit.capacity = overridden.shortfalls.map(describeShortfall).join('; ');
      if (intent.expiresAt !== undefined) audit.expiresAt = intent.expiresAt;
      if (intent.drainUntil !== undefined && intent.drainedAt === undefined) audit.drainUntil = intent.drainUntil;
    }
    const ops: TxnOp[] = [{ type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) }];
    // Enabling with no intent stored is already the default; keep the key space clean.
    if (changed || reasonUpdated) ops.push({ type: 'put', key: layout.adminOf(serviceId), value: JSON.stringify(intent) });
    const res = await registry.txn(
      [{ key: layout.adminOf(serviceId), target: 'modRevision', equals: intentKv?.modRevision ?? 0 }, ...guard],
      ops,
    );
    if (!res.succeeded) continue; // someone else changed the intent (or a counted peer's) meanwhile: read again
    const service = record?.ok ? withIntent(record.value, intent, now) : undefined;
    return { serviceId, enabled, changed, intent, service, audit };
  }
  throw new Error(`intent for ${serviceId} kept changing under us; try again`);
}

/** Most intents a disable's transaction guards; past it the guard is advisory (etcd caps a transaction's operations). */
const MAX_GUARDED = 64;

/**
 * The capacity verdict from a fresh read of the records and intents, and the compares that make the
 * disable's transaction fail if any counted instance's intent changed meanwhile: two operators
 * disabling the last two healthy instances of a zone at once cannot both succeed. (Health changes
 * between the read and the write are not guarded: the guard is about operator actions.)
 */
async function capacityVerdict(
  registry: Registry,
  layout: KeyLayout,
  serviceId: string,
  min: MinHealthy,
): Promise<{ verdict: CapacityVerdict; compares: TxnCompare[] }> {
  const [services, intents] = await Promise.all([registry.list(layout.services), registry.list(layout.admin)]);
  const state = ClusterState.fromList(layout, [...services.kvs, ...intents.kvs]);
  const verdict = checkCapacity(state.services(), serviceId, min);
  const revisions = new Map(intents.kvs.map((kv) => [kv.key, kv.modRevision]));
  const peers = verdict.counted.filter((id) => id !== serviceId);
  const compares: TxnCompare[] =
    peers.length <= MAX_GUARDED
      ? peers.map((id) => ({ key: layout.adminOf(id), target: 'modRevision' as const, equals: revisions.get(layout.adminOf(id)) ?? 0 }))
      : [];
  return { verdict, compares };
}

/** Reads the audit trail, newest first, optionally for one service. Needs only `list` (read-only clients fit). */
export async function listAudit(
  registry: Pick<Registry, 'list'>,
  layout: KeyLayout,
  options: { serviceId?: string; limit?: number } = {},
): Promise<AuditEntry[]> {
  const listed = await registry.list(layout.audit);
  // Keys order by millisecond only (a random suffix within one), so two actions in the same
  // millisecond would come back in random order; the create revision is the order of the writes.
  const kvs = [...listed.kvs].sort((x, y) => x.createRevision - y.createRevision);
  const entries: AuditEntry[] = [];
  for (let i = kvs.length - 1; i >= 0; i--) {
    const parsed = parseAuditEntry(kvs[i]!.value);
    if (!parsed.ok) continue;
    if (options.serviceId && parsed.value.serviceId !== options.serviceId) continue;
    entries.push(parsed.value);
    if (options.limit && entries.length >= options.limit) break;
  }
  return entries;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Sortable by time as a key: 13-digit epoch ms, then randomness against same-millisecond collisions. */
export function auditId(now: number): string {
  return `${String(now).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}
