import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { assertBuilt, eventually, freePorts, ROOT, spawnAgent, type LoggedProcess } from './helpers.js';
import { dashboardExprs, readDashboard, substituteGrafanaVariables } from './promql.js';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const DOCS = path.join(ROOT, 'docs/prometheus');

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

  it('every alert fires on the series it is about, with its annotations rendered (promtool test rules)', () => {
    const r = promtool('test', 'rules', path.join(ROOT, 'test/deploy/prometheus/alerts.test.yml'));
    expect(r.status, r.output).to.equal(0);
    expect(r.output).to.include('SUCCESS');
  });
});

describe('deploy: a real Prometheus scraping two real agents', function () {
  // Bounded: agents ~3 s to start, Prometheus ~1 s, a few 1 s scrapes.
  this.timeout(30_000);
  let dir: string;
  let upstream: SampleUpstream;
  const agents: LoggedProcess[] = [];
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let base: string;

  async function query(expr: string): Promise<{ status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }> {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as never;
  }

  before(async () => {
    assertBuilt();
    const etcd = await sharedEtcd();
    const namespace = uniqueNamespace('deploy-prometheus');
    upstream = await startSampleUpstream();
    for (const id of ['proxy-stone-1', 'proxy-stone-2']) {
      agents.push(
        spawnAgent(['--api-port', '0', '--health-interval', '500ms', '--grace-period', '0', '--leader-ttl', '3', '--renew-interval', '1'], {
          SERVICE_DISCOVERY_ENDPOINTS: etcd.endpoint,
          SERVICE_DISCOVERY_NAMESPACE: namespace,
          SERVICE_ID: id,
          SERVICE_HOST: '127.0.0.1',
          SERVICE_PORT: String(upstream.port),
        }),
      );
    }
    const targets = await Promise.all(agents.map(async (a) => new URL(String((await a.waitForEvent('api.listening', 20_000)).url)).host));

    dir = mkdtempSync(path.join(tmpdir(), 'sd-prometheus-'));
    // The rule file of the docs, evaluated every second against live data.
    copyFileSync(path.join(DOCS, 'alerts.yml'), path.join(dir, 'alerts.yml'));
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'rule_files: [alerts.yml]',
        'scrape_configs:',
        '  - job_name: proxy-stone-sd',
        '    static_configs:',
        `      - targets: ${JSON.stringify(targets)}`,
        '        labels: { region: us-east-1, zone: us-east-1a }',
        '',
      ].join('\n'),
    );
    const [port] = await freePorts(1);
    base = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr!.setEncoding('utf8');
    prometheus.stderr!.on('data', (c: string) => {
      prometheusLog = (prometheusLog + c).slice(-4000);
    });
    await eventually(
      `Prometheus ready at ${base}`,
      async () => {
        if (prometheus!.exitCode !== null) throw new Error(`prometheus exited: ${prometheusLog}`);
        return (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok;
      },
      15_000,
      100,
    );
  });

  after(async () => {
    if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      const timer = setTimeout(() => prometheus!.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await Promise.all(agents.map((a) => a.stop()));
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
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
    expect(regions.data?.result.map((s) => [s.metric.region, s.value[1]])).to.deep.equal([['us-east-1', '2']]);
  });
});
