import { expect } from 'chai';
import type { HealthHistoryEntry } from '../../src/agent/health-state.js';
import { waitFor } from '../helpers/cluster.js';
import { FaultCluster, sleep, SseClient, stopClusterAfterEach } from './harness.js';

interface Services {
  services: { id: string; enabled: boolean; status: string }[];
  total: number;
}

/** spawnAgent's health-check timings. */
const INTERVAL_MS = 1000;
const RETRIES = 2;

describe('faults: bad data and a flapping upstream', function () {
  this.timeout(90_000);
  const track = stopClusterAfterEach();

  it('garbage and foreign keys under the namespace: skipped with a warning, nobody crashes, elections still work', async () => {
    const c = track(await FaultCluster.start());
    await c.settled();
    const ns = c.namespace;
    const r = c.reader;
    const lease = await r.grantLease(60);
    // What another version, a typo'd etcdctl or a broken writer can leave under the namespace.
    const garbage: [string, string, { lease?: string }?][] = [
      [`${ns}/services/garbage`, '{not json'],
      [`${ns}/services/wrong-id`, JSON.stringify({ id: 'someone-else', name: 'x', host: 'h', port: 1, status: 'healthy' })],
      [`${ns}/services/bad-port`, JSON.stringify({ id: 'bad-port', name: 'x', host: 'h', port: 'eighty', status: 'healthy' })],
      [`${ns}/services/huge`, 'x'.repeat(256 * 1024)],
      [`${ns}/services/binary`, '\u0000\u00ff\ufffd'],
      [`${ns}/services/nested/deeper`, '{}'],
      [`${ns}/admin/ps-2`, 'not an intent'],
      [`${ns}/admin/nobody`, JSON.stringify({ enabled: 'no' })],
      // A campaign without a lease would never go away; one with an empty value names nobody.
      [`${ns}/election/dead`, 'ghost'],
      [`${ns}/election/beef`, '', { lease: lease.id }],
      [`${ns}/audit/junk`, '[]'],
      // A flap hold that is not one (no `flapping`), and one stored under another id.
      [`${ns}/health/ps-2`, JSON.stringify({ serviceId: 'ps-2' })],
      [`${ns}/health/ps-3`, JSON.stringify({ serviceId: 'ps-1', flapping: { since: 1, until: 2, lastChange: 1, transitions: 4, window: 60, holdDown: 30, threshold: 4 } })],
      [`${ns}/something-else`, 'foreign'],
      [`${ns}/`, 'the root itself'],
    ];
    for (const [key, value, options] of garbage) await r.put(key, value, options);

    // Every agent warns about the bad keys and keeps serving the three good entries.
    await waitFor(
      'warnings from every agent',
      () => [...c.agents.keys()].every((id) => c.logs(id).filter((l) => l.event === 'registry.skipped').length >= 10),
      5000,
      50,
    );
    for (const id of c.agents.keys()) {
      const list = await c.api<Services>(id, '/service-discovery/services');
      expect(list?.body.services.map((s) => s.id), `${id}'s list`).to.deep.equal(['ps-1', 'ps-2', 'ps-3']);
      expect(list!.body.services.find((s) => s.id === 'ps-2')!.enabled).to.equal(true);
    }

    // Elections still work with the junk present: the leader goes, another takes over; a new agent
    // lists the junk on start and joins.
    const leader = await c.settled();
    await c.signal(leader, 'SIGTERM');
    await c.settled([...c.agents.keys()]);
    await c.spawn(leader);
    await c.settled(['ps-1', 'ps-2', 'ps-3']);
    expect(c.logs(leader).filter((l) => l.event === 'registry.skipped').length).to.be.at.least(10);
    await sleep(500);
    for (const a of c.agents.values()) expect(a.proc.proc.exitCode, `${a.id} running`).to.equal(null);
    expect(c.retired.map((a) => a.proc.proc.exitCode)).to.deep.equal([0]);
    await lease.revoke();
    c.assertInvariants();
  });

  it('a flapping upstream: status changes no faster than the retries rule allows', async () => {
    const c = track(await FaultCluster.start({ agents: 2, upstream: { flapMs: 1500 } }));
    await c.settled();
    await waitFor('both healthy', async () => (await c.read()).services().every((s) => s.status === 'healthy'), 10_000, 100);
    const sse = await SseClient.connect(c.get('ps-2').apiUrl);
    try {
      const flapAt = Date.now();
      const upstream = c.get('ps-1').upstream;
      // Faster than the rule: 1.5 s up, 1.5 s down against 1 s probes; depending on how the phases
      // line up this gives spells of one or two failures, so unhealthy spells may or may not occur.
      upstream.setMode('flapping');
      await sleep(8000);
      // Then slow enough that every down spell spans at least two probes: unhealthy spells for sure.
      for (let i = 0; i < 2; i++) {
        upstream.setMode('down');
        await sleep(2600);
        upstream.setMode('up');
        await sleep(1600);
      }
      await waitFor('ps-1 healthy again', async () => (await c.read()).service('ps-1')?.status === 'healthy', 10_000, 50);
      await sleep(300);

      // The probes themselves, from ps-1's own history: every change obeys the rule exactly.
      const history = (await c.api<{ history: HealthHistoryEntry[] }>('ps-1', '/service-discovery/services/ps-1/health'))!.body.history.filter(
        (h) => h.at >= flapAt,
      );
      expect(history.length).to.be.at.least(10);
      let failures = 0;
      const changes: { at: number; to: string }[] = [];
      for (const h of history) {
        failures = h.ok ? 0 : failures + 1;
        if (!h.change) continue;
        changes.push({ at: h.at, to: h.change.to });
        if (h.change.to === 'unhealthy') expect(failures, `unhealthy after ${failures} failures`).to.be.at.least(RETRIES);
        if (h.change.to === 'healthy') expect(h.ok).to.equal(true);
      }
      for (let i = 1; i < history.length; i++) expect(history[i]!.at - history[i - 1]!.at).to.be.at.least(INTERVAL_MS - 50);
      const unhealthyChanges = changes.filter((x) => x.to === 'unhealthy').length;
      expect(unhealthyChanges, 'the flapping produced unhealthy spells').to.be.at.least(1);

      // What the cluster saw, through ps-2's event stream: one event per change, and from healthy to
      // unhealthy never faster than `retries` probes.
      const seen = sse.events.filter((e) => e.type === 'serviceHealthChanged' && e.serviceId === 'ps-1' && e.receivedAt >= flapAt);
      expect(seen.map((e) => e.data.status)).to.deep.equal(changes.map((x) => x.to));
      for (let i = 1; i < seen.length; i++) {
        const gap = Number(seen[i]!.data.timestamp) - Number(seen[i - 1]!.data.timestamp);
        const minimum = seen[i]!.data.status === 'unhealthy' ? RETRIES * INTERVAL_MS : INTERVAL_MS;
        expect(gap, `${seen[i - 1]!.data.status} -> ${seen[i]!.data.status} after ${gap} ms`).to.be.at.least(minimum - 400);
      }
      console.log(`      ${history.length} probes in ${Math.round((Date.now() - flapAt) / 1000)} s, ${changes.length} status changes (${unhealthyChanges} to unhealthy)`);
    } finally {
      await sse.close();
    }
    c.assertInvariants();
  });
});
