/**
 * Gives tests a real Redis, never a mock: /usr/bin/redis-server (or REDIS_SERVER_BIN, or on PATH)
 * started on a free loopback port with a temp dir and AOF on, so `restart()` on the same dir keeps
 * the data as a production setup with persistence would. No binary: a clear error.
 *
 * Fault tests start a server of their own with {@link startRedis}; other tests may share one through
 * {@link sharedRedis} and keep apart with a store prefix of their own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './etcd.js';
import { ServerProcess, findExecutable } from './server-process.js';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` (with credentials when started with a password). */
  readonly endpoint: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number | undefined;
  /** Sends a signal: SIGKILL a crash, SIGSTOP/SIGCONT a freeze. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops it if running (SIGTERM: AOF flushed) and starts it again on the same dir and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** `requirepass`: the default user needs this password. */
  password?: string;
  /** Extra redis-server arguments, e.g. ['--user', 'sd on >pw ~* &* +@all']. */
  args?: string[];
}

const START_TIMEOUT_MS = 10_000;

export function findRedisServer(): string {
  const found = findExecutable('redis-server', { envVar: 'REDIS_SERVER_BIN', dirs: ['/usr/bin'] });
  if (found) return found;
  throw new Error(
    'These tests need a real Redis: install it (`apt-get install redis-server`, which provides /usr/bin/redis-server) or set REDIS_SERVER_BIN.',
  );
}

class ProcessRedis extends ServerProcess implements RedisServer {
  readonly endpoint: string;

  constructor(
    binary: string,
    readonly port: number,
    override readonly dir: string,
    private readonly options: StartRedisOptions,
  ) {
    super('redis-server', binary, dir, true);
    this.endpoint = `redis://${options.password ? `:${encodeURIComponent(options.password)}@` : ''}127.0.0.1:${port}`;
  }

  protected async launch(): Promise<void> {
    this.spawnServer([
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
      '--daemonize', 'no',
      '--loglevel', 'warning',
      '--logfile', '',
      ...(this.options.password ? ['--requirepass', this.options.password] : []),
      ...(this.options.args ?? []),
    ]);
    await this.waitReady();
  }

  /** Waits until the server answers PING (or NOAUTH, which is an answer too) and has loaded its data. */
  private async waitReady(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.exitInfo) throw new Error(`${this.exitInfo}: ${this.output.slice(-2000)}`);
      last = await ping(this.port).catch((err: Error) => err.message);
      if (/^\+PONG|NOAUTH/.test(last)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${this.port} not ready after ${START_TIMEOUT_MS}ms (${last})`);
  }
}

function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    let data = '';
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.on('timeout', () => {
      socket.destroy();
      reject(new Error('timeout'));
    });
    socket.on('error', reject);
  });
}

/** Starts a redis-server of the test's own. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findRedisServer();
  const dir = await mkdtemp(join(tmpdir(), 'proxy-stone-sd-redis-'));
  const [port] = await freePorts(1);
  const server = new ProcessRedis(binary, port!, dir, options);
  await server.start();
  return server;
}

let shared: Promise<RedisServer> | undefined;

/** One redis-server per test process, reaped at exit; tests keep apart with their own store prefix or namespace. */
export function sharedRedis(): Promise<RedisServer> {
  shared ??= startRedis();
  return shared;
}

/** A store prefix of a test's own, so tests sharing one redis-server never see each other's revisions. */
export function randomStorePrefix(): string {
  return `psd-test-${randomBytes(4).toString('hex')}:`;
}
