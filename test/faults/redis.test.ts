import { expect } from 'chai';
import { waitFor } from '../helpers/cluster.js';
import { FaultCluster, sleep, TTL_MS } from './harness.js';
import { checkerNow } from './invariants.js';

interface Status {
  status: string;
  isLeader: boolean;
  lease: { id: string | null };
}

/**
 * The fault scenarios that apply to Redis, with three real agent processes on one redis-server
 * (AOF on, lease TTL 3 s, renew 1 s) and the invariant checker sampling every agent's `isLeader`
 * and the election in Redis every 25 ms.
 */
describe('faults: Redis registry (3 agent processes, ttl 3 s, renew 1 s)', function () {
  this.timeout(90_000);
  let cluster: FaultCluster | undefined;

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && cluster) console.error(cluster.dump());
    await cluster?.stop();
    cluster = undefined;
  });

  const start = () => FaultCluster.start({ backend: 'redis' });
  const now = checkerNow;
  const otherLeaders = (c: FaultCluster, id: string) => c.checker.currentLeaders().filter((k) => !k.startsWith(`${id}#`));

  it('kill -9 of the leader: one new leader within the TTL, its entry gone within the TTL', async () => {
    const c = (cluster = await start());
    const leader = await c.settled();
    const killedAt = now();
    await c.signal(leader, 'SIGKILL');
    const next = await waitFor('a new leader', () => (otherLeaders(c, leader).length === 1 ? otherLeaders(c, leader)[0] : undefined), TTL_MS + 3000, 10);
    const failoverMs = Math.round(c.checker.firstLeaderAnswer(next, killedAt)! - killedAt);
    await waitFor("the dead leader's entry gone", async () => (await c.read()).service(leader) === undefined, TTL_MS + 3000, 10);
    const goneMs = Math.round(now() - killedAt);
    expect(await c.settled([...c.agents.keys()])).to.equal(next.split('#')[0]);
    console.log(`      failover ${failoverMs} ms, entry gone ${goneMs} ms (TTL ${TTL_MS} ms)`);
    // The lease dies at its deadline by Redis's clock; watchers poll at the next deadline: TTL plus a little.
    expect(failoverMs).to.be.lessThan(TTL_MS + 1000);
    expect(goneMs).to.be.lessThan(TTL_MS + 1000);
    expect(await c.leaseCount()).to.equal(2);
    c.assertInvariants();
  });

  it('graceful stop of the leader: a new leader well under a second, entry gone, exit 0', async () => {
    const c = (cluster = await start());
    const leader = await c.settled();
    const proc = c.get(leader).proc;
    const stoppedAt = now();
    proc.signal('SIGTERM');
    const next = await waitFor('a new leader', () => (otherLeaders(c, leader).length === 1 ? otherLeaders(c, leader)[0] : undefined), 3000, 5);
    const handoverMs = Math.round(c.checker.firstLeaderAnswer(next, stoppedAt)! - stoppedAt);
    await waitFor('entry gone', async () => (await c.read()).service(leader) === undefined, 2000, 5);
    expect(await proc.exited).to.equal(0);
    await c.signal(leader, 'SIGTERM');
    console.log(`      handover ${handoverMs} ms (sampling every 25 ms)`);
    expect(handoverMs).to.be.lessThan(500);
    await c.settled([...c.agents.keys()]);
    expect(await c.leaseCount()).to.equal(2);
    c.assertInvariants();
  });

  it('leader frozen past its lease, then thawed: another leads, the thawed one is fenced and never leads again', async () => {
    const c = (cluster = await start());
    const frozen = await c.settled();
    const frozenKey = c.get(frozen).key;
    const frozenAt = now();
    c.get(frozen).proc.signal('SIGSTOP');
    const next = await waitFor('another leader while frozen', () => (otherLeaders(c, frozen).length === 1 ? otherLeaders(c, frozen)[0]! : undefined), TTL_MS + 3000, 10);
    const takeoverAt = c.checker.firstLeaderAnswer(next, frozenAt)!;
    const nextId = next.split('#')[0]!;
    await waitFor('leader record names the new leader', async () => (await c.read()).leaderRecord()?.leaderId === nextId, 3000);
    await sleep(1000);
    const thawedAt = now();
    c.get(frozen).proc.signal('SIGCONT');

    await waitFor('the thawed agent answers', () => (c.checker.samples.get(frozenKey) ?? []).some((s) => s.sentAt > thawedAt && s.isLeader !== undefined), 5000);
    // Its fenced step-down (a Lua compare on its election key's create revision) is refused by Redis.
    await waitFor('leader.fenced logged', () => c.logs(frozen).some((l) => l.event === 'leader.fenced'), 5000);
    await waitFor('re-registered under a new lease', () => c.logs(frozen).some((l) => l.event === 'lease.regranted'), 8000);
    expect(await c.settled([...c.agents.keys()])).to.equal(nextId);
    await sleep(1000);
    const after = (c.checker.samples.get(frozenKey) ?? []).filter((s) => s.sentAt > thawedAt && s.isLeader !== undefined);
    expect(after.length).to.be.greaterThan(10);
    expect(after.filter((s) => s.isLeader), 'the thawed agent reported leadership').to.have.length(0);
    const named = c.checker.election.filter((e) => e.sentAt > takeoverAt && e.leaderRecord?.leaderId === frozen);
    expect(named, '<ns>/leader named the thawed agent').to.have.length(0);
    expect(await c.leaseCount()).to.equal(3);
    console.log(`      takeover ${Math.round(takeoverAt - frozenAt)} ms after SIGSTOP; ${after.length} answers after thaw, none leader`);
    c.assertInvariants();
  });

  it('redis-server killed and restarted on the same dir: every agent registered again, one leader, one lease per agent', async () => {
    const c = (cluster = await start());
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
