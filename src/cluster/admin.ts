import { randomBytes } from 'node:crypto';
import type { Registry, TxnOp } from '../registry/types.js';
import type { AdminIntent, AuditEntry, ServiceRecord } from '../types.js';
import { parseAdminIntent, parseAuditEntry, parseServiceRecord, withIntent } from './codec.js';
import type { KeyLayout } from './keys.js';

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
}

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
  for (const key of ['reason', 'actor', 'source', 'expiresAt'] as const) {
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
    let intent: AdminIntent;
    if (changed || !active) {
      intent = {
        enabled,
        reason: options.reason,
        actor,
        at: now,
        ...(options.expiresAt !== undefined ? { expiresAt: options.expiresAt } : {}),
      };
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
    const ops: TxnOp[] = [{ type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) }];
    // Enabling with no intent stored is already the default; keep the key space clean.
    if (changed || reasonUpdated) ops.push({ type: 'put', key: layout.adminOf(serviceId), value: JSON.stringify(intent) });
    const res = await registry.txn(
      [{ key: layout.adminOf(serviceId), target: 'modRevision', equals: intentKv?.modRevision ?? 0 }],
      ops,
    );
    if (!res.succeeded) continue; // someone else changed the intent meanwhile: read again
    const service = record?.ok ? withIntent(record.value, intent, now) : undefined;
    return { serviceId, enabled, changed, intent, service, audit };
  }
  throw new Error(`intent for ${serviceId} kept changing under us; try again`);
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

/** Sortable by time as a key: 13-digit epoch ms, then randomness against same-millisecond collisions. */
function auditId(now: number): string {
  return `${String(now).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}
