/**
 * Measures issue 2's "done means" on this machine with real `proxy-stone-sd agent` processes against a
 * real etcd (interval 1, timeout 1, retries 2, grace 5, TTL 3, renew 1): time until all three are
 * healthy, crash failover after kill -9 of the leader, unhealthy detection, and SIGTERM removal.
 * Run after `npm run build`: `npx tsx bench/cluster-timings.ts [rounds]`.
 */
import { startSampleUpstream } from '../src/demo/demo.js';
import { startEtcd, uniqueNamespace } from '../test/helpers/etcd.js';
import { assertBuilt, ClusterReader, spawnAgent, waitFor } from '../test/helpers/cluster.js';

const rounds = Number(process.argv[2] ?? 5);
assertBuilt();
const etcd = await startEtcd();
const results: Record<string, number[]> = { allHealthy: [], crashFailover: [], crashEntryGone: [], unhealthyDetect: [], sigtermGone: [], sigtermHandover: [] };

try {
  for (let round = 0; round < rounds; round++) {
    const namespace = uniqueNamespace('bench');
    const reader = new ClusterReader(etcd.endpoint, namespace);
    const upstreams = await Promise.all([0, 1, 2].map(() => startSampleUpstream()));
    const t0 = Date.now();
    const agents = upstreams.map((u, i) => spawnAgent({ endpoint: etcd.endpoint, namespace, id: `ps-${i + 1}`, servicePort: u.port }));
    try {
      const ready = async () => {
        const s = await reader.read();
        return s.services().length === 3 && s.services().every((x) => x.status === 'healthy') && s.electionCandidates().length === 3 ? s : undefined;
      };
      let state = await waitFor('all healthy', ready, 20_000, 10);
      results.allHealthy!.push(Date.now() - t0);

      // Unhealthy detection: upstream down -> record unhealthy.
      const victim = state.services().find((s) => s.role !== 'leader')!.id;
      const idx = Number(victim.split('-')[1]) - 1;
      const downAt = Date.now();
      upstreams[idx]!.setMode('down');
      await waitFor('unhealthy', async () => (await reader.read()).service(victim)?.status === 'unhealthy', 10_000, 10);
      results.unhealthyDetect!.push(Date.now() - downAt);
      upstreams[idx]!.setMode('up');
      state = await waitFor('all healthy again', ready, 10_000, 10);

      // Crash failover.
      const leaderId = state.leaderId()!;
      const leader = agents.find((a) => a.id === leaderId)!;
      const killAt = Date.now();
      leader.signal('SIGKILL');
      await waitFor('new leader', async () => { const id = (await reader.read()).leaderId(); return id && id !== leaderId; }, 10_000, 5);
      results.crashFailover!.push(Date.now() - killAt);
      await waitFor('entry gone', async () => (await reader.read()).service(leaderId) === undefined, 10_000, 5);
      results.crashEntryGone!.push(Date.now() - killAt);

      // Graceful stop of the new leader.
      const s2 = await reader.read();
      const l2 = s2.leaderId()!;
      const termAt = Date.now();
      agents.find((a) => a.id === l2)!.signal('SIGTERM');
      const gone = waitFor('entry gone', async () => (await reader.read()).service(l2) === undefined, 5000, 2).then(() => Date.now() - termAt);
      const handover = waitFor('handover', async () => { const id = (await reader.read()).leaderId(); return id && id !== l2; }, 5000, 2).then(() => Date.now() - termAt);
      results.sigtermGone!.push(await gone);
      results.sigtermHandover!.push(await handover);
    } finally {
      for (const a of agents) a.signal('SIGKILL');
      await Promise.all(agents.map((a) => a.exited));
      await Promise.all(upstreams.map((u) => u.close()));
      await reader.close();
    }
    process.stderr.write(`round ${round + 1}/${rounds} done\n`);
  }
} finally {
  await etcd.stop();
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const bounds: Record<string, string> = {
  allHealthy: 'within seconds (includes process start)',
  crashFailover: 'TTL + 1.5 s = 4500 ms',
  crashEntryGone: 'TTL + 1.5 s = 4500 ms',
  unhealthyDetect: 'interval x retries + timeout + 1 s = 4000 ms',
  sigtermGone: '< 1000 ms',
  sigtermHandover: 'well under 1000 ms',
};
console.log(`\n${rounds} rounds, etcd ${etcd.endpoint}, ${new Date().toISOString()}\n`);
console.log('| measure | p50 ms | max ms | bound |\n| --- | --- | --- | --- |');
for (const [name, xs] of Object.entries(results)) {
  console.log(`| ${name} | ${pct(xs, 50)} | ${Math.max(...xs)} | ${bounds[name]} |`);
}
