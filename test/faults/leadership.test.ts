import { expect } from 'chai';
import { waitFor } from '../helpers/cluster.js';
import { FaultCluster, RENEW_MS, sleep, TTL_MS, stopClusterAfterEach } from './harness.js';
import { checkerNow } from './invariants.js';

/**
 * Leadership under process faults, with three real agent processes (lease TTL 3 s, renew 1 s) and
 * the invariant checker sampling every agent's `isLeader` and the registry's election every 25 ms,
 * on each registry that elects: etcd, and Redis (where leases expire on Redis's clock and fencing is
 * a compare inside a Lua script).
 */
for (const backend of ['etcd', 'redis'] as const)
describe(`faults: leadership on ${backend} (3 agent processes, ttl 3 s, renew 1 s)`, function () {
  this.timeout(60_000);
  const track = stopClusterAfterEach();

  /** The ids of agents other than `id` that currently answer isLeader. */
  const otherLeaders = (c: FaultCluster, id: string) => c.checker.currentLeaders().filter((k) => !k.startsWith(`${id}#`));

  it('kill -9 of the leader: one new leader within the TTL, its entry gone within the TTL', async () => {
    const c = track(await FaultCluster.start({ backend }));
    const leader = await c.settled();
    const killedAt = checkerNow();
    await c.signal(leader, 'SIGKILL');

    const next = await waitFor('a new leader', () => (otherLeaders(c, leader).length === 1 ? otherLeaders(c, leader)[0] : undefined), TTL_MS + 3000, 10);
    const failoverMs = Math.round(c.checker.firstLeaderAnswer(next, killedAt)! - killedAt);
    await waitFor('the dead leader\'s entry gone', async () => (await c.read()).service(leader) === undefined, TTL_MS + 3000, 10);
    const goneMs = Math.round(checkerNow() - killedAt);
    const remaining = [...c.agents.keys()];
    expect(await c.settled(remaining)).to.equal(next.split('#')[0]);
    console.log(`      failover ${failoverMs} ms, entry gone ${goneMs} ms (TTL ${TTL_MS} ms, renew ${RENEW_MS} ms)`);
    // etcd expires a lease at most TTL after the last keep-alive it received; its expiry loop runs
    // every 500 ms, and the survivors need a watch event to notice: TTL plus that, no more. Redis
    // expires it at its deadline, and watchers poll the log at the next deadline: the same bound.
    expect(failoverMs).to.be.lessThan(TTL_MS + 1000);
    expect(goneMs).to.be.lessThan(TTL_MS + 1000);
    expect(await c.leaseCount()).to.equal(2);
    c.assertInvariants();
  });

  it('graceful stop of the leader: a new leader well under a second, entry gone, exit 0', async () => {
    const c = track(await FaultCluster.start({ backend }));
    const leader = await c.settled();
    const proc = c.get(leader).proc;
    const stoppedAt = checkerNow();
    proc.signal('SIGTERM');
    const next = await waitFor('a new leader', () => (otherLeaders(c, leader).length === 1 ? otherLeaders(c, leader)[0] : undefined), 3000, 5);
    const handoverMs = Math.round(c.checker.firstLeaderAnswer(next, stoppedAt)! - stoppedAt);
    await waitFor('entry gone', async () => (await c.read()).service(leader) === undefined, 2000, 5);
    expect(await proc.exited).to.equal(0);
    await c.signal(leader, 'SIGTERM');
    console.log(`      handover ${handoverMs} ms (sampling every 25 ms)`);
    expect(handoverMs).to.be.lessThan(500);
    const logs = c.logs(leader, true).map((l) => l.event);
    expect(logs).to.include.members(['leader.lost', 'deregistered']);
    // It let go before it resigned: its leader.lost precedes its deregistration.
    expect(logs.indexOf('leader.lost')).to.be.lessThan(logs.indexOf('deregistered'));
    await c.settled([...c.agents.keys()]);
    expect(await c.leaseCount()).to.equal(2);
    c.assertInvariants();
  });

  it('leader frozen past its lease, then thawed: another leads meanwhile, the thawed one is fenced and never leads again', async () => {
    const c = track(await FaultCluster.start({ backend }));
    const frozen = await c.settled();
    const frozenKey = c.get(frozen).key;
    const frozenAt = checkerNow();
    c.get(frozen).proc.signal('SIGSTOP');

    const next = await waitFor('another leader while frozen', () => (otherLeaders(c, frozen).length === 1 ? otherLeaders(c, frozen)[0]! : undefined), TTL_MS + 3000, 10);
    const takeoverAt = c.checker.firstLeaderAnswer(next, frozenAt)!;
    const nextId = next.split('#')[0]!;
    await waitFor('leader record names the new leader', async () => (await c.read()).leaderRecord()?.leaderId === nextId, 3000);
    // Stay frozen a while longer: the thawed process's timers are all overdue at once.
    await sleep(1000);
    const thawedAt = checkerNow();
    c.get(frozen).proc.signal('SIGCONT');

    // It answers again, as a follower, and its step-down is refused by the fence (etcd's txn compare,
    // or the compare on its election key's create revision inside Redis's Lua script).
    await waitFor('the thawed agent answers', () => (c.checker.samples.get(frozenKey) ?? []).some((s) => s.sentAt > thawedAt && s.isLeader !== undefined), 5000);
    await waitFor('leader.fenced logged', () => c.logs(frozen).some((l) => l.event === 'leader.fenced'), 5000);
    await waitFor('re-registered under a new lease', () => c.logs(frozen).some((l) => l.event === 'lease.regranted'), 8000);
    expect(await c.settled([...c.agents.keys()])).to.equal(nextId);
    await sleep(1000);

    const after = (c.checker.samples.get(frozenKey) ?? []).filter((s) => s.sentAt > thawedAt && s.isLeader !== undefined);
    expect(after.length).to.be.greaterThan(10);
    expect(after.filter((s) => s.isLeader), 'the thawed agent reported leadership').to.have.length(0);
    // Nothing it wrote as leader survived: <ns>/leader never named it after the takeover.
    const named = c.checker.election.filter((e) => e.sentAt > takeoverAt && e.leaderRecord?.leaderId === frozen);
    expect(named, '<ns>/leader named the thawed agent').to.have.length(0);
    expect(c.get(frozen).proc.proc.exitCode).to.equal(null);
    expect(await c.leaseCount()).to.equal(3);
    console.log(`      takeover ${Math.round(takeoverAt - frozenAt)} ms after SIGSTOP; thawed after ${thawedAt - frozenAt} ms; ${after.length} answers after thaw, none leader`);
    c.assertInvariants();
  });
});
