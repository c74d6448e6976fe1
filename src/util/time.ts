/**
 * Times are epoch milliseconds, and every one of them may come from the registry or a request body.
 * A JavaScript Date holds ±8.64e15 ms, and `toISOString` throws a RangeError past it; a time from
 * outside is bounded to what a person can mean (years 1970 to 9999), and formatting never throws.
 */

/** 9999-12-31T23:59:59.999Z: the last time with a four-digit year. */
export const MAX_EPOCH_MS = 253_402_300_799_999;

/** What a valid time looks like, for error messages. */
export const EPOCH_MS_EXPECTATION = `an integer of epoch milliseconds from 0 to ${MAX_EPOCH_MS} (year 9999)`;

/** True for an integer epoch-ms time between 1970 and the end of year 9999. */
export function isEpochMs(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_EPOCH_MS;
}

/** ISO 8601 in UTC, unambiguous across hosts and time zones; `invalid time (…)` instead of throwing. */
export function isoTime(epochMs: number): string {
  const d = new Date(epochMs);
  return Number.isNaN(d.getTime()) ? `invalid time (${String(epochMs)})` : d.toISOString();
}

/**
 * Whole seconds as a person reads a span at a glance: the largest unit, `25s`, `4m`, `2h`, `3d`. With
 * `precise`, the next unit too: `4m 10s`, `2h 5m` (left out when zero), `3d 4h` (always, for days).
 * The CLI and the dashboard both word ages and countdowns with it; each rounds its own way first.
 */
export function spanText(seconds: number, precise = false): string {
  const s = seconds;
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${precise && s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86400) {
    const minutes = Math.floor((s % 3600) / 60);
    return `${Math.floor(s / 3600)}h${precise && minutes ? ` ${minutes}m` : ''}`;
  }
  return `${Math.floor(s / 86400)}d${precise ? ` ${Math.floor((s % 86400) / 3600)}h` : ''}`;
}

/** Time left until `epochMs` as {@link spanText}, in whole seconds rounded up; `0s` once passed. */
export function timeLeft(epochMs: number, now: number, precise = false): string {
  return spanText(Math.max(0, Math.ceil((epochMs - now) / 1000)), precise);
}
