import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyLayout } from '../../src/cluster/keys.js';
import { ClusterState } from '../../src/cluster/state.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { RedisRegistry } from '../../src/registry/redis.js';
import type { Registry } from '../../src/registry/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/run.js');

/** The built CLI is what operators run; tests of processes use it too (npm test builds first). */
export function assertBuilt(): void {
  if (!existsSync(path.join(ROOT, 'dist/commands/agent.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
}

export interface AgentProcess {
  readonly proc: ChildProcess;
  readonly id: string;
  output(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  signal(sig: NodeJS.Signals): void;
}

/** Starts `proxy-stone-sd agent` with the seed's env vars plus flags. */
export function spawnAgent(options: {
  endpoint: string;
  namespace: string;
  id: string;
  servicePort: number;
  region?: string;
  zone?: string;
  flags?: string[];
  env?: NodeJS.ProcessEnv;
}): AgentProcess {
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'agent',
      '--health-interval', '1',
      '--health-timeout', '1',
      '--health-retries', '2',
      '--grace-period', '5',
      '--leader-ttl', '3',
      '--renew-interval', '1',
      '--no-api',
      ...(options.flags ?? []),
    ],
    {
      env: {
        ...process.env,
        SERVICE_DISCOVERY_ENDPOINTS: options.endpoint,
        SERVICE_DISCOVERY_NAMESPACE: options.namespace,
        SERVICE_ID: options.id,
        SERVICE_NAME: 'proxy-stone',
        SERVICE_HOST: '127.0.0.1',
        SERVICE_PORT: String(options.servicePort),
        SERVICE_REGION: options.region ?? 'us-east-1',
        SERVICE_ZONE: options.zone ?? 'us-east-1a',
        LOG_LEVEL: 'info',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    proc,
    id: options.id,
    output: () => out,
    exited,
    signal: (sig) => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    },
  };
}

/** Reads the namespace once, as any watcher would see it (etcd, or Redis for a redis:// endpoint). */
export class ClusterReader {
  readonly registry: Registry;
  constructor(
    endpoint: string,
    readonly namespace: string,
  ) {
    this.registry = /^rediss?:/.test(endpoint)
      ? new RedisRegistry({ endpoint, callTimeoutMs: 2000 })
      : new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 2000 });
  }

  async read(): Promise<ClusterState> {
    const layout = keyLayout(this.namespace);
    const { kvs } = await this.registry.list(layout.root);
    return ClusterState.fromList(layout, kvs);
  }

  close(): Promise<void> {
    return this.registry.close();
  }
}

/** Polls `check` every `everyMs` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
