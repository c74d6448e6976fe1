import { expect } from 'chai';
import { ServiceAgent } from '../../src/agent/agent.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { ClusterState } from '../../src/cluster/state.js';
import { ClusterView } from '../../src/cluster/view.js';
import { configFromPartial } from '../../src/config/load.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { RegistryUnavailableError, type KeyValue, type Registry, type WatchHandlers } from '../../src/registry/types.js';
import { putUnderLease } from '../helpers/records.js';
import { useTestAgents } from '../helpers/agents.js';
import type { ClusterEvent } from '../../src/types.js';
import type { Logger } from '../../src/util/logger.js';
import { waitFor } from '../helpers/cluster.js';

/** A logger that keeps the `event` field of every line, to assert on what an agent reported. */
function captureLogger(): Logger & { events: string[] } {
  const events: string[] = [];
  const keep = (obj: object | string) => {
    if (typeof obj === 'object' && 'event' in obj && typeof obj.event === 'string') events.push(obj.event);
  };
  return { events, debug: keep, info: keep, warn: keep, error: keep };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Fixes of issue 6 in the agent core: lapsed disables are announced when they lapse, a quiet view
 * stays current, stop() reports `stopping`, plus the leader record, step-down through the fence,
 * one-round-trip registration and shared views. Run on both registries where the registry matters.
 */
for (const backend of ['memory', 'etcd'] as const) {
  describe(`agent core fixes on ${backend}`, function () {
    this.timeout(20_000);
    const t = useTestAgents(backend, 'core');
    let registry: Registry;
    let namespace: string;
    let agents: ServiceAgent[];
    beforeEach(() => ({ registry, namespace, agents } = t));

    // These tests disable before both are known healthy; the guard has its own tests (drain.test.ts).
    const agent = (id: string, options: { logger?: Logger; view?: ClusterView; start?: boolean; ttl?: number } = {}): Promise<ServiceAgent> => t.agent(id, options);

    async function storedRecord(id: string): Promise<Record<string, unknown> | undefined> {
      const kv = await registry.get(keyLayout(namespace).service(id));
      return kv ? (JSON.parse(kv.value) as Record<string, unknown>) : undefined;
    }

    it('(a) announces a lapsed disable when it lapses, once, and republishes the record as enabled', async () => {
      const a = await agent('a');
      const b = await agent('b');
      await waitFor('both listed', () => a.view.service('b') && b.view.service('a'), 5000);
      const seenByA: ClusterEvent[] = [];
      const seenByB: ClusterEvent[] = [];
      a.on('event', (e) => seenByA.push(e));
      b.on('event', (e) => seenByB.push(e));
      const expiresAt = Date.now() + 800;
      await b.setServiceEnabled('a', false, { reason: 'short maintenance', expiresAt });
      await waitFor('a disabled everywhere', () => a.view.service('a')?.enabled === false && b.view.service('a')?.enabled === false, 3000);
      await waitFor('record says disabled', async () => (await storedRecord('a'))?.enabled === false, 3000);

      const enabledAt = await waitFor(
        'serviceEnabled at expiry',
        () => seenByB.find((e) => e.type === 'serviceEnabled' && e.serviceId === 'a')?.timestamp,
        3000,
        5,
      );
      // Announced at the expiry itself, not when the leader gets round to deleting the key.
      expect(enabledAt).to.be.at.least(expiresAt);
      expect(enabledAt - expiresAt).to.be.lessThan(500);
      await waitFor('record republished as enabled', async () => (await storedRecord('a'))?.enabled === true, 3000);
      // The leader re-enables the lapsed disable promptly (audited); that write announces nothing a second time.
      await waitFor('lapsed intent re-enabled by the leader', async () => {
        const kv = await registry.get(keyLayout(namespace).adminOf('a'));
        const intent = kv ? (JSON.parse(kv.value) as { enabled: boolean; reason?: string; actor: string }) : undefined;
        return intent?.enabled === true && intent.reason === 'expired (was: short maintenance)' && intent.actor.startsWith('leader:');
      }, 3000);
      await sleep(300);
      for (const seen of [seenByA, seenByB]) {
        const toggles = seen.filter((e) => (e.type === 'serviceEnabled' || e.type === 'serviceDisabled') && e.serviceId === 'a').map((e) => e.type);
        expect(toggles).to.deep.equal(['serviceDisabled', 'serviceEnabled']);
      }
      expect(a.status().currentService.enabled).to.equal(true);
    });

    it('(b) a quiet cluster stays current: keep-alive answers move lastUpdate and lastContact', async () => {
      const a = await agent('a');
      await waitFor('healthy and leading', () => a.isLeader() && a.view.service('a')?.status === 'healthy', 5000);
      await sleep(300);
      const revision = (await registry.status()).revision;
      const first = a.status();
      await sleep(1000);
      // No writes in between (steady state), yet the view is known current as of the last keep-alive.
      expect((await registry.status()).revision).to.equal(revision);
      const later = a.status();
      expect(later.view.stale).to.equal(false);
      expect(later.view.lastUpdate - first.view.lastUpdate).to.be.at.least(500);
      expect(Date.now() - later.view.lastUpdate).to.be.lessThan(700);
      expect(later.registry.lastContact).to.be.a('number');
      expect(later.registry.lastContact! - first.registry.lastContact!).to.be.at.least(500);
    });

    it('(c) reports stopping while stop() runs, then stopped; never leader meanwhile', async () => {
      const a = await agent('a', { start: false });
      expect(a.status().status).to.equal('registering');
      await a.start();
      await waitFor('leading', () => a.isLeader(), 5000);
      expect(a.status().status).to.equal('registered');
      const stopping = a.stop();
      const during = a.status();
      expect(during.status).to.equal('stopping');
      expect(during.isLeader).to.equal(false);
      expect(during.currentService.status).to.equal('draining');
      await stopping;
      expect(a.status().status).to.equal('stopped');
      expect(a.isLeader()).to.equal(false);
    });

    it('registers in one transaction: record and election key share a revision and the lease', async () => {
      const a = await agent('a');
      const layout = keyLayout(namespace);
      const record = (await registry.get(layout.service('a')))!;
      const election = (await registry.get(layout.electionOf(a.status().lease.id!)))!;
      expect(election.createRevision).to.equal(record.createRevision);
      expect(election.lease).to.equal(record.lease);
      expect(a.status().lease.term).to.equal(election.createRevision);
    });

    it('the leader writes <ns>/leader once per term, and a graceful stop hands over without two leaders', async () => {
      const a = await agent('a', { ttl: 10 });
      const b = await agent('b', { ttl: 10 });
      const layout = keyLayout(namespace);
      await waitFor('a leads', () => a.isLeader() && b.view.leaderId() === 'a', 5000);
      const record = await waitFor('leader record', async () => (await registry.get(layout.leader))?.value, 3000);
      expect(JSON.parse(record)).to.include({ leaderId: 'a', term: a.status().lease.term });
      await waitFor('b sees the record', () => b.view.state.leaderRecord()?.leaderId === 'a', 3000);

      const changes: [string, boolean, number][] = [];
      a.on('leadership', (l) => changes.push(['a', l, performance.now()]));
      b.on('leadership', (l) => changes.push(['b', l, performance.now()]));
      await a.stop();
      await waitFor('b leads', () => b.isLeader(), 3000, 5);
      // a let go before b took over.
      expect(changes.map(([who, l]) => `${who}:${l}`)).to.deep.equal(['a:false', 'b:true']);
      const next = await waitFor('leader record names b', async () => {
        const kv = await registry.get(layout.leader);
        return kv && JSON.parse(kv.value).leaderId === 'b' ? (JSON.parse(kv.value) as { term: number }) : undefined;
      }, 3000);
      expect(next.term).to.equal(b.status().lease.term);
    });

    it('a leader whose election key vanishes steps down through the fence and campaigns again', async () => {
      const logger = captureLogger();
      const a = await agent('a', { logger });
      const b = await agent('b');
      await waitFor('a leads', () => a.isLeader() && b.view.leaderId() === 'a', 5000);
      const oldTerm = a.status().lease.term!;
      // What an operator's `etcdctl del` (or a restore) does behind the agent's back.
      await registry.delete(keyLayout(namespace).electionOf(a.status().lease.id!));
      await waitFor('b leads', () => b.isLeader(), 3000);
      // a's resign of the vanished term is refused by the fence; it campaigns again, behind b.
      await waitFor('a fenced', () => logger.events.includes('leader.fenced'), 3000);
      await waitFor('a campaigns again', () => (a.status().lease.term ?? 0) > oldTerm, 3000);
      await waitFor('b sees two candidates', () => b.view.electionCandidates().length === 2, 3000);
      expect(a.isLeader()).to.equal(false);
      expect(b.view.leaderId()).to.equal('b');
      expect(logger.events).to.include('leader.step_down');
      // Still one lease per agent.
      const { kvs } = await registry.list(`${namespace}/`);
      expect(new Set(kvs.filter((kv) => kv.lease !== '0').map((kv) => kv.lease)).size).to.equal(2);
      // The ex-leader's graceful stop leaves the new leader's record alone.
      const layout = keyLayout(namespace);
      await waitFor('leader record names b', async () => JSON.parse((await registry.get(layout.leader))?.value ?? '{}').leaderId === 'b', 3000);
      await a.stop();
      expect(JSON.parse((await registry.get(layout.leader))!.value).leaderId).to.equal('b');
    });

    it('agents of one process can share one view; stopping one leaves the view to the others', async () => {
      const view = new ClusterView(registry, keyLayout(namespace));
      await view.start();
      try {
        const a = await agent('a', { view });
        const b = await agent('b', { view });
        await waitFor('one leader', () => [a, b].filter((x) => x.isLeader()).length === 1 && view.services().length === 2, 5000);
        const listeners = view.listenerCount('event');
        await a.stop();
        expect(view.listenerCount('event')).to.equal(listeners - 1);
        await waitFor('b leads alone', () => b.isLeader() && view.services().length === 1, 3000);
        expect(view.stale).to.equal(false);
      } finally {
        await view.stop();
      }
    });
  });
}

describe('ClusterState: lapsing intents, leader cache, lease-less campaigns', () => {
  const layout = keyLayout('ns');
  let revision = 1;
  const kv = (key: string, value: unknown, lease = '7'): KeyValue => {
    revision += 1;
    return { key, value: typeof value === 'string' ? value : JSON.stringify(value), createRevision: revision, modRevision: revision, lease };
  };
  const record = (id: string) =>
    kv(layout.service(id), { id, name: 'n', host: 'h', port: 1, status: 'healthy', registeredAt: 1, updatedAt: 1 });

  it('announces a lapsed disable at expireIntents, and not again when its key is deleted', () => {
    const state = new ClusterState(layout);
    state.put(record('a'), 1000);
    const disabled = state.put(kv(layout.adminOf('a'), { enabled: false, reason: 'r', actor: 'x', at: 1000, expiresAt: 2000 }, '0'), 1000);
    expect(disabled.map((e) => e.type)).to.deep.equal(['serviceDisabled']);
    expect(state.nextIntentExpiry(1500)).to.equal(2000);
    expect(state.expireIntents(1999)).to.deep.equal([]);
    expect(state.service('a', 1999)!.enabled).to.equal(false);
    const lapsed = state.expireIntents(2000);
    expect(lapsed).to.have.length(1);
    expect(lapsed[0]).to.include({ type: 'serviceEnabled', serviceId: 'a', timestamp: 2000 });
    expect(state.expireIntents(2500)).to.deep.equal([]);
    expect(state.nextIntentExpiry(2000)).to.equal(undefined);
    expect(state.delete(layout.adminOf('a'), 2600)).to.deep.equal([]);
  });

  it('an intent that arrives already lapsed announces nothing; a relisting does not repeat announcements', () => {
    const state = new ClusterState(layout);
    state.put(record('a'), 1000);
    expect(state.put(kv(layout.adminOf('a'), { enabled: false, at: 1, expiresAt: 500 }, '0'), 1000)).to.deep.equal([]);
    const intent = kv(layout.adminOf('b'), { enabled: false, at: 1, expiresAt: 3000 }, '0');
    const rec = record('b');
    expect(state.put(rec, 1000).map((e) => e.type)).to.deep.equal(['serviceJoined']);
    expect(state.put(intent, 1000).map((e) => e.type)).to.deep.equal(['serviceDisabled']);
    // Relist after the expiry: the lapse is announced once, by the relist.
    const relisted = state.replaceWith([record('a'), rec, intent], 3500);
    expect(relisted.filter((e) => e.type === 'serviceEnabled').map((e) => ('serviceId' in e ? e.serviceId : ''))).to.deep.equal(['b']);
    expect(state.expireIntents(4000)).to.deep.equal([]);
  });

  it('skips election keys without a lease, and drops a candidate overwritten with garbage', () => {
    const warnings: string[] = [];
    const state = new ClusterState(layout, (m) => warnings.push(m));
    const events = state.put(kv(`${layout.election}abc`, 'ghost', '0'));
    expect(events).to.deep.equal([]);
    expect(state.leaderId()).to.equal(null);
    expect(warnings.join()).to.match(/no lease/);
    state.put(kv(`${layout.election}def`, 'real', '9'));
    expect(state.leaderId()).to.equal('real');
    const dropped = state.put(kv(`${layout.election}def`, '', '9'));
    expect(dropped.map((e) => e.type)).to.deep.equal(['leaderElected']);
    expect(state.leaderId()).to.equal(null);
  });

  it('keeps the leader cached across records, so listing stays linear', () => {
    const state = new ClusterState(layout);
    for (let i = 0; i < 2000; i++) {
      state.put(record(`s${i}`));
      state.put(kv(`${layout.election}${i.toString(16)}`, `s${i}`, String(i + 1)));
    }
    const t0 = performance.now();
    const services = state.services();
    expect(services.filter((s) => s.role === 'leader').map((s) => s.id)).to.deep.equal(['s0']);
    // 2,000 records with 2,000 candidates: quadratic would be ~4M candidate visits.
    expect(performance.now() - t0).to.be.lessThan(1000);
  });

  it('reads <ns>/leader and warns about a malformed one', () => {
    const warnings: string[] = [];
    const state = new ClusterState(layout, (m) => warnings.push(m));
    state.put(kv(layout.leader, { leaderId: 'a', since: 5, term: 9 }));
    expect(state.leaderRecord()).to.deep.equal({ leaderId: 'a', since: 5, term: 9 });
    state.put(kv(layout.leader, 'nope'));
    expect(state.leaderRecord()).to.equal(undefined);
    expect(warnings).to.have.length(1);
    state.delete(layout.leader);
    expect(state.leaderRecord()).to.equal(undefined);
  });
});

/**
 * A registry whose watches, like etcd3's after a lost connection, resume without replaying what
 * happened meanwhile. `cut()` makes it unreachable (calls fail, watches report a disconnect and
 * drop events); `restore()` makes it answer again and tells watches they are connected.
 */
function lossyRegistry(inner: MemoryRegistry) {
  const watches = new Set<WatchHandlers>();
  let down = false;
  const up = <T>(f: () => Promise<T>): Promise<T> => (down ? Promise.reject(new RegistryUnavailableError('lossy', 'cut')) : f());
  const registry: Registry = {
    kind: 'memory',
    description: 'lossy',
    get: (k) => up(() => inner.get(k)),
    list: (p) => up(() => inner.list(p)),
    put: (k, v, o) => up(() => inner.put(k, v, o)),
    delete: (k) => up(() => inner.delete(k)),
    txn: (c, o) => up(() => inner.txn(c, o)),
    grantLease: (t) => up(() => inner.grantLease(t)),
    leaseCount: () => up(() => inner.leaseCount()),
    status: () => up(() => inner.status()),
    close: () => inner.close(),
    watchPrefix(prefix, from, handlers) {
      const wrapped: WatchHandlers = { ...handlers, onEvents: (events, revision) => (down ? undefined : handlers.onEvents(events, revision)) };
      watches.add(wrapped);
      const handle = inner.watchPrefix(prefix, from, wrapped);
      return {
        cancel: async () => {
          watches.delete(wrapped);
          await handle.cancel();
        },
      };
    },
  };
  return {
    registry,
    cut() {
      down = true;
      for (const w of watches) w.onDisconnected?.(new Error('cut'));
    },
    restore() {
      down = false;
      for (const w of watches) w.onConnected?.();
    },
  };
}

describe('ClusterView: a watch that resumes without replay cannot hide a change', () => {
  it('re-lists and diffs once the registry answers again after a disconnect', async () => {
    const inner = new MemoryRegistry();
    const lossy = lossyRegistry(inner);
    const layout = keyLayout('lossy');
    const view = new ClusterView(lossy.registry, layout, { retryMs: 50 });
    const record = (id: string) => JSON.stringify({ id, name: 'n', host: 'h', port: 1, status: 'healthy', registeredAt: 1, updatedAt: 1 });
    try {
      await putUnderLease(inner, layout.service('a'), record('a'));
      await view.start();
      const events: ClusterEvent[] = [];
      view.on('event', (e) => events.push(e));
      lossy.cut();
      await waitFor('stale', () => view.stale, 1000);
      // Changes while the watch is cut off: a join and a leave it will never be told about.
      await putUnderLease(inner, layout.service('b'), record('b'));
      await inner.delete(layout.service('a'));
      lossy.restore();
      await waitFor('current again', () => !view.stale, 2000);
      expect(view.services().map((s) => s.id)).to.deep.equal(['b']);
      expect(events.map((e) => `${e.type}:${'serviceId' in e ? e.serviceId : ''}`).sort()).to.deep.equal(['serviceJoined:b', 'serviceLeft:a']);
      // And it keeps watching from there.
      await putUnderLease(inner, layout.service('c'), record('c'));
      await waitFor('c seen', () => view.service('c'), 1000);
    } finally {
      await view.stop();
      await inner.close();
    }
  });
});

describe('agent.setServiceEnabled defaults', function () {
  this.timeout(15_000);
  it('records the agent as actor when the caller passes actor: undefined', async () => {
    const { MemoryRegistry } = await import('../../src/registry/memory.js');
    const { ServiceAgent } = await import('../../src/agent/agent.js');
    const { configFromPartial } = await import('../../src/config/load.js');
    const { startSampleUpstream } = await import('../../src/demo/demo.js');
    const registry = new MemoryRegistry();
    const upstream = await startSampleUpstream();
    const agent = new ServiceAgent({
      registry,
      config: configFromPartial({
        cluster: {
          leaderElection: { ttl: 2, renewInterval: 0.5 },
          healthCheck: { interval: 0.2, timeout: 0.2, retries: 1, gracePeriod: 0 },
          discovery: { registry: 'memory', namespace: 'actor-default' },
        },
        service: { id: 'a', host: '127.0.0.1', port: upstream.port },
      }),
    });
    try {
      await agent.start();
      const res = await agent.setServiceEnabled('a', false, { reason: 'r', actor: undefined });
      expect(res.audit.actor).to.equal('agent:a');
    } finally {
      await agent.stop();
      await upstream.close();
      await registry.close();
    }
  });
});

describe('agent registration racing the first health check', function () {
  this.timeout(15_000);
  it('publishes a health change made while registering at once, not at the next renew', async () => {
    const root = new MemoryRegistry();
    const upstream = await startSampleUpstream();
    const layout = keyLayout('register-race');
    let probed!: () => void;
    const firstProbe = new Promise<void>((resolve) => (probed = resolve));
    // The registration's write waits until the first probe has answered, as when etcd is slower than
    // the instance. No election: becoming leader would republish the record anyway (a follower does not).
    const raw = root.connect();
    const slowTxn = new Proxy(raw, {
      get(target, prop) {
        if (prop === 'put') return async (...args: Parameters<Registry['put']>) => (await firstProbe, target.put(...args));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const agent = new ServiceAgent({
      registry: slowTxn,
      config: configFromPartial({
        cluster: {
          // Renew (and so the retry of a pending publish) only after the test's deadline.
          leaderElection: { enabled: false, ttl: 60, renewInterval: 30 },
          healthCheck: { interval: 30, timeout: 1, retries: 1, gracePeriod: 0 },
          discovery: { registry: 'memory', namespace: 'register-race' },
        },
        service: { id: 'race', host: '127.0.0.1', port: upstream.port },
      }),
    });
    agent.once('healthResult', () => probed());
    try {
      await agent.start();
      await waitFor(
        'the record published healthy',
        async () => {
          const kv = await root.get(layout.service('race'));
          return kv !== null && (JSON.parse(kv.value) as { status: string }).status === 'healthy';
        },
        3000,
      );
    } finally {
      await agent.stop();
      await upstream.close();
      await raw.close();
      await root.close();
    }
  });
});
