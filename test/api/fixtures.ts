/**
 * Shared pieces of the API tests: a local upstream to health-check, SdConfig objects with short
 * timers, clusters of real agents on one MemoryRegistry store (or etcd), an HTTP helper and an SSE
 * client that parses frames as a browser would.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { Agent as UndiciAgent, request as undiciRequest } from 'undici';
import { ServiceAgent } from '../../src/agent/agent.js';
import type { SdConfig } from '../../src/config/types.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import type { Registry } from '../../src/registry/types.js';
import type { Logger } from '../../src/util/logger.js';

import { eventually, sleep } from '../registry/contract.js';
import { listenOnLoopback } from '../helpers/loopback.js';

export { eventually, sleep };

/** A tiny instance to health-check: GET /health answers `status` (200 by default). */
export interface Upstream {
  url: string;
  port: number;
  status: number;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const state = { status: 200 };
  const server: Server = createServer((req, res) => {
    res.writeHead(req.url === '/health' ? state.status : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: state.status === 200 ? 'ok' : 'degraded' }));
  });
  const { url, port, close } = await listenOnLoopback(server);
  return {
    url: `${url}/health`,
    port,
    get status() {
      return state.status;
    },
    set status(v: number) {
      state.status = v;
    },
    close,
  };
}

export interface AgentSpec {
  id: string;
  region?: string;
  zone?: string;
  port?: number;
}

/** A complete SdConfig with the short timers the tests use (health 0.2 s, ttl 2, renew 0.5). */
export function testConfig(spec: AgentSpec, healthUrl: string, discovery: Partial<SdConfig['cluster']['discovery']> = {}): SdConfig {
  return {
    enabled: true,
    cluster: {
      name: 'proxy-stone-cluster',
      leaderElection: { enabled: true, ttl: 2, renewInterval: 0.5 },
      healthCheck: { interval: 0.2, timeout: 0.5, retries: 2, gracePeriod: 0, path: '/health', url: healthUrl, refreshInterval: 0, flapThreshold: 0, flapWindow: 600, flapHoldDown: 300 },
      discovery: { registry: 'memory', endpoints: [], namespace: 'proxy-stone', callTimeout: 2, ...discovery },
      // These clusters put one or two instances in a zone; the capacity guard has its own tests (test/agent/drain.test.ts).
      minHealthyPerZone: '0',
    },
    service: {
      id: spec.id,
      name: 'proxy-stone',
      host: '127.0.0.1',
      port: spec.port ?? 3000,
      version: '1.0.0',
      tags: ['proxy-stone', 'backend'],
      region: spec.region ?? 'us-east-1',
      zone: spec.zone ?? 'us-east-1a',
      metadata: {},
      maintenanceHook: false,
      startDisabled: false,
    },
    api: { enabled: true, host: '127.0.0.1', port: 0, readAccess: 'open' },
    log: { level: 'silent' },
  };
}

/** Several real agents on one store; each agent has its own registry client. */
export class TestCluster {
  readonly agents: ServiceAgent[] = [];
  /** The raw registry client of each agent, by agent id (for outages and direct writes). */
  readonly clients = new Map<string, Registry>();

  private constructor(
    readonly upstream: Upstream,
    private readonly connect: () => Registry | Promise<Registry>,
    private readonly discovery: Partial<SdConfig['cluster']['discovery']>,
  ) {}

  /** A cluster on a fresh MemoryRegistry store. */
  static async memory(): Promise<TestCluster> {
    const root = new MemoryRegistry();
    const upstream = await startUpstream();
    const cluster = new TestCluster(upstream, () => root.connect(), { registry: 'memory' });
    cluster.clients.set('__root__', root);
    return cluster;
  }

  /** A cluster whose agents each open their own client through `connect`. */
  static async custom(connect: () => Registry | Promise<Registry>, discovery: Partial<SdConfig['cluster']['discovery']>): Promise<TestCluster> {
    return new TestCluster(await startUpstream(), connect, discovery);
  }

  /** A registry client for the test itself (direct writes). */
  async client(): Promise<Registry> {
    const c = await this.connect();
    this.clients.set(`__test__${this.clients.size}`, c);
    return c;
  }

  /** Builds (and by default starts) an agent; `wrap` lets a test decorate its registry client. */
  async addAgent(
    spec: AgentSpec,
    options: { start?: boolean; wrap?: (r: Registry) => Registry; logger?: Logger } = {},
  ): Promise<ServiceAgent> {
    const raw = await this.connect();
    this.clients.set(spec.id, raw);
    const registry = options.wrap ? options.wrap(raw) : raw;
    const agent = new ServiceAgent({ config: testConfig(spec, this.upstream.url, this.discovery), registry, logger: options.logger });
    this.agents.push(agent);
    if (options.start !== false) await agent.start();
    return agent;
  }

  /** Waits until every agent sees `n` services, all healthy. */
  async settled(n = this.agents.length): Promise<void> {
    await eventually(`${n} healthy services in every view`, () =>
      this.agents.every((a) => {
        try {
          const s = a.view.services();
          return s.length === n && s.every((r) => r.status === 'healthy');
        } catch {
          return false;
        }
      }),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop().catch(() => undefined)));
    for (const c of this.clients.values()) await c.close().catch(() => undefined);
    await this.upstream.close();
  }
}

/** A response read whole. */
export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

/** One HTTP request with undici; `dispatcher` for TLS. */
export async function http(
  url: string,
  options: { method?: 'GET' | 'POST' | 'HEAD' | 'OPTIONS'; headers?: Record<string, string>; body?: string | Buffer; dispatcher?: UndiciAgent } = {},
): Promise<HttpResult> {
  const res = await undiciRequest(url, {
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
    dispatcher: options.dispatcher,
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** POST a JSON body. */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  return http(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** One parsed SSE frame. */
export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
  /** Comment lines (`: ping`). */
  comments: string[];
}

/** A minimal EventSource over node:http that keeps every frame, for assertions. */
export class SseClient {
  readonly frames: SseFrame[] = [];
  status = 0;
  headers: IncomingMessage['headers'] = {};
  ended = false;
  private buffer = '';
  private res: IncomingMessage | undefined;
  private readonly req: ReturnType<typeof httpRequest>;
  readonly opened: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } });
    this.opened = new Promise((resolve, reject) => {
      this.req.on('response', (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.feed(chunk));
        res.on('end', () => (this.ended = true));
        res.on('close', () => (this.ended = true));
        resolve();
      });
      this.req.on('error', (err) => {
        this.ended = true;
        reject(err);
      });
    });
    this.req.end();
  }

  /** Data frames (cluster events), parsed. */
  events(): { id?: string; type: string; [k: string]: unknown }[] {
    return this.frames
      .filter((f) => f.data !== undefined && f.event === undefined)
      .map((f) => ({ ...(JSON.parse(f.data!) as { type: string }), id: f.id }));
  }

  /** Frames with an `event:` name (reset, overflow). */
  named(event: string): SseFrame[] {
    return this.frames.filter((f) => f.event === event);
  }

  async waitFor<T>(what: string, check: (c: SseClient) => T | undefined | false, timeoutMs = 5000): Promise<T> {
    return eventually(what, () => check(this), timeoutMs);
  }

  close(): void {
    this.req.destroy();
    this.res?.destroy();
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let idx: number;
    while ((idx = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, idx);
      this.buffer = this.buffer.slice(idx + 2);
      const frame: SseFrame = { comments: [] };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          frame.comments.push(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
        else if (field === 'id') frame.id = value;
        else if (field === 'event') frame.event = value;
        else if (field === 'retry') frame.retry = Number(value);
      }
      this.frames.push(frame);
    }
  }
}

/** A logger that keeps every line, to assert that secrets never reach it. */
export function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? obj : `${JSON.stringify(obj)} ${msg ?? ''}`);
  };
  return { lines, debug: log, info: log, warn: log, error: log, trace: log };
}
