/**
 * Gives tests a real nginx, never a stand-in: /usr/sbin/nginx (or NGINX_BIN, or on PATH) in the
 * foreground with its prefix, config, pid file and logs in a temp dir and a listener on a free
 * loopback port. `reloadCommand` is what `render --exec` runs to reload it.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './etcd.js';
import { ServerProcess, findExecutable } from './server-process.js';

export interface NginxServer {
  readonly dir: string;
  /** The port its `server` listens on, on 127.0.0.1. */
  readonly port: number;
  readonly url: string;
  readonly pid: number | undefined;
  /** A shell command that reloads this nginx gracefully (`nginx … -s reload`). */
  readonly reloadCommand: string;
  /** nginx's error log so far. */
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

export interface StartNginxOptions {
  /** The whole nginx.conf, given its prefix dir and port. It must not set `daemon`. */
  config: (where: { dir: string; port: number }) => string;
  /** Files to write into the dir before starting (an upstream file the config includes). */
  files?: (where: { dir: string; port: number }) => Record<string, string>;
  /** Runs once the dir and nginx.conf exist, before nginx starts (e.g. a first `render --once`). */
  beforeStart?: (where: { dir: string; port: number }) => Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

export function findNginx(): string {
  const found = findExecutable('nginx', { envVar: 'NGINX_BIN', dirs: ['/usr/sbin'] });
  if (found) return found;
  throw new Error('These tests need a real nginx: install it (`apt-get install nginx`, which provides /usr/sbin/nginx) or set NGINX_BIN.');
}

class ProcessNginx extends ServerProcess implements NginxServer {
  readonly url: string;
  readonly reloadCommand: string;

  constructor(
    binary: string,
    override readonly dir: string,
    readonly port: number,
  ) {
    super('nginx', binary, dir, true);
    this.url = `http://127.0.0.1:${port}`;
    this.reloadCommand = `${binary} -p ${dir} -c nginx.conf -e error.log -s reload`;
  }

  errorLog(): Promise<string> {
    return readFile(join(this.dir, 'error.log'), 'utf8').catch(() => '');
  }

  protected async launch(): Promise<void> {
    // The pid file must be where `-s reload` looks: the config's `pid` directive, in the dir.
    this.spawnServer(['-p', this.dir, '-c', 'nginx.conf', '-e', 'error.log', '-g', 'daemon off;']);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exitInfo) throw new Error(`${this.exitInfo}: ${this.output.slice(-2000)} ${await this.errorLog()}`);
      if (await accepts(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nginx not listening on ${this.port} after ${START_TIMEOUT_MS}ms: ${this.output.slice(-2000)}`);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts an nginx of the test's own. */
export async function startNginx(options: StartNginxOptions): Promise<NginxServer> {
  const binary = findNginx();
  const dir = await mkdtemp(join(tmpdir(), 'psd-nginx-'));
  const [port] = await freePorts(1);
  const where = { dir, port: port! };
  for (const [name, text] of Object.entries(options.files?.(where) ?? {})) await writeFile(join(dir, name), text);
  await writeFile(join(dir, 'nginx.conf'), options.config(where));
  const server = new ProcessNginx(binary, dir, port!);
  try {
    await options.beforeStart?.(where);
  } catch (err) {
    await server.stop();
    throw err;
  }
  await server.start();
  return server;
}
