import { expect } from 'chai';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { assertBuilt, ClusterReader, spawnAgent, waitFor, type AgentProcess } from '../helpers/cluster.js';

/**
 * Three real `proxy-stone-sd agent` processes against a real etcd, configured as an operator would:
 * the seed's env vars plus interval 1, timeout 1, retries 2, grace 5, TTL 3, renew 1.
 */
describe('agent processes on etcd (interval 1, timeout 1, retries 2, grace 5, ttl 3, renew 1)', function () {
  this.timeout(60_000);
  const TTL_MS = 3000;
  let endpoint: string;
  let namespace: string;
  let reader: ClusterReader;
  let upstreams: SampleUpstream[] = [];
  let agents: AgentProcess[] = [];

  before(async () => {
    assertBuilt();
    endpoint = (await sharedEtcd()).endpoint;
  });

  beforeEach(async () => {
    namespace = uniqueNamespace('cluster');
    reader = new ClusterReader(endpoint, namespace);
    upstreams = await Promise.all([0, 1, 2].map(() => startSampleUpstream()));
    agents = upstreams.map((u, i) =>
      spawnAgent({ endpoint, namespace, id: `ps-${i + 1}`, servicePort: u.port, region: i === 2 ? 'us-west-2' : 'us-east-1' }),
    );
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const a of agents) console.error(`--- ${a.id} output ---\n${a.output().slice(-3000)}`);
    }
    for (const a of agents) a.signal('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    await Promise.all(upstreams.map((u) => u.close()));
    await reader.close();
  });

  async function allHealthy() {
    return waitFor(
      'three healthy services and one leader',
      async () => {
        const state = await reader.read();
        const services = state.services();
        return services.length === 3 && services.every((s) => s.status === 'healthy') && state.electionCandidates().length === 3 ? state : undefined;
      },
      15_000,
    );
  }

  it('lists all three healthy with exactly one leader, role in every record', async () => {
    const state = await allHealthy();
    const services = state.services();
    expect(services.map((s) => s.id)).to.deep.equal(['ps-1', 'ps-2', 'ps-3']);
    expect(services.filter((s) => s.role === 'leader')).to.have.length(1);
    expect(state.electionCandidates()).to.have.length(3);
    for (const s of services) {
      expect(s).to.include({ name: 'proxy-stone', host: '127.0.0.1', enabled: true, isHealthy: true });
      expect(s.health.status).to.equal('healthy');
      expect(s.health.responseTime).to.be.a('number');
    }
    expect(services.find((s) => s.id === 'ps-3')!.region).to.equal('us-west-2');
    // One live lease per agent: the record and the election key share it.
    const { kvs } = await reader.registry.list(`${namespace}/`);
    const leases = new Set(kvs.filter((kv) => kv.lease !== '0').map((kv) => kv.lease));
    expect(leases.size).to.equal(3);
  });

  it('kill -9 of the leader: a new leader within the TTL and its entry removed', async () => {
    const before = await allHealthy();
    const leaderId = before.leaderId()!;
    const leader = agents.find((a) => a.id === leaderId)!;
    const killedAt = Date.now();
    leader.signal('SIGKILL');
    const after = await waitFor(
      'a new leader',
      async () => {
        const s = await reader.read();
        const id = s.leaderId();
        return id && id !== leaderId ? s : undefined;
      },
      TTL_MS + 3000,
    );
    const failover = Date.now() - killedAt;
    expect(after.service(leaderId), 'the dead leader record expires with its lease').to.equal(undefined);
    expect(after.services().filter((s) => s.role === 'leader')).to.have.length(1);
    // Etcd expires a lease between TTL and TTL + its tick; we only bound it loosely here (bench/ measures).
    expect(failover).to.be.lessThan(TTL_MS + 3000);
  });

  it('a failing upstream turns its record unhealthy, and healthy again when it recovers', async () => {
    await allHealthy();
    upstreams[1]!.setMode('down');
    const failedAt = Date.now();
    await waitFor(
      'ps-2 unhealthy',
      async () => (await reader.read()).service('ps-2')?.status === 'unhealthy',
      1000 * (1 * 2 + 1) + 4000,
    );
    // interval x retries + timeout + 1 s is the bound an operator is promised; allow CI slack on top.
    expect(Date.now() - failedAt).to.be.lessThan(1000 * (1 * 2 + 1) + 4000);
    const unhealthy = (await reader.read()).service('ps-2')!;
    expect(unhealthy.isHealthy).to.equal(false);
    expect(unhealthy.health.consecutiveFailures).to.be.at.least(2);
    upstreams[1]!.setMode('up');
    await waitFor('ps-2 healthy again', async () => (await reader.read()).service('ps-2')?.status === 'healthy', 5000);
  });

  it('SIGTERM removes the entry at once and hands leadership over', async () => {
    const state = await allHealthy();
    const leaderId = state.leaderId()!;
    const leader = agents.find((a) => a.id === leaderId)!;
    const t0 = Date.now();
    leader.signal('SIGTERM');
    await waitFor('the entry gone', async () => (await reader.read()).service(leaderId) === undefined, 2000, 10);
    const gone = Date.now() - t0;
    const next = await waitFor(
      'another leader',
      async () => {
        const id = (await reader.read()).leaderId();
        return id && id !== leaderId ? id : undefined;
      },
      2000,
      10,
    );
    expect(next).to.not.equal(leaderId);
    expect(gone).to.be.lessThan(2000);
    expect(await leader.exited).to.equal(0);
    expect(leader.output()).to.match(/deregistered: lease revoked/);
  });
});
