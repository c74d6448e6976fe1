/**
 * Join and leave propagation: the benchmark registers and deregisters a service exactly as an agent
 * does (lease grant, then one transaction putting the record and the election key; leave = lease
 * revoke) and times its arrival
 *
 * - in each of three real agent processes' views (the `timestamp` the agent stamps on the event when
 *   its view applies the change; 1 ms resolution), and
 * - at an SSE client of each agent (receipt of the `data:` line),
 *
 * measured from the moment the write is issued. A bare etcd watch in the benchmark process gives the
 * floor (etcd's own put -> watch latency on this machine).
 */
import { keyLayout, type KeyLayout } from '../src/cluster/keys.js';
import { EtcdRegistry } from '../src/registry/etcd.js';
import type { Registry, WatchHandle } from '../src/registry/types.js';
import { FaultCluster, SseClient, type ReceivedEvent } from '../test/faults/harness.js';
import { waitFor } from '../test/helpers/cluster.js';
import { now, p50p99, percentile, sleep, type Row } from './lib.js';
import { sampleRecord } from '../test/helpers/records.js';

export interface PropagationOptions {
  cycles: number;
  log: (line: string) => void;
}

function record(id: string): string {
  return JSON.stringify(sampleRecord(id, { tags: ['bench'], registeredAt: Date.now(), updatedAt: Date.now() }));
}

/**
 * `cycles` times: a service joins exactly as an agent does (lease grant, then one transaction with the
 * record and the election key) and leaves by revoking its lease. Each phase waits until every SSE
 * client got its event, then hands `onPhase` the moment the write was issued and what each client got.
 */
export async function joinLeaveCycles(
  writer: Registry,
  layout: KeyLayout,
  clients: readonly SseClient[],
  cycles: number,
  onPhase: (phase: 'join' | 'leave', key: string, t0: number, received: ReceivedEvent[]) => void,
): Promise<void> {
  for (let i = 0; i < cycles; i++) {
    const id = `bench-${i}`;
    const key = layout.service(id);
    const lease = await writer.grantLease(30);
    for (const phase of ['join', 'leave'] as const) {
      const type = phase === 'join' ? 'serviceJoined' : 'serviceLeft';
      const t0 = now();
      if (phase === 'join') {
        const election = layout.electionOf(lease.id);
        await writer.txn(
          [{ key: election, target: 'createRevision', equals: 0 }],
          [
            { type: 'put', key, value: record(id), lease: lease.id },
            { type: 'put', key: election, value: id, lease: lease.id },
          ],
        );
      } else {
        await lease.revoke();
      }
      const received = await waitFor(
        `${type} ${id} at every client`,
        () => {
          const got = clients.map((c) => c.events.find((e) => e.type === type && e.serviceId === id));
          return got.every((e) => e !== undefined) ? (got as ReceivedEvent[]) : undefined;
        },
        5000,
        1,
      );
      onPhase(phase, key, t0, received);
      await sleep(10);
    }
  }
}

export async function propagationBenchmarks(options: PropagationOptions): Promise<Row[]> {
  options.log(`join/leave propagation: ${options.cycles} cycles, 3 agents, 3 SSE clients`);
  const cluster = await FaultCluster.start({ agents: 3, checker: false });
  const writer = new EtcdRegistry({ endpoints: [cluster.server.endpoint], callTimeoutMs: 5000 });
  const layout = keyLayout(cluster.namespace);
  const clients: SseClient[] = [];
  let watch: WatchHandle | undefined;
  const peer = { join: [] as number[], leave: [] as number[] };
  const sse = { join: [] as number[], leave: [] as number[] };
  const floor = { join: [] as number[], leave: [] as number[] };
  try {
    await cluster.settled();
    await waitFor('all healthy', async () => (await cluster.read()).services().every((s) => s.status === 'healthy'), 20_000, 50);
    await sleep(1500);
    for (const agent of cluster.agents.values()) clients.push(await SseClient.connect(agent.apiUrl));
    const { revision } = await writer.list(layout.root);
    const watched = new Map<string, number>();
    watch = writer.watchPrefix(layout.services, revision + 1, {
      onEvents: (events) => {
        const at = now();
        for (const e of events) watched.set(`${e.type}:${e.type === 'put' ? e.kv.key : e.key}`, at);
      },
      onCompacted: () => undefined,
    });

    await joinLeaveCycles(writer, layout, clients, options.cycles, (phase, key, t0, received) => {
      for (const e of received) {
        sse[phase].push(e.receivedAt - t0);
        peer[phase].push(Math.max(0, Number(e.data.timestamp) - t0));
      }
      const w = watched.get(`${phase === 'join' ? 'put' : 'delete'}:${key}`);
      if (w !== undefined) floor[phase].push(w - t0);
    });
  } finally {
    await watch?.cancel();
    for (const c of clients) await c.close();
    await writer.close();
    await cluster.stop();
  }
  const all = (x: { join: number[]; leave: number[] }) => [...x.join, ...x.leave];
  const goal = 20;
  return [
    {
      section: 'propagation',
      measure: 'join -> peers\' views (3 agent processes)',
      value: p50p99(peer.join),
      goal: 'p99 <= 20 ms',
      ratio: percentile(peer.join, 99) / goal,
      n: peer.join.length,
      note: 'agent-side event timestamp, 1 ms resolution',
    },
    {
      section: 'propagation',
      measure: 'leave -> peers\' views',
      value: p50p99(peer.leave),
      goal: 'p99 <= 20 ms',
      ratio: percentile(peer.leave, 99) / goal,
      n: peer.leave.length,
    },
    {
      section: 'propagation',
      measure: 'join -> SSE clients (one per agent)',
      value: p50p99(sse.join),
      goal: 'p99 <= 20 ms',
      ratio: percentile(sse.join, 99) / goal,
      n: sse.join.length,
    },
    {
      section: 'propagation',
      measure: 'leave -> SSE clients',
      value: p50p99(sse.leave),
      goal: 'p99 <= 20 ms',
      ratio: percentile(sse.leave, 99) / goal,
      n: sse.leave.length,
    },
    {
      section: 'propagation',
      measure: 'floor: write -> a bare etcd watch in the bench process',
      value: p50p99(all(floor)),
      n: all(floor).length,
      note: 'includes the write\'s own commit',
    },
  ];
}
