/**
 * What an agent's API answers, checked before anything reads it: `--agent` may name any HTTP server,
 * and one that answers 200 with `{}` or a web page must be told apart from an agent, not crash a view
 * with "Cannot read properties of undefined".
 *
 * The shapes are those of the API's response schemas (src/api/schemas.ts): required fields and their
 * types, objects loose (fields this client does not know are allowed, so the API can grow), at the
 * depth the CLI reads. Written by hand rather than with those zod schemas for the reason the registry
 * codec is (docs/decisions/0004-zod.md): zod would cost every `--agent` command about as much again
 * as its HTTP client. test/unit/agent-answers.test.ts holds both together.
 *
 * @module
 */
import { CLUSTER_EVENT_TYPES, SERVICE_STATUSES } from '../types.js';

/** An answer that does not have the shape asked for; the message names the path: `services[2].port: expected …`. */
export class AnswerShapeError extends Error {
  override name = 'AnswerShapeError';
  constructor(path: string, expected: string | undefined, got?: unknown) {
    super(`${path ? `${path}: ` : ''}${expected === undefined ? 'required' : `expected ${expected}, got ${describe(got)}`}`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 || /[^\x20-\x7e]/.test(v) ? 'a string' : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** Checks a value at `path`, throwing {@link AnswerShapeError}. */
export type Check = (v: unknown, path: string) => void;

const at = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;

const str: Check = (v, path) => {
  if (typeof v !== 'string') throw new AnswerShapeError(path, 'a string', v);
};

const num: Check = (v, path) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new AnswerShapeError(path, 'a number', v);
};

const int =
  (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Check =>
  (v, path) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new AnswerShapeError(path, min === Number.MIN_SAFE_INTEGER ? 'an integer' : `an integer ${min}-${max}`, v);
    }
  };
const integer = int();

const bool: Check = (v, path) => {
  if (typeof v !== 'boolean') throw new AnswerShapeError(path, 'a boolean', v);
};

const oneOf =
  (values: readonly string[]): Check =>
  (v, path) => {
    if (typeof v !== 'string' || !values.includes(v)) throw new AnswerShapeError(path, `one of ${values.join(', ')}`, v);
  };

const nullable =
  (check: Check): Check =>
  (v, path) => {
    if (v !== null) check(v, path);
  };

const arrayOf =
  (check: Check): Check =>
  (v, path) => {
    if (!Array.isArray(v)) throw new AnswerShapeError(path, 'an array', v);
    v.forEach((item, i) => check(item, at(path, i)));
  };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const recordOf =
  (check: Check): Check =>
  (v, path) => {
    if (!isObject(v)) throw new AnswerShapeError(path, 'an object', v);
    for (const [k, item] of Object.entries(v)) check(item, at(path, k));
  };

/** A field that may be absent (`undefined`); present, it must pass `check`. */
interface Optional {
  optional: Check;
}
const opt = (check: Check): Optional => ({ optional: check });

/** A loose object: these fields (required unless {@link opt}), and any others. */
const object =
  (shape: Record<string, Check | Optional>): Check =>
  (v, path) => {
    if (!isObject(v)) throw new AnswerShapeError(path, 'an object', v);
    for (const [key, field] of Object.entries(shape)) {
      const value = Object.hasOwn(v, key) ? v[key] : undefined;
      if (typeof field === 'function') {
        if (value === undefined) throw new AnswerShapeError(at(path, key), undefined);
        field(value, at(path, key));
      } else if (value !== undefined) {
        field.optional(value, at(path, key));
      }
    }
  };

const status = oneOf(SERVICE_STATUSES);
const role = oneOf(['leader', 'follower']);

const flapInfo = object({ since: num, until: num, lastChange: num, transitions: integer, window: num, holdDown: num, threshold: integer });

const healthInfo = object({
  status,
  responseTime: nullable(num),
  lastCheck: nullable(num),
  consecutiveFailures: integer,
  consecutiveSuccesses: integer,
  message: opt(str),
  flapping: opt(flapInfo),
});

const healthCheckSettings = object({
  interval: num,
  timeout: num,
  retries: integer,
  gracePeriod: num,
  ttl: num,
  flap: object({ threshold: integer, window: num, holdDown: num }),
});

const instanceMaintenance = object({
  desired: oneOf(['serving', 'maintenance']),
  actual: oneOf(['serving', 'maintenance', 'unknown']),
  inSync: bool,
  lastError: opt(str),
  since: num,
});

/** `ServiceRecord`. */
export const serviceRecord: Check = object({
  id: str,
  name: str,
  host: str,
  port: int(0, 65535),
  version: str,
  tags: arrayOf(str),
  region: str,
  zone: str,
  status,
  role,
  enabled: bool,
  health: healthInfo,
  isHealthy: bool,
  registeredAt: num,
  updatedAt: num,
  healthUrl: str,
  apiUrl: opt(str),
  metadata: recordOf(str),
  disabledReason: opt(str),
  checks: opt(healthCheckSettings),
  instanceMaintenance: opt(instanceMaintenance),
  adminState: opt(oneOf(['enabled', 'draining', 'disabled'])),
  drainUntil: opt(num),
  disabledUntil: opt(num),
});

/** `GET /status`: `StatusResponse`. */
export const statusAnswer: Check = object({
  // The most telling field first: what is missing from `{}` is named first.
  currentService: object({ id: str, name: str, host: str, port: integer, status, role, region: str, zone: str, version: str, enabled: bool }),
  enabled: bool,
  isLeader: bool,
  status: oneOf(['registered', 'registering', 'stopping', 'stopped']),
  leaderId: nullable(str),
  // Absent from agents older than the CLI.
  cluster: opt(object({ name: str, namespace: str })),
  registry: object({ kind: str, endpoints: str, reachable: bool }),
  view: object({ stale: bool, lastUpdate: num, services: integer, revision: integer }),
  lease: object({ id: nullable(str), ttl: num, renewedAt: nullable(num) }),
});

/** `GET /services`: `ServiceList`. */
export const serviceListAnswer: Check = object({ services: arrayOf(serviceRecord), total: integer, healthy: integer, unhealthy: integer });

/** `GET /topology`: `ClusterTopology`. */
export const topologyAnswer: Check = object({
  totalServices: integer,
  healthyServices: integer,
  unhealthyServices: integer,
  servicesByRegion: recordOf(integer),
  servicesByZone: recordOf(recordOf(integer)),
  servicesByStatus: object(Object.fromEntries(SERVICE_STATUSES.map((s) => [s, integer]))),
  disabledServices: integer,
  leader: nullable(object({ id: str, name: str, role: oneOf(['leader']), host: opt(str), port: opt(integer) })),
});

const historyEntry = object({
  at: num,
  latencyMs: num,
  ok: bool,
  httpStatus: opt(integer),
  error: opt(str),
  change: opt(object({ from: status, to: status, reason: str })),
});

/** `GET /services/:id/health`: `ServiceHealth`. */
export const serviceHealthAnswer: Check = object({
  serviceId: str,
  status,
  health: healthInfo,
  history: arrayOf(historyEntry),
  historyUrl: opt(str),
  budget: opt(object({ death: num, sick: num, recovery: num, gracePeriod: num, holdDown: nullable(num) })),
});

/** `POST /services/:id/enable|disable`: `SetEnabledResponse`. */
export const setEnabledAnswer: Check = object({
  serviceId: str,
  enabled: bool,
  changed: bool,
  reasonUpdated: opt(bool),
  previousReason: opt(str),
  repaired: opt(str),
  service: opt(serviceRecord),
});

const auditEntry = object({
  id: str,
  at: num,
  actor: str,
  action: oneOf(['enable', 'disable', 'forget', 'resign']),
  serviceId: str,
  term: opt(integer),
  reason: opt(str),
  source: opt(str),
  changed: bool,
  reasonUpdated: opt(bool),
  previousReason: opt(str),
  forced: opt(bool),
  capacity: opt(str),
  automatic: opt(bool),
  expired: opt(bool),
  expiresAt: opt(num),
  drainUntil: opt(num),
  drained: opt(oneOf(['idle', 'deadline'])),
  startDisabled: opt(bool),
  repaired: opt(str),
});

/** `GET /leader`: `Leader`. */
export const leaderAnswer: Check = object({
  leaderId: nullable(str),
  fencingRevision: nullable(integer),
  term: nullable(integer),
  since: nullable(num),
  candidates: arrayOf(object({ serviceId: str, fencingRevision: integer })),
  resignRequest: nullable(object({ term: integer, actor: str, at: num, reason: opt(str) })),
});

/** `POST /leader/resign`: `ResignResponse`. */
export const resignAnswer: Check = object({ leaderId: str, term: integer, requested: bool });

/** `POST /services/:id/forget`: `ForgetResponse`. */
export const forgetAnswer: Check = object({ serviceId: str, removed: object({ intent: bool, healthHold: bool }), live: bool });

/** `GET /audit`: `AuditResponse`. */
export const auditAnswer: Check = object({ entries: arrayOf(auditEntry) });

/** `GET /health` (beside the API): `AgentHealth`. */
export const agentHealthAnswer: Check = object({
  status: oneOf(['ok', 'degraded']),
  registry: object({ reachable: bool }),
  view: object({ stale: bool, lastUpdate: num }),
  registered: bool,
  isLeader: bool,
});

const EVENT_SHAPES: Record<(typeof CLUSTER_EVENT_TYPES)[number], Check> = {
  serviceJoined: object({ serviceId: str, service: serviceRecord, timestamp: num }),
  serviceLeft: object({ serviceId: str, service: opt(serviceRecord), timestamp: num }),
  serviceHealthChanged: object({ serviceId: str, previousStatus: status, status, service: serviceRecord, timestamp: num }),
  serviceEnabled: object({ serviceId: str, reason: opt(str), actor: opt(str), timestamp: num }),
  serviceDisabled: object({ serviceId: str, reason: opt(str), actor: opt(str), expiresAt: opt(num), drainUntil: opt(num), timestamp: num }),
  serviceUpdated: object({ serviceId: str, service: serviceRecord, timestamp: num }),
  leaderElected: object({ leaderId: nullable(str), previousLeaderId: nullable(str), timestamp: num }),
};

/** One event of the stream (`ClusterEvent`, the JSON of a `data:` line), by its `type`. */
export const clusterEvent: Check = (v, path) => {
  if (!isObject(v)) throw new AnswerShapeError(path, 'an object', v);
  const type = v.type;
  if (typeof type !== 'string' || !Object.hasOwn(EVENT_SHAPES, type)) throw new AnswerShapeError(at(path, 'type'), `one of ${CLUSTER_EVENT_TYPES.join(', ')}`, type);
  EVENT_SHAPES[type as keyof typeof EVENT_SHAPES](v, path);
};

/**
 * `value` as a `T`, once `check` passed.
 *
 * @throws AnswerShapeError naming the first field that is missing or of the wrong type
 */
export function checked<T>(check: Check, value: unknown): T {
  check(value, '');
  return value as T;
}
