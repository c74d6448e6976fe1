/**
 * The agent's HTTP client for its own instance (the health probe, the maintenance hook): requests
 * over one kept-alive connection, on Node's `http`/`https`. The agent loads `node:http` anyway (its
 * API is fastify), while undici would add about 3.6 MB of code to every agent process for the few
 * requests it makes (decision 0003; the CLI keeps undici).
 *
 * @module
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

/** What a request returned: the status, and the body when the caller asked to keep it. */
export interface InstanceHttpResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body as text, when `keepBody` said so and it fitted in `maxBodyBytes`. */
  body?: string;
  /** Reading the body failed after the status line arrived (reset, abort). */
  bodyError?: unknown;
}

export interface InstanceHttpRequest {
  /** Default GET. Only a GET or HEAD is retried when it meets a closed keep-alive socket, unless `idempotent`. */
  method?: 'GET' | 'HEAD' | 'POST';
  /** Path (and query) on the client's origin; default the URL the client was made with. */
  path?: string;
  /** A JSON body, sent with `content-type: application/json`. */
  json?: unknown;
  /** The request may be sent twice with the same effect (a PUT-like POST). */
  idempotent?: boolean;
  /** Aborts the request, headers and body together: the caller's timeout and stop. */
  signal: AbortSignal;
  headers?: Record<string, string>;
  /** Body bytes read at most; past that the connection is dropped instead of drained. */
  maxBodyBytes: number;
  /** Whether to keep the body text, decided from the status and headers. */
  keepBody?: (statusCode: number, headers: IncomingHttpHeaders) => boolean;
}

/** A kept-alive connection to one origin; never more than one socket. */
export class InstanceHttpClient {
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;

  constructor(
    readonly url: string,
    options: { idleSocketMs?: number; tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean } } = {},
  ) {
    const secure = new URL(url).protocol === 'https:';
    // Close an idle socket before a typical server does (Node's default keep-alive is 5 s), so a
    // probe rarely meets a socket the server is closing; when it does, get() retries once.
    const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: options.idleSocketMs ?? 4000 };
    this.#agent = secure ? new https.Agent({ ...agentOptions, ...options.tls }) : new http.Agent(agentOptions);
    this.#request = secure ? https.request : http.request;
  }

  /** One request. Rejects on network errors and on abort; any status resolves. */
  async request(options: InstanceHttpRequest): Promise<InstanceHttpResponse> {
    try {
      return await this.#send(options);
    } catch (err) {
      // A reused keep-alive socket the server closed meanwhile: the request was most likely never
      // read, but only a request that may run twice is sent again.
      const e = err as { reusedSocket?: boolean; code?: string };
      const repeatable = (options.method ?? 'GET') !== 'POST' || options.idempotent === true;
      if (repeatable && e.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE') && !options.signal.aborted) return this.#send(options);
      throw err;
    }
  }

  /** Closes idle sockets; a request in flight is the caller's to abort. */
  close(): void {
    this.#agent.destroy();
  }

  #send(options: InstanceHttpRequest): Promise<InstanceHttpResponse> {
    const url = options.path === undefined ? this.url : new URL(options.path, this.url).href;
    const body = options.json === undefined ? undefined : JSON.stringify(options.json);
    const headers = body === undefined ? options.headers : { ...options.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    return new Promise((resolve, reject) => {
      const req = this.#request(url, { method: options.method ?? 'GET', agent: this.#agent, signal: options.signal, headers }, (res) => {
        const statusCode = res.statusCode ?? 0;
        const keep = options.keepBody?.(statusCode, res.headers) ?? false;
        const chunks: Buffer[] = [];
        let size = 0;
        let settled = false;
        const finish = (extra: Partial<InstanceHttpResponse>) => {
          if (settled) return;
          settled = true;
          resolve({ statusCode, headers: res.headers, ...extra });
        };
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBodyBytes) {
            // Too big to drain: drop the connection, the status has said enough.
            res.destroy();
            finish({});
            return;
          }
          if (keep) chunks.push(chunk);
        });
        res.on('end', () => finish(keep ? { body: Buffer.concat(chunks).toString('utf8') } : {}));
        res.on('error', (err) => finish({ bodyError: err }));
        res.on('close', () => {
          if (!res.complete) finish({ bodyError: options.signal.reason ?? new Error('connection closed before the body ended') });
        });
      });
      req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.end(body);
    });
  }
}
