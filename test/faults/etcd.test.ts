import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { BIN, waitFor } from '../helpers/cluster.js';
import { FaultCluster, logLines, sleep, TTL_MS, stopClusterAfterEach } from './harness.js';

interface Health {
  status: string;
  registered: boolean;
  view: { stale: boolean; lastUpdate: number };
}
interface Status {
  status: string;
  isLeader: boolean;
  currentService: { enabled: boolean };
  lease: { id: string | null };
}
interface Services {
  services: { id: string; enabled: boolean; isHealthy: boolean; status: string }[];
  total: number;
}

/**
 * etcd itself failing under three real agent processes: killed and restarted on the same data dir,
 * down for longer than twice the lease TTL, and operator intent across agent and etcd restarts.
 */
describe('faults: etcd (3 agent processes, ttl 3 s, renew 1 s)', function () {
  this.timeout(90_000);
  const track = stopClusterAfterEach();

  /** Every agent's live lease, as its record in etcd names it, equals the lease it reports. */
  async function everyAgentRegistered(c: FaultCluster): Promise<boolean> {
    const state = await c.read();
    const { kvs } = await c.reader.list(c.layout.services);
    for (const id of c.agents.keys()) {
      const status = await c.api<Status>(id, '/service-discovery/status');
      const record = kvs.find((kv) => kv.key === c.layout.service(id));
      if (!status || status.body.status !== 'registered' || !record || record.lease !== status.body.lease.id) return false;
      if (state.service(id)?.status !== 'healthy') return false;
    }
    return true;
  }

  /** Why the cluster is not yet all current and healthy, from each agent's own answers ('' when it is). */
  let notHealthy = '';
  async function allHealthy(c: FaultCluster, expected: number): Promise<boolean> {
    for (const id of c.agents.keys()) {
      const health = await c.api<Health>(id, '/health');
      if (health?.status !== 200 || health.body.view.stale) {
        notHealthy = `${id} /health: ${health ? `${health.status} ${JSON.stringify(health.body)}` : 'no answer'}`;
        return false;
      }
      const services = await c.api<Services>(id, '/service-discovery/services');
      if (services?.body.total !== expected) {
        notHealthy = `${id} lists ${services ? services.body.services.map((s) => `${s.id}:${s.status}`).join(',') : 'nothing'}`;
        return false;
      }
    }
    notHealthy = '';
    return true;
  }

  /** Like waitFor, with the last reason in the error. */
  async function untilHealthy(c: FaultCluster, expected: number, timeoutMs: number, what: string): Promise<void> {
    try {
      await waitFor(what, () => allHealthy(c, expected), timeoutMs, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${notHealthy}`);
    }
  }

  it('etcd killed and restarted on the same data dir: every agent registered again, one leader, one lease per agent', async () => {
    const c = track(await FaultCluster.start());
    await c.settled();
    c.server.kill('SIGKILL');
    await sleep(1000);
    const restartedAt = Date.now();
    await c.server.restart();
    await waitFor('every agent registered on a live lease', () => everyAgentRegistered(c), 15_000, 100);
    await untilHealthy(c, 3, 10_000, 'every agent current and healthy');
    const leader = await c.settled();
    expect(await c.leaseCount(), 'live leases').to.equal(3);
    console.log(`      recovered ${Date.now() - restartedAt} ms after etcd was back; leader ${leader}`);
    c.assertInvariants();
  });

  it('etcd down for longer than 2 x TTL: agents stay up and serve their last view marked stale, then recover', async () => {
    const c = track(await FaultCluster.start());
    await c.settled();
    await untilHealthy(c, 3, 10_000, 'all healthy');
    c.server.kill('SIGKILL');
    const downAt = Date.now();

    // Within a few seconds every agent says its view is stale, yet keeps answering from it.
    await waitFor(
      'every agent reports stale (503)',
      async () => {
        for (const id of c.agents.keys()) {
          const health = await c.api<Health>(id, '/health');
          if (health?.status !== 503 || !health.body.view.stale) return false;
        }
        return true;
      },
      TTL_MS + 3000,
      100,
    );
    await sleep(Math.max(0, 2 * TTL_MS + 1000 - (Date.now() - downAt)));
    for (const id of c.agents.keys()) {
      expect(c.get(id).proc.proc.exitCode, `${id} still running`).to.equal(null);
      const services = await c.api<Services>(id, '/service-discovery/services');
      expect(services?.status, `${id} still serves its view`).to.equal(200);
      expect(services!.body.services.map((s) => s.id)).to.deep.equal(['ps-1', 'ps-2', 'ps-3']);
      const health = await c.api<Health>(id, '/health');
      expect(health?.status).to.equal(503);
      expect(health!.body.view.stale).to.equal(true);
      // Nobody can prove its lease alive, so nobody leads.
      const status = await c.api<Status>(id, '/service-discovery/status');
      expect(status!.body.isLeader, `${id} leads without etcd`).to.equal(false);
    }
    const downMs = Date.now() - downAt;

    await c.server.restart();
    const backAt = Date.now();
    await untilHealthy(c, 3, 15_000, 'every agent current again');
    await waitFor('every agent registered on a live lease', () => everyAgentRegistered(c), 10_000, 100);
    await c.settled();
    expect(await c.leaseCount()).to.equal(3);
    console.log(`      etcd down ${downMs} ms (2 x TTL = ${2 * TTL_MS}); recovered ${Date.now() - backAt} ms after it was back`);
    // The outage is in each log once (and once per 30 s), not once per renewal; its end too.
    await waitFor('every agent logged the keep-alive recovery', () => [...c.agents.values()].every((a) => logLines(a.proc).some((l) => l.event === 'lease.keepalive_recovered')), 10_000, 100);
    for (const [id, a] of c.agents) {
      const failed = logLines(a.proc).filter((l) => l.event === 'lease.keepalive_failed' && (l.time ?? 0) >= downAt);
      expect(failed.length, `${id}: keep-alive failures logged`).to.be.within(1, 1 + Math.ceil(downMs / 30_000));
    }
    c.assertInvariants();
  });

  it('operator intent (disabled) survives an agent restart and an etcd restart', async () => {
    const c = track(await FaultCluster.start());
    await c.settled();
    const cli = (...args: string[]) => {
      const res = spawnSync(process.execPath, [BIN, ...args, '--endpoints', c.server.endpoint, '--namespace', c.namespace], { encoding: 'utf8', timeout: 20_000 });
      expect(res.status, `${args.join(' ')}: ${res.stderr}`).to.equal(0);
    };
    const disabledEverywhere = async (expected: boolean) => {
      for (const id of c.agents.keys()) {
        const list = await c.api<Services>(id, '/service-discovery/services');
        const ps2 = list?.body.services.find((s) => s.id === 'ps-2');
        if (!ps2 || ps2.enabled !== !expected || ps2.isHealthy === expected) return false;
      }
      // ps-2's own record in etcd carries the intent too, for etcdctl readers.
      const stored = await c.reader.get(c.layout.service('ps-2'));
      return stored !== null && (JSON.parse(stored.value) as { enabled: boolean }).enabled === !expected;
    };

    cli('services', 'disable', 'ps-2', '--reason', 'fault suite');
    await waitFor('ps-2 disabled everywhere', () => disabledEverywhere(true), 5000, 50);

    await c.signal('ps-2', 'SIGTERM');
    await c.spawn('ps-2');
    await waitFor('ps-2 back and healthy', async () => (await c.read()).service('ps-2')?.status === 'healthy', 15_000, 50);
    await waitFor('ps-2 still disabled after its restart', () => disabledEverywhere(true), 5000, 50);
    expect((await c.api<Status>('ps-2', '/service-discovery/status'))!.body.currentService.enabled).to.equal(false);

    c.server.kill('SIGKILL');
    await sleep(500);
    await c.server.restart();
    await untilHealthy(c, 3, 15_000, 'every agent current again');
    await waitFor('ps-2 still disabled after the etcd restart', () => disabledEverywhere(true), 5000, 50);

    cli('services', 'enable', 'ps-2');
    await waitFor('ps-2 enabled everywhere', () => disabledEverywhere(false), 5000, 50);
    await c.settled();
    c.assertInvariants();
  });
});
