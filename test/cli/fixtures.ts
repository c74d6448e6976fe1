/**
 * What the CLI tests run against: the real built binary (`node bin/run.js`), a real etcd (the shared
 * test server), and in-process agents beside tiny upstreams, each serving the real HTTP API.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { startAgentCluster, type AgentCluster, type AgentNode, type Upstream } from '../helpers/agent-cluster.js';
import { listenOnLoopback } from '../helpers/loopback.js';

export { waitFor } from '../helpers/agent-cluster.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/run.js');
export const API_KEY = 'cli-test-operator-key';

/** Builds once when dist/ (or the manifest) is missing; `npm test` builds before mocha anyway. */
export function ensureBuilt(): void {
  if (existsSync(path.join(ROOT, 'dist/commands/services/list.js')) && existsSync(path.join(ROOT, 'oclif.manifest.json'))) return;
  const res = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`npm run build failed:\n${res.stdout}\n${res.stderr}`);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A contexts file that does not exist (its directory neither). */
export const NO_CONTEXTS_FILE = path.join(tmpdir(), 'proxy-stone-sd-tests-no-such-dir', 'contexts.yaml');

/**
 * The environment the CLI runs with: the caller's, minus every variable that could point it at
 * another cluster, with a fixed width and no colour so output is deterministic.
 */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(SERVICE_|PROXY_STONE_SD_|LOG_LEVEL$|DEBUG$|NODE_OPTIONS$|OCLIF_)/.test(k)) continue;
    env[k] = v;
  }
  // The fixture cluster has one instance per zone, so the capacity guard (default: keep one) would
  // refuse every disable; it has tests of its own (test/cli/drain.test.ts), which set it explicitly.
  // No contexts file unless a test names one: the current context of whoever runs the tests is not the test's.
  return { ...env, COLUMNS: '160', NO_COLOR: '1', FORCE_COLOR: '0', SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE: '0', PROXY_STONE_SD_CONTEXTS_FILE: NO_CONTEXTS_FILE, ...extra };
}

/**
 * Runs the built CLI (or `executable`, e.g. an installed copy) to completion, stdin closed so it is
 * never a TTY. Never synchronously: the test's agents share this event loop, and a blocked loop
 * misses their keep-alives (a 3 s lease expires under a slow CLI run).
 */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; executable?: string; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const [command, ...prefix] = options.executable ? [options.executable] : [process.execPath, BIN];
    const child = spawn(command!, [...prefix, ...args], { cwd: options.cwd ?? ROOT, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`proxy-stone-sd ${args.join(' ')} did not exit within ${options.timeoutMs ?? 20_000}ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Parses stdout as JSON, with the whole output in the error when it is not. */
export function json<T = unknown>(res: CliResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${res.code}):\n${res.stdout}\nstderr: ${res.stderr}`);
  }
}

export type TestUpstream = Upstream & { url: string };

/** A stand-in for a Proxy-Stone instance: GET /health answers 200 {status: "ok"}. */
export async function startUpstream(): Promise<TestUpstream> {
  const server = http.createServer((req, res) => {
    res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: req.url === '/health' ? 'ok' : 'not_found' }));
  });
  return listenOnLoopback(server);
}

export type TestNode = AgentNode<TestUpstream>;

export interface TestCluster extends AgentCluster<TestUpstream> {
  /** `--endpoints <etcd> --namespace <ns>` */
  registryArgs: string[];
  /** `--agent <first agent's API>` */
  agentArgs: string[];
}

/**
 * Starts `count` agents (test/helpers/agent-cluster.ts) on the shared etcd, or `options.etcd`, in a
 * fresh namespace and waits until all are healthy with a leader. Ids are `<idPrefix>-1`,
 * `<idPrefix>-2`, …: `proxy-stone` gives the ids the help examples use.
 */
export async function startCluster(
  count = 3,
  options: {
    idPrefix?: string;
    minHealthyPerZone?: string;
    etcd?: { endpoint: string; endpoints: string[] };
    labels?: (i: number) => { tags?: string[]; metadata?: Record<string, string> };
  } = {},
): Promise<TestCluster> {
  const cluster = await startAgentCluster(count, {
    idPrefix: options.idPrefix ?? 'cli-node',
    upstream: startUpstream,
    apiKey: API_KEY,
    namespaceTag: 'cli',
    healthCheck: { interval: 0.5, retries: 2 },
    version: '1.0.0',
    // Off unless asked (one instance per zone: see cliEnv).
    ...(options.minHealthyPerZone !== undefined ? { minHealthyPerZone: options.minHealthyPerZone } : {}),
    ...(options.etcd ? { etcd: options.etcd } : {}),
    ...(options.labels ? { labels: options.labels } : {}),
  });
  return {
    ...cluster,
    registryArgs: ['--endpoints', cluster.endpoint, '--namespace', cluster.namespace],
    agentArgs: ['--agent', cluster.nodes[0]!.api.url],
  };
}

/**
 * The type skeleton of a JSON value: objects become their sorted keys with skeletons, arrays the
 * skeleton of their first item, other values their type. Equal skeletons mean equal shapes.
 */
export function shapeOf(value: unknown): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length ? [shapeOf(value[0])] : [];
  if (typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, shapeOf((value as Record<string, unknown>)[k])]),
    );
  }
  return typeof value;
}

/**
 * A directory holding `proxy-stone-sd` (a symlink to the built bin/run.js, as `npm install -g` makes)
 * and the PATH that finds it first, for running commands the way a person pastes them.
 */
export function binOnPath(): { path: string; dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'sd-cli-bin-'));
  symlinkSync(BIN, path.join(dir, 'proxy-stone-sd'));
  return {
    dir,
    path: [dir, path.dirname(process.execPath), process.env.PATH ?? ''].join(path.delimiter),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A command line run by bash, in its own process group (so a signal reaches it as Ctrl-C would). */
export interface ShellRun {
  readonly pid: number;
  /** Resolves when the command exits. */
  readonly done: Promise<CliResult>;
  output(): { stdout: string; stderr: string };
  /** Sends `signal` to the whole process group, as a terminal does on Ctrl-C. */
  signal(signal: NodeJS.Signals): void;
}

export function runShell(command: string, options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ShellRun {
  const started = Date.now();
  const child = spawn('bash', ['-c', command], {
    cwd: options.cwd ?? ROOT,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
  return {
    pid: child.pid!,
    done,
    output: () => ({ stdout, stderr }),
    signal: (signal) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    },
  };
}

/** One gauge from a Prometheus text endpoint (etcd's or an agent's `/metrics`). */
export async function gauge(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/**
 * How to tell that an `events` process is following: etcd counts watch streams, an agent counts its
 * SSE clients. Read `before()` ahead of starting it, then `following()` turns true once it is.
 */
export function followProbe(target: { etcd: string } | { agent: string }): { before(): Promise<void>; following(): Promise<boolean> } {
  const [url, name] =
    'agent' in target
      ? [`${target.agent.replace(/\/+$/, '')}/metrics`, 'proxy_stone_sse_clients']
      : [`${target.etcd}/metrics`, 'etcd_debugging_mvcc_watch_stream_total'];
  let baseline = 0;
  return {
    before: async () => {
      baseline = await gauge(url, name);
    },
    following: async () => (await gauge(url, name).catch(() => baseline)) > baseline,
  };
}

/**
 * Shell completion as a person sets it up (docs/cli.md): `autocomplete bash` builds the cache,
 * `autocomplete script bash` prints the line for ~/.bashrc; then bash asks the completion function
 * about each partial command line. `env` must put `proxy-stone-sd` on PATH and HOME/XDG_CACHE_HOME
 * somewhere disposable. Returns the exit codes, the setup line and the candidates for each line.
 */
export function bashCompletion(
  env: NodeJS.ProcessEnv,
  lines: string[][],
): { buildCode: number | null; buildOutput: string; setup: string; completions: Map<string, string[]> } {
  const opts = { env: cliEnv(env), encoding: 'utf8' as const, timeout: 60_000 };
  const build = spawnSync('proxy-stone-sd', ['autocomplete', 'bash'], opts);
  const setup = spawnSync('proxy-stone-sd', ['autocomplete', 'script', 'bash'], opts);
  const script = [
    'eval "$(proxy-stone-sd autocomplete script bash)"',
    'comp() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=();',
    '  "$(complete -p proxy-stone-sd | sed -E "s/.*-F ([^ ]+).*/\\1/")" proxy-stone-sd "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}";',
    '  printf "%s\\t%s\\n" "$*" "${COMPREPLY[*]}"; }',
    ...lines.map((words) => `comp ${words.map((w) => `'${w}'`).join(' ')}`),
  ].join('\n');
  const run = spawnSync('bash', ['-c', script], opts);
  const completions = new Map<string, string[]>();
  for (const line of (run.stdout ?? '').split('\n').filter(Boolean)) {
    const [asked, reply = ''] = line.split('\t');
    completions.set(asked!, [...new Set(reply.split(' ').filter(Boolean))]);
  }
  return {
    buildCode: build.status,
    buildOutput: `${build.stdout}${build.stderr}${run.stderr}`,
    setup: `${setup.status === 0 ? '' : `exit ${setup.status}: `}${setup.stdout}${setup.stderr}`,
    completions,
  };
}

/** Lines to complete, and what bash must offer for each (the last word is the one being completed). */
export const COMPLETION_CASES: [string[], string[]][] = [
  [['proxy-stone-sd', 'serv'], ['services']],
  [['proxy-stone-sd', 'services', ''], ['disable', 'enable', 'forget', 'list', 'show']],
  [['proxy-stone-sd', 'services', 'li'], ['list']],
  [['proxy-stone-sd', 'services', 'list', '--regio'], ['--region']],
  [['proxy-stone-sd', 'top'], ['topology']],
  [['proxy-stone-sd', 'events', '--ty'], ['--types']],
  [['proxy-stone-sd', 'lead'], ['leader']],
  [['proxy-stone-sd', 'context', ''], ['delete', 'list', 'set', 'show', 'use']],
];

/** Checks {@link bashCompletion}'s answer against {@link COMPLETION_CASES}. */
export function expectCompletions(result: ReturnType<typeof bashCompletion>): void {
  expect(result.buildCode, result.buildOutput).to.equal(0);
  expect(result.setup.trim()).to.match(/^PROXY_STONE_SD_AC_BASH_SETUP_PATH=\S+ && test -f /);
  for (const [words, expected] of COMPLETION_CASES) {
    expect(result.completions.get(words.join(' ')), `completing "${words.join(' ')}": ${result.buildOutput}`).to.deep.equal(expected);
  }
}
