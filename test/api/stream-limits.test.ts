/**
 * Issue 16, item 8: anonymous readers could open event streams until the process ran out of file
 * descriptors (and the agent's own health probe then failed with EMFILE). Streams are capped in
 * total and per client address; past a cap the answer is the documented error shape with
 * Retry-After, and closing a stream frees its slot.
 */
import { expect } from 'chai';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { runAgent } from '../../src/agent/run.js';
import { EventStream, defaultMaxStreams } from '../../src/api/events.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { ConfigError, resolveConfig } from '../../src/config/load.js';
import { TestCluster, capturingLogger, eventually, http } from './fixtures.js';

/** One event stream opened from a given loopback address, kept open until closed. */
interface OpenStream {
  status: number;
  headers: IncomingMessage['headers'];
  body: Promise<string>;
  close(): void;
}

function openStream(base: string, localAddress: string): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = httpRequest(`${base}/service-discovery/events`, { localAddress, headers: { accept: 'text/event-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      const body = new Promise<string>((done) => {
        res.on('data', (c: string) => (text += c));
        res.on('end', () => done(text));
        res.on('close', () => done(text));
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body,
        close: () => {
          req.destroy();
          res.destroy();
        },
      });
    });
    req.end();
  });
}

describe('API: caps on event-stream clients', function () {
  let cluster: TestCluster;
  let a: ServiceAgent;
  let api: ApiServer;
  const open: OpenStream[] = [];
  const connect = async (from: string): Promise<OpenStream> => {
    const s = await openStream(api.url, from);
    open.push(s);
    return s;
  };

  before(async function () {
    cluster = await TestCluster.memory();
    a = await cluster.addAgent({ id: 'cap-a' });
    await cluster.settled(1);
    api = await startApiServer(a, {
      host: '127.0.0.1',
      port: 0,
      auth: { keys: [], readAccess: 'open' },
      events: { maxClients: 3, maxClientsPerAddress: 2 },
    });
  });

  after(async function () {
    for (const s of open) s.close();
    await api?.close();
    await cluster?.stop();
  });

  it('refuses a client past its per-address cap (429) and anyone past the total cap (503), with Retry-After, until a slot frees', async function () {
    expect((await connect('127.0.0.1')).status).to.equal(200);
    const second = await connect('127.0.0.1');
    expect(second.status).to.equal(200);

    const perClient = await connect('127.0.0.1');
    expect(perClient.status).to.equal(429);
    expect(perClient.headers['content-type']).to.match(/^application\/json/);
    expect(Number(perClient.headers['retry-after'])).to.be.at.least(1);
    expect(JSON.parse(await perClient.body)).to.deep.equal({
      error: 'too_many_streams',
      message: 'this client already has 2 event streams open (the most per client); close one or retry later',
    });

    // Another address still gets in, up to the total.
    expect((await connect('127.0.0.2')).status).to.equal(200);
    const total = await connect('127.0.0.3');
    expect(total.status).to.equal(503);
    expect(Number(total.headers['retry-after'])).to.be.at.least(1);
    expect(JSON.parse(await total.body)).to.deep.equal({
      error: 'too_many_streams',
      message: 'the agent serves its maximum of 3 event streams; retry later',
    });

    // The agent's own probes and other reads are not streams: they still answer.
    expect((await http(`${api.url}/health`)).status).to.equal(200);
    expect((await http(`${api.url}/service-discovery/services`)).status).to.equal(200);

    const metrics = (await http(`${api.url}/metrics`)).text;
    expect(metrics).to.match(/^proxy_stone_sse_clients 3$/m);
    expect(metrics).to.match(/^proxy_stone_sse_refused_total\{limit="client"\} 1$/m);
    expect(metrics).to.match(/^proxy_stone_sse_refused_total\{limit="total"\} 1$/m);

    // Closing one frees its slot, for that address and in total.
    second.close();
    await eventually('a slot freed', () => api.events.clientCount === 2);
    expect((await connect('127.0.0.3')).status).to.equal(200);
    expect((await connect('127.0.0.4')).status).to.equal(503);
  });

  it('sizes the default total cap from the file-descriptor limit, at most 1000', function () {
    expect(defaultMaxStreams(1024)).to.equal(256);
    expect(defaultMaxStreams(20_000)).to.equal(1000);
    expect(defaultMaxStreams(8)).to.equal(2);
    expect(defaultMaxStreams(undefined)).to.equal(1000);
    const stream = new EventStream();
    expect(stream.maxClients).to.be.within(1, 1000);
    expect(stream.maxClientsPerAddress).to.equal(20);
    expect(() => new EventStream({ maxClients: 0 })).to.throw(RangeError, /maxClients/);
  });

  it('takes both caps from the settings (SERVICE_DISCOVERY_API_MAX_STREAMS, _PER_CLIENT)', function () {
    const { config } = resolveConfig({ env: { SERVICE_DISCOVERY_API_MAX_STREAMS: '50', SERVICE_DISCOVERY_API_MAX_STREAMS_PER_CLIENT: '5' } });
    expect(config.api).to.include({ maxStreams: 50, maxStreamsPerClient: 5 });
    const flags = resolveConfig({ flags: { 'api-max-streams': '7', 'api-max-streams-per-client': '3' } }).config.api;
    expect(flags).to.include({ maxStreams: 7, maxStreamsPerClient: 3 });
    expect(() => resolveConfig({ env: { SERVICE_DISCOVERY_API_MAX_STREAMS: '0' } })).to.throw(ConfigError, /SERVICE_DISCOVERY_API_MAX_STREAMS/);
    expect(() => resolveConfig({ env: { SERVICE_DISCOVERY_API_MAX_STREAMS_PER_CLIENT: 'many' } })).to.throw(ConfigError, /SERVICE_DISCOVERY_API_MAX_STREAMS_PER_CLIENT/);
  });

  it('the agent command applies them (--api-max-streams)', async function () {
    const logger = capturingLogger();
    let stop!: () => void;
    const until = new Promise<void>((resolve) => (stop = resolve));
    const running = runAgent({
      env: {},
      until,
      logger,
      flags: { registry: 'memory', 'service-id': 'run-caps', 'api-port': '0', 'api-max-streams': '1', 'health-url': `${cluster.upstream.url}` },
    });
    try {
      const line = await eventually('the API listening', () => logger.lines.find((l) => l.includes('"api.listening"')));
      expect(line).to.include('"maxStreams":1').and.include('"maxStreamsPerClient":20');
      const url = /"url":"(http:[^"]+)"/.exec(line)![1]!;
      const first = await openStream(url, '127.0.0.1');
      open.push(first);
      expect(first.status).to.equal(200);
      const second = await openStream(url, '127.0.0.2');
      open.push(second);
      expect(second.status).to.equal(503);
    } finally {
      for (const s of open.splice(0)) s.close();
      stop();
      expect(await running).to.equal(0);
    }
  });
});
