/**
 * The drain of this agent's own instance after a disable. A disable with a drain phase stores a
 * deadline (`drainUntil`) in the intent; the instance is out of routing from the first moment, and
 * the drain is the time it gets to finish what it has in flight. Proxy-Stone exposes no in-flight
 * counter, so the "instance's own drain signal" is an optional probe URL (`--drain-probe-url`):
 *
 * - polled every second while draining, with the health check's timeout;
 * - **idle** when it answers 2xx with a JSON object whose `idle` is `true` or whose `inflight` is `0`;
 * - anything else (another status, other JSON, not JSON, no answer) is "still busy".
 *
 * The drain ends when the probe says idle or the deadline passes, whichever is first; the agent then
 * records `drainedAt` in the intent with an audit entry (`drained: idle|deadline`). Readers switch a
 * drain to `disabled` at its deadline by themselves, so nothing depends on this write getting through;
 * it is retried every second while the registry is away.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import { markDrained } from '../cluster/intent.js';
import { isoTime } from '../util/time.js';
import type { KeyLayout } from '../cluster/keys.js';
import type { Registry } from '../registry/types.js';
import type { AdminIntent } from '../types.js';
import type { Logger } from '../util/logger.js';

export interface DrainWatcherOptions {
  serviceId: string;
  layout: KeyLayout;
  registry: () => Registry;
  /** The audit actor, `agent:<id>`. */
  actor: string;
  probeUrl?: string;
  probeTimeoutMs: number;
  /** Between probes and between retries of the registry write (default 1000). */
  pollMs?: number;
  logger: Logger;
}

/** What the probe answered: idle, or busy with why. */
export type DrainProbeResult = { idle: true } | { idle: false; why: string };

/** Largest drain-probe answer read; an idle answer is a few bytes. */
const MAX_BODY = 64 * 1024;

/** One GET on node:http(s) (the agent process loads no undici), bounded by `timeoutMs` in all. */
function get(url: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const req = lib.get(u, { headers: { accept: 'application/json', 'user-agent': 'proxy-stone-sd' }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.length > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
  });
}

/** One GET of the drain probe, bounded by `timeoutMs`. Never throws. */
export async function probeDrain(url: string, timeoutMs: number): Promise<DrainProbeResult> {
  try {
    const res = await get(url, timeoutMs);
    const text = res.text;
    if (res.status < 200 || res.status >= 300) return { idle: false, why: `HTTP ${res.status}` };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { idle: false, why: 'answer is not JSON' };
    }
    if (typeof body === 'object' && body !== null) {
      const b = body as { idle?: unknown; inflight?: unknown };
      if (b.idle === true || b.inflight === 0) return { idle: true };
      if (typeof b.inflight === 'number') return { idle: false, why: `${b.inflight} in flight` };
    }
    return { idle: false, why: 'answer says busy' };
  } catch (err) {
    return { idle: false, why: err instanceof Error ? err.message : String(err) };
  }
}

export class DrainWatcher {
  private current: { drainUntil: number; done: boolean } | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly pollMs: number;

  constructor(private readonly options: DrainWatcherOptions) {
    this.pollMs = options.pollMs ?? 1000;
  }

  /** Whether a drain is being watched now (and not yet recorded as ended). */
  get draining(): boolean {
    return this.current !== undefined && !this.current.done;
  }

  /** Call with this instance's intent whenever it may have changed (and once at start). */
  update(intent: AdminIntent | undefined, now = Date.now()): void {
    if (this.stopped) return;
    const draining =
      intent !== undefined &&
      !intent.enabled &&
      (intent.expiresAt === undefined || intent.expiresAt > now) &&
      intent.drainUntil !== undefined &&
      intent.drainedAt === undefined;
    if (!draining) {
      this.clear();
      this.current = undefined;
      return;
    }
    if (this.current?.drainUntil === intent.drainUntil) return; // the same drain, already watched
    this.clear();
    const drain = { drainUntil: intent.drainUntil!, done: false };
    this.current = drain;
    this.options.logger.info(
      { event: 'drain.started', serviceId: this.options.serviceId, drainUntil: drain.drainUntil, probe: this.options.probeUrl !== undefined },
      `draining until ${isoTime(drain.drainUntil)}${this.options.probeUrl ? ' or until the drain probe says idle' : ''}`,
    );
    // A deadline that passed while this agent was not running ends the drain at once.
    this.deadlineTimer = setTimeout(() => void this.finish(drain, 'deadline'), Math.min(Math.max(0, drain.drainUntil - now), 0x7fffffff));
    if (this.options.probeUrl) this.schedulePoll(drain, 0);
  }

  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private clear(): void {
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.pollTimer);
  }

  private schedulePoll(drain: { drainUntil: number; done: boolean }, delay: number): void {
    this.pollTimer = setTimeout(async () => {
      if (this.current !== drain || drain.done || this.stopped) return;
      const result = await probeDrain(this.options.probeUrl!, this.options.probeTimeoutMs);
      if (this.current !== drain || drain.done || this.stopped) return;
      if (result.idle) void this.finish(drain, 'idle');
      else {
        this.options.logger.debug({ event: 'drain.busy', serviceId: this.options.serviceId, why: result.why }, `still draining: ${result.why}`);
        this.schedulePoll(drain, this.pollMs);
      }
    }, delay);
  }

  /** Records the end of the drain; retried while the registry is away, given up when the intent moved on. */
  private async finish(drain: { drainUntil: number; done: boolean }, end: 'idle' | 'deadline'): Promise<void> {
    if (this.current !== drain || drain.done || this.stopped) return;
    drain.done = true;
    this.clear();
    const { registry, layout, serviceId, actor, logger } = this.options;
    for (;;) {
      try {
        const wrote = await markDrained(registry(), layout, serviceId, drain.drainUntil, end, actor);
        logger.info(
          { event: 'drain.ended', serviceId, end, recorded: wrote },
          `drain ended (${end === 'idle' ? 'the drain probe says idle' : 'deadline reached'}); now disabled`,
        );
        return;
      } catch (err) {
        logger.warn({ event: 'drain.record_failed', err: err instanceof Error ? err.message : String(err) }, 'cannot record the end of the drain yet; retrying');
        await new Promise((r) => setTimeout(r, this.pollMs));
        if (this.current !== drain || this.stopped) return;
      }
    }
  }
}
