/**
 * The registry contract on etcd v3 (etcd3 1.1.2 over gRPC), with member failover: a call, a lease
 * keep-alive or a watch that a member leaves unanswered moves everything to the next member.
 *
 * Why this file is long: one class holds the member in use, and calls, leases and watches all move
 * with it; split apart, each piece would need the others' state. Error mapping sits at the bottom.
 *
 * @module
 */
import {
  ConstantBackoff,
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  retry,
} from 'cockatiel';
import {
  Etcd3,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdRoleNotGrantedError,
  EtcdUserNotFoundError,
  GRPCInvalidArgumentError,
  isRecoverableError,
  castGrpcError,
  type IKeyValue,
} from 'etcd3';
import {
  isLeaderChange,
  LEADER_CHANGE_RETRY,
  LeaseLostError,
  RegistryAuthError,
  RegistryRequestError,
  RegistryUnavailableError,
  type KeyValue,
  type ListResult,
  type MemberChange,
  type Registry,
  type RegistryLease,
  type RegistryStatus,
  type TxnCompare,
  type TxnOp,
  type TxnResult,
  type WatchEvent,
  type WatchHandle,
  type WatchHandlers,
  tlsRegistryError,
} from './types.js';
import { readCredentialFile } from './credential-files.js';
import { prefixEnd, redactUrl } from './endpoint.js';

export { redactUrl } from './endpoint.js';

export interface EtcdRegistryOptions {
  endpoints: string[];
  /** Milliseconds allowed for one call (default 5000). */
  callTimeoutMs?: number;
  username?: string;
  password?: string;
  /** PEM file paths. `ca` alone is TLS; with `cert` and `key` it is mutual TLS. */
  tls?: { ca?: string; cert?: string; key?: string };
  /**
   * With several endpoints: how long the member in use may leave a call unanswered before the
   * registry moves everything (calls, lease keep-alives, watches) to another member (default: the
   * smaller of 2 s and the call timeout). The agent sets it from its renew interval.
   */
  failoverAfterMs?: number;
  /** Hears each move to another member (the agent logs it). */
  onMemberChange?: (change: MemberChange) => void;
}

/** How long a member that failed is passed over when choosing where to go next. */
const SUSPECT_MS = 10_000;

const COMPARE_TARGET = { createRevision: 'Create', modRevision: 'Mod', value: 'Value' } as const;

/**
 * One etcd member and the etcd3 client that talks to it alone. The client is made on first use and
 * thrown away when the registry leaves the member: closing it ends every stream still waiting on a
 * member that stopped answering.
 */
class Member {
  private clientRef: Etcd3 | undefined;
  /** Until when the member is passed over after a failure (epoch ms). */
  suspectUntil = 0;
  /** Rejects each call in flight on this member, for when the registry leaves it. */
  private readonly inFlight = new Set<(err: Error) => void>();

  constructor(
    readonly endpoint: string,
    private readonly makeClient: (endpoint: string) => Etcd3,
  ) {}

  get client(): Etcd3 {
    this.clientRef ??= this.makeClient(this.endpoint);
    return this.clientRef;
  }

  /**
   * Settles with `call`, or rejects as soon as the registry leaves this member. Each call holds its
   * own entry only while it runs (one promise shared by every call would keep a reaction per call
   * for as long as the member serves: an agent makes one a second).
   */
  race<T>(call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.inFlight.add(reject);
      call.then(resolve, reject).finally(() => this.inFlight.delete(reject));
    });
  }

  /** Fails the calls in flight with `err` and closes the client (its streams with it). */
  leave(err: Error): void {
    for (const reject of this.inFlight) reject(err);
    this.inFlight.clear();
    const client = this.clientRef;
    this.clientRef = undefined;
    // Closing an etcd3 client leaves calls already on the wire running, and a watch stream has no
    // deadline: on a member that stopped answering it would hold the connection (and the process)
    // until gRPC's keep-alive gave up on it, up to 15 s. End it now, as etcd3 itself does on a stream
    // error (etcd3 1.1.2 has no public way to: its watch manager is a field of the client).
    (client as unknown as { watchManager?: { stream?: { cancel(): void } } } | undefined)?.watchManager?.stream?.cancel();
    client?.close();
  }

  close(): void {
    this.clientRef?.close();
    this.clientRef = undefined;
  }
}

/** A watch the registry holds open, on the member it was opened on. */
interface OpenWatch {
  member: Member;
  prefix: string;
  /** Ends the watch with an error its handlers hear (the owner re-lists and watches again). */
  fail(err: Error): void;
  cancel(): Promise<void>;
}

/**
 * Registry on a real etcd v3 cluster through etcd3 1.1.2 (earlier versions can elect two leaders).
 *
 * Every call, lease keep-alive and watch goes to one member at a time. etcd3 picks a member at random
 * for each call and keeps a stream on whichever member it opened it, and gRPC's keep-alive ping
 * (10 s plus 5 s) notices a member that stopped answering only after a short lease has expired. So
 * the registry keeps one etcd3 client per member and chooses itself: when the member in use leaves a
 * keep-alive or probe unanswered `failoverAfterMs` after its last answer, lets any call run out its
 * timeout, or refuses the connection, it is left (its calls in flight fail over, its streams are
 * closed, its watches end so their owners re-list and watch again) and the next member that has not
 * failed recently is used. While watches are open and nothing else proved the member alive for half
 * of `failoverAfterMs`, a cheap linearizable read does.
 * See docs/decisions/0018-etcd-member-failover.md.
 */
export class EtcdRegistry implements Registry {
  readonly kind = 'etcd' as const;
  readonly description: string;
  /** Milliseconds allowed for one call. */
  readonly timeoutMs: number;
  /** Milliseconds the member in use may leave a call unanswered before the registry moves on. */
  readonly failoverAfterMs: number;
  private closed = false;
  private readonly members: Member[];
  private active: number;
  private readonly watches = new Set<OpenWatch>();
  private readonly errorContext: ErrorContext;
  private readonly onMemberChange: ((change: MemberChange) => void) | undefined;
  /** The last failure, so a call refused by the open circuit breaker can say why it opened. */
  private lastFailure: RegistryUnavailableError | RegistryAuthError | undefined;
  /** When the member in use last answered (epoch ms). */
  private lastAnswerAt = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(options: EtcdRegistryOptions) {
    if (options.endpoints.length === 0) throw new Error('etcd registry needs at least one endpoint');
    this.timeoutMs = options.callTimeoutMs ?? 5000;
    this.failoverAfterMs = Math.min(options.failoverAfterMs ?? 2000, this.timeoutMs);
    this.onMemberChange = options.onMemberChange;
    this.description = options.endpoints.map(redactUrl).join(',');
    this.errorContext = {
      endpoint: this.description,
      timeoutMs: this.timeoutMs,
      tls: Boolean(options.tls?.ca || options.tls?.cert) || options.endpoints.some((e) => e.startsWith('https:')),
      clientCert: Boolean(options.tls?.cert),
      answered: false,
    };
    const timeoutMs = this.timeoutMs;
    const credentials = loadCredentials(options.tls);
    const makeClient = (endpoint: string) =>
      new Etcd3({
        hosts: [endpoint],
        credentials,
        auth:
          options.username !== undefined
            ? {
                username: options.username,
                password: options.password ?? '',
                callOptions: () => ({ deadline: Date.now() + timeoutMs }),
              }
            : undefined,
        // Unary calls get a deadline; streams (watch, keep-alive) must not, they are long-lived.
        defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
        dialTimeout: timeoutMs,
        faultHandling: {
          // etcd3's default breaker stays open 5 s after 3 failures; we keep it short so an agent
          // notices a restarted etcd within a second.
          host: () =>
            circuitBreaker(handleWhen(isRecoverableError), {
              halfOpenAfter: 500,
              breaker: new ConsecutiveBreaker(3),
            }),
          // No retry inside etcd3: the registry moves to another member itself (see call()).
          global: retry(handleWhen(isRecoverableError), { maxAttempts: 0 }),
          // etcd3 1.1.2 types this as cockatiel 1's IBackoff; cockatiel 3's backoff instance has the same shape.
          watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
        },
        grpcOptions: {
          // etcd rejects pings more often than every 5 s (too_many_pings); 10 s finds a dead peer in 15 s,
          // which is why the registry does not rely on it to leave a hung member.
          'grpc.keepalive_time_ms': 10_000,
          'grpc.keepalive_timeout_ms': 5_000,
          'grpc.initial_reconnect_backoff_ms': 100,
          'grpc.max_reconnect_backoff_ms': 1_000,
        },
      });
    this.members = options.endpoints.map((e) => new Member(e, makeClient));
    // Agents of one fleet spread over the members instead of all starting on the first.
    this.active = Math.floor(Math.random() * this.members.length);
  }

  /** The etcd3 client of the member in use, for etcd-only operations (compaction in tests, doctor). */
  get client(): Etcd3 {
    return this.members[this.active]!.client;
  }

  /** The endpoint of the member in use. */
  get activeEndpoint(): string {
    return redactUrl(this.members[this.active]!.endpoint);
  }

  async get(key: string): Promise<KeyValue | null> {
    const res = await this.call('get', (c) => c.kv.range({ key: Buffer.from(key) }));
    const kv = res.kvs[0];
    return kv ? toKeyValue(kv) : null;
  }

  /** Every key under `prefix`; at `revision` when given (etcd keeps history until compaction). */
  async list(prefix: string, revision?: number): Promise<ListResult> {
    const res = await this.call('list', (c) =>
      c.kv.range({
        key: Buffer.from(prefix),
        range_end: prefixEnd(prefix),
        sort_order: 'Ascend',
        sort_target: 'Key',
        ...(revision !== undefined ? { revision: String(revision) } : {}),
      }),
    );
    return { kvs: res.kvs.map(toKeyValue), revision: Number(res.header.revision) };
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<number> {
    const res = await this.call('put', (c) =>
      c.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: options.lease ?? '0' }),
    );
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.call('delete', (c) => c.kv.deleteRange({ key: Buffer.from(key) }));
    return Number(res.deleted) > 0;
  }

  async txn(compare: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    const res = await this.call('txn', (c) =>
      c.kv.txn({
        compare: compare.map((cmp) => ({
          key: Buffer.from(cmp.key),
          target: COMPARE_TARGET[cmp.target],
          result: 'Equal',
          ...(cmp.target === 'createRevision'
            ? { create_revision: String(cmp.equals) }
            : cmp.target === 'modRevision'
              ? { mod_revision: String(cmp.equals) }
              : { value: Buffer.from(String(cmp.equals)) }),
        })),
        success: ops.map((op) =>
          op.type === 'put'
            ? { request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease ?? '0' } }
            : { request_delete_range: { key: Buffer.from(op.key) } },
        ),
        failure: [],
      }),
    );
    return { succeeded: res.succeeded, revision: Number(res.header.revision) };
  }

  async grantLease(ttlSeconds: number): Promise<RegistryLease> {
    const ttl = Math.max(1, Math.round(ttlSeconds));
    // Through the lease service itself rather than etcd3's Lease object, which is bound to the client
    // (so to the member) that granted it: a lease lives in the cluster, and its keep-alives must be
    // free to go to whichever member is in use.
    const res = await this.call('lease grant', (c) => c.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }));
    return new EtcdLease(this, String(res.ID), ttl);
  }

  async leaseCount(): Promise<number> {
    const res = await this.call('lease list', (c) => c.leaseClient.leaseLeases());
    return res.leases.length;
  }

  watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): WatchHandle {
    const member = this.members[this.active]!;
    // Previous values make a delete event say what was deleted (the contract's prevValue, as the memory
    // registry gives it). The cost is a second copy of each small value on put events, and only on changes.
    const watcher = member.client.watch().prefix(prefix).startRevision(String(fromRevision)).withPreviousKV().watcher();
    let done = false;
    let cancelled = false;
    const open: OpenWatch = {
      member,
      prefix,
      fail: (err) => {
        if (done) return;
        done = true;
        this.watches.delete(open);
        // Detach it from etcd3's watch manager before the member's client is closed: a watcher left
        // attached would have the manager reconnect to the closed client every few seconds, forever.
        // Nothing waits for the member to confirm.
        void watcher.cancel().catch(() => undefined);
        handlers.onError?.(err);
      },
      cancel: async () => {
        cancelled = true;
        if (done) return;
        done = true;
        this.watches.delete(open);
        this.armWatchdog();
        await withTimeout(watcher.cancel(), this.timeoutMs).catch(() => undefined);
      },
    };
    this.watches.add(open);
    this.armWatchdog();
    watcher.on('connected', () => {
      if (done) return;
      this.answered(member);
      handlers.onConnected?.();
    });
    watcher.on('disconnected', (err: Error) => {
      if (done) return;
      const mapped = this.failure(err);
      // A member that resets or refuses the stream is left now, not when the next call finds out.
      if (memberFailed(err) && mapped instanceof RegistryUnavailableError) this.leave(member, mapped.detail);
      if (!done) handlers.onDisconnected?.(mapped);
    });
    watcher.on('data', (res) => {
      if (done || res.events.length === 0) return;
      this.answered(member);
      const events: WatchEvent[] = res.events.map((ev) =>
        ev.type === 'Put'
          ? { type: 'put', kv: toKeyValue(ev.kv) }
          : {
              type: 'delete',
              key: ev.kv.key.toString(),
              modRevision: Number(ev.kv.mod_revision),
              prevValue: ev.prev_kv?.value.toString(),
            },
      );
      handlers.onEvents(events, Number(res.header.revision));
    });
    watcher.on('error', (err: Error) => {
      if (done) return;
      done = true;
      this.watches.delete(open);
      this.armWatchdog();
      // etcd cancels a watch whose start revision was compacted away with an empty cancel_reason, and
      // etcd3 1.1.2 drops the response's compact_revision: all we get is "Watcher canceled: ".
      if (/^Watcher canceled:\s*$/.test(err.message) || /compact/i.test(err.message)) {
        void this.findCompactRevision(prefix, fromRevision).then((revision) => {
          if (!cancelled) handlers.onCompacted(revision);
        });
      } else handlers.onError?.(err);
    });
    return { cancel: () => open.cancel() };
  }

  /**
   * The oldest revision still readable (etcd's compact revision), found by bisecting reads between a
   * revision known to be compacted and the head, since etcd3 does not pass it on. It reads the watched
   * prefix's own key, so a user whose role covers only the namespace may do it.
   */
  private async findCompactRevision(prefix: string, compacted: number): Promise<number> {
    const key = Buffer.from(prefix);
    const readable = async (revision: number) => {
      try {
        await this.call('compaction probe', (c) => c.kv.range({ key, revision: String(revision), count_only: true }));
        return true;
      } catch (err) {
        if (err instanceof RegistryUnavailableError && /compacted/i.test(err.detail)) return false;
        throw err;
      }
    };
    try {
      let lo = compacted;
      let hi = Number((await this.call('compaction probe', (c) => c.kv.range({ key, count_only: true }))).header.revision);
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (await readable(mid)) hi = mid;
        else lo = mid;
      }
      return hi;
    } catch {
      // Unreachable right now: the compact revision is at least the one after the start revision.
      return compacted + 1;
    }
  }

  async status(): Promise<RegistryStatus> {
    const res = await this.call('status', (c) => c.maintenance.status());
    return { revision: Number(res.header.revision), version: res.version, endpoint: this.description };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.watchdog);
    await Promise.all([...this.watches].map((w) => withTimeout(w.cancel(), 500).catch(() => undefined)));
    this.watches.clear();
    for (const m of this.members) m.close();
  }

  /**
   * Runs one call on the member in use, with a hard deadline, and maps etcd3's errors onto the
   * registry's. When that member does not answer (or refuses the connection), it is left and the call
   * runs again on the next member, once per member at most: a call that reached a member that then
   * stopped answering cannot have been applied by a cluster that member was cut off from, and the
   * calls that could apply twice (a put, a guarded transaction) mean the same the second time.
   * `timeoutMs` bounds each attempt (default: the call timeout). `what` names the call at its call
   * site; messages leave it out, since "no answer" is the same for every call.
   */
  async call<T>(
    what: string,
    fn: (client: Etcd3, attemptMs: number) => Promise<T>,
    options: { timeoutMs?: number; sinceLastAnswer?: boolean } = {},
  ): Promise<T> {
    void what;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let last: Error | undefined;
    let leaderChanges = 0;
    for (let attempt = 0; attempt < this.members.length; attempt++) {
      if (this.closed) break;
      const member = this.members[this.active]!;
      // With `sinceLastAnswer`, the budget counts from the member's last answer rather than from now:
      // a member answering a keep-alive every renew interval that then goes silent is left
      // `timeoutMs` after its last answer, not `timeoutMs` after the next keep-alive is sent. At least
      // half the budget either way, so a call is never sent with no time to answer. With one member
      // there is nowhere to move, so it gets the whole budget.
      const attemptMs =
        options.sinceLastAnswer && this.lastAnswerAt > 0 && this.members.length > 1
          ? Math.round(Math.min(timeoutMs, Math.max(timeoutMs / 2, this.lastAnswerAt + timeoutMs - Date.now())))
          : timeoutMs;
      try {
        // gRPC's own deadline fires first for unary calls; this one catches streams and stuck calls.
        const result = await withTimeout(member.race(fn(member.client, attemptMs)), attemptMs + 250, `no answer within ${attemptMs}ms`);
        this.answered(member);
        return result;
      } catch (err) {
        // Leaving a member for an election would spend it on nothing and, with another member
        // already suspect, could move onto the one that hung.
        if (isLeaderChange(err) && leaderChanges < LEADER_CHANGE_RETRY.times && !this.closed) {
          leaderChanges++;
          attempt--;
          await new Promise((r) => setTimeout(r, LEADER_CHANGE_RETRY.pauseMs));
          continue;
        }
        const mapped = this.failure(err, attemptMs);
        last = mapped;
        if (!memberFailed(err) || !(mapped instanceof RegistryUnavailableError) || this.members.length === 1) throw mapped;
        this.leave(member, mapped.detail);
      }
    }
    throw last ?? new RegistryUnavailableError(this.description, 'registry closed');
  }

  /** A member answered: it is alive, and the registry's first answer settles how resets read. */
  private answered(member: Member): void {
    this.errorContext.answered = true;
    if (member === this.members[this.active]) this.lastAnswerAt = Date.now();
  }

  /**
   * Leaves `member` if it is still the one in use: fails its calls in flight (they run again on the
   * next member), closes its client, ends the watches opened on it, and moves to the next member that
   * has not failed in the last {@link SUSPECT_MS} (with all of them failed, the one that failed first).
   */
  private leave(member: Member, reason: string): void {
    if (this.members.length === 1 || member !== this.members[this.active] || this.closed) return;
    const now = Date.now();
    member.suspectUntil = now + SUSPECT_MS;
    let next = -1;
    for (let step = 1; step < this.members.length; step++) {
      const i = (this.active + step) % this.members.length;
      if (this.members[i]!.suspectUntil <= now) {
        next = i;
        break;
      }
    }
    const allFailing = next < 0;
    if (allFailing) {
      const others = this.members.map((m, i) => ({ m, i })).filter(({ i }) => i !== this.active);
      next = others.reduce((a, b) => (b.m.suspectUntil < a.m.suspectUntil ? b : a)).i;
    }
    const from = redactUrl(member.endpoint);
    this.active = next;
    this.lastAnswerAt = 0;
    const to = redactUrl(this.members[next]!.endpoint);
    const err = new RegistryUnavailableError(from, `${reason}; moved to ${to}`);
    for (const w of [...this.watches]) if (w.member === member) w.fail(err);
    member.leave(err);
    this.onMemberChange?.({ from, to, reason, allFailing });
    this.armWatchdog();
  }

  /**
   * While watches are open, proves the member in use alive when nothing else did for half of
   * `failoverAfterMs`: a watch on a member that stopped answering is otherwise just quiet. The probe
   * is a linearizable read (it needs the raft leader, so a member cut off from the others fails it
   * too) of a watched prefix, which the user's role is sure to allow.
   */
  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
    if (this.closed || this.members.length === 1 || this.watches.size === 0) return;
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      void this.probe().finally(() => this.armWatchdog());
    }, Math.max(50, Math.floor(this.failoverAfterMs / 4)));
    this.watchdog.unref();
  }

  /** Probes the member in use once it has been silent for half of `failoverAfterMs`. */
  private async probe(): Promise<void> {
    const open = [...this.watches][0];
    if (this.probing || !open || Date.now() - this.lastAnswerAt < this.failoverAfterMs / 2) return;
    this.probing = true;
    try {
      await this.call(
        'probe',
        (c, ms) => c.kv.range({ key: Buffer.from(open.prefix), count_only: true, limit: 1 }, { deadline: Date.now() + ms }),
        { timeoutMs: this.failoverAfterMs, sinceLastAnswer: true },
      );
    } catch {
      // Left and moved on inside call(); a registry-wide outage is the watches' owners' to report.
    } finally {
      this.probing = false;
    }
  }

  /** Maps an error, remembering connection failures for the circuit breaker's refusals. */
  private failure(err: unknown, timeoutMs = this.timeoutMs): Error {
    if (isBrokenCircuitError(err)) {
      // The breaker opened after consecutive failures and refuses calls for a moment without trying:
      // report the failure that opened it (an auth refusal stays one), not cockatiel's wording.
      const last = this.lastFailure;
      if (last instanceof RegistryAuthError) return new RegistryAuthError(last.message);
      return new RegistryUnavailableError(this.description, `${last ? last.detail : 'recent calls failed'} (failing fast for a moment)`);
    }
    const mapped = mapError({ ...this.errorContext, timeoutMs }, err);
    if (mapped instanceof RegistryUnavailableError || mapped instanceof RegistryAuthError) this.lastFailure = mapped;
    return mapped;
  }
}

class EtcdLease implements RegistryLease {
  constructor(
    private readonly registry: EtcdRegistry,
    readonly id: string,
    readonly ttl: number,
  ) {}

  /**
   * One keep-alive on a stream of its own, on the member in use (etcd3's keepaliveOnce does the same
   * on whichever member its client picks). A member that leaves it unanswered until `timeoutMs` after
   * its last answer (at least half of `timeoutMs` after sending) is left and the keep-alive sent again
   * on the next one.
   */
  async keepAliveOnce(options: { timeoutMs?: number } = {}): Promise<number> {
    const timeoutMs = options.timeoutMs ?? this.registry.timeoutMs;
    const res = await this.registry.call(
      'lease keep-alive',
      async (c, attemptMs) => {
        const stream = await c.leaseClient.leaseKeepAlive({ deadline: Date.now() + attemptMs });
        try {
          return await new Promise<{ TTL: string }>((resolve, reject) => {
            stream.on('data', resolve);
            stream.on('error', (err: Error) => reject(castGrpcError(err)));
            stream.write({ ID: this.id });
          });
        } finally {
          stream.end();
        }
      },
      { timeoutMs, sinceLastAnswer: true },
    );
    // etcd answers a keep-alive of a lease it no longer has with TTL 0.
    if (Number(res.TTL) <= 0) throw new LeaseLostError(this.id);
    return Number(res.TTL);
  }

  async revoke(): Promise<void> {
    await this.registry.call('lease revoke', (c) => c.leaseClient.leaseRevoke({ ID: this.id })).catch((err: unknown) => {
      if (!(err instanceof LeaseLostError)) throw err;
    });
  }
}

/**
 * Whether an error says the member did not serve the call (no answer in time, connection refused or
 * reset, no raft leader on its side, its breaker open, or left meanwhile), so another member may; not
 * an answer such as "compacted", "permission denied" or "lease not found", which any member would give.
 */
function memberFailed(err: unknown): boolean {
  if (err instanceof RegistryUnavailableError || isBrokenCircuitError(err)) return true;
  if (err instanceof EtcdLeaseInvalidError) return false;
  // etcd3's recoverable errors: UNAVAILABLE (refused, reset, "no leader", "request timed out"),
  // DEADLINE_EXCEEDED, CANCELLED, ABORTED, INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED.
  if (err instanceof Error && isRecoverableError(err)) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /^no answer within|deadline exceeded|ECONNREFUSED|ECONNRESET|No connection established|Failed to connect/i.test(message);
}

function toKeyValue(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    lease: String(kv.lease ?? '0'),
  };
}


function loadCredentials(tls: EtcdRegistryOptions['tls']) {
  if (!tls || (!tls.ca && !tls.cert && !tls.key)) return undefined;
  if (!tls.ca) throw new Error('etcd TLS needs a CA file (--etcd-ca)');
  if (Boolean(tls.cert) !== Boolean(tls.key)) throw new Error('etcd client TLS needs both --etcd-cert and --etcd-key');
  return {
    rootCertificate: readCredentialFile('etcd', 'CA', tls.ca),
    privateKey: tls.key ? readCredentialFile('etcd', 'key', tls.key) : undefined,
    certChain: tls.cert ? readCredentialFile('etcd', 'certificate', tls.cert) : undefined,
  };
}


/** What error messages may say about the client; never a credential. */
interface ErrorContext {
  /** Endpoints without userinfo. */
  endpoint: string;
  timeoutMs: number;
  /** TLS is configured (a CA, a client certificate or an https endpoint). */
  tls: boolean;
  /** A client certificate is configured. */
  clientCert: boolean;
  /** Some call has succeeded: a later reset is a dropped connection, not a TLS mismatch. */
  answered: boolean;
}

/**
 * Maps etcd3 and gRPC errors to the registry's, with one short line naming the endpoint: credential and
 * trust problems (which retrying will not fix) become {@link RegistryAuthError}, requests etcd refuses
 * as invalid {@link RegistryRequestError}, everything else {@link RegistryUnavailableError}. The messages carry no secret: etcd's and OpenSSL's texts name
 * neither the password nor key material, and the endpoint is redacted.
 */
function mapError(ctx: ErrorContext, err: unknown): Error {
  if (err instanceof LeaseLostError || err instanceof RegistryUnavailableError || err instanceof RegistryAuthError)
    return err;
  if (err instanceof EtcdLeaseInvalidError) return new LeaseLostError(String(err.message.replace(/\D/g, '') || '?'));
  const message = err instanceof Error ? err.message : String(err);
  if (
    err instanceof EtcdPermissionDeniedError ||
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdInvalidAuthTokenError ||
    err instanceof EtcdRoleNotGrantedError ||
    err instanceof EtcdUserNotFoundError
  ) {
    const detail = grpcGist(message);
    const hint = /permission denied/i.test(detail) ? " (the user's role must grant readwrite on the namespace prefix)" : '';
    return new RegistryAuthError(`registry ${ctx.endpoint} refused: ${detail}${hint}`);
  }
  if (/user name is empty/i.test(message)) {
    // etcd with authentication enabled, and no user configured.
    return new RegistryAuthError(
      `registry ${ctx.endpoint} refused: it requires authentication; set --etcd-username and --etcd-password`,
    );
  }
  if (err instanceof Error && /requested lease not found/i.test(message)) return new LeaseLostError('?');
  // etcd answered and refused the request as such (credential refusals, also INVALID_ARGUMENT, are
  // mapped above): a limit of this server, not an outage.
  if (err instanceof GRPCInvalidArgumentError) {
    const detail = grpcGist(message);
    const limit = /too many operations in txn/i.test(detail) ? " (etcd's --max-txn-ops)" : /request is too large/i.test(detail) ? " (etcd's --max-request-bytes)" : '';
    return new RegistryRequestError(ctx.endpoint, `${detail}${limit}`);
  }
  const tls = tlsRegistryError(ctx.endpoint, message, { clientCert: ctx.clientCert });
  if (tls) return tls;
  // A plain etcd may simply reset a TLS ClientHello instead of answering it with garbage; before any
  // call has succeeded, that reset is the same mismatch as "wrong version number".
  if (ctx.tls && !ctx.answered && /ECONNRESET/.test(message)) {
    return new RegistryUnavailableError(
      ctx.endpoint,
      'TLS handshake failed: the server does not speak TLS on this port (use an http:// endpoint for a plain server)',
    );
  }
  return asUnavailable(ctx, err);
}

/** gRPC's "3 INVALID_ARGUMENT: etcdserver: authentication failed, …" without the codes. */
function grpcGist(message: string): string {
  return message
    .split('\n')[0]!
    .replace(/^\d+ [A-Z_]+: /, '')
    .replace(/^etcdserver: /, '')
    .slice(0, 200);
}

function asUnavailable(ctx: ErrorContext, err: unknown): RegistryUnavailableError {
  if (err instanceof RegistryUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // gRPC says "Deadline exceeded after 1.501s,name resolution: 0.001s,…,Waiting for LB pick": the
  // timings are noise to an operator; what matters is that nobody answered in time.
  // (etcd's own "etcdserver: request timed out", a server-side verdict, keeps its words below.)
  if (/deadline exceeded|^no answer within/i.test(message)) {
    return new RegistryUnavailableError(ctx.endpoint, `no answer within ${ctx.timeoutMs}ms`);
  }
  // "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1 (…)."
  const short = grpcGist(message)
    .replace(/^No connection established\. Last error: /i, '')
    .replace(/^Error: /, '')
    .replace(/\s*Resolution note:.*$/, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/, '')
    .replace(/\.$/, '');
  // grpc-js says only "Failed to connect" when a plain client meets a TLS server.
  const hint = !ctx.tls && /^Failed to connect$/i.test(short) ? ' (if the server requires TLS, use https:// and --etcd-ca)' : '';
  return new RegistryUnavailableError(ctx.endpoint, `${short || 'no connection'}${hint}`);
}

/**
 * Rejects after `ms` unless the promise settles first. The timer keeps the process alive on purpose
 * (it is cleared as soon as the promise settles): an awaited call ends in its answer or in this
 * rejection, never in node exiting mid-call because nothing else held the event loop.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message = `timed out after ${ms}ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
