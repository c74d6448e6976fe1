import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { LeaseLostError, RegistryUnavailableError } from '../../src/registry/types.js';
import { WatchRecorder, eventKey, eventRevision, eventually, registryContract, sleep } from './contract.js';

registryContract('memory', async () => {
  const registry = new MemoryRegistry();
  return {
    registry,
    cleanup: () => registry.close(),
    compact: async (revision) => registry.compact(revision),
  };
});

async function rejectsWith<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    return err as E;
  }
  return expect.fail(`expected ${type.name}`);
}

describe('MemoryRegistry specifics', () => {
  let registries: MemoryRegistry[];
  const make = (options?: ConstructorParameters<typeof MemoryRegistry>[0]) => {
    const r = new MemoryRegistry(options);
    registries.push(r);
    return r;
  };

  beforeEach(() => {
    registries = [];
  });
  afterEach(async () => {
    await Promise.all(registries.map((r) => r.close()));
  });

  describe('revisions', () => {
    it('starts at revision 1 like a fresh etcd; each write adds exactly one', async () => {
      const r = make();
      expect((await r.status()).revision).to.equal(1);
      expect(await r.put('a', '1')).to.equal(2);
      expect(await r.put('b', '1')).to.equal(3);
      expect((await r.txn([], [{ type: 'put', key: 'c', value: '1' }, { type: 'delete', key: 'a' }])).revision).to.equal(4);
      expect((await r.list('')).revision).to.equal(4);
    });

    it('writes that change nothing keep the revision (missing delete, failed or empty txn)', async () => {
      const r = make();
      await r.put('a', '1');
      expect(await r.delete('missing')).to.equal(false);
      expect(await r.txn([{ key: 'a', target: 'value', equals: 'x' }], [{ type: 'put', key: 'a', value: '2' }])).to.deep.equal({
        succeeded: false,
        revision: 2,
      });
      expect(await r.txn([], [])).to.deep.equal({ succeeded: true, revision: 2 });
      expect(await r.txn([], [{ type: 'delete', key: 'missing' }])).to.deep.equal({ succeeded: true, revision: 2 });
      expect((await r.status()).revision).to.equal(2);
    });

    it('rejects a txn that names one key twice, like etcd', async () => {
      const r = make();
      let error: unknown;
      await r
        .txn([], [
          { type: 'put', key: 'a', value: '1' },
          { type: 'delete', key: 'a' },
        ])
        .catch((err: unknown) => (error = err));
      expect(String(error)).to.match(/duplicate key/);
      expect(await r.get('a')).to.equal(null);
    });

    it('returns copies: mutating a result does not change the store', async () => {
      const r = make();
      await r.put('a', '1');
      const kv = (await r.get('a'))!;
      kv.value = 'changed';
      expect((await r.get('a'))!.value).to.equal('1');
    });
  });

  describe('watch history and compaction', () => {
    it('keeps only historyLimit revisions; older start revisions get onCompacted', async () => {
      const r = make({ historyLimit: 5 });
      for (let i = 0; i < 10; i++) await r.put(`k/${i}`, String(i)); // revisions 2..11
      expect(r.compactRevision).to.equal(7);

      const stale = new WatchRecorder();
      r.watchPrefix('k/', 6, stale);
      const kept = new WatchRecorder();
      r.watchPrefix('k/', 7, kept);
      await eventually('onCompacted', () => stale.compacted.length > 0);
      expect(stale.compacted).to.deep.equal([7]);
      expect(stale.connected).to.equal(0);
      const events = await kept.waitForEvents(5);
      expect(events.map(eventRevision)).to.deep.equal([7, 8, 9, 10, 11]);
    });

    it('a slow consumer is never compacted out by a burst of writes', async () => {
      const r = make({ historyLimit: 10 });
      const rec = new WatchRecorder();
      r.watchPrefix('', 0, rec);
      await Promise.all(Array.from({ length: 200 }, (_, i) => r.put(`k${i}`, String(i))));
      const events = await rec.waitForEvents(200);
      expect(events.map(eventRevision)).to.deep.equal(Array.from({ length: 200 }, (_, i) => i + 2));
      expect(rec.compacted).to.deep.equal([]);
    });

    it('compact() refuses a future revision and ignores one already compacted', async () => {
      const r = make();
      await r.put('a', '1');
      await r.put('a', '2');
      expect(() => r.compact(10)).to.throw(/future revision/);
      r.compact(3);
      r.compact(2);
      expect(r.compactRevision).to.equal(3);
    });

    it('fromRevision 0 watches from the next write', async () => {
      const r = make();
      await r.put('a', '1');
      const rec = new WatchRecorder();
      r.watchPrefix('', 0, rec);
      const rev = await r.put('b', '1');
      const events = await rec.waitForEvents(1);
      await sleep(20);
      expect(events.map((e) => [eventKey(e), eventRevision(e)])).to.deep.equal([['b', rev]]);
    });

    it('a watch from a future revision delivers nothing before it', async () => {
      const r = make();
      const rec = new WatchRecorder();
      r.watchPrefix('', 4, rec);
      await r.put('a', '1'); // 2
      await r.put('b', '1'); // 3
      await r.put('c', '1'); // 4
      const events = await rec.waitForEvents(1);
      await sleep(20);
      expect(events.map((e) => [eventKey(e), eventRevision(e)])).to.deep.equal([['c', 4]]);
    });

    it('a throwing handler does not stop later deliveries', async () => {
      const r = make();
      const seen: string[] = [];
      const uncaught: unknown[] = [];
      // Mocha owns uncaught exceptions; take them over for this test only.
      const mochaHandlers = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', (err) => uncaught.push(err));
      try {
        r.watchPrefix('', 0, {
          onEvents: (events) => {
            seen.push(eventKey(events[0]!));
            if (seen.length === 1) throw new Error('handler bug');
          },
          onCompacted: () => undefined,
        });
        await r.put('a', '1');
        await r.put('b', '1');
        await eventually('both events and the rethrown error', () => seen.length === 2 && uncaught.length === 1);
        expect(seen).to.deep.equal(['a', 'b']);
        expect(String(uncaught[0])).to.contain('handler bug');
      } finally {
        process.removeAllListeners('uncaughtException');
        for (const h of mochaHandlers) process.on('uncaughtException', h);
      }
    });

    it('delivers one onEvents call per revision, with the delete prevValue', async () => {
      const r = make();
      const rec = new WatchRecorder();
      r.watchPrefix('', 0, rec);
      await r.put('a', 'old');
      await r.txn([], [
        { type: 'delete', key: 'a' },
        { type: 'put', key: 'b', value: '1' },
      ]);
      await rec.waitForEvents(3);
      expect(rec.batches.map((b) => [b.revision, b.events.length])).to.deep.equal([
        [2, 1],
        [3, 2],
      ]);
      expect(rec.batches[1]!.events[0]).to.deep.equal({ type: 'delete', key: 'a', modRevision: 3, prevValue: 'old' });
    });
  });

  describe('simulated unavailability', () => {
    it('rejects every call with RegistryUnavailableError("memory") until available again', async () => {
      const r = make();
      const lease = await r.grantLease(30);
      r.setAvailable(false);
      expect(r.isAvailable).to.equal(false);
      const err = await rejectsWith(r.get('a'), RegistryUnavailableError);
      expect(err.endpoint).to.equal('memory');
      await rejectsWith(r.list(''), RegistryUnavailableError);
      await rejectsWith(r.put('a', '1'), RegistryUnavailableError);
      await rejectsWith(r.delete('a'), RegistryUnavailableError);
      await rejectsWith(r.txn([], []), RegistryUnavailableError);
      await rejectsWith(r.grantLease(5), RegistryUnavailableError);
      await rejectsWith(r.leaseCount(), RegistryUnavailableError);
      await rejectsWith(r.status(), RegistryUnavailableError);
      await rejectsWith(lease.keepAliveOnce(), RegistryUnavailableError);
      await rejectsWith(lease.revoke(), RegistryUnavailableError);
      r.setAvailable(true);
      expect(await lease.keepAliveOnce()).to.equal(30);
      expect(await r.put('a', '1')).to.equal(2);
    });

    it('watches report the outage, then reconnect and replay what they missed', async () => {
      const agent = make();
      const other = agent.connect();
      registries.push(other);
      const rec = new WatchRecorder();
      agent.watchPrefix('svc/', 0, rec);
      await eventually('connected', () => rec.connected === 1);
      await other.put('svc/a', '1');
      await rec.waitForEvents(1);

      agent.setAvailable(false);
      await eventually('onDisconnected', () => rec.disconnected.length === 1);
      expect(rec.disconnected[0]).to.be.instanceOf(RegistryUnavailableError);
      await other.put('svc/b', '1');
      await other.delete('svc/a');
      await sleep(20);
      expect(rec.events).to.have.length(1);

      agent.setAvailable(true);
      const events = await rec.waitForEvents(3);
      expect(rec.connected).to.equal(2);
      expect(events.map((e) => `${e.type} ${eventKey(e)}`)).to.deep.equal(['put svc/a', 'put svc/b', 'delete svc/a']);
      await other.put('svc/c', '1');
      await rec.waitForEvents(4);
    });

    it('a watch whose missed history was dropped during the outage gets onCompacted', async () => {
      const agent = make({ historyLimit: 3 });
      const other = agent.connect();
      registries.push(other);
      const rec = new WatchRecorder();
      agent.watchPrefix('', 0, rec);
      agent.setAvailable(false);
      for (let i = 0; i < 5; i++) await other.put(`k${i}`, 'x');
      agent.setAvailable(true);
      await eventually('onCompacted', () => rec.compacted.length === 1);
      expect(rec.compacted[0]).to.equal(agent.compactRevision);
      expect(rec.events).to.deep.equal([]);
    });

    it('leases keep expiring server-side while a client is cut off', async function () {
      this.timeout(10_000);
      const agent = make();
      const lease = await agent.grantLease(1);
      await agent.put('svc/me', 'x', { lease: lease.id });
      agent.setAvailable(false);
      await sleep(1300);
      agent.setAvailable(true);
      expect(await agent.get('svc/me')).to.equal(null);
      await rejectsWith(lease.keepAliveOnce(), LeaseLostError);
    });

    it('can start unavailable; a watch opened then connects when the registry comes back', async () => {
      const owner = make();
      await owner.put('a', '1');
      const client = owner.connect({ available: false });
      registries.push(client);
      const rec = new WatchRecorder();
      client.watchPrefix('', 1, rec);
      await eventually('onDisconnected', () => rec.disconnected.length === 1);
      client.setAvailable(true);
      await rec.waitForEvents(1);
      expect(rec.connected).to.equal(1);
    });
  });

  describe('shared store (demo mode)', () => {
    it('clients share keys, revisions and leases, but close independently', async () => {
      const a = make();
      const b = a.connect();
      const lease = await a.grantLease(30);
      await b.put('k', 'v', { lease: lease.id });
      expect((await a.get('k'))!.lease).to.equal(lease.id);
      expect(await b.leaseCount()).to.equal(1);

      await a.close();
      await rejectsWith(a.get('k'), RegistryUnavailableError);
      // The lease outlives the client that granted it, as on etcd.
      expect((await b.get('k'))!.value).to.equal('v');
      expect(await b.leaseCount()).to.equal(1);
      await b.close();
      expect(() => b.connect()).to.throw(/closed/);
    });

    it('close() stops the watches of that client only', async () => {
      const a = make();
      const b = a.connect();
      registries.push(b);
      const ra = new WatchRecorder();
      const rb = new WatchRecorder();
      a.watchPrefix('', 0, ra);
      b.watchPrefix('', 0, rb);
      await a.close();
      await b.put('x', '1');
      await rb.waitForEvents(1);
      await sleep(20);
      expect(ra.events).to.deep.equal([]);
    });

    it('timers never keep the process alive', async function () {
      this.timeout(15_000);
      const memoryModule = fileURLToPath(new URL('../../src/registry/memory.ts', import.meta.url));
      const script = `
        import { MemoryRegistry } from ${JSON.stringify(memoryModule)};
        const r = new MemoryRegistry();
        const lease = await r.grantLease(600);
        await r.put('k', 'v', { lease: lease.id });
        r.watchPrefix('', 0, { onEvents() {}, onCompacted() {} });
        console.log('ready');
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(null);
        }, 10_000);
        child.once('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      expect(code, `child output: ${out}`).to.equal(0);
      expect(out).to.contain('ready');
    });
  });
});
