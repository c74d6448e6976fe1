/**
 * The API on agents backed by a real etcd (the shared test server, in a namespace of its own).
 */
import { expect } from 'chai';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/api/metrics.js';
import { ServiceListSchema, TopologySchema } from '../../src/api/schemas.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { SseClient, TestCluster, eventually, http, postJson } from './fixtures.js';

const KEY = 'etcd-api-operator-key';

describe('API on real etcd', function () {
  this.timeout(30_000);
  let cluster: TestCluster;
  let a: ServiceAgent;
  let api: ApiServer;
  let sse: SseClient | undefined;

  before(async function () {
    const etcd = await sharedEtcd();
    const namespace = uniqueNamespace('api');
    cluster = await TestCluster.custom(() => new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 2000 }), {
      registry: 'etcd',
      endpoints: [etcd.endpoint],
      namespace,
    });
    const metrics = new AgentMetrics();
    a = await cluster.addAgent({ id: 'etcd-a', zone: 'us-east-1a' }, { wrap: (r) => metrics.instrumentRegistry(r), start: false });
    metrics.observe(a);
    await a.start();
    await cluster.addAgent({ id: 'etcd-b', zone: 'us-east-1b' });
    await cluster.addAgent({ id: 'etcd-c', region: 'eu-west-1', zone: 'eu-west-1a' });
    await cluster.settled(3);
    api = await startApiServer(a, {
      host: '127.0.0.1',
      port: 0,
      metrics,
      auth: { keys: [{ name: 'etcd-ops', role: 'operator', key: KEY }], readAccess: 'open' },
      events: { heartbeatMs: 200 },
    });
  });

  after(async function () {
    sse?.close();
    await api?.close();
    await cluster?.stop();
  });

  it('lists services and topology from etcd', async function () {
    const list = ServiceListSchema.parse((await http(`${api.url}/service-discovery/services`)).json);
    expect(list.services.map((s) => s.id)).to.deep.equal(['etcd-a', 'etcd-b', 'etcd-c']);
    const topo = TopologySchema.parse((await http(`${api.url}/service-discovery/topology`)).json);
    expect(topo.servicesByRegion).to.deep.equal({ 'us-east-1': 2, 'eu-west-1': 1 });
    expect(topo.leader?.id).to.equal('etcd-a');
    expect((await http(`${api.url}/health`)).status).to.equal(200);
  });

  it("streams a fourth agent's join, and disable/enable through the API reaches other agents", async function () {
    sse = new SseClient(`${api.url}/service-discovery/events`);
    await sse.opened;
    await cluster.addAgent({ id: 'etcd-d' });
    await sse.waitFor('serviceJoined etcd-d', (c) => c.events().find((e) => e.type === 'serviceJoined' && e.serviceId === 'etcd-d'));

    const res = await postJson(`${api.url}/service-discovery/services/etcd-d/disable`, { reason: 'etcd test' }, { Authorization: `Bearer ${KEY}` });
    expect(res.status, res.text).to.equal(200);
    const b = cluster.agents[1]!;
    await eventually('etcd-b sees etcd-d disabled', () => b.view.service('etcd-d')?.enabled === false);
    await sse.waitFor('serviceDisabled', (c) => c.events().find((e) => e.type === 'serviceDisabled' && e.serviceId === 'etcd-d'));
    const audit = await http(`${api.url}/service-discovery/audit?serviceId=etcd-d`);
    expect((audit.json as { entries: { actor: string }[] }).entries[0]!.actor).to.equal('etcd-ops');
    expect((await postJson(`${api.url}/service-discovery/services/etcd-d/enable`, {}, { Authorization: `Bearer ${KEY}` })).status).to.equal(200);
    await eventually('etcd-b sees etcd-d enabled', () => b.view.service('etcd-d')?.enabled === true);
  });

  it('times real etcd round trips in proxy_stone_registry_request_duration_seconds', async function () {
    // Keep-alives run every 0.5 s.
    await eventually('a timed keep-alive', async () =>
      /^proxy_stone_registry_request_duration_seconds_count\{operation="keepAlive",outcome="ok"\} [1-9]/m.test(
        (await http(`${api.url}/metrics`)).text,
      ),
    );
    const text = (await http(`${api.url}/metrics`)).text;
    expect(text).to.match(/^proxy_stone_registry_request_duration_seconds_count\{operation="txn",outcome="ok"\} [1-9]/m);
    expect(text).to.match(/^proxy_stone_is_leader 1$/m);
    expect(text).to.match(/^proxy_stone_cluster_size 4$/m);
  });
});
