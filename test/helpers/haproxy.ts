/**
 * Gives tests a real HAProxy, never a stand-in: /usr/sbin/haproxy (or HAPROXY_BIN, or on PATH) in the
 * foreground (`-db`), with its config and admin socket in a temp dir and its frontend on a free
 * loopback port. `restart()` starts a new process on the same config and socket, as a restarted or
 * reloaded HAProxy would be: without the dynamic servers of the last one.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HaproxyRuntimeApi } from '../../src/traffic/haproxy-runtime.js';
import { freePorts } from './etcd.js';
import { ServerProcess, findExecutable } from './server-process.js';

export interface HaproxyServer {
  readonly dir: string;
  /** The admin socket (`stats socket … level admin`). */
  readonly socket: string;
  /** The frontend's port on 127.0.0.1. */
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly pid: number | undefined;
  /** A Runtime API client on the socket. */
  api(): HaproxyRuntimeApi;
  kill(signal?: NodeJS.Signals): void;
  /** Stops it (SIGTERM) and starts a new process on the same config, socket and port. */
  restart(): Promise<void>;
  /** Stops it without starting again (the socket goes away). */
  halt(): Promise<void>;
  /** Starts it again after {@link halt}. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartHaproxyOptions {
  /**
   * The whole haproxy.cfg, given where its socket and frontend port are. Default: {@link defaultConfig}
   * with `backendLines` in the backend.
   */
  config?: (where: { socket: string; port: number; dir: string }) => string;
  /** Extra lines of the default config's `proxy_stone` backend (e.g. a config-file server). */
  backendLines?: string[];
}

const START_TIMEOUT_MS = 10_000;

export function findHaproxy(): string {
  const found = findExecutable('haproxy', { envVar: 'HAPROXY_BIN', dirs: ['/usr/sbin'] });
  if (found) return found;
  throw new Error('These tests need a real HAProxy 2.6+: install it (`apt-get install haproxy`, which provides /usr/sbin/haproxy) or set HAPROXY_BIN.');
}

/** The tests' haproxy.cfg: admin socket, HTTP with retries on another instance, backend `proxy_stone`. */
export function defaultConfig(where: { socket: string; port: number }, backendLines: string[] = []): string {
  return [
    'global',
    `    stats socket ${where.socket} mode 600 level admin`,
    'defaults',
    '    mode http',
    '    timeout connect 2s',
    '    timeout client 10s',
    '    timeout server 10s',
    '    retries 3',
    '    option redispatch 1',
    '    retry-on all-retryable-errors',
    'frontend proxy_stone_in',
    `    bind 127.0.0.1:${where.port}`,
    '    default_backend proxy_stone',
    'backend proxy_stone',
    '    balance roundrobin',
    '    option httpchk GET /health',
    ...backendLines.map((l) => `    ${l}`),
    '',
  ].join('\n');
}

class ProcessHaproxy extends ServerProcess implements HaproxyServer {
  readonly socket: string;
  readonly url: string;
  private readonly configFile: string;

  constructor(
    binary: string,
    override readonly dir: string,
    readonly port: number,
  ) {
    super('haproxy', binary, dir, true);
    this.socket = join(dir, 'admin.sock');
    this.configFile = join(dir, 'haproxy.cfg');
    this.url = `http://127.0.0.1:${port}`;
  }

  async writeConfig(text: string): Promise<void> {
    await writeFile(this.configFile, text);
  }

  api(): HaproxyRuntimeApi {
    return new HaproxyRuntimeApi(this.socket, { timeoutMs: 2000 });
  }

  async halt(): Promise<void> {
    if (this.pid === undefined) return;
    this.kill('SIGTERM');
    const deadline = Date.now() + 5000;
    while (this.pid !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (this.pid !== undefined) this.kill('SIGKILL');
  }

  async resume(): Promise<void> {
    await this.launch();
  }

  protected async launch(): Promise<void> {
    this.spawnServer(['-f', this.configFile, '-db']);
    const api = this.api();
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.exitInfo) throw new Error(`${this.exitInfo}: ${this.output.slice(-2000)}`);
      try {
        const info = await api.info();
        // A socket left by the previous process answers nothing; this one must be the new pid.
        if (info.pid === this.pid) return;
        last = `pid ${info.pid} answers, expected ${this.pid}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`haproxy not ready after ${START_TIMEOUT_MS}ms (${last}): ${this.output.slice(-2000)}`);
  }
}

/** Starts an HAProxy of the test's own. */
export async function startHaproxy(options: StartHaproxyOptions = {}): Promise<HaproxyServer> {
  const binary = findHaproxy();
  const dir = await mkdtemp(join(tmpdir(), 'psd-haproxy-'));
  const [port] = await freePorts(1);
  const server = new ProcessHaproxy(binary, dir, port!);
  const where = { socket: server.socket, port: port!, dir };
  await server.writeConfig(options.config ? options.config(where) : defaultConfig(where, options.backendLines));
  await server.start();
  return server;
}
