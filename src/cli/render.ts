/**
 * Human output: colours, tables and small formatters. Loaded only on the human path (never under
 * --json), so the JSON path does not pay for chalk and cli-table3.
 *
 * @module
 */
import { stripVTControlCharacters } from 'node:util';
import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import type { ServiceStatus } from '../types.js';
import { spanText, timeLeft as timeLeftText } from '../util/time.js';

/**
 * Colour only for a person: stdout is a terminal and NO_COLOR is unset. FORCE_COLOR (chalk's own
 * variable) still forces colour into a pipe, for tests and `less -R`.
 */
export function colorLevel(env: NodeJS.ProcessEnv = process.env, isTTY = Boolean(process.stdout.isTTY)): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') {
    if (force === '0' || force === 'false') return 0;
    const n = Number(force);
    return n === 2 || n === 3 ? n : 1;
  }
  if (!isTTY) return 0;
  return env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit' ? 3 : /256/.test(env.TERM ?? '') ? 2 : 1;
}

export const c: ChalkInstance = new Chalk({ level: colorLevel() });

const STATUS_COLOR: Record<ServiceStatus, (s: string) => string> = {
  healthy: (s) => c.green(s),
  unhealthy: (s) => c.red(s),
  starting: (s) => c.yellow(s),
  draining: (s) => c.magenta(s),
  stopped: (s) => c.gray(s),
};

export function statusText(status: ServiceStatus): string {
  return STATUS_COLOR[status]?.(status) ?? status;
}

export function enabledText(enabled: boolean): string {
  return enabled ? 'yes' : c.yellow('no');
}

/**
 * Widest a table column gets, in characters: registry data can be a megabyte in one field, and a
 * table pads every row to its widest cell. Longer cells are cut with `…` (`--json` stays exact).
 */
export const MAX_COLUMN_WIDTH = 48;
/** Narrowest a column is squeezed to when fitting a terminal: statuses, times and short ids stay whole. */
const MIN_COLUMN_WIDTH = 12;
/** Longest value `fields` shows (`services show`); the rest is counted, not shown. */
export const MAX_FIELD_LENGTH = 1000;

const SGR = /\u001b\[[0-9;]*m/y;

/** Characters of `text` a terminal shows: colour codes left out, a surrogate pair counted once. */
export function visibleLength(text: string): number {
  const plain = stripVTControlCharacters(text);
  let n = 0;
  for (let i = 0; i < plain.length; i++) {
    n++;
    const code = plain.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < plain.length) i++;
  }
  return n;
}

/**
 * `text` cut to `max` visible characters, the cut marked by `tail(hidden)` (default `…`, counted in
 * `max`); colour codes are kept and closed. Unchanged when it fits.
 */
export function clip(text: string, max: number, tail: (hidden: number) => string = () => '…'): string {
  // Fast path: fewer UTF-16 units than `max` means fewer visible characters too.
  if (text.length <= max) return text;
  const total = visibleLength(text);
  if (total <= max) return text;
  const keep = Math.max(0, max - visibleLength(tail(total)));
  let out = '';
  let kept = 0;
  let coloured = false;
  for (let i = 0; i < text.length && kept < keep; ) {
    SGR.lastIndex = i;
    const sgr = text.charCodeAt(i) === 0x1b ? SGR.exec(text) : null;
    if (sgr) {
      out += sgr[0];
      coloured = true;
      i += sgr[0].length;
      continue;
    }
    const code = text.charCodeAt(i);
    const width = code >= 0xd800 && code <= 0xdbff && i + 1 < text.length ? 2 : 1;
    out += text.slice(i, i + width);
    i += width;
    kept++;
  }
  return `${out}${coloured ? '\u001b[0m' : ''}${tail(total - kept)}`;
}

/**
 * Column widths: each column as wide as its widest cell, at most {@link MAX_COLUMN_WIDTH}; on a
 * terminal narrower than that, the widest columns give way first, down to {@link MIN_COLUMN_WIDTH}.
 */
export function columnWidths(natural: readonly number[], terminalColumns?: number): number[] {
  const widths = natural.map((n) => Math.min(n, MAX_COLUMN_WIDTH));
  if (!terminalColumns) return widths;
  // Each column has a space either side, and a border on its right; one more border on the left.
  const total = () => widths.reduce((sum, w) => sum + w + 3, 1);
  while (total() > terminalColumns) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= MIN_COLUMN_WIDTH) break;
    widths[widest]! -= 1;
  }
  return widths;
}

/**
 * A plain table: no colour codes in headers or borders unless colour is on. Cells are cut to their
 * column's width ({@link columnWidths}), so one huge value neither floods the output nor pads every row.
 */
export function table(head: string[], rows: (string | number)[][], terminalColumns = process.stdout.isTTY ? process.stdout.columns : undefined): string {
  const cells = rows.map((row) => row.map(String));
  const natural = head.map((h, i) => Math.max(visibleLength(h), ...cells.map((row) => visibleLength(row[i] ?? ''))));
  const widths = columnWidths(natural, terminalColumns);
  const t = new Table({
    head: head.map((h, i) => c.bold(clip(h, widths[i]!))),
    style: { head: [], border: [], compact: true },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of cells) t.push(row.map((cell, i) => clip(cell, widths[i] ?? MAX_COLUMN_WIDTH)));
  return t.toString();
}

/**
 * `key: value` lines with the keys aligned. A value longer than {@link MAX_FIELD_LENGTH} is cut,
 * saying how much is left: `… (999000 more characters)`.
 */
export function fields(entries: [string, string | number | undefined | null][]): string {
  const shown = entries.filter(([, v]) => v !== undefined && v !== null && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${c.dim(`${k}:`.padEnd(width + 1))} ${clipField(String(v))}`).join('\n');
}

/** A detail value cut at {@link MAX_FIELD_LENGTH} visible characters, with how many more there are. */
export function clipField(text: string): string {
  return clip(text, MAX_FIELD_LENGTH, (hidden) => `… (${hidden} more characters)`);
}

/** `12s ago`, `3m ago`, `2h ago`, `4d ago`; `never` for null or 0. */
export function ago(epochMs: number | null | undefined, now = Date.now()): string {
  if (!epochMs) return 'never';
  // To the nearest second (the dashboard's `ago` rounds down and says `just now`).
  return `${spanText(Math.max(0, Math.round((now - epochMs) / 1000)))} ago`;
}

export { isoTime } from '../util/time.js';

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Time left until `epochMs`: `25s`, `4m 10s`, `2h 5m`; `0s` once passed. */
export function timeLeft(epochMs: number, now = Date.now()): string {
  return timeLeftText(epochMs, now, true);
}
