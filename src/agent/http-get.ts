/**
 * The agent's HTTP client for its own instance: one GET over a kept-alive connection, on Node's
 * `http`/`https`. The agent loads `node:http` anyway (its API is fastify), while undici would add
 * about 3.6 MB of code to every agent process for the few requests a probe makes (decision 0003;
 * the CLI keeps undici).
 *
 * @module
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

/** What a GET returned: the status, and the body when the caller asked to keep it. */
export interface HttpGetResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The body as text, when `keepBody` said so and it fitted in `maxBodyBytes`. */
  body?: string;
  /** Reading the body failed after the status line arrived (reset, abort). */
  bodyError?: unknown;
}

export interface HttpGetOptions {
  /** Aborts the request, headers and body together: the caller's timeout and stop. */
  signal: AbortSignal;
  headers?: Record<string, string>;
  /** Body bytes read at most; past that the connection is dropped instead of drained. */
  maxBodyBytes: number;
  /** Whether to keep the body text, decided from the status and headers. */
  keepBody?: (statusCode: number, headers: IncomingHttpHeaders) => boolean;
}

/** A kept-alive connection to one origin; never more than one socket. */
export class HttpGetClient {
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;

  constructor(
    readonly url: string,
    options: { idleSocketMs?: number } = {},
  ) {
    const secure = new URL(url).protocol === 'https:';
    // Close an idle socket before a typical server does (Node's default keep-alive is 5 s), so a
    // probe rarely meets a socket the server is closing; when it does, get() retries once.
    const agentOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: options.idleSocketMs ?? 4000 };
    this.#agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.#request = secure ? https.request : http.request;
  }

  /** One GET of the client's URL. Rejects on network errors and on abort; any status resolves. */
  async get(options: HttpGetOptions): Promise<HttpGetResponse> {
    try {
      return await this.#get(options);
    } catch (err) {
      // A reused keep-alive socket the server closed meanwhile: the request never reached it.
      const e = err as { reusedSocket?: boolean; code?: string };
      if (e.reusedSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE') && !options.signal.aborted) return this.#get(options);
      throw err;
    }
  }

  /** Closes idle sockets; a request in flight is the caller's to abort. */
  close(): void {
    this.#agent.destroy();
  }

  #get(options: HttpGetOptions): Promise<HttpGetResponse> {
    return new Promise((resolve, reject) => {
      const req = this.#request(this.url, { method: 'GET', agent: this.#agent, signal: options.signal, headers: options.headers }, (res) => {
        const statusCode = res.statusCode ?? 0;
        const keep = options.keepBody?.(statusCode, res.headers) ?? false;
        const chunks: Buffer[] = [];
        let size = 0;
        let settled = false;
        const finish = (extra: Partial<HttpGetResponse>) => {
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
      req.end();
    });
  }
}
