import { expect } from 'chai';
import http from 'node:http';
import type { HealthHistoryEntry } from '../../src/agent/health-state.js';
import { InstanceMaintenanceHook, type InstanceMode } from '../../src/agent/maintenance-hook.js';
import type { ServiceDetails } from '../../src/cli/cluster-contract.js';
import { keyLayout } from '../../src/cluster/keys.js';
import type { InstanceMaintenanceInfo, ServiceRecord } from '../../src/types.js';
import { startEtcd, uniqueNamespace, type EtcdServer } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { assertBuilt, BIN, ClusterReader, spawnAgent, waitFor, type AgentProcess } from '../helpers/cluster.js';
import { spawn } from 'node:child_process';
import { listenOnLoopback } from '../helpers/loopback.js';

/**
 * A stand-in Proxy-Stone instance: `/health` answers 200 or 503 as told, and Proxy-Stone's own
 * maintenance switch (`/api/cluster/*`) can be told to fail its first K calls, to accept switches
 * without applying them (`stuck`), or to hang.
 */
interface StandIn {
  url: string;
  port: number;
  healthy: boolean;
  mode: InstanceMode;
  /** Calls to /api/cluster/* still to fail with HTTP 500. */
  failNext: number;
  stuck: boolean;
  hang: boolean;
  calls: string[];
  close(): Promise<void>;
}

async function startStandIn(): Promise<StandIn> {
  const state = { healthy: true, mode: 'serving' as InstanceMode, failNext: 0, stuck: false, hang: false, calls: [] as string[] };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/health') return send(state.healthy ? 200 : 503, { status: state.healthy ? 'ok' : 'unhealthy' });
    if (!path.startsWith('/api/cluster/')) return send(404, {});
    state.calls.push(`${req.method} ${path}`);
    if (state.hang) return; // never answers
    if (state.failNext > 0) {
      state.failNext -= 1;
      return send(500, { error: 'boom' });
    }
    if (req.method === 'POST' && path === '/api/cluster/disable-serving') {
      if (!state.stuck) state.mode = 'maintenance';
    } else if (req.method === 'POST' && path === '/api/cluster/enable-serving') {
      if (!state.stuck) state.mode = 'serving';
    } else if (!(req.method === 'GET' && path === '/api/cluster/service-status')) return send(404, {});
    return send(200, { status: { mode: state.mode, enabled: state.mode === 'serving' } });
  });
  return Object.assign(state, await listenOnLoopback(server));
}

function apiUrlOf(agent: AgentProcess): string | undefined {
  for (const line of agent.output().split('\n')) {
    if (!line.includes('api.listening')) continue;
    try {
      return (JSON.parse(line) as { url?: string }).url;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return (await res.json()) as T;
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', COLUMNS: '200' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('instance maintenance hook against a stand-in instance', function () {
  this.timeout(20_000);
  let standIn: StandIn;
  let hook: InstanceMaintenanceHook | undefined;
  let desired: InstanceMode;
  let changes: InstanceMaintenanceInfo[];

  beforeEach(async () => {
    standIn = await startStandIn();
    desired = 'serving';
    changes = [];
  });
  afterEach(async () => {
    await hook?.stop();
    hook = undefined;
    await standIn.close();
  });

  function startHook(options: { timeoutMs?: number; recheckMs?: number } = {}): InstanceMaintenanceHook {
    hook = new InstanceMaintenanceHook({
      baseUrl: standIn.url,
      desired: () => desired,
      timeoutMs: options.timeoutMs ?? 500,
      recheckMs: options.recheckMs ?? 400,
      initialBackoffMs: 50,
    });
    hook.on('change', (i) => changes.push(i));
    hook.start();
    return hook;
  }

  it('switches the instance to maintenance and back, verifying each switch', async () => {
    const h = startHook();
    await waitFor('in sync, serving', () => h.info().inSync && h.info().actual === 'serving', 3000);
    expect(h.switches).to.equal(0);
    desired = 'maintenance';
    h.poke();
    await waitFor('in maintenance', () => h.info().inSync && h.info().actual === 'maintenance', 3000);
    expect(standIn.mode).to.equal('maintenance');
    expect(standIn.calls).to.include('POST /api/cluster/disable-serving');
    desired = 'serving';
    h.poke();
    await waitFor('serving again', () => h.info().inSync && h.info().actual === 'serving', 3000);
    expect(standIn.mode).to.equal('serving');
    expect(h.switches).to.equal(2);
  });

  it('retries failures until the switch sticks, reporting the mismatch meanwhile', async () => {
    standIn.failNext = 3;
    desired = 'maintenance';
    const h = startHook();
    await waitFor('in maintenance after failures', () => h.info().inSync && standIn.mode === 'maintenance', 5000);
    const mismatch = changes.find((c) => !c.inSync);
    expect(mismatch, 'a mismatch was reported before success').to.not.equal(undefined);
    expect(mismatch).to.deep.include({ desired: 'maintenance', inSync: false });
    expect(mismatch!.lastError).to.match(/HTTP 500/);
    expect(h.info().lastError).to.equal(undefined);
  });

  it('corrects an instance that forgot its maintenance mode (a restart), on the periodic re-check', async () => {
    desired = 'maintenance';
    const h = startHook({ recheckMs: 200 });
    await waitFor('in maintenance', () => h.info().inSync && standIn.mode === 'maintenance', 3000);
    standIn.mode = 'serving'; // Proxy-Stone restarted and came back serving
    await waitFor('corrected without a poke', () => standIn.mode === 'maintenance' && h.switches === 2, 3000);
  });

  it('leaves the instance alone while the intent is not known yet', async () => {
    standIn.mode = 'maintenance';
    let known = false;
    hook = new InstanceMaintenanceHook({ baseUrl: standIn.url, desired: () => (known ? desired : undefined), timeoutMs: 500, recheckMs: 100, initialBackoffMs: 50 });
    hook.start();
    await sleep(350);
    expect(standIn.calls, 'no call before the intent is known').to.deep.equal([]);
    known = true;
    const h = hook;
    await waitFor('serving once known', () => h.info().inSync && standIn.mode === 'serving', 3000);
  });

  it('reports a switch that does not stick, and a hanging instance, as a mismatch with the reason', async () => {
    standIn.stuck = true;
    desired = 'maintenance';
    const h = startHook();
    await waitFor('mismatch reported', () => h.info().lastError !== undefined, 3000);
    expect(h.info()).to.deep.include({ desired: 'maintenance', actual: 'serving', inSync: false });
    expect(h.info().lastError).to.match(/still reports serving/);
    standIn.stuck = false;
    standIn.hang = true;
    await waitFor('timeout reported', () => /timeout after 500ms/.test(h.info().lastError ?? ''), 4000);
    expect(h.info()).to.deep.include({ actual: 'unknown', inSync: false });
    standIn.hang = false;
    await waitFor('recovers', () => h.info().inSync && standIn.mode === 'maintenance', 5000);
  });
});

describe('health that explains itself: agent processes on etcd', function () {
  this.timeout(90_000);
  let endpoint: string;
  let namespace: string;
  let reader: ClusterReader;
  let agents: AgentProcess[] = [];
  let standIns: StandIn[] = [];
  let ownEtcd: EtcdServer | undefined;

  before(() => assertBuilt());

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const a of agents) console.error(`--- ${a.id} output ---\n${a.output().slice(-4000)}`);
    for (const a of agents) a.signal('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    agents = [];
    await Promise.all(standIns.map((s) => s.close()));
    standIns = [];
    await reader?.close();
    await ownEtcd?.stop();
    ownEtcd = undefined;
  });

  const FLAP = ['--flap-threshold', '4', '--flap-window', '60', '--flap-hold-down', '20', '--api', '--api-port', '0'];

  async function record(id: string): Promise<ServiceRecord | undefined> {
    return (await reader.read()).service(id);
  }

  /** Makes the stand-in flap slowly enough for each spell to change the status (retries 2, interval 1 s). */
  async function flapFourTimes(s: StandIn): Promise<void> {
    for (let i = 0; i < 2; i++) {
      s.healthy = false;
      await sleep(2600);
      s.healthy = true;
      await sleep(1400);
    }
  }

  it('a flapping upstream is held down and says why, survives an agent restart and an etcd restart, then is released', async () => {
    ownEtcd = await startEtcd({ own: true });
    endpoint = ownEtcd.endpoint;
    namespace = uniqueNamespace('flap');
    reader = new ClusterReader(endpoint, namespace);
    const s = await startStandIn();
    standIns.push(s);
    const spawnIt = () => spawnAgent({ endpoint, namespace, id: 'ps-1', servicePort: s.port, flags: FLAP });
    agents.push(spawnIt());
    await waitFor('ps-1 healthy', async () => (await record('ps-1'))?.status === 'healthy', 15_000);

    await flapFourTimes(s);
    // The upstream is healthy now, but the instance is held down.
    const held = await waitFor('ps-1 held down', async () => {
      const r = await record('ps-1');
      return r?.health.flapping ? r : undefined;
    }, 5000);
    expect(held.status).to.equal('unhealthy');
    expect(held.isHealthy).to.equal(false);
    expect(held.health.flapping).to.include({ threshold: 4, window: 60, holdDown: 20 });
    expect(held.health.flapping!.transitions).to.be.at.least(4);
    expect(held.health.message).to.match(/^held down as flapping: \d+ status changes within 1m; released after 20s without a change/);
    expect(held.checks).to.deep.equal({ interval: 1, timeout: 1, retries: 2, gracePeriod: 5, ttl: 3, flap: { threshold: 4, window: 60, holdDown: 20 } });
    const layout = keyLayout(namespace);
    const persisted = await reader.registry.get(layout.healthOf('ps-1'));
    expect(persisted?.lease, 'the hold is stored without a lease').to.equal('0');

    // The agent's own API: health with flapping, probe history with the raw changes, the budget.
    const apiUrl = await waitFor('api url', () => apiUrlOf(agents[0]!), 5000);
    const viaApi = await getJson<{ health: { status: string; flapping?: unknown }; history: HealthHistoryEntry[]; budget: Record<string, unknown> }>(
      `${apiUrl}/service-discovery/services/ps-1/health`,
    );
    expect(viaApi.health.status).to.equal('unhealthy');
    expect(viaApi.health.flapping).to.not.equal(undefined);
    expect(viaApi.budget).to.deep.equal({ death: 3, sick: 3, recovery: 2, gracePeriod: 5, holdDown: 20 });
    const rawChanges = viaApi.history.filter((h) => h.change).map((h) => h.change!.to);
    expect(rawChanges.slice(-4)).to.deep.equal(['unhealthy', 'healthy', 'unhealthy', 'healthy']);
    const metrics = await (await fetch(`${apiUrl}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    expect(metrics).to.match(/^proxy_stone_service_flapping\{service_id="ps-1"\} 1$/m);

    // services show --json through etcd: the record, the budget and the probe history from the agent.
    const show = await runCli(['services', 'show', 'ps-1', '--json', '--endpoints', endpoint, '--namespace', namespace]);
    expect(show.code, show.stderr).to.equal(0);
    const details = JSON.parse(show.stdout) as ServiceDetails;
    expect(details.service.health.flapping).to.not.equal(undefined);
    expect(details.budget).to.deep.equal({ death: 3, sick: 3, recovery: 2, gracePeriod: 5, holdDown: 20 });
    expect(details.health.history.length).to.be.greaterThan(5);
    const human = await runCli(['services', 'show', 'ps-1', '--endpoints', endpoint, '--namespace', namespace]);
    expect(human.stdout).to.match(/flapping: +held down: \d+ changes in 1m, stable for \d+s of 20s/);
    expect(human.stdout).to.include('sick upstream noticed within 3s (1s interval × 2 retries + 1s timeout)');
    const list = await runCli(['services', 'list', '--endpoints', endpoint, '--namespace', namespace]);
    expect(list.stdout).to.match(/ps-1 .* unhealthy \(flapping\)/);

    // Agent restart while held: the new process resumes the hold from <ns>/health/ps-1.
    agents[0]!.signal('SIGTERM');
    await agents[0]!.exited;
    agents.push(spawnIt());
    const resumed = await waitFor('ps-1 back, still held', async () => {
      const r = await record('ps-1');
      return r && r.health.lastCheck !== null ? r : undefined;
    }, 10_000);
    expect(resumed.status).to.equal('unhealthy');
    expect(resumed.health.flapping?.since).to.equal(held.health.flapping!.since);
    expect(agents[1]!.output()).to.include('resumed after restart');

    // etcd restart while held: the hold is still there afterwards.
    await ownEtcd.restart();
    await sleep(1000);
    const afterEtcd = await waitFor('ps-1 after etcd restart', async () => record('ps-1'), 10_000);
    expect(afterEtcd.health.flapping, 'still held after the etcd restart').to.not.equal(undefined);
    expect(afterEtcd.status).to.equal('unhealthy');

    // Stable for the hold-down: released, healthy, the stored hold removed.
    const released = await waitFor('ps-1 released', async () => {
      const r = await record('ps-1');
      return r?.status === 'healthy' && !r.health.flapping ? r : undefined;
    }, 30_000);
    expect(released.isHealthy).to.equal(true);
    await waitFor('stored hold removed', async () => (await reader.registry.get(layout.healthOf('ps-1'))) === null, 5000);
    expect(agents[1]!.output()).to.include('flap hold released');
  });

  it('services show says the probe history is unavailable when the agent API does not answer, and explains from the record alone', async () => {
    endpoint = (await sharedEtcd()).endpoint;
    namespace = uniqueNamespace('explain');
    reader = new ClusterReader(endpoint, namespace);
    // A record as an agent on another host writes it, advertising an API nobody answers at.
    const closed = await startStandIn();
    const deadApi = closed.url;
    await closed.close();
    const lease = await reader.registry.grantLease(30);
    const now = Date.now();
    const rec = {
      id: 'far-1', name: 'proxy-stone', host: '10.0.0.9', port: 3000, version: '1', tags: [], region: 'r', zone: 'z',
      status: 'unhealthy', role: 'follower', enabled: true, registeredAt: now, updatedAt: now, healthUrl: 'http://10.0.0.9:3000/health', metadata: {},
      apiUrl: deadApi,
      health: { status: 'unhealthy', responseTime: 1000, lastCheck: now, consecutiveFailures: 3, consecutiveSuccesses: 0, message: '3 consecutive failures (last: timeout after 1000ms)' },
      checks: { interval: 5, timeout: 1, retries: 3, gracePeriod: 30, ttl: 10, flap: { threshold: 0, window: 600, holdDown: 300 } },
    };
    await reader.registry.put(keyLayout(namespace).service('far-1'), JSON.stringify(rec), { lease: lease.id });
    try {
      const args = ['services', 'show', 'far-1', '--endpoints', endpoint, '--namespace', namespace];
      const human = await runCli(args);
      expect(human.code, human.stderr).to.equal(0);
      expect(human.stdout).to.match(/probe history unavailable \(agent API not reachable: /);
      expect(human.stdout).to.include('sick upstream noticed within 16s (5s interval × 3 retries + 1s timeout)');
      expect(human.stdout).to.include('flap damping off');
      expect(human.stdout).to.match(/message: +3 consecutive failures \(last: timeout after 1000ms\)/);
      const asJson = JSON.parse((await runCli([...args, '--json'])).stdout) as ServiceDetails;
      expect(asJson.historyUnavailable).to.match(/^probe history unavailable/);
      expect(asJson.budget).to.deep.equal({ death: 10, sick: 16, recovery: 6, gracePeriod: 30, holdDown: null });
    } finally {
      await lease.revoke();
    }
  });

  it('--instance-maintenance-hook: a disable puts the instance in maintenance, an enable brings it back; a mismatch is in the record', async () => {
    endpoint = (await sharedEtcd()).endpoint;
    namespace = uniqueNamespace('hook');
    reader = new ClusterReader(endpoint, namespace);
    const s = await startStandIn();
    standIns.push(s);
    agents.push(spawnAgent({ endpoint, namespace, id: 'ps-1', servicePort: s.port, flags: ['--instance-maintenance-hook'] }));
    const first = await waitFor('in sync, serving', async () => {
      const r = await record('ps-1');
      return r?.instanceMaintenance?.inSync ? r : undefined;
    }, 15_000);
    expect(first.instanceMaintenance).to.deep.include({ desired: 'serving', actual: 'serving' });

    s.failNext = 2;
    const cli = (verb: string, ...rest: string[]) => runCli(['services', verb, 'ps-1', '--endpoints', endpoint, '--namespace', namespace, ...rest]);
    // Alone in its zone: the capacity guard is turned off for this disable.
    expect((await cli('disable', '--reason', 'deploy 42', '--drain-timeout', '4s', '--min-healthy-per-zone', '0')).code).to.equal(0);
    // While it drains the instance keeps serving (routers already skip it); maintenance follows the drain.
    const draining = await waitFor('draining', async () => {
      const r = await record('ps-1');
      return r?.adminState === 'draining' ? r : undefined;
    }, 5000);
    // Looked at well inside the drain (a loaded machine may see the record late).
    let looked = 0;
    while (Date.now() < draining.drainUntil! - 1000) {
      expect(s.mode, 'instance mode while draining').to.equal('serving');
      looked += 1;
      await sleep(100);
    }
    expect(looked, 'the drain was seen while it lasted').to.be.greaterThan(0);
    await waitFor('instance in maintenance', () => s.mode === 'maintenance', 10_000);
    await waitFor('the record says disabled', async () => (await record('ps-1'))?.adminState === 'disabled', 5000);
    const inMaintenance = await waitFor('record in sync', async () => {
      const r = await record('ps-1');
      return r?.instanceMaintenance?.inSync && r.instanceMaintenance.desired === 'maintenance' ? r : undefined;
    }, 5000);
    expect(inMaintenance.instanceMaintenance!.actual).to.equal('maintenance');
    expect(agents[0]!.output()).to.include('instance.maintenance_mismatch');

    // A stuck instance: the record says so, until it accepts.
    s.stuck = true;
    expect((await cli('enable')).code).to.equal(0);
    const mismatch = await waitFor('mismatch in the record', async () => {
      const r = await record('ps-1');
      return r?.instanceMaintenance && !r.instanceMaintenance.inSync && r.instanceMaintenance.desired === 'serving' ? r : undefined;
    }, 10_000);
    expect(mismatch.instanceMaintenance!.lastError).to.match(/still reports maintenance/);
    const show = await cli('show');
    expect(show.stdout).to.match(/instance: +mismatch: asked serving, instance maintenance/);
    s.stuck = false;
    await waitFor('serving again, in sync', async () => {
      const r = await record('ps-1');
      return s.mode === 'serving' && r?.instanceMaintenance?.inSync ? r : undefined;
    }, 10_000);
  });
});
