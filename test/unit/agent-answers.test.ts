import { expect } from 'chai';
import type { z } from 'zod';
import {
  AgentHealthSchema,
  AuditResponseSchema,
  ClusterEventSchema,
  ForgetResponseSchema,
  LeaderSchema,
  ResignResponseSchema,
  ServiceHealthSchema,
  ServiceListSchema,
  ServiceRecordSchema,
  SetEnabledResponseSchema,
  StatusResponseSchema,
  TopologySchema,
} from '../../src/api/schemas.js';
import {
  agentHealthAnswer,
  AnswerShapeError,
  auditAnswer,
  checked,
  clusterEvent,
  forgetAnswer,
  leaderAnswer,
  resignAnswer,
  serviceHealthAnswer,
  serviceListAnswer,
  serviceRecord,
  setEnabledAnswer,
  statusAnswer,
  topologyAnswer,
  type Check,
} from '../../src/cli/agent-answers.js';

/**
 * The CLI checks an agent's answers by hand (src/cli/agent-answers.ts) and the API describes them
 * with zod (src/api/schemas.ts). They must agree: on a full answer of each kind, and on every
 * mutation of it (each field removed, set to null, or given a value of another type), both accept or
 * both refuse. A field added to a response schema, or a type changed, shows up here.
 */

const now = 1_700_000_000_000;
const record = {
  id: 'ps-1',
  name: 'proxy-stone',
  host: '10.0.0.1',
  port: 3001,
  version: '1.2.3',
  tags: ['a', 'b'],
  region: 'us-east-1',
  zone: 'us-east-1a',
  status: 'healthy',
  role: 'leader',
  enabled: false,
  health: {
    status: 'healthy',
    responseTime: 3,
    lastCheck: now,
    consecutiveFailures: 0,
    consecutiveSuccesses: 4,
    message: 'ok',
    flapping: { since: now, until: now + 1, lastChange: now, transitions: 4, window: 600, holdDown: 300, threshold: 4 },
  },
  isHealthy: false,
  registeredAt: now,
  updatedAt: now,
  healthUrl: 'http://10.0.0.1:3001/health',
  apiUrl: 'http://10.0.0.1:8790',
  metadata: { team: 'edge' },
  disabledReason: 'deploy',
  checks: { interval: 30, timeout: 5, retries: 3, gracePeriod: 60, ttl: 30, flap: { threshold: 0, window: 600, holdDown: 300 } },
  instanceMaintenance: { desired: 'maintenance', actual: 'serving', inSync: false, lastError: 'refused', since: now },
  adminState: 'draining',
  drainUntil: now + 30_000,
  disabledUntil: now + 60_000,
};

const CASES: { name: string; schema: z.ZodType; check: Check; sample: unknown }[] = [
  {
    name: 'status',
    schema: StatusResponseSchema,
    check: statusAnswer,
    sample: {
      enabled: true,
      currentService: { id: 'ps-1', name: 'proxy-stone', host: '10.0.0.1', port: 3001, status: 'healthy', role: 'leader', region: 'r', zone: 'z', version: '1', enabled: true },
      isLeader: true,
      status: 'registered',
      leaderId: 'ps-1',
      cluster: { name: 'proxy-stone-cluster', namespace: 'proxy-stone' },
      registry: { kind: 'etcd', endpoints: 'http://etcd:2379', reachable: true },
      view: { stale: false, lastUpdate: now, services: 3, revision: 42 },
      lease: { id: '7', ttl: 30, renewedAt: now },
    },
  },
  { name: 'service record', schema: ServiceRecordSchema, check: serviceRecord, sample: record },
  { name: 'service list', schema: ServiceListSchema, check: serviceListAnswer, sample: { services: [record], total: 1, healthy: 0, unhealthy: 1 } },
  {
    name: 'topology',
    schema: TopologySchema,
    check: topologyAnswer,
    sample: {
      totalServices: 1,
      healthyServices: 1,
      unhealthyServices: 0,
      servicesByRegion: { r: 1 },
      servicesByZone: { r: { z: 1 } },
      servicesByStatus: { healthy: 1, unhealthy: 0, starting: 0, draining: 0, stopped: 0 },
      disabledServices: 0,
      leader: { id: 'ps-1', name: 'proxy-stone', role: 'leader', host: '10.0.0.1', port: 3001 },
    },
  },
  {
    name: 'service health',
    schema: ServiceHealthSchema,
    check: serviceHealthAnswer,
    sample: {
      serviceId: 'ps-1',
      status: 'healthy',
      health: record.health,
      history: [{ at: now, latencyMs: 3, ok: false, httpStatus: 503, error: 'HTTP 503', change: { from: 'healthy', to: 'unhealthy', reason: '3 failures' } }],
      historyUrl: 'http://10.0.0.1:8790/service-discovery/services/ps-1/health',
      budget: { death: 30, sick: 95, recovery: 35, gracePeriod: 60, holdDown: null },
    },
  },
  {
    name: 'enable/disable',
    schema: SetEnabledResponseSchema,
    check: setEnabledAnswer,
    sample: { serviceId: 'ps-1', enabled: false, changed: false, reasonUpdated: true, previousReason: 'old', repaired: 'not JSON', service: record },
  },
  {
    name: 'audit',
    schema: AuditResponseSchema,
    check: auditAnswer,
    sample: {
      entries: [
        {
          id: '1',
          at: now,
          actor: 'ops',
          action: 'disable',
          serviceId: 'ps-1',
          reason: 'r',
          source: '10.0.0.9',
          changed: true,
          reasonUpdated: false,
          previousReason: 'p',
          forced: true,
          capacity: 'zone z would have 0',
          automatic: false,
          expired: false,
          expiresAt: now,
          drainUntil: now,
          drained: 'idle',
          startDisabled: false,
          repaired: 'not JSON',
          term: 42,
        },
      ],
    },
  },
  {
    name: 'leader',
    schema: LeaderSchema,
    check: leaderAnswer,
    sample: {
      leaderId: 'ps-1',
      fencingRevision: 42,
      term: 42,
      since: now,
      candidates: [{ serviceId: 'ps-1', fencingRevision: 42 }, { serviceId: 'ps-2', fencingRevision: 45 }],
      resignRequest: { term: 42, actor: 'ops', at: now, reason: 'r' },
    },
  },
  { name: 'leader resign', schema: ResignResponseSchema, check: resignAnswer, sample: { leaderId: 'ps-1', term: 42, requested: true } },
  { name: 'forget', schema: ForgetResponseSchema, check: forgetAnswer, sample: { serviceId: 'ps-1', removed: { intent: true, healthHold: false }, live: false } },
  {
    name: 'agent health',
    schema: AgentHealthSchema,
    check: agentHealthAnswer,
    sample: { status: 'degraded', registry: { reachable: false }, view: { stale: true, lastUpdate: now }, registered: true, isLeader: false },
  },
  ...[
    { type: 'serviceJoined', serviceId: 'ps-1', service: record, timestamp: now },
    { type: 'serviceLeft', serviceId: 'ps-1', service: record, timestamp: now },
    { type: 'serviceHealthChanged', serviceId: 'ps-1', previousStatus: 'healthy', status: 'unhealthy', service: record, timestamp: now },
    { type: 'serviceEnabled', serviceId: 'ps-1', reason: 'r', actor: 'ops', timestamp: now },
    { type: 'serviceDisabled', serviceId: 'ps-1', reason: 'r', actor: 'ops', expiresAt: now, drainUntil: now, timestamp: now },
    { type: 'serviceUpdated', serviceId: 'ps-1', service: record, timestamp: now },
    { type: 'leaderElected', leaderId: 'ps-1', previousLeaderId: null, timestamp: now },
  ].map((sample) => ({ name: `event ${sample.type}`, schema: ClusterEventSchema as z.ZodType, check: clusterEvent, sample })),
];

/** A value of another JSON type than `v`. */
function otherType(v: unknown): unknown {
  if (typeof v === 'string') return 42;
  if (typeof v === 'number') return '42';
  if (typeof v === 'boolean') return 'true';
  if (v === null) return 'null';
  if (Array.isArray(v)) return {};
  return [];
}

/** Every mutation of `value`: each field (at any depth) removed, set to null, or of another type; each array item replaced. */
function* mutations(value: unknown, path: string[] = []): Generator<{ where: string; value: unknown }> {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      for (const m of mutations(value[i], [...path, String(i)])) yield { where: m.where, value: value.map((x, j) => (j === i ? m.value : x)) };
      yield { where: [...path, String(i)].join('.') + ' → other type', value: value.map((x, j) => (j === i ? otherType(x) : x)) };
    }
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [key, v] of Object.entries(value)) {
    const where = [...path, key].join('.');
    const { [key]: _removed, ...without } = value as Record<string, unknown>;
    yield { where: `${where} removed`, value: without };
    yield { where: `${where} → null`, value: { ...value, [key]: null } };
    yield { where: `${where} → other type`, value: { ...value, [key]: otherType(v) } };
    for (const m of mutations(v, [...path, key])) yield { where: m.where, value: { ...value, [key]: m.value } };
  }
}

function lightAccepts(check: Check, value: unknown): boolean {
  try {
    checked(check, value);
    return true;
  } catch (err) {
    if (!(err instanceof AnswerShapeError)) throw err;
    return false;
  }
}

describe("agent answers: the CLI's checks agree with the API's schemas", () => {
  for (const c of CASES) {
    it(`${c.name}: the full answer, and every mutation of it`, () => {
      expect(c.schema.safeParse(c.sample).success, 'the sample follows the API schema').to.equal(true);
      expect(lightAccepts(c.check, c.sample)).to.equal(true);
      let count = 0;
      for (const m of mutations(c.sample)) {
        count++;
        const zod = c.schema.safeParse(m.value).success;
        expect(lightAccepts(c.check, m.value), `${c.name}: ${m.where} (the schema ${zod ? 'accepts' : 'refuses'} it)`).to.equal(zod);
      }
      expect(count).to.be.greaterThan(2);
    });
  }

  it('names the first field that is wrong, with what was expected and what came', () => {
    const message = (check: Check, value: unknown) => {
      try {
        checked(check, value);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(message(statusAnswer, {})).to.equal('currentService: required');
    expect(message(serviceListAnswer, [])).to.equal('expected an object, got an array');
    expect(message(serviceListAnswer, { services: 5 })).to.equal('services: expected an array, got 5');
    expect(message(serviceListAnswer, { services: [{ ...record, port: 70000 }], total: 1, healthy: 0, unhealthy: 1 })).to.equal(
      'services[0].port: expected an integer 0-65535, got 70000',
    );
    expect(message(clusterEvent, { type: 'serviceExploded' })).to.match(/^type: expected one of serviceJoined, .*, got "serviceExploded"$/);
    // What came is described, never quoted at length or with control characters.
    expect(message(serviceRecord, { ...record, status: `x${'y'.repeat(100)}` })).to.equal('status: expected one of healthy, unhealthy, starting, draining, stopped, got a string');
    expect(message(serviceRecord, { ...record, status: '\u001b[2J' })).to.equal('status: expected one of healthy, unhealthy, starting, draining, stopped, got a string');
  });
});
