import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { SampleUpstream } from '../../src/demo/demo.js';
import { PROMTOOL, startPrometheus, type PrometheusServer } from '../helpers/prometheus.js';
import { assertBuilt, eventually, ROOT, spawnPlacedAgents, type LoggedProcess } from './helpers.js';
import { dashboardExprs, readDashboard, substituteGrafanaVariables } from './promql.js';

const DOCS = path.join(ROOT, 'docs/prometheus');
/** The agents of the live test: id, region, zone (two regions, so a wrong grouping shows). */
const PLACES = [
  ['proxy-stone-1', 'us-east-1', 'us-east-1a'],
  ['proxy-stone-2', 'eu-west-1', 'eu-west-1a'],
] as const;

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, args, { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('deploy: Prometheus configuration and alert rules (promtool)', function () {
  this.timeout(30_000);

  it('promtool check rules accepts docs/prometheus/alerts.yml', () => {
    const r = promtool('check', 'rules', path.join(DOCS, 'alerts.yml'));
    expect(r.status, r.output).to.equal(0);
    expect(r.output).to.match(/SUCCESS: \d+ rules found/);
  });

  for (const file of ['prometheus.yml', 'prometheus-local.yml']) {
    it(`promtool check config accepts docs/prometheus/${file} (and the rule file it loads)`, () => {
      const r = promtool('check', 'config', path.join(DOCS, file));
      expect(r.status, r.output).to.equal(0);
      expect(r.output).to.include('SUCCESS: 1 rule files found');
    });
  }

  for (const file of ['prometheus.yml', 'prometheus-local.yml']) {
    it(`docs/prometheus/${file}: the agents' region/zone/service_id labels win over the target labels (honor_labels)`, () => {
      const config = parseYaml(readFileSync(path.join(DOCS, file), 'utf8')) as {
        scrape_configs: Array<{ job_name: string; honor_labels?: boolean; static_configs: Array<{ labels?: Record<string, string> }> }>;
      };
      const job = config.scrape_configs.find((j) => j.job_name === 'proxy-stone-sd')!;
      // The target labels share names with proxy_stone_services_by_region / proxy_stone_service_info's.
      expect(job.static_configs.some((c) => c.labels?.region !== undefined)).to.equal(true);
      expect(job.honor_labels).to.equal(true);
    });
  }

  it('every alert fires on the series it is about, with its annotations rendered (promtool test rules)', () => {
    const r = promtool('test', 'rules', path.join(ROOT, 'test/deploy/prometheus/alerts.test.yml'));
    expect(r.status, r.output).to.equal(0);
    expect(r.output).to.include('SUCCESS');
  });
});

describe('deploy: a real Prometheus scraping two real agents', function () {
  // Bounded: agents ~3 s to start, Prometheus ~1 s, a few 1 s scrapes.
  this.timeout(30_000);
  let upstream: SampleUpstream;
  const agents: LoggedProcess[] = [];
  let prometheus: PrometheusServer | undefined;
  let base: string;

  const query = (expr: string) => prometheus!.query(expr);

  before(async () => {
    assertBuilt();
    const placed = await spawnPlacedAgents(PLACES, 'deploy-prometheus');
    upstream = placed.upstream;
    agents.push(...placed.agents);
    const targets = await Promise.all(agents.map(async (a) => new URL(String((await a.waitForEvent('api.listening', 20_000)).url)).host));

    prometheus = await startPrometheus(
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'rule_files: [alerts.yml]',
        'scrape_configs:',
        '  - job_name: proxy-stone-sd',
        // As in docs/prometheus/prometheus.yml: one static config per agent, labelled with where it runs.
        '    honor_labels: true',
        '    static_configs:',
        ...targets.flatMap((target, i) => [
          `      - targets: [${JSON.stringify(target)}]`,
          `        labels: { service_id: ${PLACES[i]![0]}, region: ${PLACES[i]![1]}, zone: ${PLACES[i]![2]} }`,
        ]),
        '',
      ].join('\n'),
      // The rule file of the docs, evaluated every second against live data.
      { 'alerts.yml': readFileSync(path.join(DOCS, 'alerts.yml'), 'utf8') },
    );
    base = prometheus.base;
  });

  after(async () => {
    await prometheus?.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await upstream?.close();
  });

  it('reads proxy_stone_cluster_size = 2 from both agents through /api/v1/query', async () => {
    const result = await eventually(
      'both agents scraped with cluster size 2',
      async () => {
        const r = await query('proxy_stone_cluster_size{job="proxy-stone-sd"}');
        const series = r.data?.result ?? [];
        return series.length === 2 && series.every((s) => s.value[1] === '2') ? series : undefined;
      },
      15_000,
      250,
    );
    expect(result.map((s) => s.metric.instance).sort()).to.have.length(2);
    const leaders = await eventually('one leader', async () => {
      const r = await query('sum(proxy_stone_is_leader)');
      return r.data?.result[0]?.value[1] === '1' ? r : undefined;
    });
    expect(leaders.status).to.equal('success');
  });

  it('evaluates every alert rule of docs/prometheus/alerts.yml without error, and none fires on a healthy cluster', async () => {
    type Rules = { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; state?: string; lastEvaluation: string }> }> } };
    const rules = await eventually('every rule evaluated', async () => {
      const res = (await (await fetch(`${base}/api/v1/rules`)).json()) as Rules;
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined;
    });
    expect(rules.length).to.be.at.least(8);
    for (const rule of rules) expect(rule.health, `${rule.name}: ${rule.lastError ?? ''}`).to.equal('ok');
    // A rule may be pending for a second while the first scrapes come in (no leader yet): wait it out.
    await eventually('no alert pending or firing', async () => {
      const res = (await (await fetch(`${base}/api/v1/rules`)).json()) as Rules;
      const active = res.data.groups.flatMap((g) => g.rules).filter((r) => r.state !== 'inactive');
      return active.length === 0 || undefined;
    }, 5000, 250).catch(async (err: unknown) => {
      const res = (await (await fetch(`${base}/api/v1/rules`)).json()) as Rules;
      const active = res.data.groups.flatMap((g) => g.rules).filter((r) => r.state !== 'inactive');
      throw new Error(`${String(err)}: ${active.map((r) => `${r.name}=${r.state}`).join(', ')}`);
    });
  });

  it('accepts every expression of the Grafana dashboard, and the overview reads the live cluster', async () => {
    const dashboard = readDashboard(path.join(ROOT, 'docs/grafana/proxy-stone-sd.json'));
    const failures: string[] = [];
    for (const { where, expr } of dashboardExprs(dashboard)) {
      if (/^\s*label_values\(/.test(expr)) continue; // a Grafana function, not PromQL
      const r = await query(substituteGrafanaVariables(expr, { job: 'proxy-stone-sd', instance: '.*' }));
      if (r.status !== 'success') failures.push(`${where}: ${r.error ?? r.status}`);
    }
    expect(failures).to.deep.equal([]);
    const size = await query(substituteGrafanaVariables('max(proxy_stone_cluster_size{job=~"$job", instance=~"$instance"})', { job: 'proxy-stone-sd' }));
    expect(size.data?.result[0]?.value[1]).to.equal('2');
    const regions = await query('sum by (region, zone) (up{job="proxy-stone-sd"})');
    const byRegion = (r: Awaited<ReturnType<typeof query>>) => (r.data?.result ?? []).map((s) => [s.metric.region, s.value[1]]).sort();
    expect(byRegion(regions)).to.deep.equal([['eu-west-1', '1'], ['us-east-1', '1']]);
  });

  it("groups the services by the agents' own region labels, not by the scraped target's", async () => {
    // Each agent reports both services. Were the target's labels to win, every series scraped from
    // the us-east-1 agent would say us-east-1 (the real region moved to exported_region).
    const raw = await eventually('both agents report both regions', async () => {
      const r = await query('proxy_stone_services_by_region{job="proxy-stone-sd"}');
      const series = r.data?.result ?? [];
      return series.length === 4 ? series : undefined;
    });
    for (const instance of new Set(raw.map((s) => s.metric.instance))) {
      const mine = raw.filter((s) => s.metric.instance === instance).map((s) => `${s.metric.region}/${s.metric.zone}=${s.value[1]}`).sort();
      expect(mine, instance).to.deep.equal(['eu-west-1/eu-west-1a=1', 'us-east-1/us-east-1a=1']);
    }
    // The dashboard's expression: max over agents per zone, then summed by region.
    const r = await query('sum by (region) (max by (region, zone) (proxy_stone_services_by_region{job="proxy-stone-sd"}))');
    expect((r.data?.result ?? []).map((s) => [s.metric.region, s.value[1]]).sort()).to.deep.equal([['eu-west-1', '1'], ['us-east-1', '1']]);
    const exported = await query('count({job="proxy-stone-sd", exported_region=~".+"})');
    expect(exported.data?.result ?? [], 'no exported_region series').to.deep.equal([]);
    const info = await query('proxy_stone_service_info{job="proxy-stone-sd"}');
    const rows = (info.data?.result ?? []).map((s) => `${s.metric.instance} ${s.metric.service_id} ${s.metric.region}/${s.metric.zone} ${s.metric.status}`);
    // Two agents, each reporting both services with their own labels.
    expect(rows, rows.join('\n')).to.have.length(4);
    for (const [id, region, zone] of PLACES) {
      expect(rows.filter((r) => r.includes(` ${id} ${region}/${zone} `)), id).to.have.length(2);
    }
  });
});
