import { RECORD_LIMITS, SERVICE_STATUSES, type AdminIntent, type AdminState, type AuditEntry, type FlapInfo, type HealthInfo, type ServiceRecord } from '../types.js';
import { isEpochMs, MAX_EPOCH_MS } from '../util/time.js';

export { RECORD_LIMITS };

/**
 * Registry data is input like any other: another version, a person with etcdctl or a broken writer
 * can put anything under the namespace. Every value is parsed here; a bad one is reported and skipped.
 *
 * The validators are written by hand rather than with zod on purpose: every one-shot CLI read parses
 * records, and loading zod (about a hundred modules) cost as much as starting node itself. Semantics
 * follow what a zod object schema would do: unknown keys are dropped, `undefined` takes the default,
 * anything else of the wrong type is an error naming its path.
 *
 * Everything is bounded: a value's size, every string's length, every list's and map's count, every
 * time (a Date holds ±8.64e15 ms; past it formatting throws). A writer that could put a megabyte in a
 * tag would otherwise have every table padded to it and every agent holding it.
 */

/**
 * Most a stored value may hold, in UTF-16 code units of its JSON: a record with every field at its
 * limit below fits in it. Larger values are skipped before they are parsed.
 */
export const MAX_VALUE_CHARS = 128 * 1024;


/** A value failed validation at `path`. */
class Invalid extends Error {
  constructor(path: string, expected: string | undefined, got?: unknown) {
    super(`${path || 'value'}: ${expected === undefined ? 'required' : `expected ${expected}, got ${describe(got)}`}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

type Reader<T> = (v: unknown, path: string) => T;

const join = (path: string, key: string | number) => (path ? `${path}.${key}` : String(key));

const str =
  (max: number, min = 0): Reader<string> =>
  (v, path) => {
    if (typeof v !== 'string' || v.length < min || v.length > max) {
      throw new Invalid(path, `${min > 0 ? 'a non-empty string' : 'a string'} of at most ${max} characters`, v);
    }
    return v;
  };

/** An epoch-ms time a Date can hold and a person can mean (1970 to 9999). */
const time: Reader<number> = (v, path) => {
  if (!isEpochMs(v)) throw new Invalid(path, `a time in epoch milliseconds (0-${MAX_EPOCH_MS})`, v);
  return v;
};

const num =
  (opts: { int?: boolean; min?: number; max?: number } = {}): Reader<number> =>
  (v, path) => {
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!opts.int || Number.isInteger(v)) &&
      (opts.min === undefined || v >= opts.min) &&
      (opts.max === undefined || v <= opts.max);
    if (!ok) {
      const range = opts.min !== undefined && opts.max !== undefined ? ` ${opts.min}-${opts.max}` : '';
      throw new Invalid(path, `${opts.int ? 'an integer' : 'a number'}${range}`, v);
    }
    return v as number;
  };

const bool: Reader<boolean> = (v, path) => {
  if (typeof v !== 'boolean') throw new Invalid(path, 'a boolean', v);
  return v;
};

const oneOf =
  <T extends string>(values: readonly T[]): Reader<T> =>
  (v, path) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw new Invalid(path, `one of ${values.join(', ')}`, v);
    return v as T;
  };

const nullable =
  <T>(read: Reader<T>): Reader<T | null> =>
  (v, path) =>
    v === null ? null : read(v, path);

const arrayOf =
  <T>(read: Reader<T>, max: number): Reader<T[]> =>
  (v, path) => {
    if (!Array.isArray(v) || v.length > max) throw new Invalid(path, `an array of at most ${max} items`, Array.isArray(v) ? `${v.length} items` : v);
    return v.map((item, i) => read(item, join(path, i)));
  };

const stringRecord =
  (limits: { entries: number; key: number; value: number }): Reader<Record<string, string>> =>
  (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid(path, 'an object of strings', v);
    const entries = Object.entries(v);
    if (entries.length > limits.entries) throw new Invalid(path, `at most ${limits.entries} entries`, `${entries.length} entries`);
    const out: Record<string, string> = {};
    for (const [k, item] of entries) {
      if (k.length > limits.key) throw new Invalid(path, `keys of at most ${limits.key} characters`, k);
      // Defined, not assigned: a key named __proto__ stays data instead of reaching the prototype.
      Object.defineProperty(out, k, { value: str(limits.value)(item, join(path, k)), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };

type Field<T> = { read: Reader<T>; default?: () => T; optional?: boolean };
type Shape = Record<string, Field<unknown>>;
type Out<S extends Shape> = {
  [K in keyof S as S[K]['optional'] extends true ? never : K]: S[K] extends Field<infer T> ? T : never;
} & {
  [K in keyof S as S[K]['optional'] extends true ? K : never]?: S[K] extends Field<infer T> ? T : never;
};

const req = <T>(read: Reader<T>): Field<T> => ({ read });
const opt = <T>(read: Reader<T>): Field<T> & { optional: true } => ({ read, optional: true });
const def = <T>(read: Reader<T>, value: () => T): Field<T> => ({ read, default: value });

/** An object of known fields; unknown keys are dropped, missing ones defaulted or reported. */
function object<S extends Shape>(shape: S): Reader<Out<S>> {
  return (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid(path, 'an object', v);
    const input = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(shape)) {
      const value = Object.hasOwn(input, key) ? input[key] : undefined;
      if (value === undefined) {
        if (field.default) out[key] = field.default();
        else if (!field.optional) throw new Invalid(join(path, key), undefined);
        continue;
      }
      out[key] = field.read(value, join(path, key));
    }
    return out as Out<S>;
  };
}

const status = oneOf(SERVICE_STATUSES);

/** A count (failures in a row, transitions, a threshold). */
const MAX_COUNT = 1_000_000_000;
const count = num({ int: true, min: 0, max: MAX_COUNT });
/** A duration in seconds: at most what a timer can wait (2^31-1 ms, about 24.8 days). */
const seconds = num({ min: 0, max: 2_147_483 });

const storedFlapping = object({
  since: req(time),
  until: req(time),
  lastChange: req(time),
  transitions: req(count),
  window: req(seconds),
  holdDown: req(seconds),
  threshold: req(count),
});

const storedChecks = object({
  interval: req(seconds),
  timeout: req(seconds),
  retries: req(num({ int: true, min: 1, max: MAX_COUNT })),
  gracePeriod: def(seconds, () => 0),
  ttl: req(seconds),
  flap: def(object({ threshold: req(count), window: req(seconds), holdDown: req(seconds) }), () => ({
    threshold: 0,
    window: 0,
    holdDown: 0,
  })),
});

const storedInstanceMaintenance = object({
  desired: req(oneOf(['serving', 'maintenance'] as const)),
  actual: req(oneOf(['serving', 'maintenance', 'unknown'] as const)),
  inSync: req(bool),
  lastError: opt(str(RECORD_LIMITS.message)),
  since: def(time, () => 0),
});

/** One check of `health.checks` (agents with `--check`); older agents publish none. */
const storedCheckState = object({
  name: req(str(RECORD_LIMITS.name, 1)),
  kind: req(oneOf(['http', 'tcp', 'grpc', 'ttl'] as const)),
  target: def(str(RECORD_LIMITS.url), () => ''),
  critical: def(bool, () => true),
  status: req(status),
  output: opt(str(RECORD_LIMITS.checkOutput)),
  lastCheck: def(nullable(time), () => null),
  interval: req(seconds),
  timeout: req(seconds),
  retries: req(num({ int: true, min: 1, max: MAX_COUNT })),
  ttl: opt(seconds),
});

const storedHealth = object({
  status: req(status),
  responseTime: def(nullable(num({ min: 0, max: 1e9 })), () => null),
  lastCheck: def(nullable(time), () => null),
  consecutiveFailures: def(count, () => 0),
  consecutiveSuccesses: def(count, () => 0),
  message: opt(str(RECORD_LIMITS.message)),
  flapping: opt(storedFlapping),
  checks: opt(arrayOf(storedCheckState, RECORD_LIMITS.checks)),
});

const storedRecord = object({
  id: req(str(RECORD_LIMITS.id, 1)),
  name: req(str(RECORD_LIMITS.name)),
  host: req(str(RECORD_LIMITS.host)),
  port: req(num({ int: true, min: 0, max: 65535 })),
  version: def(str(RECORD_LIMITS.version), () => ''),
  tags: def(arrayOf(str(RECORD_LIMITS.tag), RECORD_LIMITS.tags), () => []),
  region: def(str(RECORD_LIMITS.location), () => ''),
  zone: def(str(RECORD_LIMITS.location), () => ''),
  status: req(status),
  role: def(oneOf(['leader', 'follower'] as const), () => 'follower' as const),
  enabled: def(bool, () => true),
  health: opt(storedHealth),
  registeredAt: def(time, () => 0),
  updatedAt: def(time, () => 0),
  healthUrl: def(str(RECORD_LIMITS.url), () => ''),
  apiUrl: opt(str(RECORD_LIMITS.url)),
  metadata: def(stringRecord({ entries: RECORD_LIMITS.metadataEntries, key: RECORD_LIMITS.metadataKey, value: RECORD_LIMITS.metadataValue }), () => ({})),
  checks: opt(storedChecks),
  instanceMaintenance: opt(storedInstanceMaintenance),
  adminState: opt(oneOf(['enabled', 'draining', 'disabled'] as const)),
  drainUntil: opt(time),
  disabledUntil: opt(time),
});

const adminIntent = object({
  enabled: req(bool),
  reason: opt(str(RECORD_LIMITS.message)),
  actor: def(str(RECORD_LIMITS.actor), () => 'unknown'),
  at: req(time),
  expiresAt: opt(time),
  drainUntil: opt(time),
  drainedAt: opt(time),
  drainEnd: opt(oneOf(['idle', 'deadline'] as const)),
  forced: opt(bool),
});

const auditEntry = object({
  id: req(str(64)),
  at: req(time),
  actor: req(str(RECORD_LIMITS.actor)),
  action: req(oneOf(['enable', 'disable', 'forget', 'resign'] as const)),
  serviceId: req(str(RECORD_LIMITS.id)),
  term: opt(num({ int: true, min: 1, max: Number.MAX_SAFE_INTEGER })),
  reason: opt(str(RECORD_LIMITS.message)),
  source: opt(str(RECORD_LIMITS.actor)),
  changed: req(bool),
  reasonUpdated: opt(bool),
  previousReason: opt(str(RECORD_LIMITS.message)),
  forced: opt(bool),
  automatic: opt(bool),
  expired: opt(bool),
  expiresAt: opt(time),
  drainUntil: opt(time),
  drained: opt(oneOf(['idle', 'deadline'] as const)),
  startDisabled: opt(bool),
  capacity: opt(str(4 * RECORD_LIMITS.message)),
  repaired: opt(str(RECORD_LIMITS.message)),
});

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

function parseJson<T>(read: Reader<T>, raw: string): ParseResult<T> {
  if (raw.length > MAX_VALUE_CHARS) return { ok: false, error: `${raw.length} characters: expected a value of at most ${MAX_VALUE_CHARS}` };
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  try {
    return { ok: true, value: read(data, '') };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, error: err.message };
    throw err;
  }
}

/**
 * Parses a stored service record. `enabled` and `isHealthy` are recomputed by the view from the
 * admin intent, so a record written before a disable cannot override it.
 */
export function parseServiceRecord(raw: string, keyId: string): ParseResult<ServiceRecord> {
  const parsed = parseJson(storedRecord, raw);
  if (!parsed.ok) return parsed;
  const r = parsed.value;
  if (r.id !== keyId) return { ok: false, error: `id "${r.id}" does not match its key "${keyId}"` };
  const health: HealthInfo = r.health ?? {
    status: r.status,
    responseTime: null,
    lastCheck: null,
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
  };
  return {
    ok: true,
    value: { ...r, health, isHealthy: r.status === 'healthy' && r.enabled },
  };
}

/** The non-lease health state of an instance at `<ns>/health/<id>`: a flap-damping hold that outlives its agent. */
export interface StoredHealthState {
  serviceId: string;
  flapping: FlapInfo;
}

const storedHealthState = object({ serviceId: req(str(RECORD_LIMITS.id, 1)), flapping: req(storedFlapping) });

export function parseHealthState(raw: string, keyId: string): ParseResult<StoredHealthState> {
  const parsed = parseJson(storedHealthState, raw);
  if (parsed.ok && parsed.value.serviceId !== keyId) return { ok: false, error: `serviceId "${parsed.value.serviceId}" does not match its key "${keyId}"` };
  return parsed;
}

export function parseAdminIntent(raw: string): ParseResult<AdminIntent> {
  return parseJson(adminIntent, raw);
}

export function parseAuditEntry(raw: string): ParseResult<AuditEntry> {
  return parseJson(auditEntry, raw);
}

/** What the agent writes: the record without the derived `isHealthy`. */
export function encodeServiceRecord(record: ServiceRecord): string {
  const { isHealthy: _derived, ...stored } = record;
  return JSON.stringify(stored);
}

/**
 * What an intent means at `now`: a lapsed one (its `expiresAt` passed) counts as none, whoever has
 * or has not cleaned it up yet; a disable is `draining` until its agent saw the drain end or its
 * drain deadline passed, then `disabled`.
 */
export function adminStateOf(intent: AdminIntent | undefined, now = Date.now()): AdminState {
  if (!intent || intent.enabled || (intent.expiresAt !== undefined && intent.expiresAt <= now)) return 'enabled';
  return intent.drainUntil !== undefined && intent.drainedAt === undefined && now < intent.drainUntil ? 'draining' : 'disabled';
}

/** Applies operator intent to a record: disabled (draining included) means not healthy for routing. */
export function withIntent(record: ServiceRecord, intent: AdminIntent | undefined, now = Date.now()): ServiceRecord {
  const active = intent && (intent.expiresAt === undefined || intent.expiresAt > now) ? intent : undefined;
  const enabled = active ? active.enabled : true;
  const out: ServiceRecord = { ...record, enabled, isHealthy: record.status === 'healthy' && enabled };
  if (!enabled && active?.reason) out.disabledReason = active.reason;
  else delete out.disabledReason;
  const adminState = adminStateOf(intent, now);
  out.adminState = adminState;
  if (adminState === 'draining') out.drainUntil = active!.drainUntil;
  else delete out.drainUntil;
  if (!enabled && active?.expiresAt !== undefined) out.disabledUntil = active.expiresAt;
  else delete out.disabledUntil;
  return out;
}
