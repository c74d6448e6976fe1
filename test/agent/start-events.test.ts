/**
 * What watchers see when an agent process starts and stops (runAgent, on a real etcd): one
 * serviceJoined whose record already carries the API URL, then one serviceLeft; no serviceUpdated
 * in between (the API URL used to be written by a second put right after the first registration).
 */
import { expect } from 'chai';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { advertisedApiUrl, runAgent } from '../../src/agent/run.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { ClusterView } from '../../src/cluster/view.js';
import { ConfigError, type FlagValue } from '../../src/config/load.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import type { ClusterEvent } from '../../src/types.js';
import { capturingLogger } from '../api/fixtures.js';
import { waitFor } from '../helpers/cluster.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';

describe('agent start: one serviceJoined carrying the API URL, no serviceUpdated (etcd)', function () {
  this.timeout(30_000);
  let endpoint: string;
  let namespace: string;
  let registry: EtcdRegistry;
  let view: ClusterView;
  let events: ClusterEvent[];

  beforeEach(async () => {
    endpoint = (await sharedEtcd()).endpoint;
    namespace = uniqueNamespace('start');
    registry = new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 2000 });
    view = new ClusterView(registry, keyLayout(namespace));
    events = [];
    view.on('event', (e) => events.push(e));
    await view.start();
  });

  afterEach(async () => {
    await view.stop();
    await registry.close();
  });

  const idOf = (e: ClusterEvent) => ('serviceId' in e ? e.serviceId : undefined);
  const apiUrlOf = (e: ClusterEvent | undefined) => (e && 'service' in e ? e.service?.apiUrl : undefined);

  /** Runs the agent until it has started, stops it, and returns what a watcher saw of it and its API URL in the log. */
  async function startAndStop(id: string, flags: Record<string, FlagValue>): Promise<{ seen: ClusterEvent[]; listening?: string }> {
    const logger = capturingLogger();
    let stop!: () => void;
    const until = new Promise<void>((resolve) => (stop = resolve));
    let started = false;
    const running = runAgent({
      env: {},
      until,
      logger,
      onStarted: () => (started = true),
      flags: {
        endpoints: endpoint,
        namespace,
        'service-id': id,
        'service-host': '127.0.0.1',
        'service-port': '1',
        'health-url': 'http://127.0.0.1:1/health',
        'leader-ttl': '3',
        'renew-interval': '1',
        ...flags,
      },
    });
    try {
      await waitFor(`${id} started`, () => started, 10_000);
    } finally {
      stop();
    }
    expect(await running).to.equal(0);
    // The leave is the last thing a stop writes: once the view has it, it has everything before it.
    await waitFor(`${id} left`, () => events.some((e) => e.type === 'serviceLeft' && idOf(e) === id), 10_000);
    const listening = /"event":"api.listening","url":"([^"]+)"/.exec(logger.lines.find((l) => l.includes('api.listening')) ?? '')?.[1];
    const seen = events.filter((e) => idOf(e) === id && ['serviceJoined', 'serviceUpdated', 'serviceLeft'].includes(e.type));
    return { seen, ...(listening ? { listening } : {}) };
  }

  it('an API on loopback: the join carries its URL', async () => {
    const { seen, listening } = await startAndStop('start-api', { 'api-host': '127.0.0.1', 'api-port': '0' });
    expect(listening).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(seen.map((e) => e.type)).to.deep.equal(['serviceJoined', 'serviceLeft']);
    expect(apiUrlOf(seen[0])).to.equal(listening);
  });

  it('an explicit advertise URL wins, in the first registration too', async () => {
    const { seen } = await startAndStop('start-advertised', {
      'api-host': '127.0.0.1',
      'api-port': '0',
      'advertise-url': 'http://sd-1.internal.example:8790',
    });
    expect(seen.map((e) => e.type)).to.deep.equal(['serviceJoined', 'serviceLeft']);
    expect(apiUrlOf(seen[0])).to.equal('http://sd-1.internal.example:8790');
  });

  it('--no-api: a join without an API URL, and nothing else', async () => {
    const { seen, listening } = await startAndStop('start-no-api', { api: false });
    expect(listening).to.equal(undefined);
    expect(seen.map((e) => e.type)).to.deep.equal(['serviceJoined', 'serviceLeft']);
    expect(apiUrlOf(seen[0])).to.equal(undefined);
  });

  it('an API port already taken fails the start before anything is registered', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      let error: unknown;
      await runAgent({
        env: {},
        until: new Promise(() => undefined),
        logger: capturingLogger(),
        flags: { endpoints: endpoint, namespace, 'service-id': 'start-taken', 'service-port': '1', 'api-host': '127.0.0.1', 'api-port': String(port) },
      }).catch((err: unknown) => (error = err));
      // A setting that cannot be used, named as given (exit 2 from the CLI); the listen error is its cause.
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as Error).message).to.equal(`--api-port=${port} (flag): expected a free port (or 0 for any); cannot listen on 127.0.0.1:${port}: in use (EADDRINUSE)`);
      expect(((error as Error).cause as NodeJS.ErrnoException | undefined)?.code).to.equal('EADDRINUSE');
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
    // A write after the failed start: once the view is at its revision, it has seen all before it
    // (a registration would have been a join, and its revoke a leave).
    const fence = await registry.put(`${keyLayout(namespace).audit}fence`, '{}');
    await waitFor('the view at the fence', () => view.currentRevision >= fence, 5000);
    expect(events.filter((e) => idOf(e) === 'start-taken').map((e) => e.type)).to.deep.equal([]);
  });

  it('an API on every interface is advertised at the service host', () => {
    // Pure: the tests bind loopback only. runAgent passes the API's URL through this before start().
    expect(advertisedApiUrl('http://127.0.0.1:8790', '0.0.0.0', '10.1.2.3')).to.equal('http://10.1.2.3:8790');
    expect(advertisedApiUrl('http://[::1]:8790', '::', 'fd00::7')).to.equal('http://[fd00::7]:8790');
    expect(advertisedApiUrl('http://127.0.0.1:8790', '127.0.0.1', '10.1.2.3')).to.equal('http://127.0.0.1:8790');
  });
});
