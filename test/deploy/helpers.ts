/**
 * Shared pieces of the deployment tests: real `proxy-stone-sd agent` processes whose JSON log lines
 * are collected and awaited, a Proxy-Stone-shaped upstream, free ports and the settings table's names.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS, envNames } from '../../src/config/settings.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { freePorts, uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';

export { freePorts };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/run.js');

/** The processes below run the built CLI, as operators do: `npm run build` first (npm test does). */
export function assertBuilt(): void {
  if (!existsSync(path.join(ROOT, 'dist/commands/agent.js')) || !existsSync(path.join(ROOT, 'oclif.manifest.json'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
}

/** One parsed log line. */
export interface LogRecord {
  level: number;
  time: number;
  msg: string;
  event?: string;
  [key: string]: unknown;
}

/** Every environment variable a setting reads, plus the agent's other variables. */
export function agentEnvNames(): Set<string> {
  return new Set([...SETTINGS.flatMap((s) => envNames(s)), ...EXTRA_AGENT_ENV]);
}

/**
 * Variables the agent and CLI read that are not rows of the settings table: the config file, the API
 * key file and read access (src/api/auth.ts), the CLI's agent URL (src/cli/cluster-command.ts), the
 * HAProxy socket and backend of `lb haproxy` (src/commands/lb/haproxy.ts), `DEBUG` (src/util/logger.ts), the
 * contexts file and context (src/cli/contexts.ts), the `--agent` TLS files (src/cli/cluster-command.ts),
 * the start-up path's switch and its code cache's directory (oclif's cache directory, src/cli/fast-path.ts).
 */
export const EXTRA_AGENT_ENV = [
  'SERVICE_DISCOVERY_CONFIG',
  'SERVICE_DISCOVERY_API_KEY_FILE',
  'SERVICE_DISCOVERY_API_READ_ACCESS',
  'PROXY_STONE_SD_AGENT',
  'PROXY_STONE_SD_HAPROXY_SOCKET',
  'PROXY_STONE_SD_HAPROXY_BACKEND',
  'PROXY_STONE_SD_CONTEXT',
  'PROXY_STONE_SD_CONTEXTS_FILE',
  'PROXY_STONE_SD_AGENT_CA_FILE',
  'PROXY_STONE_SD_AGENT_CERT_FILE',
  'PROXY_STONE_SD_AGENT_KEY_FILE',
  'PROXY_STONE_SD_FAST_START',
  'PROXY_STONE_SD_CACHE_DIR',
  'DEBUG',
] as const;

/** The parent's environment without anything the agent would read, so each test states its own. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const ours = agentEnvNames();
  for (const [k, v] of Object.entries(process.env)) {
    if (ours.has(k) || k.startsWith('SERVICE_') || k === 'NO_COLOR' || k === 'FORCE_COLOR') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A running process whose stdout is JSON log lines. */
export class LoggedProcess {
  readonly records: LogRecord[] = [];
  /** Lines of stdout that were not JSON objects (should stay empty off a TTY). */
  readonly badLines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buffer = '';
  private waiters: Array<() => void> = [];

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (line.trim() === '') continue;
        try {
          const parsed = JSON.parse(line) as unknown;
          if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
          this.records.push(parsed as LogRecord);
        } catch {
          this.badLines.push(line);
        }
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-8000);
    });
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => {
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Records with this `event`. */
  events(event: string): LogRecord[] {
    return this.records.filter((r) => r.event === event);
  }

  /** Resolves with the first record matching, waiting up to `timeoutMs`. */
  async waitFor(what: string, match: (r: LogRecord) => boolean, timeoutMs = 20_000): Promise<LogRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.records.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0 || this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(
          `no log record for ${what} within ${timeoutMs}ms; events so far: ${this.records.map((r) => r.event).join(', ')}\nstderr: ${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForEvent(event: string, timeoutMs?: number, match: (r: LogRecord) => boolean = () => true): Promise<LogRecord> {
    return this.waitFor(event, (r) => r.event === event && match(r), timeoutMs);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
      const result = await this.exited;
      clearTimeout(timer);
      return result;
    }
    return this.exited;
  }
}

/** Starts `node bin/run.js agent ...args` with exactly `env` (plus PATH and friends from cleanEnv). */
export function spawnAgent(args: string[], env: NodeJS.ProcessEnv = {}): LoggedProcess {
  return new LoggedProcess(spawn(process.execPath, [BIN, 'agent', ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Polls until `check` returns something other than undefined/false. */
/**
 * One agent (the built CLI) per place, `[id, region, zone]`, all beside one sample upstream, on the
 * shared etcd under a fresh namespace, with the live tests' fast timings and an API on a free port.
 */
export async function spawnPlacedAgents(
  places: readonly (readonly [id: string, region: string, zone: string])[],
  namespacePrefix: string,
): Promise<{ agents: LoggedProcess[]; upstream: SampleUpstream }> {
  const etcd = await sharedEtcd();
  const namespace = uniqueNamespace(namespacePrefix);
  const upstream = await startSampleUpstream();
  const agents = places.map(([id, region, zone]) =>
    spawnAgent(['--api-port', '0', '--health-interval', '500ms', '--grace-period', '0', '--leader-ttl', '3', '--renew-interval', '1'], {
      SERVICE_DISCOVERY_ENDPOINTS: etcd.endpoint,
      SERVICE_DISCOVERY_NAMESPACE: namespace,
      SERVICE_ID: id,
      SERVICE_HOST: '127.0.0.1',
      SERVICE_PORT: String(upstream.port),
      SERVICE_REGION: region,
      SERVICE_ZONE: zone,
    }),
  );
  return { agents, upstream };
}

export async function eventually<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
