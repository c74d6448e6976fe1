/**
 * The lease session: this agent's one lease and its life. It grants the lease (registration), renews
 * it by hand at `renewInterval`, knows the lease's deadline (at least `ttl` after the last keep-alive
 * that got through was *sent*) and wakes at it, logs a keep-alive outage once rather than on every
 * attempt, and when the registry says the lease is gone, forgets the session and registers again under
 * a new lease.
 *
 * What lives under the lease (the record, the election key) is written by others: the session asks
 * through its hooks and does not know what a record or a leader is. Leadership reads the deadline
 * here; what it does with it (stepping down when it passes) is in leadership.ts.
 *
 * @module
 */
import { LeaseLostError, type Registry, type RegistryLease } from '../registry/types.js';
import type { Logger } from '../util/logger.js';
import { errMessage, withDeadline } from './calls.js';

/** During a registry outage, a still-failing keep-alive is logged at most this often. */
export const KEEPALIVE_LOG_EVERY_MS = 30_000;

/**
 * One lease and what lives under it. Replaced as a whole when the lease is lost, so a step that
 * awaited something checks `current === session` before acting on it. The election fields are
 * leadership.ts's to write.
 */
export interface Session {
  lease: RegistryLease;
  registeredAt: number;
  electionKey?: string;
  /** Create revision of our election key: the fencing token for leader-only writes. */
  electionRevision?: number;
  /** Local time the last successful keep-alive was *sent*: the lease lives at least ttl past it. */
  renewedAt: number;
  /**
   * Set when this session gave up its term (its lease deadline passed while it led): it must not
   * lead on this election key again, whatever the view says, until the key is resigned (deleted
   * through the fence, or found gone) and a new campaign has been made.
   */
  resigning?: boolean;
  /** A step-down transaction is in flight. */
  steppingDown?: boolean;
}

/** What the session tells, and asks of, the agent around it. Called synchronously, in this order of the code. */
export interface LeaseSessionHooks {
  /** Before each attempt's lease grant; a throw fails the attempt (start-disabled lives here). */
  beforeGrant(): Promise<void>;
  /** Writes what lives under a brand-new lease (the record, the election key); a throw fails the attempt. */
  populate(session: Session): Promise<void>;
  /** The registry answered this agent. */
  contact(): void;
  /** Whether the registry answers our registration and keep-alives. */
  reachable(reachable: boolean): void;
  /** A registration (the first, or after a lost lease) went through; `session` is current. */
  registered(info: { leaseId: string; reregistration: boolean }): void;
  /** A registration attempt failed; it is retried at the next renew tick. */
  registrationFailed(err: Error): void;
  /** A keep-alive got through: the deadline moved on. */
  renewed(session: Session): void;
  /** A keep-alive failed for another reason than a lost lease (the registry is away). */
  keepaliveFailed(err: Error): void;
  /** The lease may no longer be provably alive (a failed keep-alive, its deadline, its loss). */
  livenessChanged(): void;
  /** The registry no longer knows the lease; called before the session is forgotten. */
  lost(info: { leaseId: string; reason: string }): void;
}

export interface LeaseSessionOptions {
  serviceId: string;
  registry: () => Registry;
  /** Lease TTL in seconds. */
  ttl: number;
  /** Between keep-alives (and registration retries), in ms. */
  renewIntervalMs: number;
  /** How long one keep-alive may go unanswered before the registry tries another member. */
  keepAliveTimeoutMs: number;
  /** The agent is running (not idle, stopping or stopped). */
  running: () => boolean;
  logger: Logger;
  hooks: LeaseSessionHooks;
}

export class LeaseSession {
  private session: Session | undefined;
  private registering: Promise<void> | undefined;
  /** Set by the first successful registration (a failed attempt may already have put the record). */
  private registeredOnce = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The keep-alive outage in progress, so it is logged once (and every 30 s), not every renewal. */
  private keepaliveOutage: { since: number; failures: number; loggedAt: number } | undefined;

  constructor(private readonly o: LeaseSessionOptions) {}

  /** The live session, if registered. */
  get current(): Session | undefined {
    return this.session;
  }

  /** The moment until which the lease is provably alive. */
  deadline(session: Session): number {
    return session.renewedAt + this.o.ttl * 1000;
  }

  /** Grants a lease, puts the record and campaigns. Retries until it works or the agent stops. */
  ensure(): Promise<void> {
    if (this.session || !this.o.running()) return Promise.resolve();
    this.registering ??= this.register().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  /** Starts the keep-alive loop (which also retries a registration that failed). */
  startRenewing(): void {
    this.scheduleRenew();
  }

  /** No more keep-alives or deadline wake-ups (stopping). */
  halt(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.deadlineTimer);
  }

  /**
   * Stopping: revokes the lease of `session` (the one the stop began with; every key under it goes
   * with it) and forgets the session. Bounded, never throws.
   */
  async close(session: Session | undefined): Promise<void> {
    if (session) {
      await withDeadline(session.lease.revoke(), 1000).then(
        () => this.o.logger.info({ event: 'deregistered', serviceId: this.o.serviceId }, 'deregistered: lease revoked'),
        (err: unknown) => this.o.logger.warn({ event: 'deregister.failed', err: errMessage(err) }, `lease revoke failed (it expires by TTL): ${errMessage(err)}`),
      );
    }
    this.session = undefined;
  }

  /** Forgets a lost lease (its keys are gone with it) and registers again under a new one. */
  async lost(session: Session, reason: string): Promise<void> {
    if (this.session !== session) return;
    this.o.logger.warn({ event: 'lease.lost', serviceId: this.o.serviceId, leaseId: session.lease.id }, `lease ${session.lease.id} lost; registering again`);
    this.o.hooks.lost({ leaseId: session.lease.id, reason });
    this.session = undefined;
    // Without a session nobody here leads: leadership demotes on this.
    this.o.hooks.livenessChanged();
    await this.ensure();
  }

  private async register(): Promise<void> {
    const { ttl, hooks, logger, serviceId } = this.o;
    const reregistration = this.registeredOnce;
    let lease: RegistryLease | undefined;
    try {
      await hooks.beforeGrant();
      const sentAt = Date.now();
      lease = await this.o.registry().grantLease(ttl);
      const session: Session = { lease, registeredAt: Date.now(), renewedAt: sentAt };
      await hooks.populate(session);
      if (!this.o.running()) {
        await lease.revoke().catch(() => undefined);
        return;
      }
      this.session = session;
      this.registeredOnce = true;
      hooks.contact();
      hooks.reachable(true);
      this.scheduleDeadline(session);
      logger.info(
        { event: reregistration ? 'lease.regranted' : 'registered', serviceId, leaseId: lease.id, ttl },
        `${reregistration ? 're-registered' : 'registered'} ${serviceId} under lease ${lease.id} (ttl ${ttl}s)`,
      );
      hooks.registered({ leaseId: lease.id, reregistration });
    } catch (err) {
      // Never leave a half-registered lease behind: it would be a second live lease for this agent.
      if (lease) await withDeadline(lease.revoke(), 1000).catch(() => undefined);
      hooks.reachable(false);
      logger.warn({ event: 'register.failed', err: errMessage(err) }, `registration failed: ${errMessage(err)}; retrying`);
      hooks.registrationFailed(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private scheduleRenew(): void {
    if (!this.o.running()) return;
    this.renewTimer = setTimeout(() => {
      void this.renew().finally(() => this.scheduleRenew());
    }, this.o.renewIntervalMs);
  }

  private async renew(): Promise<void> {
    const session = this.session;
    if (!session) {
      await this.ensure();
      return;
    }
    const { hooks } = this.o;
    const sentAt = Date.now();
    try {
      // Bounded well inside the TTL: a member that does not answer is left for another in time.
      await session.lease.keepAliveOnce({ timeoutMs: this.o.keepAliveTimeoutMs });
      if (this.session !== session || !this.o.running()) return;
      session.renewedAt = sentAt;
      hooks.contact();
      if (this.keepaliveOutage) {
        const { since, failures } = this.keepaliveOutage;
        this.keepaliveOutage = undefined;
        this.o.logger.info(
          { event: 'lease.keepalive_recovered', failures, outageMs: sentAt - since },
          `lease keep-alive works again after ${failures} failed attempt${failures === 1 ? '' : 's'} over ${Math.round((sentAt - since) / 1000)}s`,
        );
      }
      this.scheduleDeadline(session);
      hooks.reachable(true);
      hooks.renewed(session);
    } catch (err) {
      if (this.session !== session || !this.o.running()) return;
      if (err instanceof LeaseLostError) {
        await this.lost(session, err.message);
        return;
      }
      hooks.reachable(false);
      hooks.keepaliveFailed(err instanceof Error ? err : new Error(String(err)));
      this.logKeepaliveFailure(errMessage(err));
      hooks.livenessChanged();
    }
  }

  private logKeepaliveFailure(message: string): void {
    const now = Date.now();
    const outage = this.keepaliveOutage;
    if (outage === undefined) {
      this.keepaliveOutage = { since: now, failures: 1, loggedAt: now };
      this.o.logger.warn({ event: 'lease.keepalive_failed', err: message }, `lease keep-alive failed: ${message}`);
      return;
    }
    outage.failures += 1;
    // Not on every new wording either: the client alternates between its own messages (refused,
    // failing fast) while the registry stays away.
    if (now - outage.loggedAt < KEEPALIVE_LOG_EVERY_MS) return;
    outage.loggedAt = now;
    this.o.logger.warn(
      { event: 'lease.keepalive_failed', err: message, failures: outage.failures, outageMs: now - outage.since },
      `lease keep-alive still failing after ${outage.failures} attempts over ${Math.round((now - outage.since) / 1000)}s: ${message}`,
    );
  }

  /** Wakes at the lease deadline so a leader that cannot renew demotes itself on time. */
  private scheduleDeadline(session: Session): void {
    clearTimeout(this.deadlineTimer);
    const ms = Math.max(0, this.deadline(session) - Date.now());
    this.deadlineTimer = setTimeout(() => {
      if (this.session !== session) return;
      this.o.hooks.livenessChanged();
      if (Date.now() >= this.deadline(session)) {
        this.o.logger.warn({ event: 'lease.deadline', serviceId: this.o.serviceId }, 'lease deadline passed without a renewal; not leading until a keep-alive gets through');
      }
    }, ms + 5);
  }
}
