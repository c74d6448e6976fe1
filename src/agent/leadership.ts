/**
 * Leadership: whether this agent leads, and every way it stops leading. The leader is the election
 * candidate with the lowest create revision (etcd's election recipe, on the session's one lease);
 * this agent leads while its key is that candidate *and* its lease is provably alive.
 *
 * When the lease deadline passes without a renewal, leadership is lost here: isLeader() compares the
 * deadline on every call, and evaluate() (run at the deadline, after each keep-alive, when the lease
 * is lost and when the view changes) gives up the term for good with a fenced step-down, then
 * campaigns again from the back of the line. The same happens when the view shows our key gone. Here
 * too: the campaigns, the fenced leader-only writes, the leader record and the graceful stop's hand-over.
 *
 * The deadline itself, and the timer that wakes at it, are the lease session's (lease-session.ts); the
 * agent is told when leadership changes (it starts or stops the leader duties, emits `leadership` and
 * republishes the record's role).
 *
 * @module
 */
import type { ElectionCandidate } from '../cluster/state.js';
import type { KeyLayout } from '../cluster/keys.js';
import type { LeaderFence } from '../cluster/intent.js';
import { LeaseLostError, type Registry, type TxnOp, type TxnResult } from '../registry/types.js';
import type { Logger } from '../util/logger.js';
import { errMessage, withDeadline } from './calls.js';
import type { Session } from './lease-session.js';

/** The agent is not (or no longer) the leader, so a leader-only write was not attempted. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
}

/** What leadership needs of the lease session (lease-session.ts). */
export interface LeaseView {
  readonly current: Session | undefined;
  deadline(session: Session): number;
  lost(session: Session, reason: string): Promise<void>;
}

export interface LeadershipOptions {
  serviceId: string;
  layout: KeyLayout;
  registry: () => Registry;
  lease: LeaseView;
  /** The agent is running (not idle, stopping or stopped). */
  running: () => boolean;
  /** The lowest election candidate in the cluster view, if any. */
  candidate: () => ElectionCandidate | null | undefined;
  /** Leadership was gained or lost (called after the log line, and after the leader record's write began). */
  changed: (leading: boolean) => void;
  /** The operator's resign request in the cluster view, if any (`<ns>/resign`). */
  resignRequest?: () => { term: number } | undefined;
  logger: Logger;
}

export class Leadership {
  private leading = false;
  /** The session in which this agent last became leader, and when. */
  private leaderSession: Session | undefined;
  private leaderSince = 0;

  constructor(private readonly o: LeadershipOptions) {}

  /** True only while our election key is the lowest and our lease is provably alive. */
  isLeader(): boolean {
    const session = this.o.lease.current;
    if (!this.leading || !session || session.resigning || !this.o.running()) return false;
    // Checked on every call, not only by timer: a process thawed after SIGSTOP must not claim
    // leadership for even one call before its timers run.
    return Date.now() < this.o.lease.deadline(session);
  }

  /** Leading by the last evaluation, though the lease may not be provably alive this instant. */
  get claimed(): boolean {
    return this.leading;
  }

  /** The fence of the current session's term (election key and its create revision), if it campaigned. */
  fence(): LeaderFence | undefined {
    const session = this.o.lease.current;
    if (!session?.electionKey || session.electionRevision === undefined) return undefined;
    return { key: session.electionKey, createRevision: session.electionRevision };
  }

  /**
   * The first campaign of a brand-new session, in one transaction with `ops` (the record's put).
   * Resolves whether `ops` went through with it; if not, `ifRefused` writes them before the term is read.
   */
  async enter(session: Session, ops: TxnOp[], ifRefused: () => Promise<void>): Promise<boolean> {
    const key = this.o.layout.electionOf(session.lease.id);
    const registry = this.o.registry();
    const res = await registry.txn([{ key, target: 'createRevision', equals: 0 }], [...ops, { type: 'put', key, value: this.o.serviceId, lease: session.lease.id }]);
    session.electionKey = key;
    if (res.succeeded) {
      // Our key is new in this transaction, so its create revision is the transaction's revision.
      session.electionRevision = res.revision;
      return true;
    }
    // The key names our brand-new lease, so only a half-finished earlier attempt could hold it.
    await ifRefused();
    session.electionRevision = (await registry.get(key))?.createRevision;
    return false;
  }

  /** Leading or not, from the view's lowest candidate and the lease's deadline. */
  evaluate(): void {
    const session = this.o.lease.current;
    const candidate = this.o.candidate();
    const ours = !!session?.electionKey && candidate?.key === session.electionKey && candidate.createRevision === session.electionRevision;
    const alive = !!session && Date.now() < this.o.lease.deadline(session);
    const running = this.o.running();
    const leading = running && ours && alive && !session!.resigning;
    if (this.leading && !leading && running && session && this.leaderSession === session && !session.resigning) {
      // Leadership lost while running: the lease deadline passed (etcd may or may not have expired
      // the lease; we cannot tell from here) or the view shows our key gone. Give up the term for
      // good rather than resume it later, and resign it in etcd through the fence, so the next
      // candidate need not wait for our lease to run out. A thawed or cut-off ex-leader's attempt
      // is refused by the fence (`leader.fenced`); then it campaigns again from the back.
      session.resigning = true;
      this.o.logger.warn(
        { event: 'leader.step_down', serviceId: this.o.serviceId, term: session.electionRevision ?? null, reason: alive ? 'election key gone' : 'lease deadline passed' },
        `stepping down: ${alive ? 'our election key is no longer the lowest' : 'lease deadline passed without a renewal'}`,
      );
      void this.stepDown(session);
    }
    this.setLeading(leading);
  }

  /**
   * An operator asks the leader of `request.term` to hand over (`leader resign`, src/cluster/leader.ts).
   * Only the leader of exactly that term acts, so a late request cannot unseat a newer leader: it
   * gives up the term as a step-down does, through the fence (its election key, `<ns>/leader` and the
   * request go in one transaction, as in the graceful stop's hand-over), then campaigns again from the
   * back of the line. Returns whether this agent acted on it.
   */
  resignRequested(request: { term: number; actor: string; reason?: string }): boolean {
    const session = this.o.lease.current;
    if (!session || !this.isLeader() || session.electionRevision !== request.term || session.resigning) return false;
    session.resigning = true;
    this.o.logger.info(
      { event: 'leader.resign_requested', serviceId: this.o.serviceId, term: request.term, actor: request.actor, ...(request.reason !== undefined ? { reason: request.reason } : {}) },
      `handing over leadership (term ${request.term}) as ${request.actor} asked`,
    );
    void this.stepDown(session);
    this.evaluate();
    return true;
  }

  /** A keep-alive got through: the lease is alive again. */
  renewed(session: Session): void {
    // A term given up while etcd was out of reach is resigned now that it answers again.
    if (session.resigning) void this.stepDown(session);
    this.evaluate();
  }

  /** Stops leading at once, whatever the view says (the agent is stopping). */
  demote(): void {
    this.setLeading(false);
  }

  /**
   * The graceful stop's hand-over in one round trip: `ops` (the draining record), our election key
   * and, if we led, the leader record change together, fenced by our key (while it exists and was the
   * lowest, nobody else can have written the leader record). Resolves whether it went through; false
   * without a term, on a refusal, an error or after `timeoutMs`.
   */
  async handOver(session: Session, ops: TxnOp[], wasLeader: boolean, timeoutMs: number): Promise<boolean> {
    if (!session.electionKey || session.electionRevision === undefined) return false;
    const res = await withDeadline(this.fenced(session, [...ops, ...this.endOfTerm(session, wasLeader)]), timeoutMs).catch(() => undefined);
    return res?.succeeded === true;
  }

  /**
   * What gives up a term: our election key and, if we led, `<ns>/leader`. Run through the fence (the
   * key's create revision), a term already lost (the key gone, someone else leading) changes nothing.
   * The one way a term ends on purpose: the graceful stop's hand-over, a step-down and an operator's
   * `leader resign` (through stepDown).
   */
  private endOfTerm(session: Session, wasLeader: boolean): TxnOp[] {
    return [{ type: 'delete', key: session.electionKey! }, ...(wasLeader ? [{ type: 'delete' as const, key: this.o.layout.leader }] : [])];
  }

  /** `ops` in one transaction that goes through only while our election key exists with its term's create revision. */
  private fenced(session: Pick<Session, 'electionKey' | 'electionRevision'>, ops: TxnOp[]): Promise<TxnResult> {
    return this.o.registry().txn([{ key: session.electionKey!, target: 'createRevision', equals: session.electionRevision! }], ops);
  }

  /**
   * Runs a leader-only write, fenced by our election key's create revision: if another agent took
   * over meanwhile (our key is gone), etcd refuses the transaction and nothing is written.
   */
  async leaderWrite(ops: TxnOp[]): Promise<TxnResult> {
    const session = this.o.lease.current;
    if (!session?.electionKey || session.electionRevision === undefined) throw new NotLeaderError('not a leadership candidate');
    if (!this.isLeader()) throw new NotLeaderError(`agent ${this.o.serviceId} is not the leader`);
    return this.fencedTxn(session, ops);
  }

  /** The fenced transaction itself, without the local leadership check (exposed for fault tests). */
  async fencedTxn(session: Pick<Session, 'electionKey' | 'electionRevision'> | undefined, ops: TxnOp[]): Promise<TxnResult> {
    if (!session?.electionKey || session.electionRevision === undefined) throw new NotLeaderError('not a leadership candidate');
    const res = await this.fenced(session, ops);
    if (!res.succeeded) this.o.logger.warn({ event: 'leader.fenced' }, 'leader-only write refused: our election key is gone');
    return res;
  }

  /**
   * Resigns a term given up while running (see evaluate) or handed over at an operator's request, by
   * the same fenced end of term as the graceful stop's hand-over (endOfTerm), then campaigns again
   * with a new key (at the back of the line). Refused by the fence when the key is already gone (the
   * lease expired, someone else leads); fails harmlessly while etcd is out of reach, and is retried
   * after the next keep-alive.
   */
  private async stepDown(session: Session): Promise<void> {
    if (session.steppingDown || !session.resigning || this.o.lease.current !== session) return;
    if (!session.electionKey || session.electionRevision === undefined) return;
    session.steppingDown = true;
    try {
      // An operator's resign request for this term (if that is why) is answered with the term.
      const answered: TxnOp[] = this.o.resignRequest?.()?.term === session.electionRevision ? [{ type: 'delete', key: this.o.layout.resign }] : [];
      const res = await this.fencedTxn(session, [...this.endOfTerm(session, true), ...answered]);
      if (this.o.lease.current !== session || !this.o.running()) return;
      if (res.succeeded) {
        this.o.logger.info({ event: 'leader.resigned', serviceId: this.o.serviceId, term: session.electionRevision }, 'resigned our term in etcd; campaigning again');
      }
      // Either way the old key is gone now: campaign afresh under the same lease, if it still lives.
      await this.campaign(session);
    } catch (err) {
      if (err instanceof LeaseLostError) await this.o.lease.lost(session, err.message);
      else this.o.logger.debug({ event: 'leader.step_down_failed', err: errMessage(err) }, `step-down not confirmed yet: ${errMessage(err)}`);
    } finally {
      session.steppingDown = false;
    }
  }

  /** Puts a new election key under the session's lease (its create revision is the new term). */
  private async campaign(session: Session): Promise<void> {
    const key = this.o.layout.electionOf(session.lease.id);
    const registry = this.o.registry();
    const res = await registry.txn(
      [{ key, target: 'createRevision', equals: 0 }],
      [{ type: 'put', key, value: this.o.serviceId, lease: session.lease.id }],
    );
    if (this.o.lease.current !== session) return;
    session.electionKey = key;
    session.electionRevision = res.succeeded ? res.revision : (await registry.get(key))?.createRevision;
    session.resigning = false;
    this.evaluate();
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    const session = this.o.lease.current;
    this.o.logger.info(
      { event: leading ? 'leader.elected' : 'leader.lost', serviceId: this.o.serviceId, term: session?.electionRevision ?? null },
      leading ? `${this.o.serviceId} is now the leader` : `${this.o.serviceId} is no longer the leader`,
    );
    if (leading && session) {
      this.leaderSession = session;
      this.leaderSince = Date.now();
      void this.writeLeaderRecord(session);
    }
    this.o.changed(leading);
  }

  /** `<ns>/leader`: who leads since when, for operators (`etcdctl get <ns>/leader`). One write per term. */
  private async writeLeaderRecord(session: Session): Promise<void> {
    const value = JSON.stringify({ leaderId: this.o.serviceId, since: this.leaderSince, term: session.electionRevision });
    try {
      await this.leaderWrite([{ type: 'put', key: this.o.layout.leader, value, lease: session.lease.id }]);
    } catch (err) {
      this.o.logger.debug({ event: 'leader.record_failed', err: errMessage(err) }, `leader record not written: ${errMessage(err)}`);
    }
  }
}
