import { expect } from 'chai';
import { ServiceAgent } from '../../src/agent/agent.js';
import { ClusterView } from '../../src/cluster/view.js';
import { configFromPartial } from '../../src/config/load.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { waitFor } from '../helpers/cluster.js';
import { FaultCluster, sleep, SseClient, stopClusterAfterEach } from './harness.js';

interface Services {
  services: { id: string }[];
}

const CYCLES = 200;
const LANES = 10;

/**
 * Churn: 200 join/leave cycles of in-process agents (real ServiceAgents on one shared registry
 * client and view, against the real etcd) while two long-lived agent processes watch. At the end
 * every watcher's view equals the registry, no lease leaked, and the SSE stream of a long-lived
 * agent carried exactly one serviceJoined and one serviceLeft per cycle.
 */
describe('faults: churn (200 join/leave cycles against 2 agent processes)', function () {
  this.timeout(120_000);
  let upstream: SampleUpstream | undefined;

  const track = stopClusterAfterEach();
  afterEach(async () => {
    await upstream?.close();
  });

  it('views equal the registry afterwards, and SSE carried one join and one leave per cycle', async () => {
    const c = track(await FaultCluster.start({ agents: 2 }));
    await c.settled();
    // Subscribe once the observed agent's own view holds both long-lived agents, so any later join or
    // leave of theirs on the stream is a real one.
    await waitFor(
      'ps-2 lists both',
      async () => (await c.api<Services>('ps-2', '/service-discovery/services'))?.body.services.map((s) => s.id).join() === 'ps-1,ps-2',
      5000,
      20,
    );
    upstream = await startSampleUpstream();
    const sse = await SseClient.connect(c.get('ps-2').apiUrl);
    const registry = new EtcdRegistry({ endpoints: [c.server.endpoint], callTimeoutMs: 5000 });
    const view = new ClusterView(registry, c.layout);
    await view.start();
    const churnId = (id: string) => id.startsWith('churn-');
    const started = Date.now();
    try {
      const config = (id: string) =>
        configFromPartial({
          cluster: {
            leaderElection: { enabled: true, ttl: 3, renewInterval: 1 },
            healthCheck: { interval: 1, timeout: 1, retries: 2, gracePeriod: 5, refreshInterval: 0 },
            discovery: { registry: 'etcd', endpoints: [c.server.endpoint], namespace: c.namespace },
          },
          service: { id, host: '127.0.0.1', port: upstream!.port },
        });
      let next = 0;
      const lane = async () => {
        while (next < CYCLES) {
          const id = `churn-${next++}`;
          const agent = new ServiceAgent({ config: config(id), registry, view });
          await agent.start();
          if (agent.status().status !== 'registered') throw new Error(`${id} did not register`);
          await agent.stop();
        }
      };
      await Promise.all(Array.from({ length: LANES }, lane));
      const churnMs = Date.now() - started;

      await waitFor('every churn leave seen on the stream', () => sse.count('serviceLeft', churnId) >= CYCLES, 10_000, 50);
      await sleep(500);
      const joined = new Map<string, number>();
      const left = new Map<string, number>();
      for (const e of sse.events) {
        if (!e.serviceId || !churnId(e.serviceId)) continue;
        if (e.type === 'serviceJoined') joined.set(e.serviceId, (joined.get(e.serviceId) ?? 0) + 1);
        if (e.type === 'serviceLeft') left.set(e.serviceId, (left.get(e.serviceId) ?? 0) + 1);
      }
      expect(joined.size, 'distinct services joined').to.equal(CYCLES);
      expect(left.size, 'distinct services left').to.equal(CYCLES);
      expect([...joined.values()].every((n) => n === 1), 'one serviceJoined per cycle').to.equal(true);
      expect([...left.values()].every((n) => n === 1), 'one serviceLeft per cycle').to.equal(true);
      // The long-lived agents never left or re-joined meanwhile.
      const others = sse.events.filter((e) => (e.type === 'serviceJoined' || e.type === 'serviceLeft') && !churnId(e.serviceId ?? ''));
      expect(others.map((e) => `${e.type} ${e.serviceId} at ${String(e.data.timestamp)}`), 'joins or leaves of the long-lived agents').to.deep.equal([]);

      // Every watcher's view equals the registry.
      const truth = (await c.read()).services().map((s) => s.id);
      expect(truth).to.deep.equal(['ps-1', 'ps-2']);
      for (const id of c.agents.keys()) {
        const list = await c.api<Services>(id, '/service-discovery/services');
        expect(list?.body.services.map((s) => s.id), `${id}'s view`).to.deep.equal(truth);
      }
      expect(view.services().map((s) => s.id)).to.deep.equal(truth);
      expect(view.electionCandidates()).to.have.length(2);
      expect(await c.leaseCount(), 'no lease leaked').to.equal(2);
      expect(view.listenerCount('event'), 'no listener leaked on the shared view').to.equal(0);
      console.log(`      ${CYCLES} cycles in ${churnMs} ms (${LANES} at a time); ${sse.events.length} events on the stream`);
    } finally {
      await sse.close();
      await view.stop();
      await registry.close();
    }
    c.assertInvariants();
  });
});
