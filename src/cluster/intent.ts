/**
 * Writes to operator intent made by the system rather than a person, each in one transaction with
 * its audit entry and guarded by the intent's mod revision (an operator's newer intent always wins):
 *
 * - the leader re-enables a timed disable that expired (fenced by its election key);
 * - an instance's own agent records that its drain ended (idle, or the deadline passed);
 * - an agent started with `--start-disabled` disables itself, only when no intent exists at all.
 *
 * @module
 */
import type { Registry, TxnCompare } from '../registry/types.js';
import type { AdminIntent, AuditEntry } from '../types.js';
import { auditId } from './admin.js';
import { parseAdminIntent } from './codec.js';
import { classifyKey, type KeyLayout } from './keys.js';

/** The reason an agent started with `--start-disabled` records. */
export const START_DISABLED_REASON = 'start-disabled';

/** The leader's fencing token: its election key and that key's create revision. */
export interface LeaderFence {
  key: string;
  createRevision: number;
}

export interface ExpiryPass {
  /** Ids re-enabled by this pass. */
  expired: string[];
  /** The fence refused a write: we are not the leader any more. */
  fenced: boolean;
  /** The earliest expiry still ahead (epoch ms), if any. */
  next?: number;
  /** An intent changed between the listing and its write (a drain's end, an operator): pass again. */
  conflicted?: boolean;
}

/**
 * Re-enables every disable whose `expiresAt` has passed, one fenced transaction each: the intent
 * becomes `{enabled: true, reason: "expired (was: …)"}` (kept rather than deleted, so a restarting
 * `--start-disabled` agent finds an intent and does not disable itself again), with an audit entry
 * `{action: enable, automatic: true, expired: true}`. Readers treat a lapsed disable as enabled
 * already, so traffic never waits for this; it makes the registry and the audit trail say so.
 */
export async function expireDueIntents(
  registry: Registry,
  layout: KeyLayout,
  fence: LeaderFence,
  actor: string,
  now = Date.now(),
): Promise<ExpiryPass> {
  const { kvs } = await registry.list(layout.admin);
  const pass: ExpiryPass = { expired: [], fenced: false };
  for (const kv of kvs) {
    const { kind, id } = classifyKey(layout, kv.key);
    if (kind !== 'admin') continue;
    const parsed = parseAdminIntent(kv.value);
    if (!parsed.ok || parsed.value.expiresAt === undefined) continue;
    const old = parsed.value;
    if (old.expiresAt! > now) {
      if (!old.enabled && (pass.next === undefined || old.expiresAt! < pass.next)) pass.next = old.expiresAt;
      continue;
    }
    if (old.enabled) continue; // an enable that lapsed: enabled either way
    const reason = `expired (was: ${old.reason ?? 'no reason given'})`.slice(0, 500);
    const intent: AdminIntent = { enabled: true, reason, actor, at: now };
    const audit: AuditEntry = {
      id: auditId(now),
      at: now,
      actor,
      action: 'enable',
      serviceId: id,
      reason,
      source: 'leader',
      changed: true,
      automatic: true,
      expired: true,
      expiresAt: old.expiresAt,
    };
    const res = await registry.txn(
      [
        { key: fence.key, target: 'createRevision', equals: fence.createRevision },
        { key: kv.key, target: 'modRevision', equals: kv.modRevision },
      ],
      [
        { type: 'put', key: kv.key, value: JSON.stringify(intent) },
        { type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) },
      ],
    );
    if (res.succeeded) {
      pass.expired.push(id);
      continue;
    }
    // Either the fence (we no longer lead) or the intent (an operator changed it) failed: tell which.
    const fenceKv = await registry.get(fence.key);
    if (fenceKv?.createRevision !== fence.createRevision) {
      pass.fenced = true;
      return pass;
    }
    pass.conflicted = true;
  }
  return pass;
}

/**
 * Records that the drain of `serviceId`'s disable ended, if that drain (identified by its deadline)
 * is still the current intent's and not recorded yet. Returns whether it wrote.
 */
export async function markDrained(
  registry: Registry,
  layout: KeyLayout,
  serviceId: string,
  drainUntil: number,
  end: 'idle' | 'deadline',
  actor: string,
  now = Date.now(),
): Promise<boolean> {
  const kv = await registry.get(layout.adminOf(serviceId));
  if (!kv) return false;
  const parsed = parseAdminIntent(kv.value);
  if (!parsed.ok) return false;
  const old = parsed.value;
  // A disable that expired meanwhile is the leader's to re-enable; its drain no longer matters.
  if (old.enabled || old.drainUntil !== drainUntil || old.drainedAt !== undefined) return false;
  // So is a drain capped at the expiry that ran to its deadline: both are due at once, and a timer
  // may fire a millisecond before the wall clock reaches them.
  if (old.expiresAt !== undefined && (old.expiresAt <= now || (end === 'deadline' && old.expiresAt <= drainUntil))) return false;
  // A timer may fire a millisecond before the wall clock reaches the deadline: a drain that ran to
  // its deadline ended at it, not before.
  const endedAt = end === 'deadline' ? Math.max(now, drainUntil) : now;
  const intent: AdminIntent = { ...old, drainedAt: endedAt, drainEnd: end };
  const audit: AuditEntry = {
    id: auditId(now),
    at: now,
    actor,
    action: 'disable',
    serviceId,
    reason: old.reason,
    source: 'agent',
    changed: false,
    automatic: true,
    drained: end,
    drainUntil: old.drainUntil,
  };
  const compares: TxnCompare[] = [{ key: kv.key, target: 'modRevision', equals: kv.modRevision }];
  const res = await registry.txn(compares, [
    { type: 'put', key: kv.key, value: JSON.stringify(intent) },
    { type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) },
  ]);
  return res.succeeded;
}

/**
 * `--start-disabled`: disables `serviceId` before it registers, only if no intent exists for it
 * (create-only). An operator's intent, whatever it says, is never overwritten: once a deploy's
 * smoke test passed and someone ran `services enable`, restarting the same agent with the same flag
 * keeps it enabled. Returns whether it wrote.
 */
export async function applyStartDisabled(registry: Registry, layout: KeyLayout, serviceId: string, actor: string, now = Date.now()): Promise<boolean> {
  const intent: AdminIntent = { enabled: false, reason: START_DISABLED_REASON, actor, at: now };
  const audit: AuditEntry = {
    id: auditId(now),
    at: now,
    actor,
    action: 'disable',
    serviceId,
    reason: START_DISABLED_REASON,
    source: 'agent',
    changed: true,
    automatic: true,
    startDisabled: true,
  };
  const res = await registry.txn(
    [{ key: layout.adminOf(serviceId), target: 'createRevision', equals: 0 }],
    [
      { type: 'put', key: layout.adminOf(serviceId), value: JSON.stringify(intent) },
      { type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) },
    ],
  );
  return res.succeeded;
}
