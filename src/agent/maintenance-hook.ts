/**
 * The instance maintenance hook (`--instance-maintenance-hook`): applies the operator's intent to the
 * Proxy-Stone instance itself, through Proxy-Stone's own maintenance switch (DESIGN.md):
 * `POST /api/cluster/disable-serving`, `POST /api/cluster/enable-serving`, and the state at
 * `GET /api/cluster/service-status` (`{status: {mode: "serving"|"maintenance", enabled}}`).
 *
 * One loop, never two calls in flight: read the instance's mode; when it differs from the desired
 * one, switch it and read it again to verify. A failed or unverified attempt is retried with
 * exponential backoff (250 ms doubling, capped at `recheckMs`); a verified one is re-checked every
 * `recheckMs`, so an instance that restarted and forgot its maintenance mode is corrected. Every call
 * has a timeout. Changes of the reported state are emitted as `change` (the agent publishes them in
 * the record as `instanceMaintenance`).
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type { InstanceMaintenanceInfo } from '../types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { describeNetworkError } from './health-checker.js';
import { InstanceHttpClient, type InstanceHttpResponse } from './instance-http.js';

export type InstanceMode = 'serving' | 'maintenance';

export interface MaintenanceHookOptions {
  /** Base URL of the instance (`http://127.0.0.1:3000`); the API paths are appended. */
  baseUrl: string;
  /**
   * The mode the operator's intent asks for, read at every attempt; undefined while the intent is not
   * known (the registry has never been listed): the hook then leaves the instance alone and asks again later.
   */
  desired: () => InstanceMode | undefined;
  /** Milliseconds allowed for each HTTP call. */
  timeoutMs: number;
  /** Milliseconds between verifications while in sync; also the backoff cap. */
  recheckMs: number;
  /** First retry delay after a failure (default 250 ms). */
  initialBackoffMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface MaintenanceHookEvents {
  change: [InstanceMaintenanceInfo];
}

/** Larger answers than this are not a service-status document. */
const MAX_BODY_BYTES = 64 * 1024;

const PATHS = {
  status: '/api/cluster/service-status',
  maintenance: '/api/cluster/disable-serving',
  serving: '/api/cluster/enable-serving',
} as const;

export class InstanceMaintenanceHook extends EventEmitter<MaintenanceHookEvents> {
  readonly baseUrl: string;
  readonly #opts: Required<Omit<MaintenanceHookOptions, 'logger'>> & { logger: Logger };
  #info: InstanceMaintenanceInfo;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = true;
  #failures = 0;
  #abort = new AbortController();
  readonly #client: InstanceHttpClient;
  /** Attempts made (POSTs sent), for tests and logs. */
  switches = 0;

  constructor(options: MaintenanceHookOptions) {
    super();
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`maintenance URL must be http(s), got ${options.baseUrl}`);
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#client = new InstanceHttpClient(this.baseUrl);
    this.#opts = { initialBackoffMs: 250, now: Date.now, logger: silentLogger, ...options };
    this.#info = { desired: options.desired() ?? 'serving', actual: 'unknown', inSync: false, since: this.#opts.now() };
  }

  info(): InstanceMaintenanceInfo {
    return { ...this.#info };
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.poke();
  }

  /** The desired mode may have changed: check now (after the attempt in flight, if any). */
  poke(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#cycle().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.poke();
      }
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#running;
    this.#client.close();
  }

  async #cycle(): Promise<void> {
    const desired = this.#opts.desired();
    if (desired === undefined) {
      // Acting on a guess could take an instance out of maintenance an operator put it in.
      this.#schedule(this.#opts.recheckMs);
      return;
    }
    let actual: InstanceMode | 'unknown' = 'unknown';
    try {
      actual = await this.#read();
      if (actual !== desired) {
        this.switches += 1;
        await this.#call('POST', PATHS[desired]);
        actual = await this.#read();
        if (actual !== desired) throw new Error(`instance still reports ${actual} after ${PATHS[desired]}`);
        this.#opts.logger.info({ event: 'instance.maintenance_applied', mode: desired }, `instance switched to ${desired}`);
      }
      this.#failures = 0;
      this.#set({ desired, actual, inSync: true });
      this.#schedule(this.#opts.recheckMs);
    } catch (err) {
      if (this.#stopped) return;
      const lastError = err instanceof Error ? err.message : String(err);
      this.#failures += 1;
      if (this.#info.lastError !== lastError || this.#info.desired !== desired) {
        this.#opts.logger.warn(
          { event: 'instance.maintenance_mismatch', desired, actual, err: lastError },
          `instance maintenance mismatch: asked ${desired}, instance ${actual} (${lastError}); retrying`,
        );
      }
      this.#set({ desired, actual, inSync: false, lastError });
      const backoff = Math.min(this.#opts.recheckMs, this.#opts.initialBackoffMs * 2 ** Math.min(this.#failures - 1, 16));
      this.#schedule(backoff);
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.poke(), ms);
    this.#timer.unref();
  }

  #set(next: Omit<InstanceMaintenanceInfo, 'since'>): void {
    const prev = this.#info;
    if (prev.desired === next.desired && prev.actual === next.actual && prev.inSync === next.inSync && prev.lastError === next.lastError) return;
    this.#info = { ...next, since: this.#opts.now() };
    if (next.lastError === undefined) delete this.#info.lastError;
    this.emit('change', this.info());
  }

  async #read(): Promise<InstanceMode> {
    const body = await this.#call('GET', PATHS.status);
    const status = (body as { status?: { mode?: unknown } } | null)?.status;
    const mode = typeof status === 'object' && status !== null ? status.mode : undefined;
    if (mode !== 'serving' && mode !== 'maintenance') throw new Error(`${PATHS.status} answered without status.mode serving|maintenance`);
    return mode;
  }

  async #call(method: 'GET' | 'POST', path: string): Promise<unknown> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.#opts.timeoutMs), this.#abort.signal]);
    let res: InstanceHttpResponse;
    try {
      res = await this.#client.request({
        method,
        path,
        signal,
        headers: { accept: 'application/json', 'user-agent': 'proxy-stone-sd' },
        // Both switches set a mode: sending one twice does what sending it once does.
        ...(method === 'POST' ? { json: {}, idempotent: true } : {}),
        maxBodyBytes: MAX_BODY_BYTES,
        keepBody: () => true,
      });
    } catch (err) {
      if (signal.aborted && !this.#abort.signal.aborted) throw new Error(`${method} ${path}: timeout after ${this.#opts.timeoutMs}ms`);
      throw new Error(`${method} ${path}: ${describeNetworkError(err)}`);
    }
    if (res.bodyError !== undefined) {
      throw new Error(`${method} ${path}: ${signal.aborted ? `timeout after ${this.#opts.timeoutMs}ms` : describeNetworkError(res.bodyError)}`);
    }
    const text = res.body ?? '';
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`${method} ${path}: HTTP ${res.statusCode}`);
    try {
      return text ? (JSON.parse(text) as unknown) : null;
    } catch {
      if (method === 'GET') throw new Error(`${method} ${path}: answer is not JSON`);
      return null;
    }
  }
}
