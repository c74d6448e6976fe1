/**
 * Issue 18, part 4 in the agent core: `leader resign` moves leadership through the fenced step-down
 * and a stale request unseats nobody (2-3 in-process agents on a real etcd and on the memory
 * registry); `services forget` removes a retired id's intent and hold, refusing a registered one
 * (the same, plus the library calls on a real Redis).
 */
import { expect } from 'chai';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { listAudit, ServiceNotFoundError, setServiceEnabled } from '../../src/cluster/admin.js';
import { forgetService, LiveServiceError } from '../../src/cluster/forget.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { LeaderTermError, NoLeaderError, readLeader, requestResign } from '../../src/cluster/leader.js';
import { toApiError } from '../../src/api/errors.js';
import { describeError } from '../../src/cli/errors.js';
import { RedisRegistry } from '../../src/registry/redis.js';
import { waitFor } from '../helpers/cluster.js';
import { useTestAgents } from '../helpers/agents.js';
import { randomStorePrefix, sharedRedis } from '../helpers/redis.js';

function leaderOf(agents: ServiceAgent[]): ServiceAgent | undefined {
  const leading = agents.filter((a) => a.isLeader());
  return leading.length === 1 ? leading[0] : undefined;
}

for (const backend of ['etcd', 'memory'] as const) {
  describe(`leader resign and services forget (${backend})`, function () {
    this.timeout(30_000);
    const t = useTestAgents(backend, 'lifecycle');

    it('resign moves leadership to the next candidate; the old leader campaigns again at the back; audited', async () => {
      const agents = [await t.agent('life-1'), await t.agent('life-2'), await t.agent('life-3')];
      const layout = keyLayout(t.namespace);
      await waitFor('one leader with the leader record written', async () => {
        const info = await readLeader(t.registry, layout);
        return leaderOf(agents) !== undefined && info.term !== null && info.candidates.length === 3;
      }, 10_000);
      const before = await readLeader(t.registry, layout);
      const old = leaderOf(agents)!;
      expect(before.leaderId).to.equal(old.id);
      expect(before.term).to.equal(before.fencingRevision);

      const asked = await requestResign(t.registry, layout, { actor: 'test', reason: 'rotate' });
      expect(asked).to.include({ leaderId: old.id, term: before.fencingRevision });
      await waitFor('another agent leads, in a new term', async () => {
        const now = await readLeader(t.registry, layout);
        const leader = leaderOf(agents);
        return leader !== undefined && leader !== old && now.leaderId === leader.id && now.term !== null && now.term !== before.term;
      }, 10_000);
      const after = await readLeader(t.registry, layout);
      // The next in line took over; the old leader is a candidate again, last.
      expect(after.leaderId).to.equal(before.candidates[1]!.serviceId);
      expect(after.candidates.map((c) => c.serviceId)).to.have.length(3);
      expect(after.candidates.at(-1)!.serviceId).to.equal(old.id);
      expect(after.resignRequest).to.equal(null);
      expect(await t.registry.get(layout.resign)).to.equal(null);
      const [entry] = await listAudit(t.registry, layout, { limit: 1 });
      expect(entry).to.include({ action: 'resign', serviceId: old.id, term: before.fencingRevision, actor: 'test', reason: 'rotate', changed: true });
    });

    it('with nobody campaigning there is no leader to ask: exit 3 in the CLI, 404 no_leader in the API', async () => {
      const layout = keyLayout(t.namespace);
      expect(await readLeader(t.registry, layout)).to.deep.equal({ leaderId: null, fencingRevision: null, term: null, since: null, candidates: [], resignRequest: null });
      let err: unknown;
      await requestResign(t.registry, layout).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(NoLeaderError);
      expect(describeError(err).exit).to.equal(3);
      expect(toApiError(err)).to.include({ statusCode: 404, code: 'no_leader' });
      expect(await listAudit(t.registry, layout)).to.deep.equal([]);
    });

    it('a request for an older term unseats nobody: refused when asked, ignored when written anyway', async () => {
      const agents = [await t.agent('stale-1'), await t.agent('stale-2')];
      const layout = keyLayout(t.namespace);
      await waitFor('a leader', () => leaderOf(agents) !== undefined, 10_000);
      const first = await readLeader(t.registry, layout);
      await requestResign(t.registry, layout, { actor: 'test' });
      await waitFor('leadership moved', async () => {
        const now = await readLeader(t.registry, layout);
        return now.fencingRevision !== first.fencingRevision && leaderOf(agents)?.id === now.leaderId;
      }, 10_000);
      const second = await readLeader(t.registry, layout);
      const trail = (await listAudit(t.registry, layout)).length;

      // Asked for the old term: nothing is written.
      let refused: unknown;
      await requestResign(t.registry, layout, { term: first.fencingRevision!, actor: 'late' }).catch((err: unknown) => (refused = err));
      expect(refused).to.be.instanceOf(LeaderTermError);
      expect((refused as Error).message).to.contain(`term ${second.fencingRevision}`);
      expect(await t.registry.get(layout.resign)).to.equal(null);
      expect(await listAudit(t.registry, layout)).to.have.length(trail);

      // Written by hand for the old term, under the new leader's lease: the new leader stays.
      const candidate = (await t.registry.list(layout.election)).kvs.find((kv) => kv.createRevision === second.fencingRevision)!;
      await t.registry.put(layout.resign, JSON.stringify({ term: first.fencingRevision, actor: 'forged', at: Date.now() }), { lease: candidate.lease });
      const leader = leaderOf(agents)!;
      await waitFor('every agent saw the stale request', () => agents.every((a) => a.view.resignRequest()?.term === first.fencingRevision), 10_000);
      // Acting on it would be immediate (one transaction); give it a few renew intervals anyway.
      await new Promise((r) => setTimeout(r, 1000));
      expect(leaderOf(agents)).to.equal(leader);
      expect((await readLeader(t.registry, layout)).fencingRevision).to.equal(second.fencingRevision);
    });

    it('forget removes a retired id\'s intent and hold, refuses a registered id without force, and is audited', async () => {
      const a = await t.agent('forget-1');
      const layout = keyLayout(t.namespace);
      await setServiceEnabled(t.registry, layout, a.id, false, { actor: 'test', reason: 'retire', drainTimeout: 0, force: true });
      let refused: unknown;
      await forgetService(t.registry, layout, a.id, { actor: 'test' }).catch((err: unknown) => (refused = err));
      expect(refused).to.be.instanceOf(LiveServiceError);
      expect(await t.registry.get(layout.adminOf(a.id))).to.not.equal(null);

      await a.stop();
      t.remove(a);
      await t.registry.put(layout.healthOf(a.id), JSON.stringify({ serviceId: a.id, flapping: {} }));
      const result = await forgetService(t.registry, layout, a.id, { actor: 'test', reason: 'host gone' });
      expect(result).to.deep.include({ serviceId: a.id, removed: { intent: true, healthHold: true }, live: false });
      expect(await t.registry.get(layout.adminOf(a.id))).to.equal(null);
      expect(await t.registry.get(layout.healthOf(a.id))).to.equal(null);
      const [entry] = await listAudit(t.registry, layout, { limit: 1 });
      expect(entry).to.include({ action: 'forget', serviceId: a.id, actor: 'test', reason: 'host gone', changed: true });
      expect(entry!.forced).to.equal(undefined);

      let again: unknown;
      await forgetService(t.registry, layout, a.id).catch((err: unknown) => (again = err));
      expect(again).to.be.instanceOf(ServiceNotFoundError);
    });

    it('forget --force on a registered id removes its intent (it counts as enabled again), audited as forced', async () => {
      const a = await t.agent('forced-1');
      const layout = keyLayout(t.namespace);
      await setServiceEnabled(t.registry, layout, a.id, false, { actor: 'test', drainTimeout: 0, force: true });
      await waitFor('disabled in the view', () => a.view.service(a.id)?.enabled === false, 10_000);
      const result = await forgetService(t.registry, layout, a.id, { actor: 'test', force: true });
      expect(result).to.deep.include({ live: true, removed: { intent: true, healthHold: false } });
      await waitFor('enabled in the view', () => a.view.service(a.id)?.enabled === true, 10_000);
      const [entry] = await listAudit(t.registry, layout, { limit: 1 });
      expect(entry).to.include({ action: 'forget', forced: true });
    });
  });
}

describe('leader resign and services forget on Redis (library calls)', function () {
  this.timeout(20_000);

  it('the request is fenced by the term, stored under the leader\'s lease; forget refuses a live record', async () => {
    const server = await sharedRedis();
    const registry = new RedisRegistry({ endpoint: server.endpoint, callTimeoutMs: 3000, storePrefix: randomStorePrefix() });
    try {
      const layout = keyLayout('redis-life');
      const lease = await registry.grantLease(10);
      const put = await registry.txn([{ key: layout.electionOf(lease.id), target: 'createRevision', equals: 0 }], [
        { type: 'put', key: layout.electionOf(lease.id), value: 'r-1', lease: lease.id },
        { type: 'put', key: layout.service('r-1'), value: '{}', lease: lease.id },
      ]);
      const info = await readLeader(registry, layout);
      expect(info).to.deep.include({ leaderId: 'r-1', fencingRevision: put.revision, term: null });
      const asked = await requestResign(registry, layout, { actor: 'test' });
      expect(asked.term).to.equal(put.revision);
      expect((await registry.get(layout.resign))!.lease).to.equal(lease.id);
      expect((await readLeader(registry, layout)).resignRequest).to.include({ term: put.revision, actor: 'test' });
      let stale: unknown;
      await requestResign(registry, layout, { term: put.revision + 100 }).catch((err: unknown) => (stale = err));
      expect(stale).to.be.instanceOf(LeaderTermError);

      await registry.put(layout.adminOf('r-1'), JSON.stringify({ enabled: false, actor: 'test', at: Date.now() }));
      let live: unknown;
      await forgetService(registry, layout, 'r-1').catch((err: unknown) => (live = err));
      expect(live).to.be.instanceOf(LiveServiceError);
      // The lease goes: the record, the election key and the request with it; the intent stays until forgotten.
      await lease.revoke();
      expect(await registry.get(layout.resign)).to.equal(null);
      expect((await forgetService(registry, layout, 'r-1', { actor: 'test' })).removed).to.deep.equal({ intent: true, healthHold: false });
      expect((await listAudit(registry, layout, { limit: 1 }))[0]).to.include({ action: 'forget', serviceId: 'r-1' });
    } finally {
      await registry.close();
    }
  });
});
