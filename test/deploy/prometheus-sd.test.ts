import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { SampleUpstream } from '../../src/demo/demo.js';
import { PROMTOOL, startPrometheus, type PrometheusServer, type PromTarget } from '../helpers/prometheus.js';
import { assertBuilt, eventually, ROOT, spawnPlacedAgents, type LoggedProcess } from './helpers.js';

const CONFIG = path.join(ROOT, 'docs/prometheus/prometheus-http-sd.yml');
const PAGE = path.join(ROOT, 'docs/load-balancers.md');
/** The URL of the docs' config: the first agent of docs/getting-started.md. */
const DOCS_URL = 'http://127.0.0.1:8791/service-discovery/prometheus/targets';
/** The agents: id, region, zone (two regions, so the relabelling hint's region filter shows). */
const PLACES = [
  ['sd-prom-1', 'us-east-1', 'us-east-1a'],
  ['sd-prom-2', 'us-east-1', 'us-east-1b'],
  ['sd-prom-3', 'eu-west-1', 'eu-west-1a'],
] as const;

interface ScrapeJob {
  job_name: string;
  honor_labels?: boolean;
  http_sd_configs?: Array<{ url: string; refresh_interval?: string }>;
  relabel_configs?: unknown[];
}
interface PromConfig {
  global: { scrape_interval: string; evaluation_interval: string };
  rule_files: string[];
  scrape_configs: ScrapeJob[];
}

/** The yaml block of the docs page that follows `marker`. */
function pageBlock(marker: string): string {
  const text = readFileSync(PAGE, 'utf8');
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`docs/load-balancers.md has no ${marker} marker`);
  const block = /```yaml\n([\s\S]*?)```/.exec(text.slice(at));
  if (!block) throw new Error(`docs/load-balancers.md: no yaml block after ${marker}`);
  return block[1]!;
}

describe('deploy: Prometheus HTTP service discovery, the docs config', function () {
  it('the docs page shows docs/prometheus/prometheus-http-sd.yml as it is', function () {
    expect(pageBlock('<!-- prometheus-http-sd.yml')).to.equal(readFileSync(CONFIG, 'utf8'));
  });

  it('promtool check config accepts it (and the rule file it loads)', function () {
    const r = spawnSync(PROMTOOL, ['check', 'config', CONFIG], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    expect(r.stdout).to.include('SUCCESS: 1 rule files found');
  });
});

/**
 * The docs' scrape config against a real Prometheus and three real agents on etcd: every instance
 * listed with its zone, scraped, and dropped when it leaves; the relabelling hints of the docs on a
 * second job. Prometheus batches discovery updates (5 s), hence the waits of 20 s.
 */
describe('deploy: a real Prometheus discovering real agents over HTTP', function () {
  this.timeout(40_000);
  let upstream: SampleUpstream;
  const agents: LoggedProcess[] = [];
  let apis: string[];
  let prometheus: PrometheusServer | undefined;

  /** Active targets of a job, once `check` accepts them. */
  function targetsWhen(job: string, what: string, check: (targets: PromTarget[]) => boolean): Promise<PromTarget[]> {
    return eventually(
      `${job}: ${what}`,
      async () => {
        const targets = await prometheus!.activeTargets(job);
        return check(targets) ? targets : undefined;
      },
      20_000,
      250,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\nPrometheus log: ${prometheus!.log()}`);
    });
  }

  before(async function () {
    this.timeout(60_000);
    assertBuilt();
    const placed = await spawnPlacedAgents(PLACES, 'deploy-prometheus-sd');
    upstream = placed.upstream;
    agents.push(...placed.agents);
    apis = await Promise.all(
      agents.map(async (a) => {
        const listening = await a.waitForEvent('api.listening', 20_000);
        await a.waitForEvent('agent.started', 20_000);
        return String(listening.url);
      }),
    );

    // The docs' config; only the discovery URL (the first agent's) and the intervals change.
    const config = parseYaml(readFileSync(CONFIG, 'utf8')) as PromConfig;
    config.global.scrape_interval = '1s';
    config.global.evaluation_interval = '1s';
    const job = config.scrape_configs.find((j) => j.job_name === 'proxy-stone-sd')!;
    expect(job.http_sd_configs?.map((c) => c.url)).to.deep.equal([DOCS_URL]);
    job.http_sd_configs = job.http_sd_configs!.map((c) => ({ ...c, url: `${apis[0]}/service-discovery/prometheus/targets`, refresh_interval: '1s' }));
    const hints = parseYaml(pageBlock('<!-- relabel-hints')) as { relabel_configs: unknown[] };
    config.scrape_configs.push({ ...job, job_name: 'proxy-stone-sd-relabelled', relabel_configs: hints.relabel_configs });
    prometheus = await startPrometheus(stringifyYaml(config), { 'alerts.yml': readFileSync(path.join(ROOT, 'docs/prometheus/alerts.yml'), 'utf8') });
  });

  after(async function () {
    await prometheus?.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await upstream?.close();
  });

  it('lists every instance with its zone and the other labels, and scrapes each agent successfully', async function () {
    const targets = await targetsWhen(
      'proxy-stone-sd',
      'three healthy instances, all scraped',
      (ts) => ts.length === 3 && ts.every((t) => t.health === 'up' && t.labels.status === 'healthy'),
    );
    const rows = targets
      .map((t) => ({
        scrape: t.scrapeUrl,
        id: t.labels.service_id,
        name: t.labels.service_name,
        region: t.labels.region,
        zone: t.labels.zone,
        version: t.labels.version,
        status: t.labels.status,
        error: t.lastError,
      }))
      .sort((a, b) => a.id!.localeCompare(b.id!));
    expect(rows).to.deep.equal(
      PLACES.map(([id, region, zone], i) => ({ scrape: `${apis[i]}/metrics`, id, name: 'proxy-stone', region, zone, version: '1.0.0', status: 'healthy', error: '' })),
    );
    // The relabelling labels reach relabelling, and no further.
    for (const t of targets) {
      expect(t.discoveredLabels).to.have.property('__meta_proxy_stone_role').that.is.oneOf(['leader', 'follower']);
      expect(Object.keys(t.labels).filter((k) => k.startsWith('__meta_'))).to.deep.equal([]);
    }
    // Scraped series carry the labels: up by zone, and the agents' own metrics.
    const up = await prometheus!.query('sum by (zone) (up{job="proxy-stone-sd"})');
    expect((up.data?.result ?? []).map((s) => [s.metric.zone, s.value[1]]).sort()).to.deep.equal([
      ['eu-west-1a', '1'],
      ['us-east-1a', '1'],
      ['us-east-1b', '1'],
    ]);
    const size = await eventually('cluster size 3 from every agent', async () => {
      const r = await prometheus!.query('proxy_stone_cluster_size{job="proxy-stone-sd"}');
      const series = r.data?.result ?? [];
      return series.length === 3 && series.every((s) => s.value[1] === '3') ? series : undefined;
    });
    expect(size.map((s) => s.metric.service_id).sort()).to.deep.equal(PLACES.map(([id]) => id));
  });

  it('applies the relabelling hints of the docs: one region, a role label, no status, instance named by id', async function () {
    const targets = await targetsWhen('proxy-stone-sd-relabelled', 'the two us-east-1 targets', (ts) => ts.length === 2);
    const rows = targets.map((t) => [t.labels.service_id, t.labels.region, t.labels.instance, t.labels.status ?? null, t.labels.role]).sort();
    expect(rows.map((r) => r.slice(0, 4))).to.deep.equal([
      ['sd-prom-1', 'us-east-1', 'sd-prom-1', null],
      ['sd-prom-2', 'us-east-1', 'sd-prom-2', null],
    ]);
    for (const row of rows) expect(row[4]).to.be.oneOf(['leader', 'follower']);
  });

  it('drops an instance that leaves the cluster from the targets', async function () {
    const leaving = agents[2]!;
    const stopped = await leaving.stop();
    expect(stopped.code).to.equal(0);
    const targets = await targetsWhen('proxy-stone-sd', 'sd-prom-3 gone', (ts) => ts.length === 2);
    expect(targets.map((t) => t.labels.service_id).sort()).to.deep.equal(['sd-prom-1', 'sd-prom-2']);
  });
});
