/**
 * Configuration loading: defaults < JSON config file < environment < flags < overrides, every layer read
 * through the one settings table, the merged result validated by one zod schema. Every problem becomes a
 * {@link ConfigError} whose message is one line naming the setting, where the value came from and what
 * was expected, e.g. `SERVICE_PORT=abc (env): expected an integer 1-65535`.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import { DEFAULT_ETCD_ENDPOINT, isHostOrIp, isHttpUrl, isRedisUrl, isRegistryUrl } from '../registry/endpoint.js';
import { escapeUnsafe, UNSAFE_CHARACTER } from '../util/text.js';
import { DURATION_MAX_EXPECTATION, DurationTooLongError, MAX_DURATION_SECONDS, parseDuration } from '../util/duration.js';
import {
  CONFIG_FILE_ENV,
  CONFIG_FILE_FLAG,
  MAX_ITEMS,
  MAX_KEY_LENGTH,
  SETTINGS,
  SETTING_GROUP_PATHS,
  canonicalEnv,
  describeExpectation,
  envNames,
  maxLengthOf,
  quoteValue,
  settingByEnv,
  settingByFlag,
  settingByPath,
  textProblem,
  type Setting,
} from './settings.js';
import type { ConfigSource, SdConfig } from './types.js';

/** `T` with every property optional at every depth; arrays and their items are taken whole. */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** A parsed flag value as oclif hands it over (`multiple: true` flags give arrays). */
export type FlagValue = string | boolean | number | readonly string[] | undefined;

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

/** A resolved configuration and where each setting came from. */
export interface LoadedConfig {
  config: SdConfig;
  /** Source of every setting, keyed by dot path (`cluster.healthCheck.interval`). */
  sources: Record<string, ConfigSource>;
  /** The detail behind `sources`: which env var, flag or file. */
  origins: Record<string, SourceOrigin>;
  /** Absolute path of the config file that was read, if any. */
  configFile?: string;
  /** Valid but questionable combinations, one line each, for the caller to log. */
  warnings: string[];
}

/** Options of {@link loadConfig}. */
export interface LoadOptions {
  /**
   * Parsed flags keyed by flag name (`health-interval`). Keys that are not settings are ignored, so an
   * oclif command can pass all of its flags; a string `config` flag names the config file.
   */
  flags?: Readonly<Record<string, FlagValue>>;
  /** Environment to read; `process.env` when omitted. Empty values count as unset. */
  env?: NodeJS.ProcessEnv;
  /**
   * JSON config file. When omitted: the `config` flag, else `SERVICE_DISCOVERY_CONFIG`, else none.
   * Relative file paths inside it (TLS files) are resolved against its directory.
   */
  configFile?: string;
  /** Values set in code; they win over every other source. */
  overrides?: DeepPartial<SdConfig>;
}

/** Already-read config file content for {@link resolveConfig}. */
export interface ConfigFileContent {
  /** Path used in messages and to resolve relative file paths; made absolute. */
  path: string;
  /** The parsed JSON. */
  data: unknown;
}

/** Options of {@link resolveConfig}: {@link LoadOptions} with the config file already read. */
export interface ResolveOptions extends Omit<LoadOptions, 'configFile'> {
  file?: ConfigFileContent;
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

export { CONFIG_FILE_ENV, CONFIG_FILE_FLAG };
/** The seed's top-level key; a config file may wrap its settings in it. */
export const CONFIG_WRAPPER_KEY = 'serviceDiscoveryConfig';

const SECRET_MASK = '***';
/** A character a terminal could act on: control characters (tab and newline too), DEL, C1, bidi controls. */
const UNSAFE = new RegExp(UNSAFE_CHARACTER);
const REGISTRY_PATH = 'cluster.discovery.registry';
const ENDPOINTS_PATH = 'cluster.discovery.endpoints';

// ---------------------------------------------------------------------------------------------------
// The schema: leaves generated from the settings table, plus the cross-field rules.
// ---------------------------------------------------------------------------------------------------

/** Whether text holds a character a terminal could act on, past any surrounding whitespace (a paste's newline). */
const hasUnsafe = (text: string): boolean => UNSAFE.test(text.trim());

function leafSchema(setting: Setting): z.ZodType {
  const { min, max, minExclusive } = setting;
  const maxLength = maxLengthOf(setting) ?? Number.POSITIVE_INFINITY;
  // Every string a setting holds: no control characters, not longer than anything can use.
  const text = (base: z.ZodString = z.string(), length = maxLength) => base.max(length).refine((v) => !hasUnsafe(v));
  const bounded = (n: z.ZodNumber): z.ZodNumber => {
    let out = n;
    if (min !== undefined) out = minExclusive ? out.gt(min) : out.gte(min);
    if (max !== undefined) out = out.lte(max);
    return out;
  };
  switch (setting.kind) {
    case 'boolean':
      return z.boolean();
    case 'integer':
    case 'port':
      return bounded(z.number().int());
    case 'number':
      return bounded(z.number());
    case 'duration': {
      const seconds = bounded(z.number().gte(0)).lte(Math.min(max ?? MAX_DURATION_SECONDS, MAX_DURATION_SECONDS));
      return setting.wholeSeconds ? seconds.int() : seconds;
    }
    case 'string':
      return text(setting.pattern ? z.string().regex(setting.pattern) : z.string().min(1));
    case 'url':
      return text().refine(isHttpUrl);
    case 'host':
      return text().refine(isHostOrIp);
    case 'list':
      return z
        .array(
          setting.itemKind === 'url'
            ? text().refine(isHttpUrl)
            : setting.itemKind === 'registryUrl'
              ? text().refine(isRegistryUrl)
              : text(z.string().min(1)),
        )
        .max(MAX_ITEMS);
    case 'enum': {
      const [first, ...rest] = setting.enumValues ?? [];
      if (first === undefined) throw new Error(`setting ${setting.path}: enum without values`);
      return z.enum([first, ...rest]);
    }
    case 'keyvalue':
      return z
        .record(text(z.string().min(1), MAX_KEY_LENGTH).refine((k) => k !== '__proto__'), text())
        .refine((r) => Object.keys(r).length <= MAX_ITEMS);
  }
}

// The registry always has a value after resolution (derived when no source sets it).
const isOptional = (s: Setting): boolean => s.default === undefined && s.path !== REGISTRY_PATH;

function groupSchema(prefix: string): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  const depth = prefix ? prefix.split('.').length : 0;
  for (const setting of SETTINGS) {
    if (prefix && !setting.path.startsWith(`${prefix}.`)) continue;
    const key = setting.path.split('.')[depth]!;
    if (key in shape) continue;
    const childPath = prefix ? `${prefix}.${key}` : key;
    if (childPath === setting.path) {
      shape[key] = isOptional(setting) ? leafSchema(setting).optional() : leafSchema(setting);
    } else {
      const child = groupSchema(childPath);
      const allOptional = SETTINGS.filter((s) => s.path.startsWith(`${childPath}.`)).every(isOptional);
      shape[key] = allOptional ? child.optional() : child;
    }
  }
  return z.strictObject(shape);
}

/** A rule between settings; a violation is reported on `path`, naming the other setting and its value. */
interface CrossRule {
  id: string;
  path: string;
  violated(c: SdConfig): boolean;
  message(c: SdConfig): string;
  /**
   * The same rule said about the other setting it involves, used when `path` was left at its default
   * and the other one was set: the message then names what the user actually gave.
   */
  other?: { path: string; message(c: SdConfig): string };
}

const mention = (path: string): string => {
  const s = settingByPath(path);
  return s ? `${path} (--${s.flag} / ${canonicalEnv(s)})` : path;
};

const CROSS_RULES: readonly CrossRule[] = [
  {
    id: 'renew-below-ttl',
    path: 'cluster.leaderElection.renewInterval',
    violated: (c) => c.cluster.leaderElection.renewInterval >= c.cluster.leaderElection.ttl,
    message: (c) => `must be less than cluster.leaderElection.ttl (${c.cluster.leaderElection.ttl})`,
    other: {
      path: 'cluster.leaderElection.ttl',
      message: (c) => `must be more than ${mention('cluster.leaderElection.renewInterval')}, ${c.cluster.leaderElection.renewInterval}`,
    },
  },
  {
    id: 'etcd-needs-http-endpoints',
    path: ENDPOINTS_PATH,
    violated: (c) => c.cluster.discovery.registry === 'etcd' && c.cluster.discovery.endpoints.some(isRedisUrl),
    message: () => `holds a redis:// URL but ${mention(REGISTRY_PATH)} is etcd: expected http(s) etcd URLs, or set the registry to redis`,
  },
  {
    id: 'redis-needs-endpoint',
    path: REGISTRY_PATH,
    violated: (c) => c.cluster.discovery.registry === 'redis' && c.cluster.discovery.endpoints.length === 0,
    message: () => `requires one redis:// or rediss:// URL in ${mention(ENDPOINTS_PATH)}`,
  },
  {
    id: 'redis-needs-one-redis-url',
    path: ENDPOINTS_PATH,
    violated: (c) =>
      c.cluster.discovery.registry === 'redis' &&
      c.cluster.discovery.endpoints.length > 0 &&
      (c.cluster.discovery.endpoints.length !== 1 || !isRedisUrl(c.cluster.discovery.endpoints[0]!)),
    message: () => 'expected exactly one redis:// or rediss:// URL with the redis registry (e.g. redis://127.0.0.1:6379)',
  },
  {
    id: 'cert-needs-key',
    path: 'cluster.discovery.tls.cert',
    violated: (c) => c.cluster.discovery.tls?.cert !== undefined && c.cluster.discovery.tls.key === undefined,
    message: () => `requires ${mention('cluster.discovery.tls.key')}`,
  },
  {
    id: 'key-needs-cert',
    path: 'cluster.discovery.tls.key',
    violated: (c) => c.cluster.discovery.tls?.key !== undefined && c.cluster.discovery.tls.cert === undefined,
    message: () => `requires ${mention('cluster.discovery.tls.cert')}`,
  },
  {
    id: 'username-needs-password',
    path: 'cluster.discovery.username',
    violated: (c) => c.cluster.discovery.username !== undefined && c.cluster.discovery.password === undefined,
    message: () => `requires ${mention('cluster.discovery.password')}`,
  },
  {
    id: 'password-needs-username',
    path: 'cluster.discovery.password',
    // Redis's `requirepass` is a password without a user name.
    violated: (c) =>
      c.cluster.discovery.registry !== 'redis' && c.cluster.discovery.password !== undefined && c.cluster.discovery.username === undefined,
    message: () => `requires ${mention('cluster.discovery.username')}`,
  },
  {
    id: 'api-cert-needs-key',
    path: 'api.tls.cert',
    violated: (c) => c.api.tls?.cert !== undefined && c.api.tls.key === undefined,
    message: () => `requires ${mention('api.tls.key')}`,
  },
  {
    id: 'api-key-needs-cert',
    path: 'api.tls.key',
    violated: (c) => c.api.tls?.key !== undefined && c.api.tls.cert === undefined,
    message: () => `requires ${mention('api.tls.cert')}`,
  },
  {
    // Client certificates are only asked for during a TLS handshake, so a CA without HTTPS would
    // silently protect nothing.
    id: 'api-ca-needs-tls',
    path: 'api.tls.ca',
    violated: (c) => c.api.tls?.ca !== undefined && (c.api.tls.cert === undefined || c.api.tls.key === undefined),
    message: () => `requires ${mention('api.tls.cert')} and ${mention('api.tls.key')}`,
  },
  {
    // Without any key nobody could read: refuse the lock-out at startup rather than 401 every request.
    id: 'viewer-needs-a-key',
    path: 'api.readAccess',
    violated: (c) => c.api.readAccess === 'viewer' && c.api.apiKey === undefined && c.api.keyFile === undefined,
    message: () => `requires an API key: set ${mention('api.apiKey')} or ${mention('api.keyFile')}, or make reads open`,
  },
];

/**
 * The one schema of a resolved {@link SdConfig}: each leaf built from its row in `SETTINGS` (kind, range,
 * pattern), unknown keys rejected, plus the cross-field rules (renewInterval < ttl, etcd takes http(s)
 * endpoints, TLS cert and key together, username and password together, an API TLS CA only with HTTPS, `viewer`
 * read access only with a key). Values must already be converted
 * (durations in seconds, lists as arrays); use {@link configFromPartial} to convert and validate.
 */
export const sdConfigSchema: z.ZodType<SdConfig> = (groupSchema('') as unknown as z.ZodType<SdConfig>).superRefine(
  (config, ctx) => {
    for (const rule of CROSS_RULES) {
      if (rule.violated(config)) {
        ctx.addIssue({
          code: 'custom',
          path: rule.path.split('.'),
          message: rule.message(config),
          params: { rule: rule.id, ...(rule.other ? { other: rule.other.path, otherMessage: rule.other.message(config) } : {}) },
        });
      }
    }
  },
);

// ---------------------------------------------------------------------------------------------------
// Reading the layers into candidates (raw values with their origin).
// ---------------------------------------------------------------------------------------------------

interface Candidate {
  setting: Setting;
  raw: unknown;
  origin: SourceOrigin;
}

type Layer = Map<string, Candidate>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Shows a raw value in a message: strings as typed, others as JSON, secrets masked, long ones cut.
 * What could act on a terminal or break the one line (a newline, an escape sequence, a bidirectional
 * override) is shown as a `\u` escape, inside quotes.
 */
function showValue(setting: Setting | undefined, raw: unknown): string {
  if (setting?.secret) return SECRET_MASK;
  let text: string;
  if (typeof raw === 'string') {
    // Quote what would otherwise be invisible or break the one-line message.
    text = quoteValue(raw);
  } else if (raw === undefined) {
    text = 'undefined';
  } else {
    text = JSON.stringify(raw) ?? String(raw);
  }
  return shortSafe(text);
}

/** One line of at most 120 characters, with nothing a terminal could act on. */
function shortSafe(text: string): string {
  // Line and paragraph separators too: a log viewer or a JSON-lines reader may break the line there.
  const safe = escapeUnsafe(text).replace(/[\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16)}`);
  return safe.length > 120 ? `${safe.slice(0, 117)}...` : safe;
}

function sourceText(origin: SourceOrigin): string {
  return origin.source === 'file' ? `file ${escapeUnsafe(origin.file ?? '?')}` : origin.source;
}

/** `SERVICE_PORT=abc (env)`, `--health-interval=fast (flag)`, `cluster.x=1 (file /p)`. */
function label(c: Candidate): string {
  const shown = showValue(c.setting, c.raw);
  const name = c.origin.source === 'env' || c.origin.source === 'flag' ? (c.origin.name ?? c.setting.path) : c.setting.path;
  return `${name}=${shown} (${sourceText(c.origin)})`;
}

function issueFor(c: Candidate, text: string): ConfigIssue {
  return { path: c.setting.path, source: c.origin.source, message: `${label(c)}: ${text}` };
}

function defaultsLayer(): Layer {
  const layer: Layer = new Map();
  for (const setting of SETTINGS) {
    if (setting.default === undefined) continue;
    layer.set(setting.path, { setting, raw: structuredClone(setting.default), origin: { source: 'default' } });
  }
  return layer;
}

function envLayer(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = new Map();
  for (const setting of SETTINGS) {
    for (const name of envNames(setting)) {
      const value = env[name];
      // Empty counts as unset: compose files and templates often produce `VAR=`.
      if (value === undefined || value.trim() === '') continue;
      layer.set(setting.path, { setting, raw: value, origin: { source: 'env', name } });
      break;
    }
  }
  return layer;
}

function flagLayer(flags: Readonly<Record<string, FlagValue>>, issues: ConfigIssue[]): Layer {
  const layer: Layer = new Map();
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    let setting = settingByFlag(key);
    let raw: unknown = value;
    if (!setting && key.startsWith('no-')) {
      // `{ 'no-api': true }` from a parser that kept the negated name.
      const positive = settingByFlag(key.slice(3));
      if (positive?.kind === 'boolean' && typeof value === 'boolean') {
        setting = positive;
        raw = !value;
      }
    }
    if (!setting) continue; // not a setting (e.g. --config, --json): the command's own business
    const candidate: Candidate = { setting, raw, origin: { source: 'flag', name: `--${key}` } };
    const other = layer.get(setting.path);
    // Two names of one setting (`--etcd-password`, `--registry-password`): the same value twice is
    // harmless, different values have no winner to pick.
    if (other && !sameValue(other.raw, raw)) issues.push(aliasConflict(other, candidate));
    if (!other) layer.set(setting.path, candidate);
  }
  return layer;
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** `--etcd-ca=/a.pem and --registry-ca=/b.pem (flag): ...`, secrets masked. */
function aliasConflict(first: Candidate, second: Candidate): ConfigIssue {
  const shown = (c: Candidate) => `${c.origin.name ?? c.setting.path}=${showValue(c.setting, c.raw)}`;
  return {
    path: first.setting.path,
    source: second.origin.source,
    message: `${shown(first)} and ${shown(second)} (${sourceText(second.origin)}): both set ${first.setting.path} and the values differ; give one of them`,
  };
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

const KNOWN_PATHS: readonly string[] = [...SETTINGS.map((s) => s.path), ...SETTING_GROUP_PATHS];

/** A "did you mean" for an unknown key path, if there is a plausible one. */
function suggest(path: string): string | undefined {
  const lower = path.toLowerCase();
  const exactCase = KNOWN_PATHS.find((p) => p.toLowerCase() === lower);
  if (exactCase) return exactCase;
  const parts = path.split('.');
  const key = parts[parts.length - 1]!;
  // Someone pasted an env var name as a key.
  const byEnv = settingByEnv(key.toUpperCase());
  if (byEnv) return byEnv.path;
  const parent = parts.slice(0, -1).join('.');
  const siblings = KNOWN_PATHS.filter((p) => p.slice(0, p.lastIndexOf('.') === -1 ? 0 : p.lastIndexOf('.')) === parent);
  const limit = Math.max(2, Math.floor(key.length / 3));
  let best: { path: string; distance: number } | undefined;
  for (const candidate of siblings) {
    const name = candidate.split('.').pop()!.toLowerCase();
    const distance = levenshtein(key.toLowerCase(), name);
    if (distance <= limit && (!best || distance < best.distance)) best = { path: candidate, distance };
  }
  if (best) return best.path;
  // The right key in the wrong object (`service.ttl`).
  const sameName = SETTINGS.filter((s) => s.path.split('.').pop() === key).map((s) => s.path);
  return sameName.length > 0 ? sameName.join(' or ') : undefined;
}

/** Reads a nested object (config file, overrides) into a layer, reporting keys that are not settings. */
function structuredLayer(data: Record<string, unknown>, origin: SourceOrigin, issues: ConfigIssue[]): Layer {
  const layer: Layer = new Map();
  const where = sourceText(origin);
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [key, value] of Object.entries(obj)) {
      if (!prefix && key === '$schema') continue; // editors' JSON-schema hint
      if (!prefix && key === CONFIG_WRAPPER_KEY && isPlainObject(value)) {
        walk(value, '');
        continue;
      }
      if (value === undefined) continue;
      const path = prefix ? `${prefix}.${key}` : key;
      const setting = settingByPath(path);
      if (setting) {
        // null unsets an optional setting; a setting with a default has no "unset".
        if (value === null && setting.default === undefined) continue;
        layer.set(path, { setting, raw: value, origin });
      } else if (SETTING_GROUP_PATHS.has(path)) {
        if (isPlainObject(value)) walk(value, path);
        else issues.push({ path, source: origin.source, message: `${path}=${showValue(undefined, value)} (${where}): expected an object` });
      } else {
        const hint = suggest(path);
        issues.push({
          path,
          source: origin.source,
          message: `${shortSafe(path)} (${where}): unknown setting${hint ? `; did you mean ${hint}?` : ''}`,
        });
      }
    }
  };
  walk(data, '');
  return layer;
}

// ---------------------------------------------------------------------------------------------------
// Converting raw values per kind.
// ---------------------------------------------------------------------------------------------------

/** A failed conversion says why in `text`, or replaces the setting's usual expectation with `expected`. */
type Conversion = { ok: true; value: unknown } | { ok: false; text?: string; expected?: string };

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

function splitList(raw: unknown): string[] | undefined {
  if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  // In a file an array is taken item by item; an empty item is reported by the schema, not dropped.
  if (Array.isArray(raw) && raw.every((item): item is string => typeof item === 'string')) return raw.map((s) => s.trim());
  return undefined;
}

function convert(c: Candidate): Conversion {
  const { setting, origin } = c;
  // Repeated flags (`multiple: true`) arrive as arrays: read them like one comma-separated value.
  const raw = Array.isArray(c.raw) && (origin.source === 'env' || origin.source === 'flag') ? c.raw.join(',') : c.raw;
  const fail: Conversion = { ok: false };
  switch (setting.kind) {
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (typeof raw !== 'string') return fail;
      const word = raw.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return { ok: true, value: true };
      if (FALSE_WORDS.has(word)) return { ok: true, value: false };
      return fail;
    }
    case 'integer':
    case 'port':
    case 'number': {
      if (typeof raw === 'number') return { ok: true, value: raw };
      if (typeof raw !== 'string') return fail;
      const text = raw.trim();
      const re = setting.kind === 'number' ? /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/ : /^[+-]?\d+$/;
      return re.test(text) ? { ok: true, value: Number(text) } : fail;
    }
    case 'duration': {
      if (typeof raw !== 'number' && typeof raw !== 'string') return fail;
      try {
        return { ok: true, value: parseDuration(raw) };
      } catch (err) {
        return err instanceof DurationTooLongError ? { ok: false, expected: DURATION_MAX_EXPECTATION } : fail;
      }
    }
    case 'string':
    case 'url':
    case 'host':
    case 'enum': {
      if (typeof raw !== 'string') return fail;
      // Secrets are taken verbatim; a trailing space may be part of a password.
      let value = setting.secret ? raw : raw.trim();
      const unusable = unusableText(setting, value, 'value');
      if (unusable) return unusable;
      if (setting.kind === 'enum') value = value.toLowerCase();
      // Paths in a config file are relative to the file, as in kubeconfig.
      if (setting.file && origin.source === 'file' && origin.file && value !== '') {
        value = resolvePath(dirname(origin.file), value);
      }
      return { ok: true, value };
    }
    case 'list': {
      const items = splitList(raw);
      if (!items) return fail;
      if (items.length > MAX_ITEMS) return { ok: false, expected: `at most ${MAX_ITEMS} items (got ${items.length})` };
      for (const item of items) {
        const unusable = unusableText(setting, item, 'item');
        if (unusable) return unusable;
      }
      return { ok: true, value: items };
    }
    case 'keyvalue': {
      let pairs: [string, string][];
      if (isPlainObject(raw)) {
        pairs = [];
        for (const [k, v] of Object.entries(raw)) {
          if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return fail;
          pairs.push([k.trim(), String(v)]);
        }
      } else {
        const items = splitList(raw);
        if (!items) return fail;
        pairs = [];
        for (const item of items) {
          if (item === '') continue;
          const eq = item.indexOf('=');
          if (eq <= 0) return { ok: false, text: `"${shortSafe(item)}" is not key=value` };
          pairs.push([item.slice(0, eq).trim(), item.slice(eq + 1).trim()]);
        }
      }
      if (pairs.length > MAX_ITEMS) return { ok: false, expected: `at most ${MAX_ITEMS} key=value pairs (got ${pairs.length})` };
      // A null-prototype object: `__proto__` would otherwise be silently dropped; it is refused instead.
      const out: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [k, v] of pairs) {
        if (k === '__proto__') return { ok: false, text: '"__proto__" is not a usable key' };
        const unusable = unusableText(setting, k, 'key') ?? unusableText(setting, v, 'pair value');
        if (unusable) return unusable;
        out[k] = v;
      }
      return { ok: true, value: { ...out } };
    }
  }
}

/** {@link textProblem} as a failed conversion. */
function unusableText(setting: Setting, text: string, part: 'value' | 'item' | 'key' | 'pair value'): Conversion | undefined {
  const problem = textProblem(setting, text, part);
  if (!problem) return undefined;
  return { ok: false, ...(problem.reason !== undefined ? { text: problem.reason } : {}), ...(problem.expected !== undefined ? { expected: problem.expected } : {}) };
}

function setIn(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (isPlainObject(next)) node = next;
    else node = node[part] = {};
  }
  node[parts[parts.length - 1]!] = value;
}

function getIn(source: unknown, path: string): unknown {
  let node: unknown = source;
  for (const part of path.split('.')) {
    if (!isPlainObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

function checkFile(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return 'not a file';
    accessSync(path, fsConstants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'file not found' : `file not readable (${code ?? 'error'})`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Resolution.
// ---------------------------------------------------------------------------------------------------

function resolveLayers(layers: readonly Layer[], structureIssues: readonly ConfigIssue[]): LoadedConfig {
  const issues: ConfigIssue[] = [...structureIssues];

  // The strongest source wins; values it overrides are never looked at, so a flag can fix a bad env var.
  const winners = new Map<string, Candidate>();
  for (const layer of layers) for (const [path, c] of layer) winners.set(path, c);

  const values = new Map<string, unknown>();
  for (const setting of SETTINGS) {
    const c = winners.get(setting.path);
    if (!c) continue;
    const result = convert(c);
    if (result.ok) values.set(setting.path, result.value);
    else {
      const expected = `expected ${result.expected ?? describeExpectation(setting, { range: false })}`;
      issues.push(issueFor(c, result.text ? `${expected}; ${result.text}` : expected));
    }
  }
  const origins: Record<string, SourceOrigin> = {};
  for (const setting of SETTINGS) origins[setting.path] = winners.get(setting.path)?.origin ?? { source: 'default' };

  // No registry named: redis for redis:// endpoints, else etcd. The memory registry shares nothing
  // between agents, so it is used only when named, never by default.
  const endpoints = values.get(ENDPOINTS_PATH);
  const noEndpoints = endpoints === undefined ? !winners.has(ENDPOINTS_PATH) : Array.isArray(endpoints) && endpoints.length === 0;
  if (!values.has(REGISTRY_PATH)) {
    const redis = !noEndpoints && Array.isArray(endpoints) && endpoints.every((e) => typeof e === 'string' && isRedisUrl(e));
    values.set(REGISTRY_PATH, redis ? 'redis' : 'etcd');
    origins[REGISTRY_PATH] = { source: 'default', derived: true };
  }
  // etcd without endpoints: etcd on this host, where the CLI looks too (the seed's example config).
  if (values.get(REGISTRY_PATH) === 'etcd' && noEndpoints) {
    values.set(ENDPOINTS_PATH, [DEFAULT_ETCD_ENDPOINT]);
    origins[ENDPOINTS_PATH] = { source: 'default' };
  }

  // Values that failed conversion are left out: their issue is known, the schema just reports them missing.
  const input: Record<string, unknown> = {};
  for (const [path, value] of values) if (value !== undefined) setIn(input, path, value);

  const parsed = sdConfigSchema.safeParse(input);
  if (!parsed.success || issues.length > 0) {
    const reported = new Set(issues.map((i) => i.path));
    const leafIssues: ConfigIssue[] = [];
    const crossIssues: ConfigIssue[] = [];
    for (const zodIssue of parsed.error?.issues ?? []) {
      const { issue, cross } = schemaIssue(zodIssue, input, winners, origins);
      if (reported.has(issue.path)) continue; // one line per setting
      // A group whose every value failed conversion is missing from the input: its settings said why.
      if (!settingByPath(issue.path) && [...reported].some((p) => p.startsWith(`${issue.path}.`))) continue;
      reported.add(issue.path);
      (cross ? crossIssues : leafIssues).push(issue);
    }
    // A rule between values that are themselves invalid (ttl=0 vs renewInterval) would only add noise.
    const all = [...issues, ...leafIssues];
    throw new ConfigError(sortIssues(all.length > 0 ? all : crossIssues));
  }
  const config = parsed.data;

  for (const setting of SETTINGS) {
    if (!setting.file) continue;
    const value = getIn(config, setting.path);
    const c = winners.get(setting.path);
    if (typeof value !== 'string' || !c) continue;
    const problem = checkFile(value);
    if (problem) issues.push(issueFor(c, problem));
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const sources: Record<string, ConfigSource> = {};
  for (const [path, origin] of Object.entries(origins)) sources[path] = origin.source;
  return { config, sources, origins, warnings: warningsFor(config, origins) };
}

const SETTING_INDEX = new Map<string, number>(SETTINGS.map((s, i) => [s.path, i]));

/** Problems with the file's structure first, then in settings-table order. */
function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const rank = (i: ConfigIssue): number => SETTING_INDEX.get(i.path) ?? -1;
  return [...issues].sort((a, b) => rank(a) - rank(b));
}

/** Maps a zod issue to a one-line issue on the setting it concerns; `cross` for cross-field rules. */
function schemaIssue(
  issue: z.core.$ZodIssue,
  input: Record<string, unknown>,
  winners: ReadonlyMap<string, Candidate>,
  origins: Readonly<Record<string, SourceOrigin>>,
): { issue: ConfigIssue; cross: boolean } {
  // The issue path may point inside a leaf (a list item, a metadata key): find the setting it belongs to.
  const parts = issue.path.map(String);
  let setting: Setting | undefined;
  let depth = parts.length;
  while (depth > 0 && !(setting = settingByPath(parts.slice(0, depth).join('.')))) depth--;
  if (!setting) {
    const path = parts.join('.');
    return { issue: { path, source: 'default', message: `${path || 'configuration'}: ${issue.message}` }, cross: false };
  }

  const candidateOf = (s: Setting): Candidate => {
    const c = winners.get(s.path);
    // Derived values (the registry) have no candidate: show the value that was derived.
    return c ?? { setting: s, raw: getIn(input, s.path), origin: origins[s.path] ?? { source: 'default' } };
  };

  // Cross-field rules carry their own message, already naming the other setting.
  const params = issue.code === 'custom' ? (issue.params as { rule?: unknown; other?: unknown; otherMessage?: unknown } | undefined) : undefined;
  if (CROSS_RULES.some((r) => r.id === params?.rule)) {
    // Said about the setting the user gave, when the rule's own one is a default.
    const other = typeof params?.other === 'string' ? settingByPath(params.other) : undefined;
    const given = (path: string): boolean => (winners.get(path)?.origin.source ?? 'default') !== 'default';
    if (other && typeof params?.otherMessage === 'string' && !given(setting.path) && given(other.path)) {
      return { issue: issueFor(candidateOf(other), params.otherMessage), cross: true };
    }
    return { issue: issueFor(candidateOf(setting), issue.message), cross: true };
  }

  const value = getIn(input, setting.path);
  const tooLong = setting.kind === 'duration' && typeof value === 'number' && value > MAX_DURATION_SECONDS;
  let text = `expected ${tooLong ? DURATION_MAX_EXPECTATION : describeExpectation(setting)}`;
  const item = parts[depth]; // index of the offending list item, when the issue is inside the list
  if (setting.kind === 'list' && item !== undefined && Array.isArray(value) && value.length > 1) {
    text += `; got ${JSON.stringify(value[Number(item)])}`;
  }
  return { issue: issueFor(candidateOf(setting), text), cross: false };
}

function warningsFor(config: SdConfig, origins: Readonly<Record<string, SourceOrigin>>): string[] {
  const warnings: string[] = [];
  const { discovery, leaderElection } = config.cluster;
  if (discovery.registry === 'etcd' && leaderElection.ttl < 2) {
    warnings.push(`cluster.leaderElection.ttl=${leaderElection.ttl}: etcd 3.4 raises lease TTLs below 2 s to 2 s`);
  }
  if (discovery.registry === 'memory' && discovery.endpoints.length > 0 && !origins[REGISTRY_PATH]?.derived) {
    warnings.push(`${ENDPOINTS_PATH} is set but ${REGISTRY_PATH} is memory: the endpoints are not used`);
  }
  return warnings;
}

// ---------------------------------------------------------------------------------------------------
// Public entry points.
// ---------------------------------------------------------------------------------------------------

function fileIssue(path: string, text: string): ConfigError {
  return new ConfigError([{ path: '', source: 'file', message: `config file ${escapeUnsafe(path)}: ${text}` }]);
}

/**
 * Reads and parses a JSON config file. Errors are one-line {@link ConfigError}s naming the absolute path;
 * a JSON syntax error gives line and column but never echoes file content (it may hold a password).
 */
export async function readConfigFile(file: string): Promise<ConfigFileContent> {
  const path = resolvePath(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw fileIssue(path, 'not found');
    if (code === 'EISDIR') throw fileIssue(path, 'is a directory, expected a JSON file');
    throw fileIssue(path, `cannot be read (${code ?? String(err)})`);
  }
  text = text.replace(/^\uFEFF/, '');
  try {
    return { path, data: JSON.parse(text) as unknown };
  } catch {
    const where = locateJsonError(text);
    throw fileIssue(path, where ? `invalid JSON at line ${where.line} column ${where.column}: ${where.reason}` : 'invalid JSON');
  }
}

/**
 * Resolves the configuration from already-read sources, synchronously. Precedence, lowest first:
 * defaults, `file`, `env` (`process.env` when omitted), `flags`, `overrides`.
 *
 * @throws ConfigError on the first problem (all of them in `issues`)
 */
export function resolveConfig(options: ResolveOptions = {}): LoadedConfig {
  const structureIssues: ConfigIssue[] = [];
  const layers: Layer[] = [defaultsLayer()];
  let configFile: string | undefined;
  if (options.file) {
    configFile = resolvePath(options.file.path);
    if (!isPlainObject(options.file.data)) throw fileIssue(configFile, 'expected a JSON object at the top level');
    layers.push(structuredLayer(options.file.data, { source: 'file', file: configFile }, structureIssues));
  }
  layers.push(envLayer(options.env ?? process.env));
  if (options.flags) layers.push(flagLayer(options.flags, structureIssues));
  if (options.overrides !== undefined) {
    if (!isPlainObject(options.overrides)) {
      throw new ConfigError([{ path: '', source: 'override', message: 'overrides: expected an object' }]);
    }
    layers.push(structuredLayer(options.overrides, { source: 'override' }, structureIssues));
  }
  const loaded = resolveLayers(layers, structureIssues);
  return configFile === undefined ? loaded : { ...loaded, configFile };
}

/**
 * Loads the configuration: defaults < JSON config file < environment < flags < overrides.
 * The config file is `options.configFile`, else a string `config` flag, else `SERVICE_DISCOVERY_CONFIG`.
 *
 * @throws ConfigError with a one-line message naming the setting, its source and the expectation
 */
export async function loadConfig(options: LoadOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const flagFile = options.flags?.[CONFIG_FILE_FLAG];
  const envFile = env[CONFIG_FILE_ENV]?.trim();
  const configFile = options.configFile ?? (typeof flagFile === 'string' ? flagFile : undefined) ?? (envFile || undefined);
  const file = configFile === undefined ? undefined : await readConfigFile(configFile);
  return resolveConfig({ ...options, env, ...(file ? { file } : {}) });
}

/**
 * Builds a validated {@link SdConfig} from a nested object as the seed's `new ProxyStoneServiceDiscovery(config)`
 * takes it: missing settings get their defaults; the environment is not read. Durations may be numbers
 * of seconds or strings such as `"500ms"`.
 *
 * @throws ConfigError naming the setting, e.g. `cluster.healthCheck.retries=0 (override): expected an integer >= 1`
 */
export function configFromPartial(partial: DeepPartial<SdConfig> = {}): SdConfig {
  return resolveConfig({ env: {}, overrides: partial }).config;
}

/**
 * Says where a setting's value came from: `default`, `default (derived)`, `file /etc/sd.json`,
 * `env SERVICE_PORT`, `flag --service-port` or `override`. Given a {@link LoadedConfig}, names the exact
 * env var, flag and file; given only `sources`, the setting's canonical env var and flag.
 *
 * @throws Error when `path` is not a setting
 */
export function describeSource(path: string, sources: Readonly<Record<string, ConfigSource>> | LoadedConfig): string {
  const setting = settingByPath(path);
  if (!setting) throw new Error(`unknown setting ${path}`);
  const loaded = 'origins' in sources && 'config' in sources ? (sources as LoadedConfig) : undefined;
  const origin: SourceOrigin = loaded
    ? (loaded.origins[path] ?? { source: 'default' })
    : { source: (sources as Readonly<Record<string, ConfigSource>>)[path] ?? 'default' };
  switch (origin.source) {
    case 'env':
      return `env ${origin.name ?? canonicalEnv(setting)}`;
    case 'flag':
      return `flag ${origin.name ?? `--${setting.flag}`}`;
    case 'file':
      return origin.file ? `file ${origin.file}` : 'file';
    case 'default':
      return origin.derived ? 'default (derived)' : 'default';
    case 'override':
      return 'override';
  }
}

/**
 * A problem with one setting's value found after loading (its host does not resolve, its port is
 * taken), as a {@link ConfigError} labelled like every other: the env var, flag or file key that set
 * it, e.g. `SERVICE_DISCOVERY_API_HOST=no-such-host (env): expected …`.
 *
 * @throws Error when `path` is not a setting
 */
export function settingError(loaded: LoadedConfig, path: string, text: string, cause?: unknown): ConfigError {
  const setting = settingByPath(path);
  if (!setting) throw new Error(`unknown setting ${path}`);
  const origin = loaded.origins[path] ?? { source: 'default' };
  return new ConfigError([issueFor({ setting, raw: getIn(loaded.config, path), origin }, text)], cause === undefined ? undefined : { cause });
}

/** A copy of `config` with every secret setting that is set replaced by `***`, safe to log or print. */
export function redactConfig(config: SdConfig): SdConfig {
  const copy = structuredClone(config);
  for (const setting of SETTINGS) {
    if (setting.secret && getIn(copy, setting.path) !== undefined) setIn(copy as unknown as Record<string, unknown>, setting.path, SECRET_MASK);
  }
  return copy;
}

// ---------------------------------------------------------------------------------------------------
// JSON error location (JSON.parse messages can quote the file, which may hold secrets).
// ---------------------------------------------------------------------------------------------------

interface JsonErrorLocation {
  line: number;
  column: number;
  reason: string;
}

/** Finds the first syntax error in `text`, or undefined if it finds none. */
function locateJsonError(text: string): JsonErrorLocation | undefined {
  let i = 0;
  class Stop {
    constructor(readonly reason: string) {}
  }
  const stop = (reason: string): never => {
    throw new Stop(reason);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const describeChar = (): string => (i >= text.length ? 'unexpected end of file' : `unexpected character ${JSON.stringify(text[i])}`);
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) stop('unterminated string');
      const ch = text.charCodeAt(i);
      if (ch === 0x22) {
        i++;
        return;
      }
      if (ch < 0x20) stop('control character in string');
      i += ch === 0x5c ? 2 : 1;
    }
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') stop(`expected a double-quoted property name, ${describeChar()}`);
        str();
        ws();
        if (text[i] !== ':') stop(`expected ':', ${describeChar()}`);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        stop(`expected ',' or '}', ${describeChar()}`);
      }
    }
    if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        stop(`expected ',' or ']', ${describeChar()}`);
      }
    }
    if (ch === '"') return str();
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) {
      i = NUMBER.lastIndex;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    stop(i >= text.length ? 'unexpected end of file' : describeChar());
  };
  try {
    value();
    ws();
    if (i < text.length) stop('unexpected content after the JSON value');
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) return undefined; // e.g. stack overflow on absurd nesting
    const before = text.slice(0, Math.min(i, text.length));
    const line = before.split('\n').length;
    const column = i - (before.lastIndexOf('\n') + 1) + 1;
    return { line, column, reason: err.reason };
  }
}
