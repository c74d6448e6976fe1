/**
 * Durations in configuration are seconds (fractions allowed), as in the seed (`interval: 30`). Strings may
 * carry units: `500ms`, `2s`, `1.5m`, `1h`, and compounds from the largest unit down, as Go and
 * kubectl write them (`1h30m`, `2m30s`, `1s500ms`). A unit out of order or twice (`30m1h`, `1m1m`), a
 * bare number after a unit (`1m30`) and negative values are rejected so that a typo never silently
 * becomes a different duration, and so are durations no timer can wait for ({@link MAX_DURATION_SECONDS}).
 */

const UNIT_SECONDS: Readonly<Record<string, number>> = { ms: 0.001, s: 1, m: 60, h: 3600 };

// One non-negative decimal number, no sign, no exponent, no spaces inside.
const NUMBER = String.raw`(\d+(?:\.\d+)?|\.\d+)`;
// Plain seconds, or parts with units, each unit at most once and from the largest down (`m` not followed by `s`).
const PLAIN_RE = new RegExp(`^${NUMBER}$`);
const PARTS_RE = new RegExp(`^(?:${NUMBER}h)?(?:${NUMBER}m(?!s))?(?:${NUMBER}s)?(?:${NUMBER}ms)?$`);
const PART_UNITS = ['h', 'm', 's', 'ms'] as const;

/** What a valid duration looks like, for error messages. */
export const DURATION_EXPECTATION = 'a duration in seconds (e.g. 30, 500ms, 2s)';

/**
 * The longest duration anything here takes: 24 days (576h). Every duration ends up in a timer
 * (`setTimeout`, an abort signal, a lease deadline), and Node's timers hold at most 2^31-1 ms (24.8
 * days): a longer delay fires after 1 ms, so `600h` would be a busy loop of health checks or
 * keep-alives, or every call timing out at once. Whole days, with room below the limit for what a
 * caller adds (the lease deadline's few milliseconds).
 */
export const MAX_DURATION_SECONDS = 24 * 86_400;

/** The error message's expectation for a duration above {@link MAX_DURATION_SECONDS}. */
export const DURATION_MAX_EXPECTATION = 'a duration of at most 576h (24 days)';

/** A well-formed duration above {@link MAX_DURATION_SECONDS}. */
export class DurationTooLongError extends Error {
  override name = 'DurationTooLongError';
}

/**
 * Parses a duration into seconds.
 *
 * @param raw - a number of seconds (`30`, `0.5`), or a string: plain seconds (`"30"`) or numbers with
 *   the units `h`, `m`, `s`, `ms`, largest first, each at most once (`"500ms"`, `"1.5m"`, `"1h30m"`).
 *   Surrounding whitespace is ignored.
 * @returns seconds, possibly fractional, at most {@link MAX_DURATION_SECONDS}
 * @throws DurationTooLongError when the value is above {@link MAX_DURATION_SECONDS} (`600h`, a 20-digit number)
 * @throws Error when the value is negative, not finite, or not in one of the forms above
 */
export function parseDuration(raw: string | number): number {
  if (typeof raw === 'number') {
    if (Number.isNaN(raw) || raw < 0) throw new Error(`invalid duration ${String(raw)}: expected ${DURATION_EXPECTATION}`);
    return bounded(raw, String(raw));
  }
  if (typeof raw !== 'string') throw new Error(`invalid duration: expected ${DURATION_EXPECTATION}`);
  const text = raw.trim();
  const plain = PLAIN_RE.exec(text);
  if (plain) return bounded(roundMicro(Number(plain[1])), quote(raw));
  const parts = text === '' ? null : PARTS_RE.exec(text);
  if (!parts) throw new Error(`invalid duration ${quote(raw)}: expected ${DURATION_EXPECTATION}`);
  let seconds = 0;
  PART_UNITS.forEach((unit, i) => {
    const value = parts[i + 1];
    if (value !== undefined) seconds += Number(value) * UNIT_SECONDS[unit]!;
  });
  // Multiply then round away binary noise (0.1 * 3 = 0.30000000000000004) at microsecond precision.
  return bounded(roundMicro(seconds), quote(raw));
}

function bounded(seconds: number, shown: string): number {
  // Infinity too: 400 digits are a well-formed number that Number() makes infinite.
  if (!(seconds <= MAX_DURATION_SECONDS)) throw new DurationTooLongError(`invalid duration ${shown}: expected ${DURATION_MAX_EXPECTATION}`);
  return seconds;
}

/** The raw value for a message: quoted, and cut so that a pasted megabyte stays one short line. */
function quote(raw: string): string {
  return JSON.stringify(raw.length > 40 ? `${raw.slice(0, 37)}...` : raw);
}

/**
 * Formats seconds as the shortest string {@link parseDuration} reads back to the same value:
 * `0.5` → `"500ms"`, `30` → `"30s"`, `90` → `"90s"`, `120` → `"2m"`, `3600` → `"1h"`, `1.5` → `"1.5s"`.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  if (seconds === 0) return '0s';
  const sign = seconds < 0 ? '-' : '';
  const abs = Math.abs(seconds);
  if (abs >= 3600 && abs % 3600 === 0) return `${sign}${abs / 3600}h`;
  if (abs >= 60 && abs % 60 === 0) return `${sign}${abs / 60}m`;
  if (abs >= 1) return `${sign}${roundMicro(abs)}s`;
  return `${sign}${roundMicro(abs * 1000)}ms`;
}

function roundMicro(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
