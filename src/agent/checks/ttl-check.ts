/**
 * `ttl://NAME`: Consul's TTL check. Nobody probes; the instance (through the agent's API) or an
 * embedding process (through the library) reports "alive" or "failing", and the check fails when no
 * "alive" came within `ttl`. The agent evaluates it on the check's interval, so a missed deadline is
 * noticed at most one interval late, and at once after each report.
 *
 * @module
 */
import { formatSeconds } from '../../cluster/explain.js';
import type { Probe, ProbeOutcome } from '../health-checker.js';
import { MAX_CHECK_OUTPUT } from './check-spec.js';

/** What the instance last said. */
export interface TtlReport {
  at: number;
  ok: boolean;
  note?: string;
}

export class TtlProbe implements Probe {
  #last: TtlReport | undefined;
  readonly #startedAt: number;

  constructor(
    readonly name: string,
    /** Seconds an "alive" report counts for. */
    readonly deadline: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#startedAt = now();
  }

  /** The instance's report; `note` (bounded) becomes the check's output. */
  report(ok: boolean, note?: string): TtlReport {
    const report: TtlReport = { at: this.now(), ok };
    if (note !== undefined && note !== '') report.note = note.length > MAX_CHECK_OUTPUT ? note.slice(0, MAX_CHECK_OUTPUT) : note;
    this.#last = report;
    return report;
  }

  get lastReport(): TtlReport | undefined {
    return this.#last;
  }

  async run(): Promise<ProbeOutcome> {
    const ttl = formatSeconds(this.deadline * 1000);
    const last = this.#last;
    if (last === undefined) {
      return { ok: false, error: this.now() - this.#startedAt < this.deadline * 1000 ? 'no report yet' : `no report within the ${ttl} ttl` };
    }
    if (!last.ok) return { ok: false, error: last.note ? `reported failing: ${last.note}` : 'reported failing' };
    if (this.now() - last.at > this.deadline * 1000) return { ok: false, error: `no report within the ${ttl} ttl` };
    return { ok: true, output: last.note ?? 'reported alive' };
  }

  close(): void {
    // Nothing to release.
  }
}
