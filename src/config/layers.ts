/**
 * The layers a configuration is resolved from, each read into candidates (raw values with their
 * origin) through the settings table: defaults, the config file, the environment, flags, overrides.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { showValue, shortSafe, sourceText, type Candidate, type ConfigIssue, type SourceOrigin } from './errors.js';
import { isPlainObject } from './object-path.js';
import { SETTINGS, SETTING_GROUP_PATHS, envNames, settingByEnv, settingByFlag, settingByPath } from './settings.js';

/** A parsed flag value as oclif hands it over (`multiple: true` flags give arrays). */
export type FlagValue = string | boolean | number | readonly string[] | undefined;

/** The candidates one source gives, by setting path. */
export type Layer = Map<string, Candidate>;

/** The seed's top-level key; a config file may wrap its settings in it. */
export const CONFIG_WRAPPER_KEY = 'serviceDiscoveryConfig';

export function defaultsLayer(): Layer {
  const layer: Layer = new Map();
  for (const setting of SETTINGS) {
    if (setting.default === undefined) continue;
    layer.set(setting.path, { setting, raw: structuredClone(setting.default), origin: { source: 'default' } });
  }
  return layer;
}

export function envLayer(env: NodeJS.ProcessEnv): Layer {
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

export function flagLayer(flags: Readonly<Record<string, FlagValue>>, issues: ConfigIssue[]): Layer {
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

const KNOWN_PATHS: readonly string[] = [...SETTINGS.map((s) => s.path), ...SETTING_GROUP_PATHS];
const require = createRequire(import.meta.url);

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
  // Edit distance from fastest-levenshtein (small, no dependencies, widely used; not ours to keep),
  // required (it is CommonJS) only here, for an unknown key: a valid configuration never loads it.
  const { distance } = require('fastest-levenshtein') as typeof import('fastest-levenshtein');
  let best: { path: string; edits: number } | undefined;
  for (const candidate of siblings) {
    const name = candidate.split('.').pop()!.toLowerCase();
    const edits = distance(key.toLowerCase(), name);
    if (edits <= limit && (!best || edits < best.edits)) best = { path: candidate, edits };
  }
  if (best) return best.path;
  // The right key in the wrong object (`service.ttl`).
  const sameName = SETTINGS.filter((s) => s.path.split('.').pop() === key).map((s) => s.path);
  return sameName.length > 0 ? sameName.join(' or ') : undefined;
}

/** Reads a nested object (config file, overrides) into a layer, reporting keys that are not settings. */
export function structuredLayer(data: Record<string, unknown>, origin: SourceOrigin, issues: ConfigIssue[]): Layer {
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
