import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { RegistryUnavailableError, type MemberChange } from '../../src/registry/types.js';
import { EtcdCluster } from '../helpers/etcd-cluster.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { WatchRecorder, eventually, registryContract } from './contract.js';

/**
 * The registry on a real three-member etcd cluster: the same contract as on one member, the contract
 * again with one member frozen throughout (every call the registry sends there must move on), and
 * the registry's own moves between members when the member in use is killed, frozen or cut off.
 */
let clusterStart: Promise<EtcdCluster> | undefined;
const cluster = (): Promise<EtcdCluster> => (clusterStart ??= EtcdCluster.start({ size: 3 }));

after(async function () {
  this.timeout(30_000);
  await (await clusterStart)?.stop();
});

const FAILOVER_MS = 1000;

function open(c: EtcdCluster, changes: MemberChange[] = []): EtcdRegistry {
  return new EtcdRegistry({ endpoints: c.endpoints, callTimeoutMs: 3000, failoverAfterMs: FAILOVER_MS, onMemberChange: (m) => changes.push(m) });
}

registryContract('etcd, three members', async () => {
  const c = await cluster();
  const registry = open(c);
  return {
    registry,
    cleanup: () => registry.close(),
    // Any member compacts for the whole cluster.
    compact: async (revision) => {
      await registry.client.kv.compact({ revision: String(revision), physical: true });
    },
  };
});

registryContract('etcd, three members, one of them frozen throughout', async () => {
  const c = await cluster();
  await c.member(1).freeze();
  const registry = open(c);
  return {
    registry,
    cleanup: async () => {
      await registry.close();
      c.member(1).thaw();
      await c.waitHealthy();
    },
    compact: async (revision) => {
      await registry.call('compact', (client) => client.kv.compact({ revision: String(revision), physical: true }));
    },
  };
});

describe('EtcdRegistry on three members: leaving a member that fails', function () {
  this.timeout(60_000);
  let c: EtcdCluster;
  let registry: EtcdRegistry;
  let changes: MemberChange[];

  before(async function () {
    this.timeout(60_000);
    c = await cluster();
  });

  beforeEach(() => {
    changes = [];
    registry = open(c, changes);
  });

  afterEach(async function () {
    this.timeout(30_000);
    await registry.close();
    for (const m of c.members) {
      if (m.frozen) m.thaw();
      if (!m.running) await m.relaunch();
    }
    await c.waitHealthy();
  });

  const activeIndex = () => c.endpoints.indexOf(registry.activeEndpoint);

  it('a frozen member in use: a call moves to another member after one attempt\'s timeout, and the move is reported', async () => {
    const ns = uniqueNamespace('frozen');
    await registry.put(`${ns}/a`, '1');
    const frozen = activeIndex();
    await c.member(frozen).freeze();
    const started = Date.now();
    expect(await registry.put(`${ns}/b`, '2')).to.be.above(0);
    const took = Date.now() - started;
    expect(activeIndex()).to.not.equal(frozen);
    // One attempt of the call timeout (3 s) on the frozen member, then the next: well under two call timeouts.
    expect(took, 'the put moved on within its first attempt').to.be.below(3000 + 2000);
    expect(changes).to.have.length(1);
    expect(changes[0]).to.deep.include({ from: c.endpoints[frozen], to: registry.activeEndpoint });
    expect(changes[0]!.reason).to.match(/no answer within/);
    expect((await registry.get(`${ns}/b`))?.value).to.equal('2');
  });

  /** Re-opens the registry until the member it starts on is not the raft leader (it picks one at random). */
  async function onAFollower(): Promise<number> {
    const leader = await c.leader();
    while (activeIndex() === leader) {
      await registry.close();
      registry = open(c, changes);
    }
    return activeIndex();
  }

  it('a lease keep-alive on a frozen follower moves within its own timeout and the lease lives on', async () => {
    const frozen = await onAFollower();
    const lease = await registry.grantLease(5);
    await c.member(frozen).freeze();
    const started = Date.now();
    expect(await lease.keepAliveOnce({ timeoutMs: FAILOVER_MS })).to.equal(5);
    // One keep-alive timeout on the frozen member, then an answer from the next.
    expect(Date.now() - started).to.be.below(FAILOVER_MS + 1500);
    expect(activeIndex()).to.not.equal(frozen);
    await lease.revoke();
  });

  it('the raft leader frozen: keep-alives every second keep the lease alive through the election', async () => {
    const ns = uniqueNamespace('leader-frozen');
    const lease = await registry.grantLease(5);
    await registry.put(`${ns}/a`, '1', { lease: lease.id });
    const leader = await c.leader();
    await c.member(leader).freeze();
    // As the agent renews: one keep-alive a second, each allowed FAILOVER_MS per member.
    const deadline = Date.now() + 8000;
    let answered = 0;
    while (Date.now() < deadline) {
      const sent = Date.now();
      answered += await lease.keepAliveOnce({ timeoutMs: FAILOVER_MS }).then(
        () => 1,
        () => 0,
      );
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - sent))));
    }
    expect(answered).to.be.above(2);
    expect(await c.leader()).to.not.equal(leader);
    expect((await registry.get(`${ns}/a`))?.lease, 'the key outlived the frozen leader').to.equal(lease.id);
    await lease.revoke();
  });

  /** Re-opens the registry until the member it starts on is the raft leader. */
  async function onTheLeader(): Promise<number> {
    const leader = await c.leader();
    while (activeIndex() !== leader) {
      await registry.close();
      registry = open(c, changes);
    }
    return leader;
  }

  for (const where of ['a follower', 'the raft leader'] as const) {
    it(`a watch on ${where}, frozen, ends with onError within failoverAfterMs (the probe finds it), and a new watch sees what follows`, async () => {
      if (where === 'a follower') await onAFollower();
      else await onTheLeader();
      await watchOnAFrozenMember();
    });
  }

  // With the raft leader frozen, the other members' linearizable reads stall until they elect a new
  // one, and then fail with "leader changed": the list below must be asked again where it was, not
  // moved onto the frozen member (a CI run met that: every member left in turn, the list failed).
  async function watchOnAFrozenMember(): Promise<void> {
    const ns = uniqueNamespace('watch');
    const start = await registry.put(`${ns}/a`, '1');
    const recorder = new WatchRecorder();
    const handle = registry.watchPrefix(`${ns}/`, start + 1, recorder);
    await eventually('the watch connected', () => recorder.connected > 0);
    const frozen = activeIndex();
    await c.member(frozen).freeze();
    const frozenAt = Date.now();
    await eventually('the watch ended', () => recorder.errors.length > 0, 5000, 10);
    // The probe runs every failoverAfterMs / 2 once nothing else answered, and waits failoverAfterMs.
    expect(Date.now() - frozenAt).to.be.below(2 * FAILOVER_MS + 1000);
    expect(recorder.errors[0]).to.be.instanceOf(RegistryUnavailableError);
    expect(activeIndex()).to.not.equal(frozen);
    await handle.cancel();
    // What the view does after onError: re-list, watch again from the listing.
    const listing = await registry.list(`${ns}/`);
    const again = new WatchRecorder();
    const second = registry.watchPrefix(`${ns}/`, listing.revision + 1, again);
    await registry.put(`${ns}/b`, '2');
    const events = await again.waitForEvents(1);
    expect(events[0]).to.deep.include({ type: 'put' });
    await second.cancel();
    // An election is no reason to leave a member, and nothing went back to the frozen one.
    expect(changes.map((m) => m.reason)).to.not.include.members(['leader changed']);
    expect(changes.slice(1).map((m) => m.to)).to.not.include(c.endpoints[frozen]);
  }

  it('a killed member in use is left at once, on the refused connection, not after a timeout', async () => {
    const ns = uniqueNamespace('killed');
    await registry.put(`${ns}/a`, '1');
    const killed = activeIndex();
    await c.member(killed).crash();
    const started = Date.now();
    expect((await registry.get(`${ns}/a`))?.value).to.equal('1');
    // Under the call timeout (3 s); if the killed member led raft, this includes electing the next leader.
    expect(Date.now() - started).to.be.below(3000);
    expect(activeIndex()).to.not.equal(killed);
    expect(changes[0]?.from).to.equal(c.endpoints[killed]);
    expect(changes[0]?.reason).to.not.match(/no answer/);
  });

  it('with two of three members down (no quorum) calls fail with RegistryUnavailableError, bounded in time; with quorum back they succeed', async () => {
    const ns = uniqueNamespace('quorum');
    await registry.put(`${ns}/a`, '1');
    await c.crash(0, 1);
    const started = Date.now();
    const err = await registry.put(`${ns}/b`, '2').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(RegistryUnavailableError);
    // At most one call timeout per member.
    expect(Date.now() - started).to.be.below(3 * 3000 + 1500);
    await c.restart(0, 1);
    await eventually('a put goes through with quorum back', async () => (await registry.put(`${ns}/b`, '2').catch(() => 0)) > 0, 15_000, 200);
  });

  it('a member restarted with its data catches up on what was written while it was down', async () => {
    const ns = uniqueNamespace('restart');
    await registry.put(`${ns}/a`, '1');
    const down = activeIndex();
    await c.member(down).crash();
    await registry.put(`${ns}/b`, 'written while down');
    await c.member(down).relaunch();
    await c.waitHealthy();
    const only = new EtcdRegistry({ endpoints: [c.endpoints[down]!], callTimeoutMs: 3000 });
    try {
      expect((await only.get(`${ns}/a`))?.value).to.equal('1');
      expect((await only.get(`${ns}/b`))?.value).to.equal('written while down');
    } finally {
      await only.close();
    }
  });
});

describe('EtcdRegistry on three members: nothing of a member left keeps running', function () {
  this.timeout(60_000);

  it('a process whose watch moved off a frozen member exits by itself once the registry is closed', async () => {
    const c = await cluster();
    const fixture = fileURLToPath(new URL('./fixtures/watch-failover-exit.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, c.endpoints.join(','), `${uniqueNamespace('exit')}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let frozen: number | undefined;
    try {
      const on = await eventually('the child watching', () => /watching on (\S+)/.exec(out)?.[1], 20_000, 20);
      frozen = c.endpoints.indexOf(on);
      await c.member(frozen).freeze();
      await eventually('the child closed its registry', () => out.includes('closed'), 10_000, 20);
      const closedAt = Date.now();
      const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 5000))]);
      expect(code, `exit after close (output: ${out})`).to.equal(0);
      expect(Date.now() - closedAt).to.be.below(5000);
    } finally {
      child.kill('SIGKILL');
      if (frozen !== undefined) c.member(frozen).thaw();
      await c.waitHealthy();
    }
  });
});

describe('EtcdHttpReader (one-shot CLI reads) on three members', function () {
  this.timeout(60_000);

  for (const where of ['a follower', 'the raft leader'] as const) {
    it(`a hung member first in the list (${where}) gets only its share of the deadline: the read answers from the next`, async () => {
      const c = await cluster();
      const writer = open(c);
      const ns = uniqueNamespace('reader');
      await writer.put(`${ns}/a`, '1');
      await writer.close();
      const { EtcdHttpReader } = await import('../../src/cli/etcd-http-reader.js');
      const leader = await c.leader();
      const hung = where === 'the raft leader' ? leader : (leader + 1) % c.members.length;
      await c.member(hung).freeze();
      // The hung member first; the others after it.
      const endpoints = [c.endpoints[hung]!, ...c.endpoints.filter((_, i) => i !== hung)];
      const reader = new EtcdHttpReader({ endpoints, timeoutMs: 3000 });
      try {
        const started = Date.now();
        const listing = await reader.list(`${ns}/`);
        expect(listing.kvs.map((kv) => kv.value)).to.deep.equal(['1']);
        // The hung member's share (3000 ms / 3 members) first; with the raft leader hung, the next
        // member answers once the others elected a leader ("leader changed" is asked again there).
        expect(Date.now() - started).to.be.within(900, 3000);
      } finally {
        await reader.close();
        c.member(hung).thaw();
        await c.waitHealthy();
      }
    });
  }
});
