import { expect } from 'chai';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { prometheusTargets, MAX_LABEL_VALUE_CHARS } from '../../src/api/prometheus-sd.js';
import { PrometheusTargetsSchema } from '../../src/api/schemas.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { putUnderLease, sampleRecord } from '../helpers/records.js';
import { TestCluster, eventually, http } from './fixtures.js';

const KEY = 'prom-sd-viewer-key-42';

describe('Prometheus HTTP service discovery: target groups', function () {
  it('one group per instance, sorted by id, with the plain and the relabelling labels', function () {
    const groups = prometheusTargets([
      sampleRecord('b', { zone: 'us-east-1b', apiUrl: 'http://10.0.0.2:8790', role: 'leader', tags: ['edge', 'eu'] }),
      sampleRecord('a', { host: '10.0.0.1', port: 3001, status: 'unhealthy', enabled: false, apiUrl: 'http://10.0.0.1:8790' }),
    ]);
    expect(groups).to.deep.equal([
      {
        targets: ['10.0.0.1:8790'],
        labels: {
          service_id: 'a',
          service_name: 'proxy-stone',
          region: 'us-east-1',
          zone: 'us-east-1a',
          version: '1.0.0',
          status: 'unhealthy',
          __meta_proxy_stone_role: 'follower',
          __meta_proxy_stone_enabled: 'false',
          __meta_proxy_stone_healthy: 'false',
          __meta_proxy_stone_tags: '',
          __meta_proxy_stone_instance: '10.0.0.1:3001',
          __meta_proxy_stone_agent: '10.0.0.1:8790',
        },
      },
      {
        targets: ['10.0.0.2:8790'],
        labels: {
          service_id: 'b',
          service_name: 'proxy-stone',
          region: 'us-east-1',
          zone: 'us-east-1b',
          version: '1.0.0',
          status: 'healthy',
          __meta_proxy_stone_role: 'leader',
          __meta_proxy_stone_enabled: 'true',
          __meta_proxy_stone_healthy: 'true',
          __meta_proxy_stone_tags: ',edge,eu,',
          __meta_proxy_stone_instance: '10.0.0.1:3000',
          __meta_proxy_stone_agent: '10.0.0.2:8790',
        },
      },
    ]);
    expect(() => PrometheusTargetsSchema.parse(groups)).to.not.throw();
  });

  it('target=instance lists the instances themselves, also those whose agent serves no API', function () {
    const groups = prometheusTargets(
      [sampleRecord('a', { host: 'ps-1.internal', port: 3001 }), sampleRecord('b', { host: '::1', port: 3002, apiUrl: 'http://[::1]:8790' })],
      'instance',
    );
    expect(groups.map((g) => g.targets)).to.deep.equal([['ps-1.internal:3001'], ['[::1]:3002']]);
    expect(groups[0]!.labels).to.not.have.property('__meta_proxy_stone_agent');
    expect(groups[1]!.labels.__meta_proxy_stone_agent).to.equal('[::1]:8790');
    // Reserved labels describe the agent's API only.
    for (const g of groups) expect(Object.keys(g.labels).filter((k) => k.startsWith('__') && !k.startsWith('__meta_'))).to.deep.equal([]);
  });

  it('an agent over HTTPS or under a path prefix gets __scheme__ and __metrics_path__; default ports are explicit', function () {
    const [tls, prefixed, plain] = prometheusTargets([
      sampleRecord('a', { apiUrl: 'https://ps-1.internal' }),
      sampleRecord('b', { apiUrl: 'http://ps-2.internal:3001/sd/' }),
      sampleRecord('c', { apiUrl: 'http://ps-3.internal' }),
    ]);
    expect(tls!.targets).to.deep.equal(['ps-1.internal:443']);
    expect(tls!.labels).to.include({ __scheme__: 'https' }).and.not.have.property('__metrics_path__');
    expect(prefixed!.targets).to.deep.equal(['ps-2.internal:3001']);
    expect(prefixed!.labels).to.include({ __metrics_path__: '/sd/metrics' }).and.not.have.property('__scheme__');
    expect(plain!.targets).to.deep.equal(['ps-3.internal:80']);
    expect(plain!.labels).to.not.have.any.keys('__scheme__', '__metrics_path__');
  });

  it('leaves out what cannot be scraped: no API URL, a non-http(s) or credentialed URL, a host that is not a host', function () {
    const groups = prometheusTargets([
      sampleRecord('none'),
      sampleRecord('file', { apiUrl: 'file:///etc/passwd' }),
      sampleRecord('creds', { apiUrl: 'http://user:secret@10.0.0.9:8790' }),
      sampleRecord('garbage', { apiUrl: 'not a url' }),
      sampleRecord('ok', { apiUrl: 'http://10.0.0.9:8790' }),
    ]);
    expect(groups.map((g) => g.labels.service_id)).to.deep.equal(['ok']);
    const instances = prometheusTargets(
      [sampleRecord('space', { host: 'a b' }), sampleRecord('slash', { host: 'a/b' }), sampleRecord('zero', { port: 0 }), sampleRecord('ok', { host: 'ps-1' })],
      'instance',
    );
    expect(instances.map((g) => g.targets[0])).to.deep.equal(['ps-1:3000']);
  });

  it('label values are registry data: control and bidi characters replaced, lone surrogates mended, length bounded', function () {
    const [g] = prometheusTargets([
      sampleRecord('evil', {
        apiUrl: 'http://10.0.0.1:8790',
        name: 'a\u001b[31mred\u0007\u202egnp.exe',
        region: 'x'.repeat(10_000),
        zone: `${'🙂'.repeat(MAX_LABEL_VALUE_CHARS)}`,
        version: 'v\ud800x',
      }),
    ]);
    expect(g!.labels.service_name).to.equal('a\ufffd[31mred\ufffd\ufffdgnp.exe');
    expect(g!.labels.region).to.have.length(MAX_LABEL_VALUE_CHARS);
    expect(g!.labels.region!.endsWith('…')).to.equal(true);
    // Cut by characters, never inside a surrogate pair.
    expect(Array.from(g!.labels.zone!)).to.have.length(MAX_LABEL_VALUE_CHARS);
    expect(new TextDecoder().decode(new TextEncoder().encode(g!.labels.zone!))).to.equal(g!.labels.zone);
    expect(g!.labels.version).to.equal('v\ufffdx');
  });
});

describe('API: GET /service-discovery/prometheus/targets', function () {
  let cluster: TestCluster;
  let a: ServiceAgent;
  let open: ApiServer;
  let guarded: ApiServer;

  before(async function () {
    cluster = await TestCluster.memory();
    a = await cluster.addAgent({ id: 'prom-a', zone: 'us-east-1a' });
    const b = await cluster.addAgent({ id: 'prom-b', zone: 'us-east-1b', port: 3001 });
    await cluster.settled(2);
    open = await startApiServer(a, { host: '127.0.0.1', port: 0, auth: { keys: [], readAccess: 'open' } });
    guarded = await startApiServer(b, { host: '127.0.0.1', port: 0, auth: { keys: [{ name: 'prometheus', role: 'viewer', key: KEY }], readAccess: 'viewer' } });
    a.setApiUrl(open.url);
    b.setApiUrl(guarded.url);
  });

  after(async function () {
    await open?.close();
    await guarded?.close();
    await cluster?.stop();
  });

  it("answers Prometheus's http_sd format with every instance's agent, as JSON", async function () {
    const res = await eventually('both agents advertised', async () => {
      const r = await http(`${open.url}/service-discovery/prometheus/targets`);
      return (r.json as unknown[] | undefined)?.length === 2 ? r : undefined;
    });
    expect(res.status).to.equal(200);
    // Prometheus refuses any other content type.
    expect(res.headers['content-type']).to.match(/^application\/json(; charset=utf-8)?$/);
    const groups = PrometheusTargetsSchema.parse(res.json);
    expect(groups.map((g) => [g.targets[0], g.labels.service_id, g.labels.zone, g.labels.status])).to.deep.equal([
      [new URL(open.url).host, 'prom-a', 'us-east-1a', 'healthy'],
      [new URL(guarded.url).host, 'prom-b', 'us-east-1b', 'healthy'],
    ]);
  });

  it('?target=instance lists the instances; another value is a 400 naming the parameter', async function () {
    const res = await http(`${open.url}/service-discovery/prometheus/targets?target=instance`);
    expect(PrometheusTargetsSchema.parse(res.json).map((g) => g.targets[0])).to.deep.equal(['127.0.0.1:3000', '127.0.0.1:3001']);
    const bad = await http(`${open.url}/service-discovery/prometheus/targets?target=pods`);
    expect(bad.status).to.equal(400);
    expect(bad.json).to.deep.equal({ error: 'bad_request', message: 'target: expected one of agent, instance' });
  });

  it('is a read route: with read access "viewer", Prometheus needs a key (authorization in http_sd_configs)', async function () {
    const url = `${guarded.url}/service-discovery/prometheus/targets`;
    expect((await http(url)).status).to.equal(401);
    const res = await http(url, { headers: { Authorization: `Bearer ${KEY}` } });
    expect(res.status).to.equal(200);
    expect(PrometheusTargetsSchema.parse(res.json)).to.have.length(2);
  });

  it('follows the registry: a record written there, hostile values and all, appears cleaned; its removal removes it', async function () {
    const writer = await cluster.client();
    const layout = keyLayout('proxy-stone');
    const { isHealthy: _derived, ...stored } = sampleRecord('prom-x', { zone: 'zone\u001b]0;pwned\u0007', apiUrl: 'http://127.0.0.1:9' });
    await putUnderLease(writer, layout.service('prom-x'), JSON.stringify(stored));
    const url = `${open.url}/service-discovery/prometheus/targets`;
    const withX = await eventually('prom-x listed', async () => {
      const groups = PrometheusTargetsSchema.parse((await http(url)).json);
      return groups.find((g) => g.labels.service_id === 'prom-x');
    });
    expect(withX.labels.zone).to.equal('zone\ufffd]0;pwned\ufffd');
    await writer.delete(layout.service('prom-x'));
    await eventually('prom-x gone', async () => PrometheusTargetsSchema.parse((await http(url)).json).every((g) => g.labels.service_id !== 'prom-x'));
  });
});
