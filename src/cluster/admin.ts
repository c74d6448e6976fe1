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
import { parseAdminIntent, parseAuditEntry, parseServiceRecord, RECORD_LIMITS, withIntent } from './codec.js';
import type { KeyLayout } from './keys.js';
import { ClusterState } from './state.js';
import { EPOCH_MS_EXPECTATION, isEpochMs } from '../util/time.js';

/** The id names no registered service and no stored intent. */
export class ServiceNotFoundError extends Error {
  override name = 'ServiceNotFoundError';
  constructor(readonly serviceId: string) {
    super(`service ${serviceId} not found`);
  }
}

/**
 * The intent, or an instance the capacity guard counted, changed between every read and its write:
 * nothing was written. Transient (an instance flapping, another operator at work), so worth a retry.
 */
export class ConcurrentChangeError extends Error {
  override name = 'ConcurrentChangeError';
  constructor(readonly serviceId: string) {
    super(`the intent of ${serviceId}, or an instance the capacity guard counted, kept changing while it was written; nothing was changed, try again`);
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

/** Longest drain a disable may ask for, in seconds (24 h). */
export const MAX_DRAIN_TIMEOUT = 86_400;

/**
 * Furthest ahead a timed intent may lapse (`expiresAt`), in milliseconds from now: 366 days, a year
 * with room for a leap day. Longer is a permanent change in disguise, and a far-off time (9e15) is
 * beyond what a JavaScript Date holds.
 */
export const MAX_INTENT_HORIZON_MS = 366 * 24 * 60 * 60 * 1000;

export interface SetEnabledResult {
  serviceId: string;
  enabled: boolean;
  /** False when the service already was in the asked state (idempotent; a new reason is still stored). */
  changed: boolean;
  intent: AdminIntent;
  /** The live record with the new intent applied, when the service is registered. */
  service?: ServiceRecord;
  /** What this action was. Written to the trail when it changed something (see {@link audited}). */
  audit: AuditEntry;
  /**
   * Whether `audit` was written. A no-op (already in the asked state, same reason) is not: a script
   * enabling in a loop would otherwise push real entries out of the bounded trail.
   */
  audited: boolean;
}

/** Longest reason an intent records: every path that takes one (API, CLI, dashboard) holds to it. */
export const MAX_REASON = 500;

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
  if (options.expiresAt !== undefined && !(isEpochMs(options.expiresAt) && options.expiresAt <= Date.now() + MAX_INTENT_HORIZON_MS)) {
    throw new RangeError(`expiresAt: expected ${EPOCH_MS_EXPECTATION}, at most 366 days ahead`);
  }
  // Who and where come from the environment (a user name, a key's name): bounded like every stored
  // string, so the intent stays readable by every agent.
  const actor = (options.actor ?? 'unknown').slice(0, RECORD_LIMITS.actor);
  if (options.source !== undefined) options.source = options.source.slice(0, RECORD_LIMITS.actor);
  if (options.drainTimeout !== undefined && !(Number.isFinite(options.drainTimeout) && options.drainTimeout >= 0 && options.drainTimeout <= MAX_DRAIN_TIMEOUT)) {
    throw new RangeError(`drainTimeout: expected a duration from 0 to ${MAX_DRAIN_TIMEOUT} seconds`);
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const [recordKv, intentKv] = await Promise.all([
      registry.get(layout.service(serviceId)),
      registry.get(layout.adminOf(serviceId)),
    ]);
    // Read as every view reads: a record without a lease is no instance, an unreadable intent no intent.
    const record = recordKv && recordKv.lease !== '0' ? parseServiceRecord(recordKv.value, serviceId) : undefined;
    const current = intentKv ? parseAdminIntent(intentKv.value) : undefined;
    // An unreadable intent still names the id, so that an enable or disable can repair it.
    if (!record?.ok && !intentKv) throw new ServiceNotFoundError(serviceId);
    const corrupted = current && !current.ok ? current.error : undefined;
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
      ...(corrupted !== undefined ? { repaired: corrupted.slice(0, RECORD_LIMITS.message) } : {}),
    };
    if (!enabled && changed) {
      if (options.force) audit.forced = true;
      if (overridden) audit.capacity = overridden.shortfalls.map(describeShortfall).join('; ');
      if (intent.expiresAt !== undefined) audit.expiresAt = intent.expiresAt;
      if (intent.drainUntil !== undefined && intent.drainedAt === undefined) audit.drainUntil = intent.drainUntil;
    }
    const audited = changed || reasonUpdated || corrupted !== undefined;
    const ops: TxnOp[] = audited ? [{ type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) }] : [];
    // Enabling with no intent stored is already the default; keep the key space clean.
    if (changed || reasonUpdated) ops.push({ type: 'put', key: layout.adminOf(serviceId), value: JSON.stringify(intent) });
    else if (corrupted !== undefined) ops.push({ type: 'delete', key: layout.adminOf(serviceId) });
    const res = await registry.txn(
      [{ key: layout.adminOf(serviceId), target: 'modRevision', equals: intentKv?.modRevision ?? 0 }, ...guard],
      ops,
    );
    // The intent, or what the capacity verdict counted on, changed meanwhile: read and decide again.
    if (!res.succeeded) continue;
    const service = record?.ok ? withIntent(record.value, intent, now) : undefined;
    return { serviceId, enabled, changed, intent, service, audit, audited };
  }
  throw new ConcurrentChangeError(serviceId);
}

/**
 * Most counted instances a disable's transaction guards. Each costs two compares (its record and its
 * intent) and etcd caps a transaction at 128 compares by default (--max-txn-ops), the target's
 * intent included; past it the guard is advisory.
 */
const MAX_GUARDED = 64;

/**
 * The capacity verdict from a fresh read of the records and intents, and the compares that make the
 * disable's transaction fail if anything the verdict rests on changed meanwhile: the target's record,
 * and the record (its health) and intent of every healthy enabled instance it counted. So two
 * operators disabling the last two healthy instances of a zone at once cannot both succeed, and
 * neither can a disable during which the other one turned unhealthy or left: the caller re-reads and
 * decides again. (Instances that were not counted can only add capacity by changing, except a new
 * registration, which raises a percentage minimum: see docs/operations.md.)
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
  // A key the listing did not have compares as 0: it must still be absent.
  const revisions = new Map([...services.kvs, ...intents.kvs].map((kv) => [kv.key, kv.modRevision]));
  const unchanged = (key: string): TxnCompare => ({ key, target: 'modRevision', equals: revisions.get(key) ?? 0 });
  // The target's record always: whether it is healthy decides whether the guard applies at all. Its
  // intent is compared by the caller, at the revision the caller read.
  const compares: TxnCompare[] = [unchanged(layout.service(serviceId))];
  if (verdict.counted.length <= MAX_GUARDED) {
    for (const id of verdict.counted) {
      if (id !== serviceId) compares.push(unchanged(layout.service(id)), unchanged(layout.adminOf(id)));
    }
  }
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
