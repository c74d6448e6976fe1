import { readFileSync } from 'node:fs';
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
  type IKeyValue,
  type Lease,
  type Watcher,
} from 'etcd3';
import {
  LeaseLostError,
  RegistryAuthError,
  RegistryRequestError,
  RegistryUnavailableError,
  type KeyValue,
  type ListResult,
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
}

const COMPARE_TARGET = { createRevision: 'Create', modRevision: 'Mod', value: 'Value' } as const;

/** Registry on a real etcd v3 cluster through etcd3 1.1.2 (earlier versions can elect two leaders). */
export class EtcdRegistry implements Registry {
  readonly kind = 'etcd' as const;
  readonly description: string;
  /** The underlying client, for callers that need etcd-only operations (compaction in tests, doctor). */
  readonly client: Etcd3;
  /** Milliseconds allowed for one call. */
  readonly timeoutMs: number;
  private closed = false;
  private readonly watchers = new Set<Watcher>();
  private readonly errorContext: ErrorContext;
  /** The last failure, so a call refused by the open circuit breaker can say why it opened. */
  private lastFailure: RegistryUnavailableError | RegistryAuthError | undefined;

  constructor(options: EtcdRegistryOptions) {
    if (options.endpoints.length === 0) throw new Error('etcd registry needs at least one endpoint');
    this.timeoutMs = options.callTimeoutMs ?? 5000;
    this.description = options.endpoints.map(redactUrl).join(',');
    this.errorContext = {
      endpoint: this.description,
      timeoutMs: this.timeoutMs,
      tls: Boolean(options.tls?.ca || options.tls?.cert) || options.endpoints.some((e) => e.startsWith('https:')),
      clientCert: Boolean(options.tls?.cert),
      answered: false,
    };
    const timeoutMs = this.timeoutMs;
    this.client = new Etcd3({
      hosts: options.endpoints,
      credentials: loadCredentials(options.tls),
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
        // One extra attempt lets a call move to another member of a multi-member cluster.
        global: retry(handleWhen(isRecoverableError), {
          maxAttempts: options.endpoints.length > 1 ? options.endpoints.length - 1 : 0,
          backoff: new ConstantBackoff(50),
        }),
        // etcd3 1.1.2 types this as cockatiel 1's IBackoff; cockatiel 3's backoff instance has the same shape.
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
      },
      grpcOptions: {
        // etcd rejects pings more often than every 5 s (too_many_pings); 10 s finds a dead peer in 15 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      },
    });
  }

  async get(key: string): Promise<KeyValue | null> {
    const res = await this.call('get', () => this.client.kv.range({ key: Buffer.from(key) }));
    const kv = res.kvs[0];
    return kv ? toKeyValue(kv) : null;
  }

  /** Every key under `prefix`; at `revision` when given (etcd keeps history until compaction). */
  async list(prefix: string, revision?: number): Promise<ListResult> {
    const res = await this.call('list', () =>
      this.client.kv.range({
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
    const res = await this.call('put', () =>
      this.client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: options.lease ?? '0' }),
    );
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.call('delete', () => this.client.kv.deleteRange({ key: Buffer.from(key) }));
    return Number(res.deleted) > 0;
  }

  async txn(compare: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    const res = await this.call('txn', () =>
      this.client.kv.txn({
        compare: compare.map((c) => ({
          key: Buffer.from(c.key),
          target: COMPARE_TARGET[c.target],
          result: 'Equal',
          ...(c.target === 'createRevision'
            ? { create_revision: String(c.equals) }
            : c.target === 'modRevision'
              ? { mod_revision: String(c.equals) }
              : { value: Buffer.from(String(c.equals)) }),
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
    const lease = this.client.lease(Math.max(1, Math.round(ttlSeconds)), { autoKeepAlive: false });
    // A lost lease emits 'lost'; we report loss through keepAliveOnce instead, so swallow the event.
    lease.on('lost', () => undefined);
    const id = await this.call('lease grant', () => lease.grant());
    return new EtcdLease(this, lease, String(id), Math.max(1, Math.round(ttlSeconds)));
  }

  async leaseCount(): Promise<number> {
    const res = await this.call('lease list', () => this.client.leaseClient.leaseLeases());
    return res.leases.length;
  }

  watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): WatchHandle {
    // Previous values make a delete event say what was deleted (the contract's prevValue, as the memory
    // registry gives it). The cost is a second copy of each small value on put events, and only on changes.
    const watcher = this.client.watch().prefix(prefix).startRevision(String(fromRevision)).withPreviousKV().watcher();
    this.watchers.add(watcher);
    let done = false;
    watcher.on('connected', () => handlers.onConnected?.());
    watcher.on('disconnected', (err: Error) => {
      if (!done) handlers.onDisconnected?.(this.failure(err));
    });
    watcher.on('data', (res) => {
      if (done || res.events.length === 0) return;
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
    let cancelled = false;
    watcher.on('error', (err: Error) => {
      if (done) return;
      done = true;
      this.watchers.delete(watcher);
      // etcd cancels a watch whose start revision was compacted away with an empty cancel_reason, and
      // etcd3 1.1.2 drops the response's compact_revision: all we get is "Watcher canceled: ".
      if (/^Watcher canceled:\s*$/.test(err.message) || /compact/i.test(err.message)) {
        void this.findCompactRevision(prefix, fromRevision).then((revision) => {
          if (!cancelled) handlers.onCompacted(revision);
        });
      } else handlers.onError?.(err);
    });
    return {
      cancel: async () => {
        cancelled = true;
        if (done) return;
        done = true;
        this.watchers.delete(watcher);
        await withTimeout(watcher.cancel(), this.timeoutMs).catch(() => undefined);
      },
    };
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
        await this.client.kv.range({ key, revision: String(revision), count_only: true });
        return true;
      } catch (err) {
        if (err instanceof Error && /compacted/i.test(err.message)) return false;
        throw err;
      }
    };
    try {
      let lo = compacted;
      let hi = Number((await this.client.kv.range({ key, count_only: true })).header.revision);
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
    const res = await this.call('status', () => this.client.maintenance.status());
    return { revision: Number(res.header.revision), version: res.version, endpoint: this.description };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.watchers].map((w) => withTimeout(w.cancel(), 500).catch(() => undefined)));
    this.watchers.clear();
    this.client.close();
  }

  /**
   * Runs one call with a hard deadline and maps etcd3's errors onto the registry's. `what` names the
   * call at its call site; messages leave it out, since "no answer" is the same for every call.
   */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    void what;
    try {
      // gRPC's own deadline fires first; this one only catches a call stuck outside gRPC.
      const result = await withTimeout(fn(), this.timeoutMs + 250, `no answer within ${this.timeoutMs}ms`);
      this.errorContext.answered = true;
      return result;
    } catch (err) {
      throw this.failure(err);
    }
  }

  /** Maps an error, remembering connection failures for the circuit breaker's refusals. */
  private failure(err: unknown): Error {
    if (isBrokenCircuitError(err)) {
      // The breaker opened after consecutive failures and refuses calls for a moment without trying:
      // report the failure that opened it (an auth refusal stays one), not cockatiel's wording.
      const last = this.lastFailure;
      if (last instanceof RegistryAuthError) return new RegistryAuthError(last.message);
      return new RegistryUnavailableError(this.description, `${last ? last.detail : 'recent calls failed'} (failing fast for a moment)`);
    }
    const mapped = mapError(this.errorContext, err);
    if (mapped instanceof RegistryUnavailableError || mapped instanceof RegistryAuthError) this.lastFailure = mapped;
    return mapped;
  }
}

class EtcdLease implements RegistryLease {
  constructor(
    private readonly registry: EtcdRegistry,
    private readonly lease: Lease,
    readonly id: string,
    readonly ttl: number,
  ) {}

  async keepAliveOnce(): Promise<number> {
    const res = await this.registry.call('lease keep-alive', () =>
      this.lease.keepaliveOnce({ deadline: Date.now() + this.registry.timeoutMs }),
    );
    return Number(res.TTL);
  }

  async revoke(): Promise<void> {
    await this.registry.call('lease revoke', () => this.lease.revoke()).catch((err: unknown) => {
      if (!(err instanceof LeaseLostError)) throw err;
    });
  }
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
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read etcd ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  return {
    rootCertificate: read(tls.ca, 'CA'),
    privateKey: tls.key ? read(tls.key, 'key') : undefined,
    certChain: tls.cert ? read(tls.cert, 'certificate') : undefined,
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

/** Rejects after `ms` unless the promise settles first; the timer never keeps the process alive. */
export function withTimeout<T>(promise: Promise<T>, ms: number, message = `timed out after ${ms}ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
