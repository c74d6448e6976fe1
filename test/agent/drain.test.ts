/**
 * Issue 9, items 1-3 in the agent core on a real etcd: drain lifecycle (probe and deadline), timed
 * disables re-enabled by the leader with an audit entry, start-disabled, and the capacity guard
 * (count, percentage, force, concurrent disables).
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { ServiceAgent } from '../../src/agent/agent.js';
import { probeDrain } from '../../src/agent/drain.js';
import { ConcurrentChangeError, listAudit, setServiceEnabled } from '../../src/cluster/admin.js';
import { toApiError } from '../../src/api/errors.js';
import { describeError } from '../../src/cli/errors.js';
import { CapacityError } from '../../src/cluster/capacity.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import type { Registry } from '../../src/registry/types.js';
import type { AdminIntent, ClusterEvent, ServiceRecord } from '../../src/types.js';
import { waitFor } from '../helpers/cluster.js';
import { useTestAgents } from '../helpers/agents.js';
import { listenOnLoopback } from '../helpers/loopback.js';

/** A drain probe stand-in: answers `{inflight: n}` until told it is idle. */
async function startDrainProbe(): Promise<{ url: string; setInflight(n: number): void; hits(): number; close(): Promise<void> }> {
  let inflight = 3;
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ inflight }));
  });
  const { url, close } = await listenOnLoopback(server);
  return {
    url: `${url}/drain`,
    setInflight: (n) => (inflight = n),
    hits: () => hits,
    close,
  };
}

describe('drain, timed disables, start-disabled and the capacity guard (etcd)', function () {
  this.timeout(30_000);
  const t = useTestAgents('etcd', 'drain');
  let registry: EtcdRegistry;
  let namespace: string;
  let upstreams: SampleUpstream[];
  let agents: ServiceAgent[];
  beforeEach(() => {
    ({ namespace, upstreams, agents } = t);
    registry = t.registry as EtcdRegistry;
  });

  const layout = () => keyLayout(namespace);

  // Each agent opens its own registry client, as `proxy-stone-sd agent` does; the guard is on (1) unless asked.
  const agent = (
    id: string,
    options: { zone?: string; startDisabled?: boolean; drainProbeUrl?: string; minHealthy?: string; upstream?: SampleUpstream } = {},
  ): Promise<ServiceAgent> =>
    t.agent(id, { ownRegistry: true, checkTimeout: 0.5, region: 'us-east-1', zone: 'us-east-1a', startDisabled: false, minHealthy: '1', ...options });

  async function intent(id: string): Promise<AdminIntent | undefined> {
    const kv = await registry.get(layout().adminOf(id));
    return kv ? (JSON.parse(kv.value) as AdminIntent) : undefined;
  }

  const healthy = (a: ServiceAgent, ids: string[]) => ids.every((id) => a.view.service(id)?.isHealthy === true);

  it('a timed disable is re-enabled by the leader at its expiry, fenced and audited', async () => {
    const a = await agent('a');
    const b = await agent('b');
    await waitFor('both healthy, a leads', () => healthy(a, ['a', 'b']) && a.isLeader(), 8000);
    const expiresAt = Date.now() + 1500;
    const res = await b.setServiceEnabled('b', false, { reason: 'kernel patch', expiresAt, actor: 'cli:ops', drainTimeout: 0 });
    expect(res.service).to.include({ enabled: false, isHealthy: false, adminState: 'disabled', disabledUntil: expiresAt });
    await waitFor('b disabled in a view', () => a.view.service('b')?.enabled === false, 3000);

    const stored = await waitFor('the leader re-enabled it', async () => {
      const i = await intent('b');
      return i?.enabled === true ? i : undefined;
    }, 5000, 20);
    expect(stored.at).to.be.at.least(expiresAt);
    expect(stored.at - expiresAt).to.be.lessThan(1000);
    expect(stored).to.include({ actor: 'leader:a', reason: 'expired (was: kernel patch)' });
    const [entry] = await listAudit(registry, layout(), { serviceId: 'b', limit: 1 });
    expect(entry).to.include({ action: 'enable', actor: 'leader:a', changed: true, automatic: true, expired: true, reason: 'expired (was: kernel patch)', expiresAt });
    const disableEntry = (await listAudit(registry, layout(), { serviceId: 'b' })).find((e) => e.action === 'disable');
    expect(disableEntry).to.include({ actor: 'cli:ops', expiresAt });
    await waitFor('b takes traffic again', () => a.view.service('b')?.isHealthy === true, 3000);
  });

  it('a drain that runs until the expiry does not get in the way of the re-enable (both due at once)', async () => {
    const a = await agent('a');
    await agent('b');
    await waitFor('both healthy, a leads', () => healthy(a, ['a', 'b']) && a.isLeader(), 8000);
    for (const id of ['a', 'b']) {
      const expiresAt = Date.now() + 1000;
      // The drain is capped at the expiry: the agent's drain deadline and the leader's expiry coincide.
      const res = await a.setServiceEnabled(id, false, { reason: 'both at once', expiresAt, drainTimeout: 60 });
      expect(res.intent.drainUntil).to.equal(expiresAt);
      await waitFor(`${id} re-enabled by the leader`, async () => (await intent(id))?.enabled === true, 4000, 20);
      const entries = await listAudit(registry, layout(), { serviceId: id });
      expect(entries.map((e) => e.drained)).to.not.include('deadline');
      expect(entries[0]).to.include({ expired: true, actor: 'leader:a' });
    }
  });

  it('a new leader re-enables a disable that expired while nobody led', async () => {
    // Written straight into etcd, already expired, before any agent runs.
    await registry.put(layout().adminOf('a'), JSON.stringify({ enabled: false, reason: 'old', actor: 'cli:x', at: Date.now() - 10_000, expiresAt: Date.now() - 5000 }));
    const a = await agent('a');
    await waitFor('re-enabled by the first leader', async () => (await intent('a'))?.enabled === true, 8000);
    expect(await intent('a')).to.include({ actor: 'leader:a', reason: 'expired (was: old)' });
    expect(a.view.service('a')?.enabled).to.equal(true);
  });

  it('drains until the drain probe says idle, then is disabled (audited drained: idle); events say so', async () => {
    const probe = await startDrainProbe();
    try {
      const a = await agent('a', { drainProbeUrl: probe.url });
      const b = await agent('b');
      await waitFor('both healthy', () => healthy(b, ['a', 'b']), 8000);
      const seen: ClusterEvent[] = [];
      b.on('event', (e) => seen.push(e));
      const res = await b.setServiceEnabled('a', false, { reason: 'deploy', drainTimeout: 20 });
      expect(res.service).to.include({ isHealthy: false, adminState: 'draining' });
      expect(res.service!.drainUntil).to.be.closeTo(Date.now() + 20_000, 2000);
      await waitFor('probe polled while busy', () => probe.hits() >= 2, 5000);
      expect(b.view.service('a')).to.include({ adminState: 'draining', isHealthy: false });
      expect((await intent('a'))?.drainedAt).to.equal(undefined);
      probe.setInflight(0);
      await waitFor('drain recorded as ended', async () => (await intent('a'))?.drainEnd === 'idle', 5000);
      await waitFor('a disabled in b view', () => b.view.service('a')?.adminState === 'disabled', 3000);
      const [entry] = await listAudit(registry, layout(), { serviceId: 'a', limit: 1 });
      expect(entry).to.include({ action: 'disable', actor: 'agent:a', automatic: true, drained: 'idle', changed: false, reason: 'deploy' });
      const disabled = seen.find((e) => e.type === 'serviceDisabled' && e.serviceId === 'a');
      expect(disabled).to.have.property('drainUntil', res.service!.drainUntil);
      const updated = seen.find((e) => e.type === 'serviceUpdated' && e.serviceId === 'a');
      expect(updated?.type === 'serviceUpdated' ? updated.service.adminState : undefined).to.equal('disabled');
      void a;
    } finally {
      await probe.close();
    }
  });

  it('without a probe the drain ends at its deadline (audited drained: deadline); --for caps the drain', async () => {
    await agent('a');
    const b = await agent('b');
    await waitFor('both healthy', () => healthy(b, ['a', 'b']), 8000);
    const res = await b.setServiceEnabled('a', false, { reason: 'deploy', drainTimeout: 1 });
    const drainUntil = res.service!.drainUntil!;
    await waitFor('drain ended at the deadline', async () => (await intent('a'))?.drainEnd === 'deadline', 5000);
    const i = await intent('a');
    expect(i!.drainedAt).to.be.at.least(drainUntil);
    const [entry] = await listAudit(registry, layout(), { serviceId: 'a', limit: 1 });
    expect(entry).to.include({ drained: 'deadline', actor: 'agent:a' });
    // A timed disable shorter than the drain: the drain ends with it.
    await b.setServiceEnabled('a', true, {});
    const expiresAt = Date.now() + 3000;
    const capped = await b.setServiceEnabled('a', false, { reason: 'short', drainTimeout: 60, expiresAt });
    expect(capped.intent.drainUntil).to.equal(expiresAt);
  });

  it('start-disabled: registers disabled and audited; after enable, a restart with the flag stays enabled', async () => {
    const upstream = await startSampleUpstream();
    upstreams.push(upstream);
    const peer = await agent('peer');
    const a = await agent('a', { startDisabled: true, upstream });
    await waitFor('a registered and checked healthy', () => peer.view.service('a')?.status === 'healthy', 8000);
    // Never routable: the intent existed before the record.
    expect(peer.view.service('a')).to.include({ enabled: false, isHealthy: false, disabledReason: 'start-disabled' });
    expect(await intent('a')).to.include({ enabled: false, reason: 'start-disabled', actor: 'agent:a' });
    const [entry] = await listAudit(registry, layout(), { serviceId: 'a', limit: 1 });
    expect(entry).to.include({ action: 'disable', startDisabled: true, automatic: true, actor: 'agent:a' });
    expect(await peer.getHealthyServices()).to.have.length(1);

    await peer.setServiceEnabled('a', true, { reason: 'smoke test passed', actor: 'cli:ci' });
    await waitFor('a enabled', () => peer.view.service('a')?.isHealthy === true, 3000);
    await a.stop();
    agents.splice(agents.indexOf(a), 1);
    const again = await agent('a', { startDisabled: true, upstream });
    await waitFor('a back and healthy', () => peer.view.service('a')?.status === 'healthy' && again.view.service('a') !== undefined, 8000);
    expect(peer.view.service('a')).to.include({ enabled: true, isHealthy: true });
    expect(await intent('a')).to.include({ enabled: true, reason: 'smoke test passed' });
  });

  it('the capacity guard refuses the last healthy instance of a zone; --force overrides it and is audited', async () => {
    const a = await agent('a', { zone: 'us-east-1a' });
    await agent('b', { zone: 'us-east-1b' });
    await agent('c', { zone: 'us-east-1b' });
    await waitFor('all healthy', () => healthy(a, ['a', 'b', 'c']), 8000);
    let refused: unknown;
    try {
      await a.setServiceEnabled('a', false, { reason: 'oops' });
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(CapacityError);
    expect((refused as Error).message).to.equal(
      'refusing to disable a: zone us-east-1a of region us-east-1 would have 0 healthy enabled instances (minimum 1); use --force to override',
    );
    expect(await intent('a')).to.equal(undefined);
    expect(await listAudit(registry, layout(), { serviceId: 'a' })).to.deep.equal([]);
    // b's zone keeps c.
    expect((await a.setServiceEnabled('b', false, { reason: 'fine', drainTimeout: 0 })).changed).to.equal(true);
    await waitFor('b disabled in view', () => a.view.service('b')?.enabled === false, 3000);
    // Now c is the last one in us-east-1b: refused; disabling b again (already disabled) is allowed.
    await setServiceEnabled(registry, layout(), 'c', false, { minHealthy: { count: 1 } }).then(
      () => expect.fail('expected a refusal'),
      (err: unknown) => expect(err).to.be.instanceOf(CapacityError),
    );
    expect((await a.setServiceEnabled('b', false, { reason: 'again' })).changed).to.equal(false);
    const forced = await a.setServiceEnabled('a', false, { reason: 'on purpose', force: true, actor: 'cli:ops' });
    expect(forced.changed).to.equal(true);
    expect(forced.audit).to.include({ forced: true, capacity: 'zone us-east-1a of region us-east-1 would have 0 healthy enabled instances (minimum 1)' });
    expect(forced.intent.forced).to.equal(true);
    const [entry] = await listAudit(registry, layout(), { serviceId: 'a', limit: 1 });
    expect(entry).to.include({ forced: true, actor: 'cli:ops', action: 'disable' });
  });

  it('the capacity guard: percentages, and two concurrent disables of the last two cannot both pass', async () => {
    const a = await agent('a');
    await agent('b');
    await agent('c');
    await agent('d');
    await waitFor('all healthy', () => healthy(a, ['a', 'b', 'c', 'd']), 8000);
    // 75% of 4 is 3: one may go, a second may not.
    const min = { percent: 75 };
    expect((await setServiceEnabled(registry, layout(), 'a', false, { minHealthy: min, drainTimeout: 0 })).changed).to.equal(true);
    await setServiceEnabled(registry, layout(), 'b', false, { minHealthy: min }).then(
      () => expect.fail('expected a refusal'),
      (err: unknown) => expect((err as Error).message).to.match(/zone us-east-1a of region us-east-1 would have 2 healthy enabled instances \(minimum 3\)/),
    );
    // Back to 3 of 4... then min 2 of what is left: b, c, d healthy; disabling two at once must leave 2.
    const results = await Promise.allSettled(
      ['b', 'c'].map((id) => setServiceEnabled(registry, layout(), id, false, { minHealthy: { count: 2 }, drainTimeout: 0 })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(ok, 'exactly one of two racing disables passes').to.have.length(1);
    expect(refused).to.have.length(1);
    expect((refused[0] as PromiseRejectedResult).reason).to.be.instanceOf(CapacityError);
  });

  /**
   * The registry, with `beforeTxn` run before each transaction is sent: the moment between the guard's
   * read and its write, where a race lands. The writes are the real etcd's, as is the transaction.
   */
  function racing(beforeTxn: (attempt: number) => Promise<void>): { registry: Registry; txns(): number } {
    let txns = 0;
    const wrapped = Object.create(registry) as Registry;
    wrapped.txn = async (compare, ops) => {
      await beforeTxn(txns++);
      return registry.txn(compare, ops);
    };
    return { registry: wrapped, txns: () => txns };
  }

  for (const race of ['turns unhealthy', 'leaves'] as const) {
    it(`the capacity guard: the last other healthy instance of the zone ${race} between the read and the write, and the disable is refused`, async () => {
      const upstreamB = await startSampleUpstream();
      upstreams.push(upstreamB);
      const a = await agent('a');
      const b = await agent('b', { upstream: upstreamB });
      await waitFor('both healthy', () => healthy(a, ['a', 'b']), 8000);
      const raced = racing(async (attempt) => {
        if (attempt > 0) return;
        // A real change by b's own agent, complete in etcd before the disable's transaction is sent.
        if (race === 'leaves') {
          await b.stop();
        } else {
          upstreamB.setMode('down');
          await waitFor('b unhealthy in etcd', async () => {
            const kv = await registry.get(layout().service('b'));
            return kv !== null && (JSON.parse(kv.value) as ServiceRecord).status === 'unhealthy';
          }, 8000);
        }
      });
      let refused: unknown;
      try {
        await setServiceEnabled(raced.registry, layout(), 'a', false, { minHealthy: { count: 1 }, drainTimeout: 0 });
      } catch (err) {
        refused = err;
      }
      // The first transaction failed on b's record; the second read sees a as the zone's last.
      expect(refused, 'the disable is refused').to.be.instanceOf(CapacityError);
      expect((refused as Error).message).to.match(/zone us-east-1a of region us-east-1 would have 0 healthy enabled instances/);
      expect(raced.txns(), 'one transaction, refused on the re-read').to.equal(1);
      expect(await intent('a')).to.equal(undefined);
      expect(await listAudit(registry, layout(), { serviceId: 'a' })).to.deep.equal([]);
    });
  }

  it('the capacity guard: a counted record that keeps changing is retried a bounded number of times, then the disable fails writing nothing', async () => {
    const a = await agent('a');
    await agent('b');
    await waitFor('both healthy', () => healthy(a, ['a', 'b']), 8000);
    // Before every transaction b's record is put again unchanged (as a refresh by its agent would):
    // its mod revision moves, so every attempt conflicts.
    const raced = racing(async () => {
      const kv = (await registry.get(layout().service('b')))!;
      await registry.put(kv.key, kv.value, { lease: kv.lease });
    });
    let failed: unknown;
    try {
      await setServiceEnabled(raced.registry, layout(), 'a', false, { minHealthy: { count: 1 }, drainTimeout: 0 });
    } catch (err) {
      failed = err;
    }
    expect(failed).to.be.instanceOf(ConcurrentChangeError);
    expect((failed as Error).message).to.equal(
      'the intent of a, or an instance the capacity guard counted, kept changing while it was written; nothing was changed, try again',
    );
    // Transient, so a retryable answer (409 conflict; CLI exit 1 with a hint), not a bug's 500.
    expect(toApiError(failed)).to.include({ statusCode: 409, code: 'conflict' });
    expect(describeError(failed)).to.include({ exit: 1, bug: false });
    expect(raced.txns(), 'attempts').to.equal(5);
    expect(await intent('a')).to.equal(undefined);
    expect(await listAudit(registry, layout(), { serviceId: 'a' })).to.deep.equal([]);
    // Without the churn the same disable passes: b still serves the zone.
    expect((await setServiceEnabled(registry, layout(), 'a', false, { minHealthy: { count: 1 }, drainTimeout: 0 })).changed).to.equal(true);
  });
});

describe('the drain probe contract', () => {
  it('idle on 2xx with {"idle": true} or {"inflight": 0}; anything else is busy, and a silent probe is bounded', async () => {
    const answers: Record<string, [number, string]> = {
      '/idle': [200, '{"idle":true}'],
      '/zero': [200, '{"inflight":0}'],
      '/busy': [200, '{"inflight":3}'],
      '/notidle': [200, '{"idle":false}'],
      '/down': [503, '{"idle":true}'],
      '/text': [200, 'idle'],
    };
    const server = createServer((req, res) => {
      if (req.url === '/silent') return; // never answers
      const [status, body] = answers[req.url ?? ''] ?? [404, ''];
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    const { url: base, close } = await listenOnLoopback(server);
    try {
      expect(await probeDrain(`${base}/idle`, 1000)).to.deep.equal({ idle: true });
      expect(await probeDrain(`${base}/zero`, 1000)).to.deep.equal({ idle: true });
      expect(await probeDrain(`${base}/busy`, 1000)).to.deep.equal({ idle: false, why: '3 in flight' });
      expect(await probeDrain(`${base}/notidle`, 1000)).to.deep.equal({ idle: false, why: 'answer says busy' });
      expect(await probeDrain(`${base}/down`, 1000)).to.deep.equal({ idle: false, why: 'HTTP 503' });
      expect(await probeDrain(`${base}/text`, 1000)).to.deep.equal({ idle: false, why: 'answer is not JSON' });
      const t0 = Date.now();
      expect(await probeDrain(`${base}/silent`, 300)).to.deep.equal({ idle: false, why: 'no answer within 300ms' });
      expect(Date.now() - t0).to.be.below(2000);
      expect((await probeDrain('http://127.0.0.1:1/drain', 500)).idle).to.equal(false);
    } finally {
      await close();
    }
  });
});
