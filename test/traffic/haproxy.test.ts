import { lookup } from 'node:dns/promises';
import { expect } from 'chai';
import { setServiceEnabled } from '../../src/cluster/admin.js';
import { keyLayout, type KeyLayout } from '../../src/cluster/keys.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { TrafficFeed } from '../../src/traffic/feed.js';
import { stateOf } from '../../src/traffic/haproxy-plan.js';
import { HaproxyBackendMissingError, HaproxyPermissionError, HaproxySyncer, type HaproxyChange } from '../../src/traffic/haproxy-sync.js';
import { HaproxyRuntimeApi } from '../../src/traffic/haproxy-runtime.js';
import type { Logger } from '../../src/util/logger.js';
import { startEtcd, uniqueNamespace, type EtcdServer } from '../helpers/etcd.js';
import { defaultConfig, startHaproxy, type HaproxyServer } from '../helpers/haproxy.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { ensureBuilt, runCli } from '../cli/fixtures.js';
import { putRecord, requests, startInstance, waitFor, type CountingInstance } from './fixtures.js';

const BACKEND = 'proxy_stone';

/** Log lines as objects, for asserting what the syncer said. */
function memoryLogger(): Logger & { lines: { level: string; event?: string; msg: string; [k: string]: unknown }[] } {
  const lines: { level: string; event?: string; msg: string }[] = [];
  const at = (level: string) => (obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? { level, msg: obj } : { level, ...(obj as object), msg: msg ?? '' });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Owned and foreign servers of the backend: name → `state addr:port`. */
async function backend(api: HaproxyRuntimeApi): Promise<Record<string, string>> {
  const servers = await api.serversState(BACKEND);
  return Object.fromEntries(servers.map((s) => [s.name, `${stateOf(s)} ${s.addr}:${s.port}`]));
}

describe('traffic: lb haproxy keeps a real HAProxy backend equal to the registry', function () {
  this.timeout(60_000);
  let etcd: { endpoints: string[] };
  let layout: KeyLayout;
  let writer: EtcdRegistry;
  let reader: EtcdRegistry;
  let instances: CountingInstance[];
  let foreign: CountingInstance;
  let haproxy: HaproxyServer;
  let feed: TrafficFeed;
  let syncer: HaproxySyncer;
  let logger: ReturnType<typeof memoryLogger>;
  let changes: HaproxyChange[];

  /** The remove delay of these tests: short, but long enough to see that a server waits it out. */
  const REMOVE_DELAY_MS = 1000;

  async function startSync(options: { socket?: string; resyncIntervalMs?: number; removeDelayMs?: number } = {}): Promise<void> {
    feed = new TrafficFeed(reader, layout.namespace);
    syncer = new HaproxySyncer({
      api: new HaproxyRuntimeApi(options.socket ?? haproxy.socket, { timeoutMs: 2000 }),
      backend: BACKEND,
      logger,
      resyncIntervalMs: options.resyncIntervalMs ?? 300,
      retryMaxMs: 300,
      removeDelayMs: options.removeDelayMs ?? REMOVE_DELAY_MS,
    });
    syncer.on('change', (c) => changes.push(c));
    feed.on('snapshot', (s) => syncer.update(s));
    syncer.start();
    syncer.update(await feed.start());
  }

  const api = () => haproxy.api();
  /** `count` concurrent `/slow` requests through HAProxy: their bodies once the instances release them. */
  const inFlight = (count: number) =>
    Promise.all(Array.from({ length: count }, async () => (await fetch(`${haproxy.url}/slow`, { signal: AbortSignal.timeout(20_000) })).text()));
  const owned = async () => Object.fromEntries(Object.entries(await backend(api())).filter(([name]) => name.startsWith('psd-')));

  beforeEach(async function () {
    this.timeout(30_000);
    etcd = await sharedEtcd();
    layout = keyLayout(uniqueNamespace('lb-haproxy'));
    writer = new EtcdRegistry({ endpoints: etcd.endpoints, callTimeoutMs: 5000 });
    reader = new EtcdRegistry({ endpoints: etcd.endpoints, callTimeoutMs: 5000 });
    instances = await Promise.all(['i1', 'i2', 'i3'].map((n) => startInstance(n)));
    foreign = await startInstance('foreign');
    for (const [i, inst] of instances.entries()) await putRecord(writer, layout, `node-${i + 1}`, inst.port);
    // A server of haproxy.cfg in the same backend: never the feed's to touch.
    haproxy = await startHaproxy({ backendLines: [`server static1 127.0.0.1:${foreign.port} backup`] });
    logger = memoryLogger();
    changes = [];
  });

  afterEach(async () => {
    await syncer?.stop();
    await feed?.stop();
    await haproxy?.stop();
    for (const i of [...(instances ?? []), foreign]) await i?.close();
    await writer?.close();
    await reader?.close();
  });

  it('adds one ready server per serving instance; requests reach all three, and the config server is left alone', async () => {
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    expect(await backend(api())).to.deep.equal({
      static1: `ready 127.0.0.1:${foreign.port}`,
      'psd-node-1': `ready 127.0.0.1:${instances[0]!.port}`,
      'psd-node-2': `ready 127.0.0.1:${instances[1]!.port}`,
      'psd-node-3': `ready 127.0.0.1:${instances[2]!.port}`,
    });
    const seen = await requests(haproxy.url, 30);
    expect(Object.keys(seen).sort()).to.deep.equal(['i1', 'i2', 'i3']);
    expect(changes.map((c) => `${c.kind} ${c.server} ${c.to}`)).to.have.members(['added psd-node-1 ready', 'added psd-node-2 ready', 'added psd-node-3 ready']);
    // HAProxy's own check runs on the dynamic servers (server options "check …", enabled after add).
    const states = await api().serversState(BACKEND);
    expect(states.find((s) => s.name === 'psd-node-1')!.opState).to.equal(2);
  });

  it('disable: maint at once, and no new request reaches the instance', async () => {
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    const before = instances[1]!.hits();
    const asked = Date.now();
    await setServiceEnabled(writer, layout, 'node-2', false, { reason: 'deploy', actor: 'test', drainTimeout: 0, minHealthy: { count: 0 } });
    await waitFor('psd-node-2 in maint', async () => (await owned())['psd-node-2']!.startsWith('maint'), 5000, 5);
    const change = changes.find((c) => c.server === 'psd-node-2' && c.to === 'maint')!;
    console.log(`      disable → HAProxy maint: ${change.at - asked} ms (from the start of the registry write)`);
    const seen = await requests(haproxy.url, 30);
    expect(Object.keys(seen).sort()).to.deep.equal(['i1', 'i3']);
    expect(instances[1]!.hits()).to.equal(before);
    expect(change.reason).to.equal('disabled (deploy)');
    // Enabled again: back in rotation.
    await setServiceEnabled(writer, layout, 'node-2', true, { actor: 'test' });
    await waitFor('psd-node-2 ready', async () => (await owned())['psd-node-2']!.startsWith('ready'), 5000, 5);
    expect(Object.keys(await requests(haproxy.url, 9)).sort()).to.deep.equal(['i1', 'i2', 'i3']);
  });

  it('an operator drain puts the server in drain: no new request, in-flight ones finish', async () => {
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    // A request in flight on node-3 when the drain starts (round robin: one of three on each).
    const slow = inFlight(3);
    await waitFor('a request held by each instance', () => instances.every((i) => i.held() > 0), 5000, 5);
    for (const i of instances) if (i !== instances[2]) i.release();
    await setServiceEnabled(writer, layout, 'node-3', false, { reason: 'kernel patch', actor: 'test', drainTimeout: 30, minHealthy: { count: 0 } });
    await waitFor('psd-node-3 in drain', async () => (await owned())['psd-node-3']!.startsWith('drain'), 5000, 5);
    const before = instances[2]!.hits();
    expect(await requests(haproxy.url, 20)).to.deep.equal({ i1: 10, i2: 10 });
    expect(instances[2]!.hits()).to.equal(before);
    instances[2]!.release();
    expect((await slow).sort()).to.deep.equal(['i1', 'i2', 'i3']);
    expect(changes.find((c) => c.server === 'psd-node-3' && c.kind === 'state')!.reason).to.match(/^operator drain until .*Z \(kernel patch\)$/);
  });

  it('unhealthy or starting: maint; healthy again: ready', async () => {
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    await putRecord(writer, layout, 'node-1', instances[0]!.port, { status: 'unhealthy' });
    await putRecord(writer, layout, 'node-2', instances[1]!.port, { status: 'starting' });
    await waitFor('two in maint', async () => {
      const s = await owned();
      return s['psd-node-1']!.startsWith('maint') && s['psd-node-2']!.startsWith('maint');
    }, 5000, 5);
    expect(await requests(haproxy.url, 6)).to.deep.equal({ i3: 6 });
    await putRecord(writer, layout, 'node-1', instances[0]!.port, { status: 'healthy' });
    await waitFor('node-1 ready', async () => (await owned())['psd-node-1']!.startsWith('ready'), 5000, 5);
    expect(changes.filter((c) => c.kind === 'state').map((c) => `${c.server} ${c.from}→${c.to} ${c.reason}`)).to.include.members([
      'psd-node-1 ready→maint unhealthy',
      'psd-node-2 ready→maint starting',
      'psd-node-1 maint→ready healthy',
    ]);
  });

  it('an instance that moved (same id, new port) keeps its server, at the new address', async () => {
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    const moved = await startInstance('i1-moved');
    try {
      await putRecord(writer, layout, 'node-1', moved.port);
      await waitFor('psd-node-1 at the new port', async () => (await owned())['psd-node-1'] === `ready 127.0.0.1:${moved.port}`, 5000, 10);
      expect(changes.find((c) => c.kind === 'address')).to.deep.include({ server: 'psd-node-1', from: `127.0.0.1:${instances[0]!.port}`, to: `127.0.0.1:${moved.port}` });
      expect(Object.keys(await requests(haproxy.url, 9)).sort()).to.deep.equal(['i1-moved', 'i2', 'i3']);
    } finally {
      await moved.close();
    }
  });

  it('a host name is resolved by the feed (HAProxy 2.6 leaves a dynamic server\'s name unresolved)', async () => {
    await putRecord(writer, layout, 'node-1', instances[0]!.port, { host: 'localhost' });
    await startSync();
    const { address } = await lookup('localhost');
    await waitFor('psd-node-1 at the resolved address', async () => (await owned())['psd-node-1'] === `ready ${address}:${instances[0]!.port}`, 5000, 10);
  });

  it('leave: the server is deleted, after the request it still serves', async () => {
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    const slow = inFlight(3);
    await waitFor('a request held by each instance', () => instances.every((i) => i.held() > 0), 5000, 5);
    for (const i of instances.slice(1)) i.release();
    await writer.delete(layout.service('node-1'));
    await waitFor('psd-node-1 waiting for its connection', () => changes.some((c) => c.kind === 'remove-waiting' && c.server === 'psd-node-1'), 5000, 5);
    expect((await owned())['psd-node-1']).to.match(/^maint /);
    expect(await requests(haproxy.url, 4)).to.deep.equal({ i2: 2, i3: 2 });
    instances[0]!.release();
    expect((await slow).sort()).to.deep.equal(['i1', 'i2', 'i3']);
    await waitFor('psd-node-1 deleted', async () => !('psd-node-1' in (await owned())), 15_000, 50);
    const mine = changes.filter((c) => c.server === 'psd-node-1');
    expect(mine.map((c) => c.kind)).to.deep.equal(['added', 'state', 'remove-waiting', 'removed']);
    // Deleted only after the remove delay in maintenance, even once its connection had ended.
    expect(mine[3]!.at - mine[1]!.at).to.be.at.least(REMOVE_DELAY_MS);
    expect(await backend(api())).to.have.property('static1');
  });

  it('a server whose instance died is deleted only after the remove delay: HAProxy (no redispatch) survives requests still retrying on it', async () => {
    // haproxy/haproxy#2298: `del server` right after a request's failed connect, while it waits to
    // retry on the same server, crashes an HAProxy without the fix (Debian 12's 2.6.12).
    await haproxy.stop();
    haproxy = await startHaproxy({
      config: (where) => defaultConfig(where).replace(/^\s*(option redispatch|retry-on)\b.*\n/gm, ''),
    });
    const pid = haproxy.pid;
    await startSync({ removeDelayMs: 4000 });
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    // The instance dies with its server still ready: its connections are refused, and HAProxy
    // retries each request on it (retries 3, 1 s apart) until the registry says it left.
    await instances[0]!.close();
    let sending = true;
    const outcomes: string[] = [];
    const senders = Array.from({ length: 6 }, async () => {
      while (sending) {
        const res = await fetch(haproxy.url, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => err);
        outcomes.push(res instanceof Error ? res.message : String(res.status));
        if (!(res instanceof Error)) await res.text();
      }
    });
    // Each request sent to it waits 1 s between its connection attempts: it leaves while they wait.
    await new Promise((r) => setTimeout(r, 1200));
    await writer.delete(layout.service('node-1'));
    await waitFor('psd-node-1 deleted', async () => !('psd-node-1' in (await owned())), 15_000, 50);
    sending = false;
    await Promise.all(senders);
    // With no remove delay, Debian 12's HAProxy 2.6.12 dies here (segfault in sess_change_server).
    expect(haproxy.pid, 'HAProxy still running').to.equal(pid);
    // The requests that were retrying on it failed (no redispatch): the case this test is about.
    expect(outcomes).to.include('503');
    expect(await requests(haproxy.url, 4)).to.deep.equal({ i2: 2, i3: 2 });
    const mine = changes.filter((c) => c.server === 'psd-node-1');
    expect(mine.at(-1)!.at - mine.find((c) => c.kind === 'state' && c.to === 'maint')!.at).to.be.at.least(4000);
  });

  it('a restarted HAProxy is filled again, states included; a server changed by hand is set back', async () => {
    await startSync();
    await setServiceEnabled(writer, layout, 'node-2', false, { reason: 'deploy', actor: 'test', drainTimeout: 0, minHealthy: { count: 0 } });
    await waitFor('synced with node-2 in maint', async () => {
      const s = await owned();
      return Object.keys(s).length === 3 && s['psd-node-2']!.startsWith('maint');
    });
    const restarted = new Promise<{ fromPid: number; toPid: number }>((resolve) => syncer.once('restarted', resolve));
    await haproxy.restart();
    const back = Date.now();
    await waitFor('backend re-synced', async () => {
      const s = await owned();
      return s['psd-node-1']?.startsWith('ready') === true && s['psd-node-2']?.startsWith('maint') === true && s['psd-node-3']?.startsWith('ready') === true;
    }, 10_000, 10);
    console.log(`      HAProxy restarted → backend re-synced: ${Date.now() - back} ms (resync interval 300 ms)`);
    const { fromPid, toPid } = await restarted;
    expect(fromPid).to.not.equal(toPid);
    expect(logger.lines.some((l) => l.event === 'haproxy.restarted')).to.equal(true);
    expect(await requests(haproxy.url, 4)).to.deep.equal({ i1: 2, i3: 2 });
    // By hand: an owned server out of rotation, a foreign one changed. Only the owned one is set back.
    await api().setState(BACKEND, 'psd-node-1', 'maint');
    await api().setState(BACKEND, 'static1', 'drain');
    await waitFor('psd-node-1 set back to ready', async () => (await owned())['psd-node-1']!.startsWith('ready'), 5000, 10);
    expect((await backend(api())).static1).to.match(/^drain /);
  });

  it('socket missing at start: says so once, retries, and syncs as soon as HAProxy is there', async () => {
    await haproxy.halt();
    await startSync();
    await waitFor('the unreachable log line', () => logger.lines.some((l) => l.event === 'haproxy.unreachable'), 5000, 10);
    const line = logger.lines.find((l) => l.event === 'haproxy.unreachable')!;
    expect(line.msg).to.match(/^HAProxy socket \S+admin\.sock unreachable: (no such socket|connection refused)/);
    await new Promise((r) => setTimeout(r, 1000));
    expect(logger.lines.filter((l) => l.event === 'haproxy.unreachable')).to.have.length(1);
    await haproxy.resume();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3, 10_000);
    expect(logger.lines.some((l) => l.event === 'haproxy.connected' && /answers again/.test(l.msg))).to.equal(true);
  });

  it('a hung HAProxy (SIGSTOP): each call times out, and the backend is synced when it continues', async () => {
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    haproxy.kill('SIGSTOP');
    try {
      const stopped = Date.now();
      await setServiceEnabled(writer, layout, 'node-3', false, { actor: 'test', drainTimeout: 0, minHealthy: { count: 0 } });
      await waitFor('the unreachable log line', () => logger.lines.some((l) => l.event === 'haproxy.unreachable'), 10_000, 10);
      const line = logger.lines.find((l) => l.event === 'haproxy.unreachable')!;
      expect(line).to.include({ code: 'timeout' });
      // The syncer's calls have a 2 s timeout (startSync): it noticed within a few of them.
      expect(Date.now() - stopped).to.be.lessThan(10_000);
    } finally {
      haproxy.kill('SIGCONT');
    }
    await waitFor('node-3 in maint once HAProxy runs again', async () => (await owned())['psd-node-3']?.startsWith('maint') === true, 10_000, 20);
  });

  it('a backend HAProxy does not have, or a socket below level admin, stops the syncer with the reason', async () => {
    const missing = new HaproxySyncer({ api: haproxy.api(), backend: 'nosuch', logger });
    const fatal = new Promise<Error>((resolve) => missing.once('fatal', resolve));
    missing.start();
    missing.update({ entries: [], services: [], serving: [], draining: [], out: [], at: 0, revision: 1, stale: false, leaderId: null, leader: null, topology: {} as never });
    const err = await fatal;
    expect(err).to.be.instanceOf(HaproxyBackendMissingError);
    expect(err.message).to.equal(`HAProxy at ${haproxy.socket} has no backend "nosuch" (check --backend against the backend sections of haproxy.cfg)`);
    await missing.stop();

    const operator = await startHaproxy({ config: (where) => defaultConfig(where).replace('level admin', 'level operator') });
    try {
      const denied = new HaproxySyncer({ api: operator.api(), backend: BACKEND, logger });
      const refused = new Promise<Error>((resolve) => denied.once('fatal', resolve));
      denied.start();
      const f = new TrafficFeed(reader, layout.namespace);
      denied.update(await f.start());
      expect(await refused).to.be.instanceOf(HaproxyPermissionError);
      await denied.stop();
      await f.stop();
      expect(Object.keys(await backend(operator.api()))).to.deep.equal([]);
    } finally {
      await operator.stop();
    }
  });

  it('instances without a usable address are never added, and say so once', async () => {
    await putRecord(writer, layout, 'evil', instances[0]!.port, { host: '127.0.0.1 check; del server proxy_stone/static1' });
    await startSync();
    await waitFor('three ready servers', async () => Object.values(await owned()).filter((s) => s.startsWith('ready')).length === 3);
    await new Promise((r) => setTimeout(r, 700));
    expect(Object.keys(await backend(api())).sort()).to.deep.equal(['psd-node-1', 'psd-node-2', 'psd-node-3', 'static1']);
    expect(logger.lines.filter((l) => l.event === 'haproxy.server.skipped')).to.have.length(1);
  });
});

describe('traffic: a stale registry leaves HAProxy as it is', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  let haproxy: HaproxyServer;
  let instances: CountingInstance[] = [];

  after(async () => {
    await haproxy?.stop();
    for (const i of instances) await i.close();
    await etcd?.stop();
  });

  it('keeps every server while etcd is down, and follows the registry again when it is back', async () => {
    etcd = await startEtcd({ own: true });
    const layout = keyLayout(uniqueNamespace('lb-stale'));
    const writer = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 2000 });
    const reader = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 2000 });
    instances = await Promise.all(['i1', 'i2'].map((n) => startInstance(n)));
    for (const [i, inst] of instances.entries()) await putRecord(writer, layout, `node-${i + 1}`, inst.port);
    haproxy = await startHaproxy();
    const logger = memoryLogger();
    const feed = new TrafficFeed(reader, layout.namespace, { retryMs: 200 });
    const syncer = new HaproxySyncer({ api: haproxy.api(), backend: BACKEND, logger, resyncIntervalMs: 200 });
    const stale: boolean[] = [];
    feed.on('stale', (s) => stale.push(s));
    feed.on('snapshot', (s) => syncer.update(s));
    syncer.start();
    try {
      syncer.update(await feed.start());
      await waitFor('two ready servers', async () => Object.values(await backend(haproxy.api())).filter((s) => s.startsWith('ready')).length === 2);
      etcd.kill('SIGKILL');
      await waitFor('the feed stale', () => stale.includes(true), 15_000);
      expect(feed.current()!.stale).to.equal(true);
      // Several re-syncs later: nothing pulled.
      await new Promise((r) => setTimeout(r, 1000));
      expect(Object.values(await backend(haproxy.api()))).to.deep.equal([`ready 127.0.0.1:${instances[0]!.port}`, `ready 127.0.0.1:${instances[1]!.port}`]);
      expect(await requests(haproxy.url, 4)).to.deep.equal({ i1: 2, i2: 2 });
      await etcd.restart();
      await setServiceEnabled(writer, layout, 'node-1', false, { actor: 'test', drainTimeout: 0, minHealthy: { count: 0 } });
      await waitFor('node-1 in maint after etcd came back', async () => (await backend(haproxy.api()))['psd-node-1']!.startsWith('maint'), 20_000);
      expect(stale).to.deep.equal([true, false]);
    } finally {
      await syncer.stop();
      await feed.stop();
      await writer.close();
      await reader.close();
    }
  });
});

describe('traffic: the lb haproxy command', function () {
  this.timeout(60_000);
  let endpoint: string;
  let haproxy: HaproxyServer;

  before(async function () {
    this.timeout(120_000);
    ensureBuilt();
    endpoint = (await sharedEtcd()).endpoint;
    haproxy = await startHaproxy();
  });
  after(async () => {
    await haproxy?.stop();
  });

  const base = () => ['lb', 'haproxy', '--socket', haproxy.socket, '--endpoints', endpoint, '--namespace', uniqueNamespace('lb-cli')];

  it('refuses flags that cannot work with one line and exit 2', async () => {
    const agent = await runCli(['lb', 'haproxy', '--socket', haproxy.socket, '--backend', BACKEND, '--agent', 'http://127.0.0.1:8790']);
    expect(agent.code).to.equal(2);
    expect(agent.stderr).to.equal('Error: lb haproxy reads the registry itself: give --endpoints (etcd URLs or one redis:// URL) instead of --agent\n');
    const options = await runCli([...base(), '--backend', BACKEND, '--server-options', 'check; del server proxy_stone/static1']);
    expect(options.code).to.equal(2);
    expect(options.stderr).to.equal('Error: --server-options: expected `add server` options on one line, without ; or # (hint: see proxy-stone-sd lb haproxy --help)\n');
    const prefix = await runCli([...base(), '--backend', BACKEND, '--server-prefix', 'a b']);
    expect(prefix.code).to.equal(2);
    expect(prefix.stderr).to.match(/^Error: --server-prefix: expected letters, digits/);
  });

  it('a backend HAProxy does not have: exit 2 naming it', async () => {
    const res = await runCli([...base(), '--backend', 'nosuch']);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.equal(
      `Error: HAProxy at ${haproxy.socket} has no backend "nosuch" (check --backend against the backend sections of haproxy.cfg) (hint: list the backends with: echo "show backend" | socat stdio <socket>)\n`,
    );
    const logged = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(logged.map((l) => l.event)).to.include('haproxy.fatal');
  });

  it('a socket below level admin: exit 5 saying what haproxy.cfg needs', async () => {
    const operator = await startHaproxy({ config: (where) => defaultConfig(where).replace('level admin', 'level operator') });
    try {
      const cluster = uniqueNamespace('lb-cli-operator');
      const writer = new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 5000 });
      await putRecord(writer, keyLayout(cluster), 'node-1', 3001);
      await writer.close();
      const res = await runCli(['lb', 'haproxy', '--socket', operator.socket, '--backend', BACKEND, '--endpoints', endpoint, '--namespace', cluster]);
      expect(res.code).to.equal(5);
      expect(res.stderr).to.equal(`Error: HAProxy socket ${operator.socket} refuses changes: it needs \`stats socket ${operator.socket} mode 600 level admin\` in haproxy.cfg\n`);
    } finally {
      await operator.stop();
    }
  });
});
