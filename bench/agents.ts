/**
 * Benchmarks on real `proxy-stone-sd agent` processes (the built CLI) against a real etcd, with the
 * timings of the fault suite: lease TTL 3 s, renew 1 s, health interval 1 s, timeout 1 s, retries 2.
 *
 * - steady state: etcd writes per agent per minute (etcd's own counters), agent RSS and idle CPU;
 * - unhealthy detection against its bound, interval x retries + timeout;
 * - crash failover (kill -9 of the leader) and graceful handover (SIGTERM of the leader).
 *
 * Times of agent-side moments come from the agents' own JSON log lines (`time`, epoch ms), taken on
 * the same machine clock as the benchmark's; nothing polls the agents while a round is measured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WatchHandle } from '../src/registry/types.js';
import { FaultCluster, logLines, type FaultAgent } from '../test/faults/harness.js';
import { waitFor } from '../test/helpers/cluster.js';
import { etcdCounters, median, p50p99, percentile, procSample, sleep, CLOCK_TICKS, type Row } from './lib.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const TTL_MS = 3000;
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 1000;
const RETRIES = 2;

export interface AgentBenchOptions {
  crashRounds: number;
  gracefulRounds: number;
  detectionRounds: number;
  steadyMs: number;
  log: (line: string) => void;
}

/** Runs every agent-process benchmark on one cluster of three; returns table rows. */
export async function agentBenchmarks(options: AgentBenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  // Refresh off: any write in the steady window would be one the health checks caused.
  const cluster = await FaultCluster.start({ agents: 3, checker: false, flags: ['--health-refresh-interval', '0'] });
  // Service-record deletes and status changes as a watcher sees them, for "entry gone" times.
  const deletes = new Map<string, number>();
  const statuses: { id: string; status: string; at: number }[] = [];
  let watch: WatchHandle | undefined;
  // The same agent started by importing runAgent() directly, so with V8's default settings (the
  // `agent` command tunes it), in a namespace of its own, to show what those settings change. It
  // counts as a fourth agent in etcd.
  const direct = spawnDirectAgent(cluster);
  try {
    await cluster.settled();
    const { revision } = await cluster.reader.list(cluster.layout.root);
    watch = cluster.reader.watchPrefix(cluster.layout.services, revision + 1, {
      onEvents: (events) => {
        const at = Date.now();
        for (const e of events) {
          if (e.type === 'delete') deletes.set(e.key.slice(cluster.layout.services.length), at);
          else {
            try {
              statuses.push({ id: e.kv.key.slice(cluster.layout.services.length), status: (JSON.parse(e.kv.value) as { status: string }).status, at });
            } catch {
              // not a record
            }
          }
        }
      },
      onCompacted: () => undefined,
    });
    await quiet(cluster);

    rows.push(...(await steadyState(cluster, direct, options)));
    direct.kill('SIGKILL');
    rows.push(...(await detection(cluster, options, statuses)));
    rows.push(...(await crashFailover(cluster, options, deletes)));
    rows.push(...(await gracefulHandover(cluster, options, deletes)));
  } finally {
    direct.kill('SIGKILL');
    await watch?.cancel();
    await cluster.stop();
  }
  return rows;
}

function spawnDirectAgent(cluster: FaultCluster): ChildProcess {
  const upstream = cluster.get('ps-1').upstream;
  return spawn(
    process.execPath,
    ['--input-type=module', '-e', `const { runAgent } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/agent/run.js')).href)}); process.exitCode = await runAgent();`],
    {
      env: {
        ...process.env,
        SERVICE_DISCOVERY_ENDPOINTS: cluster.server.endpoint,
        SERVICE_DISCOVERY_NAMESPACE: `${cluster.namespace}-direct`,
        SERVICE_ID: 'direct',
        SERVICE_HOST: '127.0.0.1',
        SERVICE_PORT: String(upstream.port),
        SERVICE_DISCOVERY_API_PORT: '0',
        SERVICE_DISCOVERY_HEALTH_INTERVAL: '1',
        SERVICE_DISCOVERY_HEALTH_TIMEOUT: '1',
        SERVICE_DISCOVERY_HEALTH_RETRIES: '2',
        SERVICE_DISCOVERY_GRACE_PERIOD: '5',
        SERVICE_DISCOVERY_LEADER_TTL: '3',
        SERVICE_DISCOVERY_RENEW_INTERVAL: '1',
        SERVICE_DISCOVERY_HEALTH_REFRESH_INTERVAL: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    },
  );
}

/** Waits for all three agents registered, healthy, one leader, and a moment of calm after any process start. */
async function quiet(cluster: FaultCluster): Promise<string> {
  const leader = await cluster.settled(['ps-1', 'ps-2', 'ps-3'], 20_000);
  await waitFor('all healthy', async () => (await cluster.read()).services().every((s) => s.status === 'healthy'), 20_000, 50);
  // A freshly started node process compiles and warms up for a second or so; don't measure that.
  await sleep(1500);
  return leader;
}

function logTime(agent: FaultAgent, event: string, since: number, match: (l: Record<string, unknown>) => boolean = () => true): number | undefined {
  return logLines(agent.proc).find((l) => l.event === event && (l.time ?? 0) >= since && match(l))?.time;
}

async function steadyState(cluster: FaultCluster, direct: ChildProcess, options: AgentBenchOptions): Promise<Row[]> {
  options.log(`steady state: ${options.steadyMs / 1000} s window, 3 agents idle (and one with V8's default settings)`);
  const pids = [...cluster.agents.values()].map((a) => a.proc.proc.pid!);
  const agentsInEtcd = pids.length + 1;
  const before = await etcdCounters(cluster.server.metricsUrl!);
  const procBefore = pids.map(procSample);
  const t0 = Date.now();
  // Resident memory moves with V8's heap sizing: it grows during start-up and shrinks once V8 sees
  // the process idle (15-20 s). So it is sampled every 5 s: the median of the samples after the first
  // 20 s is the agent's idle level; the maximum of all is its peak.
  const rssSeries = pids.map(() => [] as number[]);
  const pssSeries = pids.map(() => [] as number[]);
  const directSeries: number[] = [];
  const directPss: number[] = [];
  let peak = 0;
  let directPeak = 0;
  while (Date.now() - t0 < options.steadyMs) {
    await sleep(Math.min(5000, options.steadyMs - (Date.now() - t0)));
    const settled = Date.now() - t0 >= Math.min(20_000, options.steadyMs / 2);
    pids.forEach((pid, i) => {
      const p = procSample(pid);
      peak = Math.max(peak, p.rssKb / 1024);
      if (!settled) return;
      rssSeries[i]!.push(p.rssKb / 1024);
      pssSeries[i]!.push(p.pssKb / 1024);
    });
    if (direct.pid !== undefined && direct.exitCode === null) {
      const p = procSample(direct.pid);
      directPeak = Math.max(directPeak, p.rssKb / 1024);
      if (!settled) continue;
      directSeries.push(p.rssKb / 1024);
      directPss.push(p.pssKb / 1024);
    }
  }
  const after = await etcdCounters(cluster.server.metricsUrl!);
  const procAfter = pids.map(procSample);
  const minutes = (Date.now() - t0) / 60_000;
  const perAgentMin = (name: string) => ((after[name] ?? 0) - (before[name] ?? 0)) / agentsInEtcd / minutes;
  const puts = perAgentMin('etcd_mvcc_put_total');
  const txns = perAgentMin('etcd_mvcc_txn_total');
  const deletes = perAgentMin('etcd_mvcc_delete_total');
  const renewals = perAgentMin('etcd_debugging_lease_renewed_total');
  const proposals = perAgentMin('etcd_server_proposals_committed_total');
  // Health checks in the window: one per interval per agent.
  const checksPerAgentMin = 60_000 / INTERVAL_MS;
  const rss = rssSeries.map((series) => median(series));
  const pss = pssSeries.map((series) => median(series));
  const cpu = procAfter.map((p, i) => (((p.cpuTicks - procBefore[i]!.cpuTicks) / CLOCK_TICKS) * 1000) / (p.at - procBefore[i]!.at) * 100);
  const window = `${Math.round(minutes * 60)} s window, ${agentsInEtcd} agents`;
  const writes = puts + deletes;
  return [
    {
      section: 'steady state',
      measure: 'etcd writes per agent per minute (etcd_mvcc_put_total + delete_total)',
      value: `${writes.toFixed(2)} (puts ${puts.toFixed(2)}, txns ${txns.toFixed(2)}, deletes ${deletes.toFixed(2)})`,
      n: agentsInEtcd,
      note: `${window}, --health-refresh-interval 0; the default refresh (60 s) adds exactly 1 put per agent per minute`,
    },
    {
      section: 'steady state',
      measure: 'registry writes per health check',
      value: (writes / checksPerAgentMin).toFixed(3),
      goal: '0 (keep-alives only)',
      ratio: writes / checksPerAgentMin === 0 ? 0 : Infinity,
      n: Math.round(checksPerAgentMin * minutes * agentsInEtcd),
    },
    {
      section: 'steady state',
      measure: 'lease keep-alives per agent per minute (etcd_debugging_lease_renewed_total)',
      value: renewals.toFixed(1),
      note: 'renew interval 1 s; keep-alives are not puts',
    },
    {
      section: 'steady state',
      measure: 'raft proposals committed per agent per minute',
      value: proposals.toFixed(1),
      note: 'puts, txns, lease grants and revokes are proposals; in etcd 3.4 a keep-alive is served by the leader without one',
    },
    {
      section: 'agent process',
      measure: 'RSS (VmRSS), idle: median after 20 s idle, worst agent',
      value: `${Math.max(...rss).toFixed(1)} MB (PSS ${Math.max(...pss).toFixed(1)} MB; peak RSS ${peak.toFixed(1)} MB)`,
      goal: '<= 80 MB',
      ratio: Math.max(...rss) / 80,
      n: 3,
      note: 'RSS counts the node binary\'s shared text (~44 MB here); PSS shares it among processes',
    },
    {
      section: 'agent process',
      measure: 'RSS of the same agent with V8\'s default settings (runAgent() imported directly)',
      value: directSeries.length > 0 ? `${median(directSeries).toFixed(1)} MB (PSS ${median(directPss).toFixed(1)} MB; peak RSS ${directPeak.toFixed(1)} MB)` : 'n/a',
      n: 1,
      note: 'the difference is what the `agent` command\'s heap settings change within the first minute',
    },
    {
      section: 'agent process',
      measure: 'idle CPU',
      value: `${Math.max(...cpu).toFixed(2)} % of one core max`,
      n: 3,
      note: `${window}; health check every 1 s, keep-alive every 1 s`,
    },
  ];
}

async function detection(cluster: FaultCluster, options: AgentBenchOptions, statuses: { id: string; status: string; at: number }[]): Promise<Row[]> {
  options.log(`unhealthy detection: ${options.detectionRounds} rounds`);
  const agentSide: number[] = [];
  const peerSide: number[] = [];
  for (let round = 0; round < options.detectionRounds; round++) {
    const leader = await quiet(cluster);
    const victim = [...cluster.agents.values()].find((a) => a.id !== leader)!;
    // Start failing at a random point of the probe cycle: the bound covers the worst phase.
    await sleep(Math.random() * INTERVAL_MS);
    const t0 = Date.now();
    victim.upstream.setMode('down');
    const detected = await waitFor('unhealthy logged', () => logTime(victim, 'health.changed', t0, (l) => l.to === 'unhealthy'), 15_000, 20);
    const seen = await waitFor('unhealthy seen', () => statuses.find((s) => s.id === victim.id && s.status === 'unhealthy' && s.at >= t0)?.at, 5000, 10);
    agentSide.push(detected - t0);
    peerSide.push(seen - t0);
    victim.upstream.setMode('up');
    await waitFor('healthy again', () => statuses.find((s) => s.id === victim.id && s.status === 'healthy' && s.at >= seen), 10_000, 20);
  }
  const bound = INTERVAL_MS * RETRIES + TIMEOUT_MS;
  return [
    {
      section: 'health',
      measure: 'unhealthy detection (upstream down -> agent marks unhealthy)',
      value: `${p50p99(agentSide)}, max ${Math.max(...agentSide)} ms`,
      goal: `<= interval x retries + timeout = ${bound} ms`,
      ratio: Math.max(...agentSide) / bound,
      n: agentSide.length,
      note: 'an upstream that answers 503 fails fast; a hanging one uses the whole timeout',
    },
    {
      section: 'health',
      measure: 'upstream down -> record unhealthy in etcd (watcher)',
      value: p50p99(peerSide),
      n: peerSide.length,
    },
  ];
}

async function crashFailover(cluster: FaultCluster, options: AgentBenchOptions, deletes: Map<string, number>): Promise<Row[]> {
  options.log(`crash failover: ${options.crashRounds} rounds`);
  const failover: number[] = [];
  const gone: number[] = [];
  for (let round = 0; round < options.crashRounds; round++) {
    const leader = await quiet(cluster);
    // Kill at a random point of the renew cycle: failover depends on when the last keep-alive went.
    await sleep(Math.random() * 1000);
    deletes.delete(leader);
    const t0 = Date.now();
    await cluster.signal(leader, 'SIGKILL');
    const others = [...cluster.agents.values()];
    const elected = await waitFor('new leader', () => others.map((a) => logTime(a, 'leader.elected', t0)).find((t) => t !== undefined), TTL_MS + 5000, 10);
    const deleted = await waitFor('entry gone', () => deletes.get(leader), TTL_MS + 5000, 10);
    failover.push(elected - t0);
    gone.push(deleted - t0);
    await cluster.spawn(leader);
  }
  const goal = TTL_MS + 500;
  return [
    {
      section: 'leadership',
      measure: 'crash failover (kill -9 of the leader -> next leader elected)',
      value: `${p50p99(failover)}`,
      goal: `<= TTL + 0.5 s = ${goal} ms`,
      ratio: percentile(failover, 99) / goal,
      n: failover.length,
      note: 'etcd expires the lease TTL after the last keep-alive it got, checking every 500 ms',
    },
    {
      section: 'leadership',
      measure: 'crash: the dead leader\'s entry gone (watcher)',
      value: p50p99(gone),
      n: gone.length,
    },
  ];
}

async function gracefulHandover(cluster: FaultCluster, options: AgentBenchOptions, deletes: Map<string, number>): Promise<Row[]> {
  options.log(`graceful handover: ${options.gracefulRounds} rounds`);
  const handover: number[] = [];
  const gone: number[] = [];
  for (let round = 0; round < options.gracefulRounds; round++) {
    const leader = await quiet(cluster);
    deletes.delete(leader);
    const t0 = Date.now();
    await cluster.signal(leader, 'SIGTERM');
    const others = [...cluster.agents.values()];
    const elected = await waitFor('new leader', () => others.map((a) => logTime(a, 'leader.elected', t0)).find((t) => t !== undefined), 5000, 5);
    const deleted = await waitFor('entry gone', () => deletes.get(leader), 5000, 5);
    handover.push(elected - t0);
    gone.push(deleted - t0);
    await cluster.spawn(leader);
  }
  return [
    {
      section: 'leadership',
      measure: 'graceful handover (SIGTERM of the leader -> next leader elected)',
      value: p50p99(handover),
      goal: 'p50 <= 25 ms',
      ratio: percentile(handover, 50) / 25,
      n: handover.length,
      note: 'includes signal delivery; the resign is one fenced transaction',
    },
    {
      section: 'leadership',
      measure: 'SIGTERM -> entry gone (watcher)',
      value: p50p99(gone),
      n: gone.length,
    },
  ];
}
