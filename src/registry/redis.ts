/**
 * The registry contract on Redis 7 (ioredis): one Lua script per operation (src/registry/redis-scripts.ts),
 * leases on Redis's clock, and a revision log in a Stream that watches read, woken by Pub/Sub.
 *
 * Why this file is long: the client, its leases and its watches share one connection pair and its
 * error mapping; the scripts themselves live apart.
 *
 * @module
 */
import { isIP } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { prefixEnd } from './endpoint.js';
import * as scripts from './redis-scripts.js';
import {
  LeaseLostError,
  RegistryAuthError,
  RegistryUnavailableError,
  tlsRegistryError,
  type KeyValue,
  type ListResult,
  type Registry,
  type RegistryLease,
  type RegistryStatus,
  type RegistryWarning,
  type TxnCompare,
  type TxnOp,
  type TxnResult,
  type WatchEvent,
  type WatchHandle,
  type WatchHandlers,
} from './types.js';
import { readCredentialFile } from './credential-files.js';

export interface RedisRegistryOptions {
  /** One `redis://[user:password@]host:port[/db]` or `rediss://` URL. */
  endpoint: string;
  /** Milliseconds allowed for one call (default 5000). */
  callTimeoutMs?: number;
  /** ACL user and password when not in the URL (the URL's win). */
  username?: string;
  password?: string;
  /** PEM file of the CA that signed the server certificate (rediss://). */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Prefix of every key the store uses (default `proxy-stone-sd:`). */
  storePrefix?: string;
  /** Milliseconds between watch polls that reconcile missed Pub/Sub messages (default 1000). */
  pollIntervalMs?: number;
  /** Told once per registry when the server needs no password but one was given (`registry.auth_unneeded`). */
  onWarning?: (warning: RegistryWarning) => void;
}

const DEFAULT_PREFIX = 'proxy-stone-sd:';
/** What a least-privilege ACL user needs, as docs/redis.md gives it. */
const ACL_HINT =
  "the ACL user needs '~proxy-stone-sd:* &proxy-stone-sd:* +@read +@write -@dangerous +@scripting +@pubsub +time +info +ping'";
/** Log entries read per poll round trip. */
const POLL_BATCH = 500;

type ScriptName = 'list' | 'txn' | 'del' | 'grant' | 'keepalive' | 'revoke' | 'poll' | 'compact';
type ScriptRunner = (...args: (string | Buffer | number)[]) => Promise<unknown>;

/** One prefix watch; the registry's poller feeds it. */
interface RedisWatch {
  prefix: string;
  /** Next revision this watch has not seen. */
  next: number;
  handlers: WatchHandlers;
  ended: boolean;
  /** Whether it has been told it is connected (and not told it was disconnected since). */
  connected: boolean;
}

/**
 * Registry on one Redis server (7.0 or later) through ioredis, with the same etcd-shaped semantics as
 * the etcd and memory backends: every operation is one Lua script (see `redis-scripts.ts`), leases
 * expire by the Redis server's clock, and watches read a revision log (a Redis Stream) woken by
 * Pub/Sub and re-read on a timer, so a missed message never leaves a watcher behind.
 */
export class RedisRegistry implements Registry {
  readonly kind = 'redis' as const;
  readonly description: string;
  readonly timeoutMs: number;
  private readonly client: Redis;
  private subscriber: Redis | undefined;
  private readonly prefix: string;
  private readonly pollIntervalMs: number;
  private readonly watches = new Set<RedisWatch>();
  private closed = false;
  /** Why the connection last failed, for the message of a call refused while disconnected. */
  private lastConnectionError: Error | undefined;
  private authFailure: RegistryAuthError | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private pollAgain = false;
  /** Highest revision and the store id seen, to notice a store that lost its data. */
  private seenRevision = 0;
  private storeId: string | undefined;
  /** Whether `onWarning` has heard that the password is not needed (once per registry). */
  private authUnneededTold = false;
  /** rediss:// endpoint, and whether any call has been answered yet (for the TLS mismatch hint). */
  private readonly tls: boolean;
  /** Whether a client certificate was given, so a refused handshake can say which fix applies. */
  private readonly clientCert: boolean;
  private answered = false;

  constructor(options: RedisRegistryOptions) {
    const url = parseRedisUrl(options.endpoint);
    this.description = redactRedisUrl(options.endpoint);
    this.timeoutMs = options.callTimeoutMs ?? 5000;
    this.prefix = options.storePrefix ?? DEFAULT_PREFIX;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.tls = url.protocol === 'rediss:';
    this.clientCert = Boolean(options.tls?.cert);
    const username = (url.username ? decodeURIComponent(url.username) : options.username) || undefined;
    const password = url.password ? decodeURIComponent(url.password) : options.password;
    // A password alone goes as `AUTH default <password>`: the same as `AUTH <password>` (Redis 6+),
    // except on a server that needs no password, which refuses `AUTH <password>` (and ioredis reports
    // that with a console.warn line of its own, which no option routes or silences) but accepts
    // `AUTH default <anything>`. Whether the password was needed is asked apart: checkPasswordNeeded.
    const passwordOnly = username === undefined && password !== undefined && password !== '';
    const redisOptions: RedisOptions = {
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : 6379,
      db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
      username: passwordOnly ? 'default' : username,
      password,
      connectTimeout: this.timeoutMs,
      commandTimeout: this.timeoutMs,
      // Queued calls fail as soon as one connection attempt fails: the caller decides about retrying.
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(100 * times, 1000),
      // A refused AUTH is final until the operator fixes it; do not hammer the server.
      reconnectOnError: () => false,
      // The ready check runs INFO, which a least-privilege ACL user may not have; LOADING maps to unavailable anyway.
      enableReadyCheck: false,
      lazyConnect: true,
      ...(url.protocol === 'rediss:' ? { tls: tlsOptions(options.tls, url.hostname) } : {}),
    };
    this.client = new Redis(redisOptions);
    this.client.on('error', (err: Error) => this.noteConnectionError(err));
    this.client.on('ready', () => {
      this.lastConnectionError = undefined;
      this.authFailure = undefined;
    });
    const onWarning = options.onWarning;
    if (passwordOnly && onWarning) this.client.on('connect', () => this.checkPasswordNeeded(password, onWarning));
    const defs: Record<ScriptName, string> = {
      list: scripts.LIST,
      txn: scripts.TXN,
      del: scripts.DELETE,
      grant: scripts.GRANT,
      keepalive: scripts.KEEPALIVE,
      revoke: scripts.REVOKE,
      poll: scripts.POLL,
      compact: scripts.COMPACT,
    };
    for (const [name, lua] of Object.entries(defs)) this.client.defineCommand(`sd_${name}`, { numberOfKeys: 0, lua });
  }

  async get(key: string): Promise<KeyValue | null> {
    const exact = Buffer.concat([Buffer.from('['), Buffer.from(key)]);
    const { kvs } = await this.listRange(exact, exact);
    return kvs[0] ?? null;
  }

  async list(prefix: string): Promise<ListResult> {
    if (prefix === '') return this.listRange('-', '+');
    const end = prefixEnd(prefix);
    // prefixEnd of a prefix of only 0xff bytes is [0]: no upper bound then.
    const max = end.length === 1 && end[0] === 0 && !prefix.startsWith('\0') ? '+' : Buffer.concat([Buffer.from('('), end]);
    return this.listRange(Buffer.concat([Buffer.from('['), Buffer.from(prefix)]), max);
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<number> {
    const res = await this.txn([], [{ type: 'put', key, value, ...(options.lease ? { lease: options.lease } : {}) }]);
    return res.revision;
  }

  async delete(key: string): Promise<boolean> {
    const [existed, revision] = (await this.run('del', key)) as [number, number];
    this.afterWrite(revision);
    return existed === 1;
  }

  async txn(compare: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    const seen = new Set<string>();
    for (const op of ops) {
      // etcd rejects a txn that touches one key twice; keep the same contract.
      if (seen.has(op.key)) throw new Error(`duplicate key given in txn request: ${op.key}`);
      seen.add(op.key);
    }
    const target = { createRevision: 'c', modRevision: 'm', value: 'v' } as const;
    const args: string[] = [String(compare.length)];
    for (const c of compare) args.push(c.key, target[c.target], String(c.equals));
    args.push(String(ops.length));
    for (const op of ops) {
      if (op.type === 'put') args.push('p', op.key, op.value, op.lease ?? '0');
      else args.push('d', op.key, '', '0');
    }
    const [succeeded, revision] = (await this.run('txn', ...args)) as [number, number];
    if (succeeded === 1) this.afterWrite(revision);
    return { succeeded: succeeded === 1, revision };
  }

  async grantLease(ttlSeconds: number): Promise<RegistryLease> {
    const ttl = Math.max(1, Math.round(ttlSeconds));
    const id = (await this.run('grant', String(ttl))) as number;
    return new RedisLease(this, String(id), ttl);
  }

  async leaseCount(): Promise<number> {
    const res = (await this.run('poll', '0', '0')) as unknown[];
    return Number(res[4]);
  }

  watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): WatchHandle {
    const watch: RedisWatch = { prefix, next: fromRevision, handlers, ended: false, connected: false };
    if (this.closed) {
      watch.ended = true;
      setImmediate(() => handlers.onError?.(new RegistryUnavailableError(this.description, 'registry closed')));
    } else {
      this.watches.add(watch);
      this.ensureSubscriber();
      this.schedulePoll(0);
    }
    return {
      cancel: async () => {
        watch.ended = true;
        this.watches.delete(watch);
      },
    };
  }

  async status(): Promise<RegistryStatus> {
    const res = (await this.run('poll', '0', '0')) as unknown[];
    // A least-privilege ACL user may not run INFO: the store still answers, the version is unknown.
    const info = await this.call(() => this.client.info('server')).catch((err: unknown) => {
      if (err instanceof RegistryAuthError) return '';
      throw err;
    });
    const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
    return { revision: Number(res[0]), version, endpoint: this.description };
  }

  /** Trims the watch history before `revision`, as etcd's compaction does (tests, operators). */
  async compact(revision: number): Promise<void> {
    await this.run('compact', String(revision));
  }

  /** Raw INFO text of a section (doctor). */
  async info(section: string): Promise<string> {
    return this.call(() => this.client.info(section));
  }

  /** A CONFIG GET value, or undefined when the user may not read it (doctor). */
  async configGet(name: string): Promise<string | undefined> {
    try {
      const res = (await this.call(() => this.client.config('GET', name))) as string[];
      return res[1];
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watches) w.ended = true;
    this.watches.clear();
    if (this.pollTimer) clearTimeout(this.pollTimer);
    await Promise.all([quit(this.client), this.subscriber ? quit(this.subscriber) : undefined]);
  }

  /** Runs one script with the store prefix and maps errors. */
  async run(name: ScriptName, ...args: (string | Buffer)[]): Promise<unknown> {
    const fn = (this.client as unknown as Record<string, ScriptRunner>)[`sd_${name}`]!;
    return this.call(() => fn.call(this.client, this.prefix, ...args));
  }

  /** One call with a hard deadline (ioredis's commandTimeout does not cover connecting) and mapped errors. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new RegistryUnavailableError(this.description, 'registry closed');
    // Not connected yet, or given up after refused credentials: try (again) now, so a fixed password
    // or ACL is picked up by the next call without a restart.
    if (this.client.status === 'wait' || this.client.status === 'end') this.client.connect().catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('Command timed out')), this.timeoutMs + 250);
          timer.unref();
        }),
      ]);
      this.answered = true;
      return result;
    } catch (err) {
      throw this.mapError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  private async listRange(min: string | Buffer, max: string | Buffer): Promise<ListResult> {
    const res = (await this.run('list', min, max)) as (string | number)[];
    const kvs: KeyValue[] = [];
    for (let i = 1; i + 4 < res.length; i += 5) {
      kvs.push({
        key: String(res[i]),
        value: String(res[i + 1]),
        createRevision: Number(res[i + 2]),
        modRevision: Number(res[i + 3]),
        lease: String(res[i + 4]),
      });
    }
    return { kvs, revision: Number(res[0]) };
  }

  private afterWrite(revision: number): void {
    // Our own writes wake our watches at once, whether or not Pub/Sub delivers.
    if (this.watches.size > 0 && revision > this.seenRevision) this.schedulePoll(0);
  }

  /**
   * On each new connection, once the handshake is sent: `AUTH <password>` is answered with an error by
   * a server that needs no password, and is a harmless repeat on one that does. Written with the
   * handshake (AUTH is one of ioredis' handshake commands), so the answer comes before any call's.
   */
  private checkPasswordNeeded(password: string, onWarning: (warning: RegistryWarning) => void): void {
    if (this.authUnneededTold) return;
    this.client.auth(password).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (this.authUnneededTold || !/without any password configured|no password is set/i.test(message)) return;
      this.authUnneededTold = true;
      onWarning({
        event: 'registry.auth_unneeded',
        message: `registry ${this.description} requires no password, but one was given: it is not needed; if this server should require one, check its requirepass or ACL setup`,
      });
    });
  }

  private noteConnectionError(err: Error): void {
    const mapped = this.mapError(err);
    if (mapped instanceof RegistryAuthError) {
      this.authFailure = mapped;
      // Reconnecting in a loop cannot fix credentials: stop, and let the next call try once more.
      this.client.disconnect();
    } else this.lastConnectionError = err;
    this.disconnectWatches(mapped);
  }

  private disconnectWatches(error: Error): void {
    for (const w of this.watches) {
      if (w.ended || !w.connected) continue;
      w.connected = false;
      setImmediate(() => {
        if (!w.ended) w.handlers.onDisconnected?.(error);
      });
    }
  }

  /** A second connection in subscriber mode: PUBLISHed revisions wake the poller. */
  private ensureSubscriber(): void {
    if (this.subscriber || this.closed) return;
    const sub = this.client.duplicate({ lazyConnect: false, maxRetriesPerRequest: null, commandTimeout: undefined });
    this.subscriber = sub;
    sub.on('error', () => undefined);
    sub.on('message', () => this.schedulePoll(0));
    // After a reconnect ioredis re-subscribes; poll at once for whatever was published meanwhile.
    sub.on('ready', () => this.schedulePoll(0));
    sub.subscribe(`${this.prefix}events`).catch(() => undefined);
  }

  private schedulePoll(delayMs: number): void {
    if (this.closed || this.watches.size === 0) return;
    if (this.polling) {
      if (delayMs === 0) this.pollAgain = true;
      return;
    }
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        const again = this.pollAgain;
        this.pollAgain = false;
        this.schedulePoll(again ? 0 : this.nextPollDelay);
      });
    }, delayMs);
    this.pollTimer.unref();
  }

  /** Milliseconds until the next poll: the reconciliation interval, or sooner for a lease deadline. */
  private nextPollDelay = 1000;

  /** Reads the log for every watch and delivers what each has not seen. */
  private async poll(): Promise<void> {
    const live = [...this.watches].filter((w) => !w.ended);
    if (live.length === 0) return;
    let res: unknown[];
    try {
      // A start revision of 0 (or less) means "from the next write", fixed at the first poll: such
      // watches need no history.
      const from = Math.min(...live.map((w) => (w.next > 0 ? w.next : Number.MAX_SAFE_INTEGER)));
      const none = from === Number.MAX_SAFE_INTEGER;
      res = (await this.run('poll', String(none ? 1 : from), String(none ? 0 : POLL_BATCH))) as unknown[];
    } catch (err) {
      this.disconnectWatches(err as Error);
      this.nextPollDelay = Math.min(this.pollIntervalMs, 500);
      return;
    }
    const [revision, compact, storeId, nextDeadline] = [Number(res[0]), Number(res[1]), String(res[2]), Number(res[3])];
    const entries = (res.slice(5) as [string, string[]][]).map(([id, fields]) => ({ revision: Number(id.split('-')[0]), events: decodeEvents(fields, Number(id.split('-')[0])) }));
    // A store that lost its data (restart without persistence, FLUSHALL) rewinds or changes its id:
    // nobody can resume in it, so every watch re-lists.
    const lost = (this.storeId !== undefined && storeId !== '' && storeId !== this.storeId) || revision < this.seenRevision;
    if (storeId !== '') this.storeId = storeId;
    this.seenRevision = revision;
    const full = entries.length === POLL_BATCH;
    for (const w of live) {
      if (w.ended) continue;
      if (w.next <= 0) w.next = revision + 1;
      if (!w.connected) {
        w.connected = true;
        w.handlers.onConnected?.();
      }
      if (lost || (w.next < compact && w.next <= revision)) {
        w.ended = true;
        this.watches.delete(w);
        w.handlers.onCompacted(Math.max(compact, revision + (lost ? 1 : 0)));
        continue;
      }
      for (const entry of entries) {
        if (w.ended || entry.revision < w.next) continue;
        w.next = entry.revision + 1;
        const events = entry.events.filter((e) => (e.type === 'put' ? e.kv.key : e.key).startsWith(w.prefix));
        if (events.length === 0) continue;
        try {
          w.handlers.onEvents(events.map(cloneEvent), entry.revision);
        } catch (err) {
          setImmediate(() => {
            throw err;
          });
        }
      }
      // Nothing under this revision range was left unread: the watch is level with the store.
      if (!full) w.next = Math.max(w.next, revision + 1);
    }
    this.nextPollDelay = full
      ? 0
      : nextDeadline >= 0
        ? Math.min(this.pollIntervalMs, nextDeadline + 5)
        : this.pollIntervalMs;
  }

  private mapError(err: unknown): Error {
    if (err instanceof LeaseLostError || err instanceof RegistryUnavailableError || err instanceof RegistryAuthError) return err;
    const message = err instanceof Error ? err.message : String(err);
    const lease = /^LEASELOST (\S+)/.exec(message) ?? /LEASELOST (\S+)/.exec(message);
    if (lease) return new LeaseLostError(lease[1]!);
    if (/WRONGPASS|invalid username-password|invalid password/i.test(message)) {
      return new RegistryAuthError(`registry ${this.description} refused: wrong user name or password`);
    }
    if (/NOAUTH/i.test(message)) {
      return new RegistryAuthError(`registry ${this.description} refused: it requires a password (put it in the URL or set SERVICE_DISCOVERY_PASSWORD)`);
    }
    if (/NOPERM|can't run this command/i.test(message)) {
      const what = message.split('\n')[0]!.replace(/^(NOPERM|ERR) /, '').replace(/\s*script: [0-9a-f]{40}, on @user_script:\d+\.?$/, '');
      return new RegistryAuthError(
        `registry ${this.description} refused: ${what} (${ACL_HINT})`,
      );
    }
    if (this.authFailure) return new RegistryAuthError(this.authFailure.message);
    const tls = tlsRegistryError(this.description, message, { clientCert: this.clientCert, flagPrefix: 'registry' });
    if (tls) return tls;
    // A TLS 1.3 server checks the client certificate after the client's side of the handshake is
    // done, so a call written meanwhile may meet the reset before the alert that says why. On a TLS
    // port (a plain one never answers a ClientHello) that had not answered yet, the certificate is
    // the likely cause.
    if (this.tls && !this.answered && /ECONNRESET/.test(message)) {
      const why = this.clientCert
        ? 'it may not accept the client certificate (--registry-cert must be signed by a CA the server trusts)'
        : 'it may require a client certificate (set --registry-cert and --registry-key)';
      return new RegistryAuthError(`registry ${this.description} reset the TLS connection before answering: ${why}`);
    }
    if (/Command timed out|timed out/i.test(message)) {
      // A plain Redis reads a TLS ClientHello as an unfinished command and never answers it.
      const hint = this.tls && !this.answered ? ' (if this port is not a TLS port, use redis:// instead of rediss://)' : '';
      return new RegistryUnavailableError(this.description, `no answer within ${this.timeoutMs}ms${hint}`);
    }
    if (/max retries per request|Connection is closed|Stream isn't writeable|enableOfflineQueue/i.test(message)) {
      const last = this.lastConnectionError;
      if (last) return this.mapError(last);
      return new RegistryUnavailableError(this.description, 'connection closed');
    }
    if (/LOADING/i.test(message)) return new RegistryUnavailableError(this.description, 'Redis is loading its data set');
    if (/^(ERR|NOSCRIPT|BUSY|READONLY|MISCONF|OOM)/.test(message)) {
      return new RegistryUnavailableError(this.description, message.split('\n')[0]!.slice(0, 200));
    }
    // Node's socket errors: "connect ECONNREFUSED 127.0.0.1:1".
    return new RegistryUnavailableError(this.description, message.split('\n')[0]!.replace(/^Error: /, '').slice(0, 200) || 'no connection');
  }
}

class RedisLease implements RegistryLease {
  constructor(
    private readonly registry: RedisRegistry,
    readonly id: string,
    readonly ttl: number,
  ) {}

  async keepAliveOnce(): Promise<number> {
    const ttl = Number(await this.registry.run('keepalive', this.id));
    if (ttl < 0) throw new LeaseLostError(this.id);
    return ttl;
  }

  async revoke(): Promise<void> {
    await this.registry.run('revoke', this.id);
  }
}

/** Log entry fields: five pairs per event, e (p|d), k key, v value (previous value for deletes), c create revision, l lease. */
function decodeEvents(fields: string[], revision: number): WatchEvent[] {
  const events: WatchEvent[] = [];
  for (let i = 0; i + 9 < fields.length; i += 10) {
    const type = fields[i + 1];
    const key = fields[i + 3]!;
    const value = fields[i + 5]!;
    const create = Number(fields[i + 7]);
    const lease = fields[i + 9]!;
    events.push(type === 'p' ? { type: 'put', kv: { key, value, createRevision: create, modRevision: revision, lease } } : { type: 'delete', key, modRevision: revision, prevValue: value });
  }
  return events;
}

function cloneEvent(event: WatchEvent): WatchEvent {
  return event.type === 'put' ? { type: 'put', kv: { ...event.kv } } : { ...event };
}

function tlsOptions(tls: RedisRegistryOptions['tls'], servername: string): NonNullable<RedisOptions['tls']> {
  return {
    // SNI takes host names only (RFC 6066); an IP address is checked against the certificate's IP SANs.
    ...(isIP(servername) === 0 ? { servername } : {}),
    ...(tls?.ca ? { ca: readCredentialFile('Redis', 'CA', tls.ca) } : {}),
    ...(tls?.cert ? { cert: readCredentialFile('Redis', 'certificate', tls.cert) } : {}),
    ...(tls?.key ? { key: readCredentialFile('Redis', 'key', tls.key) } : {}),
  };
}

/** Parses a redis:// or rediss:// URL, throwing one line naming what is wrong. */
export function parseRedisUrl(endpoint: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`Redis endpoint ${redactRedisUrl(endpoint)}: expected a URL such as redis://127.0.0.1:6379`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`Redis endpoint ${redactRedisUrl(endpoint)}: expected redis:// or rediss://`);
  }
  if (!url.hostname) throw new Error(`Redis endpoint ${redactRedisUrl(endpoint)}: expected a host`);
  if (url.pathname.length > 1 && !/^\/\d{1,2}$/.test(url.pathname)) {
    throw new Error(`Redis endpoint ${redactRedisUrl(endpoint)}: expected a database number as the path (e.g. /0)`);
  }
  return url;
}

/** The URL without its password (and user), for messages. */
export function redactRedisUrl(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return endpoint.replace(/\/\/[^@/]*@/, '//');
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end' || client.status === 'wait') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.quit().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 500);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
  client.disconnect();
}
