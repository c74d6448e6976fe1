import pino from 'pino';
import { escapeUnsafe } from './text.js';

/**
 * The logger the library accepts: pino's call shape (`info(obj, msg)` or `info(msg)`), which a
 * Proxy-Stone host (Fastify's pino) already has. A console also fits.
 */
export interface Logger {
  trace?(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** `json`: one JSON object per line; `pretty`: {@link formatLogLine}; `auto`: pretty on a TTY, else JSON. */
export type LogFormat = 'json' | 'pretty' | 'auto';

/** The `DEBUG` namespace of the seed (`DEBUG=proxy-stone:service-discovery`). */
export const DEBUG_NAMESPACE = 'proxy-stone:service-discovery';

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Threshold (default `info`); `DEBUG` may lower it to `debug`, see {@link effectiveLogLevel}. */
  level?: LogLevel;
  name?: string;
  /** Where lines go (default stderr). The agent logs to stdout. */
  destination?: NodeJS.WritableStream;
  /** Default `auto`: readable lines when `destination` is a terminal, JSON lines otherwise. */
  format?: LogFormat;
  /** Colour in the pretty format; default: the destination is a terminal and `NO_COLOR` is unset. */
  color?: boolean;
  /** Environment to read `DEBUG` and `NO_COLOR` from (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
}

const LEVEL_ORDER: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/**
 * Whether a `DEBUG` value enables `namespace`, with the `debug` package's syntax that Node users know:
 * names separated by commas or spaces, `*` as a wildcard, a leading `-` to exclude
 * (`DEBUG=proxy-stone:*`, `DEBUG=*,-proxy-stone:service-discovery`).
 */
export function debugEnabled(debugValue: string | undefined, namespace: string = DEBUG_NAMESPACE): boolean {
  if (!debugValue) return false;
  const toRegExp = (pattern: string): RegExp =>
    new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*?')}$`);
  let enabled = false;
  for (const raw of debugValue.split(/[\s,]+/)) {
    if (raw === '') continue;
    if (raw.startsWith('-')) {
      if (toRegExp(raw.slice(1)).test(namespace)) return false;
    } else if (toRegExp(raw).test(namespace)) {
      enabled = true;
    }
  }
  return enabled;
}

/**
 * The level actually used: `level` (default `info`), lowered to `debug` when `DEBUG` names
 * {@link DEBUG_NAMESPACE}. `DEBUG` never raises a level: with `LOG_LEVEL=trace` it stays `trace`.
 */
export function effectiveLogLevel(level: LogLevel | undefined, env: Readonly<Record<string, string | undefined>> = process.env): LogLevel {
  const wanted = level ?? 'info';
  if (debugEnabled(env.DEBUG) && LEVEL_ORDER[wanted] > LEVEL_ORDER.debug) return 'debug';
  return wanted;
}

/**
 * JSON lines (pino) off a terminal, compact readable lines ({@link formatLogLine}) on one.
 * pino was chosen for being the logger Fastify and so Proxy-Stone already use: one format in one fleet.
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const destination = options.destination ?? process.stderr;
  const isTTY = (destination as { isTTY?: boolean }).isTTY === true;
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && isTTY);
  const color = options.color ?? (isTTY && (env.NO_COLOR === undefined || env.NO_COLOR === ''));
  const stream: pino.DestinationStream = pretty
    ? prettyStream(destination, { color })
    : (destination as unknown as pino.DestinationStream);
  return pino(
    {
      name: options.name ?? 'proxy-stone-sd',
      level: effectiveLogLevel(options.level, env),
      base: { pid: process.pid },
      // Never log credentials, whatever object a caller passes.
      redact: { paths: ['password', '*.password', 'apiKey', '*.apiKey', 'authorization', '*.authorization'], censor: '***' },
    },
    stream,
  );
}

/** A pino destination that rewrites each JSON line with {@link formatLogLine}. */
export function prettyStream(destination: NodeJS.WritableStream, options: { color?: boolean } = {}): pino.DestinationStream {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) {
        if (line === '') continue;
        let record: unknown;
        try {
          record = JSON.parse(line);
        } catch {
          destination.write(`${line}\n`);
          continue;
        }
        destination.write(
          record !== null && typeof record === 'object' ? `${formatLogLine(record as Record<string, unknown>, options)}\n` : `${line}\n`,
        );
      }
    },
  };
}

const LEVEL_LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35;1' };
/** Fields every line has, or that the layout already shows. */
const OMITTED = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'event', 'v']);

/**
 * One log record (a pino JSON object) as one readable line:
 * `14:03:07.123 INFO  registered registered proxy-stone-1 under lease 7587 (ttl 30s)  ttl=30`.
 * Time is local wall-clock time with milliseconds; the remaining fields follow as `key=value`
 * (strings with spaces quoted, objects as JSON), except strings the message already contains; an
 * error's stack follows on indented lines.
 */
export function formatLogLine(record: Readonly<Record<string, unknown>>, options: { color?: boolean } = {}): string {
  const paint = (code: string, text: string): string => (options.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const level = typeof record.level === 'number' ? record.level : LEVEL_ORDER[String(record.level) as LogLevel] ?? 30;
  const label = (LEVEL_LABELS[level] ?? (typeof record.level === 'string' ? record.level.toUpperCase() : `L${level}`)).padEnd(5);
  const parts = [paint('2', clock(record.time)), paint(LEVEL_COLORS[level] ?? '0', label)];
  if (typeof record.event === 'string' && record.event !== '') parts.push(paint('1', escapeUnsafe(record.event)));
  // Messages and fields carry registry data (ids, reasons): shown, never obeyed, by the terminal.
  if (typeof record.msg === 'string' && record.msg !== '') parts.push(escapeUnsafe(record.msg));
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const extras: string[] = [];
  let stack: string | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (OMITTED.has(key) || value === undefined) continue;
    // Compact: a string the message already shows (an id, a reason) is not repeated.
    if (typeof value === 'string' && value.length >= 4 && msg.includes(value)) continue;
    if (key === 'err' && value !== null && typeof value === 'object') {
      const err = value as { message?: unknown; stack?: unknown };
      if (typeof err.stack === 'string') stack = err.stack;
      extras.push(`err=${fieldValue(err.message ?? value)}`);
      continue;
    }
    extras.push(`${escapeUnsafe(key)}=${fieldValue(value)}`);
  }
  let line = parts.join(' ');
  if (extras.length > 0) line += `  ${paint('2', extras.join(' '))}`;
  if (stack) {
    const frames = stack.split('\n').slice(1).map((frame) => `    ${escapeUnsafe(frame.trim())}`);
    if (frames.length > 0) line += `\n${paint('2', frames.join('\n'))}`;
  }
  return line;
}

function clock(time: unknown): string {
  const date = typeof time === 'number' || typeof time === 'string' ? new Date(time) : new Date();
  if (Number.isNaN(date.getTime())) return String(time);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

function fieldValue(value: unknown): string {
  // JSON.stringify escapes C0 controls but not C1 or bidirectional ones.
  if (typeof value === 'string') return escapeUnsafe(value === '' || /[\s"=]/.test(value) ? JSON.stringify(value) : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return escapeUnsafe(JSON.stringify(value));
}
