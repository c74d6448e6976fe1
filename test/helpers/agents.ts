import { ServiceAgent } from '../../src/agent/agent.js';
import type { ClusterView } from '../../src/cluster/view.js';
import { configFromPartial } from '../../src/config/load.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import type { Registry } from '../../src/registry/types.js';
import type { Logger } from '../../src/util/logger.js';
import { uniqueNamespace } from './etcd.js';
import { sharedEtcd } from './shared-etcd.js';

/** How one in-process agent of a test differs from the fast defaults below. */
export interface TestAgentOptions {
  region?: string;
  zone?: string;
  /** Lease TTL in seconds (default 2). */
  ttl?: number;
  /** Health-check timeout in seconds (default 0.2). */
  checkTimeout?: number;
  /** The capacity guard (default '0': off, as most tests disable before every peer is healthy). */
  minHealthy?: string;
  startDisabled?: boolean;
  drainProbeUrl?: string;
  logger?: Logger;
  view?: ClusterView;
  /** False: construct it but leave start() to the test. */
  start?: boolean;
  /** An upstream the test owns (and closes); by default a fresh sample upstream closed after the test. */
  upstream?: SampleUpstream;
  /** The agent opens (and closes) its own registry client from the endpoints, as `proxy-stone-sd agent` does. */
  ownRegistry?: boolean;
  /** Check URLs (`--check`); by default the one HTTP check of the upstream's /health. */
  checks?: string[];
}

/** The agents of one test: registry, namespace, and what to stop afterwards. */
export interface TestAgents {
  readonly registry: Registry;
  readonly namespace: string;
  /** The etcd endpoint on the etcd backend (empty on memory). */
  readonly endpoint: string;
  readonly agents: ServiceAgent[];
  /** The upstreams the fixture started (and closes); a test may add its own to be closed too. */
  readonly upstreams: SampleUpstream[];
  /** Starts (unless `start: false`) an agent with short TTLs and intervals beside its own upstream. */
  agent(id: string, options?: TestAgentOptions): Promise<ServiceAgent>;
  /** Forgets an agent the test stopped itself. */
  remove(agent: ServiceAgent): void;
}

/**
 * Installs beforeEach/afterEach hooks in the calling `describe` that give each test a fresh registry
 * client and namespace (on the shared etcd, or a memory registry) and stop its agents and upstreams
 * afterwards. The returned object's fields are the current test's.
 */
export function useTestAgents(backend: 'memory' | 'etcd', prefix: string): TestAgents {
  let registry: Registry;
  let namespace = '';
  let endpoint = '';
  let agents: ServiceAgent[] = [];
  let upstreams: SampleUpstream[] = [];

  beforeEach(async () => {
    namespace = uniqueNamespace(prefix);
    endpoint = backend === 'etcd' ? (await sharedEtcd()).endpoint : '';
    registry = backend === 'memory' ? new MemoryRegistry() : new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 2000 });
    agents = [];
    upstreams = [];
  });

  afterEach(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(upstreams.map((u) => u.close()));
    await registry.close();
  });

  return {
    get registry() {
      return registry;
    },
    get namespace() {
      return namespace;
    },
    get endpoint() {
      return endpoint;
    },
    get agents() {
      return agents;
    },
    get upstreams() {
      return upstreams;
    },
    remove(agent) {
      agents = agents.filter((a) => a !== agent);
    },
    async agent(id, options = {}) {
      const upstream = options.upstream ?? (await startSampleUpstream());
      if (!options.upstream) upstreams.push(upstream);
      const a = new ServiceAgent({
        ...(options.ownRegistry ? {} : { registry }),
        ...(options.view ? { view: options.view } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        config: configFromPartial({
          cluster: {
            leaderElection: { enabled: true, ttl: options.ttl ?? 2, renewInterval: 0.3 },
            healthCheck: { interval: 0.2, timeout: options.checkTimeout ?? 0.2, retries: 2, gracePeriod: 1, refreshInterval: 0 },
            // Unless it opens its own, the registry client above is what the agent uses.
            discovery: backend === 'etcd' ? { registry: 'etcd', endpoints: [endpoint], namespace } : { registry: 'memory', namespace },
            minHealthyPerZone: options.minHealthy ?? '0',
          },
          service: {
            id,
            host: '127.0.0.1',
            port: upstream.port,
            ...(options.region !== undefined ? { region: options.region } : {}),
            ...(options.zone !== undefined ? { zone: options.zone } : {}),
            ...(options.startDisabled !== undefined ? { startDisabled: options.startDisabled } : {}),
            ...(options.drainProbeUrl !== undefined ? { drainProbeUrl: options.drainProbeUrl } : {}),
            ...(options.checks !== undefined ? { checks: options.checks } : {}),
          },
        }),
      });
      agents.push(a);
      if (options.start !== false) await a.start();
      return a;
    },
  };
}
