/**
 * Issue 9 through the built CLI: exit codes and output of `services disable --for/--drain-timeout/
 * --force/--min-healthy-per-zone`, both through etcd and through an agent's API, and what list,
 * show and audit say about drains, timed disables and forced disables.
 */
import { expect } from 'chai';
import type { BulkToggleResult } from '../../src/cli/service-toggle.js';
import type { AuditEntry, ServiceRecord } from '../../src/types.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { API_KEY, ensureBuilt, json, runCli, startCluster, waitFor, type TestCluster } from './fixtures.js';

/** The capacity guard as the CLI's environment sets it (the fixtures turn it off). */
const GUARDED = { SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE: '1' };

describe('CLI: draining, timed disables and the capacity guard (built binary, real etcd)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;

  before(async () => {
    ensureBuilt();
    // One instance per zone; the agents guard their API with the default minimum of 1.
    cluster = await startCluster(3, { idPrefix: 'dr', minHealthyPerZone: '1' });
  });
  after(async () => cluster?.stop());

  const show = async (id: string) => json<{ service: ServiceRecord; audit: AuditEntry[] }>(await runCli(['services', 'show', id, '--json', ...cluster.registryArgs]));

  it('refuses to disable the last healthy instance of a zone (exit 5, one line), through etcd and through an agent', async () => {
    const viaEtcd = await runCli(['services', 'disable', 'dr-1', '--reason', 'oops', ...cluster.registryArgs], { env: GUARDED });
    expect(viaEtcd.code, viaEtcd.stderr).to.equal(5);
    expect(viaEtcd.stderr).to.match(/^Error: refusing to disable dr-1: zone us-east-1a of region us-east-1 would have 0 healthy enabled instances \(minimum 1\); use --force to override/);
    expect(viaEtcd.stdout).to.equal('');
    // The flag form, and a percentage: 50% of one instance is one.
    const pct = await runCli(['services', 'disable', 'dr-1', '--reason', 'oops', '--min-healthy-per-zone', '50%', ...cluster.registryArgs]);
    expect(pct.code, pct.stderr).to.equal(5);
    const viaAgent = await runCli(['services', 'disable', 'dr-1', '--reason', 'oops', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
    expect(viaAgent.code, viaAgent.stderr).to.equal(5);
    expect(json<{ error: { code: string; message: string; exit: number } }>(viaAgent).error.message).to.match(
      /refusing to disable dr-1: zone us-east-1a of region us-east-1 would have 0 healthy enabled instances \(minimum 1\); use --force to override/,
    );
    const bad = await runCli(['services', 'disable', 'dr-1', '--min-healthy-per-zone', 'most', ...cluster.registryArgs]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/--min-healthy-per-zone: expected a whole number \(e\.g\. 1\) or a percentage 0-100/);
    // Nothing was written by any of them.
    expect((await show('dr-1')).audit).to.deep.equal([]);
  });

  it('--force disables anyway and the audit trail says forced; list and show say draining, then disabled', async () => {
    try {
      const forced = await runCli(['services', 'disable', 'dr-1', '--reason', 'on purpose', '--force', '--drain-timeout', '8s', ...cluster.registryArgs], { env: GUARDED });
      expect(forced.code, forced.stderr).to.equal(0);
      expect(forced.stdout.trim()).to.match(/^dr-1 disabled \(draining until \S+Z\)$/);
      const list = await runCli(['services', 'list', ...cluster.registryArgs]);
      expect(list.stdout).to.match(/dr-1 .* draining \ds/);
      const details = await show('dr-1');
      expect(details.service).to.include({ adminState: 'draining', enabled: false, isHealthy: false });
      expect(details.audit[0]).to.include({ action: 'disable', forced: true, reason: 'on purpose' });
      expect(details.audit[0]!.capacity).to.match(/zone us-east-1a of region us-east-1 would have 0/);
      const audit = await runCli(['audit', '--service', 'dr-1', ...cluster.registryArgs]);
      expect(audit.stdout).to.match(/disable.*│ on purpose +│ forced/);
      // No drain probe: the deadline ends the drain, recorded by dr-1's own agent.
      await waitFor('drain ended', async () => (await show('dr-1')).service.adminState === 'disabled', 15_000);
      const after = await show('dr-1');
      expect(after.audit[0]).to.include({ drained: 'deadline', actor: 'agent:dr-1' });
      const human = await runCli(['services', 'show', 'dr-1', ...cluster.registryArgs]);
      expect(human.stdout).to.match(/enabled: +no; reason: on purpose/);
    } finally {
      await runCli(['services', 'enable', 'dr-1', ...cluster.registryArgs]);
    }
  });

  it('--for: a timed disable shows its time left and the leader re-enables it at the end (audited expired)', async () => {
    const res = await runCli(['services', 'disable', 'dr-2', '--reason', 'short window', '--for', '10s', '--drain-timeout', '0', '--json', ...cluster.registryArgs]);
    expect(res.code, res.stderr).to.equal(0);
    const out = json<{ changed: boolean; service: ServiceRecord }>(res);
    expect(out.changed).to.equal(true);
    expect(out.service).to.include({ adminState: 'disabled' });
    expect(out.service.disabledUntil).to.be.a('number');
    // Long enough that a CLI start on a loaded machine still lists it before the expiry.
    const list = await runCli(['services', 'list', ...cluster.registryArgs]);
    expect(list.stdout).to.match(/dr-2 .* no \(short window, ([1-9]|10)s left\)/);
    await waitFor('re-enabled', async () => (await show('dr-2')).service.enabled === true, 20_000);
    await waitFor('expiry audited', async () => (await show('dr-2')).audit[0]?.expired === true, 5000);
    const details = await show('dr-2');
    expect(details.audit[0]).to.include({ action: 'enable', automatic: true, expired: true, reason: 'expired (was: short window)' });
    expect(details.audit[0]!.actor).to.match(/^leader:dr-/);
    const audit = await runCli(['audit', '--service', 'dr-2', ...cluster.registryArgs]);
    expect(audit.stdout).to.match(/enable.*leader:dr-\d.*│ expired \(was: short window\) +│ expired/);
  });

  it('bad durations are usage errors (exit 2) naming the flag', async () => {
    for (const [flag, value] of [['--for', 'soon'], ['--for', '0'], ['--drain-timeout', '30s1m'], ['--drain-timeout', '2d']] as const) {
      const res = await runCli(['services', 'disable', 'dr-3', flag, value, ...cluster.registryArgs]);
      expect(res.code, `${flag} ${value}: ${res.stderr}`).to.equal(2);
      expect(res.stderr).to.include(`Error: ${flag}:`);
    }
  });
});

describe('CLI: bulk disable and the capacity guard (built binary, real etcd)', function () {
  this.timeout(90_000);
  const KEPT = 'zone us-east-1a of region us-east-1 would have 0 healthy enabled instances (minimum 1)';

  describe('refusals only', () => {
    let cluster: TestCluster;
    before(async () => {
      ensureBuilt();
      // bk-1 and bk-4 share us-east-1a; bk-2 and bk-3 are alone in theirs. The agents guard with 1.
      cluster = await startCluster(4, { idPrefix: 'bk', minHealthyPerZone: '1' });
    });
    after(async () => cluster?.stop());
    afterEach(async () => {
      await runCli(['services', 'enable', '--all', '--yes', ...cluster.registryArgs]);
    });

    it('disables all but the zone\'s last healthy instance and exits 5, saying the guard kept it and how to override', async () => {
      const res = await runCli(['services', 'disable', '--all', '--zone', 'us-east-1a', '--reason', 'zone work', '--yes', ...cluster.registryArgs], { env: GUARDED });
      expect(res.code, res.stderr).to.equal(5);
      const lines = res.stdout.trim().split('\n');
      expect(lines).to.have.length(2);
      expect(lines[0]).to.match(/^bk-1 disabled \(draining until \S+Z\)$/);
      expect(lines[1]).to.equal(`bk-4 kept by the capacity guard: ${KEPT}; --force disables it anyway`);
      expect(res.stderr).to.equal('');
    });

    it('--json lists the kept instance under kept, not failed (through etcd and through an agent); --force takes it too', async () => {
      for (const target of [cluster.registryArgs, ['--api-key', API_KEY, ...cluster.agentArgs]]) {
        const res = await runCli(['services', 'disable', '--all', '--zone', 'us-east-1a', '--yes', '--json', ...target], { env: GUARDED });
        expect(res.code, res.stderr).to.equal(5);
        const out = json<BulkToggleResult>(res);
        expect(out).to.deep.include({ enabled: false, matched: 2, changed: 1, failed: [] });
        expect(out.results.map((r) => r.serviceId)).to.deep.equal(['bk-1']);
        expect(out.kept).to.deep.equal([{ serviceId: 'bk-4', by: 'capacity guard', reason: KEPT, override: '--force' }]);
        await runCli(['services', 'enable', 'bk-1', ...cluster.registryArgs]);
      }
      const forced = await runCli(['services', 'disable', '--all', '--zone', 'us-east-1a', '--force', '--yes', '--json', ...cluster.registryArgs], { env: GUARDED });
      expect(forced.code, forced.stderr).to.equal(0);
      expect(json<BulkToggleResult>(forced)).to.deep.include({ matched: 2, changed: 2, kept: [], failed: [] });
    });
  });

  describe('a real failure among the refusals', () => {
    let etcd: EtcdServer;
    let cluster: TestCluster;
    before(async function () {
      this.timeout(120_000);
      ensureBuilt();
      // etcd itself refuses a transaction with more than two compares. A disable's transaction
      // compares the intents of the healthy instances in the region: three in us-east-1 (mx-1, mx-2,
      // mx-4), so disabling mx-1 or mx-4 fails in etcd, while mx-2 and mx-3, alone in their zones,
      // are kept by the guard before any transaction. The agents' own transactions stay within two.
      etcd = await startEtcd({ flags: ['--max-txn-ops=2'] });
      cluster = await startCluster(4, { idPrefix: 'mx', minHealthyPerZone: '1', etcd });
    });
    after(async () => {
      await cluster?.stop();
      await etcd?.stop();
    });

    it('exits with the real failure\'s code, not 5, and reports both kinds apart', async () => {
      const res = await runCli(['services', 'disable', '--all', '--yes', '--json', ...cluster.registryArgs], { env: GUARDED });
      const out = json<BulkToggleResult>(res);
      expect(out.kept.map((k) => k.serviceId)).to.deep.equal(['mx-2', 'mx-3']);
      expect(out.failed.map((f) => f.serviceId)).to.deep.equal(['mx-1', 'mx-4']);
      expect(out.failed[0]!.error).to.match(/refused the request: too many operations in txn request \(etcd's --max-txn-ops\)$/);
      // What the disable of mx-1 alone exits with (a failure, 1: etcd answered, so not "unreachable"'s 4), and so the bulk.
      expect(out.failed.map((f) => f.exit)).to.deep.equal([1, 1]);
      expect(res.code, res.stderr).to.equal(1);
      const one = await runCli(['services', 'disable', 'mx-1', ...cluster.registryArgs], { env: GUARDED });
      expect(one.code, one.stderr).to.equal(1);
      expect(one.stderr).to.match(/^Error: registry \S+ refused the request: too many operations in txn request/m);

      // The people output: the kept lines on stdout, the failures as warnings on stderr.
      const human = await runCli(['services', 'disable', '--all', '--yes', ...cluster.registryArgs], { env: GUARDED });
      expect(human.code).to.equal(1);
      expect(human.stdout).to.match(/^mx-2 kept by the capacity guard: zone us-east-1b of region us-east-1 would have 0 healthy enabled instances \(minimum 1\); --force disables it anyway$/m);
      expect(human.stderr).to.match(/^Warning: mx-1: .*too many operations in txn request/m);
    });
  });
});
