/**
 * Issue 9's "done means", with real `proxy-stone-sd agent` processes on an etcd this test owns: a
 * timed disable re-enables itself at its expiry (audited), a start-disabled agent carries no traffic
 * until enabled, the last healthy instance of a zone cannot be disabled without --force, a drain
 * resumes after its agent restarts - and each survives an agent restart and an etcd restart.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import type { AdminIntent, AuditEntry, ServiceRecord } from '../../src/types.js';
import { assertBuilt, BIN, ClusterReader, spawnAgent, waitFor, type AgentProcess } from '../helpers/cluster.js';
import { startEtcd, uniqueNamespace, type EtcdServer } from '../helpers/etcd.js';
import { cliEnv, json, runCli } from '../cli/fixtures.js';

const GUARDED = { SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE: '1' };

describe('faults: draining, timed disables, start-disabled and the capacity guard across restarts', function () {
  this.timeout(120_000);
  let etcd: EtcdServer;
  let namespace: string;
  let reader: ClusterReader;
  const agents = new Map<string, { proc: AgentProcess; upstream: SampleUpstream; zone: string; flags: string[] }>();

  beforeEach(async () => {
    assertBuilt();
    etcd = await startEtcd({ own: true });
    namespace = uniqueNamespace('drainfaults');
    reader = new ClusterReader(etcd.endpoint, namespace);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') for (const [id, a] of agents) console.error(`--- ${id} ---\n${a.proc.output().slice(-3000)}`);
    for (const a of agents.values()) a.proc.signal('SIGKILL');
    await Promise.all([...agents.values()].map((a) => a.proc.exited));
    await Promise.all([...agents.values()].map((a) => a.upstream.close()));
    agents.clear();
    await reader.close();
    await etcd.stop();
  });

  async function start(id: string, zone = 'us-east-1a', flags: string[] = []): Promise<void> {
    const upstream = agents.get(id)?.upstream ?? (await startSampleUpstream());
    const proc = spawnAgent({ endpoint: etcd.endpoint, namespace, id, servicePort: upstream.port, zone, flags });
    agents.set(id, { proc, upstream, zone, flags });
  }

  /** SIGTERM and start again with the same flags. */
  async function restartAgent(id: string): Promise<void> {
    const a = agents.get(id)!;
    a.proc.signal('SIGTERM');
    await a.proc.exited;
    await start(id, a.zone, a.flags);
  }

  async function service(id: string): Promise<ServiceRecord | undefined> {
    return (await reader.read()).service(id);
  }

  async function intent(id: string): Promise<AdminIntent | undefined> {
    return (await reader.read()).intent(id);
  }

  async function audit(id: string): Promise<AuditEntry[]> {
    return json<{ entries: AuditEntry[] }>(await runCli(['audit', '--service', id, '--json', ...cli()])).entries;
  }

  const cli = () => ['--endpoints', etcd.endpoint, '--namespace', namespace];

  async function allHealthy(ids: string[], timeoutMs = 30_000): Promise<void> {
    await waitFor(`${ids.join(', ')} registered and healthy`, async () => {
      const state = await reader.read();
      return ids.every((id) => state.service(id)?.status === 'healthy') && state.leaderId() !== null;
    }, timeoutMs, 200);
  }

  async function restartEtcd(ids: string[]): Promise<void> {
    await etcd.restart();
    await allHealthy(ids);
  }

  it('a timed disable survives an agent and an etcd restart, then the leader re-enables it at expiry and audits it', async () => {
    await Promise.all(['ps-1', 'ps-2', 'ps-3'].map((id) => start(id)));
    await allHealthy(['ps-1', 'ps-2', 'ps-3']);
    const res = await runCli(['services', 'disable', 'ps-2', '--reason', 'kernel patch', '--for', '25s', '--drain-timeout', '0', '--json', ...cli()], { env: GUARDED });
    expect(res.code, res.stderr).to.equal(0);
    const expiresAt = json<{ service: ServiceRecord }>(res).service.disabledUntil!;

    await restartAgent('ps-2');
    await allHealthy(['ps-1', 'ps-2', 'ps-3']);
    expect(await service('ps-2')).to.include({ enabled: false, isHealthy: false, disabledReason: 'kernel patch' });
    await restartEtcd(['ps-1', 'ps-2', 'ps-3']);
    expect(await service('ps-2')).to.include({ enabled: false, isHealthy: false, disabledUntil: expiresAt });
    expect(Date.now()).to.be.lessThan(expiresAt); // the restarts fit in the window, or this test says nothing

    await waitFor('re-enabled in the registry by the leader', async () => (await intent('ps-2'))?.enabled === true, expiresAt - Date.now() + 10_000, 100);
    const stored = (await intent('ps-2'))!;
    expect(stored.at).to.be.at.least(expiresAt);
    expect(stored.reason).to.equal('expired (was: kernel patch)');
    expect(stored.actor).to.match(/^leader:ps-[123]$/);
    expect(await service('ps-2')).to.include({ enabled: true, isHealthy: true });
    const [entry] = await audit('ps-2');
    expect(entry).to.include({ action: 'enable', expired: true, automatic: true, actor: stored.actor });
  });

  it('a start-disabled agent carries no traffic until enabled, across agent and etcd restarts; once enabled it stays so', async () => {
    await start('ps-1');
    await start('ps-2', 'us-east-1a', ['--start-disabled']);
    await allHealthy(['ps-1', 'ps-2']);
    const check = async (enabled: boolean) => {
      const s = (await service('ps-2'))!;
      expect(s, JSON.stringify(s)).to.include({ status: 'healthy', enabled, isHealthy: enabled });
      const healthy = json<{ services: ServiceRecord[] }>(await runCli(['services', 'list', '--healthy', '--json', ...cli()])).services.map((x) => x.id);
      expect(healthy.includes('ps-2')).to.equal(enabled);
    };
    await check(false);
    expect((await audit('ps-2'))[0]).to.include({ action: 'disable', startDisabled: true, actor: 'agent:ps-2', reason: 'start-disabled' });
    await restartAgent('ps-2');
    await allHealthy(['ps-1', 'ps-2']);
    await check(false);
    await restartEtcd(['ps-1', 'ps-2']);
    await check(false);

    const enable = await runCli(['services', 'enable', 'ps-2', '--reason', 'smoke test passed', ...cli()]);
    expect(enable.code, enable.stderr).to.equal(0);
    await check(true);
    await restartAgent('ps-2');
    await allHealthy(['ps-1', 'ps-2']);
    await check(true);
    await restartEtcd(['ps-1', 'ps-2']);
    await check(true);
    // One start-disabled entry only: the restarts wrote nothing.
    expect((await audit('ps-2')).filter((e) => e.startDisabled)).to.have.length(1);
  });

  it('the last healthy instance of a zone: refused without --force before and after restarts; a forced disable, and a drain, survive them', async () => {
    await start('ps-1', 'us-east-1a');
    await start('ps-2', 'us-east-1b');
    await start('ps-3', 'us-east-1b');
    const ids = ['ps-1', 'ps-2', 'ps-3'];
    await allHealthy(ids);
    const refuse = async () => {
      const r = await runCli(['services', 'disable', 'ps-1', '--reason', 'oops', ...cli()], { env: GUARDED });
      expect(r.code, r.stderr).to.equal(5);
      expect(r.stderr).to.match(/zone us-east-1a of region us-east-1 would have 0 healthy enabled instances \(minimum 1\); use --force/);
    };
    await refuse();
    await restartAgent('ps-1');
    await allHealthy(ids);
    await refuse();
    await restartEtcd(ids);
    await refuse();
    expect(await intent('ps-1')).to.equal(undefined);

    // A drain of ps-2 (its zone keeps ps-3), its agent killed mid-drain: the restarted agent records its end.
    const drain = await runCli(['services', 'disable', 'ps-2', '--reason', 'deploy', '--drain-timeout', '8s', ...cli()], { env: GUARDED });
    expect(drain.code, drain.stderr).to.equal(0);
    expect((await service('ps-2'))!.adminState).to.equal('draining');
    const a2 = agents.get('ps-2')!;
    a2.proc.signal('SIGKILL');
    await a2.proc.exited;
    await start('ps-2', 'us-east-1b');
    await waitFor('drain recorded by the restarted agent', async () => (await intent('ps-2'))?.drainEnd === 'deadline', 20_000, 200);
    expect((await audit('ps-2'))[0]).to.include({ drained: 'deadline', actor: 'agent:ps-2' });

    // Now ps-3 is the last of us-east-1b too; --force overrides and is audited.
    const forced = await runCli(['services', 'disable', 'ps-3', '--reason', 'on purpose', '--force', '--drain-timeout', '0', ...cli()], { env: GUARDED });
    expect(forced.code, forced.stderr).to.equal(0);
    expect((await audit('ps-3'))[0]).to.include({ action: 'disable', forced: true });
    await restartAgent('ps-3');
    await allHealthy(ids);
    await restartEtcd(ids);
    for (const id of ['ps-2', 'ps-3']) expect(await service(id), id).to.include({ enabled: false, isHealthy: false, adminState: 'disabled' });
    expect(await service('ps-1')).to.include({ enabled: true, isHealthy: true });
  });

  it('events --json through etcd keeps following across an etcd restart (it used to exit 13 while etcd was down)', async () => {
    await start('ps-1');
    await allHealthy(['ps-1']);
    const events = spawn(process.execPath, [BIN, 'events', '--json', ...cli()], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    events.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    events.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | string>((r) => events.once('exit', (code, sig) => r(code ?? sig ?? -1)));
    try {
      await waitFor('the stream open', async () => {
        await runCli(['services', 'disable', 'ps-1', '--reason', 'probe', '--drain-timeout', '0', ...cli()]);
        await runCli(['services', 'enable', 'ps-1', ...cli()]);
        return out.includes('"serviceEnabled"');
      }, 10_000, 500);
      await etcd.restart();
      await allHealthy(['ps-1']);
      expect(events.exitCode, out).to.equal(null);
      const before = out.length;
      await waitFor('an event after the restart', async () => {
        await runCli(['services', 'disable', 'ps-1', '--reason', 'after the restart', '--drain-timeout', '0', ...cli()]);
        return out.slice(before).includes('after the restart');
      }, 20_000, 1000);
    } finally {
      events.kill('SIGINT');
      await exited;
    }
  });
});
