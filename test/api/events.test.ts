import { expect } from 'chai';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { EventStream } from '../../src/api/events.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { ClusterEventSchema } from '../../src/api/schemas.js';
import { keyLayout } from '../../src/cluster/keys.js';
import type { Registry } from '../../src/registry/types.js';
import type { ClusterEvent } from '../../src/types.js';
import { SseClient, TestCluster, eventually, http, postJson, sleep } from './fixtures.js';
import { putUnderLease, sampleRecord } from '../helpers/records.js';

const KEY = 'events-operator-key-0001';
const auth = { Authorization: `Bearer ${KEY}` };

/** A fake record under the namespace: cheap cluster events without more agents. */
/** A record `padding` characters larger, in metadata values of 512 (the most a reader takes per value). */
function fakeRecord(id: string, version: string, padding = 0): string {
  const metadata = Object.fromEntries(Array.from({ length: Math.ceil(padding / 512) }, (_, i) => [`padding-${i}`, 'p'.repeat(512)]));
  return JSON.stringify(sampleRecord(id, { version, updatedAt: Date.now(), metadata }));
}

describe('API server: event stream (SSE)', function () {
  let cluster: TestCluster;
  let a: ServiceAgent;
  let api: ApiServer;
  let writer: Registry;
  const layout = keyLayout('proxy-stone');
  const clients: SseClient[] = [];
  const open = (query = '', headers: Record<string, string> = {}): SseClient => {
    const c = new SseClient(`${api.url}/service-discovery/events${query}`, headers);
    clients.push(c);
    return c;
  };

  before(async function () {
    cluster = await TestCluster.memory();
    a = await cluster.addAgent({ id: 'svc-1' });
    await cluster.addAgent({ id: 'svc-2' });
    await cluster.addAgent({ id: 'svc-3' });
    await cluster.settled(3);
    writer = await cluster.client();
    api = await startApiServer(a, {
      host: '127.0.0.1',
      port: 0,
      auth: { keys: [{ name: 'ops', role: 'operator', key: KEY }], readAccess: 'open' },
      events: { heartbeatMs: 100, historySize: 50, maxBufferedBytes: 256 * 1024, overflowGraceMs: 300 },
    });
  });

  afterEach(function () {
    for (const c of clients.splice(0)) c.close();
  });

  after(async function () {
    await api?.close();
    await cluster?.stop();
  });

  it('streams a fourth agent joining as serviceJoined, with ids and the seed event shape', async function () {
    const sse = open();
    await sse.opened;
    expect(sse.status).to.equal(200);
    expect(sse.headers['content-type']).to.match(/^text\/event-stream/);
    expect(sse.headers['cache-control']).to.include('no-cache');
    await sse.waitFor('retry hint', (c) => c.frames.some((f) => f.retry !== undefined));

    await cluster.addAgent({ id: 'svc-4', zone: 'us-east-1c' });
    const joined = await sse.waitFor('serviceJoined svc-4', (c) =>
      c.events().find((e) => e.type === 'serviceJoined' && e.serviceId === 'svc-4'),
    );
    const event = ClusterEventSchema.parse(joined);
    expect(event).to.include({ type: 'serviceJoined' });
    expect((joined.service as { id: string; zone: string }).zone).to.equal('us-east-1c');
    expect(joined.timestamp).to.be.a('number');
    expect(joined.id).to.match(/^[0-9a-f]{8}-\d+$/);
    const frame = sse.frames.find((f) => f.id === joined.id)!;
    expect(frame.event, 'cluster events are plain data frames').to.equal(undefined);

    // ids increase by one per event of the agent.
    const seqs = sse.events().map((e) => Number(e.id!.split('-')[1]));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).to.equal(seqs[i - 1]! + 1);

    await cluster.agents[3]!.stop();
    await sse.waitFor('serviceLeft svc-4', (c) => c.events().find((e) => e.type === 'serviceLeft' && e.serviceId === 'svc-4'));
  });

  it('streams serviceDisabled/serviceEnabled from the API', async function () {
    const sse = open('?types=serviceDisabled,serviceEnabled');
    await sse.opened;
    expect((await postJson(`${api.url}/service-discovery/services/svc-2/disable`, { reason: 'maint' }, auth)).status).to.equal(200);
    expect((await postJson(`${api.url}/service-discovery/services/svc-2/enable`, {}, auth)).status).to.equal(200);
    await sse.waitFor('two events', (c) => c.events().length >= 2);
    const events = sse.events();
    expect(events.map((e) => e.type)).to.deep.equal(['serviceDisabled', 'serviceEnabled']);
    expect(events[0]).to.include({ serviceId: 'svc-2', reason: 'maint', actor: 'ops' });
  });

  it('resumes from Last-Event-ID without gaps or duplicates', async function () {
    const control = open();
    const first = open();
    await Promise.all([control.opened, first.opened]);
    for (let i = 0; i < 5; i++) await putUnderLease(writer, layout.service('fake-1'), fakeRecord('fake-1', `v${i}`));
    await first.waitFor('5+ events', (c) => c.events().length >= 5);
    const seen = first.events();
    const lastId = seen[2]!.id!;
    first.close();
    // Events the client misses while away.
    for (let i = 5; i < 10; i++) await putUnderLease(writer, layout.service('fake-1'), fakeRecord('fake-1', `v${i}`));
    await writer.delete(layout.service('fake-1'));
    await control.waitFor('all events on the control stream', (c) => c.events().some((e) => e.type === 'serviceLeft' && e.serviceId === 'fake-1'));

    const resumed = open('', { 'Last-Event-ID': lastId });
    await resumed.waitFor('the replay', (c) => c.events().some((e) => e.type === 'serviceLeft' && e.serviceId === 'fake-1'));
    await sleep(50);
    const controlIds = control.events().map((e) => e.id);
    const expected = controlIds.slice(controlIds.indexOf(lastId) + 1);
    expect(resumed.events().map((e) => e.id)).to.deep.equal(expected);
    expect(resumed.named('reset')).to.have.length(0);

    // The query parameter works as the header does.
    const viaQuery = open(`?lastEventId=${encodeURIComponent(lastId)}`);
    await viaQuery.waitFor('the replay', (c) => c.events().length >= expected.length);
    expect(viaQuery.events().map((e) => e.id)).to.deep.equal(expected);
  });

  it('sends event: reset when the id is too old, unknown or from another stream', async function () {
    const control = open();
    await control.opened;
    // historySize is 50: push the start of the history past the first events.
    for (let i = 0; i < 60; i++) await putUnderLease(writer, layout.service('fake-2'), fakeRecord('fake-2', `v${i}`));
    await control.waitFor('60 events', (c) => c.events().length >= 60);
    const streamId = control.events()[0]!.id!.split('-')[0]!;

    for (const stale of [`${streamId}-1`, 'ffffffff-3', 'garbage', `${streamId}-999999`]) {
      const c = open('', { 'Last-Event-ID': stale });
      const [reset] = await c.waitFor(`reset for ${stale}`, (x) => (x.named('reset').length > 0 ? x.named('reset') : undefined));
      const body = JSON.parse(reset!.data!) as { type: string; lastEventId: string };
      expect(body.type).to.equal('reset');
      expect(reset!.id).to.equal(body.lastEventId);
      expect(body.lastEventId).to.match(new RegExp(`^${streamId}-\\d+$`));
      expect(c.events()).to.have.length(0);
    }
    await writer.delete(layout.service('fake-2'));
  });

  it('filters by ?types and rejects unknown types', async function () {
    const sse = open('?types=serviceLeft');
    await sse.opened;
    await putUnderLease(writer, layout.service('fake-3'), fakeRecord('fake-3', 'v1'));
    await writer.delete(layout.service('fake-3'));
    await sse.waitFor('serviceLeft', (c) => c.events().length >= 1);
    expect(sse.events().map((e) => e.type)).to.deep.equal(['serviceLeft']);
    const bad = await http(`${api.url}/service-discovery/events?types=serviceJoined,bogus`);
    expect(bad.status).to.equal(400);
    expect((bad.json as { message: string }).message).to.match(/^types: expected a comma-separated list of serviceJoined, /);
  });

  it('sends heartbeat comments', async function () {
    const sse = open();
    await sse.waitFor('two pings', (c) => c.frames.filter((f) => f.comments.includes('ping')).length >= 2, 2000);
  });

  it('cuts off a client that never reads, without stalling the agent or other clients', async function () {
    const fast = open();
    await fast.opened;
    const baseline = api.events.clientCount;
    // A raw client that sends the request and then never reads a byte.
    const slow: Socket = connect(Number(new URL(api.url).port), '127.0.0.1');
    slow.setNoDelay(true);
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.write('GET /service-discovery/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
    slow.pause();
    let received = '';
    let slowEnded = false;
    slow.on('data', (d: Buffer) => (received += d.toString('latin1')));
    slow.on('end', () => (slowEnded = true));
    slow.on('close', () => (slowEnded = true));
    slow.on('error', () => undefined);
    await eventually('the slow client connected', () => api.events.clientCount === baseline + 1);

    // 16 KiB per event, 300 events: far past 256 KiB of buffer plus what the kernel's socket buffers
    // absorb. Paced, so the fast reader (in this same process) keeps up.
    const overflowsBefore = api.events.overflowCount;
    for (let i = 0; i < 300; i++) {
      await putUnderLease(writer, layout.service('fake-big'), fakeRecord('fake-big', `v${i}`, 16 * 1024));
      if (i % 5 === 4) await sleep(2);
    }
    await eventually('the slow client cut off', () => api.events.overflowCount > overflowsBefore, 10_000);
    expect(api.events.clientCount).to.equal(baseline);
    // Past the grace period the server has dropped the connection: once the client reads again it
    // gets what the kernel held, then the end of the connection (a live stream would never end).
    await sleep(api.events.overflowGraceMs + 300);
    slow.resume();
    await eventually('the slow connection ended by the server', () => slowEnded, 5000);
    expect(received).to.match(/^HTTP\/1\.1 200/);

    // The fast client got everything, and the agent kept working.
    await fast.waitFor('the last big event', (c) => c.events().some((e) => (e.service as { version?: string } | undefined)?.version === 'v299'), 10_000);
    expect(fast.named('overflow')).to.have.length(0);
    expect((await http(`${api.url}/service-discovery/status`)).status).to.equal(200);
    const metrics = (await http(`${api.url}/metrics`)).text;
    expect(metrics).to.match(/^proxy_stone_sse_overflow_disconnects_total 1$/m);
    slow.destroy();
    await writer.delete(layout.service('fake-big'));
  });

  it('gives a slow client that reads again within the grace period the overflow frame', async function () {
    const stream = new EventStream({ maxBufferedBytes: 64 * 1024, overflowGraceMs: 5000 });
    const server = createServer((req, res) => stream.serve(req, res, { lastEventId: req.headers['last-event-id'] as string | undefined }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const slow = connect((server.address() as AddressInfo).port, '127.0.0.1');
      await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
      slow.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      slow.pause();
      let received = '';
      slow.on('data', (d: Buffer) => (received += d.toString('latin1')));
      await eventually('connected', () => stream.clientCount === 1);
      const big = 'p'.repeat(32 * 1024);
      for (let i = 0; i < 200 && stream.overflowCount === 0; i++) {
        stream.publish({ type: 'serviceLeft', serviceId: `x-${i}`, timestamp: i, pad: big } as unknown as ClusterEvent);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(stream.overflowCount).to.equal(1);
      expect(stream.clientCount).to.equal(0);
      slow.resume();
      // The response ends with the overflow frame and the chunked terminator; the connection may stay.
      await eventually('the overflow frame', () => /event: overflow\ndata: (.*)\n\n\r\n0\r\n\r\n$/.test(received), 5000);
      const body = JSON.parse(/event: overflow\ndata: (.*)\n\n/.exec(received)![1]!) as { type: string; lastEventId: string };
      expect(body.type).to.equal('overflow');
      // It names the last event queued to the client, which a resume can start after.
      expect(body.lastEventId).to.equal(stream.lastEventId);
      slow.destroy();
    } finally {
      await stream.close();
      server.close();
    }
  });

  it('counts clients in proxy_stone_sse_clients and ends streams on close', async function () {
    const cluster2 = await TestCluster.memory();
    const agent = await cluster2.addAgent({ id: 'solo' });
    const api2 = await startApiServer(agent, { host: '127.0.0.1', port: 0, auth: { keys: [], readAccess: 'open' } });
    const s1 = new SseClient(`${api2.url}/service-discovery/events`);
    const s2 = new SseClient(`${api2.url}/service-discovery/events`);
    await Promise.all([s1.opened, s2.opened]);
    const text = (await http(`${api2.url}/metrics`)).text;
    expect(text).to.match(/^proxy_stone_sse_clients 2$/m);
    const t0 = Date.now();
    await api2.close();
    expect(Date.now() - t0, 'close does not wait for streams to end by themselves').to.be.lessThan(2000);
    await eventually('streams ended', () => s1.ended && s2.ended);
    await cluster2.stop();
  });
});
