import { expect } from 'chai';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import {
  AgentHealthSchema,
  AuditResponseSchema,
  ServiceHealthSchema,
  ServiceListSchema,
  ServiceRecordSchema,
  SetEnabledResponseSchema,
  StatusResponseSchema,
  TopologySchema,
} from '../../src/api/schemas.js';
import { SERVICE_STATUSES } from '../../src/types.js';
import { TestCluster, eventually, http, postJson } from './fixtures.js';

const KEY = 'op-key-0123456789abcdef';
const auth = { Authorization: `Bearer ${KEY}` };

/** No response body may carry a stack trace. */
function expectNoStack(text: string): void {
  expect(text).to.not.match(/\n\s+at /);
  expect(text).to.not.include('.ts:');
}

function expectError(res: { status: number; json: unknown; text: string }, status: number, code: string, message?: RegExp | string): void {
  expect(res.status, res.text).to.equal(status);
  const body = res.json as { error: string; message: string };
  expect(body).to.have.keys(['error', 'message']);
  expect(body.error).to.equal(code);
  expect(body.message).to.not.include('\n');
  if (typeof message === 'string') expect(body.message).to.equal(message);
  else if (message) expect(body.message).to.match(message);
  expectNoStack(res.text);
}

describe('API server: endpoints', function () {
  let cluster: TestCluster;
  let a: ServiceAgent;
  let api: ApiServer;
  let base: string;

  before(async function () {
    cluster = await TestCluster.memory();
    a = await cluster.addAgent({ id: 'svc-a', region: 'us-east-1', zone: 'us-east-1a', port: 3001 });
    await cluster.addAgent({ id: 'svc-b', region: 'us-east-1', zone: 'us-east-1b', port: 3002 });
    await cluster.addAgent({ id: 'svc-c', region: 'us-west-2', zone: 'us-west-2a', port: 3003 });
    api = await startApiServer(a, {
      host: '127.0.0.1',
      port: 0,
      auth: { keys: [{ name: 'ci', role: 'operator', key: KEY }], readAccess: 'open' },
    });
    base = api.url;
    a.setApiUrl(api.url);
    // svc-c advertises an API too (not running: the health endpoint only links to it).
    cluster.agents[2]!.setApiUrl('http://127.0.0.1:1/');
    await cluster.settled(3);
    await eventually('svc-a apiUrl and svc-c apiUrl published', () =>
      a.view.service('svc-a')?.apiUrl === api.url && a.view.service('svc-c')?.apiUrl === 'http://127.0.0.1:1/',
    );
  });

  after(async function () {
    await api?.close();
    await cluster?.stop();
  });

  it('GET /service-discovery/status has the seed fields', async function () {
    const res = await http(`${base}/service-discovery/status`);
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    const body = StatusResponseSchema.parse(res.json);
    expect(body.enabled).to.equal(true);
    expect(body.status).to.equal('registered');
    expect(body.currentService).to.include({ id: 'svc-a', name: 'proxy-stone', host: '127.0.0.1', port: 3001, status: 'healthy' });
    expect(body.currentService.role).to.be.oneOf(['leader', 'follower']);
    expect(body.isLeader).to.equal(a.isLeader());
  });

  it('GET /service-discovery/services lists every service with totals', async function () {
    const res = await http(`${base}/service-discovery/services`);
    expect(res.status).to.equal(200);
    const body = ServiceListSchema.parse(res.json);
    expect(body.total).to.equal(3);
    expect(body.healthy).to.equal(3);
    expect(body.unhealthy).to.equal(0);
    expect(body.services.map((s) => s.id)).to.deep.equal(['svc-a', 'svc-b', 'svc-c']);
    for (const s of body.services) {
      expect(s).to.include.keys(['id', 'name', 'host', 'port', 'status', 'role', 'health', 'isHealthy']);
      expect(s.health).to.include.keys(['status', 'responseTime', 'lastCheck']);
    }
  });

  it('filters services by status, region, zone and healthy', async function () {
    const byRegion = ServiceListSchema.parse((await http(`${base}/service-discovery/services?region=us-east-1`)).json);
    expect(byRegion.services.map((s) => s.id)).to.deep.equal(['svc-a', 'svc-b']);
    const byZone = ServiceListSchema.parse((await http(`${base}/service-discovery/services?zone=us-west-2a`)).json);
    expect(byZone.services.map((s) => s.id)).to.deep.equal(['svc-c']);
    const byStatus = ServiceListSchema.parse((await http(`${base}/service-discovery/services?status=unhealthy`)).json);
    expect(byStatus).to.include({ total: 0, healthy: 0, unhealthy: 0 });
    const healthy = ServiceListSchema.parse((await http(`${base}/service-discovery/services?healthy=true&region=us-east-1`)).json);
    expect(healthy.total).to.equal(2);
    const unhealthy = ServiceListSchema.parse((await http(`${base}/service-discovery/services?healthy=false`)).json);
    expect(unhealthy.total).to.equal(0);
  });

  it('rejects a bad filter with 400 naming the field and the allowed values', async function () {
    const res = await http(`${base}/service-discovery/services?status=sick`);
    expectError(res, 400, 'bad_request', `status: expected one of ${SERVICE_STATUSES.join(', ')}`);
    expectError(await http(`${base}/service-discovery/services?healthy=yes`), 400, 'bad_request', 'healthy: expected true or false');
    expectError(await http(`${base}/service-discovery/services?status=healthy&status=unhealthy`), 400, 'bad_request', /^status: /);
  });

  it('GET /service-discovery/services/:id returns the record, 404 JSON for an unknown id', async function () {
    const res = await http(`${base}/service-discovery/services/svc-b`);
    expect(res.status).to.equal(200);
    const rec = ServiceRecordSchema.parse(res.json);
    expect(rec).to.include({ id: 'svc-b', zone: 'us-east-1b', status: 'healthy', enabled: true, isHealthy: true });
    expectError(await http(`${base}/service-discovery/services/nope`), 404, 'not_found', 'service nope not found');
  });

  it("GET /services/:id/health has this agent's probe history", async function () {
    await eventually('a few probes', () => a.healthHistory().length >= 2);
    const res = await http(`${base}/service-discovery/services/svc-a/health`);
    expect(res.status).to.equal(200);
    const body = ServiceHealthSchema.parse(res.json);
    expect(body.serviceId).to.equal('svc-a');
    expect(body.status).to.equal('healthy');
    expect(body.health.status).to.equal('healthy');
    expect(body.history.length).to.be.greaterThan(1);
    const first = body.history[0]!;
    expect(first).to.include.keys(['at', 'latencyMs', 'ok']);
    expect(first.httpStatus).to.equal(200);
    expect(body.history.some((h) => h.change?.to === 'healthy')).to.equal(true);
    expect(body).to.not.have.property('historyUrl');
  });

  it('GET /services/:id/health for another service links to its agent instead of proxying', async function () {
    const c = ServiceHealthSchema.parse((await http(`${base}/service-discovery/services/svc-c/health`)).json);
    expect(c).to.include({ serviceId: 'svc-c', status: 'healthy' });
    expect(c.history).to.deep.equal([]);
    expect(c.historyUrl).to.equal('http://127.0.0.1:1/service-discovery/services/svc-c/health');
    const b = ServiceHealthSchema.parse((await http(`${base}/service-discovery/services/svc-b/health`)).json);
    expect(b.history).to.deep.equal([]);
    expect(b).to.not.have.property('historyUrl');
    expectError(await http(`${base}/service-discovery/services/nope/health`), 404, 'not_found');
  });

  it('GET /service-discovery/topology has the seed fields plus servicesByZone', async function () {
    const res = await http(`${base}/service-discovery/topology`);
    expect(res.status).to.equal(200);
    const t = TopologySchema.parse(res.json);
    expect(t).to.include({ totalServices: 3, healthyServices: 3, unhealthyServices: 0 });
    expect(t.servicesByRegion).to.deep.equal({ 'us-east-1': 2, 'us-west-2': 1 });
    expect(t.servicesByZone).to.deep.equal({ 'us-east-1': { 'us-east-1a': 1, 'us-east-1b': 1 }, 'us-west-2': { 'us-west-2a': 1 } });
    expect(t.servicesByStatus).to.deep.equal({ healthy: 3, unhealthy: 0, starting: 0, draining: 0, stopped: 0 });
    expect(t.leader).to.include({ role: 'leader' });
    expect(t.leader!.id).to.be.oneOf(['svc-a', 'svc-b', 'svc-c']);
  });

  it('disables and enables a service idempotently, with an audit trail', async function () {
    const url = `${base}/service-discovery/services/svc-b`;
    const first = await postJson(`${url}/disable`, { reason: 'deploy' }, auth);
    expect(first.status, first.text).to.equal(200);
    const d1 = SetEnabledResponseSchema.parse(first.json);
    expect(d1).to.include({ serviceId: 'svc-b', enabled: false, changed: true });
    expect(d1.service).to.include({ enabled: false, isHealthy: false, disabledReason: 'deploy' });

    const again = SetEnabledResponseSchema.parse((await postJson(`${url}/disable`, { reason: 'deploy' }, auth)).json);
    expect(again).to.include({ enabled: false, changed: false });

    await eventually('svc-b disabled in the view', () => a.view.service('svc-b')?.enabled === false);
    const list = ServiceListSchema.parse((await http(`${base}/service-discovery/services?healthy=true`)).json);
    expect(list.services.map((s) => s.id)).to.deep.equal(['svc-a', 'svc-c']);
    const notHealthy = ServiceListSchema.parse((await http(`${base}/service-discovery/services?healthy=false`)).json);
    expect(notHealthy.services.map((s) => s.id)).to.deep.equal(['svc-b']);

    // The seed's curl form: no body at all.
    const enable = await http(`${url}/enable`, { method: 'POST', headers: auth });
    expect(enable.status, enable.text).to.equal(200);
    expect(SetEnabledResponseSchema.parse(enable.json)).to.include({ enabled: true, changed: true });

    const audit = AuditResponseSchema.parse((await http(`${base}/service-discovery/audit?serviceId=svc-b`)).json);
    // The repeated disable changed nothing: it left no entry.
    expect(audit.entries.map((e) => [e.action, e.changed])).to.deep.equal([
      ['enable', true],
      ['disable', true],
    ]);
    for (const e of audit.entries) {
      expect(e.actor).to.equal('ci');
      expect(e.source).to.equal('127.0.0.1');
    }
    expect(audit.entries[1]!.reason).to.equal('deploy');
    const limited = AuditResponseSchema.parse((await http(`${base}/service-discovery/audit?limit=1`)).json);
    expect(limited.entries).to.have.length(1);
    expectError(await http(`${base}/service-discovery/audit?limit=0`), 400, 'bad_request', 'limit: expected an integer from 1 to 1000');
    expectError(await http(`${base}/service-discovery/audit?limit=abc`), 400, 'bad_request', 'limit: expected an integer from 1 to 1000');
  });

  it('accepts expiresAt, and refuses one in the past', async function () {
    const url = `${base}/service-discovery/services/svc-c/disable`;
    expectError(
      await postJson(url, { expiresAt: Date.now() - 1000 }, auth),
      400,
      'bad_request',
      'expiresAt: expected a time in the future (epoch milliseconds)',
    );
    const expiresAt = Date.now() + 60_000;
    const res = await postJson(url, { reason: 'short maintenance', expiresAt }, auth);
    expect(res.status, res.text).to.equal(200);
    await eventually('svc-c disabled', () => a.view.service('svc-c')?.enabled === false);
    expect((await postJson(`${base}/service-discovery/services/svc-c/enable`, {}, auth)).status).to.equal(200);
  });

  it('a repeated disable with a new reason answers changed:false, and the new reason is what the record says', async function () {
    const url = `${base}/service-discovery/services/svc-c`;
    expect((await postJson(`${url}/disable`, { reason: 'kernel patch' }, auth)).status).to.equal(200);
    const again = SetEnabledResponseSchema.parse((await postJson(`${url}/disable`, { reason: 'kernel patch, then reboot' }, auth)).json);
    expect(again).to.include({ enabled: false, changed: false, reasonUpdated: true, previousReason: 'kernel patch' });
    expect(again.service).to.include({ disabledReason: 'kernel patch, then reboot' });
    await eventually('the view has the new reason', () => a.view.service('svc-c')?.disabledReason === 'kernel patch, then reboot');
    const [latest] = AuditResponseSchema.parse((await http(`${base}/service-discovery/audit?serviceId=svc-c&limit=1`)).json).entries;
    expect(latest).to.include({ action: 'disable', changed: false, reasonUpdated: true, previousReason: 'kernel patch', actor: 'ci' });
    // The same reason again changes nothing at all: no reasonUpdated in the answer.
    const same = (await postJson(`${url}/disable`, { reason: 'kernel patch, then reboot' }, auth)).json as Record<string, unknown>;
    expect(same).to.include({ changed: false });
    expect(same).to.not.have.property('reasonUpdated');
    expect(same).to.not.have.property('previousReason');
    expect((await postJson(`${url}/enable`, {}, auth)).status).to.equal(200);
  });

  it('enable/disable of an unknown id is a 404 and writes nothing', async function () {
    expectError(await postJson(`${base}/service-discovery/services/ghost/disable`, {}, auth), 404, 'not_found', 'service ghost not found');
    const audit = AuditResponseSchema.parse((await http(`${base}/service-discovery/audit?serviceId=ghost`)).json);
    expect(audit.entries).to.deep.equal([]);
  });

  it('validates the body: wrong types, long reason, unknown fields, malformed JSON', async function () {
    const url = `${base}/service-discovery/services/svc-a/disable`;
    expectError(await postJson(url, { reason: 42 }, auth), 400, 'bad_request', 'reason: expected a string of at most 500 characters');
    expectError(await postJson(url, { reason: 'x'.repeat(501) }, auth), 400, 'bad_request', 'reason: expected a string of at most 500 characters');
    expectError(await postJson(url, { expiresAt: 'soon' }, auth), 400, 'bad_request', 'expiresAt: expected a time in epoch milliseconds');
    expectError(await postJson(url, { resaon: 'typo' }, auth), 400, 'bad_request', 'resaon: unknown field');
    expectError(await postJson(url, [1, 2], auth), 400, 'bad_request', 'body: expected a JSON object');
    expectError(
      await http(url, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"reason": ' }),
      400,
      'bad_request',
      'body: malformed JSON',
    );
    expectError(
      await http(url, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '' }),
      400,
      'bad_request',
    );
    // Nothing of the above changed anything.
    expect(a.view.service('svc-a')?.enabled).to.equal(true);
  });

  it('answers 413 for a body over 16 KiB and 415 for a non-JSON body', async function () {
    const url = `${base}/service-discovery/services/svc-a/disable`;
    expectError(await postJson(url, { reason: 'x'.repeat(17 * 1024) }, auth), 413, 'payload_too_large');
    expectError(
      await http(url, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'disable please' }),
      415,
      'unsupported_media_type',
    );
    expectError(
      await http(url, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, body: 'reason=x' }),
      415,
      'unsupported_media_type',
    );
    expect(a.view.service('svc-a')?.enabled).to.equal(true);
  });

  it('answers unknown routes with a JSON 404', async function () {
    expectError(await http(`${base}/service-discovery/nope`), 404, 'not_found', 'no route GET /service-discovery/nope');
    expectError(await http(`${base}/elsewhere`), 404, 'not_found');
    expectError(await http(`${base}/service-discovery/services/svc-a/enable`), 404, 'not_found');
  });

  it("GET /health is the agent's readiness; /health/live and /health/ready exist", async function () {
    const res = await http(`${base}/health`);
    expect(res.status).to.equal(200);
    const body = AgentHealthSchema.parse(res.json);
    expect(body).to.deep.include({ status: 'ok', registered: true, registry: { reachable: true } });
    expect(body.view.stale).to.equal(false);
    expect(body.view.lastUpdate).to.be.greaterThan(0);
    expect((await http(`${base}/health/live`)).json).to.deep.equal({ status: 'ok' });
    expect((await http(`${base}/health/ready`)).status).to.equal(200);
    expect((await http(`${base}/health`, { method: 'HEAD' })).status).to.equal(200);
  });

  it('GET /health turns 503 when the registry is unreachable, and back', async function () {
    const client = cluster.clients.get('svc-a') as import('../../src/registry/memory.js').MemoryRegistry;
    client.setAvailable(false);
    try {
      const down = await eventually('503 from /health', async () => {
        const r = await http(`${base}/health`);
        return r.status === 503 ? r : undefined;
      });
      expect(AgentHealthSchema.parse(down.json)).to.deep.include({ status: 'degraded' });
      expect((await http(`${base}/health/ready`)).status).to.equal(503);
      expect((await http(`${base}/health/live`)).status).to.equal(200);
      // Reads keep serving the last known view; writes say the registry is away.
      expect((await http(`${base}/service-discovery/services`)).status).to.equal(200);
      expectError(await postJson(`${base}/service-discovery/services/svc-b/disable`, {}, auth), 503, 'registry_unavailable');
    } finally {
      client.setAvailable(true);
    }
    await eventually('200 from /health again', async () => (await http(`${base}/health`)).status === 200);
    expect(a.view.service('svc-b')?.enabled).to.equal(true);
  });
});

describe('API server: before the agent starts', function () {
  it('answers status, and 503 JSON for what needs the view', async function () {
    const cluster = await TestCluster.memory();
    const agent = await cluster.addAgent({ id: 'late' }, { start: false });
    const api = await startApiServer(agent, { host: '127.0.0.1', port: 0, auth: { keys: [], readAccess: 'open' } });
    try {
      const status = await http(`${api.url}/service-discovery/status`);
      expect(status.status).to.equal(200);
      expect((status.json as { status: string }).status).to.equal('registering');
      expectError(await http(`${api.url}/service-discovery/services`), 503, 'not_started');
      expect((await http(`${api.url}/health`)).status).to.equal(503);
      expect((await http(`${api.url}/metrics`)).status).to.equal(200);
    } finally {
      await api.close();
      await cluster.stop();
    }
  });
});
