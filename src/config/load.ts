/**
 * Configuration loading: defaults < JSON config file < environment < flags < overrides, every layer read
 * through the one settings table, the merged result validated by one zod schema. Every problem becomes a
 * {@link ConfigError} whose message is one line naming the setting, where the value came from and what
 * was expected, e.g. `SERVICE_PORT=abc (env): expected an integer 1-65535`.
 *
 * This module holds the entry points and the resolution; the pieces live beside it: `layers.ts` (reading
 * each source), `convert.ts` (raw values per kind), `schema.ts` (the schema and its rules), `errors.ts`
 * (how a problem reads) and `config-file.ts` (reading the JSON file).
 *
 * @module
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { DEFAULT_ETCD_ENDPOINT, isRedisUrl } from '../registry/endpoint.js';
import { readConfigFile, type ConfigFileContent } from './config-file.js';
import { convert } from './convert.js';
import { ConfigError, fileIssue, issueFor, SECRET_MASK, type Candidate, type ConfigIssue, type SourceOrigin } from './errors.js';
import { defaultsLayer, envLayer, flagLayer, structuredLayer, type FlagValue, type Layer } from './layers.js';
import { getIn, isPlainObject, setIn } from './object-path.js';
import { ENDPOINTS_PATH, REGISTRY_PATH, schemaIssue, sdConfigSchema } from './schema.js';
import { CONFIG_FILE_ENV, CONFIG_FILE_FLAG, SETTINGS, canonicalEnv, describeExpectation, settingByPath } from './settings.js';
import type { ConfigSource, SdConfig } from './types.js';

export { ConfigError, type ConfigIssue, type SourceOrigin } from './errors.js';
export { CONFIG_WRAPPER_KEY, type FlagValue } from './layers.js';
export { readConfigFile, type ConfigFileContent } from './config-file.js';
export { sdConfigSchema } from './schema.js';
export { CONFIG_FILE_ENV, CONFIG_FILE_FLAG };

/** `T` with every property optional at every depth; arrays and their items are taken whole. */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

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

/** Options of {@link resolveConfig}: {@link LoadOptions} with the config file already read. */
export interface ResolveOptions extends Omit<LoadOptions, 'configFile'> {
  file?: ConfigFileContent;
}

// ---------------------------------------------------------------------------------------------------
// Resolution.
// ---------------------------------------------------------------------------------------------------

/** Why a file a setting names (a TLS file) cannot be used, if it cannot. */
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

function warningsFor(config: SdConfig, origins: Readonly<Record<string, SourceOrigin>>): string[] {
  const warnings: string[] = [];
  const { discovery, leaderElection } = config.cluster;
  if (discovery.registry === 'etcd' && leaderElection.ttl < 2) {
    warnings.push(`cluster.leaderElection.ttl=${leaderElection.ttl}: etcd 3.4 raises lease TTLs below 2 s to 2 s`);
  }
  // --check replaces the one HTTP check that --health-path / --health-url configure.
  if ((config.service.checks ?? []).length > 0) {
    for (const path of ['cluster.healthCheck.path', 'cluster.healthCheck.url']) {
      const origin = origins[path];
      if (origin && origin.source !== 'default') {
        warnings.push(`${origin.name ?? path} is set but service.checks replaces the HTTP check it configures: it is not used`);
      }
    }
  }
  if (discovery.registry === 'memory' && discovery.endpoints.length > 0 && !origins[REGISTRY_PATH]?.derived) {
    warnings.push(`${ENDPOINTS_PATH} is set but ${REGISTRY_PATH} is memory: the endpoints are not used`);
  }
  return warnings;
}

// ---------------------------------------------------------------------------------------------------
// Public entry points.
// ---------------------------------------------------------------------------------------------------

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
