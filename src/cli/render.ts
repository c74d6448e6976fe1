/**
 * Human output: colours, tables and small formatters. Loaded only on the human path (never under
 * --json), so the JSON path does not pay for chalk and cli-table3.
 *
 * @module
 */
import { Chalk, type ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import type { ServiceStatus } from '../types.js';

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

/** A plain table: no colour codes in headers or borders unless colour is on. */
export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of rows) t.push(row.map(String));
  return t.toString();
}

/** `key: value` lines with the keys aligned. */
export function fields(entries: [string, string | number | undefined | null][]): string {
  const shown = entries.filter(([, v]) => v !== undefined && v !== null && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${c.dim(`${k}:`.padEnd(width + 1))} ${String(v)}`).join('\n');
}

/** `12s ago`, `3m ago`, `2h ago`, `4d ago`; `never` for null or 0. */
export function ago(epochMs: number | null | undefined, now = Date.now()): string {
  if (!epochMs) return 'never';
  const s = Math.max(0, Math.round((now - epochMs) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export { isoTime } from '../util/time.js';

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Time left until `epochMs`: `25s`, `4m 10s`, `2h 5m`; `0s` once passed. */
export function timeLeft(epochMs: number, now = Date.now()): string {
  const s = Math.max(0, Math.ceil((epochMs - now) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
