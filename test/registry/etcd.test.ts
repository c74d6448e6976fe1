import { expect } from 'chai';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { RegistryRequestError, RegistryUnavailableError } from '../../src/registry/types.js';
import { compactEtcd, startEtcd, uniqueNamespace, untilStopped, type EtcdServer } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { WatchRecorder, eventKey, eventually, registryContract } from './contract.js';

registryContract('etcd', async () => {
  const server = await sharedEtcd();
  const registry = new EtcdRegistry({ endpoints: server.endpoints, callTimeoutMs: 3000 });
  return {
    registry,
    cleanup: () => registry.close(),
    compact: (revision) => compactEtcd(server.endpoint, revision),
  };
});

describe('EtcdRegistry specifics', function () {
  this.timeout(30_000);
  let registry: EtcdRegistry;

  before(async function () {
    const server = await sharedEtcd();
    registry = new EtcdRegistry({ endpoints: server.endpoints, callTimeoutMs: 3000 });
  });
  after(async () => {
    await registry?.close();
  });

  it('delete events carry the previous value (the watch asks etcd for previous key-values)', async () => {
    const ns = `${uniqueNamespace('prev')}/`;
    const start = await registry.put(`${ns}a`, 'first');
    const rec = new WatchRecorder();
    const handle = registry.watchPrefix(ns, start + 1, rec);
    try {
      await registry.put(`${ns}a`, 'second');
      await registry.delete(`${ns}a`);
      const events = await rec.waitForEvents(2);
      expect(events[1]).to.deep.include({ type: 'delete', key: `${ns}a`, prevValue: 'second' });
    } finally {
      await handle.cancel();
    }
  });

  it('a call leaves nothing behind: the heap does not grow with the number of calls (an agent makes one a second for days)', async function () {
    this.timeout(60_000);
    // A full GC without --expose-gc: V8 lets a flag set at run time create the function in a new context.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (let i = 0; i < 1000; i++) await registry.get('heap-probe');
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 10_000; i++) await registry.get('heap-probe');
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // Each call once left ~0.8 KB reachable (a reaction on a promise shared by every call): 8 MB here.
    expect(grown, `heap grew ${Math.round(grown / 1024)} KiB over 10,000 calls`).to.be.below(3 * 1024 * 1024);
  });

  it('a refused connection is one line naming the endpoint', async () => {
    const closed = new EtcdRegistry({ endpoints: ['http://127.0.0.1:1'], callTimeoutMs: 1000 });
    try {
      const err = await closed.get('x').then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).to.be.instanceOf(RegistryUnavailableError);
      expect(err!.message).to.equal('registry http://127.0.0.1:1 unreachable: connect ECONNREFUSED 127.0.0.1:1');
    } finally {
      await closed.close();
    }
  });

  it('a request etcd refuses as such (a server limit) is a RegistryRequestError naming the limit, not "unreachable"', async function () {
    this.timeout(30_000);
    const limited = await startEtcd({ flags: ['--max-txn-ops=2'] });
    const registry = new EtcdRegistry({ endpoints: [limited.endpoint], callTimeoutMs: 2000 });
    try {
      const ops = ['a', 'b', 'c'].map((k) => ({ type: 'put' as const, key: `limits/${k}`, value: k }));
      const err = await registry.txn([], ops).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).to.be.instanceOf(RegistryRequestError);
      expect(err!.message).to.equal(`registry ${limited.endpoint} refused the request: too many operations in txn request (etcd's --max-txn-ops)`);
      // Not an outage: the same client goes on answering, and nothing was half-written.
      expect((await registry.list('limits/')).kvs).to.deep.equal([]);
      expect((await registry.txn([], ops.slice(0, 2))).succeeded).to.equal(true);
    } finally {
      await registry.close();
      await limited.stop();
    }
  });
});

/** Faults on a server of its own: these also prove the harness can kill and restart etcd in place. */
describe('EtcdRegistry with a failing etcd', function () {
  this.timeout(60_000);
  let server: EtcdServer;
  let registry: EtcdRegistry;
  let ns: string;

  before(async function () {
    this.timeout(60_000);
    server = await startEtcd({ own: true });
  });
  after(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    registry = new EtcdRegistry({ endpoints: [server.endpoint], callTimeoutMs: 1000 });
    ns = `${uniqueNamespace('faults')}/`;
  });
  afterEach(async () => {
    await registry.close();
  });

  it('a frozen etcd (SIGSTOP) makes calls fail with RegistryUnavailableError; SIGCONT recovers', async () => {
    await registry.put(`${ns}a`, '1');
    const pid = server.pid;
    server.kill('SIGSTOP');
    try {
      await untilStopped(pid);
      const started = Date.now();
      const err = await registry.get(`${ns}a`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(RegistryUnavailableError);
      // One short line, not gRPC's "Deadline exceeded after 1.001s,name resolution: …,Waiting for LB pick".
      expect((err as Error).message).to.equal(`registry ${server.endpoint} unreachable: no answer within 1000ms`);
      expect(Date.now() - started, 'a call must not hang past its timeout').to.be.below(3000);
    } finally {
      server.kill('SIGCONT');
    }
    const kv = await eventually(
      'registry to answer again',
      () => registry.get(`${ns}a`).catch(() => undefined),
      10_000,
      200,
    );
    expect(kv!.value).to.equal('1');
  });

  it('kill -9 and restart on the same data dir: data survives, the watch resumes without gaps', async () => {
    const endpoint = server.endpoint;
    const dataDir = server.dataDir;
    const first = await registry.put(`${ns}a`, '1');
    const rec = new WatchRecorder();
    const handle = registry.watchPrefix(ns, first + 1, rec);
    await eventually('watch connected', () => rec.connected > 0);
    await registry.put(`${ns}b`, '1');
    await rec.waitForEvents(1);

    server.kill('SIGKILL');
    const err = await eventually(
      'a call to fail',
      () => registry.get(`${ns}a`).then(() => undefined, (e: unknown) => e as Error),
      10_000,
      100,
    );
    expect(err).to.be.instanceOf(RegistryUnavailableError);

    await server.restart();
    expect(server.endpoint).to.equal(endpoint);
    expect(server.dataDir).to.equal(dataDir);

    const kv = await eventually('registry to answer after restart', () => registry.get(`${ns}a`).catch(() => undefined), 15_000, 200);
    expect(kv).to.include({ value: '1', modRevision: first });
    await registry.put(`${ns}c`, '1');
    await rec.waitForEvents(2, 15_000);
    expect(rec.events.map(eventKey)).to.deep.equal([`${ns}b`, `${ns}c`]);
    expect(rec.compacted).to.deep.equal([]);
    await handle.cancel();
  });
});
