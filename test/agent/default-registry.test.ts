import { expect } from 'chai';
import { connect } from 'node:net';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { ProxyStoneServiceDiscovery } from '../../src/service-discovery.js';
import type { Logger } from '../../src/util/logger.js';
import { assertBuilt, spawnAgent, type LoggedProcess } from '../deploy/helpers.js';
import { uniqueNamespace } from '../helpers/etcd.js';

const DEFAULT_ETCD = 'http://127.0.0.1:2379';

/** Whether something accepts connections on 127.0.0.1:`port` (then an etcd may answer there). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: 1000 });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A logger that keeps each call's level, fields and message. */
function recordingLogger(): Logger & { lines: { level: string; event?: string; msg: string }[] } {
  const lines: { level: string; event?: string; msg: string }[] = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      const event = typeof obj === 'object' ? (obj as { event?: unknown }).event : undefined;
      lines.push({ level, msg: typeof obj === 'string' ? obj : (msg ?? ''), ...(typeof event === 'string' ? { event } : {}) });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Timings that make registration retries come within a second. */
const QUICK = ['--service-host', '127.0.0.1', '--service-port', '1', '--api-port', '0', '--health-interval', '200ms', '--grace-period', '0', '--leader-ttl', '3', '--renew-interval', '500ms'];

describe('agent: the registry when none is named', function () {
  this.timeout(60_000);
  const agents: LoggedProcess[] = [];

  before(() => assertBuilt());
  afterEach(async () => {
    for (const agent of agents.splice(0)) await agent.stop();
  });

  it('with no endpoints, looks for etcd at http://127.0.0.1:2379; with none there it says what to do, keeps retrying, serves a 503 /health, and stops cleanly', async function () {
    const occupied = await listening(2379);
    // A namespace of its own: should an etcd answer on 2379 on this machine, nothing of its data is touched.
    const agent = spawnAgent(QUICK, { SERVICE_DISCOVERY_NAMESPACE: uniqueNamespace('default-registry'), SERVICE_ID: 'default-registry-1' });
    agents.push(agent);

    const first = await agent.waitForEvent('registry.default_endpoint');
    expect(agent.records[0], 'the first log line').to.equal(first);
    expect(first).to.include({ level: 30, msg: `no registry endpoints configured: using etcd at ${DEFAULT_ETCD}, the default` });
    expect(first.endpoints).to.deep.equal([DEFAULT_ETCD]);
    const started = await agent.waitForEvent('agent.started');
    expect(started.registry).to.equal(DEFAULT_ETCD);
    const api = String(agent.events('api.listening')[0]!.url);
    const status = (await (await fetch(`${api}/service-discovery/status`, { signal: AbortSignal.timeout(5000) })).json()) as { registry: { kind: string; endpoints: string } };
    expect(status.registry).to.include({ kind: 'etcd', endpoints: DEFAULT_ETCD });

    if (occupied) {
      console.log('      (something listens on 127.0.0.1:2379 here: the no-etcd half is skipped)');
      return;
    }
    const hint = await agent.waitForEvent('registry.default_unreachable');
    expect(hint.level).to.equal(40);
    expect(hint.msg).to.equal(
      `no etcd at ${DEFAULT_ETCD} (the default, as no endpoints are configured): start one there, set SERVICE_DISCOVERY_ENDPOINTS (--endpoints) to your etcd, or use --registry memory for a standalone instance; retrying meanwhile`,
    );
    expect(String(agent.events('register.failed')[0]?.err)).to.include('127.0.0.1:2379');
    // It keeps trying (and says the hint once), serving a degraded /health meanwhile.
    await agent.waitFor('a second registration attempt', (r) => r.event === 'register.failed' && r !== agent.events('register.failed')[0], 15_000);
    expect(agent.events('registry.default_unreachable')).to.have.length(1);
    const health = await fetch(`${api}/health`, { signal: AbortSignal.timeout(5000) });
    expect(health.status).to.equal(503);
    expect(agent.proc.exitCode).to.equal(null);
    expect(await agent.stop()).to.deep.equal({ code: 0, signal: null });
    expect(agent.badLines).to.deep.equal([]);
  });

  it('--registry memory (or its env var) logs a registry.memory warning first, naming where it came from, once', async () => {
    const cases: [string[], NodeJS.ProcessEnv, string][] = [
      [['--registry', 'memory'], {}, 'flag --registry'],
      [[], { SERVICE_DISCOVERY_REGISTRY: 'memory' }, 'env SERVICE_DISCOVERY_REGISTRY'],
    ];
    for (const [args, env, namedBy] of cases) {
      const agent = spawnAgent([...args, ...QUICK, '--service-id', 'memory-1'], env);
      agents.push(agent);
      await agent.waitForEvent('registered');
      expect(agent.records[0]?.event, 'the first log line').to.equal('registry.memory');
      expect(agent.records[0]).to.include({
        level: 40,
        msg: `memory registry (${namedBy}): this instance shares nothing with its peers (none of them sees it, it sees none of them); to join a cluster, drop the memory registry and point it at etcd: --endpoints, SERVICE_DISCOVERY_ENDPOINTS or cluster.discovery.endpoints`,
      });
      expect(agent.events('registry.memory')).to.have.length(1);
      expect(agent.events('registry.default_endpoint')).to.deep.equal([]);
      expect((await agent.waitForEvent('agent.started')).registry).to.equal('memory');
      expect(await agent.stop()).to.deep.equal({ code: 0, signal: null });
    }
  });

  it('the library follows the same rule: etcd at the default endpoint, and a warning when it opens a memory registry itself', async () => {
    const service = { id: 'library-1', host: '127.0.0.1', port: 1 };
    const etcd = new ProxyStoneServiceDiscovery({ cluster: { discovery: { namespace: uniqueNamespace('default-registry-lib') } }, service, api: { enabled: false } });
    expect(etcd.config.cluster.discovery).to.deep.include({ registry: 'etcd', endpoints: [DEFAULT_ETCD] });
    await etcd.start();
    try {
      expect(etcd.status().registry).to.include({ kind: 'etcd', endpoints: DEFAULT_ETCD });
    } finally {
      await etcd.stop();
    }

    const logger = recordingLogger();
    const alone = new ProxyStoneServiceDiscovery({ cluster: { discovery: { registry: 'memory' } }, service }, logger);
    await alone.start();
    await alone.stop();
    expect(logger.lines.filter((l) => l.event === 'registry.memory')).to.deep.equal([
      {
        level: 'warn',
        event: 'registry.memory',
        msg: 'memory registry: this instance shares nothing with its peers (none of them sees it, it sees none of them); to join a cluster, drop the memory registry and point it at etcd: --endpoints, SERVICE_DISCOVERY_ENDPOINTS or cluster.discovery.endpoints',
      },
    ]);

    // A registry handed over (the demo's shared one) is its owner's to explain: no line from the agent.
    const sharedLogger = recordingLogger();
    const registry = new MemoryRegistry();
    const shared = new ProxyStoneServiceDiscovery({ cluster: { discovery: { registry: 'memory' } }, service }, sharedLogger, { registry });
    await shared.start();
    await shared.stop();
    await registry.close();
    expect(sharedLogger.lines.filter((l) => l.event === 'registry.memory')).to.deep.equal([]);
  });
});
