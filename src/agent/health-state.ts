/**
 * Pure health state machine for the local instance: no timers, no I/O. Every input carries its own
 * timestamp (epoch ms), so the rules below are fully deterministic and unit-testable.
 *
 * ## Rules
 *
 * Statuses: `starting | healthy | unhealthy | draining | stopped`. Parameters: `retries` (integer ≥ 1),
 * `gracePeriodMs` (≥ 0) and the start time `startedAt`.
 *
 * 1. The machine starts in `starting` at `startedAt`, with both counters at 0.
 * 2. Every recorded probe result updates `lastCheck`, `responseTime` and the counters: a success
 *    increments `consecutiveSuccesses` and resets `consecutiveFailures` to 0; a failure does the reverse.
 *    A success is whatever the caller reports as `ok` (the HTTP checker: a 2xx answer); anything else is a
 *    failure (non-2xx status, network error, timeout).
 * 3. A success turns `starting` or `unhealthy` into `healthy` at once (one success is enough).
 * 4. From `healthy`, the `retries`-th consecutive failure turns it `unhealthy`; fewer keep it `healthy`.
 * 5. From `starting`, the grace period applies: a failure whose time is before
 *    `startedAt + gracePeriodMs` (strictly less) keeps it `starting`, whatever the count. A failure at
 *    or after that instant turns it `unhealthy` when `consecutiveFailures` (counting failures made
 *    during the grace period too) has reached `retries`. So if `retries` failures already happened
 *    during the grace period, the first failure after it flips the status; a success in between resets
 *    the count as usual. The grace period is only evaluated when a result arrives: with no timers, an
 *    instance that is never checked after the grace period stays `starting`.
 * 6. The grace period applies only to `starting`: once `healthy` has been reached it never applies again.
 * 7. Failures while `unhealthy` keep it `unhealthy` (the count keeps growing).
 * 8. `drain()` turns `starting`, `healthy` or `unhealthy` into `draining`. From then on probe results
 *    are ignored: they change neither the status, the counters, `lastCheck` nor the history, and the
 *    returned transition has `ignored: true`. `drain()` on `draining` or `stopped` changes nothing.
 * 9. `stop()` turns any other status into `stopped`, which is final; results are ignored as in draining.
 * 10. Every input returns a {@link HealthTransition}: whether the status changed, the previous and the
 *    current status, and a human reason. A streak of failures of one kind is named by its kind
 *    ("3 consecutive timeouts after 1 s", "2 consecutive HTTP 503 answers (degraded)",
 *    "3 consecutive refused connections (127.0.0.1:3001)"), a mixed one by its last failure
 *    ("2 consecutive failures (last: HTTP 503)"); then "check succeeded after 3 failures",
 *    "within grace period (12s left): 1 consecutive HTTP 503 answer".
 * 11. The snapshot's `message` is the reason of the latest failed result or status change, whichever
 *    came last; a successful result that changes nothing brings back the reason of the last status
 *    change. It is absent until the first failure or change.
 * 12. The last `historySize` recorded results (default 50) are kept, oldest first, each with the
 *    status change it caused, if any. Ignored results are not kept.
 *
 * @module
 */
import type { HealthInfo, ServiceStatus } from '../types.js';

/** Default number of probe results kept by {@link HealthStateMachine.history}. */
export const DEFAULT_HEALTH_HISTORY_SIZE = 50;

/** One probe outcome, as fed to {@link HealthStateMachine.record}. */
export interface ProbeResult {
  /** Epoch ms when the probe started. */
  at: number;
  /** How long the probe took, in ms. */
  latencyMs: number;
  /** True for a success (the HTTP checker: a 2xx answer). */
  ok: boolean;
  /** HTTP status when an answer arrived. */
  httpStatus?: number;
  /** Short error text when no usable answer arrived ("timeout after 1000ms", "ECONNREFUSED 127.0.0.1:3001"). */
  error?: string;
  /** What a passing check said, when it says more than ok ("SERVING", "connected"). */
  output?: string;
}

/** The outcome of one input to the machine. */
export interface HealthTransition {
  /** Whether the status changed. */
  changed: boolean;
  previous: ServiceStatus;
  status: ServiceStatus;
  /** Human explanation of the current status after this input. */
  reason: string;
  /** Epoch ms of the input. */
  at: number;
  /** True when the input was a probe result discarded because the machine is draining or stopped. */
  ignored: boolean;
}

/** A status change caused by a probe result, as kept in the history. */
export interface HealthStatusChange {
  from: ServiceStatus;
  to: ServiceStatus;
  reason: string;
}

/** One entry of {@link HealthStateMachine.history}. */
export interface HealthHistoryEntry extends ProbeResult {
  /** Present when this result changed the status. */
  change?: HealthStatusChange;
  /** With several checks (`--check`): whose result this is; `change` is then that check's. */
  check?: string;
}

/** Construction parameters of {@link HealthStateMachine}. */
export interface HealthStateOptions {
  /** Consecutive failures that make the instance unhealthy; integer ≥ 1. */
  retries: number;
  /** Milliseconds after `startedAt` during which failures keep the status `starting`; ≥ 0. */
  gracePeriodMs: number;
  /** Epoch ms the instance (or the agent) started. */
  startedAt: number;
  /** Number of probe results kept; integer ≥ 0, default {@link DEFAULT_HEALTH_HISTORY_SIZE}. */
  historySize?: number;
}

/** Short description of a failed probe: "HTTP 503", the error text, or "failed". */
export function describeFailure(result: ProbeResult): string {
  if (result.error !== undefined && result.error !== '') return result.error;
  if (result.httpStatus !== undefined) return `HTTP ${result.httpStatus}`;
  return 'failed';
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * What kind of failure a result is, for naming a streak: `key` is equal for failures of one kind,
 * `words` names `n` of them.
 */
function failureKind(result: ProbeResult): { key: string; words: (n: number) => string } {
  const error = result.error ?? '';
  const timeout = /^timeout after (\d+)ms$/.exec(error);
  if (timeout) {
    const ms = Number(timeout[1]);
    const after = ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`;
    return { key: error, words: (n) => `${plural(n, 'consecutive timeout')} after ${after}` };
  }
  if (result.httpStatus !== undefined) {
    // "HTTP 503 (degraded)": the status, and what the body said.
    const detail = /^HTTP \d+ \((.+)\)$/.exec(error)?.[1];
    return {
      key: `${result.httpStatus} ${detail ?? ''}`,
      words: (n) => `${plural(n, `consecutive HTTP ${result.httpStatus} answer`)}${detail ? ` (${detail})` : ''}`,
    };
  }
  const refused = /^ECONNREFUSED (.+)$/.exec(error);
  if (refused) return { key: error, words: (n) => `${plural(n, 'consecutive refused connection')} (${refused[1]})` };
  return { key: error, words: (n) => `${plural(n, 'consecutive failure')} (${describeFailure(result)})` };
}

/** Remaining time for humans: sub-second values in ms, longer ones in whole seconds rounded up. */
function formatRemaining(ms: number): string {
  return ms < 1000 ? `${Math.ceil(ms)}ms` : `${Math.ceil(ms / 1000)}s`;
}

/** Pure health state machine; see the module documentation for the exact rules. */
export class HealthStateMachine {
  readonly retries: number;
  readonly gracePeriodMs: number;
  readonly startedAt: number;
  readonly historySize: number;

  #status: ServiceStatus = 'starting';
  #statusSince: number;
  #failures = 0;
  #successes = 0;
  #lastCheck: number | null = null;
  #responseTime: number | null = null;
  #lastChangeReason: string | undefined;
  #message: string | undefined;
  /** The kind shared by every failure of the current streak; null once they differ. */
  #streakKind: string | null | undefined;
  // Ring buffer: #ring[#head] is the oldest entry once full.
  #ring: HealthHistoryEntry[] = [];
  #head = 0;

  constructor(options: HealthStateOptions) {
    const { retries, gracePeriodMs, startedAt } = options;
    const historySize = options.historySize ?? DEFAULT_HEALTH_HISTORY_SIZE;
    if (!Number.isInteger(retries) || retries < 1) throw new RangeError(`retries must be an integer >= 1, got ${retries}`);
    if (!Number.isFinite(gracePeriodMs) || gracePeriodMs < 0) {
      throw new RangeError(`gracePeriodMs must be a finite number >= 0, got ${gracePeriodMs}`);
    }
    if (!Number.isFinite(startedAt)) throw new RangeError(`startedAt must be a finite number, got ${startedAt}`);
    if (!Number.isInteger(historySize) || historySize < 0) {
      throw new RangeError(`historySize must be an integer >= 0, got ${historySize}`);
    }
    this.retries = retries;
    this.gracePeriodMs = gracePeriodMs;
    this.startedAt = startedAt;
    this.historySize = historySize;
    this.#statusSince = startedAt;
  }

  /** Current status. */
  get status(): ServiceStatus {
    return this.#status;
  }

  /** Epoch ms of the last status change (the start time before any change). */
  get statusSince(): number {
    return this.#statusSince;
  }

  /** Milliseconds of grace period left at `at` (0 once elapsed); meaningful only while `starting`. */
  graceRemainingMs(at: number): number {
    return Math.max(0, this.startedAt + this.gracePeriodMs - at);
  }

  /** Feed one probe result; returns the resulting transition (see rules 2–9). */
  record(result: ProbeResult): HealthTransition {
    const previous = this.#status;
    if (previous === 'draining' || previous === 'stopped') {
      return { changed: false, previous, status: previous, reason: `result ignored: ${previous}`, at: result.at, ignored: true };
    }

    this.#lastCheck = result.at;
    this.#responseTime = result.latencyMs;
    let next: ServiceStatus = previous;
    let reason: string;

    if (result.ok) {
      const failuresBefore = this.#failures;
      this.#failures = 0;
      this.#streakKind = undefined;
      this.#successes += 1;
      if (failuresBefore > 0) reason = `check succeeded after ${plural(failuresBefore, 'failure')}`;
      else reason = previous === 'healthy' ? 'check succeeded' : 'first check succeeded';
      if (previous !== 'healthy') next = 'healthy';
    } else {
      this.#successes = 0;
      this.#failures += 1;
      const kind = failureKind(result);
      this.#streakKind = this.#failures === 1 || this.#streakKind === kind.key ? kind.key : null;
      const streak =
        this.#streakKind === null
          ? `${plural(this.#failures, 'consecutive failure')} (last: ${describeFailure(result)})`
          : kind.words(this.#failures);
      const graceLeft = this.graceRemainingMs(result.at);
      if (previous === 'starting' && graceLeft > 0) {
        reason = `within grace period (${formatRemaining(graceLeft)} left): ${streak}`;
      } else if (this.#failures >= this.retries) {
        next = 'unhealthy';
        reason = streak;
      } else {
        // Below the threshold: still healthy, or still starting after the grace period.
        reason = `${streak}, ${this.retries} needed to mark unhealthy`;
      }
    }

    const changed = next !== previous;
    const entry: HealthHistoryEntry = { ...result };
    if (changed) {
      this.#setStatus(next, reason, result.at);
      entry.change = { from: previous, to: next, reason };
    }
    this.#message = result.ok ? this.#lastChangeReason : reason;
    this.#push(entry);
    return { changed, previous, status: next, reason, at: result.at, ignored: false };
  }

  /** Enter `draining` (rule 8); later probe results are ignored. */
  drain(at: number, reason = 'draining'): HealthTransition {
    const previous = this.#status;
    if (previous === 'draining' || previous === 'stopped') {
      return { changed: false, previous, status: previous, reason: `already ${previous}`, at, ignored: false };
    }
    this.#setStatus('draining', reason, at);
    return { changed: true, previous, status: 'draining', reason, at, ignored: false };
  }

  /** Enter `stopped`, the final status (rule 9). */
  stop(at: number, reason = 'stopped'): HealthTransition {
    const previous = this.#status;
    if (previous === 'stopped') {
      return { changed: false, previous, status: previous, reason: 'already stopped', at, ignored: false };
    }
    this.#setStatus('stopped', reason, at);
    return { changed: true, previous, status: 'stopped', reason, at, ignored: false };
  }

  /** The `health` object published in the service record (rule 11 for `message`). */
  snapshot(): HealthInfo {
    const info: HealthInfo = {
      status: this.#status,
      responseTime: this.#responseTime,
      lastCheck: this.#lastCheck,
      consecutiveFailures: this.#failures,
      consecutiveSuccesses: this.#successes,
    };
    if (this.#message !== undefined) info.message = this.#message;
    return info;
  }

  /** Recorded probe results, oldest first, newest last; copies, safe to keep. */
  history(): HealthHistoryEntry[] {
    const ordered = [...this.#ring.slice(this.#head), ...this.#ring.slice(0, this.#head)];
    return ordered.map((e) => (e.change ? { ...e, change: { ...e.change } } : { ...e }));
  }

  #setStatus(status: ServiceStatus, reason: string, at: number): void {
    this.#status = status;
    this.#statusSince = at;
    this.#lastChangeReason = reason;
    this.#message = reason;
  }

  #push(entry: HealthHistoryEntry): void {
    if (this.historySize === 0) return;
    if (this.#ring.length < this.historySize) {
      this.#ring.push(entry);
      return;
    }
    this.#ring[this.#head] = entry;
    this.#head = (this.#head + 1) % this.historySize;
  }
}
