import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/api/metrics.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import type { MemoryRegistry } from '../../src/registry/memory.js';
import { TestCluster, eventually, http } from './fixtures.js';

/** The metric names of the seed and of the brief, each with its type. */
const EXPECTED: Record<string, 'gauge' | 'counter' | 'histogram'> = {
  proxy_stone_services_total: 'gauge',
  proxy_stone_services_routable: 'gauge',
  proxy_stone_health_check_duration_seconds: 'histogram',
  proxy_stone_leader_elections_total: 'counter',
  proxy_stone_service_registrations_total: 'counter',
  proxy_stone_cluster_size: 'gauge',
  proxy_stone_registry_request_duration_seconds: 'histogram',
  proxy_stone_lease_keepalive_failures_total: 'counter',
  proxy_stone_watch_reconnects_total: 'counter',
  proxy_stone_sse_clients: 'gauge',
  proxy_stone_is_leader: 'gauge',
  proxy_stone_view_stale: 'gauge',
  proxy_stone_health_checks_total: 'counter',
  proxy_stone_services_by_region: 'gauge',
  proxy_stone_service_info: 'gauge',
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
};

/**
 * promtool lints non-counters ending in `_total`. These are expected: the seed names the gauge
 * `proxy_stone_services_total`, and prom-client's default metrics name three gauges that way.
 */
const EXPECTED_LINT = new Set([
  'proxy_stone_services_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
]);

/** Every sample of `name` as [labels, value], labels as an object. */
function samples(text: string, name: string): Array<[Record<string, string>, number]> {
  const out: Array<[Record<string, string>, number]> = [];
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push([labels, Number(m[2])]);
  }
  return out;
}

/** `name{labels} value` of one sample, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const re = new RegExp(`^${name}${labels ? `\\{${labels.replace(/[{}]/g, '\\$&')}\\}` : ''} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

function promtoolAvailable(): boolean {
  return spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
}

describe('API metrics (/metrics)', function () {
  let cluster: TestCluster;
  let a: ServiceAgent;
  let b: ServiceAgent;
  let apiA: ApiServer;
  let apiB: ApiServer;

  before(async function () {
    cluster = await TestCluster.memory();
    const metricsA = new AgentMetrics();
    a = await cluster.addAgent({ id: 'm-a' }, { wrap: (r) => metricsA.instrumentRegistry(r), start: false });
    // Observing before start() is the order that sees everything.
    metricsA.observe(a);
    await a.start();
    b = await cluster.addAgent({ id: 'm-b', region: 'eu-west-1', zone: 'eu-west-1a' });
    await cluster.settled(2);
    apiA = await startApiServer(a, { host: '127.0.0.1', port: 0, auth: { keys: [], readAccess: 'open' }, metrics: metricsA });
    apiB = await startApiServer(b, { host: '127.0.0.1', port: 0, auth: { keys: [], readAccess: 'open' } });
  });

  after(async function () {
    await apiA?.close();
    await apiB?.close();
    await cluster?.stop();
  });

  it('exposes every metric of the seed and the brief with its type', async function () {
    const res = await http(`${apiA.url}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    for (const [name, type] of Object.entries(EXPECTED)) {
      expect(res.text, name).to.match(new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
    }
    for (const status of ['healthy', 'unhealthy', 'starting', 'draining', 'stopped']) {
      expect(sample(res.text, 'proxy_stone_services_total', `status="${status}"`), status).to.be.a('number');
    }
    expect(sample(res.text, 'proxy_stone_services_total', 'status="healthy"')).to.equal(2);
    expect(sample(res.text, 'proxy_stone_cluster_size')).to.equal(2);
    expect(sample(res.text, 'proxy_stone_service_registrations_total', 'kind="initial"')).to.equal(1);
    expect(sample(res.text, 'proxy_stone_view_stale')).to.equal(0);
    expect(sample(res.text, 'proxy_stone_health_checks_total', 'outcome="success"')).to.be.greaterThan(0);
    expect(sample(res.text, 'proxy_stone_health_check_duration_seconds_count', 'outcome="success"')).to.be.greaterThan(0);
    expect(sample(res.text, 'proxy_stone_registry_request_duration_seconds_count', 'operation="grantLease",outcome="ok"')).to.equal(1);
    // No secret, no per-request label explosion: every name appears under one HELP only.
    const helps = res.text.split('\n').filter((l) => l.startsWith('# HELP ')).map((l) => l.split(' ')[2]);
    expect(new Set(helps).size).to.equal(helps.length);
  });

  it('gives each agent in one process its own valid metrics', async function () {
    const [ta, tb] = await Promise.all([http(`${apiA.url}/metrics`), http(`${apiB.url}/metrics`)]);
    const leaders = [sample(ta.text, 'proxy_stone_is_leader'), sample(tb.text, 'proxy_stone_is_leader')];
    expect(leaders.sort()).to.deep.equal([0, 1]);
    expect(leaders[0]! + leaders[1]!).to.equal(1);
    // b's registry was not wrapped: its registry histogram is declared but has no samples.
    expect(sample(tb.text, 'proxy_stone_registry_request_duration_seconds_count', 'operation="put",outcome="ok"')).to.equal(undefined);
    expect(sample(tb.text, 'proxy_stone_service_registrations_total', 'kind="initial"')).to.equal(1);
    for (const text of [ta.text, tb.text]) expect(text.match(/^# TYPE process_cpu_seconds_total /gm)).to.have.length(1);
  });

  it('passes promtool check metrics', function () {
    if (!promtoolAvailable()) {
      console.warn('    (skipped: promtool is not installed; CI installs it, e.g. apt-get install prometheus)');
      this.skip();
    }
    return (async () => {
      for (const api of [apiA, apiB]) {
        const text = (await http(`${api.url}/metrics`)).text;
        const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        const problems = `${run.stdout}${run.stderr}`
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !EXPECTED_LINT.has(l));
        expect(problems, `promtool found:\n${problems.join('\n')}`).to.deep.equal([]);
        // Exit 3 is "lint problems", all of them expected above; anything else is a parse failure.
        expect(run.status, run.stderr).to.be.oneOf([0, 3]);
      }
    })();
  });

  it('breaks the cluster down by region and zone, and gives one info series per service', async function () {
    const text = (await http(`${apiA.url}/metrics`)).text;
    expect(samples(text, 'proxy_stone_services_by_region')).to.have.deep.members([
      [{ region: 'us-east-1', zone: 'us-east-1a' }, 1],
      [{ region: 'eu-west-1', zone: 'eu-west-1a' }, 1],
    ]);
    const info = samples(text, 'proxy_stone_service_info');
    expect(info.map(([l]) => l.service_id).sort()).to.deep.equal(['m-a', 'm-b']);
    expect(info.every(([, v]) => v === 1)).to.equal(true);
    const leader = a.isLeader() ? 'm-a' : 'm-b';
    expect(info.find(([l]) => l.service_id === 'm-b')![0]).to.deep.equal({
      service_id: 'm-b',
      region: 'eu-west-1',
      zone: 'eu-west-1a',
      version: '1.0.0',
      status: 'healthy',
      role: leader === 'm-b' ? 'leader' : 'follower',
      enabled: 'true',
    });
    // b's own view says the same (every agent reports the whole cluster).
    const textB = (await http(`${apiB.url}/metrics`)).text;
    expect(samples(textB, 'proxy_stone_services_by_region')).to.have.deep.members(samples(text, 'proxy_stone_services_by_region'));

    // A label change replaces the series: no stale `enabled="true"` series is left behind.
    await a.setServiceEnabled('m-b', false, { reason: 'metrics test', actor: 'test' });
    const disabled = await eventually('m-b disabled in the info series', async () => {
      const t = (await http(`${apiA.url}/metrics`)).text;
      return samples(t, 'proxy_stone_service_info').some(([l]) => l.service_id === 'm-b' && l.enabled === 'false') ? t : undefined;
    });
    expect(samples(disabled, 'proxy_stone_service_info').filter(([l]) => l.service_id === 'm-b')).to.have.length(1);
    await a.setServiceEnabled('m-b', true, { actor: 'test' });

    // A zone that loses its last service disappears instead of lingering at 0.
    const c = await cluster.addAgent({ id: 'm-c', region: 'ap-south-1', zone: 'ap-south-1b' });
    await eventually('m-c counted', async () =>
      samples((await http(`${apiA.url}/metrics`)).text, 'proxy_stone_services_by_region').some(([l, v]) => l.region === 'ap-south-1' && v === 1),
    );
    await c.stop();
    cluster.agents.splice(cluster.agents.indexOf(c), 1);
    const after = await eventually('m-c gone', async () => {
      const t = (await http(`${apiA.url}/metrics`)).text;
      return sample(t, 'proxy_stone_cluster_size') === 2 ? t : undefined;
    });
    expect(samples(after, 'proxy_stone_services_by_region').map(([l]) => l.region).sort()).to.deep.equal(['eu-west-1', 'us-east-1']);
    expect(samples(after, 'proxy_stone_service_info').map(([l]) => l.service_id).sort()).to.deep.equal(['m-a', 'm-b']);
  });

  it('counts by health status in proxy_stone_services_total, and only what takes traffic in proxy_stone_services_routable', async function () {
    const scrape = async () => (await http(`${apiA.url}/metrics`)).text;
    expect(sample(await scrape(), 'proxy_stone_services_routable')).to.equal(2);
    // Disabled, the instance is still healthy by its checks, but takes no traffic.
    await a.setServiceEnabled('m-b', false, { reason: 'metrics test', force: true, drainTimeout: 0 });
    try {
      await eventually('m-b out of the routable count', async () => sample(await scrape(), 'proxy_stone_services_routable') === 1);
      const text = await scrape();
      expect(sample(text, 'proxy_stone_services_total', 'status="healthy"')).to.equal(2);
      expect(sample(text, 'proxy_stone_services_total', 'status="unhealthy"')).to.equal(0);
    } finally {
      await a.setServiceEnabled('m-b', true);
    }
    await eventually('m-b routable again', async () => sample(await scrape(), 'proxy_stone_services_routable') === 2);
  });

  it('counts watch reconnects, keep-alive failures and leader elections', async function () {
    const client = cluster.clients.get('m-a') as MemoryRegistry;
    client.setAvailable(false);
    await eventually('a stale view', () => a.isStale());
    const staleText = (await http(`${apiA.url}/metrics`)).text;
    expect(sample(staleText, 'proxy_stone_view_stale')).to.equal(1);
    await eventually('a failed keep-alive', async () =>
      (sample((await http(`${apiA.url}/metrics`)).text, 'proxy_stone_lease_keepalive_failures_total') ?? 0) > 0,
    );
    client.setAvailable(true);
    await eventually('the view current again', () => !a.isStale());
    const text1 = (await http(`${apiA.url}/metrics`)).text;
    expect(sample(text1, 'proxy_stone_watch_reconnects_total')).to.equal(1);
    expect(sample(text1, 'proxy_stone_view_stale')).to.equal(0);
    expect(sample(text1, 'proxy_stone_registry_request_duration_seconds_count', 'operation="keepAlive",outcome="error"')).to.be.greaterThan(0);

    // The leader (a, which registered first) leaves: b sees itself elected.
    await eventually('a leads', () => a.isLeader());
    const electionsB = sample((await http(`${apiB.url}/metrics`)).text, 'proxy_stone_leader_elections_total')!;
    await a.stop();
    const textB = await eventually('b counts an election', async () => {
      const t = (await http(`${apiB.url}/metrics`)).text;
      return sample(t, 'proxy_stone_leader_elections_total')! > electionsB ? t : undefined;
    });
    expect(sample(textB, 'proxy_stone_is_leader')).to.equal(1);
    expect(sample(textB, 'proxy_stone_cluster_size')).to.equal(1);
  });
});
