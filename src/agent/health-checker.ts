/**
 * HTTP health checker for the local Proxy-Stone instance: probes a URL (./instance-http.ts) on a fixed cadence
 * and feeds the results to a {@link HealthStateMachine}.
 *
 * Scheduling: the first probe runs as soon as {@link HealthChecker.start} is called; each next probe
 * starts `intervalMs` after the previous probe *started* (not ended), or right after it ended when it
 * took longer than that. Never two probes in flight. With `timeoutMs ≤ intervalMs` an instance that
 * starts failing at time T is marked unhealthy by T + intervalMs × retries + timeoutMs at the latest
 * (outside the grace period).
 *
 * A probe is a GET; a 2xx answer is a success, any other status a failure ("HTTP 503", or
 * "HTTP 503 (degraded)" when a small JSON body carries a string `status`, as Proxy-Stone's `/health`
 * does), and a network error or a probe exceeding `timeoutMs` (headers and body together) a failure with
 * a short message ("timeout after 1000ms", "ECONNREFUSED 127.0.0.1:3001"). At most `maxBodyBytes` of
 * the body are read, then it is discarded, so keep-alive connections are reused.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { HealthInfo, ServiceStatus } from '../types.js';
import {
  HealthStateMachine,
  type HealthHistoryEntry,
  type HealthTransition,
  type ProbeResult,
} from './health-state.js';
import { InstanceHttpClient, type InstanceHttpResponse } from './instance-http.js';

/** Default limit of response body bytes read per probe. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024;

/** What one probe of a check kind found; a rejection is a network error. */
export interface ProbeOutcome {
  ok: boolean;
  httpStatus?: number;
  error?: string;
  output?: string;
}

/**
 * A kind of check other than the default GET (src/agent/checks/): one probe at a time, aborted through
 * `signal` on timeout and on stop.
 */
export interface Probe {
  run(signal: AbortSignal): Promise<ProbeOutcome>;
  /** Releases connections; nothing is in flight any more. */
  close(): void;
}

/** Options of {@link HealthChecker}. */
export interface HealthCheckerOptions {
  /** Absolute http(s) URL probed with GET; with `probe`, only what is checked, for people. */
  url: string;
  /** Probes with this instead of a GET of `url`. */
  probe?: Probe;
  /** Milliseconds between the starts of two probes; > 0. */
  intervalMs: number;
  /** Milliseconds allowed for one probe, headers and body; > 0. */
  timeoutMs: number;
  /** Consecutive failures that make the instance unhealthy; integer ≥ 1. */
  retries: number;
  /** Milliseconds after start() during which failures keep the status `starting`; ≥ 0. */
  gracePeriodMs: number;
  /** Clock for timestamps and the grace period (epoch ms); defaults to Date.now. Scheduling uses a monotonic clock. */
  now?: () => number;
  /** Probe results kept in history(); default 50. */
  historySize?: number;
  /** Response body bytes read at most per probe; default {@link DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
}

/** Payload of the `result` event, emitted once per completed probe. */
export interface HealthCheckResultEvent {
  result: ProbeResult;
  /** What the result did to the status; `ignored` when it completed after drain(). */
  transition: HealthTransition;
  /** Snapshot after the result. */
  health: HealthInfo;
  /** With several checks (checks/check-set.ts): the check that produced the result. */
  check?: string;
  /** With several checks: the result changed its check's status, which the record shows. */
  checksChanged?: boolean;
}

/** Payload of the `statusChange` event, emitted only when the status changes. */
export interface HealthStatusChangeEvent {
  previous: ServiceStatus;
  status: ServiceStatus;
  reason: string;
  /** Epoch ms of the change. */
  at: number;
  /** Snapshot after the change. */
  health: HealthInfo;
}

/** Event map of {@link HealthChecker}. */
export interface HealthCheckerEvents {
  result: [HealthCheckResultEvent];
  statusChange: [HealthStatusChangeEvent];
}

type RunState = 'idle' | 'running' | 'draining' | 'stopped';

class StopSignal extends Error {
  constructor() {
    super('health checker stopped');
    this.name = 'StopSignal';
  }
}

/**
 * Periodic HTTP prober of the local instance. Single use: start() once, stop() once (idempotent).
 * Listener exceptions are rethrown asynchronously, as uncaught exceptions, after the probe loop has
 * been kept consistent.
 */
export class HealthChecker extends EventEmitter<HealthCheckerEvents> {
  readonly url: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;

  readonly #now: () => number;
  readonly #probeImpl: Probe | undefined;
  readonly #maxBodyBytes: number;
  readonly #machineOptions: { retries: number; gracePeriodMs: number; historySize?: number };
  #machine: HealthStateMachine;
  #state: RunState = 'idle';
  #client: InstanceHttpClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #abort: AbortController | undefined;
  #stopped: Promise<void> | undefined;

  constructor(options: HealthCheckerOptions) {
    super();
    this.#probeImpl = options.probe;
    const parsed = options.probe ? undefined : new URL(options.url);
    if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`health check URL must be http(s), got ${options.url}`);
    }
    for (const key of ['intervalMs', 'timeoutMs'] as const) {
      const v = options[key];
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${key} must be a finite number > 0, got ${v}`);
    }
    this.url = options.url;
    this.intervalMs = options.intervalMs;
    this.timeoutMs = options.timeoutMs;
    this.#now = options.now ?? Date.now;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (!Number.isInteger(this.#maxBodyBytes) || this.#maxBodyBytes < 0) {
      throw new RangeError(`maxBodyBytes must be an integer >= 0, got ${this.#maxBodyBytes}`);
    }
    this.#machineOptions = { retries: options.retries, gracePeriodMs: options.gracePeriodMs, historySize: options.historySize };
    // Validates retries/gracePeriod/historySize now; replaced at start() so the grace period counts from there.
    this.#machine = new HealthStateMachine({ ...this.#machineOptions, startedAt: this.#now() });
  }

  /** Current status. */
  get status(): ServiceStatus {
    return this.#machine.status;
  }

  /** Start probing; the first probe runs immediately. Throws if already started, drained or stopped. */
  start(): void {
    if (this.#state !== 'idle') throw new Error(`HealthChecker cannot start: ${this.#state}`);
    this.#state = 'running';
    this.#machine = new HealthStateMachine({ ...this.#machineOptions, startedAt: this.#now() });
    // One connection is enough: probes never overlap.
    if (!this.#probeImpl) this.#client = new InstanceHttpClient(this.url);
    this.#runProbe();
  }

  /**
   * Runs the next probe now instead of at its time, when none is in flight (a ttl check that was
   * just reported to); the cadence continues from it. Does nothing otherwise.
   */
  probeNow(): void {
    if (this.#state !== 'running' || this.#timer === undefined || this.#inFlight !== undefined) return;
    this.#clearTimer();
    this.#runProbe();
  }

  /**
   * Enter `draining`: no further probes are started, and a probe still in flight is ignored.
   * Emits `statusChange` when the status changed. The connection pool stays open until stop().
   */
  drain(reason?: string): HealthTransition {
    const transition = this.#machine.drain(this.#now(), reason);
    if (this.#state === 'running' || this.#state === 'idle') this.#state = 'draining';
    this.#clearTimer();
    if (transition.changed) this.#emitChange(transition);
    return transition;
  }

  /**
   * Stop for good: enters `stopped` at once (emitting `statusChange` synchronously), cancels the next
   * probe, aborts the one in flight (its result is discarded), waits for it to settle and closes the
   * connection pool.
   * Idempotent; resolves promptly even while the instance hangs.
   */
  stop(reason?: string): Promise<void> {
    this.#stopped ??= this.#stop(reason);
    return this.#stopped;
  }

  /** The `health` object for the service record. */
  snapshot(): HealthInfo {
    return this.#machine.snapshot();
  }

  /** Recent probe results, newest last. */
  history(): HealthHistoryEntry[] {
    return this.#machine.history();
  }

  async #stop(reason: string | undefined): Promise<void> {
    this.#state = 'stopped';
    this.#clearTimer();
    // Report `stopped` at once; whatever the probe in flight returns is ignored from here on.
    const transition = this.#machine.stop(this.#now(), reason);
    if (transition.changed) this.#emitChange(transition);
    this.#abort?.abort(new StopSignal());
    await this.#inFlight;
    // Nothing is in flight any more: this only closes the idle keep-alive socket.
    this.#client?.close();
    this.#client = undefined;
    this.#probeImpl?.close();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #runProbe(): void {
    this.#timer = undefined;
    if (this.#state !== 'running') return;
    // Read both clocks together: `at` is the published start, startedMono drives the cadence.
    const at = this.#now();
    const startedMono = performance.now();
    const done = this.#probe(at, startedMono).then((result) => this.#onResult(result, startedMono));
    this.#inFlight = done;
    void done.finally(() => {
      if (this.#inFlight === done) this.#inFlight = undefined;
    });
  }

  #onResult(result: ProbeResult | null, startedMono: number): void {
    // null: aborted by stop(); stop() records the final status itself.
    if (result === null || this.#state === 'stopped') return;
    const transition = this.#machine.record(result);
    // Schedule before emitting so a throwing listener cannot stall the loop.
    if (this.#state === 'running') {
      const delay = Math.max(0, startedMono + this.intervalMs - performance.now());
      this.#timer = setTimeout(() => this.#runProbe(), delay);
      // The checker must never be what keeps the process alive.
      this.#timer.unref();
    }
    this.#safeEmit('result', { result, transition, health: this.#machine.snapshot() });
    if (transition.changed) this.#emitChange(transition);
  }

  #emitChange(t: HealthTransition): void {
    this.#safeEmit('statusChange', {
      previous: t.previous,
      status: t.status,
      reason: t.reason,
      at: t.at,
      health: this.#machine.snapshot(),
    });
  }

  #safeEmit<K extends keyof HealthCheckerEvents>(event: K, ...args: HealthCheckerEvents[K]): void {
    try {
      // The cast bridges EventEmitter's generic key helpers, which do not narrow on K.
      (this.emit as (e: K, ...a: HealthCheckerEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  /**
   * Runs one probe under the timeout and stop(): `run` gets the abort signal, whether the timeout
   * fired, and `failed`, which turns an error into the result (a timeout, null after stop(), or the
   * network error). Never two in flight: the controller is the one stop() aborts.
   */
  async #guarded(
    at: number,
    t0: number,
    run: (signal: AbortSignal, timedOut: () => boolean, failed: (err: unknown) => ProbeResult | null, elapsed: () => number) => Promise<ProbeResult | null>,
  ): Promise<ProbeResult | null> {
    const controller = new AbortController();
    this.#abort = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timeout after ${this.timeoutMs}ms`));
    }, this.timeoutMs);
    const elapsed = (): number => Math.round(performance.now() - t0);
    const failed = (err: unknown): ProbeResult | null => {
      if (timedOut) return { at, latencyMs: elapsed(), ok: false, error: `timeout after ${this.timeoutMs}ms` };
      if (controller.signal.reason instanceof StopSignal) return null;
      return { at, latencyMs: elapsed(), ok: false, error: describeNetworkError(err) };
    };
    try {
      return await run(controller.signal, () => timedOut, failed, elapsed);
    } finally {
      clearTimeout(timer);
      if (this.#abort === controller) this.#abort = undefined;
    }
  }

  /** One probe of another kind, under the same timeout and stop as a GET. Never rejects. */
  async #probeWith(probe: Probe, at: number, t0: number): Promise<ProbeResult | null> {
    return this.#guarded(at, t0, async (signal, timedOut, failed, elapsed) => {
      try {
        const outcome = await probe.run(signal);
        if (signal.reason instanceof StopSignal) return null;
        if (timedOut()) return failed(undefined);
        return { at, latencyMs: elapsed(), ...outcome };
      } catch (err) {
        return failed(err);
      }
    });
  }

  /** One GET; resolves to a result, or null when aborted by stop(). Never rejects. */
  async #probe(at: number, t0: number): Promise<ProbeResult | null> {
    if (this.#probeImpl) return this.#probeWith(this.#probeImpl, at, t0);
    const client = this.#client;
    if (client === undefined) return null;
    return this.#guarded(at, t0, async (signal, timedOut, failed, elapsed) => {
      const maxBodyBytes = this.#maxBodyBytes;
      let res: InstanceHttpResponse;
      try {
        res = await client.request({
          signal,
          headers: { accept: 'application/json, */*;q=0.5', 'user-agent': 'proxy-stone-sd' },
          maxBodyBytes,
          // A small failing body may say why (Proxy-Stone's `{status: "degraded"}`).
          keepBody: (status, headers) => {
            const length = Number(headers['content-length']);
            return (status < 200 || status >= 300) && Number.isFinite(length) && length > 0 && length <= maxBodyBytes;
          },
        });
      } catch (err) {
        return failed(err);
      }
      // A body that hangs past the timeout is a failure; other body errors after a status line don't
      // change the verdict the status gave.
      if (res.bodyError !== undefined && (timedOut() || signal.reason instanceof StopSignal)) return failed(res.bodyError);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const detail = res.body !== undefined ? statusFromBody(res.body) : undefined;
      const result: ProbeResult = { at, latencyMs: elapsed(), ok, httpStatus: res.statusCode };
      if (detail !== undefined) result.error = `HTTP ${res.statusCode} (${detail})`;
      return result;
    });
  }
}

/** The string `status` of a JSON health body (Proxy-Stone: "degraded" / "unhealthy"), if any. */
export function statusFromBody(text: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && 'status' in parsed) {
      const status = (parsed as { status: unknown }).status;
      if (typeof status === 'string' && status.length > 0 && status.length <= 40) return status;
    }
  } catch {
    // Not JSON: the HTTP status says enough.
  }
  return undefined;
}

interface ErrorDetails {
  code?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** Short text for a network error: "ECONNREFUSED 127.0.0.1:3001", "UND_ERR_SOCKET: other side closed". */
export function describeNetworkError(err: unknown): string {
  // System errors may be wrapped (cause chains, AggregateError from happy eyeballs): find the errno code.
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || seen.has(e)) continue;
    seen.add(e);
    const d = e as ErrorDetails;
    if (typeof d.code === 'string' && /^E[A-Z0-9_]+$/.test(d.code)) {
      if (typeof d.address === 'string') return typeof d.port === 'number' ? `${d.code} ${d.address}:${d.port}` : `${d.code} ${d.address}`;
      if (typeof d.hostname === 'string') return `${d.code} ${d.hostname}`;
      return d.code;
    }
    queue.push(d.cause);
    if (e instanceof AggregateError) queue.push(...e.errors);
  }
  if (typeof err === 'object' && err !== null) {
    const d = err as ErrorDetails;
    const message = typeof d.message === 'string' ? d.message : String(err);
    const text = typeof d.code === 'string' && !message.includes(d.code) ? `${d.code}: ${message}` : message;
    return text.length > 200 ? `${text.slice(0, 197)}...` : text;
  }
  return String(err);
}
