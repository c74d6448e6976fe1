/**
 * The dashboard's two live sources against a real etcd and real in-process agents: a listing first,
 * then events, and a clear "not connected" when the other end is not there.
 */
import { expect } from 'chai';
import { AgentClient } from '../../src/cli/agent-client.js';
import { RegistryClient } from '../../src/cli/registry-client.js';
import type { ClusterEvent, ServiceRecord } from '../../src/types.js';
import type { ConnectionState } from '../../src/ui/dashboard-state.js';
import { AgentSource, RegistrySource, type LiveSink, type LiveSource } from '../../src/ui/live-source.js';
import { OPERATOR_KEY, startUiCluster, waitFor, type UiCluster } from './cluster.js';

class Recorder implements LiveSink {
  snapshots: { services: ServiceRecord[]; leaderId: string | null }[] = [];
  events: ClusterEvent[] = [];
  connections: Partial<ConnectionState>[] = [];
  notices: string[] = [];
  snapshot(services: ServiceRecord[], leaderId: string | null): void {
    this.snapshots.push({ services, leaderId });
  }
  event(e: ClusterEvent): void {
    this.events.push(e);
  }
  connection(update: Partial<ConnectionState>): void {
    this.connections.push(update);
  }
  notice(message: string): void {
    this.notices.push(message);
  }
  get connected(): boolean | undefined {
    for (let i = this.connections.length - 1; i >= 0; i--) if (this.connections[i]!.connected !== undefined) return this.connections[i]!.connected;
    return undefined;
  }
}

describe('dashboard live sources', function () {
  this.timeout(30_000);
  let cluster: UiCluster;
  let source: LiveSource | undefined;
  let abort: AbortController;
  const closers: (() => Promise<void>)[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startUiCluster(3);
  });
  after(async () => cluster?.stop());
  beforeEach(() => {
    abort = new AbortController();
  });
  afterEach(async () => {
    abort.abort();
    await source?.close();
    source = undefined;
    for (const close of closers.splice(0)) await close();
    for (const n of cluster.nodes) n.upstream.setMode('up');
    await waitFor('every service healthy again', () => cluster.nodes.every((n) => n.agent.view.services().every((s) => s.status === 'healthy')));
  });

  it('registry: lists, then follows the watch; a disable made with the CLI client shows up as an event', async () => {
    const target = { kind: 'registry' as const, endpoints: [cluster.endpoint], namespace: cluster.namespace, timeoutMs: 2000 };
    source = new RegistrySource(target);
    const sink = new Recorder();
    source.start(sink, abort.signal);
    await waitFor('a listing', () => sink.snapshots.length > 0);
    const { services, leaderId } = sink.snapshots[0]!;
    expect(services.map((s) => s.id)).to.deep.equal(['ui-node-1', 'ui-node-2', 'ui-node-3']);
    expect(leaderId).to.be.a('string');
    expect(sink.connected).to.equal(true);

    cluster.nodes[1]!.upstream.setMode('down');
    await waitFor('ui-node-2 unhealthy', () => sink.events.some((e) => e.type === 'serviceHealthChanged' && e.serviceId === 'ui-node-2' && e.status === 'unhealthy'));

    const client = new RegistryClient(target);
    closers.push(() => client.close());
    // One instance per zone: the capacity guard (tested in test/agent/drain.test.ts) is off here.
    await client.setEnabled('ui-node-3', false, { reason: 'test', actor: 'cli:test', minHealthy: { count: 0 } });
    await waitFor('ui-node-3 disabled', () => sink.events.some((e) => e.type === 'serviceDisabled' && e.serviceId === 'ui-node-3'));
    await client.setEnabled('ui-node-3', true, { actor: 'cli:test' });
    await waitFor('ui-node-3 enabled', () => sink.events.some((e) => e.type === 'serviceEnabled' && e.serviceId === 'ui-node-3'));
  });

  it('registry: watches through the client it is handed and leaves it open; that client reads and writes through the same connection', async () => {
    const target = { kind: 'registry' as const, endpoints: [cluster.endpoint], namespace: cluster.namespace, timeoutMs: 2000 };
    const client = new RegistryClient(target, { reads: 'registry' });
    closers.push(() => client.close());
    const shared = await client.registry();
    source = new RegistrySource(target, { registry: () => client.registry() });
    const sink = new Recorder();
    source.start(sink, abort.signal);
    await waitFor('a listing', () => sink.snapshots.length > 0);
    await client.setEnabled('ui-node-3', false, { reason: 'shared', actor: 'cli:test', drainTimeout: 0, minHealthy: { count: 0 } });
    await waitFor('ui-node-3 disabled', () => sink.events.some((e) => e.type === 'serviceDisabled' && e.serviceId === 'ui-node-3'));
    await source.close();
    source = undefined;
    // Still open after the source closed: one consistent snapshot (records, intents, election) and the audit trail.
    expect(await client.registry()).to.equal(shared);
    const { services } = await client.listServices();
    expect(services.map((s) => [s.id, s.enabled])).to.deep.equal([
      ['ui-node-1', true],
      ['ui-node-2', true],
      ['ui-node-3', false],
    ]);
    expect(services.filter((s) => s.role === 'leader')).to.have.length(1);
    expect((await client.audit({ serviceId: 'ui-node-3', limit: 1 })).entries[0]).to.include({ action: 'disable', reason: 'shared' });
    await client.setEnabled('ui-node-3', true, { actor: 'cli:test' });
  });

  it('registry: says it is not connected, and why, when etcd does not answer', async () => {
    source = new RegistrySource({ kind: 'registry', endpoints: ['http://127.0.0.1:9'], namespace: 'nowhere', timeoutMs: 300 });
    const sink = new Recorder();
    source.start(sink, abort.signal);
    await waitFor('a connection error', () => sink.connections.some((c) => c.connected === false && c.error !== undefined), 10_000);
    expect(sink.snapshots).to.have.length(0);
    expect(sink.notices.join('\n')).to.match(/cannot list .*retrying/);
  });

  it('registry: draws a one-off listing while the watch connects, and never after the watch has listed', async () => {
    const quick = { services: [], leaderId: 'from-the-quick-list' };
    source = new RegistrySource({ kind: 'registry', endpoints: ['http://127.0.0.1:9'], namespace: 'nowhere', timeoutMs: 300 }, { quickList: async () => quick });
    const sink = new Recorder();
    source.start(sink, abort.signal);
    await waitFor('the quick listing', () => sink.snapshots.length > 0, 5000);
    expect(sink.snapshots[0]!.leaderId).to.equal('from-the-quick-list');
    await source.close();

    let release!: () => void;
    const late = new Promise<void>((r) => (release = r));
    const target = { kind: 'registry' as const, endpoints: [cluster.endpoint], namespace: cluster.namespace, timeoutMs: 2000 };
    source = new RegistrySource(target, { quickList: async () => (await late, quick) });
    const live = new Recorder();
    source.start(live, abort.signal);
    await waitFor('the watch listing', () => live.snapshots.length > 0);
    release();
    await new Promise((r) => setTimeout(r, 50));
    expect(live.snapshots.map((x) => x.leaderId)).to.not.include('from-the-quick-list');
  });

  it('agent: lists through the API, follows its SSE stream, reports its registry', async () => {
    const client = new AgentClient({ kind: 'agent', url: cluster.nodes[0]!.api.url, apiKey: OPERATOR_KEY, timeoutMs: 2000 });
    closers.push(() => client.close());
    // Records the order of the stream opening and the listings.
    const calls: string[] = [];
    const watched = new Proxy(client, {
      get(target, prop) {
        if (prop === 'listServices') return (...args: Parameters<AgentClient['listServices']>) => (calls.push('list'), target.listServices(...args));
        if (prop === 'events') {
          return (onEvent: Parameters<AgentClient['events']>[0], signal: AbortSignal, options: Parameters<AgentClient['events']>[2] = {}) =>
            target.events(onEvent, signal, { ...options, onOpen: () => (calls.push('open'), options.onOpen?.()) });
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    source = new AgentSource(watched, { streamWaitMs: 5_000, statusEveryMs: 60_000 });
    const sink = new Recorder();
    source.start(sink, abort.signal);
    await waitFor('a listing', () => sink.snapshots.length > 0);
    // One listing, started once the stream was open: nothing can change unseen between the two.
    expect(calls).to.deep.equal(['open', 'list']);
    expect(sink.snapshots[0]!.services).to.have.length(3);
    expect(sink.snapshots[0]!.leaderId).to.be.a('string');
    const registry = sink.connections.find((c) => c.registry)?.registry;
    expect(registry).to.deep.include({ reachable: true, stale: false });
    expect(sink.connections.find((c) => c.cluster)?.cluster).to.equal(`proxy-stone-cluster (${cluster.namespace})`); // the agent's SERVICE_DISCOVERY_CLUSTER_NAME and namespace
    // …and no second, timed listing follows it.
    await new Promise((r) => setTimeout(r, 1500));
    expect(calls).to.deep.equal(['open', 'list']);
    expect(sink.snapshots).to.have.length(1);

    cluster.nodes[2]!.upstream.setMode('down');
    await waitFor('ui-node-3 unhealthy', () => sink.events.some((e) => e.type === 'serviceHealthChanged' && e.serviceId === 'ui-node-3' && e.status === 'unhealthy'));
    await client.setEnabled('ui-node-2', false, { reason: 'agent test' });
    await waitFor('ui-node-2 disabled', () => sink.events.some((e) => e.type === 'serviceDisabled' && e.serviceId === 'ui-node-2'));
    await client.setEnabled('ui-node-2', true);
    await waitFor('ui-node-2 enabled', () => sink.events.some((e) => e.type === 'serviceEnabled' && e.serviceId === 'ui-node-2'));
    expect(sink.connected).to.equal(true);
  });

  it('agent: lists anyway when the event stream is slow to open, and again once it opens', async () => {
    const client = new AgentClient({ kind: 'agent', url: cluster.nodes[0]!.api.url, apiKey: OPERATOR_KEY, timeoutMs: 2000 });
    closers.push(() => client.close());
    let open!: () => void;
    const held = new Promise<void>((resolve) => (open = resolve));
    // The stream's onOpen is held back until the test lets it through.
    const slow = new Proxy(client, {
      get(target, prop) {
        if (prop === 'events') {
          return (onEvent: Parameters<AgentClient['events']>[0], signal: AbortSignal, options: Parameters<AgentClient['events']>[2] = {}) =>
            target.events(onEvent, signal, { ...options, onOpen: () => void held.then(() => options.onOpen?.()) });
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    source = new AgentSource(slow, { streamWaitMs: 200, statusEveryMs: 60_000 });
    const sink = new Recorder();
    source.start(sink, abort.signal);
    await waitFor('the listing made without waiting for the stream', () => sink.snapshots.length === 1, 3000);
    open();
    await waitFor('the listing made once it opened', () => sink.snapshots.length === 2, 3000);
  });

  it('registry client: onOpen comes once the first listing is done and the watch runs', async () => {
    const client = new RegistryClient({ kind: 'registry', endpoints: [cluster.endpoint], namespace: cluster.namespace, timeoutMs: 2000 });
    closers.push(() => client.close());
    const stop = new AbortController();
    let opened = 0;
    const following = client.events(() => undefined, stop.signal, { onOpen: () => (opened += 1) });
    await waitFor('onOpen', () => opened === 1, 10_000);
    stop.abort();
    await following;
    expect(opened).to.equal(1);
  });

  it('agent: says it is not connected when the agent does not answer, and keeps trying', async () => {
    const client = new AgentClient({ kind: 'agent', url: 'http://127.0.0.1:9', timeoutMs: 300 });
    closers.push(() => client.close());
    source = new AgentSource(client, { streamWaitMs: 60_000, statusEveryMs: 60_000 });
    const sink = new Recorder();
    source.start(sink, abort.signal);
    await waitFor('a connection error', () => sink.connections.some((c) => c.connected === false && /unreachable/.test(c.error ?? '')), 5000);
    const first = sink.connections.length;
    await waitFor('a retry', () => sink.connections.length > first, 5000);
    expect(sink.snapshots).to.have.length(0);
  });
});
