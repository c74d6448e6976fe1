import { Agent, request, type Dispatcher } from 'undici';
import { ServiceNotFoundError } from '../cluster/admin.js';
import type { LeaderInfo } from '../cluster/leader.js';
import { formatLabelSelector, type Selection } from '../cluster/selector.js';
import type { ServiceFilter, ServiceList } from '../cluster/topology.js';
import type { AdminIntent, ClusterEvent, ClusterTopology, ServiceRecord } from '../types.js';
import {
  agentHealthAnswer,
  AnswerShapeError,
  auditAnswer,
  checked,
  clusterEvent,
  forgetAnswer,
  leaderAnswer,
  resignAnswer,
  serviceHealthAnswer,
  serviceListAnswer,
  serviceRecord,
  setEnabledAnswer,
  statusAnswer,
  topologyAnswer,
  type Check,
} from './agent-answers.js';
import {
  AgentRequestError,
  AgentUnavailableError,
  intentFromAudit,
  NOT_AN_AGENT,
  setEnabledSummary,
  statusCounts,
  TargetError,
  type AgentStatus,
  type AgentTarget,
  type AuditResult,
  type ClusterClient,
  type EventsOptions,
  type ForgetRequestOptions,
  type ForgetSummary,
  type ResignRequestOptions,
  type ResignSummary,
  type ServiceHealthResult,
  type SetEnabledRequest,
  type SetEnabledSummary,
  type StatusResult,
} from './cluster-contract.js';
import { readCredentialFile } from '../registry/credential-files.js';
import type { SseHandlers } from './sse-reader.js';

/** The id {@link AgentClient.keyAccess} asks to disable: no service has it, and the request is refused before that matters. */
const KEY_PROBE_ID = 'proxy-stone-sd-key-probe';

/** The agent's `GET /health` answer, with its HTTP status (200 ok, 503 degraded). */
export interface AgentHealthResult {
  httpStatus: number;
  status: 'ok' | 'degraded';
  registry: { reachable: boolean };
  view: { stale: boolean; lastUpdate: number };
  registered: boolean;
  isLeader: boolean;
}

/**
 * What an API key may do on an agent. `write`: `allowed` (an operator key), `refused` (a viewer key,
 * or an unknown one when `read` is false too), `disabled` (the agent has no key at all, so nobody
 * may write), `unknown` (an answer this client does not recognise, in `message`).
 */
export interface KeyAccess {
  read: boolean;
  write: 'allowed' | 'refused' | 'disabled' | 'unknown';
  /** The agent's words when something was refused. */
  message?: string;
}

/** The PEM contents of an agent's TLS files, read once; a file that cannot be read is one line naming it. */
function agentTlsFiles(tls: NonNullable<AgentTarget['tls']>): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  try {
    return {
      ...(tls.ca ? { ca: readCredentialFile('agent', 'CA', tls.ca) } : {}),
      ...(tls.cert ? { cert: readCredentialFile('agent', 'certificate', tls.cert) } : {}),
      ...(tls.key ? { key: readCredentialFile('agent', 'key', tls.key) } : {}),
    };
  } catch (err) {
    // A path the user gave (--agent-ca, a context's agentTls): a usage error, exit 2.
    throw new TargetError((err as Error).message);
  }
}

/** Longest silence accepted on an event stream; the agent sends a `: ping` comment every 15 s. */
const STREAM_IDLE_MS = 60_000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;

/**
 * The cluster as one agent's HTTP API sees it (`/service-discovery/...`). Every request carries the
 * API key when one is given and is bounded by the target's timeout; the event stream is SSE, resumed
 * with `Last-Event-ID` after an interruption.
 */
export class AgentClient implements ClusterClient {
  readonly kind = 'agent' as const;
  readonly description: string;
  private readonly base: string;
  private readonly dispatcher: Agent;

  constructor(private readonly target: AgentTarget) {
    this.base = apiBase(target.url);
    this.description = this.base.replace(/\/service-discovery$/, '');
    this.dispatcher = new Agent({
      ...(target.tls ? { connect: agentTlsFiles(target.tls) } : {}),
      connectTimeout: target.timeoutMs,
      headersTimeout: target.timeoutMs,
      bodyTimeout: target.timeoutMs,
      // Short: a CLI makes a few calls and exits; idle sockets must not hold the process.
      keepAliveTimeout: 1_000,
    });
  }

  /** The agent's own `GET /service-discovery/status`: the seed's fields and this agent's details. */
  agentStatus(): Promise<AgentStatus> {
    return this.json<AgentStatus>('GET', '/status', statusAnswer);
  }

  /** `status` in the registry's shape, as this agent sees the cluster, with its own status as `agent`. */
  async status(): Promise<StatusResult> {
    // One after the other: a URL that is not an agent is named by its answer to /status, the seed's.
    const agent = await this.agentStatus();
    const topology = await this.topology();
    return {
      // An agent from before the cluster section: its name is unknown, the namespace the default's.
      clusterName: agent.cluster?.name ?? '',
      namespace: agent.cluster?.namespace ?? '',
      registry: {
        kind: agent.registry.kind,
        endpoints: agent.registry.endpoints,
        reachable: agent.registry.reachable,
        version: null,
        revision: agent.view.revision,
        ...(agent.registry.reachable ? {} : { error: `unreachable from the agent${agent.view.stale ? ' (its view is stale)' : ''}` }),
      },
      leader: topology.leader,
      counts: statusCounts(topology),
      agent,
    };
  }

  listServices(filter: ServiceFilter = {}): Promise<ServiceList> {
    const query = new URLSearchParams();
    if (filter.status) query.set('status', filter.status);
    if (filter.region !== undefined) query.set('region', filter.region);
    if (filter.zone !== undefined) query.set('zone', filter.zone);
    if (filter.healthy) query.set('healthy', 'true');
    setSelection(query, filter);
    const qs = query.toString();
    return this.json<ServiceList>('GET', `/services${qs ? `?${qs}` : ''}`, serviceListAnswer);
  }

  getService(id: string): Promise<ServiceRecord> {
    return this.json<ServiceRecord>('GET', `/services/${encodeURIComponent(id)}`, serviceRecord, undefined, id);
  }

  getServiceHealth(id: string): Promise<ServiceHealthResult> {
    return this.json<ServiceHealthResult>('GET', `/services/${encodeURIComponent(id)}/health`, serviceHealthAnswer, undefined, id);
  }

  async getIntent(id: string): Promise<AdminIntent | null> {
    const [service, audit] = await Promise.all([this.getService(id), this.audit({ serviceId: id, limit: 100 })]);
    return intentFromAudit(service, audit.entries);
  }

  topology(selection: Selection = {}): Promise<ClusterTopology> {
    const query = new URLSearchParams();
    setSelection(query, selection);
    const qs = query.toString();
    return this.json<ClusterTopology>('GET', `/topology${qs ? `?${qs}` : ''}`, topologyAnswer);
  }

  leader(): Promise<LeaderInfo> {
    return this.json<LeaderInfo>('GET', '/leader', leaderAnswer);
  }

  resignLeader(request: ResignRequestOptions = {}): Promise<ResignSummary> {
    const body = { ...(request.term !== undefined ? { term: request.term } : {}), ...(request.reason !== undefined ? { reason: request.reason } : {}) };
    return this.json<ResignSummary>('POST', '/leader/resign', resignAnswer, body);
  }

  async forget(id: string, request: ForgetRequestOptions = {}): Promise<ForgetSummary> {
    const body = { ...(request.force !== undefined ? { force: request.force } : {}), ...(request.reason !== undefined ? { reason: request.reason } : {}) };
    const res = await this.json<ForgetSummary>('POST', `/services/${encodeURIComponent(id)}/forget`, forgetAnswer, body, id);
    return { serviceId: res.serviceId, removed: { intent: res.removed.intent, healthHold: res.removed.healthHold }, live: res.live };
  }

  async setEnabled(id: string, enabled: boolean, request: SetEnabledRequest = {}): Promise<SetEnabledSummary> {
    // The agent records the API key's name as the actor; `request.actor` is for the registry path.
    const body = {
      ...(request.reason !== undefined ? { reason: request.reason } : {}),
      ...(request.expiresAt !== undefined ? { expiresAt: request.expiresAt } : {}),
      ...(request.drainTimeout !== undefined ? { drainTimeout: request.drainTimeout } : {}),
      ...(request.force !== undefined ? { force: request.force } : {}),
    };
    const res = await this.json<SetEnabledSummary & Record<string, unknown>>(
      'POST',
      `/services/${encodeURIComponent(id)}/${enabled ? 'enable' : 'disable'}`,
      setEnabledAnswer,
      body,
      id,
    );
    // An agent older than `reasonUpdated` in its answer just never says so.
    return setEnabledSummary(res);
  }

  /**
   * The agent's own verdict, `GET /health` (public, served beside the API rather than under
   * `/service-discovery`): 200 when registered with a current view, 503 when not. Both are answers.
   */
  async agentHealth(): Promise<AgentHealthResult> {
    const res = await this.send('GET', '/health', undefined, { root: true });
    const text = await bodyText(res.body).catch((err: unknown) => {
      throw this.unavailable(err);
    });
    const body = parseJson(text);
    if (res.statusCode === 200 || res.statusCode === 503) {
      if (body === undefined) throw this.notAnAgent('GET', '/health', `answered ${mediaType(res)}, not JSON`);
      try {
        return { ...checked<Omit<AgentHealthResult, 'httpStatus'>>(agentHealthAnswer, body), httpStatus: res.statusCode };
      } catch (err) {
        if (err instanceof AnswerShapeError) throw this.notAnAgent('GET', '/health', `answered: ${err.message}`);
        throw err;
      }
    }
    const message = textField(body, 'message') ?? `HTTP ${res.statusCode}`;
    throw new AgentRequestError(this.description, res.statusCode, `http_${res.statusCode}`, `agent ${this.description} answered /health with ${message}`);
  }

  /**
   * What this client's API key may do on the agent, found out without changing anything: a read
   * (`GET /audit?limit=1`) and a disable the API must refuse after authorising it (of an id no
   * service has, with a body that fails validation: keys are checked before the body is even read,
   * so the answer is 400 for a key that may write, 403 for one that may not, 401 for an unknown one).
   */
  async keyAccess(): Promise<KeyAccess> {
    const read = await this.send('GET', '/audit?limit=1');
    const readBody = parseJson(await bodyText(read.body).catch(() => ''));
    if (read.statusCode === 401 || read.statusCode === 403) {
      return { read: false, write: 'refused', message: textField(readBody, 'message') ?? `HTTP ${read.statusCode}` };
    }
    const write = await this.send('POST', `/services/${encodeURIComponent(KEY_PROBE_ID)}/disable`, { keyProbe: true });
    const writeBody = parseJson(await bodyText(write.body).catch(() => ''));
    const message = textField(writeBody, 'message') ?? `HTTP ${write.statusCode}`;
    const code = textField(writeBody, 'error');
    // Authorised, then refused for the body (or, were the body ever accepted, for the unknown id).
    if (write.statusCode === 400 || (write.statusCode === 404 && code === 'not_found')) return { read: true, write: 'allowed' };
    if (write.statusCode === 403 && code === 'writes_disabled') return { read: true, write: 'disabled', message };
    if (write.statusCode === 401 || write.statusCode === 403) return { read: true, write: 'refused', message };
    return { read: true, write: 'unknown', message };
  }

  audit(options: { serviceId?: string; limit?: number } = {}): Promise<AuditResult> {
    const query = new URLSearchParams();
    if (options.serviceId) query.set('serviceId', options.serviceId);
    query.set('limit', String(Math.min(1000, Math.max(1, options.limit ?? 100))));
    return this.json<AuditResult>('GET', `/audit?${query.toString()}`, auditAnswer);
  }

  async events(onEvent: (event: ClusterEvent) => void, signal: AbortSignal, options: EventsOptions = {}): Promise<void> {
    let lastEventId: string | undefined;
    let connected = false;
    let delay = RECONNECT_MIN_MS;
    const types = options.types ? `types=${encodeURIComponent([...options.types].join(','))}` : '';
    while (!signal.aborted) {
      // `since` on the first connection; a reconnection resumes from the last event seen instead.
      const since = options.since !== undefined && lastEventId === undefined ? `since=${options.since}` : '';
      const query = [types, since].filter(Boolean).join('&');
      try {
        await this.stream(`/events${query ? `?${query}` : ''}`, lastEventId, signal, {
          onOpen: () => {
            if (connected && lastEventId !== undefined) options.onNotice?.(`event stream resumed after ${lastEventId}`);
            connected = true;
            delay = RECONNECT_MIN_MS;
            options.onOpen?.();
          },
          onRetry: (ms) => {
            delay = Math.min(RECONNECT_MAX_MS, Math.max(RECONNECT_MIN_MS, ms));
          },
          onFrame: (frame) => {
            if (frame.id !== undefined) lastEventId = frame.id;
            if (frame.event === 'reset') {
              options.onNotice?.('the agent could not resume from the last event seen: events may have been missed; re-list to be sure');
              return;
            }
            if (frame.event === 'truncated') {
              const reason = textField(parseJson(frame.data), 'reason');
              options.onNotice?.(`${reason ?? "the agent's event history does not reach back that far"}: earlier events are not shown`);
              return;
            }
            if (frame.event === 'overflow') {
              options.onNotice?.('the agent cut the stream off (this reader fell behind); resuming');
              return;
            }
            if (frame.event !== 'message' || frame.data === '') return;
            const event = parseEvent(frame.data);
            if (typeof event === 'string') {
              // One event this client cannot read (another version?) is skipped, said once per event.
              options.onNotice?.(`skipped an event from ${this.description} that this CLI cannot read (${event})`);
              return;
            }
            if (!options.types || options.types.has(event.type)) onEvent(event);
          },
        });
        if (!signal.aborted) options.onNotice?.(`event stream from ${this.description} ended; reconnecting`);
      } catch (err) {
        if (signal.aborted) break;
        if (!connected) throw err;
        options.onNotice?.(`event stream from ${this.description} interrupted (${(err as Error).message}); reconnecting`);
      }
      await sleep(delay, signal);
      delay = Math.min(RECONNECT_MAX_MS, delay * 2);
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.destroy().catch(() => undefined);
  }

  /**
   * One JSON request; a 2xx answer must pass `check` (else this is no agent). A 404 on a route naming
   * `serviceId` is a ServiceNotFoundError.
   */
  private async json<T>(method: 'GET' | 'POST', path: string, check: Check, body?: object, serviceId?: string): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await bodyText(res.body).catch((err: unknown) => {
      throw this.unavailable(err);
    });
    const parsed = parseJson(text);
    if (res.statusCode >= 200 && res.statusCode < 300) {
      if (parsed === undefined) throw this.notAnAgent(method, `/service-discovery${path}`, `answered ${mediaType(res)}, not JSON`);
      try {
        return checked<T>(check, parsed);
      } catch (err) {
        if (err instanceof AnswerShapeError) throw this.notAnAgent(method, `/service-discovery${path}`, `answered: ${err.message}`);
        throw err;
      }
    }
    const error = { error: textField(parsed, 'error'), message: textField(parsed, 'message') };
    if (res.statusCode === 404 && serviceId !== undefined && error.error === 'not_found' && !/^no route/.test(error.message ?? '')) {
      throw new ServiceNotFoundError(serviceId);
    }
    const message = error.message ?? `HTTP ${res.statusCode}`;
    const what =
      res.statusCode === 401 || res.statusCode === 403
        ? `agent ${this.description} refused the request: ${message}`
        : res.statusCode === 404
          ? `agent ${this.description} has no ${path.split('?')[0]}: ${message}; is this a proxy-stone-sd agent URL?`
          : `agent ${this.description} answered HTTP ${res.statusCode}: ${message}`;
    throw new AgentRequestError(this.description, res.statusCode, error.error ?? `http_${res.statusCode}`, what);
  }

  /** `path` is under `/service-discovery`, or with `root` under the agent's base URL (`/health`). */
  private async send(method: 'GET' | 'POST', path: string, body?: object, options: { root?: boolean } = {}): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.target.apiKey) headers.authorization = `Bearer ${this.target.apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await request(`${options.root ? this.description : this.base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        dispatcher: this.dispatcher,
        signal: AbortSignal.timeout(this.target.timeoutMs),
      });
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** Opens the SSE stream and feeds frames until it ends, fails, or `signal` aborts. */
  private async stream(
    path: string,
    lastEventId: string | undefined,
    signal: AbortSignal,
    handlers: SseHandlers & { onOpen(): void },
  ): Promise<void> {
    // Only streams need the SSE parser: loaded here, not with the client.
    const { sseReader } = await import('./sse-reader.js');
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.target.apiKey) headers.authorization = `Bearer ${this.target.apiKey}`;
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.base}${path}`, {
        method: 'GET',
        headers,
        dispatcher: this.dispatcher,
        signal,
        headersTimeout: this.target.timeoutMs,
        bodyTimeout: STREAM_IDLE_MS,
      });
    } catch (err) {
      throw this.unavailable(err);
    }
    if (res.statusCode !== 200) {
      const text = await bodyText(res.body).catch(() => '');
      const error = parseJson(text);
      throw new AgentRequestError(
        this.description,
        res.statusCode,
        textField(error, 'error') ?? `http_${res.statusCode}`,
        `agent ${this.description} refused the event stream: ${textField(error, 'message') ?? `HTTP ${res.statusCode}`}`,
      );
    }
    if (mediaType(res) !== 'text/event-stream') {
      // Not read: it may never end. Destroying it must not become an unhandled error event.
      res.body.on('error', () => undefined);
      res.body.destroy();
      throw this.notAnAgent('GET', `/service-discovery${path.split('?')[0]}`, `answered ${mediaType(res)}, not an event stream`);
    }
    handlers.onOpen();
    const reader = sseReader(handlers);
    try {
      for await (const chunk of res.body) reader.push(chunk as Buffer);
    } catch (err) {
      if (signal.aborted) return;
      throw this.unavailable(err);
    }
  }

  /** The URL answers, but not as an agent: what it answered instead, and to what. Exit 1. */
  private notAnAgent(method: string, path: string, what: string): AgentRequestError {
    return new AgentRequestError(this.description, 200, NOT_AN_AGENT, `not a proxy-stone-sd agent at ${this.description} (${method} ${path} ${what})`);
  }

  private unavailable(err: unknown): Error {
    if (err instanceof AgentRequestError || err instanceof AgentUnavailableError) return err;
    return new AgentUnavailableError(this.description, reason(err, this.target.timeoutMs));
  }
}

/**
 * Fetches a service's health (with its probe history) from the URL its own agent advertises. No API
 * key is sent: the URL comes from the registry, and a key must never go to a host the user did not name.
 */
export async function fetchServiceHealth(url: string, timeoutMs: number): Promise<ServiceHealthResult> {
  const dispatcher = new Agent({ connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  try {
    const res = await request(url, { headers: { accept: 'application/json' }, dispatcher, signal: AbortSignal.timeout(timeoutMs) }).catch(
      (err: unknown) => {
        throw new AgentUnavailableError(url, reason(err, timeoutMs));
      },
    );
    const text = await bodyText(res.body);
    if (res.statusCode !== 200) throw new AgentRequestError(url, res.statusCode, `http_${res.statusCode}`, `HTTP ${res.statusCode}`);
    let parsed: ServiceHealthResult;
    try {
      parsed = checked<ServiceHealthResult>(serviceHealthAnswer, parseJson(text));
    } catch (err) {
      if (!(err instanceof AnswerShapeError)) throw err;
      throw new AgentRequestError(url, res.statusCode, NOT_AN_AGENT, `not a health history (${err.message})`);
    }
    return parsed;
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

/** `http://host:8790`, `http://host:8790/`, `http://host:8790/service-discovery` all name the same API. */
function apiBase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TargetError(`--agent ${url}: expected an http(s) URL such as http://127.0.0.1:8790`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TargetError(`--agent ${url}: expected an http(s) URL such as http://127.0.0.1:8790`);
  }
  parsed.search = '';
  parsed.hash = '';
  const path = parsed.pathname.replace(/\/+$/, '').replace(/\/service-discovery$/, '');
  return `${parsed.origin}${path}/service-discovery`;
}

/**
 * Most bytes of one JSON answer read from an agent: a listing of 10,000 records is about 10 MB; a
 * server that sends more is not an agent to trust with this process's memory.
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** An answer's body as text, refused (and the connection dropped) past {@link MAX_ANSWER_BYTES}. */
async function bodyText(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).byteLength;
    if (size > MAX_ANSWER_BYTES) {
      body.destroy();
      throw new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The event of one `data:` line, or why it is none. */
function parseEvent(data: string): ClusterEvent | string {
  const parsed = parseJson(data);
  if (parsed === undefined) return 'not JSON';
  try {
    return checked<ClusterEvent>(clusterEvent, parsed);
  } catch (err) {
    if (err instanceof AnswerShapeError) return err.message;
    throw err;
  }
}

/**
 * A string field of an answer's body (`message`, `error`), if it is one: cut to one short line, since
 * the body may come from anything that answers HTTP.
 */
function textField(body: unknown, key: string): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const value = (body as Record<string, unknown>)[key];
  if (typeof value !== 'string') return undefined;
  const line = value.replace(/\s+/g, ' ');
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** The media type of a response (`text/html`), for a message; `no content type` when it has none. */
function mediaType(res: Dispatcher.ResponseData): string {
  const header = res.headers['content-type'];
  const value = (Array.isArray(header) ? header[0] : header)?.split(';')[0]?.trim().toLowerCase();
  return value ? value.slice(0, 60) : 'no content type';
}

function reason(err: unknown, timeoutMs: number): string {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e?.code ?? e?.cause?.code;
  if (e?.name === 'TimeoutError' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return `no answer within ${timeoutMs}ms`;
  }
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve host (${code})`;
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  const message = e?.message ?? String(err);
  return message.split('\n')[0]!;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `?tag=` and `?label=` as the API reads them (src/cluster/selector.ts). */
function setSelection(query: URLSearchParams, selection: Selection): void {
  if (selection.tags?.length) query.set('tag', selection.tags.join(','));
  if (selection.labels?.length) query.set('label', formatLabelSelector(selection.labels));
}
