/**
 * consul-template's job for one file: render a template from each {@link TrafficSnapshot}, write the
 * output atomically and only when its bytes changed, then run a command (an nginx reload). Bursts of
 * changes are debounced into one render; a failing command is logged and run again after the next
 * change, and never stops the renderer.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger, type Logger } from '../util/logger.js';
import type { TrafficSnapshot } from './feed.js';
import { templateContext, type CompiledTemplate } from './template.js';

/** The command after a write failed or timed out. */
export class ExecError extends Error {
  override name = 'ExecError';
  constructor(
    readonly command: string,
    readonly reason: string,
    readonly output: string,
  ) {
    super(`--exec command failed: ${reason}${output ? `: ${output.split('\n').filter(Boolean).slice(-1)[0]}` : ''}`);
  }
}

export interface RenderOutcome {
  /** The output file's bytes changed (it was written). */
  written: boolean;
  bytes: number;
  /** The command ran (after a write, or again after an earlier failure); undefined when it did not run. */
  exec?: { ok: boolean; ms: number; code: number | null; reason?: string; output?: string };
  at: number;
}

export interface TemplateRendererEvents {
  /** A render finished: written or not, command run or not. */
  rendered: [RenderOutcome];
  /** A render failed (template error or write error); the previous output stays. */
  error: [Error];
}

export interface TemplateRendererOptions {
  template: CompiledTemplate;
  /** Output file, written through a temporary file in the same directory and a rename. */
  out: string;
  namespace: string;
  /** Shell command run after each write (`/bin/sh -c`). */
  exec?: string;
  /** Milliseconds the command may run before it is killed (default 60000). */
  execTimeoutMs?: number;
  /** Milliseconds without a change before rendering (default 200; 0 renders every change). */
  debounceMs?: number;
  /** Longest delay from a change to its render while changes keep coming (default 10 × debounce, at least 1 s). */
  maxWaitMs?: number;
  logger?: Logger;
}

/** The last bytes of the command's output kept for the log. */
const OUTPUT_TAIL = 2000;
const KILL_GRACE_MS = 2000;

export class TemplateRenderer extends EventEmitter<TemplateRendererEvents> {
  private readonly logger: Logger;
  private readonly debounceMs: number;
  private readonly maxWaitMs: number;
  private readonly execTimeoutMs: number;
  private latest: TrafficSnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private firstChangeAt: number | undefined;
  private rendering: Promise<RenderOutcome | undefined> | undefined;
  private again = false;
  private renderedOnce = false;
  /** The command failed: run it after the next render even if the output is unchanged. */
  private execOwed = false;
  private stopped = false;
  private lastError: string | undefined;

  constructor(private readonly options: TemplateRendererOptions) {
    super();
    this.logger = options.logger ?? silentLogger;
    this.debounceMs = options.debounceMs ?? 200;
    this.maxWaitMs = options.maxWaitMs ?? Math.max(1000, 10 * this.debounceMs);
    this.execTimeoutMs = options.execTimeoutMs ?? 60_000;
  }

  /** A new snapshot: rendered at once the first time, then after `debounceMs` without another. */
  update(snapshot: TrafficSnapshot): void {
    if (this.stopped) return;
    this.latest = snapshot;
    if (!this.renderedOnce && !this.rendering) return void this.kick();
    const now = Date.now();
    this.firstChangeAt ??= now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstChangeAt + this.maxWaitMs - now));
    this.timer = setTimeout(() => this.kick(), wait);
  }

  /**
   * Renders `snapshot` (or the latest) now, after any render under way, and reports what happened.
   * Template and write errors are thrown; a failing command is reported in `exec`.
   */
  async renderNow(snapshot?: TrafficSnapshot): Promise<RenderOutcome> {
    if (snapshot) this.latest = snapshot;
    while (this.rendering) await this.rendering.catch(() => undefined);
    const target = this.latest;
    if (!target) throw new Error('nothing to render yet: no snapshot');
    clearTimeout(this.timer);
    this.firstChangeAt = undefined;
    const run = this.render(target);
    this.rendering = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      this.rendering = undefined;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    while (this.rendering) await this.rendering.catch(() => undefined);
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.rendering) {
      this.again = true;
      return;
    }
    this.firstChangeAt = undefined;
    const target = this.latest!;
    this.rendering = this.render(target)
      .catch((err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        // A lasting problem is one line, not one per change.
        if (e.message !== this.lastError) {
          this.lastError = e.message;
          this.logger.error({ event: 'render.failed', file: this.options.out, err: e.message }, `${e.message}; ${path.basename(this.options.out)} keeps its last contents`);
        }
        this.emit('error', e);
        return undefined;
      })
      .finally(() => {
        this.rendering = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          // Changes that came during the render wait for quiet again, as any burst does.
          this.update(this.latest!);
        }
      });
  }

  private async render(snapshot: TrafficSnapshot): Promise<RenderOutcome> {
    const content = this.options.template(templateContext(snapshot, this.options.namespace));
    const written = await writeIfChanged(this.options.out, content);
    this.renderedOnce = true;
    this.lastError = undefined;
    const bytes = Buffer.byteLength(content);
    const counts = { serving: snapshot.serving.length, draining: snapshot.draining.length, outOfTraffic: snapshot.out.length };
    if (written) {
      this.logger.info(
        { event: 'render.written', file: this.options.out, bytes, ...counts, revision: snapshot.revision },
        `wrote ${this.options.out} (${bytes} bytes): ${counts.serving} serving, ${counts.draining} draining, ${counts.outOfTraffic} out`,
      );
    } else {
      this.logger.debug({ event: 'render.unchanged', file: this.options.out, ...counts, revision: snapshot.revision }, `${this.options.out} unchanged`);
    }
    let exec: RenderOutcome['exec'];
    if (this.options.exec && (written || this.execOwed)) exec = await this.runExec(this.options.exec, written ? 'after the write' : 'again after its last failure');
    const outcome: RenderOutcome = { written, bytes, ...(exec ? { exec } : {}), at: Date.now() };
    this.emit('rendered', outcome);
    return outcome;
  }

  private async runExec(command: string, why: string): Promise<NonNullable<RenderOutcome['exec']>> {
    const started = Date.now();
    const result = await runCommand(command, this.execTimeoutMs);
    const ms = Date.now() - started;
    if (result.ok) {
      this.execOwed = false;
      this.logger.info({ event: 'render.exec', command, ms, code: result.code }, `ran ${command} ${why} (${ms} ms)`);
      return { ok: true, ms, code: result.code };
    }
    this.execOwed = true;
    this.logger.error(
      { event: 'render.exec_failed', command, ms, code: result.code, reason: result.reason, output: result.output },
      `${new ExecError(command, result.reason, result.output).message}; it runs again after the next change`,
    );
    return { ok: false, ms, code: result.code, reason: result.reason, output: result.output };
  }
}

/**
 * Writes `content` to `file` unless the file already holds exactly these bytes: to a temporary file
 * in the same directory (same file system, so the rename is atomic), flushed, then renamed over it.
 * Readers see the old file or the new one, never half of one. Returns whether it wrote.
 */
export async function writeIfChanged(file: string, content: string): Promise<boolean> {
  const bytes = Buffer.from(content);
  let mode = 0o644;
  try {
    const info = await stat(file);
    mode = info.mode & 0o777;
    if (info.size === bytes.length && (await readFile(file)).equals(bytes)) return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return true;
}

/** Runs `command` with `/bin/sh -c`, killed after `timeoutMs` (SIGTERM, then SIGKILL). */
export function runCommand(command: string, timeoutMs: number): Promise<{ ok: boolean; code: number | null; reason: string; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // The whole process group: a shell's children (nginx -s reload) go with it.
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    let hardKill: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      hardKill = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, code: null, reason: err.message, output: output.trim() });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(hardKill);
      const out = output.trim();
      if (timedOut) resolve({ ok: false, code, reason: `no exit within ${timeoutMs} ms (killed)`, output: out });
      else if (code === 0) resolve({ ok: true, code, reason: '', output: out });
      else resolve({ ok: false, code, reason: signal ? `killed by ${signal}` : `exit ${code}`, output: out });
    });
  });
}

