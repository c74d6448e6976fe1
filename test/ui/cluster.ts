/**
 * A small real cluster for the dashboard's tests: in-process agents on the shared etcd, each beside a
 * sample upstream that can be told to fail, each serving the agent API (so the detail view has a
 * probe history to fetch).
 */
import { ServiceAgent } from '../../src/agent/agent.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { configFromPartial } from '../../src/config/load.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';

export const OPERATOR_KEY = 'ui-test-operator-key';

export interface UiNode {
  id: string;
  agent: ServiceAgent;
  api: ApiServer;
  upstream: SampleUpstream;
}

export interface UiCluster {
  endpoint: string;
  namespace: string;
  nodes: UiNode[];
  stop(): Promise<void>;
}

const PLACES = [
  ['us-east-1', 'us-east-1a'],
  ['us-east-1', 'us-east-1b'],
  ['eu-west-1', 'eu-west-1a'],
] as const;

/** Starts `count` agents in a fresh namespace and waits until every one sees all healthy with a leader. */
export async function startUiCluster(count = 3, options: { endpoint?: string; namespace?: string } = {}): Promise<UiCluster> {
  const endpoint = options.endpoint ?? (await sharedEtcd()).endpoint;
  const namespace = options.namespace ?? uniqueNamespace('ui');
  const nodes: UiNode[] = [];
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
      const upstream = await startSampleUpstream();
      const [region, zone] = PLACES[i % PLACES.length]!;
      const id = `ui-node-${i + 1}`;
      const config = configFromPartial({
        cluster: {
          leaderElection: { enabled: true, ttl: 3, renewInterval: 1 },
          healthCheck: { interval: 0.25, timeout: 1, retries: 1, gracePeriod: 0, refreshInterval: 0 },
          discovery: { registry: 'etcd', endpoints: [endpoint], namespace },
          // One instance per zone here; the capacity guard has its own tests (test/agent/drain.test.ts).
          minHealthyPerZone: '0',
        },
        service: { id, name: 'proxy-stone', host: '127.0.0.1', port: upstream.port, version: '1.4.2', region, zone },
        api: { enabled: false },
      });
      const agent = new ServiceAgent({ config });
      await agent.start();
      const api = await startApiServer(agent, {
        host: '127.0.0.1',
        port: 0,
        auth: { keys: [{ name: 'ops', role: 'operator', key: OPERATOR_KEY }], readAccess: 'open' },
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
  return { endpoint, namespace, nodes, stop };
}

/** Polls until `check` is truthy; throws after `timeoutMs` naming what it waited for. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
