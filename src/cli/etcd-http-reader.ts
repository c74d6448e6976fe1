/**
 * Read-only access to etcd through its HTTP/JSON gateway (`POST /v3/kv/range`, served on the client
 * port by etcd 3.4 and later), over `node:http`.
 *
 * Why: a one-shot CLI read through etcd3 pays for loading gRPC and protobuf on every start, which
 * costs more than the whole rest of the command; the gateway answers the same ranges with the same
 * revisions. Writes and watches stay on etcd3 (`EtcdRegistry`), where transactions and streams belong.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { prefixEnd, redactUrl as redact } from '../registry/endpoint.js';
import { isLeaderChange, LEADER_CHANGE_RETRY, RegistryAuthError, RegistryUnavailableError, tlsRegistryError, type KeyValue, type ListResult } from '../registry/types.js';
import { TargetError } from './cluster-contract.js';

export interface EtcdHttpReaderOptions {
  endpoints: string[];
  /** Milliseconds allowed for one call, across every endpoint tried (each gets its share). */
  timeoutMs: number;
  username?: string;
  password?: string;
  /** PEM file paths for https endpoints. */
  tls?: { ca?: string; cert?: string; key?: string };
}

/** One member's answer to `/v3/maintenance/status`. */
export interface EtcdMemberStatus {
  endpoint: string;
  version: string;
  revision: number;
  memberId: string;
  leaderId: string;
  dbSize: number;
  raftIndex: number;
}

/** The gateway's error body: the gRPC status as JSON. */
interface GatewayError {
  error?: string;
  message?: string;
  code?: number;
}

interface RangeResponse {
  header?: { revision?: string };
  kvs?: { key: string; value?: string; create_revision?: string; mod_revision?: string; lease?: string }[];
}

interface TxnResponse {
  header?: { revision?: string };
  responses?: { response_range?: RangeResponse | null }[];
}

/** gRPC codes etcd uses for refused credentials: InvalidArgument (bad password), PermissionDenied, Unauthenticated. */
const AUTH_MESSAGE = /user name is empty|authentication failed|permission denied|invalid auth token|auth.*not enabled|user name not found/i;

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: GatewayError,
  ) {
    super(body.message ?? body.error ?? `HTTP ${status}`);
  }
}

/** Read-only etcd client over the HTTP gateway. Tries each endpoint in turn within one deadline. */
export class EtcdHttpReader {
  readonly description: string;
  private readonly endpoints: string[];
  private readonly timeoutMs: number;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  private readonly tlsOptions: https.AgentOptions;
  /** Made on the first https request: an http-only reader never loads TLS (start-up, src/cli/fast-path.ts). */
  private httpsAgent: https.Agent | undefined;
  private token: string | undefined;
  /** Index of the endpoint that answered last: ask it first next time. */
  private preferred = 0;

  constructor(private readonly options: EtcdHttpReaderOptions) {
    if (options.endpoints.length === 0) throw new TargetError('no etcd endpoint given');
    this.endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.description = this.endpoints.map(redact).join(',');
    this.timeoutMs = options.timeoutMs;
    // Read now, so a missing or unreadable file is reported before any request.
    this.tlsOptions = readTls(options.tls);
  }

  /** Every key under `prefix`, sorted by key, with the revision it was read at. */
  async list(prefix: string, revision?: number): Promise<ListResult> {
    const res = await this.kv({
      key: b64(prefix),
      range_end: prefixEnd(prefix).toString('base64'),
      ...(revision ? { revision: String(revision) } : {}),
    });
    return { kvs: (res.kvs ?? []).map(toKeyValue), revision: Number(res.header!.revision ?? 0) };
  }

  /**
   * Several prefixes read at one revision: the first at the newest revision, the others at that same
   * revision, so the result is one consistent snapshot without reading what lies between them.
   */
  async listConsistent(prefixes: readonly string[]): Promise<ListResult> {
    const [first, ...rest] = prefixes;
    if (first === undefined) return { kvs: [], revision: 0 };
    try {
      return await this.listInOneTxn(prefixes);
    } catch (err) {
      // An etcd whose --max-txn-ops is below the number of prefixes: the first prefix, then the others at its revision.
      if (!/too many operations in txn/i.test((err as Error).message)) throw err;
    }
    const head = await this.list(first);
    const others = await Promise.all(rest.map((p) => this.list(p, head.revision)));
    return { kvs: [...head.kvs, ...others.flatMap((o) => o.kvs)], revision: head.revision };
  }

  /** A transaction of range requests: every prefix read at one revision, in one round trip. */
  private async listInOneTxn(prefixes: readonly string[]): Promise<ListResult> {
    const isTxnAnswer = (body: unknown): body is TxnResponse => {
      const res = body && typeof body === 'object' ? (body as TxnResponse) : undefined;
      return Boolean(res?.header) && Array.isArray(res?.responses) && res.responses.length === prefixes.length && res.responses.every((r) => isRangeAnswer(r?.response_range));
    };
    const res = (
      await this.call('/v3/kv/txn', { success: prefixes.map((p) => ({ request_range: { key: b64(p), range_end: prefixEnd(p).toString('base64') } })) }, undefined, isTxnAnswer)
    ).body;
    // isTxnAnswer checked every range.
    const kvs = res.responses!.flatMap((r) => r.response_range!.kvs ?? []);
    return { kvs: kvs.map(toKeyValue), revision: Number(res.header?.revision ?? 0) };
  }

  async get(key: string): Promise<KeyValue | null> {
    const kv = (await this.kv({ key: b64(key) })).kvs?.[0];
    return kv ? toKeyValue(kv) : null;
  }

  /** Status of the first member that answers (or of `endpoint` only). */
  async status(endpoint?: string): Promise<EtcdMemberStatus> {
    const { body, endpoint: answered } = await this.call<{
      header?: { revision?: string; member_id?: string };
      version?: string;
      leader?: string;
      dbSize?: string;
      raftIndex?: string;
    }>('/v3/maintenance/status', {}, endpoint);
    return {
      endpoint: redact(answered),
      version: body.version ?? 'unknown',
      revision: Number(body.header?.revision ?? 0),
      memberId: body.header?.member_id ?? '',
      leaderId: body.leader ?? '0',
      dbSize: Number(body.dbSize ?? 0),
      raftIndex: Number(body.raftIndex ?? 0),
    };
  }

  /**
   * `GET /health` of one endpoint, and the server's clock from the response's `Date` header (second
   * resolution) taken against the local clock at the middle of the round trip.
   */
  async health(endpoint: string): Promise<{ healthy: boolean; reason?: string; serverDate?: number; localMid: number; rttMs: number }> {
    const started = Date.now();
    const res = await this.request('GET', endpoint, '/health', undefined, this.deadline());
    const rttMs = Date.now() - started;
    const date = res.headers.date ? Date.parse(res.headers.date) : Number.NaN;
    let parsed: { health?: string; reason?: string } = {};
    try {
      parsed = JSON.parse(res.body) as typeof parsed;
    } catch {
      // not JSON: reported as unhealthy below
    }
    return {
      healthy: res.status === 200 && parsed.health === 'true',
      ...(parsed.reason ? { reason: parsed.reason } : res.status !== 200 ? { reason: `HTTP ${res.status}` } : {}),
      ...(Number.isFinite(date) ? { serverDate: date } : {}),
      localMid: started + rttMs / 2,
      rttMs,
    };
  }

  /** The endpoints as given (credentials included), for per-endpoint checks. */
  get endpointList(): readonly string[] {
    return this.endpoints;
  }

  /** Proves the credentials: authenticates when a user is configured, else reads one key. */
  async checkAuth(): Promise<'authenticated' | 'no auth'> {
    if (this.options.username !== undefined) {
      this.token = undefined;
      await this.authenticate(this.deadline());
      return 'authenticated';
    }
    await this.get('\0');
    return 'no auth';
  }

  async close(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent?.destroy();
  }

  /** A range request; its answer has etcd's shape (the member is skipped otherwise, see call). */
  private async kv(body: object): Promise<RangeResponse> {
    return (await this.call('/v3/kv/range', body, undefined, isRangeAnswer)).body;
  }

  /**
   * POSTs to the gateway: endpoints in turn within one deadline, authenticating first when configured.
   * With `accept`, a 200 answer it refuses (not etcd's shape) counts as that member failing: the next
   * one is tried, and the error says the URL does not look like etcd's.
   */
  private async call<T>(path: string, body: object, only?: string, accept?: (body: unknown) => body is T): Promise<{ body: T; endpoint: string }> {
    const deadline = this.deadline();
    if (this.options.username !== undefined && !this.token) await this.authenticate(deadline, only);
    try {
      return await this.post<T>(path, body, deadline, only, true, accept);
    } catch (err) {
      // Tokens expire (etcd's simple tokens after 5 minutes idle); get a new one once.
      if (err instanceof RegistryAuthError && this.options.username !== undefined && /invalid auth token/i.test(err.message)) {
        this.token = undefined;
        await this.authenticate(deadline, only);
        return this.post<T>(path, body, deadline, only, true, accept);
      }
      throw err;
    }
  }

  private async authenticate(deadline: number, only?: string): Promise<void> {
    const { body } = await this.post<{ token?: string }>(
      '/v3/auth/authenticate',
      { name: this.options.username, password: this.options.password ?? '' },
      deadline,
      only,
      false,
    );
    if (!body.token) throw new RegistryAuthError(`registry ${this.description} refused: authentication returned no token`);
    this.token = body.token;
  }

  private async post<T>(
    path: string,
    body: object,
    deadline: number,
    only?: string,
    withToken = true,
    accept?: (body: unknown) => body is T,
  ): Promise<{ body: T; endpoint: string }> {
    const order = only ? [only.replace(/\/+$/, '')] : this.endpoints.map((_, i) => this.endpoints[(this.preferred + i) % this.endpoints.length]!);
    let lastError = 'no endpoint tried';
    let leaderChanges = 0;
    for (let i = 0; i < order.length; i++) {
      const endpoint = order[i]!;
      const now = Date.now();
      if (now >= deadline) break;
      // Each member gets its share of what is left (at least a second), so a hung member first in
      // the list cannot spend the whole deadline while another would answer at once.
      const attemptDeadline = Math.min(deadline, now + Math.max(1000, (deadline - now) / (order.length - i)));
      let res: { status: number; body: string };
      try {
        res = await this.request('POST', endpoint, path, JSON.stringify(body), attemptDeadline, withToken ? this.token : undefined, order.length > 1 ? Math.round(attemptDeadline - now) : this.timeoutMs);
      } catch (err) {
        lastError = (err as Error).message;
        // A refused or untrusted TLS handshake is not fixed by another member or a retry: say what to set.
        const tls = tlsRegistryError(redact(endpoint), lastError, { clientCert: Boolean(this.options.tls?.cert) });
        if (tls instanceof RegistryAuthError) throw tls;
        continue; // unreachable: try the next member
      }
      const parsed = parseJson(res.body);
      if (res.status === 200 && accept && !accept(parsed)) {
        lastError = NOT_ETCD;
        continue; // a web server, not etcd's gateway: another member may be etcd's
      }
      if (res.status === 200) {
        this.preferred = Math.max(0, this.endpoints.indexOf(endpoint));
        return { body: parsed as T, endpoint };
      }
      const error = new HttpStatusError(res.status, (parsed ?? {}) as GatewayError);
      const code = error.body.code;
      if (code === 7 || code === 16 || res.status === 401 || res.status === 403 || AUTH_MESSAGE.test(error.message)) {
        throw new RegistryAuthError(`registry ${this.description} refused: ${error.message.replace(/^etcdserver: /, '')}`);
      }
      // The same member answers once the election is over.
      if (isLeaderChange(error) && leaderChanges < LEADER_CHANGE_RETRY.times && Date.now() + LEADER_CHANGE_RETRY.pauseMs < deadline) {
        leaderChanges++;
        lastError = error.message;
        await new Promise((r) => setTimeout(r, LEADER_CHANGE_RETRY.pauseMs));
        i--;
        continue;
      }
      // Unavailable / no leader on this member: another member may answer.
      if (code === 14 || res.status === 503 || res.status === 502) {
        lastError = error.message;
        continue;
      }
      throw new Error(`etcd ${redact(endpoint)} answered ${path} with HTTP ${res.status}: ${error.message}`);
    }
    const where = only ? redact(only) : this.description;
    if (Date.now() >= deadline && lastError === 'no endpoint tried') lastError = `no answer within ${this.timeoutMs}ms`;
    throw new RegistryUnavailableError(where, lastError);
  }

  private deadline(): number {
    return Date.now() + this.timeoutMs;
  }

  /** One HTTP exchange, bounded by `deadline`; rejects with a short reason on any transport failure. */
  private request(
    method: 'GET' | 'POST',
    endpoint: string,
    path: string,
    body: string | undefined,
    deadline: number,
    token?: string,
    /** What "no answer within" names: the call's timeout, or this attempt's share of it. */
    budgetMs = this.timeoutMs,
  ): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
    const url = new URL(path, `${endpoint}/`);
    const secure = url.protocol === 'https:';
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    if (token) headers.authorization = token;
    // etcd takes credentials only through --etcd-username/--etcd-password, never from the URL.
    url.username = '';
    url.password = '';
    const remaining = Math.max(1, deadline - Date.now());
    return new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(url, { method, headers, agent: secure ? (this.httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: 8, ...this.tlsOptions })) : this.httpAgent });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${budgetMs}ms`)), remaining);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(shortReason(err)));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > MAX_ANSWER_BYTES) req.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES / (1024 * 1024)} MiB`));
          else chunks.push(c);
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(new Error(shortReason(err)));
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
        });
      });
      req.end(body);
    });
  }
}

/** The largest answer read from a member: far above any namespace's (records are at most 128 KiB each), and bounded. */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** What a member that answered 200 with anything but etcd's answer is told: the URL is likely not etcd's. */
const NOT_ETCD = "answered with something other than etcd's answer (is this an etcd client URL?)";

/**
 * Whether a body is a range answer. The gateway's JSON is read as hostile as any other input: an
 * answer of another shape (an HTML page, `{}`, a key that is not a string) is not etcd's, and is
 * reported as such rather than read as an empty registry.
 */
function isRangeAnswer(body: unknown): body is RangeResponse {
  const res = body && typeof body === 'object' ? (body as RangeResponse) : undefined;
  const kvs: unknown = res?.kvs ?? [];
  return Boolean(
    res?.header &&
      typeof res.header === 'object' &&
      Array.isArray(kvs) &&
      kvs.every((kv) => kv && typeof kv === 'object' && typeof (kv as { key?: unknown }).key === 'string' && ['undefined', 'string'].includes(typeof (kv as { value?: unknown }).value)),
  );
}

function toKeyValue(kv: NonNullable<RangeResponse['kvs']>[number]): KeyValue {
  return {
    key: Buffer.from(kv.key, 'base64').toString('utf8'),
    // proto3 JSON leaves out empty values and zero numbers.
    value: kv.value ? Buffer.from(kv.value, 'base64').toString('utf8') : '',
    createRevision: Number(kv.create_revision ?? 0),
    modRevision: Number(kv.mod_revision ?? 0),
    lease: kv.lease ?? '0',
  };
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}


function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

function readTls(tls: EtcdHttpReaderOptions['tls']): https.AgentOptions {
  if (!tls || (!tls.ca && !tls.cert && !tls.key)) return {};
  if (Boolean(tls.cert) !== Boolean(tls.key)) throw new TargetError('etcd client TLS needs both --etcd-cert and --etcd-key');
  const read = (path: string | undefined, what: string, flag: string) => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new TargetError(`cannot read the etcd ${what} file ${path} (${flag}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  return { ca: read(tls.ca, 'CA', '--etcd-ca'), cert: read(tls.cert, 'certificate', '--etcd-cert'), key: read(tls.key, 'key', '--etcd-key') };
}


function shortReason(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return `connection refused (${err.message.replace(/^connect ECONNREFUSED /, '')})`;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `cannot resolve host (${err.code})`;
  return err.message.split('\n')[0]!;
}
