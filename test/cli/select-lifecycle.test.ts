/**
 * Issue 18, parts 3 and 4, as an operator runs them: the built CLI against a real etcd and three
 * in-process agents with tags and metadata, through etcd and through an agent's API.
 */
import { expect } from 'chai';
import type { ServiceList } from '../../src/cli/cluster-contract.js';
import type { BulkToggleResult } from '../../src/cli/service-toggle.js';
import type { LeaderInfo } from '../../src/cluster/leader.js';
import { keyLayout } from '../../src/cluster/keys.js';
import type { LeaderResignResult } from '../../src/commands/leader/resign.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import type { AuditEntry, ClusterEvent, ClusterTopology } from '../../src/types.js';
import { API_KEY, ensureBuilt, json, runCli, startCluster, waitFor, type TestCluster } from './fixtures.js';

const LABELS: { tags: string[]; metadata: Record<string, string> }[] = [
  { tags: ['proxy', 'canary'], metadata: { team: 'edge', env: 'prod' } },
  { tags: ['proxy'], metadata: { team: 'edge', env: 'staging' } },
  { tags: ['proxy'], metadata: { team: 'core' } },
];

describe('selection and lifecycle commands (built binary, real etcd, in-process agents)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  const ids = (res: Awaited<ReturnType<typeof runCli>>) => json<ServiceList>(res).services.map((s) => s.id);

  before(async function () {
    this.timeout(180_000);
    ensureBuilt();
    cluster = await startCluster(3, { idPrefix: 'sel', labels: (i) => LABELS[i]! });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('services list -l / --tag select by metadata and tags, alike through etcd and an agent', async () => {
    const cases: [string[], string[]][] = [
      [['-l', 'team=edge'], ['sel-1', 'sel-2']],
      [['-l', 'team==edge,env!=staging'], ['sel-1']],
      [['--label', 'team=edge', '--label', 'env=staging'], ['sel-2']],
      [['--tag', 'canary'], ['sel-1']],
      [['--tag', 'proxy', '-l', 'team!=edge'], ['sel-3']],
      [['-l', 'env!=prod', '--region', 'us-east-1'], ['sel-2']],
      [['-l', 'team=nobody'], []],
    ];
    for (const [args, want] of cases) {
      const [viaEtcd, viaAgent] = await Promise.all([
        runCli(['services', 'list', '--json', ...args, ...cluster.registryArgs]),
        runCli(['services', 'list', '--json', ...args, ...cluster.agentArgs]),
      ]);
      expect(viaEtcd.code, viaEtcd.stderr).to.equal(0);
      expect(viaAgent.code, viaAgent.stderr).to.equal(0);
      expect(ids(viaEtcd), args.join(' ')).to.deep.equal(want);
      expect(ids(viaAgent), args.join(' ')).to.deep.equal(want);
    }
  });

  it('topology -l counts only the selection; the leader shown is the cluster\'s', async () => {
    const [viaEtcd, viaAgent] = await Promise.all([
      runCli(['topology', '--json', '-l', 'team=edge', ...cluster.registryArgs]),
      runCli(['topology', '--json', '-l', 'team=edge', ...cluster.agentArgs]),
    ]);
    const a = json<ClusterTopology>(viaEtcd);
    expect(a).to.deep.equal(json<ClusterTopology>(viaAgent));
    expect(a.totalServices).to.equal(2);
    expect(a.servicesByRegion).to.deep.equal({ 'us-east-1': 2 });
    const leader = cluster.nodes.find((n) => n.agent.isLeader())!;
    expect(a.leader?.id).to.equal(leader.id);
    const human = await runCli(['topology', '--tag', 'canary', ...cluster.registryArgs]);
    expect(human.code, human.stderr).to.equal(0);
    expect(human.stdout).to.contain('sel-1').and.not.contain('sel-2');
  });

  it('a bad selector is a usage error naming the flag (exit 2), and a 400 naming the query parameter', async () => {
    const bad = await runCli(['services', 'list', '-l', 'team', ...cluster.registryArgs]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr.trim().split('\n')).to.have.length(1);
    expect(bad.stderr).to.match(/^Error: --label: expected key=value, key==value or key!=value/);
    const tag = await runCli(['topology', '--json', '--tag', 'a,,b', ...cluster.agentArgs]);
    expect(tag.code).to.equal(2);
    expect(json<{ error: { message: string } }>(tag).error.message).to.match(/^--tag: expected one or more tags/);
    const api = cluster.nodes[0]!.api.url;
    for (const [query, name] of [['label=team', 'label'], ['tag=', 'tag'], ['label=a%3Db&label=c%3Dd', 'label']] as const) {
      const res = await fetch(`${api}/service-discovery/services?${query}`, { signal: AbortSignal.timeout(5000) });
      expect(res.status, query).to.equal(400);
      const body = (await res.json()) as { message: string };
      expect(body.message, query).to.match(new RegExp(`^querystring\\.${name}: expected|^${name}: expected`));
    }
    const ok = await fetch(`${api}/service-discovery/topology?label=${encodeURIComponent('team=core')}`, { signal: AbortSignal.timeout(5000) });
    expect(((await ok.json()) as ClusterTopology).totalServices).to.equal(1);
  });

  it('services disable|enable --all -l changes only the selection', async () => {
    const off = await runCli(['services', 'disable', '--all', '-l', 'team=core', '--reason', 'selection', '--yes', '--json', ...cluster.registryArgs]);
    expect(off.code, off.stderr).to.equal(0);
    const result = json<BulkToggleResult>(off);
    expect(result.matched).to.equal(1);
    expect(result.results.map((r) => r.serviceId)).to.deep.equal(['sel-3']);
    const none = await runCli(['services', 'disable', '--all', '--tag', 'nothing-has-this', '--yes', ...cluster.registryArgs]);
    expect(none.code).to.equal(3);
    expect(none.stderr).to.contain('no services match --tag nothing-has-this');
    const on = await runCli(['services', 'enable', '--all', '-l', 'team=core', '--yes', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
    expect(on.code, on.stderr).to.equal(0);
    expect(json<BulkToggleResult>(on).changed).to.equal(1);
  });

  it('events --since replays the agent\'s history narrowed by -l and --service, and says how far back it reaches', async () => {
    // The disable and enable of sel-3 above are in every agent's history.
    const res = await runCli(['events', '--json', '--since', '1h', '-l', 'team=core', '--for', '1.5', ...cluster.agentArgs]);
    expect(res.code, res.stderr).to.equal(0);
    const events = res.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ClusterEvent);
    expect(events.map((e) => e.type)).to.include.members(['serviceDisabled', 'serviceEnabled']);
    expect(events.every((e) => e.type !== 'leaderElected' && e.serviceId === 'sel-3')).to.equal(true);
    // The agent started well within the hour: its history does not reach back that far, and it says so.
    expect(res.stderr).to.match(/^Note: the event history reaches back to \S+ only \(the agent started then\): earlier events are not shown$/m);
    const other = await runCli(['events', '--json', '--since', '1h', '--service', 'sel-1', '--types', 'serviceDisabled', '--for', '1', ...cluster.agentArgs]);
    expect(other.stdout.trim()).to.equal('');
    const etcd = await runCli(['events', '--since', '10m', ...cluster.registryArgs]);
    expect(etcd.code).to.equal(2);
    expect(etcd.stderr).to.contain('--since: needs --agent');
  });

  it('leader shows the leader, its term and fencing revision alike both ways; leader resign hands over and is audited', async () => {
    const [viaEtcd, viaAgent] = await Promise.all([runCli(['leader', '--json', ...cluster.registryArgs]), runCli(['leader', '--json', ...cluster.agentArgs])]);
    expect(viaEtcd.code, viaEtcd.stderr).to.equal(0);
    const before = json<LeaderInfo>(viaEtcd);
    expect(json<LeaderInfo>(viaAgent)).to.deep.equal(before);
    expect(before.leaderId).to.equal(cluster.nodes.find((n) => n.agent.isLeader())!.id);
    expect(before.term).to.equal(before.fencingRevision);
    expect(before.candidates).to.have.length(3);
    const human = await runCli(['leader', ...cluster.registryArgs]);
    expect(human.stdout).to.match(new RegExp(`leader:\\s+${before.leaderId}`)).and.match(new RegExp(`fencing revision:\\s+${before.fencingRevision}`));

    const resign = await runCli(['leader', 'resign', '--reason', 'rotate', '--json', ...cluster.registryArgs]);
    expect(resign.code, resign.stderr).to.equal(0);
    const moved = json<LeaderResignResult>(resign);
    expect(moved.requested).to.deep.equal({ leaderId: before.leaderId, term: before.fencingRevision });
    expect(moved.moved).to.equal(true);
    expect(moved.leader.fencingRevision).to.not.equal(before.fencingRevision);
    const audit = json<{ entries: AuditEntry[] }>(await runCli(['audit', '--json', ...cluster.registryArgs]));
    expect(audit.entries[0]).to.include({ action: 'resign', serviceId: before.leaderId, term: before.fencingRevision, reason: 'rotate' });

    // A request for the term that is gone asks nobody (exit 1); through the agent the current one hands over.
    const stale = await runCli(['leader', 'resign', '--term', String(before.fencingRevision), ...cluster.agentArgs, '--api-key', API_KEY]);
    expect(stale.code).to.equal(1);
    expect(stale.stderr).to.contain(`not term ${before.fencingRevision}: nothing was asked`);
    const viaApi = await runCli(['leader', 'resign', '--json', ...cluster.agentArgs, '--api-key', API_KEY]);
    expect(viaApi.code, viaApi.stderr).to.equal(0);
    expect(json<LeaderResignResult>(viaApi).moved).to.equal(true);
    const noKey = await runCli(['leader', 'resign', ...cluster.agentArgs]);
    expect(noKey.code).to.equal(5);
  });

  it('services forget removes a retired id\'s intent, refuses a registered one (exit 5), and says 3 for an unknown id', async () => {
    const registry = new EtcdRegistry({ endpoints: [cluster.endpoint], callTimeoutMs: 5000 });
    const layout = keyLayout(cluster.namespace);
    try {
      for (const id of ['retired-1', 'retired-2']) {
        await registry.put(layout.adminOf(id), JSON.stringify({ enabled: false, reason: 'old', actor: 'test', at: Date.now() }));
      }
      const viaEtcd = await runCli(['services', 'forget', 'retired-1', '--reason', 'host gone', '--json', ...cluster.registryArgs]);
      expect(viaEtcd.code, viaEtcd.stderr).to.equal(0);
      expect(json(viaEtcd)).to.deep.equal({ serviceId: 'retired-1', removed: { intent: true, healthHold: false }, live: false });
      const viaAgent = await runCli(['services', 'forget', 'retired-2', ...cluster.agentArgs, '--api-key', API_KEY]);
      expect(viaAgent.code, viaAgent.stderr).to.equal(0);
      expect(viaAgent.stdout.trim()).to.equal('retired-2 forgotten: removed its operator intent');
      expect(await registry.get(layout.adminOf('retired-1'))).to.equal(null);
      expect(await registry.get(layout.adminOf('retired-2'))).to.equal(null);
      await waitFor('the agent logged the forget in the trail', async () => {
        const entries = json<{ entries: AuditEntry[] }>(await runCli(['audit', '--json', ...cluster.registryArgs])).entries;
        return entries.some((e) => e.action === 'forget' && e.serviceId === 'retired-2' && e.actor === 'ops');
      });

      for (const args of [cluster.registryArgs, [...cluster.agentArgs, '--api-key', API_KEY]]) {
        const live = await runCli(['services', 'forget', 'sel-2', ...args]);
        expect(live.code, live.stderr).to.equal(5);
        expect(live.stderr).to.match(/^Error: .*service sel-2 is registered .*use --force/);
        expect(live.stderr.trim().split('\n')).to.have.length(1);
        const unknown = await runCli(['services', 'forget', 'retired-1', ...args]);
        expect(unknown.code, unknown.stderr).to.equal(3);
      }
    } finally {
      await registry.close();
    }
  });
});
