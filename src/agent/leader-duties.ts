/**
 * What the leader does for the cluster while it leads, every write fenced by its term: re-enabling
 * timed disables when they expire (on a timer at the nearest expiry), and the minute's housekeeping
 * (an expiry pass as a backstop, flap holds of instances gone for good, the audit trail's retention).
 * Started when this agent becomes leader and stopped when it no longer is; whether it leads is
 * leadership.ts's question, not this file's.
 *
 * @module
 */
import { expireDueIntents, type LeaderFence } from '../cluster/intent.js';
import { parseHealthState } from '../cluster/codec.js';
import type { KeyLayout } from '../cluster/keys.js';
import type { Registry, TxnOp, TxnResult } from '../registry/types.js';
import type { Logger } from '../util/logger.js';
import { errMessage } from './calls.js';

/** What the duties need of leadership (leadership.ts). */
export interface LeaderRole {
  isLeader(): boolean;
  /** Leading by the last evaluation, though the lease may not be provably alive this instant. */
  readonly claimed: boolean;
  fence(): LeaderFence | undefined;
  leaderWrite(ops: TxnOp[]): Promise<TxnResult>;
}

export interface LeaderDutiesOptions {
  serviceId: string;
  layout: KeyLayout;
  registry: () => Registry;
  leadership: LeaderRole;
  /** The agent is running (not idle, stopping or stopped). */
  running: () => boolean;
  /** Whether the cluster view has a record for this service id. */
  hasRecord: (serviceId: string) => boolean;
  logger: Logger;
}

export class LeaderDuties {
  private leaderTimer: NodeJS.Timeout | undefined;
  private intentTimer: NodeJS.Timeout | undefined;
  private expiring: Promise<void> | undefined;
  private expireAgain = false;

  constructor(private readonly o: LeaderDutiesOptions) {}

  /** On becoming leader. */
  start(): void {
    clearInterval(this.leaderTimer);
    // Its first step is an expiry pass: disables that lapsed while nobody led are re-enabled now.
    void this.maintenance();
    this.leaderTimer = setInterval(() => void this.maintenance(), 60_000);
    this.leaderTimer.unref();
  }

  /** On losing leadership, and on stop. A pass in flight finds itself no longer leading and ends. */
  stop(): void {
    clearInterval(this.leaderTimer);
    clearTimeout(this.intentTimer);
  }

  /**
   * The leader re-enables expired timed disables, fenced, with an audit entry each (intent.ts), and
   * arms a timer for the next expiry. Runs on becoming leader (finding what expired while nobody
   * led), on intent changes, after a re-list and from the minute's maintenance; one pass at a time,
   * a failed pass (registry away) retried after a second while still leading.
   */
  expireIntents(): Promise<void> {
    if (this.expiring) {
      this.expireAgain = true;
      return this.expiring;
    }
    const { leadership, logger } = this.o;
    this.expiring = (async () => {
      do {
        this.expireAgain = false;
        const fence = leadership.isLeader() ? leadership.fence() : undefined;
        if (!fence) {
          // Leading, but the lease is not provably alive this instant (a keep-alive late under load):
          // look again shortly rather than wait for the minute's maintenance.
          if (leadership.claimed && this.o.running()) this.armIntentTimer(Date.now() + 500);
          return;
        }
        clearTimeout(this.intentTimer);
        let retryAt: number | undefined;
        try {
          const pass = await expireDueIntents(this.o.registry(), this.o.layout, fence, `leader:${this.o.serviceId}`);
          for (const id of pass.expired) {
            logger.info({ event: 'intent.expired', serviceId: id }, `timed disable of ${id} expired: re-enabled (audited)`);
          }
          if (pass.fenced) {
            logger.warn({ event: 'leader.fenced' }, 'expiry refused: our election key is gone');
            return;
          }
          // A conflicting write (an operator, a drain's end) moved an intent under us: look again soon.
          retryAt = pass.conflicted ? Date.now() + 200 : pass.next;
        } catch (err) {
          logger.debug({ event: 'intent.expiry_failed', err: errMessage(err) }, `expiry pass failed: ${errMessage(err)}; retrying`);
          retryAt = Date.now() + 1000;
        }
        if (retryAt !== undefined && leadership.isLeader()) this.armIntentTimer(retryAt);
      } while (this.expireAgain);
    })().finally(() => {
      this.expiring = undefined;
    });
    return this.expiring;
  }

  private armIntentTimer(at: number): void {
    clearTimeout(this.intentTimer);
    const delay = Math.min(Math.max(0, at - Date.now()), 0x7fffffff);
    this.intentTimer = setTimeout(() => void this.expireIntents(), delay);
    this.intentTimer.unref();
  }

  /**
   * Leader-only housekeeping, each write fenced: expired timed disables are re-enabled (see
   * {@link expireIntents}; this is its backstop) and the audit trail is trimmed to its retention (the newest 1000 entries and at most 30 days).
   */
  private async maintenance(): Promise<void> {
    const { registry: reg, layout, leadership } = this.o;
    try {
      const now = Date.now();
      const ops: TxnOp[] = [];
      void this.expireIntents();
      const registry = reg();
      // Flap holds of instances gone for good: a live agent removes its own on release, so one whose
      // hold ran out an hour ago with no record registered is left over.
      const holds = await registry.list(layout.health);
      for (const kv of holds.kvs) {
        const id = kv.key.slice(layout.health.length);
        const parsed = parseHealthState(kv.value, id);
        if (this.o.hasRecord(id)) continue;
        // Unparsable values are skipped (with the view's warning), never deleted: they may be someone's data.
        if (parsed.ok && parsed.value.flapping.until + 3600_000 <= now) ops.push({ type: 'delete', key: kv.key });
      }
      const { kvs } = await registry.list(layout.audit);
      const cutoff = String(now - 30 * 24 * 3600 * 1000).padStart(13, '0');
      kvs.forEach((kv, i) => {
        const name = kv.key.slice(layout.audit.length);
        if (i < kvs.length - 1000 || name < cutoff) ops.push({ type: 'delete', key: kv.key });
      });
      for (let i = 0; i < ops.length; i += 100) {
        if (!leadership.isLeader()) return;
        await leadership.leaderWrite(ops.slice(i, i + 100));
      }
    } catch (err) {
      this.o.logger.debug({ event: 'leader.maintenance_failed', err: errMessage(err) }, `leader maintenance skipped: ${errMessage(err)}`);
    }
  }
}
