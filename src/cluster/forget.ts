/**
 * `services forget ID`: removes what the registry keeps about an instance beyond its lease, once it
 * is retired for good: its operator intent (`<ns>/admin/<id>`, kept without a lease so that it
 * survives restarts) and its flap-damping hold (`<ns>/health/<id>`). Both would otherwise stay
 * forever, and a new instance that reused the id would inherit a disable or a hold.
 *
 * The audit trail is not touched: it is the record of who did what, trimmed by the leader's
 * retention; the forget itself is audited. A live instance (a record under a lease) is refused
 * unless forced: its intent is then removed all the same, which enables it (the default).
 *
 * @module
 */
import type { Registry, TxnCompare, TxnOp } from '../registry/types.js';
import { RECORD_LIMITS, type AuditEntry } from '../types.js';
import { auditId, ConcurrentChangeError, MAX_REASON, ServiceNotFoundError } from './admin.js';
import type { KeyLayout } from './keys.js';

/** The instance is registered (its record is under a live lease): forgetting it needs `force`. */
export class LiveServiceError extends Error {
  override name = 'LiveServiceError';
  constructor(readonly serviceId: string) {
    super(`service ${serviceId} is registered (its record is under a live lease): forgetting it would reset its intent while it runs; use --force to do it anyway`);
  }
}

export interface ForgetOptions {
  /** Forget an id that is still registered (audited as forced). */
  force?: boolean;
  reason?: string;
  actor?: string;
  source?: string;
}

/** What `services forget` answers. */
export interface ForgetResult {
  serviceId: string;
  /** What was removed: the operator intent, the flap-damping hold. */
  removed: { intent: boolean; healthHold: boolean };
  /** Whether a live record existed (then only with `force`). */
  live: boolean;
  /** The audit entry written, when anything was removed. */
  audit?: AuditEntry;
}

/**
 * Removes the intent and the health hold of `serviceId` in one transaction with the audit entry,
 * guarded by the revisions read (an operator's disable or an agent registering meanwhile makes it
 * read and decide again, at most 5 times).
 *
 * @throws ServiceNotFoundError when the registry holds nothing about the id; LiveServiceError when it
 *   is registered and `force` is not set; ConcurrentChangeError when it kept changing
 */
export async function forgetService(registry: Registry, layout: KeyLayout, serviceId: string, options: ForgetOptions = {}): Promise<ForgetResult> {
  if (options.reason !== undefined && options.reason.length > MAX_REASON) throw new RangeError(`reason: expected at most ${MAX_REASON} characters`);
  const actor = (options.actor ?? 'unknown').slice(0, RECORD_LIMITS.actor);
  for (let attempt = 0; attempt < 5; attempt++) {
    const [record, intent, hold] = await Promise.all([
      registry.get(layout.service(serviceId)),
      registry.get(layout.adminOf(serviceId)),
      registry.get(layout.healthOf(serviceId)),
    ]);
    // Read as every view reads: a record without a lease is no instance (nothing would remove it).
    const live = record !== null && record.lease !== '0';
    if (!live && !intent && !hold) throw new ServiceNotFoundError(serviceId);
    if (live && !options.force) throw new LiveServiceError(serviceId);
    const removed = { intent: intent !== null, healthHold: hold !== null };
    if (!removed.intent && !removed.healthHold) return { serviceId, removed, live };
    const now = Date.now();
    const audit: AuditEntry = {
      id: auditId(now),
      at: now,
      actor,
      action: 'forget',
      serviceId,
      ...(options.reason !== undefined ? { reason: options.reason } : {}),
      ...(options.source !== undefined ? { source: options.source.slice(0, RECORD_LIMITS.actor) } : {}),
      changed: true,
      ...(live ? { forced: true } : {}),
    };
    const compares: TxnCompare[] = [
      { key: layout.service(serviceId), target: 'modRevision', equals: record?.modRevision ?? 0 },
      { key: layout.adminOf(serviceId), target: 'modRevision', equals: intent?.modRevision ?? 0 },
      { key: layout.healthOf(serviceId), target: 'modRevision', equals: hold?.modRevision ?? 0 },
    ];
    const ops: TxnOp[] = [{ type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) }];
    if (intent) ops.push({ type: 'delete', key: layout.adminOf(serviceId) });
    if (hold) ops.push({ type: 'delete', key: layout.healthOf(serviceId) });
    const res = await registry.txn(compares, ops);
    if (res.succeeded) return { serviceId, removed, live, audit };
  }
  throw new ConcurrentChangeError(serviceId);
}
