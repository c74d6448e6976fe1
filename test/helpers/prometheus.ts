/**
 * A real Prometheus (/usr/bin/prometheus) for the tests: started on a free loopback port with a
 * config in a temp dir, asked through its own HTTP API, stopped (and its dir removed) by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from './cluster.js';
import { freePorts } from './etcd.js';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

/** One series of an instant query. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromQueryResult {
  status: string;
  error?: string;
  data?: { result: PromSample[] };
}

/** One target of `/api/v1/targets`. */
export interface PromTarget {
  discoveredLabels: Record<string, string>;
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

export interface PrometheusServer {
  /** `http://127.0.0.1:PORT` */
  base: string;
  /** The temp dir holding prometheus.yml, the extra files and the TSDB. */
  dir: string;
  /** The last few KB Prometheus logged (for failure messages). */
  log(): string;
  query(expr: string): Promise<PromQueryResult>;
  /** Active targets, optionally of one scrape pool (job). */
  activeTargets(job?: string): Promise<PromTarget[]>;
  /** SIGTERM (SIGKILL after 5 s), then removes the dir. */
  stop(): Promise<void>;
}

/**
 * Starts Prometheus with `config` as prometheus.yml (and `files` beside it, e.g. rule files), and
 * resolves once it answers `/-/ready`.
 */
export async function startPrometheus(config: string, files: Record<string, string> = {}): Promise<PrometheusServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sd-prometheus-'));
  writeFileSync(path.join(dir, 'prometheus.yml'), config);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const [port] = await freePorts(1);
  const base = `http://127.0.0.1:${port}`;
  let log = '';
  const proc: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => {
    log = (log + c).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const get = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${base}${pathAndQuery}`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as T;
  };

  try {
    await waitFor(
      `Prometheus ready at ${base}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`prometheus exited: ${log}`);
        return (await fetch(`${base}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok;
      },
      15_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    base,
    dir,
    log: () => log,
    query: (expr) => get<PromQueryResult>(`/api/v1/query?query=${encodeURIComponent(expr)}`),
    async activeTargets(job) {
      const res = await get<{ data: { activeTargets: PromTarget[] } }>('/api/v1/targets?state=active');
      return res.data.activeTargets.filter((t) => job === undefined || t.scrapePool === job);
    },
    stop,
  };
}
