/**
 * Shared pieces of the benchmarks: percentiles, a high-resolution wall clock, /proc readings of a
 * process, Prometheus counters (etcd's own, an agent's) and the results table.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

/** Epoch milliseconds with sub-millisecond precision, comparable across processes of this machine. */
export const now = (): number => performance.timeOrigin + performance.now();

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Nearest-rank percentile of `values` (NaN for none). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** One line of the results table. */
export interface Row {
  section: string;
  measure: string;
  /** Formatted value(s), e.g. `p50 12.3 / p99 20.1 ms`. */
  value: string;
  /** The goal or bound it is compared with, if any. */
  goal?: string;
  /** value / limit for the figure that has a goal (≤ 1 is met). */
  ratio?: number;
  /** Runs or samples behind the value. */
  n?: number;
  note?: string;
}

export function ms(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(v >= 100 ? 0 : digits) : 'n/a';
}

export function p50p99(values: readonly number[], unit = 'ms'): string {
  return `p50 ${ms(percentile(values, 50))} / p99 ${ms(percentile(values, 99))} ${unit}`;
}

/** Whether a row met its goal, for the table: `met (0.42x)`, `MISSED (1.3x)`, or blank. */
export function verdict(row: Row): string {
  if (row.ratio === undefined) return '';
  if (!Number.isFinite(row.ratio)) return 'MISSED';
  // Never "MISSED (1.00x)": a third decimal when two would round a miss (or a met) onto the goal.
  const shown = row.ratio.toFixed(2) === '1.00' && row.ratio !== 1 ? row.ratio.toFixed(3) : row.ratio.toFixed(2);
  return `${row.ratio <= 1 ? 'met' : 'MISSED'} (${shown}x)`;
}

/** Renders rows as a Markdown table. */
export function markdownTable(rows: readonly Row[]): string {
  const head = '| section | measure | result | goal | verdict | n | note |\n| --- | --- | --- | --- | --- | --- | --- |';
  const esc = (s: string | undefined) => (s ?? '').replace(/\|/g, '\\|');
  return [
    head,
    ...rows.map((r) => `| ${esc(r.section)} | ${esc(r.measure)} | ${esc(r.value)} | ${esc(r.goal)} | ${verdict(r)} | ${r.n ?? ''} | ${esc(r.note)} |`),
  ].join('\n');
}

/** Renders rows as a plain-text table for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const cols = rows.map((r) => [r.section, r.measure, r.value, r.goal ?? '', verdict(r), r.n === undefined ? '' : String(r.n)]);
  const head = ['section', 'measure', 'result', 'goal', 'verdict', 'n'];
  const widths = head.map((h, i) => Math.max(h.length, ...cols.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cols.map(line)].join('\n');
}

/** RSS, PSS and CPU ticks of a process, from /proc. */
export interface ProcSample {
  at: number;
  rssKb: number;
  pssKb: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux on every common architecture). */
export const CLOCK_TICKS = 100;

export function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  let pssKb = NaN;
  try {
    pssKb = Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
  } catch {
    // older kernels have no smaps_rollup
  }
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat; after the name, 12 and 13 (0-based 11 and 12).
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  return { at: Date.now(), rssKb, pssKb, cpuTicks };
}

/**
 * /proc reports memory in "kB" that are KiB (1024 bytes). The bench reports MB = 10^6 bytes, the unit
 * of the agent memory goal (80 MB), so a figure and its goal are in the same unit.
 */
export function kibToMb(kib: number): number {
  return (kib * 1024) / 1e6;
}

/**
 * Resident KiB of the mappings of the process's own executable, from /proc/<pid>/smaps: for node, the
 * binary's text and read-only data, mapped from disk and shared with every other node process.
 */
export function binaryRssKib(pid: number): number {
  const exe = readlinkSync(`/proc/${pid}/exe`);
  let total = 0;
  let inBinary = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    // A mapping's header: `start-end perms offset dev inode [path]`; its fields follow, one per line.
    const header = /^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line);
    if (header) {
      inBinary = header[1] === exe;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && inBinary) total += Number(rss[1]);
  }
  return total;
}

/** A Prometheus /metrics page (etcd's own, or an agent's), by metric name; labelled series are summed. */
export async function prometheusCounters(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[3]);
  }
  return out;
}

/** The machine, for the report: CPU model and count, memory, OS, load. */
export function machine(): { cpu: string; cores: number; memGiB: number; os: string; load: string } {
  let cpu = 'unknown CPU';
  try {
    cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux
  }
  let os = `${process.platform}`;
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // no os-release
  }
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return { cpu, cores: availableParallelism(), memGiB: Math.round(memKb / 1024 / 1024), os, load };
}

/** Load average right now, as `1m 5m 15m`. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
