/**
 * A small real cluster in this process: agents on a real etcd (the shared test server unless one is
 * given) in a fresh namespace, each beside an upstream of the caller's choosing and serving the real
 * HTTP API. What the CLI tests (test/cli/fixtures.ts) and the dashboard tests (test/ui/cluster.ts) run
 * against; each picks its upstream, ids, key and check timings.
 */
import { ServiceAgent } from '../../src/agent/agent.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { configFromPartial } from '../../src/config/load.js';
import { uniqueNamespace } from './etcd.js';
import { sharedEtcd } from './shared-etcd.js';

/** The instance beside an agent: something answering `GET /health` on a loopback port. */
export interface Upstream {
  port: number;
  close(): Promise<void>;
}

export interface AgentNode<U extends Upstream = Upstream> {
  id: string;
  agent: ServiceAgent;
  api: ApiServer;
  upstream: U;
}

export interface AgentCluster<U extends Upstream = Upstream> {
  endpoint: string;
  namespace: string;
  nodes: AgentNode<U>[];
  /** Stops every node, newest first. */
  stop(): Promise<void>;
}

export interface AgentClusterOptions<U extends Upstream> {
  /** Ids are `<idPrefix>-1`, `<idPrefix>-2`, … */
  idPrefix: string;
  /** Starts the upstream of one node. */
  upstream: () => Promise<U>;
  /** The operator key every agent's API accepts (reads are open). */
  apiKey: string;
  /** Names the fresh namespace (`uniqueNamespace(tag)`) unless `namespace` is given. */
  namespaceTag: string;
  namespace?: string;
  /** The etcd to register with (default: the shared test server). */
  etcd?: { endpoint: string; endpoints: string[] };
  /** Seconds between checks, and failed checks that turn an instance unhealthy. */
  healthCheck: { interval: number; retries: number };
  version: string;
  /** The agents' capacity guard (their API's disables): default `0`, off. */
  minHealthyPerZone?: string;
  /** Tags and metadata of node i (0-based); none by default. */
  labels?: (i: number) => { tags?: string[]; metadata?: Record<string, string> };
}

/** Where node i goes: two zones of one region, then another region, round and round. */
export const PLACES = [
  ['us-east-1', 'us-east-1a'],
  ['us-east-1', 'us-east-1b'],
  ['eu-west-1', 'eu-west-1a'],
] as const;

/** Starts `count` agents and waits until every one sees all of them healthy, with a leader. */
export async function startAgentCluster<U extends Upstream>(count: number, options: AgentClusterOptions<U>): Promise<AgentCluster<U>> {
  const etcd = options.etcd ?? (await sharedEtcd());
  const namespace = options.namespace ?? uniqueNamespace(options.namespaceTag);
  const nodes: AgentNode<U>[] = [];
  const stop = async () => {
    for (const n of [...nodes].reverse()) {
      await n.api.close().catch(() => undefined);
      await n.agent.stop().catch(() => undefined);
      await n.upstream.close().catch(() => undefined);
    }
    nodes.length = 0;
  };
  try {
    for (let i = 0; i < count; i++) {
      const upstream = await options.upstream();
      const [region, zone] = PLACES[i % PLACES.length]!;
      const id = `${options.idPrefix}-${i + 1}`;
      const config = configFromPartial({
        cluster: {
          leaderElection: { enabled: true, ttl: 3, renewInterval: 1 },
          healthCheck: { ...options.healthCheck, timeout: 1, gracePeriod: 0, refreshInterval: 0 },
          discovery: { registry: 'etcd', endpoints: etcd.endpoints, namespace },
          // One instance per zone in most clusters, which the guard would never let go of; tests
          // of the guard set it.
          minHealthyPerZone: options.minHealthyPerZone ?? '0',
        },
        service: { id, name: 'proxy-stone', host: '127.0.0.1', port: upstream.port, version: options.version, region, zone, ...options.labels?.(i) },
        api: { enabled: false },
      });
      const agent = new ServiceAgent({ config });
      await agent.start();
      const api = await startApiServer(agent, {
        host: '127.0.0.1',
        port: 0,
        auth: { keys: [{ name: 'ops', role: 'operator', key: options.apiKey }], readAccess: 'open' },
      });
      agent.setApiUrl(api.url);
      nodes.push({ id, agent, api, upstream });
    }
    await waitFor('every agent healthy with a leader, seen by every agent', () =>
      nodes.every((n) => {
        const services = n.agent.view.services();
        return services.length === count && services.every((s) => s.status === 'healthy' && s.apiUrl) && n.agent.view.leaderId() !== null;
      }),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint: etcd.endpoint, namespace, nodes, stop };
}

/** Polls until `check` is truthy; throws after `timeoutMs` naming what it waited for. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
