/**
 * Gives tests a real etcd, never a mock:
 * 1. `ETCD_ENDPOINTS` (comma-separated) when set: an external server, not controllable;
 * 2. else an `etcd` binary (`ETCD_BIN`, PATH, /usr/bin, /usr/local/bin) started on free loopback ports
 *    with a temp data dir;
 * 3. else Docker through testcontainers (loaded lazily, only on this path);
 * 4. else a clear error.
 *
 * Fault tests should start their own server with {@link startEtcd}; everything else should reuse the
 * process-wide one from `sharedEtcd()` (./shared-etcd.ts) with a {@link uniqueNamespace}.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { Etcd3 } from 'etcd3';
import { ServerProcess, findExecutable } from './server-process.js';

/** A running etcd for tests. */
export interface EtcdServer {
  /** How it runs: `external` (ETCD_ENDPOINTS), `process` (local binary) or `docker`. */
  readonly kind: 'external' | 'process' | 'docker';
  /** Client URL, e.g. `http://127.0.0.1:23791`. Stable across `restart()` for `process` servers. */
  readonly endpoint: string;
  /** Every client URL (several only for an external cluster). */
  readonly endpoints: string[];
  /** Prometheus metrics (`<endpoint>/metrics`). */
  readonly metricsUrl: string;
  /** Host data directory, when there is one. */
  readonly dataDir: string | undefined;
  /** Pid of the etcd process (`process` servers while running). */
  readonly pid: number | undefined;
  /** Whether `kill()` and `restart()` work (false for external servers). */
  readonly controllable: boolean;
  /** Stops etcd (SIGTERM, then SIGKILL after 5 s) and removes a temp data dir the harness created. */
  stop(): Promise<void>;
  /**
   * Sends a signal without waiting: `SIGKILL` simulates a crash, `SIGSTOP`/`SIGCONT` a freeze.
   * Follow with `restart()` to bring a killed server back.
   */
  kill(signal?: NodeJS.Signals): void;
  /** Stops etcd if it still runs, then starts it again on the same data dir and ports; waits until healthy. */
  restart(): Promise<void>;
  /** Resolves when `/health` answers healthy, rejects after `timeoutMs` (default 15 s). */
  waitHealthy(timeoutMs?: number): Promise<void>;
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** Use this data dir (kept on stop) instead of a fresh temp dir (removed on stop). */
  dataDir?: string;
  /** Ignore ETCD_ENDPOINTS and start a server this test controls (needed for kill/restart). */
  own?: boolean;
  /** Extra etcd flags (e.g. `--max-txn-ops=2`) for a server started here; implies `own`. */
  flags?: string[];
  /** Start it in Docker through testcontainers even where a binary exists (the Docker path's own test). */
  docker?: boolean;
}

const HEALTH_TIMEOUT_MS = 15_000;
const DOCKER_IMAGE = 'quay.io/coreos/etcd:v3.5.17';

/** Starts (or attaches to) an etcd as described in the module comment. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const external = process.env.ETCD_ENDPOINTS?.trim();
  const flags = options.flags ?? [];
  if (external && !options.own && flags.length === 0) return externalServer(external);
  if (options.docker) return DockerEtcd.start(options.dataDir, flags);
  const binary = findEtcdBinary();
  if (binary) return ProcessEtcd.start(binary, options.dataDir, flags);
  const docker = await dockerUsable();
  if (docker) return DockerEtcd.start(options.dataDir, flags);
  throw new Error(
    'These tests need a real etcd: install it (`apt-get install etcd-server`, or put an `etcd` binary on PATH ' +
      'or in ETCD_BIN), set ETCD_ENDPOINTS=http://host:2379 to use a running server, or make Docker available.',
  );
}

let namespaceCounter = 0;

/** A key namespace no other test (in this or any parallel process) uses; no trailing slash. */
/**
 * Resolves once the process is stopped (state T), so a call made next is certain to meet a frozen
 * server: kill() returns before a busy process has actually stopped.
 */
export async function untilStopped(pid: number | undefined, timeoutMs = 2000): Promise<void> {
  if (pid === undefined) throw new Error('no process to wait for');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // Field 3 of /proc/<pid>/stat, after the parenthesised command name.
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    if (state === 'T' || state === 't') return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`process ${pid} did not stop within ${timeoutMs} ms`);
}

export function uniqueNamespace(prefix = 'test'): string {
  const clean = prefix.replace(/[^A-Za-z0-9_.-]+/g, '-');
  return `${clean}-${process.pid.toString(36)}-${Date.now().toString(36)}-${(namespaceCounter++).toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Compacts the server's history at `revision` (physically, so watches see it at once), as
 * `etcdctl compact --physical` would. Uses a short-lived client of its own.
 */
export async function compactEtcd(endpoint: string, revision: number): Promise<void> {
  const client = new Etcd3({ hosts: endpoint });
  try {
    await client.kv.compact({ revision: String(revision), physical: true });
  } finally {
    client.close();
  }
}

/** Polls `<endpoint>/health` until etcd reports healthy. */
export async function waitForHealth(
  endpoint: string,
  timeoutMs = HEALTH_TIMEOUT_MS,
  gaveUp: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const reason = gaveUp();
    if (reason) throw new Error(`etcd at ${endpoint} will not become healthy: ${reason}`);
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      const body = await res.text();
      if (res.ok && /"health"\s*:\s*"true"/.test(body)) return;
      last = `HTTP ${res.status} ${body.slice(0, 200)}`;
    } catch (err) {
      last = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    }
    await sleep(100);
  }
  throw new Error(`etcd at ${endpoint} not healthy after ${timeoutMs}ms (${last})`);
}

function externalServer(value: string): EtcdServer {
  const endpoints = value
    .split(',')
    .map((e) => e.trim().replace(/\/$/, ''))
    .filter(Boolean);
  const endpoint = endpoints[0]!;
  const refuse = (what: string) => () => {
    throw new Error(`cannot ${what} an external etcd (ETCD_ENDPOINTS); use startEtcd({ own: true })`);
  };
  return {
    kind: 'external',
    endpoint,
    endpoints,
    metricsUrl: `${endpoint}/metrics`,
    dataDir: undefined,
    pid: undefined,
    controllable: false,
    stop: async () => undefined,
    kill: refuse('kill'),
    restart: async () => refuse('restart')(),
    waitHealthy: (timeoutMs) => waitForHealth(endpoint, timeoutMs),
  };
}

export function findEtcdBinary(): string | undefined {
  return findExecutable('etcd', { envVar: 'ETCD_BIN', dirs: ['/usr/bin', '/usr/local/bin'], pathFirst: true });
}

class ProcessEtcd extends ServerProcess implements EtcdServer {
  readonly kind = 'process';
  readonly controllable = true;
  readonly endpoint: string;
  readonly endpoints: string[];
  readonly metricsUrl: string;

  private constructor(
    binary: string,
    readonly dataDir: string,
    ownsDataDir: boolean,
    private readonly clientPort: number,
    private readonly peerPort: number,
    private readonly flags: string[],
  ) {
    super('etcd', binary, dataDir, ownsDataDir);
    this.endpoint = `http://127.0.0.1:${clientPort}`;
    this.endpoints = [this.endpoint];
    this.metricsUrl = `${this.endpoint}/metrics`;
  }

  static async start(binary: string, dataDir: string | undefined, flags: string[] = []): Promise<ProcessEtcd> {
    const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'proxy-stone-sd-etcd-')));
    const [clientPort, peerPort] = await freePorts(2);
    const server = new ProcessEtcd(binary, dir, dataDir === undefined, clientPort!, peerPort!, flags);
    await server.start();
    return server;
  }

  async waitHealthy(timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> {
    await waitForHealth(this.endpoint, timeoutMs, () =>
      this.exitInfo ? `${this.exitInfo}\n${this.output.slice(-2000)}` : undefined,
    );
  }

  protected async launch(): Promise<void> {
    const name = 'sd-test';
    const peerUrl = `http://127.0.0.1:${this.peerPort}`;
    this.spawnServer([
      `--name=${name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.endpoint}`,
      `--advertise-client-urls=${this.endpoint}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${name}=${peerUrl}`,
      // Ignored when the data dir already holds a member, so restart reuses the same cluster.
      '--initial-cluster-state=new',
      // Short raft timers make start and restart fast on one member.
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
      ...this.flags,
    ]);
    await this.waitHealthy();
  }
}

class DockerEtcd implements EtcdServer {
  readonly kind = 'docker';
  readonly controllable = true;

  private constructor(
    private readonly container: StartedTestContainer,
    readonly dataDir: string | undefined,
  ) {}

  static async start(dataDir: string | undefined, flags: string[] = []): Promise<DockerEtcd> {
    const { GenericContainer, Wait } = await import('testcontainers');
    let container = new GenericContainer(DOCKER_IMAGE)
      .withCommand([
        '/usr/local/bin/etcd',
        '--name=sd-test',
        '--data-dir=/etcd-data',
        '--listen-client-urls=http://0.0.0.0:2379',
        '--advertise-client-urls=http://127.0.0.1:2379',
        '--listen-peer-urls=http://0.0.0.0:2380',
        '--initial-advertise-peer-urls=http://127.0.0.1:2380',
        '--initial-cluster=sd-test=http://127.0.0.1:2380',
        '--heartbeat-interval=50',
        '--election-timeout=500',
        '--log-level=warn',
        ...flags,
      ])
      .withExposedPorts(2379)
      .withWaitStrategy(Wait.forHttp('/health', 2379).forStatusCode(200));
    if (dataDir) container = container.withBindMounts([{ source: dataDir, target: '/etcd-data' }]);
    return new DockerEtcd(await container.start(), dataDir);
  }

  // Docker may map a new host port after a restart, so read it every time.
  get endpoint(): string {
    return `http://${this.container.getHost()}:${this.container.getMappedPort(2379)}`;
  }

  get endpoints(): string[] {
    return [this.endpoint];
  }

  get metricsUrl(): string {
    return `${this.endpoint}/metrics`;
  }

  get pid(): number | undefined {
    return undefined;
  }

  waitHealthy(timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> {
    return waitForHealth(this.endpoint, timeoutMs);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    void (async () => {
      const { getContainerRuntimeClient } = await import('testcontainers');
      const client = await getContainerRuntimeClient();
      await client.container.getById(this.container.getId()).kill({ signal });
    })().catch(() => undefined);
  }

  async restart(): Promise<void> {
    await this.container.restart();
    await this.waitHealthy();
  }

  async stop(): Promise<void> {
    await this.container.stop().catch(() => undefined);
  }
}

/**
 * Whether a Docker engine may be reachable, decided without loading testcontainers: `DOCKER_HOST`
 * set, or a Docker socket present. Tests of the Docker path are defined only then.
 */
export function dockerConfigured(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

async function dockerUsable(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/** Distinct free TCP ports on 127.0.0.1 (free at the time of asking). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  // Hold them all open until every port is known, so the list has no duplicates.
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected listen address');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Creates a temp dir synchronously (for tests that want a data dir they keep across servers). */
export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'proxy-stone-sd-etcd-'));
}
