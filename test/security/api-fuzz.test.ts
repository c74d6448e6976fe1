/**
 * Property-based fuzzing of the agent's API (issue 16): random bytes, strings and JSON thrown at the
 * admin bodies, the ids in paths, the query string of every GET route, Last-Event-ID and arbitrary
 * headers, sent byte for byte over a socket. Whatever comes in:
 *
 * - every answer is a 2xx, or a 4xx/5xx in the documented `{error, message}` shape with a JSON
 *   content type (the health probes' own 503 aside);
 * - no client input earns a 5xx (the only ones allowed are the documented 503s);
 * - no answer carries a raw control or bidirectional-control character;
 * - a refused request wrote nothing: the audit trail is as it was;
 * - the server is still there at the end: its probes answer 200.
 *
 * Most runs use the in-memory registry; a smaller one uses a real etcd.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import type { Registry } from '../../src/registry/types.js';
import { UNSAFE_CHARACTER } from '../../src/util/text.js';
import { TestCluster, capturingLogger } from '../api/fixtures.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { buildRequest, rawRequest, type RawRequest, type RawResponse } from './raw-http.js';

const OPERATOR = 'fuzz-operator-key-3b9d';
const VIEWER = 'fuzz-viewer-key-a17c';
const KEY_NAMES = new Set(['fuzz-ops', 'fuzz-viewer']);
const UNSAFE = new RegExp(UNSAFE_CHARACTER);
/** The 503s the API documents; any other 5xx is a bug. */
const DOCUMENTED_503 = new Set(['too_many_streams', 'not_started', 'registry_unavailable']);
const HEALTH_PATHS = new Set(['/health', '/health/ready']);
const GET_PATHS = [
  '/service-discovery/status',
  '/service-discovery/services',
  '/service-discovery/topology',
  '/service-discovery/audit',
  '/service-discovery/events',
  '/service-discovery/prometheus/targets',
  '/service-discovery/openapi.json',
  '/health',
  '/health/live',
  '/health/ready',
  '/metrics',
] as const;
/** Headers that would change how the request is framed (and so hang a request, not test the API). */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect', 'host', 'te', 'trailer', 'keep-alive']);

// ---- what the answers must look like ----

function check(res: RawResponse, what: string, head: boolean): void {
  const context = `${what} -> ${res.status} ${res.text.slice(0, 300)}`;
  expect(res.status, context).to.satisfy((s: number) => (s >= 200 && s < 300) || (s >= 400 && s < 600));
  const type = res.headers['content-type'] ?? '';
  // A HEAD answer has the headers of the GET, no body.
  if (head) {
    if (res.status >= 400) expect(type, context).to.match(/^application\/json/);
    expect(res.status, context).to.not.equal(500);
    return;
  }
  const isStream = type.startsWith('text/event-stream');
  if (!isStream) {
    // Line feeds end the lines of /metrics; nothing else may be a control character, anywhere.
    const text = type.startsWith('text/plain') ? res.text.replace(/\n/g, '') : res.text;
    expect(text, `raw control character in ${context}`).to.not.match(UNSAFE);
  }
  if (res.status < 400) return;
  if (res.status === 503 && res.json !== undefined && (res.json as { status?: unknown }).status === 'degraded') return;
  expect(type, context).to.match(/^application\/json/);
  const body = res.json as Record<string, unknown> | undefined;
  expect(body, context).to.be.an('object');
  expect(Object.keys(body!).sort(), context).to.deep.equal(['error', 'message']);
  expect(body!.error, context).to.be.a('string');
  expect(body!.message, context).to.be.a('string');
  if (res.status >= 500) {
    expect(res.status, `a 5xx for client input: ${context}`).to.equal(503);
    expect(DOCUMENTED_503.has(String(body!.error)), context).to.equal(true);
  }
}

// ---- generators ----

/** Any string, including lone surrogates (sent as UTF-8, they become U+FFFD). */
const anyString = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }));

/** A URL component: percent-encoded text, broken percent-encodings, raw bytes, very long runs. */
const urlPart = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30 }).map(encodeURIComponent),
  fc.stringMatching(/^(%[0-9A-Fa-f]{2}|%.{0,2}|[A-Za-z0-9._~-]){1,20}$/),
  fc.string({ unit: fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
  fc.integer({ min: 200, max: 3000 }).map((n) => 'i'.repeat(n)),
  fc.constantFrom('svc-a', 'svc-b', '', '.', '..', '%00', '%2F', '%C0%AF', '%E2%80%AE', '%ff', '%'),
);

/** Values a body field might take, right and wrong. */
const fieldValue = fc.oneof(
  anyString,
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(9e15, -1, 0, 1e308, Number.MAX_SAFE_INTEGER, 86_401, 0.5),
  // Times near now, in the past and within or beyond the horizon (never less than an hour ahead, so
  // no timed disable lapses, and no drain ends, while the fuzzer compares the audit trail).
  fc.integer({ min: -400, max: 400 }).map((days) => Date.now() + Math.sign(days || 1) * (3_600_000 + Math.abs(days) * 86_400_000)),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
);

/** An enable/disable body: JSON of any shape, right-looking objects, broken JSON, bytes. */
const adminBody = fc.oneof(
  fc.record(
    { reason: fieldValue, expiresAt: fieldValue, drainTimeout: fieldValue, force: fieldValue },
    { requiredKeys: [] },
  ).map((o) => JSON.stringify(o)),
  fc.record({ reason: fc.string({ maxLength: 600 }), drainTimeout: fc.constantFrom(3600, 7200) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.json(),
  anyString,
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.constantFrom(
    '',
    'null',
    '[]',
    '{"__proto__": {"enabled": false}}',
    '{"constructor": {"prototype": {"x": 1}}}',
    '{"reason": "a", "reason": 5}',
    `{"reason": "${'r'.repeat(20_000)}"}`,
    '{"reason": "\\u0085\\u202e\\u001b[2J"}',
  ),
);

const contentType = fc.oneof(
  fc.constantFrom('application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data; boundary=x'),
  fc.constant(undefined),
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 30 }),
);

const credentials = fc.constantFrom<ReadonlyArray<readonly [string, string]>>(
  [['Authorization', `Bearer ${OPERATOR}`]],
  [['X-API-Key', OPERATOR]],
  [['Authorization', `Bearer ${VIEWER}`]],
  [['Authorization', 'Bearer wrong']],
  [['Authorization', 'Basic Zm9vOmJhcg==']],
  [],
);

/** A query string: known and unknown names, right and wrong values, broken encodings. */
const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('status', 'region', 'zone', 'healthy', 'serviceId', 'limit', 'types', 'lastEventId', 'target', '__proto__', 'constructor', 'key', 'limit[]'),
        urlPart,
      ),
      fc.oneof(
        urlPart,
        fc.constantFrom('healthy', 'true', 'false', 'us-east-1', '1', '1000', '0x10', '1e2', '-1', 'agent', 'instance', 'serviceJoined,leaderElected', 'svc-a'),
      ),
    ),
    { maxLength: 6 },
  )
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

/** A header value: printable Latin-1, sometimes with control bytes or very long. */
const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 80 }),
  fc.string({ unit: fc.integer({ min: 0x00, max: 0xff }).filter((c) => c !== 0x0a && c !== 0x0d).map((c) => String.fromCharCode(c)), maxLength: 20 }),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => 'h'.repeat(n)),
);

const headerName = fc
  .oneof(
    fc.constantFrom('Authorization', 'X-API-Key', 'Last-Event-ID', 'Accept', 'Content-Type', 'X-Forwarded-For', 'Cookie', 'Origin', 'Accept-Encoding'),
    fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 20 }),
  )
  .filter((n) => !FRAMING_HEADERS.has(n.toLowerCase()) && !n.includes(':'));

// ---- the harness ----

interface Target {
  base: string;
  /** Audit entries written by API callers (not the system's automatic ones), as a comparable list. */
  audit(): Promise<string[]>;
}

async function send(target: Target, request: RawRequest, what: string, write: boolean): Promise<void> {
  const before = write ? await target.audit() : undefined;
  const res = await rawRequest(target.base, request);
  check(res, what, request.head.toString().startsWith('HEAD '));
  if (before !== undefined && res.status >= 400) {
    expect(await target.audit(), `${what} -> ${res.status} wrote to the audit trail`).to.deep.equal(before);
  }
}

function auditOf(registry: Registry, namespace: string): () => Promise<string[]> {
  const layout = keyLayout(namespace);
  return async () => {
    const listed = await registry.list(layout.audit);
    return listed.kvs
      .filter((kv) => {
        try {
          return KEY_NAMES.has((JSON.parse(kv.value) as { actor?: string }).actor ?? '');
        } catch {
          return true;
        }
      })
      .map((kv) => kv.key)
      .sort();
  };
}

const adminProperty = (target: Target) =>
  fc.asyncProperty(
    fc.constantFrom('enable', 'disable'),
    fc.oneof(fc.constantFrom('svc-a', 'svc-b'), urlPart),
    adminBody,
    contentType,
    credentials,
    async (verb, id, body, type, auth) => {
      const headers: (readonly [string, string])[] = [...auth];
      if (type !== undefined) headers.push(['Content-Type', type]);
      const what = `POST /services/${id.slice(0, 60)}/${verb} (${type}) ${String(body).slice(0, 80)}`;
      await send(target, buildRequest('POST', `/service-discovery/services/${id}/${verb}`, headers, body), what, true);
    },
  );

const idProperty = (target: Target) =>
  fc.asyncProperty(urlPart, fc.constantFrom('', '/health', '/enable', '/disable', '/nope'), fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'), async (id, tail, method) => {
    const headers: (readonly [string, string])[] = method === 'POST' ? [['Authorization', `Bearer ${OPERATOR}`]] : [];
    const what = `${method} /services/${id.slice(0, 60)}${tail}`;
    await send(target, buildRequest(method, `/service-discovery/services/${id}${tail}`, headers), what, method === 'POST');
  });

describe('API fuzzing (fast-check): whatever comes in, the answers keep their shape', function () {
  this.timeout(120_000);

  describe('on the in-memory registry', function () {
    let cluster: TestCluster;
    let agent: ServiceAgent;
    let api: ApiServer;
    let target: Target;
    const logger = capturingLogger();

    before(async function () {
      cluster = await TestCluster.memory();
      agent = await cluster.addAgent({ id: 'svc-a', zone: 'us-east-1a' });
      await cluster.addAgent({ id: 'svc-b', zone: 'us-east-1b' });
      await cluster.settled(2);
      api = await startApiServer(agent, {
        host: '127.0.0.1',
        port: 0,
        logger,
        auth: {
          keys: [
            { name: 'fuzz-ops', role: 'operator', key: OPERATOR },
            { name: 'fuzz-viewer', role: 'viewer', key: VIEWER },
          ],
          readAccess: 'open',
        },
      });
      target = { base: api.url, audit: auditOf(await cluster.client(), 'proxy-stone') };
    });

    after(async function () {
      // The server survived all of it.
      if (api) {
        for (const path of ['/health/live', '/health/ready']) {
          const res = await rawRequest(api.url, buildRequest('GET', path));
          expect(res.status, `${path} after fuzzing: ${res.text}`).to.equal(200);
        }
      }
      await api?.close();
      await cluster?.stop();
      const log = logger.lines.join('\n');
      expect(log).to.not.include(OPERATOR);
      expect(log).to.not.include(VIEWER);
    });

    it('enable/disable bodies: any JSON, broken JSON, bytes, any content type, any key', async function () {
      await fc.assert(adminProperty(target), { numRuns: 150 });
    });

    it('ids in the path: unicode, percent-encodings good and bad, raw bytes, very long; any method', async function () {
      await fc.assert(idProperty(target), { numRuns: 150 });
    });

    it('query strings of every GET route', async function () {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...GET_PATHS), queryString, async (path, query) => {
          await send(target, buildRequest('GET', `${path}${query}`), `GET ${path}${query.slice(0, 120)}`, false);
        }),
        { numRuns: 150 },
      );
    });

    it('Last-Event-ID on the event stream, as a header and in the query', async function () {
      await fc.assert(
        fc.asyncProperty(headerValue, urlPart, fc.boolean(), async (header, query, asHeader) => {
          const request = asHeader
            ? buildRequest('GET', '/service-discovery/events', [['Last-Event-ID', header]])
            : buildRequest('GET', `/service-discovery/events?lastEventId=${query}`);
          await send(target, request, `events Last-Event-ID ${asHeader ? JSON.stringify(header.slice(0, 60)) : query.slice(0, 60)}`, false);
        }),
        { numRuns: 80 },
      );
    });

    it('arbitrary headers on any route', async function () {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...GET_PATHS, '/service-discovery/services/svc-b/disable'),
          fc.array(fc.tuple(headerName, headerValue), { maxLength: 5 }),
          async (path, headers) => {
            const post = path.endsWith('/disable');
            const request = buildRequest(post ? 'POST' : 'GET', path, headers, post ? '{}' : undefined);
            await send(target, request, `${path} with ${JSON.stringify(headers).slice(0, 200)}`, post);
          },
        ),
        { numRuns: 100 },
      );
    });
  });

  describe('on etcd', function () {
    let cluster: TestCluster;
    let api: ApiServer;
    let target: Target;

    before(async function () {
      this.timeout(60_000);
      const etcd = await sharedEtcd();
      const namespace = uniqueNamespace('fuzz');
      const connect = () => new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 2000 });
      cluster = await TestCluster.custom(connect, { registry: 'etcd', endpoints: [etcd.endpoint], namespace });
      const agent = await cluster.addAgent({ id: 'svc-a', zone: 'us-east-1a' });
      await cluster.addAgent({ id: 'svc-b', zone: 'us-east-1b' });
      await cluster.settled(2);
      api = await startApiServer(agent, {
        host: '127.0.0.1',
        port: 0,
        auth: { keys: [{ name: 'fuzz-ops', role: 'operator', key: OPERATOR }], readAccess: 'open' },
      });
      target = { base: api.url, audit: auditOf(await cluster.client(), namespace) };
    });

    after(async function () {
      if (api) expect((await rawRequest(api.url, buildRequest('GET', '/health/ready'))).status).to.equal(200);
      await api?.close();
      await cluster?.stop();
    });

    it('enable/disable bodies and ids reach etcd only when valid', async function () {
      await fc.assert(adminProperty(target), { numRuns: 40 });
      await fc.assert(idProperty(target), { numRuns: 40 });
    });
  });
});
