/**
 * Traffic follows discovery, measured (issue 14, part 5): three instances (bench/lb-instance.mjs, each
 * beside a real `proxy-stone-sd agent`) on a real etcd, behind
 *
 * - a real HAProxy with the haproxy.cfg of docs/load-balancers.md, fed by `lb haproxy` as the page
 *   runs it, and
 * - a real nginx with the page's nginx.conf and template, fed by `render --exec "nginx … -s reload"`,
 *
 * under a steady load through the load balancer (bench/traffic-fleet.ts). Measured:
 *
 * - a rolling restart: each instance in turn disabled with a drain (`services disable`, the built
 *   CLI), stopped once drained, started again on the same id and port, healthy again, enabled
 *   (`services enable`), taking traffic again. Failed requests over the whole restart; from the
 *   disable's write (the intent's `at`) to the last request that reached the instance, at the
 *   instance; from the enable to its first request again;
 * - HAProxy itself restarted (stopped, started on the same config): from the new process's start to
 *   a backend whose three servers are back, ready and up (read over the Runtime API);
 * - a crash (kill -9 of an instance's server and its agent) under load: failed requests until it is
 *   back, with the page's recommended HAProxy settings (retries, redispatch, retry-on), without them
 *   (a second HAProxy whose config lacks those lines), and through nginx.
 *
 * The configs and command lines come from docs/load-balancers.md itself (as test/traffic/docs.test.ts
 * reads them), with paths and ports swapped for this run's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stateOf } from '../src/traffic/haproxy-plan.js';
import type { HaproxyRuntimeApi } from '../src/traffic/haproxy-runtime.js';
import { trafficVerdict } from '../src/traffic/verdict.js';
import { binOnPath, json, runCli, runShell, type ShellRun } from '../test/cli/fixtures.js';
import { ClusterReader, waitFor } from '../test/helpers/cluster.js';
import { freePorts, startEtcd, uniqueNamespace, type EtcdServer } from '../test/helpers/etcd.js';
import { findHaproxy, startHaproxy, type HaproxyServer } from '../test/helpers/haproxy.js';
import { findNginx, startNginx, type NginxServer } from '../test/helpers/nginx.js';
import { DOCS_DIR, docsCommand, foreground, loadBalancersDoc, localDocsCommand } from '../test/traffic/fixtures.js';
import { failed, FleetInstance, SteadyLoad, type RequestSample } from './traffic-fleet.js';
import { now, p50p99, percentile, sleep, type Row } from './lib.js';

export interface TrafficBenchOptions {
  /** Rolling restarts (each restarts every instance in turn) per load balancer. */
  rollingRounds: number;
  /** HAProxy restarts. */
  haproxyRestarts: number;
  /** Crashes per configuration (HAProxy recommended, HAProxy without retries, nginx). */
  crashRounds: number;
  /** nginx reloads with nothing changed. */
  reloads: number;
  /** Requests per second through the load balancer. */
  rate: number;
  log: (line: string) => void;
}

const IDS = ['ps-1', 'ps-2', 'ps-3'];
/** The drain each disable asks for (`--drain-timeout`). */
const DRAIN = '2s';
/** The backend of the docs' haproxy.cfg, and lb haproxy's default server prefix. */
const BACKEND = 'proxy_stone';
const SERVER_PREFIX = 'psd-';
/** The lines of the docs' haproxy.cfg that make HAProxy retry a failed request on another instance. */
const RETRY_LINES = /^\s*(retries|option redispatch|retry-on)\b.*\n/gm;

/** What one rolling restart measured. */
interface RollingResult {
  requests: RequestSample[];
  /** Per disable: its write -> the last request that reached the instance (0 when none did). */
  disableToLast: number[];
  /** Per enable: its write -> the first request that reached the instance again. */
  enableToFirst: number[];
  /** Per disable: its write -> the feed's change (HAProxy's acknowledgement, or nginx reloaded), from the feed's log. */
  disableToFeed: number[];
  /** Changes the feed made to the load balancer during the restart. */
  feedActs: number;
  durationMs: number;
}

/** What one crash cost. */
interface CrashResult {
  requests: RequestSample[];
  /** Failed requests in the round. */
  failures: number;
}

export async function trafficBenchmarks(options: TrafficBenchOptions): Promise<Row[]> {
  const { log } = options;
  const etcd = await startEtcd({ own: true });
  const namespace = uniqueNamespace('bench-traffic');
  const reader = new ClusterReader(etcd.endpoint, namespace);
  const ports = await freePorts(IDS.length);
  const fleet = IDS.map((id, i) => new FleetInstance(id, ports[i]!, { endpoint: etcd.endpoint, namespace }));
  const bin = binOnPath();
  const dir = mkdtempSync(path.join(tmpdir(), 'psd-bench-traffic-'));
  const env = { PATH: bin.path, SERVICE_DISCOVERY_NAMESPACE: namespace };
  const doc = loadBalancersDoc();
  const feeds: ShellRun[] = [];
  const servers: (HaproxyServer | NginxServer)[] = [];
  const loads: SteadyLoad[] = [];
  const ctx: Context = { etcd, namespace, reader, fleet, log };
  const rows: Row[] = [];

  /** Starts a feed command of the docs (`lb haproxy`, `render`) as the page runs it, in the background. */
  const feed = (line: string, swaps: [string, string][]): ShellRun => {
    const run = runShell(foreground(localDocsCommand(line, { endpoint: etcd.endpoint, dir, swaps })), { env });
    feeds.push(run);
    return run;
  };
  const stopFeed = async (run: ShellRun) => {
    run.signal('SIGINT');
    const late = setTimeout(() => run.signal('SIGKILL'), 5000);
    await run.done;
    clearTimeout(late);
  };
  const startLoad = (url: string) => {
    const load = new SteadyLoad(`${url}/`, options.rate);
    loads.push(load);
    load.start();
    return load;
  };

  try {
    log(`traffic: etcd, 3 instances with their agents (namespace ${namespace})`);
    await Promise.all(fleet.map((f) => f.start()));
    await allHealthy(ctx);

    // ---- HAProxy, the docs' config ----
    const haproxyCfg = doc.files.get(`${DOCS_DIR}/haproxy.cfg`);
    if (!haproxyCfg) throw new Error(`docs/load-balancers.md has no ${DOCS_DIR}/haproxy.cfg block`);
    const lbLine = docsCommand(doc.commands, './bin/run.js lb haproxy');
    const haproxySwaps = (h: HaproxyServer): [string, string][] => [
      [`${DOCS_DIR}/haproxy.sock`, h.socket],
      ['127.0.0.1:8080', `127.0.0.1:${h.port}`],
    ];
    const configFor = (text: string) => (where: { socket: string; port: number }) =>
      text.replaceAll(`${DOCS_DIR}/haproxy.sock`, where.socket).replaceAll('127.0.0.1:8080', `127.0.0.1:${where.port}`);

    log('traffic: HAProxy with the docs\' haproxy.cfg, fed by lb haproxy');
    const haproxy = await startHaproxy({ config: configFor(haproxyCfg) });
    servers.push(haproxy);
    const lb = feed(lbLine, haproxySwaps(haproxy));
    await backendSynced(haproxy.api(), 30_000, lb);
    let load = startLoad(haproxy.url);
    await sleep(2000);
    const haproxyRolling: RollingResult[] = [];
    // The syncer's `drain` for the server: HAProxy has acknowledged it when the line is written.
    const haproxyDrain: Feed = {
      run: lb,
      acts: (l) => /^haproxy\.server\.(added|state|address|removed)$/.test(l.event ?? ''),
      changed: (id, since) => feedLog(lb).find((l) => l.event === 'haproxy.server.state' && l.server === `${SERVER_PREFIX}${id}` && l.to === 'drain' && l.time! >= Math.floor(since))?.time,
    };
    for (let r = 0; r < options.rollingRounds; r++) haproxyRolling.push(await rollingRestart(ctx, env, load, haproxyDrain, `HAProxy round ${r + 1}`));

    log(`traffic: HAProxy restarted ${options.haproxyRestarts} times`);
    const resync: number[] = [];
    const haproxyUp: number[] = [];
    const lostInRestart: RequestSample[][] = [];
    for (let r = 0; r < options.haproxyRestarts; r++) {
      await sleep(1000 + Math.random() * 1000);
      const haltAt = now();
      await haproxy.halt();
      const startAt = now();
      await haproxy.resume();
      haproxyUp.push(now() - startAt);
      await backendSynced(haproxy.api(), 10_000, lb);
      const syncedAt = now();
      resync.push(syncedAt - startAt);
      await load.settle(syncedAt);
      lostInRestart.push(load.between(haltAt, syncedAt).filter(failed));
      log(`traffic: HAProxy restart ${r + 1}: answering after ${Math.round(haproxyUp.at(-1)!)} ms, backend re-synced after ${Math.round(resync.at(-1)!)} ms, ${lostInRestart.at(-1)!.length} requests failed meanwhile`);
    }
    await sleep(1000);

    const statsBefore = await backendStats(haproxy.api());
    const crashWith = await crashRounds(ctx, load, options.crashRounds, 'HAProxy, recommended settings');
    const statsWith = delta(statsBefore, await backendStats(haproxy.api()));
    await load.stop();
    await stopFeed(lb);
    await haproxy.stop();

    // ---- HAProxy without the retry lines ----
    const removed = haproxyCfg.match(RETRY_LINES) ?? [];
    if (removed.length !== 3) throw new Error(`expected retries, option redispatch and retry-on in the docs' haproxy.cfg, found: ${removed.join('') || 'none'}`);
    const bareCfg = haproxyCfg.replace(RETRY_LINES, '');
    log('traffic: HAProxy without retries, option redispatch and retry-on');
    const bare = await startHaproxy({ config: configFor(bareCfg) });
    servers.push(bare);
    const lbBare = feed(lbLine, haproxySwaps(bare));
    await backendSynced(bare.api(), 30_000, lbBare);
    load = startLoad(bare.url);
    await sleep(2000);
    const bareBefore = await backendStats(bare.api());
    const crashWithout = await crashRounds(ctx, load, options.crashRounds, 'HAProxy without retries');
    const statsWithout = delta(bareBefore, await backendStats(bare.api()));
    await load.stop();
    await stopFeed(lbBare);
    await bare.stop();

    // ---- nginx, the docs' nginx.conf and template, render --exec ----
    const nginxConf = doc.files.get(`${DOCS_DIR}/nginx/nginx.conf`);
    const template = doc.files.get(`${DOCS_DIR}/upstream.conf.hbs`);
    if (!nginxConf || !template) throw new Error('docs/load-balancers.md lacks its nginx.conf or upstream.conf.hbs block');
    writeFileSync(path.join(dir, 'upstream.conf.hbs'), template);
    log('traffic: nginx with the docs\' nginx.conf, fed by render --exec');
    const nginx = await startNginx({
      config: (where) => nginxConf.replaceAll(`${DOCS_DIR}/nginx`, where.dir).replaceAll('127.0.0.1:8081', `127.0.0.1:${where.port}`),
      beforeStart: async (where) => {
        const once = localDocsCommand(docsCommand(doc.commands, 'npx proxy-stone-sd render', '--once'), { endpoint: etcd.endpoint, dir, swaps: [[`${DOCS_DIR}/nginx`, where.dir]] });
        const res = await runShell(once, { env }).done;
        if (res.code !== 0) throw new Error(`render --once exited ${res.code}: ${res.stderr}`);
      },
    });
    servers.push(nginx);
    const render = feed(docsCommand(doc.commands, './bin/run.js render', '--exec'), [
      [`${DOCS_DIR}/nginx`, nginx.dir],
      ['127.0.0.1:8081', `127.0.0.1:${nginx.port}`],
    ]);
    await waitFor('render listing the registry', () => render.output().stdout.includes('"event":"feed.listed"'), 30_000, 50);
    load = startLoad(nginx.url);
    await sleep(2000);
    const nginxRolling: RollingResult[] = [];
    // The first reload after the disable: written when `nginx -s reload` has returned.
    const nginxReload: Feed = { run: render, acts: (l) => l.event === 'render.exec', changed: (_id, since) => feedLog(render).find((l) => l.event === 'render.exec' && l.time! >= Math.floor(since))?.time };
    for (let r = 0; r < options.rollingRounds; r++) nginxRolling.push(await rollingRestart(ctx, env, load, nginxReload, `nginx round ${r + 1}`));
    const crashNginx = await crashRounds(ctx, load, options.crashRounds, 'nginx');

    // A reload alone, nothing changed: what it costs the load, apart from any instance.
    const reloadCommand = localDocsCommand(/--exec "([^"]+)"/.exec(docsCommand(doc.commands, './bin/run.js render', '--exec'))![1]!, { endpoint: etcd.endpoint, dir, swaps: [[`${DOCS_DIR}/nginx`, nginx.dir]] });
    log(`traffic: nginx reloaded ${options.reloads} times (${reloadCommand})`);
    const reloadFrom = now();
    for (let r = 0; r < options.reloads; r++) {
      const res = await runShell(reloadCommand, { env }).done;
      if (res.code !== 0) throw new Error(`${reloadCommand} exited ${res.code}: ${res.stderr}`);
      await sleep(400 + Math.random() * 200);
    }
    const reloadTo = now();
    await load.settle(reloadTo);
    const reloadRequests = load.between(reloadFrom, reloadTo);
    await load.stop();
    await stopFeed(render);
    const nginxErrors = (await nginx.errorLog()).split('\n').filter((l) => /\[(emerg|crit|alert)\]/.test(l));
    if (nginxErrors.length > 0) log(`traffic: nginx error log: ${nginxErrors.slice(0, 3).join(' | ')}`);
    await nginx.stop();

    rows.push(
      ...rollingRows('traffic (HAProxy)', haproxyRolling, {
        lb: 'HAProxy',
        goalMs: 100,
        failuresGoal: true,
        via: '`lb haproxy` (Runtime API: the server goes to drain, then maint)',
        feed: 'lb haproxy\'s drain acknowledged by HAProxy',
        acts: 'server changes through the Runtime API, no reload',
      }),
      {
        section: 'traffic (HAProxy)',
        measure: 'HAProxy restarted (stopped, started on the same config) -> backend re-synced: every server back, ready and up',
        value: `${p50p99(resync)}, max ${Math.round(Math.max(...resync))} ms`,
        goal: 'max <= 2000 ms',
        ratio: Math.max(...resync) / 2000,
        n: resync.length,
        note: `from the new process's start; HAProxy itself answered its socket after ${p50p99(haproxyUp)}; lb haproxy re-reads HAProxy every --resync-interval (default 1 s)`,
      },
      {
        section: 'traffic (HAProxy)',
        measure: 'requests failed while HAProxy restarted (stop -> backend re-synced; not in the rolling-restart figure)',
        value: `${lostInRestart.map((l) => l.length).join(', ')} per restart${lostInRestart.flat().length > 0 ? ` (${describeFailures(lostInRestart.flat())})` : ''}`,
        n: lostInRestart.length,
        note: 'ECONNREFUSED (or a reset connection) while no HAProxy listens, then 503 from a backend without servers until lb haproxy re-adds them; a shorter --resync-interval shortens the second part',
      },
      crashRow('traffic (HAProxy)', 'kill -9 of an instance, the docs\' recommended haproxy.cfg (retries 3, option redispatch 1, retry-on all-retryable-errors, l7 retries for GET only)', crashWith, options.rate, statsWith),
      crashRow('traffic (HAProxy)', 'kill -9 of an instance, the same haproxy.cfg without its retries, redispatch and retry-on lines', crashWithout, options.rate, statsWithout),
      ...rollingRows('traffic (nginx)', nginxRolling, {
        lb: 'nginx',
        goalMs: 1000,
        failuresGoal: false,
        via: '`render --exec` (template re-rendered, nginx reloaded)',
        feed: '`nginx -s reload` returned',
        acts: 'nginx reloads',
      }),
      {
        section: 'traffic (nginx)',
        measure: 'nginx reloaded with nothing changed (the --exec command by itself): failed requests',
        value: `${reloadRequests.filter(failed).length} of ${reloadRequests.length}${reloadRequests.some(failed) ? ` (${describeFailures(reloadRequests.filter(failed))})` : ''}`,
        n: options.reloads,
        note: 'a reload ends the old workers, which close the clients\' idle keep-alive connections; a request sent on one at that moment is reset',
      },
      crashRow('traffic (nginx)', 'kill -9 of an instance, the docs\' nginx.conf (proxy_next_upstream error timeout http_502 http_503 http_504)', crashNginx, options.rate),
    );
  } catch (err) {
    for (const f of feeds) log(`traffic: feed output:\n${f.output().stdout.slice(-3000)}\n${f.output().stderr.slice(-2000)}`);
    for (const f of fleet) log(`traffic: ${f.id}'s agent:\n${f.agentOutput().slice(-3000)}`);
    throw err;
  } finally {
    for (const load of loads) await load.stop();
    for (const f of feeds) f.signal('SIGKILL');
    await Promise.all(feeds.map((f) => f.done));
    for (const s of servers) await s.stop();
    await Promise.all(fleet.map((f) => f.crash().catch(() => undefined)));
    await reader.close();
    await etcd.stop();
    bin.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** A feed command (`lb haproxy`, `render`) as a rolling restart watches it. */
interface Feed {
  run: ShellRun;
  /** Its log lines that changed the load balancer (HAProxy server changes, nginx reloads). */
  acts: (line: { event?: string }) => boolean;
  /** When it acted on `id`'s disable made at `since` (epoch ms, from its log), if it did. */
  changed: (id: string, since: number) => number | undefined;
}

/** The JSON log lines of a feed command so far. */
function feedLog(run: ShellRun): { event?: string; time?: number; [k: string]: unknown }[] {
  return run
    .output()
    .stdout.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event?: string; time?: number });
}

/** `HAProxy 2.6.12-1+deb12u4, nginx 1.22.1`: the versions the traffic section ran against. */
export function trafficVersions(): string {
  const version = (binary: string, pattern: RegExp) => {
    const res = spawnSync(binary, ['-v'], { encoding: 'utf8', timeout: 5000 });
    return pattern.exec(`${res.stdout}${res.stderr}`)?.[1] ?? 'unknown';
  };
  return `HAProxy ${version(findHaproxy(), /version (\S+)/)}, nginx ${version(findNginx(), /nginx\/(\S+)/)}`;
}

interface Context {
  etcd: EtcdServer;
  namespace: string;
  reader: ClusterReader;
  fleet: FleetInstance[];
  log: (line: string) => void;
}

/** Every instance registered and healthy (and enabled). */
async function allHealthy(ctx: Context): Promise<void> {
  await waitFor(
    'every instance healthy',
    async () => {
      const state = await ctx.reader.read();
      return IDS.every((id) => {
        const s = state.service(id);
        return s !== undefined && trafficVerdict(s).state === 'serving';
      });
    },
    30_000,
    50,
  );
}

/** `services disable|enable <id>` through the built CLI; returns the moment it wrote (the intent's `at`). */
async function toggle(ctx: Context, env: NodeJS.ProcessEnv, verb: 'disable' | 'enable', id: string): Promise<number> {
  const args = ['services', verb, id, '--endpoints', ctx.etcd.endpoint, '--json'];
  if (verb === 'disable') args.push('--reason', 'rolling restart', '--drain-timeout', DRAIN);
  const res = await runCli(args, { env, timeoutMs: 30_000 });
  const out = json<{ changed?: boolean }>(res);
  if (res.code !== 0 || out.changed !== true) throw new Error(`services ${verb} ${id} exited ${res.code}: ${res.stdout} ${res.stderr}`);
  const intent = (await ctx.reader.read()).intent(id);
  if (!intent || intent.enabled !== (verb === 'enable')) throw new Error(`services ${verb} ${id}: the registry does not show it`);
  return intent.at;
}

/** Each instance in turn: disable (drain), stop once drained, start, healthy, enable, taking traffic. */
async function rollingRestart(ctx: Context, env: NodeJS.ProcessEnv, load: SteadyLoad, feed: Feed, label: string): Promise<RollingResult> {
  const from = now();
  const disableToLast: number[] = [];
  const enableToFirst: number[] = [];
  const disableToFeed: number[] = [];
  for (const instance of ctx.fleet) {
    const id = instance.id;
    const disabledAt = await toggle(ctx, env, 'disable', id);
    // Drained: the drain deadline passed (or the agent recorded its end), so it counts as disabled.
    await waitFor(`${id} drained`, async () => {
      const s = (await ctx.reader.read()).service(id);
      return s !== undefined && trafficVerdict(s).state === 'out';
    }, 15_000, 50);
    const stopAt = now();
    await instance.stop();
    const late = instance.arrivalsBetween(disabledAt, stopAt);
    disableToLast.push(late.length > 0 ? Math.max(...late) - disabledAt : 0);
    const fed = feed.changed(id, disabledAt);
    if (fed !== undefined) disableToFeed.push(fed - disabledAt);
    await instance.start();
    await waitFor(`${id} registered and healthy again`, async () => (await ctx.reader.read()).service(id)?.status === 'healthy', 20_000, 50);
    const enabledAt = await toggle(ctx, env, 'enable', id);
    const first = await waitFor(`${id} taking traffic again`, () => instance.arrivalsBetween(enabledAt)[0], 15_000, 5);
    enableToFirst.push(first - enabledAt);
    ctx.log(
      `traffic: ${label}: ${id} restarted; feed changed ${fed === undefined ? '?' : Math.round(fed - disabledAt)} ms and last request ${Math.round(disableToLast.at(-1)!)} ms after the disable, first request ${Math.round(enableToFirst.at(-1)!)} ms after the enable`,
    );
  }
  const to = now();
  // Requests sent until now may still be in flight: their outcome counts too.
  await load.settle(to);
  // Each failure with the feed's last change before it, to tell what it met.
  const log = feedLog(feed.run);
  const feedActs = log.filter((l) => feed.acts(l) && l.time! >= from && l.time! < to).length;
  for (const f of load.between(from, to).filter(failed)) {
    const last = log.filter((l) => l.time! <= f.sent).at(-1);
    ctx.log(`traffic: ${label}: failed: ${f.error ?? `HTTP ${f.status}`} after ${Math.round(f.done - f.sent)} ms, sent ${last ? `${Math.round(f.sent - last.time!)} ms after the feed's ${last.event}` : 'before the feed logged anything'}`);
  }
  return { requests: load.between(from, to), disableToLast, enableToFirst, disableToFeed, feedActs, durationMs: to - from };
}

/** `rounds` crashes, one instance after the other: kill -9, gone from the registry, started again, taking traffic. */
async function crashRounds(ctx: Context, load: SteadyLoad, rounds: number, label: string): Promise<CrashResult[]> {
  const out: CrashResult[] = [];
  let from = now();
  for (let r = 0; r < rounds; r++) {
    const instance = ctx.fleet[r % ctx.fleet.length]!;
    // A random moment, so the kill does not always meet the health checks at the same point.
    await sleep(1000 + Math.random() * 1000);
    await instance.crash();
    await waitFor(`${instance.id} gone from the registry (its lease expired)`, async () => (await ctx.reader.read()).service(instance.id) === undefined, 15_000, 50);
    await sleep(500);
    const restartAt = now();
    await instance.start();
    await waitFor(`${instance.id} healthy again`, async () => (await ctx.reader.read()).service(instance.id)?.status === 'healthy', 20_000, 50);
    await waitFor(`${instance.id} taking traffic again`, () => instance.arrivalsBetween(restartAt)[0], 15_000, 5);
    await sleep(500);
    const to = now();
    await load.settle(to);
    const requests = load.between(from, to);
    out.push({ requests, failures: requests.filter(failed).length });
    const failures = requests.filter(failed);
    ctx.log(`traffic: crash (${label}) ${r + 1}: ${instance.id} killed; ${failures.length} of ${requests.length} requests failed until it was back${failures.length ? ` (${describeFailures(failures)})` : ''}`);
    from = to;
  }
  return out;
}

/** Waits until HAProxy's backend has a server per instance, ready and up. */
async function backendSynced(api: HaproxyRuntimeApi, timeoutMs: number, feedRun: ShellRun): Promise<void> {
  await waitFor(
    'HAProxy backend with every instance ready and up',
    async () => {
      if (feedRun.output().stderr.includes('Error')) throw new Error(`lb haproxy: ${feedRun.output().stderr}`);
      const servers = await api.serversState(BACKEND);
      return IDS.every((id) => {
        const s = servers.find((x) => x.name === `${SERVER_PREFIX}${id}`);
        return s !== undefined && stateOf(s) === 'ready' && s.opState === 2;
      });
    },
    timeoutMs,
    10,
  );
}

/** The backend's retry and redispatch counters (`show stat`: wretr, wredis). */
async function backendStats(api: HaproxyRuntimeApi): Promise<{ retries: number; redispatches: number }> {
  const csv = (await api.command('show stat')).split('\n');
  const head = csv[0]!.replace(/^# /, '').split(',');
  const line = csv.find((l) => l.startsWith(`${BACKEND},BACKEND,`))?.split(',');
  if (!line) throw new Error(`show stat has no ${BACKEND} backend line`);
  return { retries: Number(line[head.indexOf('wretr')]), redispatches: Number(line[head.indexOf('wredis')]) };
}

function delta(a: { retries: number; redispatches: number }, b: { retries: number; redispatches: number }) {
  return { retries: b.retries - a.retries, redispatches: b.redispatches - a.redispatches };
}

function rollingRows(section: string, rounds: RollingResult[], how: { lb: string; goalMs: number; failuresGoal: boolean; via: string; feed: string; acts: string }): Row[] {
  const requests = rounds.flatMap((r) => r.requests);
  const failures = requests.filter(failed);
  const lasts = rounds.flatMap((r) => r.disableToLast);
  const firsts = rounds.flatMap((r) => r.enableToFirst);
  const fed = rounds.flatMap((r) => r.disableToFeed);
  const latency = requests.filter((s) => !failed(s)).map((s) => s.done - s.sent);
  return [
    {
      section,
      measure: `rolling restart under load through ${how.lb}: failed requests (each instance in turn disabled with a ${DRAIN} drain, stopped, started, healthy, enabled)`,
      value: `${failures.length} of ${requests.length}${failures.length > 0 ? ` (${describeFailures(failures)})` : ''}`,
      ...(how.failuresGoal ? { goal: '0', ratio: failures.length === 0 ? 0 : Infinity } : {}),
      n: rounds.length,
      note: `rolling restarts of 3 instances, ${p50p99(rounds.map((r) => r.durationMs / 1000), 's')} each, ${rounds.map((r) => r.feedActs).join(', ')} ${how.acts}; a failure is a non-2xx answer or a transport error`,
    },
    {
      section,
      measure: `${how.lb}: disable -> last new request reaching the instance (at the instance)`,
      value: `${p50p99(lasts)}, max ${Math.round(Math.max(...lasts))} ms`,
      goal: `p99 <= ${how.goalMs} ms`,
      ratio: percentile(lasts, 99) / how.goalMs,
      n: lasts.length,
      note: `from the disable's write (the intent's at, before the commit) to the last arrival, through ${how.via}; 0 when none arrived after it; ${how.feed}: ${p50p99(fed)} after the disable`,
    },
    {
      section,
      measure: `${how.lb}: enable -> first request reaching the instance again`,
      value: p50p99(firsts),
      n: firsts.length,
    },
    {
      section,
      measure: `request latency through ${how.lb} during the rolling restarts (2xx answers)`,
      value: p50p99(latency),
      n: latency.length,
      note: 'the instance holds each request 5-20 ms',
    },
  ];
}

function crashRow(section: string, measure: string, rounds: CrashResult[], rate: number, stats?: { retries: number; redispatches: number }): Row {
  const failures = rounds.flatMap((r) => r.requests.filter(failed));
  const requests = rounds.reduce((n, r) => n + r.requests.length, 0);
  return {
    section,
    measure: `${measure}: failed requests per crash, until the instance is back`,
    value: `${rounds.map((r) => r.failures).join(', ')} (${failures.length} of ${requests}${failures.length > 0 ? `: ${describeFailures(failures)}` : ''})`,
    n: rounds.length,
    note: `${rate} requests/s; the instance's agent dies with it, so the registry drops it when its lease expires (TTL 3 s)${stats ? `; HAProxy's counters over the crashes: retries ${stats.retries}, redispatches ${stats.redispatches}` : ''}`,
  };
}

/** `503 x12, ECONNRESET x1`. */
function describeFailures(failures: RequestSample[]): string {
  const counts = new Map<string, number>();
  for (const f of failures) {
    const key = f.error ?? `HTTP ${f.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k} x${n}`).join(', ');
}
