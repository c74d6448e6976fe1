/**
 * `npm run bench`: every benchmark of the project, one table, and docs/benchmarks.md with the machine,
 * the date and the method. Needs a build (`npm run build`) and an etcd binary (or Docker), like the
 * tests, and HAProxy 2.6+ and nginx for the traffic section. Bounded: seven to ten minutes on 2 cores
 * (it waits up to 30 s per section for a busy machine to calm down; traffic alone takes about two and
 * a half); `--quick` runs fewer rounds (about four).
 *
 *   npm run bench [-- --quick] [--no-write | --out FILE] [--only limits,agents,propagation,cluster,scale,traffic,external]
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { agentBenchmarks, agentNotes } from './agents.js';
import { limitBenchmarks } from './limits.js';
import { loadAverage, machine, markdownTable, sleep, textTable, verdict, type Row } from './lib.js';
import { propagationBenchmarks } from './propagation.js';
import { etcdClusterBenchmarks } from './etcd-cluster.js';
import { scaleBenchmarks } from './scale.js';
import { trafficBenchmarks, trafficVersions } from './traffic.js';
import { assertBuilt } from '../test/helpers/cluster.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECTIONS = ['limits', 'agents', 'propagation', 'cluster', 'scale', 'traffic', 'external'] as const;
type Section = (typeof SECTIONS)[number];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    // Another file than docs/benchmarks.md, e.g. to look at the page of a partial run.
    out: { type: 'string' },
    only: { type: 'string' },
  },
});
const quick = args.quick === true;
/** Requests per second through the load balancer in the traffic section. */
const TRAFFIC_RATE = 150;
const only = new Set((args.only?.split(',') ?? SECTIONS) as Section[]);
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

assertBuilt();
const startedAt = new Date();
const t0 = Date.now();
const loadBefore = loadAverage();
const rows: Row[] = [];
const external: { name: string; command: string; output: string }[] = [];
let etcdVersion = 'unknown';

/**
 * The machine may be shared: before each section, wait (at most 30 s) for the 1-minute load average
 * to drop below the core count, then note it, so the report says how busy the machine was.
 */
const sectionLoads: string[] = [];
const section = async (name: Section): Promise<boolean> => {
  if (!only.has(name)) return false;
  const waitFrom = Date.now();
  while (Date.now() - waitFrom < 30_000 && Number(loadAverage().split(' ')[0]) >= availableParallelism()) await sleep(2000);
  sectionLoads.push(`${name} ${loadAverage().split(' ')[0]}`);
  return true;
};

if (await section('limits')) {
  const limits = await limitBenchmarks({ log });
  etcdVersion = limits.etcdVersion;
  rows.push(...limits.rows);
}
if (await section('agents')) {
  rows.push(
    ...(await agentBenchmarks({
      crashRounds: quick ? 3 : 8,
      gracefulRounds: quick ? 5 : 15,
      detectionRounds: quick ? 2 : 5,
      steadyMs: quick ? 20_000 : 60_000,
      log,
    })),
  );
}
if (await section('propagation')) rows.push(...(await propagationBenchmarks({ cycles: quick ? 30 : 100, log })));
if (await section('cluster')) rows.push(...(await etcdClusterBenchmarks({ passes: quick ? 1 : 2, crashRounds: quick ? 3 : 6, cycles: quick ? 30 : 100, log })));
if (await section('scale')) rows.push(...(await scaleBenchmarks({ agents: 1000, rounds: quick ? 1 : 3, records: 10_000, cliRuns: quick ? 2 : 5, log })));
if (await section('traffic')) {
  rows.push(...(await trafficBenchmarks({ rollingRounds: quick ? 1 : 2, haproxyRestarts: quick ? 2 : 5, crashRounds: quick ? 1 : 3, reloads: quick ? 10 : 30, rate: TRAFFIC_RATE, log })));
}
if (await section('external')) {
  // The older benches, run as they are (each starts its own etcd), with their output kept verbatim.
  external.push(await runBench('SSE fan-out', 'bench/sse-fanout.ts', ['--clients', '100', '--changes', quick ? '100' : '200']));
  external.push(await runBench('CLI start-up', 'bench/cli-startup.ts', ['--runs', quick ? '3' : '5']));
  rows.push(...externalRows(external));
}

const elapsed = Math.round((Date.now() - t0) / 1000);
const loadAfter = loadAverage();
console.log(`\n${textTable(rows)}\n`);
for (const e of external) console.log(`${e.name} (${e.command}):\n${e.output.trim()}\n`);
console.log(`${elapsed} s; load average before ${loadBefore}, after ${loadAfter}`);

if (!args['no-write']) {
  const doc = renderDoc(rows, external, { startedAt, elapsed, loadBefore, loadAfter, etcdVersion, quick, sections: [...only] });
  const out = args.out ?? join(ROOT, 'docs/benchmarks.md');
  writeFileSync(out, doc);
  log(`wrote ${out}`);
}

/** Runs another bench script under tsx with a time limit; returns its stdout. */
function runBench(name: string, script: string, scriptArgs: string[]): Promise<{ name: string; command: string; output: string }> {
  log(`${name}: ${script} ${scriptArgs.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...scriptArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const failed = code !== 0 ? `\n(exited ${signal ?? code})\n${err.slice(-2000)}` : '';
      resolve({ name, command: `${script} ${scriptArgs.join(' ')}`, output: out + failed });
    });
  });
}

/** The headline figures of the older benches, parsed from their output when it has the expected shape. */
function externalRows(outputs: { name: string; output: string }[]): Row[] {
  const out: Row[] = [];
  const sse = outputs.find((o) => o.name === 'SSE fan-out')?.output ?? '';
  for (const line of sse.split('\n')) {
    const m = /^(paced, 1 per \d+ ms|burst, concurrent puts)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/.exec(line.trim());
    if (!m) continue;
    out.push({
      section: 'SSE fan-out',
      measure: `${m[3]} clients on one agent, ${m[1]} (change -> every client)`,
      value: `p50 ${m[7]} / p99 ${m[9]} ms, ${m[5]} missing, ${m[6]} duplicates`,
      n: Number(m[4]),
      note: 'bench/sse-fanout.ts',
    });
  }
  const cli = outputs.find((o) => o.name === 'CLI start-up')?.output ?? '';
  for (const line of cli.split('\n')) {
    const m = /│\s*(run\.js services list --json|run\.js --version|node -e '')\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*([\d.]+)x/.exec(line);
    if (!m) continue;
    out.push({ section: 'CLI start-up', measure: m[1]!, value: `median ${m[2]} ms (${m[4]}x node)`, note: 'bench/cli-startup.ts' });
  }
  return out;
}

interface DocInfo {
  startedAt: Date;
  elapsed: number;
  loadBefore: string;
  loadAfter: string;
  etcdVersion: string;
  quick: boolean;
  sections: string[];
}

function renderDoc(rows: Row[], outputs: { name: string; command: string; output: string }[], info: DocInfo): string {
  const m = machine();
  const goals = rows.filter((r) => r.ratio !== undefined);
  const lines = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (\`bench/run-all.ts\`${info.quick ? ' --quick' : ''}) on ${info.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC at ${sourceRevision()};`,
    'rerun it rather than editing this page.',
    '',
    '## Machine',
    '',
    `- ${m.cpu}, ${m.cores} cores available, ${m.memGiB} GiB memory, ${m.os}`,
    `- Node ${process.version}, etcd ${info.etcdVersion} (one member, local process, data on the local disk, loopback only; three members for the "cluster" section)`,
    `- load average (1, 5, 15 min) before: ${info.loadBefore}; after: ${info.loadAfter}; 1-min load as each section began: ${sectionLoads.join(', ')}. The machine is shared: a load above the core count means other work competed for the CPU, and every figure is then slower than the machine can do. The "limits" rows, measured in the same run, show how fast etcd alone was at the time.`,
    `- ran ${info.elapsed} s (${info.sections.join(', ')})`,
    '',
    '## Method',
    '',
    '- Before each section the bench waits (at most 30 s) for the 1-minute load average to fall below the core count; the load each section started at is listed above.',
    '- A goal that is a bound is judged on the worst round or agent (unhealthy detection, crash failover, 1,000 agents registered, idle RSS of the worst agent, whose idle level is the median of its samples); a goal on a percentile says so (handover p50, propagation p99).',
    '- **limits**: etcd alone, through the same client the agent uses (etcd3 1.1.2): put to another client\'s watch, 1,000 lease grants with a put each (50 at a time, after a warm-up), a range read of 1,000 keys.',
    '- **agents** (`bench/agents.ts`): three real `proxy-stone-sd agent` processes (the built CLI), each beside a sample upstream, lease TTL 3 s, renew 1 s, health interval 1 s, timeout 1 s, retries 2, `--health-refresh-interval 0`. Agent-side moments (`leader.elected`, `health.changed`) come from the agents\' JSON log lines, stamped by the same machine clock; removals from an etcd watch. Each round starts from a settled, healthy cluster that has been idle for 1.5 s; killed or stopped agents are restarted between rounds. Kills land at a random point of the renew cycle.',
    '  - steady state: etcd\'s own counters (`etcd_mvcc_put_total`, `etcd_mvcc_txn_total`, `etcd_mvcc_delete_total`, `etcd_debugging_lease_renewed_total`, `etcd_server_proposals_committed_total`) over an idle window, per agent per minute, and per health check against the checks every agent in etcd counted itself (`proxy_stone_health_checks_total` on its `/metrics`, before and after the window); RSS (`VmRSS`) and PSS (`smaps_rollup`) sampled every 5 s (the idle level is the median of the samples after 20 s, or after half the window with --quick, when V8 has shrunk its heap; the peak is the largest sample), in MB of 10^6 bytes (`/proc` gives KiB); the node binary\'s resident share from `/proc/<pid>/smaps`; the V8 heap from each agent\'s `nodejs_heap_size_used_bytes`; CPU from `utime + stime` in `/proc/<pid>/stat`. Three more agents run, each in its own namespace, started other ways for comparison: by importing `runAgent()` directly (so with V8\'s default settings), under `node --jitless`, and with `MALLOC_ARENA_MAX=2`. Separately, a bare `node --expose-gc` imports the agent\'s dependencies in turn and reads the heap after GC.',
    '  - unhealthy detection: the upstream starts answering 503 at a random point of the probe cycle; the bound is interval x retries + timeout.',
    '- **propagation** (`bench/propagation.ts`): the bench joins a service exactly as an agent does (lease grant, then one transaction with the record and the election key) and leaves by revoking the lease; three real agents each serve one SSE client. "Peers\' views" is the event\'s `timestamp`, stamped by each agent when its view applies the change (1 ms resolution); "SSE" is receipt at the client. Both from the moment the write is issued.',
    '- **cluster** (`bench/etcd-cluster.ts`): etcd as production runs it, three members on loopback (separate processes and data dirs, etcd\'s default raft timers: heartbeat 100 ms, election 1 s), three agent processes given every member\'s endpoint, lease TTL 5 s, renew 1 s. Three times per pass the member most agents use (from their logs) is hung (SIGSTOP) for 4 s, then three times killed and restarted on its data, at a random point of the renew cycle; an agent\'s move is its `registry.member_changed` log line leaving that member, from the fault. A watcher (a `ClusterView` on its own client with every endpoint) counts records that went missing and leader changes meanwhile. Then crash failover and join/leave propagation to SSE clients as in the sections above.',
    '- **scale** (`bench/scale.ts`): 1,000 `ServiceAgent`s in one process (each with its own lease, record, campaign, keep-alive timer and health checker) sharing one etcd client and one watch, all started at once against an etcd of their own, warmed up first with 500 lease grants and puts (a fresh etcd\'s first burst is several times slower); a new agent with a view of its own; `services list --json` as a new process per call, at 1,000 and 10,000 records.',
    ...(only.has('traffic')
      ? [
          `- **traffic** (\`bench/traffic.ts\`, ${trafficVersions()}): three instances (\`bench/lb-instance.mjs\`: an HTTP server that holds each request 5-20 ms, names itself in an \`x-instance\` header and logs each arrival) each beside a real \`proxy-stone-sd agent\` (the timings of the agents section), on an etcd of their own; in front, a real HAProxy with the haproxy.cfg of docs/load-balancers.md fed by \`lb haproxy\`, then a real nginx with that page's nginx.conf and template fed by \`render --exec "nginx … -s reload"\` (files and command lines read from the page, only paths and ports swapped). Load: ${TRAFFIC_RATE} GET requests/s through the load balancer from the bench process, open loop, over keep-alive connections (node:http, no retries), each with a 5 s timeout; a failure is a non-2xx answer or a transport error.`,
          '  - rolling restart: for each instance in turn, `services disable --drain-timeout 2s` (the built CLI), wait until the drain has ended, stop it (agent SIGTERM, then its server once its in-flight requests are answered), start it again on the same id and port, wait until its record is healthy, `services enable`, wait for its first request. "disable -> last new request" runs from the intent\'s `at` (stamped by the disable command just before its transaction) to the last arrival at the instance itself; the feed\'s own moment (HAProxy\'s acknowledgement, nginx\'s reload returning) is from its log. The failed-request count covers the whole restart, from the first disable to the last instance\'s first request again.',
          '  - HAProxy restarted: SIGTERM, then a new process on the same config; re-synced when `show servers state` has every instance\'s server ready and up, from the new process\'s start. Requests failed from the stop to the re-sync are counted apart.',
          '  - crash: kill -9 of an instance\'s server and agent together, at a random moment, counted until it has been started again and takes traffic (its record leaves when the lease expires, 3 s); through the page\'s haproxy.cfg, the same file without its `retries`, `option redispatch` and `retry-on` lines (a second HAProxy with its own `lb haproxy`), and nginx. Then nginx reloaded by the `--exec` command alone, nothing changed, under the same load.',
        ]
      : []),
    '- **external**: `bench/sse-fanout.ts` (100 SSE clients on one agent) and `bench/cli-startup.ts`, run as they are; their output is below.',
    '',
    '## Results',
    '',
    markdownTable(rows),
    '',
    '## Goals',
    '',
    ...goals.map((r) => `- **${r.measure}**: ${r.value} against ${r.goal}: ${verdict(r)}.${r.ratio! > 1 ? ` ${missedReason(r, rows)}` : ''}`),
    '',
    ...(only.has('agents') ? agentNotes(rows) : []),
    '',
  ];
  for (const o of outputs) {
    lines.push(`## ${o.name}: \`${o.command}\``, '', '```', o.output.trim(), '```', '');
  }
  return `${lines.join('\n')}`;
}

/** Why a goal was missed, from what is known about its cause (see the notes under the goals for the analysis). */
function missedReason(row: Row, all: Row[]): string {
  const limit = (measure: string) => all.find((r) => r.measure.startsWith(measure))?.value;
  if (row.measure.startsWith('RSS')) return 'See "Agent memory" below: most of it is the node binary and the code of the dependencies, not data.';
  if (row.measure.includes('registered and campaigning')) {
    return `Two etcd writes per agent (a lease grant and one transaction) is the floor; etcd alone did 1,000 grants with a put in ${limit('1,000 lease grants') ?? 'n/a'} in this run.`;
  }
  if (row.section.startsWith('traffic')) return 'Its note gives the feed\'s own part (its log); the rest is the registry\'s watch and the machine\'s load at the time.';
  if (row.section === 'propagation') return `etcd alone: ${limit('a put reaches') ?? 'n/a'}; the rest is the agent's event loop under the machine's load at the time.`;
  return 'See the notes below.';
}

/** The commit the figures belong to, and whether the tree differed from it (outside this page). */
function sourceRevision(): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'an unknown commit (not a git checkout)';
  const dirty = git('status', '--porcelain', '--', '.', ':!docs/benchmarks.md').stdout.trim() !== '';
  return `commit ${head.stdout.trim()}${dirty ? ' with uncommitted changes' : ''}`;
}
