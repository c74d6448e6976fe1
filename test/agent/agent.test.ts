import { expect } from 'chai';
import { ServiceAgent } from '../../src/agent/agent.js';
import { configFromPartial } from '../../src/config/load.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import type { Registry } from '../../src/registry/types.js';
import { ProxyStoneServiceDiscovery } from '../../src/service-discovery.js';
import type { ClusterEvent, ServiceRecord } from '../../src/types.js';
import { waitFor } from '../helpers/cluster.js';
import { useTestAgents } from '../helpers/agents.js';

/** In-process agents, run on both registries: the memory one must behave as etcd does. */
for (const backend of ['memory', 'etcd'] as const) {
  describe(`agents in-process on ${backend}`, function () {
    this.timeout(30_000);
    const t = useTestAgents(backend, 'agent');
    let registry: Registry;
    let namespace: string;
    let upstreams: SampleUpstream[];
    let agents: ServiceAgent[];
    beforeEach(() => ({ registry, namespace, upstreams, agents } = t));

    // One instance per region here; the capacity guard has its own tests (drain.test.ts).
    const agent = (id: string, region = 'us-east-1', extra: { ttl?: number } = {}): Promise<ServiceAgent> =>
      t.agent(id, { region, zone: `${region}a`, ...extra });

    const leaders = () => agents.filter((a) => a.isLeader());

    it('elects exactly one leader and every agent agrees on it', async () => {
      await Promise.all([agent('a'), agent('b'), agent('c')]);
      await waitFor('one leader', () => leaders().length === 1 && agents.every((a) => a.view.leaderId() === leaders()[0]!.id), 5000);
      const services = await agents[0]!.getAvailableServices();
      expect(services.map((s) => s.role).filter((r) => r === 'leader')).to.have.length(1);
    });

    it('re-registers under a new lease after its lease is lost, keeping one live lease', async () => {
      const a = await agent('a');
      const b = await agent('b');
      await waitFor('b sees a', () => b.view.service('a'), 5000);
      const events: ClusterEvent[] = [];
      b.on('event', (e) => events.push(e));
      const oldLease = a.status().lease.id!;
      // What an etcd restart past the TTL or a long pause does: the lease is gone server-side.
      const leaseOf = (await registry.get(a.layout.service('a')))!.lease;
      expect(leaseOf).to.equal(oldLease);
      await (backend === 'etcd'
        ? (registry as EtcdRegistry).client.leaseClient.leaseRevoke({ ID: oldLease })
        : (registry as MemoryRegistry).revokeLease(oldLease));
      await waitFor('a registered again', () => a.status().lease.id !== oldLease && a.status().lease.id !== null, 5000);
      // b's view held a all along, so "b sees a" proves nothing: wait for the leave and the join.
      const seen = () => events.map((e) => `${e.type}:${'serviceId' in e ? e.serviceId : ''}`);
      await waitFor('b sees a leave and join again', () => seen().includes('serviceLeft:a') && seen().lastIndexOf('serviceJoined:a') > seen().indexOf('serviceLeft:a'), 5000);
      expect(b.view.service('a')).to.be.ok;
      // a's record and election key sit on one lease, b has its own: two agents, two leases.
      const { kvs } = await registry.list(`${namespace}/`);
      expect(new Set(kvs.filter((kv) => kv.lease !== '0').map((kv) => kv.lease)).size).to.equal(2);
    });

    it('fences a deposed leader: its leader-only write is refused once its key is gone', async () => {
      const a = await agent('a');
      await waitFor('a leads', () => a.isLeader(), 5000);
      const token = a.fencingToken()!;
      const ok = await a.leaderWrite([{ type: 'put', key: `${namespace}/leader-note`, value: 'a' }]);
      expect(ok.succeeded).to.equal(true);
      const b = await agent('b');
      // Depose a behind its back (as if its lease expired while it was frozen).
      await registry.delete(token.electionKey!);
      await waitFor('b leads', () => b.isLeader(), 5000);
      const refused = await a.fencedTxn(token, [{ type: 'put', key: `${namespace}/leader-note`, value: 'stale a' }]);
      expect(refused.succeeded).to.equal(false);
      expect((await registry.get(`${namespace}/leader-note`))!.value).to.equal('a');
    });

    it('detects an unhealthy upstream and publishes only on change', async () => {
      const a = await agent('a');
      await waitFor('healthy leader', async () => {
        const stored = await registry.get(a.layout.service('a'));
        return stored && JSON.parse(stored.value).status === 'healthy' && JSON.parse(stored.value).role === 'leader';
      }, 5000);
      const revisionBefore = (await registry.status()).revision;
      // Steady state: several health checks, no record writes (keep-alives are not revisions).
      await new Promise((r) => setTimeout(r, 1000));
      const steady = (await registry.status()).revision;
      expect(steady - revisionBefore, 'registry writes in steady state').to.equal(0);
      upstreams[0]!.setMode('down');
      await waitFor('unhealthy', () => a.view.service('a')?.status === 'unhealthy', 3000);
      expect(a.view.service('a')!.isHealthy).to.equal(false);
      expect(a.healthHistory().some((h) => h.change?.to === 'unhealthy')).to.equal(true);
    });

    it('disable is operator intent: not healthy for routing, survives an agent restart, audited', async () => {
      const a = await agent('a', 'us-east-1');
      const b = await agent('b', 'us-west-2');
      await waitFor('both healthy', () => a.view.services().filter((s) => s.isHealthy).length === 2, 5000);
      const res = await b.setServiceEnabled('a', false, { reason: 'deploy', actor: 'test' });
      expect(res.changed).to.equal(true);
      const again = await b.setServiceEnabled('a', false, { reason: 'deploy', actor: 'test' });
      expect(again.changed).to.equal(false);
      await waitFor('a disabled everywhere', () => agents.every((x) => x.view.service('a')?.enabled === false), 3000);
      expect((await b.getHealthyServices()).map((s) => s.id)).to.deep.equal(['b']);
      expect((await b.getHealthyServices({ region: 'us-west-2' })).map((s) => s.id)).to.deep.equal(['b']);
      // The agent writes the intent into its own record too, for etcdctl readers.
      await waitFor('record says disabled', async () => JSON.parse((await registry.get(a.layout.service('a')))!.value).enabled === false, 3000);
      await a.stop();
      t.remove(a);
      agents = t.agents;
      await agent('a', 'us-east-1');
      await waitFor('a back, still disabled', () => b.view.service('a')?.enabled === false && b.view.service('a')?.status === 'healthy', 5000);
      const audit = await b.getAudit({ serviceId: 'a' });
      // The repeat changed nothing: not audited.
      expect(audit.map((e) => [e.action, e.changed, e.actor, e.reason])).to.deep.equal([['disable', true, 'test', 'deploy']]);
      await b.setServiceEnabled('a', true);
      await waitFor('a enabled', () => b.view.service('a')?.isHealthy === true, 3000);
    });

    it('skips garbage and foreign keys under the namespace with a warning', async () => {
      await registry.put(`${namespace}/services/broken`, '{not json');
      await registry.put(`${namespace}/services/wrong`, JSON.stringify({ id: 'wrong', name: 1 }));
      await registry.put(`${namespace}/somebody-else/key`, 'x');
      const warnings: string[] = [];
      const a = new ServiceAgent({
        registry,
        config: configFromPartial({
          cluster: {
            leaderElection: { ttl: 2, renewInterval: 0.5 },
            healthCheck: { interval: 0.2, timeout: 0.2, retries: 1, gracePeriod: 0 },
            discovery: { registry: 'memory', namespace },
          },
          service: { id: 'a', host: '127.0.0.1', port: (upstreams[0] = await startSampleUpstream()).port },
        }),
      });
      a.on('warning', (w) => warnings.push(w));
      agents.push(a);
      await a.start();
      await registry.put(`${namespace}/admin/a`, 'garbage');
      await waitFor('a listed', () => a.view.service('a'), 3000);
      await waitFor('warnings', () => warnings.length >= 4, 3000);
      expect(a.view.services().map((s) => s.id)).to.deep.equal(['a']);
      expect(warnings.join('\n')).to.match(/services\/broken: not JSON/).and.match(/somebody-else/).and.match(/admin\/a/);
    });

    it('graceful stop hands leadership over without waiting for the TTL', async () => {
      const a = await agent('a', 'us-east-1', { ttl: 10 });
      const b = await agent('b', 'us-east-1', { ttl: 10 });
      await waitFor('a leads', () => a.isLeader() && b.view.leaderId() === 'a', 5000);
      const t0 = Date.now();
      await a.stop();
      await waitFor('b leads', () => b.isLeader(), 2000, 5);
      expect(Date.now() - t0).to.be.lessThan(2000);
      expect(b.view.service('a')).to.equal(undefined);
    });
  });
}

describe('ProxyStoneServiceDiscovery (the seed\'s programmatic API)', function () {
  this.timeout(20_000);
  it('takes the seed config shape and emits the seed events with their payloads', async () => {
    const registry = new MemoryRegistry();
    const up1 = await startSampleUpstream();
    const up2 = await startSampleUpstream();
    const seedConfig = (port: number) => ({
      enabled: true,
      cluster: {
        name: 'proxy-stone-cluster',
        leaderElection: { enabled: true, ttl: 2, renewInterval: 0.5 },
        healthCheck: { interval: 0.2, timeout: 0.2, retries: 2, gracePeriod: 1 },
        discovery: { registry: 'memory' as const, endpoints: [], namespace: 'seed' },
      },
      service: { name: 'proxy-stone', host: '127.0.0.1', port, version: '1.0.0', tags: ['proxy-stone', 'backend'], region: 'us-east-1', zone: 'us-east-1a' },
    });
    const one = new ProxyStoneServiceDiscovery(seedConfig(up1.port), undefined, { registry });
    const two = new ProxyStoneServiceDiscovery(seedConfig(up2.port), undefined, { registry });
    const joined: ServiceRecord[] = [];
    const left: string[] = [];
    const leadersSeen: (string | null)[] = [];
    one.on('serviceJoined', (service) => joined.push(service));
    one.on('serviceLeft', (serviceId) => left.push(serviceId));
    one.on('leaderElected', (leaderId) => leadersSeen.push(leaderId));
    try {
      await one.start();
      await two.start();
      await waitFor('both healthy', async () => (await one.getHealthyServices()).length === 2, 5000);
      expect(joined.map((s) => s.id)).to.include(two.id);
      const topology = await one.getClusterTopology();
      expect(topology).to.include({ totalServices: 2, healthyServices: 2, unhealthyServices: 0 });
      expect(topology.servicesByRegion).to.deep.equal({ 'us-east-1': 2 });
      expect(topology.leader?.id).to.equal(one.id);
      expect(one.isLeader()).to.equal(true);
      await one.setServiceEnabled(two.id, false);
      await waitFor('two not healthy', async () => (await one.getHealthyServices()).length === 1, 3000);
      await two.stop();
      await waitFor('two left', () => left.includes(two.id), 3000);
      expect(leadersSeen).to.include(one.id);
    } finally {
      await one.stop();
      await two.stop();
      await up1.close();
      await up2.close();
      await registry.close();
    }
  });
});
