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
