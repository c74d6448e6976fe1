/**
 * A graceful stop that no client can hold up. Real `proxy-stone-sd agent` processes on a real etcd,
 * with clients of their API doing what a slow or hostile client does when SIGTERM arrives. Before
 * the fix, a half-sent request kept the process alive until Node's headers timeout (60 s, checked
 * every 30 s), a keep-alive connection whose request was in flight until Fastify's keep-alive
 * timeout (72 s), and a TLS client that never shook hands for 120 s; a fault test hung on the second.
 *
 * Each case asserts that the record leaves at once (the lease is revoked before the API's connections
 * are dealt with) and that the process exits 0 well before any of those timeouts.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { CLOSE_GRACE_MS } from '../../src/api/connection-drain.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { ClusterReader, assertBuilt, spawnAgent, waitFor, type AgentProcess } from '../helpers/cluster.js';

/** Well under every timeout the bug waited on (60 s, 72 s, 120 s), and above the API's close grace. */
const EXIT_WITHIN_MS = CLOSE_GRACE_MS + 4000;

function apiUrl(agent: AgentProcess): string | undefined {
  for (const line of agent.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    const parsed = JSON.parse(line) as { event?: string; url?: string };
    if (parsed.event === 'api.listening' && agent.output().includes('"agent.started"')) return parsed.url;
  }
  return undefined;
}

async function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

/** Sends `text` and resolves with what the server answered once `until` matches it. */
function exchange(socket: Socket, text: string, until: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (until.test(got)) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.write(text);
  });
}

describe('agent stop: no API client holds it up', function () {
  this.timeout(60_000);
  let endpoint: string;
  let upstream: SampleUpstream;
  let dir: string;
  const agents: AgentProcess[] = [];
  const sockets: Socket[] = [];

  before(async function () {
    assertBuilt();
    endpoint = (await sharedEtcd()).endpoint;
    upstream = await startSampleUpstream();
    dir = await mkdtemp(join(tmpdir(), 'sd-stop-'));
  });

  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const a of agents.splice(0)) a.signal('SIGKILL');
  });

  after(async () => {
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(flags: string[] = []): Promise<{ agent: AgentProcess; url: string; reader: ClusterReader; id: string }> {
    const namespace = uniqueNamespace('stop');
    const id = 'stopping-1';
    const agent = spawnAgent({ endpoint, namespace, id, servicePort: upstream.port, flags: ['--api', '--api-port', '0', ...flags] });
    agents.push(agent);
    const url = await waitFor('the agent serving its API', () => {
      if (agent.proc.exitCode !== null) throw new Error(`agent exited:\n${agent.output()}`);
      return apiUrl(agent);
    }, 15_000, 20);
    const reader = new ClusterReader(endpoint, namespace);
    await waitFor('registered', async () => (await reader.read()).service(id) !== undefined, 10_000, 50);
    return { agent, url, reader, id };
  }

  /** SIGTERM; the record must leave at once and the process exit 0 within EXIT_WITHIN_MS. */
  async function stopAndCheck(c: { agent: AgentProcess; reader: ClusterReader; id: string }): Promise<number> {
    const sentAt = Date.now();
    c.agent.signal('SIGTERM');
    try {
      await waitFor('the record gone', async () => (await c.reader.read()).service(c.id) === undefined, 2000, 25);
      const code = await waitFor('the process gone', () => (c.agent.proc.exitCode ?? undefined), EXIT_WITHIN_MS, 50);
      expect(code, c.agent.output().slice(-3000)).to.equal(0);
      expect(c.agent.output()).to.include('"agent.stopped"');
      expect(c.agent.output()).not.to.include('"agent.stop_timeout"');
      return Date.now() - sentAt;
    } finally {
      await c.reader.close();
    }
  }

  it('a half-sent request, an idle keep-alive connection, a silent connection and an open event stream', async function () {
    const c = await start();
    // Headers without their end: a request in progress, never idle.
    const half = await openSocket(c.url);
    half.write('GET /service-discovery/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    // A finished keep-alive request: an idle connection the client never closes.
    const idle = await openSocket(c.url);
    expect(await exchange(idle, 'GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', /\r\n\r\n[\s\S]*\}/)).to.match(/^HTTP\/1\.1 200/);
    // Connected, nothing sent.
    const silent = await openSocket(c.url);
    // An SSE client that never reads on its own initiative.
    const sse = await openSocket(c.url);
    expect(await exchange(sse, 'GET /service-discovery/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n', /\r\n\r\n/)).to.match(
      /^HTTP\/1\.1 200/,
    );
    sockets.push(half, idle, silent, sse);
    const took = await stopAndCheck(c);
    expect(took).to.be.below(EXIT_WITHIN_MS);
  });

  it('over TLS: a client that connected and never started its handshake', async function () {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    const c = await start(['--api-tls-cert', join(dir, 'cert.pem'), '--api-tls-key', join(dir, 'key.pem')]);
    expect(c.url).to.match(/^https:/);
    sockets.push(await openSocket(c.url), await openSocket(c.url));
    await stopAndCheck(c);
  });

  it('with no client at all, the stop does not wait for the grace', async function () {
    const c = await start();
    const took = await stopAndCheck(c);
    expect(took).to.be.below(CLOSE_GRACE_MS);
  });
});
