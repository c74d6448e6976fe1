import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServiceAgent } from '../agent/agent.js';
import { configFromPartial } from '../config/load.js';
import type { SdConfig } from '../config/types.js';
import { MemoryRegistry } from '../registry/memory.js';
import type { Registry } from '../registry/types.js';
import { silentLogger, type Logger } from '../util/logger.js';

/** A small stand-in for a Proxy-Stone instance: `/health` answers like Proxy-Stone's, and can be told to fail. */
export interface SampleUpstream {
  url: string;
  port: number;
  mode(): UpstreamMode;
  setMode(mode: UpstreamMode): void;
  close(): Promise<void>;
  /** Proxy-Stone's own maintenance switch (`/api/cluster/*`), as the maintenance hook drives it. */
  serving(): boolean;
}

export type UpstreamMode = 'up' | 'down' | 'flapping';

/**
 * Starts a sample upstream on 127.0.0.1. `POST /admin/down`, `/admin/up` and `/admin/flap` switch
 * its health; flapping alternates every `flapMs`. Proxy-Stone's maintenance switch is there too:
 * `POST /api/cluster/disable-serving`, `/enable-serving`, state at `GET /api/cluster/service-status`.
 */
export async function startSampleUpstream(options: { port?: number; flapMs?: number } = {}): Promise<SampleUpstream> {
  let mode: UpstreamMode = 'up';
  let serving = true;
  const startedAt = Date.now();
  const flapMs = options.flapMs ?? 4000;
  const healthy = () => (mode === 'up' ? true : mode === 'down' ? false : Math.floor((Date.now() - startedAt) / flapMs) % 2 === 0);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path?.startsWith('/api/cluster/')) {
      if (req.method === 'POST' && path === '/api/cluster/disable-serving') serving = false;
      else if (req.method === 'POST' && path === '/api/cluster/enable-serving') serving = true;
      else if (req.method !== 'GET' || path !== '/api/cluster/service-status') return json(res, 404, { error: 'not_found' });
      return json(res, 200, { status: { mode: serving ? 'serving' : 'maintenance', enabled: serving } });
    }
    if (req.method === 'POST' && path?.startsWith('/admin/')) {
      const next = ({ '/admin/up': 'up', '/admin/down': 'down', '/admin/flap': 'flapping' } as const)[path as '/admin/up'];
      if (!next) return json(res, 404, { error: 'not_found', message: 'use /admin/up, /admin/down or /admin/flap' });
      mode = next;
      return json(res, 200, { mode });
    }
    if (path === '/health' || path === '/health/ready') {
      const ok = healthy();
      // Proxy-Stone answers 200 {status: "ok"} or 503 {status: "unhealthy"}.
      return json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unhealthy', mode });
    }
    if (path === '/health/live') return json(res, 200, { status: 'ok' });
    return json(res, 200, { service: 'sample-upstream', mode });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    mode: () => mode,
    serving: () => serving,
    setMode: (m) => {
      mode = m;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export interface DemoOptions {
  /** How many agents (each with its own sample upstream). */
  agents?: number;
  /** etcd endpoints; without them the agents share one in-process memory registry. */
  endpoints?: string[];
  namespace?: string;
  /** First API port; agents take consecutive ports. 0 picks free ports. */
  basePort?: number;
  logger?: Logger;
  /** Fast timings so a newcomer sees changes within seconds. */
  config?: Partial<Pick<SdConfig['cluster']['healthCheck'], 'interval' | 'timeout' | 'retries' | 'gracePeriod'>>;
}

export interface DemoInstance {
  agent: ServiceAgent;
  upstream: SampleUpstream;
  apiUrl: string;
}

export interface Demo {
  instances: DemoInstance[];
  registry: Registry;
  stop(): Promise<void>;
}

/**
 * Where the demo's agents sit. The first two share a zone, so a newcomer's first `services disable`
 * of one of them goes through, while the third, alone in its zone, shows the capacity guard at work.
 */
const PLACES = [
  ['us-east-1', 'us-east-1a'],
  ['us-east-1', 'us-east-1a'],
  ['us-west-2', 'us-west-2a'],
  ['eu-west-1', 'eu-west-1a'],
  ['us-east-1', 'us-east-1b'],
] as const;

/**
 * The embedded default in one call: N agents in this process, each beside a sample upstream and
 * serving its HTTP API, on a shared memory registry (or etcd or Redis when endpoints are given).
 */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const count = options.agents ?? 3;
  const logger = options.logger ?? silentLogger;
  const namespace = options.namespace ?? 'proxy-stone';
  let registry: Registry;
  const redis = options.endpoints?.length === 1 && /^rediss?:\/\//.test(options.endpoints[0]!);
  if (redis) {
    const { RedisRegistry } = await import('../registry/redis.js');
    registry = new RedisRegistry({ endpoint: options.endpoints![0]!, callTimeoutMs: 3000 });
  } else if (options.endpoints?.length) {
    const { EtcdRegistry } = await import('../registry/etcd.js');
    registry = new EtcdRegistry({ endpoints: options.endpoints, callTimeoutMs: 3000 });
  } else {
    registry = new MemoryRegistry();
  }
  const { startApiServer } = await import('../api/server.js');
  const instances: DemoInstance[] = [];
  const closers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await registry.close();
  };
  try {
    for (let i = 0; i < count; i++) {
      const upstream = await startSampleUpstream({});
      closers.push(() => upstream.close());
      const [region, zone] = PLACES[i % PLACES.length]!;
      const config = configFromPartial({
        cluster: {
          name: 'proxy-stone-demo',
          leaderElection: { enabled: true, ttl: 5, renewInterval: 1 },
          healthCheck: { interval: 1, timeout: 1, retries: 2, gracePeriod: 3, ...options.config },
          discovery: options.endpoints?.length
            ? { registry: redis ? 'redis' : 'etcd', endpoints: options.endpoints, namespace }
            : { registry: 'memory', namespace },
        },
        service: {
          id: `proxy-stone-${i + 1}`,
          name: 'proxy-stone',
          host: '127.0.0.1',
          port: upstream.port,
          version: '1.0.0',
          region,
          zone,
          metadata: { demo: 'true' },
        },
      });
      const agent = new ServiceAgent({ config, registry, logger });
      // The API serves first so the first registration carries its URL (one serviceJoined, no
      // serviceUpdated right after; see runAgent).
      const api = await startApiServer(agent, {
        host: '127.0.0.1',
        port: options.basePort ? options.basePort + i : 0,
        // The demo is a local sandbox: management is open so a newcomer can try disable/enable.
        auth: { keys: [], readAccess: 'open', allowUnauthenticatedWrites: true },
        logger,
      });
      agent.setApiUrl(api.url);
      // Pushed in this order so stop() still closes the API before it stops the agent.
      closers.push(() => agent.stop());
      closers.push(() => api.close());
      await agent.start();
      instances.push({ agent, upstream, apiUrl: api.url });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { instances, registry, stop };
}
