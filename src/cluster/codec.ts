import { SERVICE_STATUSES, type AdminIntent, type AdminState, type AuditEntry, type FlapInfo, type HealthInfo, type ServiceRecord } from '../types.js';

/**
 * Registry data is input like any other: another version, a person with etcdctl or a broken writer
 * can put anything under the namespace. Every value is parsed here; a bad one is reported and skipped.
 *
 * The validators are written by hand rather than with zod on purpose: every one-shot CLI read parses
 * records, and loading zod (about a hundred modules) cost as much as starting node itself. Semantics
 * follow what a zod object schema would do: unknown keys are dropped, `undefined` takes the default,
 * anything else of the wrong type is an error naming its path.
 */

/** A value failed validation at `path`. */
class Invalid extends Error {
  constructor(path: string, expected: string | undefined, got?: unknown) {
    super(`${path || 'value'}: ${expected === undefined ? 'required' : `expected ${expected}, got ${describe(got)}`}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? 'a string' : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

type Reader<T> = (v: unknown, path: string) => T;

const join = (path: string, key: string | number) => (path ? `${path}.${key}` : String(key));

const str =
  (min = 0): Reader<string> =>
  (v, path) => {
    if (typeof v !== 'string' || v.length < min) throw new Invalid(path, min > 0 ? 'a non-empty string' : 'a string', v);
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
  <T>(read: Reader<T>): Reader<T[]> =>
  (v, path) => {
    if (!Array.isArray(v)) throw new Invalid(path, 'an array', v);
    return v.map((item, i) => read(item, join(path, i)));
  };

const stringRecord: Reader<Record<string, string>> = (v, path) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid(path, 'an object of strings', v);
  const out: Record<string, string> = {};
  for (const [k, item] of Object.entries(v)) out[k] = str()(item, join(path, k));
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

const storedFlapping = object({
  since: req(num()),
  until: req(num()),
  lastChange: req(num()),
  transitions: req(num({ int: true, min: 0 })),
  window: req(num({ min: 0 })),
  holdDown: req(num({ min: 0 })),
  threshold: req(num({ int: true, min: 0 })),
});

const storedChecks = object({
  interval: req(num({ min: 0 })),
  timeout: req(num({ min: 0 })),
  retries: req(num({ int: true, min: 1 })),
  gracePeriod: def(num({ min: 0 }), () => 0),
  ttl: req(num({ min: 0 })),
  flap: def(object({ threshold: req(num({ int: true, min: 0 })), window: req(num({ min: 0 })), holdDown: req(num({ min: 0 })) }), () => ({
    threshold: 0,
    window: 0,
    holdDown: 0,
  })),
});

const storedInstanceMaintenance = object({
  desired: req(oneOf(['serving', 'maintenance'] as const)),
  actual: req(oneOf(['serving', 'maintenance', 'unknown'] as const)),
  inSync: req(bool),
  lastError: opt(str()),
  since: def(num(), () => 0),
});

const storedHealth = object({
  status: req(status),
  responseTime: def(nullable(num()), () => null),
  lastCheck: def(nullable(num()), () => null),
  consecutiveFailures: def(num({ int: true }), () => 0),
  consecutiveSuccesses: def(num({ int: true }), () => 0),
  message: opt(str()),
  flapping: opt(storedFlapping),
});

const storedRecord = object({
  id: req(str(1)),
  name: req(str()),
  host: req(str()),
  port: req(num({ int: true, min: 0, max: 65535 })),
  version: def(str(), () => ''),
  tags: def(arrayOf(str()), () => []),
  region: def(str(), () => ''),
  zone: def(str(), () => ''),
  status: req(status),
  role: def(oneOf(['leader', 'follower'] as const), () => 'follower' as const),
  enabled: def(bool, () => true),
  health: opt(storedHealth),
  registeredAt: def(num(), () => 0),
  updatedAt: def(num(), () => 0),
  healthUrl: def(str(), () => ''),
  apiUrl: opt(str()),
  metadata: def(stringRecord, () => ({})),
  checks: opt(storedChecks),
  instanceMaintenance: opt(storedInstanceMaintenance),
  adminState: opt(oneOf(['enabled', 'draining', 'disabled'] as const)),
  drainUntil: opt(num()),
  disabledUntil: opt(num()),
});

const adminIntent = object({
  enabled: req(bool),
  reason: opt(str()),
  actor: def(str(), () => 'unknown'),
  at: req(num()),
  expiresAt: opt(num()),
  drainUntil: opt(num()),
  drainedAt: opt(num()),
  drainEnd: opt(oneOf(['idle', 'deadline'] as const)),
  forced: opt(bool),
});

const auditEntry = object({
  id: req(str()),
  at: req(num()),
  actor: req(str()),
  action: req(oneOf(['enable', 'disable'] as const)),
  serviceId: req(str()),
  reason: opt(str()),
  source: opt(str()),
  changed: req(bool),
  reasonUpdated: opt(bool),
  previousReason: opt(str()),
  forced: opt(bool),
  automatic: opt(bool),
  expired: opt(bool),
  expiresAt: opt(num()),
  drainUntil: opt(num()),
  drained: opt(oneOf(['idle', 'deadline'] as const)),
  startDisabled: opt(bool),
  capacity: opt(str()),
});

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

function parseJson<T>(read: Reader<T>, raw: string): ParseResult<T> {
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

const storedHealthState = object({ serviceId: req(str(1)), flapping: req(storedFlapping) });

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
