/**
 * A real server process a test starts (etcd, redis-server): spawned on loopback with a temp dir,
 * its output tail kept for error messages, signals for fault tests, restart on the same dir, and
 * reaped with its dir if the test process exits without stopping it (mocha --exit, Ctrl-C).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { rm } from 'node:fs/promises';

const STOP_GRACE_MS = 5_000;

/**
 * The first executable of: the path in environment variable `envVar`, then `name` in each directory
 * of PATH and of `dirs` (in the order given by `pathFirst`), or undefined.
 */
export function findExecutable(name: string, options: { envVar: string; dirs: string[]; pathFirst?: boolean }): string | undefined {
  const onPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  const fixed = options.dirs.map((dir) => join(dir, name));
  const candidates = [process.env[options.envVar], ...(options.pathFirst ? [...onPath, ...fixed] : [...fixed, ...onPath])];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; try the next one
    }
  }
  return undefined;
}

/** Servers to kill if the test process exits without stopping them. */
const live = new Set<ServerProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL and rmSync are.
  process.once('exit', () => {
    for (const server of live) server.killNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const server of live) server.killNow();
      // Re-raise so the default (or another handler) still ends the process.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

export abstract class ServerProcess {
  protected child: ChildProcess | undefined;
  /** Why the process ended, once it has: for error messages. */
  protected exitInfo: string | undefined;
  /** The last few KB of its output. */
  protected output = '';
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    /** `etcd`, `redis-server`: for messages. */
    protected readonly name: string,
    protected readonly binary: string,
    /** Its data dir, removed on stop when `ownsDir`. */
    protected readonly dir: string,
    private readonly ownsDir: boolean,
  ) {
    installExitHook();
    live.add(this);
  }

  get pid(): number | undefined {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  /** Sends a signal without waiting: SIGKILL a crash, SIGSTOP/SIGCONT a freeze. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.pid === undefined) throw new Error(`${this.name} is not running`);
    this.child!.kill(signal);
  }

  /** Stops it if running (SIGTERM, so it flushes) and starts it again on the same dir and port. */
  async restart(): Promise<void> {
    if (this.stopped) throw new Error(`${this.name} was stopped; start a new one`);
    await this.terminate();
    await this.launch();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.terminate();
    live.delete(this);
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort for process exit. */
  killNow(): void {
    if (this.pid !== undefined) this.child!.kill('SIGKILL');
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Resolves once the process has exited (at once when it is not running); rejects after `timeoutMs`. */
  async waitForExit(timeoutMs = STOP_GRACE_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts the process and resolves when it serves; a failed start stops it and rethrows. */
  async start(): Promise<void> {
    try {
      await this.launch();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Spawns the server and waits until it serves. */
  protected abstract launch(): Promise<void>;

  /** Spawns `binary` with `args`, keeping its output's tail and noting its exit. */
  protected spawnServer(args: string[]): void {
    this.exitInfo = undefined;
    this.output = '';
    const child = spawn(this.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // Keep draining the pipes so the server never blocks on a full one.
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        this.output = (this.output + chunk).slice(-16_000);
      });
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = `${this.name} exited (${signal ?? `code ${code}`})`;
        resolve();
      });
      child.once('error', (err) => {
        this.exitInfo = `cannot run ${this.binary}: ${err.message}`;
        resolve();
      });
    });
    // The test process must be able to exit on its own; the exit hook reaps the server.
    child.unref();
    for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
  }

  private async terminate(): Promise<void> {
    const child = this.child;
    if (!child || this.pid === undefined) return;
    // The child is unref'd so a test process can exit with it running; while it is stopped here its
    // exit must keep the loop alive: after the SIGKILL below nothing else may, and node would exit
    // (13 under a top-level await) before hearing of it. (An etcd leader stopping with its peers can
    // outlast the grace period, trying to hand its leadership over.)
    child.ref();
    child.kill('SIGTERM');
    // A SIGSTOPped server would hold SIGTERM pending forever.
    child.kill('SIGCONT');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
