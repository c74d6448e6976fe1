/**
 * SSE fan-out benchmark (not a test): three agents on a real etcd, 100 SSE clients on one agent's API,
 * registry changes written straight to etcd, and the latency from each change to its receipt at every
 * client.
 *
 *   npx tsx bench/sse-fanout.ts [--clients 100] [--changes 200] [--interval-ms 20] [--burst 50]
 *
 * The clients run in a worker thread, so their parsing does not share the agent's event loop; times
 * are absolute (timeOrigin + now) and so comparable across threads. A change is "sent" when the put is
 * issued; it is "received" when a client has parsed its `data:` line. Uses ETCD_ENDPOINTS when set,
 * else starts a local etcd through the test harness.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { startApiServer } from '../src/api/server.js';
import { keyLayout } from '../src/cluster/keys.js';
import { EtcdRegistry } from '../src/registry/etcd.js';
import { TestCluster, eventually } from '../test/api/fixtures.js';
import { startEtcd, uniqueNamespace } from '../test/helpers/etcd.js';
import { sampleRecord } from '../test/helpers/records.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    changes: { type: 'string', default: '200' },
    'interval-ms': { type: 'string', default: '20' },
    burst: { type: 'string', default: '50' },
  },
});
const CLIENTS = Number(args.clients);
const CHANGES = Number(args.changes);
const INTERVAL_MS = Number(args['interval-ms']);
const BURST = Number(args.burst);

const now = (): number => performance.timeOrigin + performance.now();

/** Worker: opens N SSE connections and reports, per change tag, the receipt time at each client. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { performance } = require('node:perf_hooks');
const now = () => performance.timeOrigin + performance.now();
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
let open = 0;
const received = []; // [client, tag, time]
const reqs = [];
for (let c = 0; c < workerData.clients; c++) {
  const req = http.get(workerData.url, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
    if (res.statusCode !== 200) { parentPort.postMessage({ type: 'error', message: 'HTTP ' + res.statusCode }); return; }
    open++;
    if (open === workerData.clients) parentPort.postMessage({ type: 'ready' });
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\\n\\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const t = now();
        for (const line of block.split('\\n')) {
          if (!line.startsWith('data: ')) continue;
          const m = /"version":"bench-(\\d+)"/.exec(line);
          if (m) received.push([c, Number(m[1]), t]);
        }
      }
    });
  });
  req.on('error', (err) => parentPort.postMessage({ type: 'error', message: err.message }));
  reqs.push(req);
}
parentPort.on('message', (msg) => {
  if (msg === 'report') parentPort.postMessage({ type: 'report', received: received.splice(0) });
  if (msg === 'close') { for (const r of reqs) r.destroy(); agent.destroy(); parentPort.close(); }
});
`;

interface Report {
  type: 'report';
  received: [number, number, number][];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function fakeRecord(id: string, tag: number): string {
  return JSON.stringify(sampleRecord(id, { host: '10.9.9.9', version: `bench-${tag}`, tags: ['bench'], updatedAt: Date.now() }));
}

async function main(): Promise<void> {
  const etcd = await startEtcd();
  const namespace = uniqueNamespace('bench');
  const cluster = await TestCluster.custom(() => new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 5000 }), {
    registry: 'etcd',
    endpoints: [etcd.endpoint],
    namespace,
  });
  const writer = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 5000 });
  // Fake records live under a lease, as agents write them: readers skip a record without one.
  const fakeLease = writer.grantLease(600).then((l) => l.id);
  const layout = keyLayout(namespace);
  let worker: Worker | undefined;
  try {
    for (const id of ['bench-a', 'bench-b', 'bench-c']) await cluster.addAgent({ id });
    await cluster.settled(3);
    const api = await startApiServer(cluster.agents[0]!, {
      host: '127.0.0.1',
      port: 0,
      auth: { keys: [], readAccess: 'open' },
      // Every client connects from 127.0.0.1: the per-address cap (20 by default) would refuse the
      // 21st with 429, as it should a single host opening a hundred streams.
      events: { maxClients: CLIENTS + 10, maxClientsPerAddress: CLIENTS },
    });
    try {
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { url: `${api.url}/service-discovery/events`, clients: CLIENTS } });
      const w = worker;
      const messages: ((m: { type: string; message?: string }) => void)[] = [];
      w.on('message', (m: { type: string; message?: string }) => {
        if (m.type === 'error') console.error(`client error: ${m.message}`);
        messages.shift()?.(m);
      });
      const next = <T>(): Promise<T> => new Promise((resolve) => messages.push(resolve as (m: unknown) => void));
      await next<{ type: 'ready' }>();
      await eventually(`${CLIENTS} clients connected`, () => api.events.clientCount === CLIENTS, 10_000);

      const sentAt = new Map<number, number>();
      let tag = 0;
      const rows: string[][] = [];

      const runPhase = async (name: string, count: number, write: (tags: number[]) => Promise<void>) => {
        const tags = Array.from({ length: count }, () => tag++);
        await write(tags);
        // Wait until every client has every change of the phase (or give up after 10 s).
        const want = new Set(tags);
        const latencies: number[] = [];
        const seen = new Set<string>();
        let duplicates = 0;
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline) {
          w.postMessage('report');
          const report = await next<Report>();
          for (const [client, t, at] of report.received) {
            if (!want.has(t)) continue;
            const key = `${client}:${t}`;
            if (seen.has(key)) duplicates++;
            seen.add(key);
            latencies.push(at - sentAt.get(t)!);
          }
          if (seen.size >= count * CLIENTS) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        latencies.sort((x, y) => x - y);
        const missing = count * CLIENTS - seen.size;
        rows.push([
          name,
          String(count),
          String(CLIENTS),
          String(latencies.length),
          String(missing),
          String(duplicates),
          percentile(latencies, 50).toFixed(1),
          percentile(latencies, 90).toFixed(1),
          percentile(latencies, 99).toFixed(1),
          (latencies[latencies.length - 1] ?? NaN).toFixed(1),
        ]);
      };

      // Warm up the connections and the watch path (not reported).
      await runPhase('warm-up', 5, async (tags) => {
        for (const t of tags) {
          sentAt.set(t, now());
          await writer.put(layout.service('bench-fake'), fakeRecord('bench-fake', t), { lease: await fakeLease });
        }
      });
      rows.length = 0;

      await runPhase(`paced, 1 per ${INTERVAL_MS} ms`, CHANGES, async (tags) => {
        for (const t of tags) {
          sentAt.set(t, now());
          await writer.put(layout.service('bench-fake'), fakeRecord('bench-fake', t), { lease: await fakeLease });
          await new Promise((r) => setTimeout(r, INTERVAL_MS));
        }
      });
      await runPhase('burst, concurrent puts', BURST, async (tags) => {
        await Promise.all(
          tags.map((t) => {
            sentAt.set(t, now());
            return fakeLease.then((lease) => writer.put(layout.service(`bench-burst-${t}`), fakeRecord(`bench-burst-${t}`, t), { lease }));
          }),
        );
      });

      const header = ['phase', 'changes', 'clients', 'deliveries', 'missing', 'dupes', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
      console.log(`\nSSE fan-out: etcd ${etcd.endpoint}, ${CLIENTS} clients on one agent, change -> client receipt\n`);
      console.log(line(header));
      console.log(widths.map((w2) => '-'.repeat(w2)).join('  '));
      for (const r of rows) console.log(line(r));
      console.log('');
      w.postMessage('close');
    } finally {
      await api.close();
    }
  } finally {
    await worker?.terminate();
    await writer.close();
    await cluster.stop();
    await etcd.stop();
  }
}

await main();
