/**
 * Issue 16, "Hostile input: found in an attack session", the API's part: times out of range, long
 * ids, error shapes of every layer (Node's HTTP parser, Fastify, the routes), refused writes in the
 * log, credentials in logged URLs, and bodies that are not plain objects. Each test here failed
 * before its fix.
 */
import { expect } from 'chai';
import Fastify from 'fastify';
import { request as httpRequest } from 'node:http';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { apiServerOptions, serviceDiscoveryPlugin, startApiServer, type ApiServer } from '../../src/api/server.js';
import { AuditResponseSchema, ServiceRecordSchema, SetEnabledResponseSchema } from '../../src/api/schemas.js';
import { keyLayout } from '../../src/cluster/keys.js';
import type { MemoryRegistry } from '../../src/registry/memory.js';
import { UNSAFE_CHARACTER } from '../../src/util/text.js';
import { TestCluster, capturingLogger, eventually, http, postJson, type HttpResult } from '../api/fixtures.js';
import { raw, rawRequest, type RawResponse } from './raw-http.js';

const OPERATOR = 'hostile-operator-key-7c2e91';
const VIEWER = 'hostile-viewer-key-55ab0d';
const op = { Authorization: `Bearer ${OPERATOR}` };
const DAY = 24 * 60 * 60 * 1000;
/** A 256-character id: the longest the API takes. */
const LONG_ID = `long-${'x'.repeat(251)}`;
const UNSAFE = new RegExp(UNSAFE_CHARACTER);

/** The documented error shape, and nothing raw or echoed in it. */
function expectError(res: HttpResult | RawResponse, status: number, code: string, message?: RegExp | string): void {
  expect(res.status, res.text).to.equal(status);
  const ct = (res.headers as Record<string, string | string[] | undefined>)['content-type'];
  expect(String(ct), res.text).to.match(/^application\/json/);
  const body = res.json as { error: string; message: string };
  expect(body, res.text).to.have.keys(['error', 'message']);
  expect(body.error).to.equal(code);
  expect(body.message).to.be.a('string').and.not.equal('');
  if (typeof message === 'string') expect(body.message).to.equal(message);
  else if (message) expect(body.message).to.match(message);
  expect(res.text, 'no raw control character in the answer').to.not.match(UNSAFE);
  expect(res.text).to.not.match(/\n\s+at /);
}

describe('API: hostile input (issue 16)', function () {
  let cluster: TestCluster;
  let a: ServiceAgent;
  let api: ApiServer;
  let base: string;
  let store: MemoryRegistry;
  const logger = capturingLogger();
  const layout = keyLayout('proxy-stone');

  /** Every intent and audit entry in the registry, to show a refused request wrote nothing. */
  async function writes(): Promise<string[]> {
    const [admin, audit] = await Promise.all([store.list(layout.admin), store.list(layout.audit)]);
    return [...admin.kvs, ...audit.kvs].map((kv) => `${kv.key}@${kv.modRevision}`);
  }

  before(async function () {
    cluster = await TestCluster.memory();
    store = cluster.clients.get('__root__') as MemoryRegistry;
    a = await cluster.addAgent({ id: 'svc-a', zone: 'us-east-1a' });
    await cluster.addAgent({ id: 'svc-b', zone: 'us-east-1b' });
    await cluster.addAgent({ id: LONG_ID, zone: 'us-east-1c' });
    await cluster.settled(3);
    api = await startApiServer(a, {
      host: '127.0.0.1',
      port: 0,
      logger,
      auth: {
        keys: [
          { name: 'ops', role: 'operator', key: OPERATOR },
          { name: 'watcher', role: 'viewer', key: VIEWER },
        ],
        readAccess: 'open',
      },
    });
    base = api.url;
  });

  after(async function () {
    await api?.close();
    await cluster?.stop();
    const log = logger.lines.join('\n');
    for (const secret of [OPERATOR, VIEWER, 'query-secret-1', 'query-secret-2', 'query-secret-3', 'userinfo-secret']) {
      expect(log, `${secret} in the log`).to.not.include(secret);
    }
  });

  describe('item 2: times in bodies are bounded', function () {
    const disable = (id: string) => `${base}/service-discovery/services/${id}/disable`;
    const enable = (id: string) => `${base}/service-discovery/services/${id}/enable`;

    it('refuses an expiresAt beyond what a Date holds (9e15), on disable and enable, and writes nothing', async function () {
      const before = await writes();
      expectError(await postJson(disable('svc-b'), { expiresAt: 9e15 }, op), 400, 'bad_request', /^expiresAt: /);
      expectError(await postJson(enable('svc-b'), { expiresAt: 9e15 }, op), 400, 'bad_request', /^expiresAt: /);
      expectError(await postJson(disable('svc-b'), { expiresAt: Number.MAX_SAFE_INTEGER }, op), 400, 'bad_request', /^expiresAt: /);
      expect(await writes()).to.deep.equal(before);
    });

    it('refuses an expiresAt more than 366 days ahead, takes one within the horizon', async function () {
      const before = await writes();
      expectError(
        await postJson(disable('svc-b'), { expiresAt: Date.now() + 367 * DAY }, op),
        400,
        'bad_request',
        'expiresAt: expected a time in epoch milliseconds at most 366 days ahead',
      );
      expectError(await postJson(disable('svc-b'), { expiresAt: Date.now() + 60_000 + 0.5 }, op), 400, 'bad_request', /^expiresAt: expected a time in epoch milliseconds/);
      expectError(await postJson(disable('svc-b'), { expiresAt: -5 }, op), 400, 'bad_request', /^expiresAt: /);
      expect(await writes()).to.deep.equal(before);
      const ok = await postJson(disable('svc-b'), { expiresAt: Date.now() + 365 * DAY, reason: 'long maintenance' }, op);
      expect(ok.status, ok.text).to.equal(200);
      expect((await postJson(enable('svc-b'), {}, op)).status).to.equal(200);
    });

    it('bounds drainTimeout to 0..86400 seconds', async function () {
      const before = await writes();
      expectError(await postJson(disable('svc-b'), { drainTimeout: 1e12 }, op), 400, 'bad_request', 'drainTimeout: expected seconds, at most 86400');
      expectError(await postJson(disable('svc-b'), { drainTimeout: -1 }, op), 400, 'bad_request', 'drainTimeout: expected seconds (0 or more)');
      expect(await writes()).to.deep.equal(before);
    });
  });

  describe('item 4: one id limit (256 characters) everywhere', function () {
    it('serves, disables and enables a service whose id has exactly 256 characters', async function () {
      expect(LONG_ID).to.have.length(256);
      const got = await http(`${base}/service-discovery/services/${LONG_ID}`);
      expect(got.status, got.text).to.equal(200);
      expect(ServiceRecordSchema.parse(got.json).id).to.equal(LONG_ID);
      const off = await postJson(`${base}/service-discovery/services/${LONG_ID}/disable`, { reason: 'long id' }, op);
      expect(off.status, off.text).to.equal(200);
      expect(SetEnabledResponseSchema.parse(off.json)).to.include({ serviceId: LONG_ID, enabled: false, changed: true });
      expect((await http(`${base}/service-discovery/services/${LONG_ID}/health`)).status).to.equal(200);
      const on = await postJson(`${base}/service-discovery/services/${LONG_ID}/enable`, {}, op);
      expect(on.status, on.text).to.equal(200);
      const audit = AuditResponseSchema.parse((await http(`${base}/service-discovery/audit?serviceId=${LONG_ID}`)).json);
      expect(audit.entries.map((e) => e.action)).to.deep.equal(['enable', 'disable']);
    });

    it('answers 400 naming id for 257 characters, on every route with an id', async function () {
      const id = 'y'.repeat(257);
      const message = 'id: expected a service id of at most 256 characters';
      expectError(await http(`${base}/service-discovery/services/${id}`), 400, 'bad_request', message);
      expectError(await http(`${base}/service-discovery/services/${id}/health`), 400, 'bad_request', message);
      expectError(await postJson(`${base}/service-discovery/services/${id}/disable`, {}, op), 400, 'bad_request', message);
      expectError(await postJson(`${base}/service-discovery/services/${id}/enable`, {}, op), 400, 'bad_request', message);
    });

    it('counts characters, not their percent-encoding: 256 two-byte characters reach the route, 257 are refused', async function () {
      const at = (n: number) => `${base}/service-discovery/services/${encodeURIComponent('é'.repeat(n))}`;
      expectError(await http(at(256)), 404, 'not_found', /^service é+ not found$/);
      expectError(await http(at(257)), 400, 'bad_request', 'id: expected a service id of at most 256 characters');
      // Three-byte characters: the longest encoding of a 256-character id (9 characters each).
      expectError(await http(`${base}/service-discovery/services/${encodeURIComponent('€'.repeat(256))}`), 404, 'not_found');
    });
  });

  describe('item 4 (plugin): the host\'s Fastify decides the path limit', function () {
    it('warns on a host with the default maxParamLength; apiServerOptions() lets a 256-character id through', async function () {
      const warned = capturingLogger();
      const plain = Fastify();
      await plain.register(serviceDiscoveryPlugin, { agent: a, auth: { keys: [], readAccess: 'open' }, logger: warned, advertise: false });
      await plain.ready();
      await plain.close();
      expect(warned.lines.join('\n')).to.include('"event":"api.max_param_length"');

      const quiet = capturingLogger();
      const host = Fastify({ ...apiServerOptions() });
      await host.register(serviceDiscoveryPlugin, { agent: a, auth: { keys: [], readAccess: 'open' }, logger: quiet, advertise: false });
      try {
        const ok = await host.inject({ method: 'GET', url: `/service-discovery/services/${LONG_ID}` });
        expect(ok.statusCode, ok.body).to.equal(200);
        const tooLong = await host.inject({ method: 'GET', url: `/service-discovery/services/${'y'.repeat(257)}` });
        expect(tooLong.statusCode).to.equal(400);
        expect(tooLong.json()).to.deep.equal({ error: 'bad_request', message: 'id: expected a service id of at most 256 characters' });
        const bad = await host.inject({ method: 'GET', url: '/service-discovery/services/%zz' });
        expect(bad.json()).to.deep.equal({ error: 'bad_request', message: 'path: invalid percent-encoding' });
      } finally {
        await host.close();
      }
      expect(quiet.lines.join('\n')).to.not.include('api.max_param_length');
    });
  });

  describe('item 9: every error in the documented shape, nothing echoed', function () {
    it('431: headers larger than Node accepts', async function () {
      const res = await raw(base, 'GET', '/service-discovery/status', [['X-Filler', 'f'.repeat(20_000)]]);
      expectError(res, 431, 'headers_too_large');
      expect(res.text).to.not.include('ffff');
    });

    it('414: a path segment too long to be any id, without echoing the URL', async function () {
      const segment = 'z'.repeat(5000);
      const res = await raw(base, 'GET', `/service-discovery/services/${segment}`);
      expectError(res, 414, 'uri_too_long');
      expect(res.text).to.not.include('zzzz');
    });

    it('400: a malformed request line, and a bad header, from the HTTP parser', async function () {
      expectError(await rawRequest(base, { head: 'THIS IS NOT HTTP' }), 400, 'bad_request');
      expectError(await rawRequest(base, { head: 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y' }), 400, 'bad_request');
    });

    it('400: a bad percent-encoding in the path, without echoing it', async function () {
      const res = await raw(base, 'GET', '/service-discovery/services/%zz-evil%');
      expectError(res, 400, 'bad_request', /^path: /);
      expect(res.text).to.not.include('evil');
    });

    it('415, 413, malformed JSON, a bad Content-Length: the shape, and no body echoed', async function () {
      const url = '/service-discovery/services/svc-a/disable';
      const auth: [string, string] = ['Authorization', `Bearer ${OPERATOR}`];
      expectError(await raw(base, 'POST', url, [auth, ['Content-Type', 'text/xml']], '<evil/>'), 415, 'unsupported_media_type');
      expectError(await raw(base, 'POST', url, [auth, ['Content-Type', 'application/json']], `{"reason":"${'e'.repeat(20_000)}"}`), 413, 'payload_too_large');
      const malformed = await raw(base, 'POST', url, [auth, ['Content-Type', 'application/json']], '{"reason": evil');
      expectError(malformed, 400, 'bad_request', 'body: malformed JSON');
      expect(malformed.text).to.not.include('evil');
      expectError(await raw(base, 'POST', url, [auth, ['Content-Type', 'application/json'], ['Content-Length', 'abc']], '{}'), 400, 'bad_request');
      expect(a.view.service('svc-a')?.enabled).to.equal(true);
    });

    it('404: the path is shown escaped and cut short, the query not at all', async function () {
      const res = await raw(base, 'GET', `/nowhere/%1b[2J${'q'.repeat(400)}?password=query-secret-1`);
      expectError(res, 404, 'not_found', /^no route GET \/nowhere\/%1b\[2Jq+…$/);
      expect(res.text).to.not.include('query-secret-1');
      expect((res.json as { message: string }).message.length).to.be.at.most(300);
      // Raw control bytes never get that far: Node's parser refuses the request line.
      expectError(await raw(base, 'GET', '/nowhere/\x1b[2J'), 400, 'bad_request');
      expectError(await raw(base, 'GET', '/nowhere/\x85'), 400, 'bad_request');
      const id = await raw(base, 'GET', '/service-discovery/services/%C2%85%E2%80%AEevil');
      expectError(id, 404, 'not_found', 'service \\u0085\\u202eevil not found');
    });
  });

  describe('item 10: refusals are logged with the key name; credentials never', function () {
    it('a viewer key refused a write is named in the log (event api.refused), never its secret', async function () {
      logger.lines.length = 0;
      const res = await postJson(`${base}/service-discovery/services/svc-b/disable`, { reason: 'nope' }, { Authorization: `Bearer ${VIEWER}` });
      expectError(res, 403, 'forbidden');
      const refused = logger.lines.find((l) => l.includes('"event":"api.refused"'));
      expect(refused, logger.lines.join('\n')).to.not.equal(undefined);
      expect(refused).to.include('"actor":"watcher"');
      expect(refused).to.include('"id":"svc-b"');
      expect(refused).to.include('"statusCode":403');
      const request = logger.lines.find((l) => l.includes('"event":"api.request"'));
      expect(request).to.include('"actor":"watcher"');
    });

    it('an anonymous refused write is logged too', async function () {
      logger.lines.length = 0;
      expectError(await postJson(`${base}/service-discovery/services/svc-b/disable`, {}), 401, 'unauthorized');
      const refused = logger.lines.find((l) => l.includes('"event":"api.refused"'));
      expect(refused, logger.lines.join('\n')).to.include('"actor":null');
      expect(refused).to.include('"statusCode":401');
    });

    it('redacts credentials in logged URLs (query parameters named like keys, tokens, passwords)', async function () {
      logger.lines.length = 0;
      const q = '?key=query-secret-1&api_key=query-secret-2&access_token=query-secret-3&Token=t&apikey=k&password=p&region=us-east-1';
      expect((await http(`${base}/service-discovery/services${q}`)).status).to.equal(200);
      expect((await postJson(`${base}/service-discovery/services/svc-b/enable${q}`, {}, op)).status).to.equal(200);
      const lines = logger.lines.filter((l) => l.includes('"event":"api.request"'));
      expect(lines, logger.lines.join('\n')).to.have.length(2);
      for (const line of lines) {
        expect(line).to.include('key=[REDACTED]&api_key=[REDACTED]&access_token=[REDACTED]&Token=[REDACTED]&apikey=[REDACTED]&password=[REDACTED]&region=us-east-1');
      }
    });

    it('redacts the userinfo of an absolute-form request target', async function () {
      logger.lines.length = 0;
      const res = await raw(base, 'GET', `http://admin:userinfo-secret@127.0.0.1/service-discovery/services?token=query-secret-1`);
      expect(res.status).to.equal(200);
      const line = logger.lines.find((l) => l.includes('"event":"api.request"'));
      expect(line, logger.lines.join('\n')).to.include('"url":"http://[REDACTED]@127.0.0.1/service-discovery/services?token=[REDACTED]"');
    });
  });

  describe('item 11: a body must be a plain JSON object', function () {
    const url = () => `${base}/service-discovery/services/svc-b/disable`;
    const send = (body: string) => http(url(), { method: 'POST', headers: { ...op, 'content-type': 'application/json' }, body });

    it('null, a string, a number, a boolean or an array: 400 "body: expected a JSON object", nothing written', async function () {
      const before = await writes();
      for (const body of ['null', '"disable"', '42', 'true', '[]']) {
        expectError(await send(body), 400, 'bad_request', 'body: expected a JSON object');
      }
      expect(await writes()).to.deep.equal(before);
      expect(a.view.service('svc-b')?.enabled).to.equal(true);
    });

    it('"__proto__" and constructor.prototype keys: a clear 400, not "malformed JSON"', async function () {
      const before = await writes();
      expectError(await send('{"__proto__": {"enabled": false}}'), 400, 'bad_request', 'body: "__proto__" and "constructor.prototype" keys are not allowed');
      expectError(await send('{"constructor": {"prototype": {"x": 1}}}'), 400, 'bad_request', 'body: "__proto__" and "constructor.prototype" keys are not allowed');
      expect(await writes()).to.deep.equal(before);
    });

    it('no body at all (the seed\'s curl form) is still an empty request', async function () {
      const res = await http(url().replace('/disable', '/enable'), { method: 'POST', headers: op });
      expect(res.status, res.text).to.equal(200);
      const zero = await raw(base, 'POST', '/service-discovery/services/svc-b/enable', [['Authorization', `Bearer ${OPERATOR}`], ['Content-Length', '0']]);
      expect(zero.status, zero.text).to.equal(200);
    });
  });

  describe('answers carry no raw control characters', function () {
    it('a reason with C1 and bidirectional controls is stored as given and served escaped, in JSON and on the event stream', async function () {
      const reason = 'kernel\u0085patch \u202eevil\u202c \u009b2J';
      const sse = await new Promise<{ text: () => string; close: () => void }>((resolve, reject) => {
        let text = '';
        const req = httpRequest(`${base}/service-discovery/events?types=serviceDisabled`, (res) => {
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          resolve({ text: () => text, close: () => req.destroy() });
        });
        req.on('error', reject);
        req.end();
      });
      try {
        const res = await postJson(`${base}/service-discovery/services/svc-b/disable`, { reason }, op);
        expect(res.status, res.text).to.equal(200);
        expect(res.text).to.not.match(UNSAFE);
        expect((res.json as { service: { disabledReason: string } }).service.disabledReason).to.equal(reason);
        const audit = await http(`${base}/service-discovery/audit?serviceId=svc-b&limit=1`);
        expect(audit.text).to.not.match(UNSAFE);
        expect(AuditResponseSchema.parse(audit.json).entries[0]!.reason).to.equal(reason);
        await eventually('the event on the stream', () => sse.text().includes('serviceDisabled'));
        // Line feeds frame the stream; nothing else of its text may be a control character.
        expect(sse.text().replace(/\n/g, '')).to.not.match(UNSAFE);
      } finally {
        sse.close();
      }
      expect((await postJson(`${base}/service-discovery/services/svc-b/enable`, {}, op)).status).to.equal(200);
    });
  });

  describe('query strings and headers are bounded', function () {
    it('audit limit: digits only, 1..1000', async function () {
      for (const limit of ['0x10', '1e2', '+5', '5.0', ' 5', '', '1001', '99999999999999999999']) {
        expectError(await http(`${base}/service-discovery/audit?limit=${encodeURIComponent(limit)}`), 400, 'bad_request', 'limit: expected an integer from 1 to 1000');
      }
      expect((await http(`${base}/service-discovery/audit?limit=1000`)).status).to.equal(200);
    });

    it('filters and ids in the query are at most 256 characters', async function () {
      const long = 'r'.repeat(257);
      expectError(await http(`${base}/service-discovery/services?region=${long}`), 400, 'bad_request', /^region: /);
      expectError(await http(`${base}/service-discovery/services?zone=${long}`), 400, 'bad_request', /^zone: /);
      expectError(await http(`${base}/service-discovery/audit?serviceId=${long}`), 400, 'bad_request', /^serviceId: /);
      expectError(await http(`${base}/service-discovery/events?types=${'serviceJoined,'.repeat(100)}`), 400, 'bad_request', /^types: /);
      expect((await http(`${base}/service-discovery/services?region=${'r'.repeat(256)}`)).status).to.equal(200);
    });

    it('Last-Event-ID (header or query): at most 64 printable characters, else 400 before the stream opens', async function () {
      const long = 'f'.repeat(65);
      expectError(await raw(base, 'GET', '/service-discovery/events', [['Last-Event-ID', long]]), 400, 'bad_request', /^Last-Event-ID: /);
      expectError(await raw(base, 'GET', `/service-discovery/events?lastEventId=${long}`), 400, 'bad_request', /^lastEventId: /);
      expectError(await raw(base, 'GET', '/service-discovery/events', [['Last-Event-ID', 'caf\xe9']]), 400, 'bad_request', /^Last-Event-ID: /);
      // Within the bound, an id from elsewhere still resumes with a reset, as documented.
      const ok = await raw(base, 'GET', '/service-discovery/events', [['Last-Event-ID', 'not-one-of-ours']]);
      expect(ok.status).to.equal(200);
      expect(ok.headers['content-type']).to.match(/^text\/event-stream/);
    });
  });
});
