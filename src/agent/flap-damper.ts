/**
 * Flap damping for the local instance: pure, no timers, no I/O; every input carries its own time.
 *
 * ## Rules
 *
 * Parameters: `threshold` (integer ≥ 0; 0 turns damping off), `windowMs` and `holdDownMs` (> 0).
 *
 * 1. Only changes between `healthy` and `unhealthy` of the *raw* status (what the probes say) count as
 *    flaps; a first success after `starting`, draining and stopping do not.
 * 2. When the `threshold`-th counted change falls within `windowMs` of the oldest one kept, the
 *    instance is *held down*: from then on its published status is `unhealthy` whatever the probes say
 *    (`healthy` and `starting` become `unhealthy`; `draining` and `stopped` pass through).
 * 3. Each further raw change while held down restarts the stability clock (`lastChange`).
 * 4. The hold is released by the first input at or after `lastChange + holdDownMs`: the instance has
 *    been stable for the hold-down period. The count starts afresh after a release.
 * 5. A hold can be restored (after an agent restart) from its persisted {@link FlapInfo}; it is
 *    resumed only while `lastChange + holdDownMs` (with the current hold-down) lies in the future.
 *
 * @module
 */
import { formatSeconds } from '../cluster/explain.js';
import type { FlapInfo, ServiceStatus } from '../types.js';

export interface FlapDamperOptions {
  /** Status changes within the window that hold the instance down; 0 = damping off. */
  threshold: number;
  windowMs: number;
  holdDownMs: number;
}

/** What one input did to the damper. */
export interface FlapOutcome {
  /** The hold started with this input. */
  entered: boolean;
  /** The hold was already on and its figures changed (one more change, a new stability clock). */
  updated: boolean;
  /** The hold ended with this input. */
  released: boolean;
}

const NOTHING: FlapOutcome = { entered: false, updated: false, released: false };

const counted = (s: ServiceStatus) => s === 'healthy' || s === 'unhealthy';

export class FlapDamper {
  readonly threshold: number;
  readonly windowMs: number;
  readonly holdDownMs: number;
  /** Times of the counted changes inside the window, oldest first. */
  #changes: number[] = [];
  #held: FlapInfo | undefined;

  constructor(options: FlapDamperOptions) {
    const { threshold, windowMs, holdDownMs } = options;
    if (!Number.isInteger(threshold) || threshold < 0) throw new RangeError(`threshold must be an integer >= 0, got ${threshold}`);
    if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
    if (!(holdDownMs > 0)) throw new RangeError(`holdDownMs must be > 0, got ${holdDownMs}`);
    this.threshold = threshold;
    this.windowMs = windowMs;
    this.holdDownMs = holdDownMs;
  }

  get enabled(): boolean {
    return this.threshold > 0;
  }

  /** True while the instance is held down. */
  get held(): boolean {
    return this.#held !== undefined;
  }

  /** Feeds one raw status change (rules 1-3). */
  change(from: ServiceStatus, to: ServiceStatus, at: number): FlapOutcome {
    if (!this.enabled || !counted(from) || !counted(to) || from === to) return NOTHING;
    if (this.#held) {
      this.#held = { ...this.#held, transitions: this.#held.transitions + 1, lastChange: at, until: at + this.holdDownMs };
      return { entered: false, updated: true, released: false };
    }
    this.#changes.push(at);
    while (this.#changes.length > 0 && this.#changes[0]! < at - this.windowMs) this.#changes.shift();
    if (this.#changes.length < this.threshold) return NOTHING;
    this.#held = {
      since: at,
      until: at + this.holdDownMs,
      lastChange: at,
      transitions: this.#changes.length,
      window: this.windowMs / 1000,
      holdDown: this.holdDownMs / 1000,
      threshold: this.threshold,
    };
    this.#changes = [];
    return { entered: true, updated: false, released: false };
  }

  /** Releases the hold once stable for the hold-down period (rule 4). Call on every probe result. */
  evaluate(at: number): FlapOutcome {
    if (!this.#held || at < this.#held.lastChange + this.holdDownMs) return NOTHING;
    this.#held = undefined;
    this.#changes = [];
    return { entered: false, updated: false, released: true };
  }

  /** The status to publish for a raw status (rule 2). */
  apply(raw: ServiceStatus): ServiceStatus {
    return this.#held && (raw === 'healthy' || raw === 'starting') ? 'unhealthy' : raw;
  }

  /** The hold, as published in `health.flapping`, or undefined when not held. */
  info(): FlapInfo | undefined {
    return this.#held ? { ...this.#held } : undefined;
  }

  /** Resumes a persisted hold if it has not run out by `now` (rule 5); returns whether it did. */
  restore(info: FlapInfo, now: number): boolean {
    if (!this.enabled) return false;
    const until = info.lastChange + this.holdDownMs;
    if (now >= until) return false;
    this.#held = { ...info, until, holdDown: this.holdDownMs / 1000 };
    this.#changes = [];
    return true;
  }
}

/** "held down as flapping: 6 status changes within 1m; released after 30s without a change" */
export function flapReason(info: FlapInfo): string {
  return `held down as flapping: ${info.transitions} status changes within ${formatSeconds(info.window * 1000)}; released after ${formatSeconds(info.holdDown * 1000)} without a change`;
}
