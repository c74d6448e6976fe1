/**
 * How a configuration problem reads: one line naming the setting as it was given (the env var, flag or
 * file key), its value (secrets masked, long values cut, anything a terminal could act on escaped) and
 * where the value came from, e.g. `SERVICE_PORT=abc (env): expected an integer 1-65535`.
 *
 * @module
 */
import { escapeUnsafe } from '../util/text.js';
import { quoteValue, type Setting } from './settings.js';
import type { ConfigSource } from './types.js';

/** Exactly where a value came from. */
export interface SourceOrigin {
  source: ConfigSource;
  /** The environment variable (`SERVICE_PORT`) or flag (`--service-port`) that set the value. */
  name?: string;
  /** Absolute path of the config file that set the value. */
  file?: string;
  /** True when the value was derived from other settings (`cluster.discovery.registry`). */
  derived?: boolean;
}

/** A raw value as one source gave it, with its setting and where it came from. */
export interface Candidate {
  setting: Setting;
  raw: unknown;
  origin: SourceOrigin;
}

/** One configuration problem. */
export interface ConfigIssue {
  /** Setting path, or `''` for a problem with the config file as a whole. */
  path: string;
  source: ConfigSource;
  /** The full one-line message. */
  message: string;
}

/** Invalid configuration. `message` is the first problem on one line; `issues` holds all of them. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];

  /** `options.cause`: what showed the value unusable, when that came from outside (a failed listen). */
  constructor(issues: readonly ConfigIssue[], options?: ErrorOptions) {
    const [first] = issues;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    super(`${first?.message ?? 'invalid configuration'}${more}`, options);
    this.issues = issues;
  }
}

export const SECRET_MASK = '***';

/**
 * Shows a raw value in a message: strings as typed, others as JSON, secrets masked, long ones cut.
 * What could act on a terminal or break the one line (a newline, an escape sequence, a bidirectional
 * override) is shown as a `\u` escape, inside quotes.
 */
export function showValue(setting: Setting | undefined, raw: unknown): string {
  if (setting?.secret) return SECRET_MASK;
  let text: string;
  if (typeof raw === 'string') {
    // Quote what would otherwise be invisible or break the one-line message.
    text = quoteValue(raw);
  } else if (Array.isArray(raw) && setting?.itemKind === 'check' && raw.every((v) => typeof v === 'string')) {
    // A repeated `--check`: the URLs as typed, as the env var holds them.
    text = quoteValue(raw.join(' '));
  } else if (raw === undefined) {
    text = 'undefined';
  } else {
    text = JSON.stringify(raw) ?? String(raw);
  }
  return shortSafe(text);
}

/** One line of at most 120 characters, with nothing a terminal could act on. */
export function shortSafe(text: string): string {
  // Line and paragraph separators too: a log viewer or a JSON-lines reader may break the line there.
  const safe = escapeUnsafe(text).replace(/[\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16)}`);
  return safe.length > 120 ? `${safe.slice(0, 117)}...` : safe;
}

export function sourceText(origin: SourceOrigin): string {
  return origin.source === 'file' ? `file ${escapeUnsafe(origin.file ?? '?')}` : origin.source;
}

/** `SERVICE_PORT=abc (env)`, `--health-interval=fast (flag)`, `cluster.x=1 (file /p)`. */
function label(c: Candidate): string {
  const shown = showValue(c.setting, c.raw);
  const name = c.origin.source === 'env' || c.origin.source === 'flag' ? (c.origin.name ?? c.setting.path) : c.setting.path;
  return `${name}=${shown} (${sourceText(c.origin)})`;
}

export function issueFor(c: Candidate, text: string): ConfigIssue {
  return { path: c.setting.path, source: c.origin.source, message: `${label(c)}: ${text}` };
}

/** A problem with the config file as a whole (not found, not JSON), naming its path. */
export function fileIssue(path: string, text: string): ConfigError {
  return new ConfigError([{ path: '', source: 'file', message: `config file ${escapeUnsafe(path)}: ${text}` }]);
}
