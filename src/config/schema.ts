/**
 * The one schema of a resolved configuration: each leaf generated from its row in the settings table,
 * plus the rules between settings; and how a zod issue becomes a one-line issue on a setting.
 *
 * @module
 */
import { z } from 'zod';
import { isHostOrIp, isHttpUrl, isRedisUrl, isRegistryUrl } from '../registry/endpoint.js';
import { parseCheckUrl } from '../agent/checks/check-spec.js';
import { DURATION_MAX_EXPECTATION, MAX_DURATION_SECONDS } from '../util/duration.js';
import { UNSAFE_CHARACTER } from '../util/text.js';
import { issueFor, type Candidate, type ConfigIssue, type SourceOrigin } from './errors.js';
import { getIn } from './object-path.js';
import { MAX_ITEMS, MAX_KEY_LENGTH, SETTINGS, canonicalEnv, describeExpectation, maxLengthOf, settingByPath, type Setting } from './settings.js';
import type { SdConfig } from './types.js';

/** A character a terminal could act on: control characters (tab and newline too), DEL, C1, bidi controls. */
const UNSAFE = new RegExp(UNSAFE_CHARACTER);
export const REGISTRY_PATH = 'cluster.discovery.registry';
export const ENDPOINTS_PATH = 'cluster.discovery.endpoints';

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
              : setting.itemKind === 'origin'
                ? text().refine(isOriginOrAny)
                : setting.itemKind === 'check'
                  ? text().refine(isCheckUrl)
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

/** `*`, or a web origin as browsers send it: `http(s)://host[:port]`, nothing after it. */
export function isOriginOrAny(value: string): boolean {
  if (value === '*') return true;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

function isCheckUrl(value: string): boolean {
  try {
    parseCheckUrl(value);
    return true;
  } catch {
    return false;
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

/** Maps a zod issue to a one-line issue on the setting it concerns; `cross` for cross-field rules. */
export function schemaIssue(
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
