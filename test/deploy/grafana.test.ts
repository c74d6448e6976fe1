import { expect } from 'chai';
import path from 'node:path';
import { assertBuilt, ROOT, spawnAgent, type LoggedProcess } from './helpers.js';
import {
  allPanels,
  dashboardExprs,
  exposedFamilies,
  isExposed,
  metricNames,
  readDashboard,
  ruleExprs,
  substituteGrafanaVariables,
} from './promql.js';

const DASHBOARD = path.join(ROOT, 'docs/grafana/proxy-stone-sd.json');
const ALERTS = path.join(ROOT, 'docs/prometheus/alerts.yml');
/** Series Prometheus itself adds to every target; the agent cannot export them. */
const PROMETHEUS_SERIES = new Set(['up']);

describe('deploy: PromQL metric-name extraction', () => {
  it('finds metric names, not functions, labels, keywords, durations or variables', () => {
    expect(metricNames('sum by (status) (rate(proxy_stone_health_checks_total{job=~"$job", outcome="failure"}[$__rate_interval]))')).to.deep.equal([
      'proxy_stone_health_checks_total',
    ]);
    expect(
      metricNames('histogram_quantile(0.99, sum by (le, operation) (rate(proxy_stone_registry_request_duration_seconds_bucket[5m])))'),
    ).to.deep.equal(['proxy_stone_registry_request_duration_seconds_bucket']);
    expect(metricNames('max(a_total) < max(max_over_time(b_total[30m] offset 5m)) and on (instance) c == bool 1e3')).to.deep.equal([
      'a_total',
      'b_total',
      'c',
    ]);
    expect(metricNames('label_values(proxy_stone_cluster_size{job=~"$job"}, instance)')).to.deep.equal(['proxy_stone_cluster_size']);
    expect(substituteGrafanaVariables('rate(x{job=~"$job"}[$__rate_interval]) ${instance}')).to.equal('rate(x{job=~".*"}[1m]) .*');
  });
});

describe('deploy: the Grafana dashboard (docs/grafana/proxy-stone-sd.json)', function () {
  this.timeout(30_000);
  let agent: LoggedProcess | undefined;
  let families: Map<string, string>;

  before(async () => {
    assertBuilt();
    // A real agent process, with its API on a free port: its /metrics is what Prometheus scrapes.
    agent = spawnAgent(['--registry', 'memory', '--api-port', '0', '--service-port', '1', '--health-interval', '100ms', '--grace-period', '0']);
    const listening = await agent.waitForEvent('api.listening', 20_000);
    // Let a few health checks and a registration happen, so histograms and counters have samples.
    await agent.waitForEvent('health.changed', 10_000);
    const res = await fetch(`${String(listening.url)}/metrics`);
    expect(res.status).to.equal(200);
    families = exposedFamilies(await res.text());
  });
  after(async () => {
    await agent?.stop();
  });

  const dashboard = readDashboard(DASHBOARD);
  const panels = allPanels(dashboard);

  it('uses only metric names a live agent exports (plus Prometheus\'s `up`)', () => {
    expect(families.size, 'the agent exports metrics').to.be.greaterThan(10);
    const exprs = dashboardExprs(dashboard);
    expect(exprs.length).to.be.greaterThan(20);
    const missing: string[] = [];
    for (const { where, expr } of exprs) {
      const names = metricNames(expr);
      expect(names, `${where}: ${expr} reads no metric`).not.to.be.empty;
      for (const name of names) {
        if (!PROMETHEUS_SERIES.has(name) && !isExposed(name, families)) missing.push(`${where}: ${name}`);
      }
    }
    expect(missing, 'metrics the agent does not export').to.deep.equal([]);
  });

  it('the alert rules use only metric names a live agent exports too', () => {
    const missing = ruleExprs(ALERTS).flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((name) => !PROMETHEUS_SERIES.has(name) && !isExposed(name, families))
        .map((name) => `${where}: ${name}`),
    );
    expect(missing).to.deep.equal([]);
  });

  it('every proxy_stone_* metric the agent exports is on the dashboard', () => {
    const used = new Set(dashboardExprs(dashboard).flatMap(({ expr }) => metricNames(expr)).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    const unused = [...families.keys()].filter((name) => name.startsWith('proxy_stone_') && !used.has(name));
    expect(unused).to.deep.equal([]);
  });

  it("covers the seed's Grafana list: overview with status, health checks, leader election history, regions", () => {
    const rows = panels.filter((p) => p.type === 'row').map((p) => p.title);
    expect(rows).to.include.members(['Cluster overview', 'Health checks', 'Leader election', 'Regional distribution']);
    const titles = panels.map((p) => p.title ?? '');
    expect(titles).to.include.members(['Services by status', 'Leader over time', 'Health-check duration', 'Agents up by region and zone']);
  });

  it("breaks the services down by region from the agents' own series, and lists each service's status", () => {
    const exprsOf = (title: string) => (panels.find((p) => p.title === title)?.targets ?? []).map((t) => t.expr ?? '');
    // Every agent reports the whole cluster: a per-zone figure is a max over agents, never a sum.
    expect(exprsOf('Services by region and zone')).to.deep.equal([
      'max by (region, zone) (proxy_stone_services_by_region{job=~"$job", instance=~"$instance"})',
    ]);
    expect(exprsOf('Services by region')).to.deep.equal([
      'sum by (region) (max by (region, zone) (proxy_stone_services_by_region{job=~"$job", instance=~"$instance"}))',
    ]);
    const table = panels.find((p) => p.title === 'Service status')!;
    expect(table.type).to.equal('table');
    expect(exprsOf('Service status')).to.have.length(1);
    expect(exprsOf('Service status')[0]).to.match(/^max by \(service_id, region, zone, version, status, role, enabled\) \(proxy_stone_service_info\{/);
  });

  it('is a well-formed dashboard: unique panel ids, data source variable, a query per panel, fits 24 columns', () => {
    expect(dashboard.uid).to.equal('proxy-stone-sd');
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, 'unique ids').to.equal(ids.length);
    expect(dashboard.templating?.list.map((v) => v.name)).to.include.members(['datasource', 'job', 'instance']);
    for (const p of panels) {
      expect(p.gridPos, `${p.title}: gridPos`).to.be.an('object');
      expect(p.gridPos!.x + p.gridPos!.w, `${p.title}: width`).to.be.at.most(24);
      if (p.type === 'row' || p.type === 'text') continue;
      expect(p.datasource?.uid, `${p.title}: data source`).to.equal('${datasource}');
      expect(p.targets ?? [], `${p.title}: queries`).not.to.be.empty;
      for (const t of p.targets ?? []) expect(t.expr, `${p.title} ${t.refId}`).to.be.a('string').and.not.be.empty;
    }
  });
});
