import { expect } from 'chai';
import Fastify from 'fastify';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { Agent, EventSource, type Dispatcher } from 'undici';
import WebSocket from 'ws';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { WS_CLOSE } from '../../src/api/events.js';
import { apiServerOptions, serviceDiscoveryPlugin, startApiServer, type ApiServer } from '../../src/api/server.js';
import { keyLayout } from '../../src/cluster/keys.js';
import type { Registry } from '../../src/registry/types.js';
import { putUnderLease, sampleRecord } from '../helpers/records.js';
import { SseClient, TestCluster, capturingLogger, eventually, http, sleep } from './fixtures.js';

const OPERATOR = 'ws-operator-key-000001';
const VIEWER = 'ws-viewer-key-0000001';
const PAGE = 'http://dashboard.example:8080';

interface WsMessage {
  id?: string;
  event?: string;
  data: { type?: string; serviceId?: string; lastEventId?: string; stream?: string; [k: string]: unknown };
}

/** A `ws` client that keeps every message and how the socket ended. */
class WsClient {
  readonly messages: WsMessage[] = [];
  readonly socket: WebSocket;
  status = 0;
  closeCode: number | undefined;
  closeReason = '';
  readonly opened: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.socket = new WebSocket(url, { headers, handshakeTimeout: 5000 });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => {
        this.status = 101;
        resolve();
      });
      this.socket.once('unexpected-response', (_req, res) => {
        this.status = res.statusCode ?? 0;
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${this.status}: ${body}`), { status: this.status, body })));
      });
      this.socket.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.socket.on('message', (data) => this.messages.push(JSON.parse(String(data)) as WsMessage));
    this.socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    this.socket.on('error', () => undefined);
  }

  events(): { id: string; type: string; serviceId?: string }[] {
    return this.messages.filter((m) => m.event === undefined).map((m) => ({ ...(m.data as { type: string }), id: m.id! }));
  }

  named(event: string): WsMessage[] {
    return this.messages.filter((m) => m.event === event);
  }

  async waitFor<T>(what: string, check: (c: WsClient) => T | undefined | false, timeoutMs = 5000): Promise<T> {
    return eventually(what, () => check(this), timeoutMs);
  }

  async closed(timeoutMs = 8000): Promise<number> {
    return eventually('the socket closed', () => this.closeCode, timeoutMs);
  }

  close(): void {
    this.socket.terminate();
  }
}

function fakeRecord(id: string, version: string, padding = 0): string {
  const metadata = Object.fromEntries(Array.from({ length: Math.ceil(padding / 512) }, (_, i) => [`padding-${i}`, 'p'.repeat(512)]));
  return JSON.stringify(sampleRecord(id, { version, updatedAt: Date.now(), metadata }));
}

describe('API server: event stream over WebSocket, and CORS', function () {
  this.timeout(30_000);
  let cluster: TestCluster;
  let agent: ServiceAgent;
  /** Open reads, CORS for PAGE, small caps. */
  let open: ApiServer;
  /** Reads need a key; no CORS. */
  let locked: ApiServer;
  let writer: Registry;
  const logger = capturingLogger();
  const layout = keyLayout('proxy-stone');
  const clients: { close(): void }[] = [];
  const ws = (server: ApiServer, query = '', headers: Record<string, string> = {}): WsClient => {
    const c = new WsClient(`${server.url.replace(/^http/, 'ws')}/service-discovery/ws${query}`, headers);
    clients.push(c);
    return c;
  };
  const sse = (server: ApiServer, query = '', headers: Record<string, string> = {}): SseClient => {
    const c = new SseClient(`${server.url}/service-discovery/events${query}`, headers);
    clients.push(c);
    return c;
  };

  before(async function () {
    cluster = await TestCluster.memory();
    agent = await cluster.addAgent({ id: 'svc-1' });
    await cluster.addAgent({ id: 'svc-2' });
    await cluster.settled(2);
    writer = await cluster.client();
    open = await startApiServer(agent, {
      host: '127.0.0.1',
      port: 0,
      auth: { keys: [{ name: 'ops', role: 'operator', key: OPERATOR }], readAccess: 'open' },
      events: { heartbeatMs: 200, historySize: 50, retryMs: 100, maxBufferedBytes: 256 * 1024, overflowGraceMs: 300, maxClientsPerAddress: 4 },
      corsOrigins: [PAGE],
      logger,
    });
    locked = await startApiServer(agent, {
      host: '127.0.0.1',
      port: 0,
      auth: {
        keys: [
          { name: 'ops', role: 'operator', key: OPERATOR },
          { name: 'watcher', role: 'viewer', key: VIEWER },
        ],
        readAccess: 'viewer',
      },
      events: { heartbeatMs: 200 },
      logger,
    });
  });

  afterEach(function () {
    for (const c of clients.splice(0)) c.close();
  });

  after(async function () {
    await open?.close();
    await locked?.close();
    await cluster?.stop();
  });

  it('carries the same events with the same ids as SSE', async function () {
    const viaSse = sse(open);
    const viaWs = ws(open);
    await Promise.all([viaSse.opened, viaWs.opened]);
    const hello = await viaWs.waitFor('hello', (c) => c.named('hello')[0]);
    expect(hello.data.stream).to.match(/^[0-9a-f]{8}$/);
    expect(hello.data.lastEventId).to.equal(open.events.lastEventId);

    await cluster.addAgent({ id: 'svc-3', zone: 'us-east-1c' });
    await viaWs.waitFor('serviceJoined svc-3', (c) => c.events().find((e) => e.type === 'serviceJoined' && e.serviceId === 'svc-3'));
    await viaSse.waitFor('serviceJoined svc-3', (c) => c.events().find((e) => e.type === 'serviceJoined' && e.serviceId === 'svc-3'));
    await sleep(100);
    const ids = (events: { id?: string; type: string }[]) => events.map((e) => `${e.id} ${e.type}`);
    expect(ids(viaWs.events())).to.deep.equal(ids(viaSse.events()));
    expect(viaWs.events()[0]!.id.split('-')[0]).to.equal(hello.data.stream);
  });

  it('resumes after a disconnect with exactly the missed events, and resets when it cannot', async function () {
    const control = ws(open);
    const first = ws(open);
    await Promise.all([control.opened, first.opened]);
    for (let i = 0; i < 4; i++) await putUnderLease(writer, layout.service('fake-ws'), fakeRecord('fake-ws', `v${i}`));
    await first.waitFor('4+ events', (c) => c.events().length >= 4);
    const lastId = first.events()[1]!.id;
    first.close();
    for (let i = 4; i < 8; i++) await putUnderLease(writer, layout.service('fake-ws'), fakeRecord('fake-ws', `v${i}`));
    await writer.delete(layout.service('fake-ws'));
    await control.waitFor('serviceLeft fake-ws', (c) => c.events().some((e) => e.type === 'serviceLeft' && e.serviceId === 'fake-ws'));

    const resumed = ws(open, `?lastEventId=${encodeURIComponent(lastId)}`);
    await resumed.waitFor('the replay', (c) => c.events().some((e) => e.type === 'serviceLeft' && e.serviceId === 'fake-ws'));
    await sleep(50);
    const controlIds = control.events().map((e) => e.id);
    expect(resumed.events().map((e) => e.id)).to.deep.equal(controlIds.slice(controlIds.indexOf(lastId) + 1));
    expect(resumed.named('reset')).to.have.length(0);

    // An id of another stream (another agent, or this one before a restart): a reset carrying the current id.
    const other = ws(open, '?lastEventId=0badf00d-3');
    const reset = await other.waitFor('reset', (c) => c.named('reset')[0]);
    expect(reset.id).to.equal(open.events.lastEventId);
    expect(reset.data.lastEventId).to.equal(open.events.lastEventId);
  });

  it('takes the key in a header, or in the first message where reads need one, and never logs it', async function () {
    const byHeader = ws(locked, '', { authorization: `Bearer ${VIEWER}` });
    await byHeader.opened;
    await byHeader.waitFor('hello', (c) => c.named('hello')[0]);

    // A wrong key in a header is refused before the upgrade, as on any route.
    const wrongHeader = ws(locked, '', { 'x-api-key': 'not-a-key-000000000' });
    const refused = await wrongHeader.opened.then(
      () => undefined,
      (err: { status?: number; body?: string }) => err,
    );
    expect(refused?.status).to.equal(401);
    expect(JSON.parse(refused!.body!)).to.include({ error: 'unauthorized' });

    // A browser cannot set headers: the key comes in the first message, and nothing streams before it.
    const byMessage = ws(locked);
    await byMessage.opened;
    await sleep(300);
    expect(byMessage.messages, 'nothing before the key').to.have.length(0);
    byMessage.socket.send(JSON.stringify({ type: 'auth', key: VIEWER }));
    await byMessage.waitFor('hello', (c) => c.named('hello')[0]);
    await putUnderLease(writer, layout.service('fake-auth'), fakeRecord('fake-auth', 'v1'));
    await byMessage.waitFor('an event after the key', (c) => c.events().some((e) => e.serviceId === 'fake-auth'));
    await writer.delete(layout.service('fake-auth'));

    const badKey = ws(locked);
    await badKey.opened;
    badKey.socket.send(JSON.stringify({ type: 'auth', key: 'wrong-key-in-message-01' }));
    expect(await badKey.closed()).to.equal(WS_CLOSE.unauthorized);
    expect(badKey.closeReason).to.equal('invalid API key');
    expect(badKey.messages).to.have.length(0);

    const garbage = ws(locked);
    await garbage.opened;
    garbage.socket.send('{"type":"hello"}');
    expect(await garbage.closed()).to.equal(WS_CLOSE.badMessage);
    expect(garbage.closeReason).to.equal('type: expected "auth"');

    // Larger than the 4 KiB a client may send: ws closes it (1009, message too big).
    const huge = ws(locked);
    await huge.opened;
    huge.socket.send(JSON.stringify({ type: 'auth', key: 'k'.repeat(8192) }));
    expect(await huge.closed()).to.equal(1009);

    const silent = ws(locked);
    await silent.opened;
    expect(await silent.closed(9000)).to.equal(WS_CLOSE.unauthorized);
    expect(silent.closeReason).to.match(/^missing API key/);

    for (const line of logger.lines) {
      expect(line).to.not.include(VIEWER);
      expect(line).to.not.include('wrong-key-in-message-01');
    }
    expect(logger.lines.some((l) => l.includes('"event":"api.refused"') && l.includes('/service-discovery/ws'))).to.equal(true);
  });

  it('answers a plain GET with 426, and a page of an origin not allowed with 403 before the upgrade', async function () {
    const plain = await http(`${open.url}/service-discovery/ws`);
    expect(plain.status).to.equal(426);
    expect(JSON.parse(plain.text)).to.include({ error: 'upgrade_required' });

    const foreign = ws(open, '', { origin: 'http://evil.example' });
    const err = await foreign.opened.then(
      () => undefined,
      (e: { status?: number; body?: string }) => e,
    );
    expect(err?.status).to.equal(403);
    expect(JSON.parse(err!.body!)).to.include({ error: 'forbidden_origin' });

    const allowed = ws(open, '', { origin: PAGE });
    await allowed.opened;
    // Its own origin (a page the API's host serves) is always allowed, CORS or not.
    const same = ws(locked, '', { origin: locked.url, authorization: `Bearer ${VIEWER}` });
    await same.opened;
    const noCors = ws(locked, '', { origin: PAGE, authorization: `Bearer ${VIEWER}` });
    expect(await noCors.opened.then(() => 0, (e: { status: number }) => e.status)).to.equal(403);
  });

  it('counts WebSocket and SSE streams against the same per-address cap (429 before the upgrade)', async function () {
    const before = open.events.clientCount;
    expect(before).to.equal(0);
    const held = [ws(open), ws(open), sse(open), sse(open)];
    await Promise.all(held.map((c) => c.opened));
    await eventually('4 streams', () => open.events.clientCount === 4);
    const fifth = ws(open);
    const err = await fifth.opened.then(
      () => undefined,
      (e: { status?: number; body?: string }) => e,
    );
    expect(err?.status).to.equal(429);
    expect(JSON.parse(err!.body!)).to.include({ error: 'too_many_streams' });
    const sixth = sse(open);
    await sixth.opened;
    expect(sixth.status).to.equal(429);
  });

  it('cuts off a WebSocket client that does not read, with the overflow message and code 4008', async function () {
    // Heartbeats far apart: a client that does not read answers no ping either, and would be dropped
    // as dead before it overflowed.
    const api = await startApiServer(agent, {
      host: '127.0.0.1',
      port: 0,
      auth: { keys: [], readAccess: 'open' },
      events: { heartbeatMs: 60_000, maxBufferedBytes: 256 * 1024, overflowGraceMs: 300 },
    });
    clients.push({ close: () => void api.close() });
    const fast = ws(api);
    await fast.opened;
    const slow = ws(api);
    await slow.opened;
    await slow.waitFor('hello', (c) => c.named('hello')[0]);
    // Stop reading: the server's queue for this socket grows past maxBufferedBytes.
    slow.socket.pause();
    for (let i = 0; i < 400 && api.events.overflowCount === 0; i++) {
      await putUnderLease(writer, layout.service('fake-big-ws'), fakeRecord('fake-big-ws', `v${i}`, 16 * 1024));
      if (i % 5 === 4) await sleep(2);
    }
    await eventually('the slow client cut off', () => api.events.overflowCount > 0, 10_000);
    slow.socket.resume();
    const code = await slow.closed();
    expect(code).to.equal(WS_CLOSE.overflow);
    const overflow = slow.named('overflow')[0];
    expect(overflow?.data.lastEventId).to.match(/^[0-9a-f]{8}-\d+$/);
    expect(overflow?.data.lastEventId, 'the last event queued to it, not one it has not got').to.equal(slow.events().at(-1)?.id);
    await fast.waitFor('the fast one keeps up', (c) => c.events().filter((e) => e.serviceId === 'fake-big-ws').length >= 5);
    expect(fast.closeCode).to.equal(undefined);
    await writer.delete(layout.service('fake-big-ws'));
  });

  it('drops a peer that stops answering pings', async function () {
    // A raw TCP client that completes the upgrade and then never reads or answers again (a cut cable).
    const port = Number(new URL(open.url).port);
    const raw: Socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    raw.on('error', () => undefined);
    let head = '';
    raw.on('data', (d: Buffer) => (head += d.toString('latin1')));
    const before = open.events.clientCount;
    raw.write(
      'GET /service-discovery/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await eventually('upgraded', () => head.startsWith('HTTP/1.1 101'));
    await eventually('counted', () => open.events.clientCount === before + 1);
    // Heartbeat 200 ms: the first ping goes unanswered, the next tick drops it.
    await eventually('dropped', () => open.events.clientCount === before, 3000);
    raw.destroy();
  });

  it('serves CORS on reads for listed origins only, never for writes, and none when off', async function () {
    const listed = await http(`${open.url}/service-discovery/services`, { headers: { origin: PAGE } });
    expect(listed.status).to.equal(200);
    expect(listed.headers['access-control-allow-origin']).to.equal(PAGE);
    expect(String(listed.headers.vary)).to.match(/origin/i);

    const other = await http(`${open.url}/service-discovery/services`, { headers: { origin: 'http://evil.example' } });
    expect(other.status).to.equal(200);
    expect(other.headers['access-control-allow-origin']).to.equal(undefined);

    const preflight = await http(`${open.url}/service-discovery/events`, {
      method: 'OPTIONS',
      headers: { origin: PAGE, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization,last-event-id' },
    });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers['access-control-allow-origin']).to.equal(PAGE);
    expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).to.include('last-event-id');
    expect(String(preflight.headers['access-control-allow-methods'])).to.equal('GET, HEAD');

    // A page asking to POST (enable/disable) is told only GET and HEAD: the browser does not send it.
    const write = await http(`${open.url}/service-discovery/services/svc-1/disable`, {
      method: 'OPTIONS',
      headers: { origin: PAGE, 'access-control-request-method': 'POST' },
    });
    expect(String(write.headers['access-control-allow-methods'])).to.not.include('POST');

    // A 401 carries the CORS headers too, so the page can read why.
    const lockedCors = await http(`${locked.url}/service-discovery/services`, { headers: { origin: PAGE } });
    expect(lockedCors.status).to.equal(401);
    expect(lockedCors.headers['access-control-allow-origin'], 'CORS is off on this server').to.equal(undefined);

    // SSE through a hijacked response keeps the CORS headers.
    const stream = sse(open, '', { origin: PAGE });
    await stream.opened;
    expect(stream.headers['access-control-allow-origin']).to.equal(PAGE);
  });

  it('lets a browser-style EventSource on another origin follow the cluster and resume after a cut connection', async function () {
    // Between the EventSource and the agent, a TCP relay the test can cut, as a proxy restart would.
    const target = Number(new URL(open.url).port);
    const relayed = new Set<Socket>();
    const relay = createServer();
    relay.on('connection', () => undefined);
    const tcp = (await import('node:net')).createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      relayed.add(client);
      client.pipe(upstream).pipe(client);
      const cut = () => {
        client.destroy();
        upstream.destroy();
        relayed.delete(client);
      };
      client.on('error', cut);
      upstream.on('error', cut);
      client.on('close', cut);
    });
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', () => resolve()));
    const relayPort = (tcp.address() as AddressInfo).port;
    // Browsers send Origin on a cross-origin EventSource; undici's does not, so a dispatcher adds it.
    const withOrigin: Dispatcher = new Agent().compose(
      (dispatch) => (opts, handler) =>
        dispatch({ ...opts, headers: { ...(opts.headers as Record<string, string> | undefined), origin: PAGE } }, handler),
    );
    const received: { id: string; type: string; serviceId?: string }[] = [];
    const source = new EventSource(`http://127.0.0.1:${relayPort}/service-discovery/events`, { dispatcher: withOrigin });
    source.onmessage = (e) => received.push({ ...(JSON.parse(String(e.data)) as { type: string; serviceId?: string }), id: e.lastEventId });
    const control = sse(open);
    try {
      await control.opened;
      await eventually('EventSource open', () => source.readyState === EventSource.OPEN);
      await putUnderLease(writer, layout.service('fake-es'), fakeRecord('fake-es', 'v0'));
      await eventually('first event', () => received.some((e) => e.serviceId === 'fake-es'));
      // Cut every relayed connection, and write while the EventSource is away.
      for (const s of [...relayed]) s.destroy();
      for (let i = 1; i < 4; i++) await putUnderLease(writer, layout.service('fake-es'), fakeRecord('fake-es', `v${i}`));
      await writer.delete(layout.service('fake-es'));
      await eventually('the EventSource reconnected and caught up', () => received.some((e) => e.type === 'serviceLeft' && e.serviceId === 'fake-es'), 10_000);
      await control.waitFor('control saw it all', (c) => c.events().some((e) => e.type === 'serviceLeft' && e.serviceId === 'fake-es'));
      const expected = control.events().filter((e) => e.serviceId === 'fake-es').map((e) => e.id);
      expect(received.filter((e) => e.serviceId === 'fake-es').map((e) => e.id), 'no gap, no duplicate').to.deep.equal(expected);
    } finally {
      source.close();
      await withOrigin.close();
      for (const s of relayed) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      relay.close();
    }
  });

  it('serves the WebSocket through the plugin on a host that has @fastify/websocket of its own', async function () {
    const host = Fastify({ ...apiServerOptions() });
    const { default: websocket } = await import('@fastify/websocket');
    await host.register(websocket);
    host.get('/own', { websocket: true }, (socket) => socket.send('own'));
    await host.register(serviceDiscoveryPlugin, { agent, auth: { keys: [], readAccess: 'open' }, advertise: false });
    await host.listen({ host: '127.0.0.1', port: 0 });
    const server = host.server as Server;
    const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const c = new WsClient(`${base}/service-discovery/ws`);
      clients.push(c);
      await c.opened;
      await c.waitFor('hello', (x) => x.named('hello')[0]);
      const own = new WebSocket(`${base}/own`);
      const text = await new Promise<string>((resolve, reject) => {
        own.once('message', (d) => resolve(String(d)));
        own.once('error', reject);
      });
      own.terminate();
      expect(text).to.equal('own');
    } finally {
      await host.close();
    }
  });
});
