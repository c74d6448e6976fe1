/**
 * What etcd alone achieves on this machine, measured in the same run as everything else, so each
 * result can be read against the floor beneath it (the machine may be busier or quieter than when the
 * goals' limits were taken):
 *
 * - a put reaching another client's watch;
 * - a thousand lease grants with a put each, 50 at a time;
 * - a range read of a thousand keys.
 */
import { EtcdRegistry } from '../src/registry/etcd.js';
import { startEtcd, uniqueNamespace } from '../test/helpers/etcd.js';
import { median, ms, now, p50p99, sleep, type Row } from './lib.js';

/**
 * etcd alone when the goals were set: one-off figures that came with the first version of this file;
 * how they were taken was not recorded. Shown beside this run's to compare the machine then and now.
 */
const REFERENCE = 'one-off reference of 2026-11-28 (commit ac0128a, command not recorded)';

export async function limitBenchmarks(options: { log: (line: string) => void }): Promise<{ rows: Row[]; etcdVersion: string }> {
  options.log('limits: etcd alone');
  const etcd = await startEtcd({ own: true });
  const ns = uniqueNamespace('limits');
  const writer = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 10_000 });
  const watcher = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 10_000 });
  const rows: Row[] = [];
  try {
    const { version } = await writer.status();
    // Warm up both connections and etcd itself: the first burst on a fresh server is slower.
    await grantsWithPut(writer, `${ns}/warm/`, 500, 50);

    const sent = new Map<string, number>();
    const latencies: number[] = [];
    const { revision } = await watcher.list(`${ns}/w/`);
    const watch = watcher.watchPrefix(`${ns}/w/`, revision + 1, {
      onEvents: (events) => {
        const at = now();
        for (const e of events) if (e.type === 'put' && sent.has(e.kv.key)) latencies.push(at - sent.get(e.kv.key)!);
      },
      onCompacted: () => undefined,
    });
    await sleep(200);
    for (let i = 0; i < 200; i++) {
      const key = `${ns}/w/${i}`;
      sent.set(key, now());
      await writer.put(key, 'x');
      await sleep(5);
    }
    await sleep(200);
    await watch.cancel();
    rows.push({ section: 'limits (etcd alone)', measure: 'a put reaches another client\'s watch', value: p50p99(latencies), n: latencies.length, note: `${REFERENCE}: 0.7 / 4.1 ms` });

    const grantRuns: number[] = [];
    for (let run = 0; run < 3; run++) grantRuns.push(await grantsWithPut(writer, `${ns}/g${run}/`, 1000, 50));
    rows.push({
      section: 'limits (etcd alone)',
      measure: '1,000 lease grants with a put each, 50 at a time',
      value: `median ${ms(median(grantRuns))} ms`,
      n: grantRuns.length,
      note: `${REFERENCE}: 540 ms`,
    });

    const rangeRuns: number[] = [];
    for (let run = 0; run < 10; run++) {
      const t0 = now();
      const { kvs } = await writer.list(`${ns}/g0/`);
      rangeRuns.push(now() - t0);
      if (kvs.length !== 1000) throw new Error(`expected 1000 keys, read ${kvs.length}`);
    }
    rows.push({ section: 'limits (etcd alone)', measure: 'range read of 1,000 keys', value: `median ${ms(median(rangeRuns))} ms`, n: rangeRuns.length, note: `${REFERENCE}: 13 ms` });
    return { rows, etcdVersion: version };
  } finally {
    await writer.close();
    await watcher.close();
    await etcd.stop();
  }
}

async function grantsWithPut(registry: EtcdRegistry, prefix: string, count: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const lease = await registry.grantLease(60);
        await registry.put(`${prefix}${i}`, 'x', { lease: lease.id });
      }
    }),
  );
  return now() - t0;
}
