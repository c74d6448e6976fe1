import { expect } from 'chai';
import { waitFor } from '../helpers/cluster.js';
import { FaultCluster, sleep, TTL_MS, stopClusterAfterEach } from './harness.js';

interface Status {
  status: string;
  isLeader: boolean;
  lease: { id: string | null };
}

/**
 * Redis itself failing, with three real agent processes on one redis-server (AOF on, lease TTL 3 s,
 * renew 1 s) and the invariant checker sampling every agent's `isLeader` and the election in Redis
 * every 25 ms. The process faults (leader killed, stopped, frozen) run on Redis in leadership.test.ts.
 */
describe('faults: Redis registry (3 agent processes, ttl 3 s, renew 1 s)', function () {
  this.timeout(90_000);
  const track = stopClusterAfterEach();

  const start = () => FaultCluster.start({ backend: 'redis' });

  it('redis-server killed and restarted on the same dir: every agent registered again, one leader, one lease per agent', async () => {
    const c = track(await start());
    await c.settled();
    c.server.kill('SIGKILL');
    await waitFor('agents see the outage', async () => {
      for (const id of c.agents.keys()) {
        const h = await c.api<{ view: { stale: boolean } }>(id, '/health');
        if (!h?.body.view.stale) return false;
      }
      return true;
    }, 10_000, 100);
    await sleep(TTL_MS);
    await c.server.restart();
    const leader = await c.settled([...c.agents.keys()], 20_000);
    await waitFor('every agent registered under the lease its record names', async () => {
      const { kvs } = await c.reader.list(c.layout.services);
      for (const id of c.agents.keys()) {
        const status = await c.api<Status>(id, '/service-discovery/status');
        const record = kvs.find((kv) => kv.key === c.layout.service(id));
        if (!status || status.body.status !== 'registered' || !record || record.lease !== status.body.lease.id) return false;
      }
      return true;
    }, 15_000, 100);
    expect(await c.leaseCount()).to.equal(3);
    expect(c.agents.has(leader)).to.equal(true);
    c.assertInvariants();
  });
});
