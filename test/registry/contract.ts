/**
 * The Registry contract: one suite every backend must pass (memory, etcd and Redis), so the agent can be
 * written once against the interface. Tests use their own key namespace, so a shared etcd is fine;
 * assertions on revisions only use "greater than" where an unrelated writer could interleave.
 */
import { expect } from 'chai';
import {
  LeaseLostError,
  type Registry,
  type RegistryLease,
  type WatchEvent,
  type WatchHandle,
  type WatchHandlers,
} from '../../src/registry/types.js';
import { uniqueNamespace } from '../helpers/etcd.js';

/** What a backend's factory hands the contract. */
export interface ContractSubject {
  registry: Registry;
  /** Closes the registry and anything the factory started. */
  cleanup(): Promise<void>;
  /**
   * Compacts the backend's history at `revision` (the interface has none: etcd compacts on the server,
   * memory through `MemoryRegistry.compact`). Without it the compaction test is skipped.
   */
  compact?(revision: number): Promise<void>;
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Records everything a watch reports. */
export class WatchRecorder implements WatchHandlers {
  readonly batches: { events: WatchEvent[]; revision: number }[] = [];
  readonly compacted: number[] = [];
  readonly disconnected: Error[] = [];
  readonly errors: Error[] = [];
  connected = 0;

  onEvents = (events: WatchEvent[], revision: number): void => {
    this.batches.push({ events, revision });
  };
  onCompacted = (compactRevision: number): void => {
    this.compacted.push(compactRevision);
  };
  onDisconnected = (error: Error): void => {
    this.disconnected.push(error);
  };
  onConnected = (): void => {
    this.connected++;
  };
  onError = (error: Error): void => {
    this.errors.push(error);
  };

  get events(): WatchEvent[] {
    return this.batches.flatMap((b) => b.events);
  }

  async waitForEvents(count: number, timeoutMs = 5000): Promise<WatchEvent[]> {
    return eventually(
      `${count} watch events (have ${this.events.length}: ${this.describe()})`,
      () => this.events.length >= count && this.events,
      timeoutMs,
    );
  }

  /** Compact text form for assertion messages. */
  describe(): string {
    return this.events.map(describeEvent).join(', ');
  }
}

export function eventKey(event: WatchEvent): string {
  return event.type === 'put' ? event.kv.key : event.key;
}

export function eventRevision(event: WatchEvent): number {
  return event.type === 'put' ? event.kv.modRevision : event.modRevision;
}

function describeEvent(event: WatchEvent): string {
  return `${event.type} ${eventKey(event)}@${eventRevision(event)}`;
}

/**
 * Checks the watch ordering guarantees: revisions never go back, all events of one revision arrive
 * in one batch, and a batch's header revision is at least its newest event's.
 */
function expectWellFormed(recorder: WatchRecorder): void {
  const batchOfRevision = new Map<number, number>();
  let last = 0;
  recorder.batches.forEach((batch, index) => {
    for (const event of batch.events) {
      const rev = eventRevision(event);
      expect(rev, `revision order in ${recorder.describe()}`).to.be.at.least(last);
      last = rev;
      const seen = batchOfRevision.get(rev);
      expect(seen === undefined || seen === index, `revision ${rev} split across batches`).to.equal(true);
      batchOfRevision.set(rev, index);
      expect(batch.revision, 'batch header revision').to.be.at.least(rev);
    }
  });
}

async function expectRejects(promise: Promise<unknown>, type: new (...args: never[]) => Error): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    expect(err, `expected ${type.name}, got ${String(err)}`).to.be.instanceOf(type);
    return err as Error;
  }
  expect.fail(`expected a ${type.name} rejection`);
}

/**
 * Runs the contract against one backend. `make` is called once for the suite; every test works under
 * its own namespace and cleans its keys and leases up afterwards.
 */
export function registryContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`Registry contract: ${name}`, function () {
    this.timeout(20_000);
    let subject: ContractSubject;
    let registry: Registry;
    let ns: string;
    let leases: RegistryLease[];
    let watches: WatchHandle[];

    /** Grants a lease that is revoked after the test. */
    async function lease(ttl: number): Promise<RegistryLease> {
      const granted = await registry.grantLease(ttl);
      leases.push(granted);
      return granted;
    }

    function watch(prefix: string, fromRevision: number): { recorder: WatchRecorder; handle: WatchHandle } {
      const recorder = new WatchRecorder();
      const handle = registry.watchPrefix(prefix, fromRevision, recorder);
      watches.push(handle);
      return { recorder, handle };
    }

    before(async function () {
      this.timeout(60_000);
      subject = await make();
      registry = subject.registry;
    });

    after(async () => {
      await subject?.cleanup();
    });

    beforeEach(() => {
      ns = `${uniqueNamespace(`contract-${name}`)}/`;
      leases = [];
      watches = [];
    });

    afterEach(async () => {
      await Promise.all(watches.map((w) => w.cancel()));
      await Promise.all(leases.map((l) => l.revoke().catch(() => undefined)));
      const left = await registry.list(ns).catch(() => ({ kvs: [] }));
      await Promise.all(left.kvs.map((kv) => registry.delete(kv.key)));
    });

    describe('keys', () => {
      it('get resolves null for a missing key', async () => {
        expect(await registry.get(`${ns}missing`)).to.equal(null);
      });

      it('put returns the revision; get reads value, createRevision, modRevision and lease "0"', async () => {
        const rev1 = await registry.put(`${ns}a`, 'one');
        expect(rev1).to.be.a('number').and.to.be.greaterThan(1);
        expect(await registry.get(`${ns}a`)).to.deep.equal({
          key: `${ns}a`,
          value: 'one',
          createRevision: rev1,
          modRevision: rev1,
          lease: '0',
        });
        const rev2 = await registry.put(`${ns}a`, 'two');
        expect(rev2).to.be.greaterThan(rev1);
        const kv = await registry.get(`${ns}a`);
        expect(kv).to.include({ value: 'two', createRevision: rev1, modRevision: rev2 });
      });

      it('revisions are global and strictly increasing across keys', async () => {
        const a = await registry.put(`${ns}a`, '1');
        const b = await registry.put(`${ns}b`, '1');
        const c = await registry.put(`${ns}a`, '2');
        expect(b).to.be.greaterThan(a);
        expect(c).to.be.greaterThan(b);
        expect((await registry.get(`${ns}b`))!.modRevision).to.equal(b);
      });

      it('keeps values byte for byte (unicode, JSON, empty)', async () => {
        const values = ['', '{"id":"x","tags":["a","b"]}', 'héllo wörld ✓ 😀', 'line\nbreak'];
        for (const [i, value] of values.entries()) await registry.put(`${ns}v${i}`, value);
        for (const [i, value] of values.entries()) expect((await registry.get(`${ns}v${i}`))!.value).to.equal(value);
      });

      it('delete resolves true for an existing key and false for a missing one', async () => {
        await registry.put(`${ns}a`, 'x');
        expect(await registry.delete(`${ns}a`)).to.equal(true);
        expect(await registry.get(`${ns}a`)).to.equal(null);
        expect(await registry.delete(`${ns}a`)).to.equal(false);
        expect(await registry.delete(`${ns}never`)).to.equal(false);
      });

      it('a key re-created after delete gets a new createRevision', async () => {
        const first = await registry.put(`${ns}a`, 'x');
        await registry.delete(`${ns}a`);
        const second = await registry.put(`${ns}a`, 'x');
        expect(second).to.be.greaterThan(first);
        expect((await registry.get(`${ns}a`))!.createRevision).to.equal(second);
      });

      it('list returns only keys under the prefix, in byte order, with the store revision', async () => {
        const prefix = `${ns}list/`;
        // Insertion order differs from byte order; 😀 (F0…) sorts after U+FFFD (EF…) in UTF-8 though not in UTF-16.
        const keys = ['b', 'a0', 'a/1', '😀', 'a', 'z', '\uFFFD', 'é', 'A'];
        let lastRev = 0;
        for (const k of keys) lastRev = await registry.put(`${prefix}${k}`, `v-${k}`);
        await registry.put(`${ns}listx`, 'outside');
        await registry.put(`${ns}lis`, 'outside');
        const result = await registry.list(prefix);
        const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect(result.kvs.map((kv) => kv.key.slice(prefix.length))).to.deep.equal(expected);
        expect(result.kvs.map((kv) => kv.value)).to.deep.equal(expected.map((k) => `v-${k}`));
        expect(result.revision).to.be.at.least(lastRev + 2);
        for (const kv of result.kvs) {
          expect(kv.createRevision).to.equal(kv.modRevision);
          expect(kv.lease).to.equal('0');
        }
      });

      it('list of an empty prefix returns no keys and the current revision', async () => {
        const rev = await registry.put(`${ns}something`, 'x');
        const result = await registry.list(`${ns}nothing-here/`);
        expect(result.kvs).to.deep.equal([]);
        expect(result.revision).to.be.at.least(rev);
      });
    });

    describe('transactions', () => {
      it('create-if-absent (createRevision 0) succeeds once', async () => {
        const key = `${ns}lock`;
        const first = await registry.txn([{ key, target: 'createRevision', equals: 0 }], [
          { type: 'put', key, value: 'first' },
        ]);
        expect(first.succeeded).to.equal(true);
        const kv = await registry.get(key);
        expect(kv).to.include({ value: 'first', createRevision: first.revision, modRevision: first.revision });

        const second = await registry.txn([{ key, target: 'createRevision', equals: 0 }], [
          { type: 'put', key, value: 'second' },
        ]);
        expect(second.succeeded).to.equal(false);
        expect(second.revision).to.be.at.least(first.revision);
        expect(await registry.get(key)).to.deep.equal(kv);
      });

      it('a failed txn applies none of its ops', async () => {
        await registry.put(`${ns}a`, 'a0');
        await registry.put(`${ns}b`, 'b0');
        const before = await registry.list(ns);
        const result = await registry.txn(
          [
            { key: `${ns}a`, target: 'value', equals: 'a0' }, // holds
            { key: `${ns}b`, target: 'value', equals: 'nope' }, // fails: all compares must hold
          ],
          [
            { type: 'put', key: `${ns}a`, value: 'a1' },
            { type: 'delete', key: `${ns}b` },
            { type: 'put', key: `${ns}c`, value: 'c1' },
          ],
        );
        expect(result.succeeded).to.equal(false);
        expect(result.revision).to.be.at.least(before.revision);
        expect((await registry.list(ns)).kvs).to.deep.equal(before.kvs);
      });

      it('ops of a successful txn apply atomically in one revision', async () => {
        const l = await lease(30);
        await registry.put(`${ns}gone`, 'x');
        const result = await registry.txn(
          [],
          [
            { type: 'put', key: `${ns}a`, value: 'a' },
            { type: 'put', key: `${ns}b`, value: 'b', lease: l.id },
            { type: 'delete', key: `${ns}gone` },
          ],
        );
        expect(result.succeeded).to.equal(true);
        const a = await registry.get(`${ns}a`);
        const b = await registry.get(`${ns}b`);
        expect(a).to.include({ modRevision: result.revision, lease: '0' });
        expect(b).to.include({ modRevision: result.revision, lease: l.id });
        expect(await registry.get(`${ns}gone`)).to.equal(null);
      });

      it('fencing on createRevision survives value updates but not delete and re-create', async () => {
        const fence = `${ns}leader`;
        const target = `${ns}target`;
        const created = await registry.put(fence, 'me');
        const fenced = (value: string) =>
          registry.txn([{ key: fence, target: 'createRevision', equals: created }], [
            { type: 'put', key: target, value },
          ]);

        expect((await fenced('1')).succeeded).to.equal(true);
        await registry.put(fence, 'me, updated'); // same key: createRevision unchanged
        expect((await fenced('2')).succeeded).to.equal(true);
        expect((await registry.get(target))!.value).to.equal('2');

        await registry.delete(fence);
        expect((await fenced('3')).succeeded, 'fence key missing').to.equal(false);
        await registry.put(fence, 'someone else');
        expect((await fenced('4')).succeeded, 'fence key re-created').to.equal(false);
        expect((await registry.get(target))!.value).to.equal('2');
      });

      it('compares on value and modRevision, with etcd semantics for missing keys', async () => {
        const key = `${ns}k`;
        const rev = await registry.put(key, 'v1');
        const put = [{ type: 'put' as const, key: `${ns}out`, value: 'x' }];
        expect((await registry.txn([{ key, target: 'value', equals: 'v1' }], put)).succeeded).to.equal(true);
        expect((await registry.txn([{ key, target: 'value', equals: 'v2' }], put)).succeeded).to.equal(false);
        expect((await registry.txn([{ key, target: 'modRevision', equals: rev }], put)).succeeded).to.equal(true);
        await registry.put(key, 'v2');
        expect((await registry.txn([{ key, target: 'modRevision', equals: rev }], put)).succeeded).to.equal(false);

        const missing = `${ns}missing`;
        // A value compare on a missing key always fails, even against ''.
        expect((await registry.txn([{ key: missing, target: 'value', equals: '' }], put)).succeeded).to.equal(false);
        // Revisions of a missing key compare as 0.
        expect((await registry.txn([{ key: missing, target: 'modRevision', equals: 0 }], put)).succeeded).to.equal(
          true,
        );
      });

      it('modRevision compares guard a read: a rewrite with the same value, a delete or a revoked lease fails them; all must hold', async () => {
        // What the capacity guard relies on (cluster/admin.ts): compares on the mod revisions a
        // decision read, many in one txn, fail when any of those keys changed in any way since.
        const l = await lease(30);
        const keys = Array.from({ length: 40 }, (_, i) => `${ns}rec/${i}`);
        for (const key of keys) await registry.put(key, 'healthy', { lease: l.id });
        const read = await registry.list(ns);
        const unchanged = () => read.kvs.map((kv) => ({ key: kv.key, target: 'modRevision' as const, equals: kv.modRevision }));
        const write = (value: string) => [{ type: 'put' as const, key: `${ns}intent`, value }];
        // The listing's own keys plus one it did not have (compared as 0: still absent).
        const absent = { key: `${ns}rec/new`, target: 'modRevision' as const, equals: 0 };
        expect((await registry.txn([...unchanged(), absent], write('1'))).succeeded).to.equal(true);
        const current = async () => (await registry.get(`${ns}intent`))?.value;

        const fresh = await registry.list(ns);
        const guard = () => fresh.kvs.map((kv) => ({ key: kv.key, target: 'modRevision' as const, equals: kv.modRevision }));
        // The same value again (a refresh) moves the mod revision.
        await registry.put(keys[17]!, 'healthy', { lease: l.id });
        expect((await registry.txn(guard(), write('2'))).succeeded, 'after a same-value rewrite').to.equal(false);
        expect(await current()).to.equal('1');

        const again = await registry.list(ns);
        const guard2 = () => again.kvs.map((kv) => ({ key: kv.key, target: 'modRevision' as const, equals: kv.modRevision }));
        await registry.delete(keys[3]!);
        expect((await registry.txn(guard2(), write('3'))).succeeded, 'after a delete').to.equal(false);

        const third = await registry.list(ns);
        const guard3 = () => third.kvs.map((kv) => ({ key: kv.key, target: 'modRevision' as const, equals: kv.modRevision }));
        expect((await registry.txn([...guard3(), absent], write('4'))).succeeded, 'nothing changed').to.equal(true);
        await registry.put(absent.key, 'joined');
        expect((await registry.txn([...guard3(), absent], write('5'))).succeeded, 'after a create').to.equal(false);
        await registry.delete(absent.key);
        await l.revoke();
        expect((await registry.txn(guard3(), write('6'))).succeeded, 'after the lease went').to.equal(false);
        expect(await current()).to.equal('4');
      });

      it('a txn put with a dead lease rejects with LeaseLostError and applies nothing', async () => {
        const l = await lease(30);
        await l.revoke();
        await expectRejects(
          registry.txn([], [
            { type: 'put', key: `${ns}a`, value: 'a' },
            { type: 'put', key: `${ns}b`, value: 'b', lease: l.id },
          ]),
          LeaseLostError,
        );
        expect((await registry.list(ns)).kvs).to.deep.equal([]);
      });
    });

    describe('leases', () => {
      it('grant returns a decimal id and the TTL; keys carry the lease id', async () => {
        const l = await lease(5);
        expect(l.id).to.match(/^[1-9]\d*$/);
        expect(l.ttl).to.be.at.least(5);
        await registry.put(`${ns}a`, 'x', { lease: l.id });
        expect((await registry.get(`${ns}a`))!.lease).to.equal(l.id);
        const ttl = await l.keepAliveOnce();
        expect(ttl).to.be.within(1, l.ttl);
      });

      it('two leases have different ids', async () => {
        const [a, b] = await Promise.all([lease(5), lease(5)]);
        expect(a!.id).to.not.equal(b!.id);
      });

      it('a put without lease detaches the key from its lease', async () => {
        const l = await lease(30);
        await registry.put(`${ns}a`, 'x', { lease: l.id });
        await registry.put(`${ns}a`, 'y');
        expect((await registry.get(`${ns}a`))!.lease).to.equal('0');
        await l.revoke();
        expect((await registry.get(`${ns}a`))!.value).to.equal('y');
      });

      it('revoke deletes every key under the lease in one revision; a second revoke does not throw', async () => {
        const l = await lease(30);
        await registry.put(`${ns}a`, 'a', { lease: l.id });
        await registry.put(`${ns}b`, 'b', { lease: l.id });
        await registry.put(`${ns}c`, 'c');
        const { revision } = await registry.list(ns);
        const { recorder } = watch(ns, revision + 1);

        await l.revoke();
        expect(await registry.get(`${ns}a`)).to.equal(null);
        expect(await registry.get(`${ns}b`)).to.equal(null);
        expect((await registry.get(`${ns}c`))!.value).to.equal('c');
        await l.revoke();

        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => [e.type, eventKey(e)])).to.have.deep.members([
          ['delete', `${ns}a`],
          ['delete', `${ns}b`],
        ]);
        expect(eventRevision(events[0]!)).to.equal(eventRevision(events[1]!));
        expectWellFormed(recorder);
      });

      it('keepAliveOnce on a revoked lease rejects with LeaseLostError; so does put with it', async () => {
        const l = await lease(30);
        await l.revoke();
        await expectRejects(l.keepAliveOnce(), LeaseLostError);
        await expectRejects(registry.put(`${ns}a`, 'x', { lease: l.id }), LeaseLostError);
        expect(await registry.get(`${ns}a`)).to.equal(null);
      });

      it('put with a lease id that never existed rejects with LeaseLostError', async () => {
        await expectRejects(registry.put(`${ns}a`, 'x', { lease: '123456789' }), LeaseLostError);
      });

      it('leaseCount goes up on grant and down on revoke', async () => {
        // Another user of a shared server may grant or expire a lease meanwhile: allow a few tries.
        let ok = false;
        for (let attempt = 0; attempt < 3 && !ok; attempt++) {
          const before = await registry.leaseCount();
          const l = await lease(30);
          const during = await registry.leaseCount();
          await l.revoke();
          const after = await registry.leaseCount();
          ok = during === before + 1 && after === before;
        }
        expect(ok, 'leaseCount tracked one grant and one revoke').to.equal(true);
      });

      it('keepAliveOnce keeps keys alive past the TTL; without it they expire in one revision', async function () {
        this.timeout(20_000);
        const l = await lease(2);
        await registry.put(`${ns}a`, 'a', { lease: l.id });
        await registry.put(`${ns}b`, 'b', { lease: l.id });
        const { revision } = await registry.list(ns);
        const { recorder } = watch(ns, revision + 1);

        // Renew for 1.5 TTLs: the keys must outlive the original deadline.
        const renewUntil = Date.now() + 3000;
        while (Date.now() < renewUntil) {
          expect(await l.keepAliveOnce()).to.be.within(1, l.ttl);
          await sleep(500);
        }
        expect((await registry.get(`${ns}a`))!.value).to.equal('a');
        expect(recorder.events).to.deep.equal([]);

        // Stop renewing: both keys vanish together, watchers see the deletes.
        const stoppedAt = Date.now();
        await eventually('lease keys to expire', async () => (await registry.list(ns)).kvs.length === 0, 10_000, 100);
        expect(Date.now() - stoppedAt, 'expiry took').to.be.below(8000);
        const events = await recorder.waitForEvents(2);
        expect(events.map((e) => [e.type, eventKey(e)])).to.have.deep.members([
          ['delete', `${ns}a`],
          ['delete', `${ns}b`],
        ]);
        expect(eventRevision(events[0]!)).to.equal(eventRevision(events[1]!));
        expectWellFormed(recorder);

        await expectRejects(l.keepAliveOnce(), LeaseLostError);
        await expectRejects(registry.put(`${ns}c`, 'c', { lease: l.id }), LeaseLostError);
      });
    });

    describe('watch', () => {
      it('replays history from a past revision, then live events, in order', async () => {
        const w = `${ns}w/`;
        const r1 = await registry.put(`${w}a`, 'a1');
        await registry.put(`${ns}outside`, 'not watched');
        const rB = await registry.put(`${w}b`, 'b1');
        await registry.delete(`${w}a`);
        const txn = await registry.txn([], [
          { type: 'put', key: `${w}c`, value: 'c1' },
          { type: 'put', key: `${w}d`, value: 'd1' },
        ]);

        const { recorder } = watch(w, r1);
        const history = await recorder.waitForEvents(5);
        expect(history.map((e) => `${e.type} ${eventKey(e)}`)).to.deep.equal([
          `put ${w}a`,
          `put ${w}b`,
          `delete ${w}a`,
          `put ${w}c`,
          `put ${w}d`,
        ]);
        const deleteRev = eventRevision(history[2]!);
        expect(deleteRev).to.be.greaterThan(rB).and.lessThan(txn.revision);
        expect(history.map(eventRevision)).to.deep.equal([r1, rB, deleteRev, txn.revision, txn.revision]);
        const put0 = history[0]!;
        expect(put0.type === 'put' && put0.kv).to.deep.equal({
          key: `${w}a`,
          value: 'a1',
          createRevision: r1,
          modRevision: r1,
          lease: '0',
        });
        expect(recorder.connected, 'onConnected').to.be.at.least(1);

        const live1 = await registry.put(`${w}b`, 'b2');
        await registry.put(`${ns}outside`, 'still not watched');
        const live2 = await registry.txn([], [{ type: 'delete', key: `${w}c` }]);
        const all = await recorder.waitForEvents(7);
        await sleep(100); // nothing else may arrive
        expect(recorder.events.slice(5).map(describeEvent)).to.deep.equal([
          `put ${w}b@${live1}`,
          `delete ${w}c@${live2.revision}`,
        ]);
        expect(all).to.have.length(7);
        const b2 = all[5]!;
        expect(b2.type === 'put' && b2.kv.createRevision).to.equal(rB);
        expectWellFormed(recorder);
        expect(recorder.compacted).to.deep.equal([]);
        expect(recorder.errors).to.deep.equal([]);
      });

      it('from list revision + 1 sees only later writes (list-then-watch)', async () => {
        await registry.put(`${ns}a`, 'old');
        const listed = await registry.list(ns);
        const { recorder } = watch(ns, listed.revision + 1);
        await eventually('watch to connect', () => recorder.connected > 0);
        const rev = await registry.put(`${ns}b`, 'new');
        const events = await recorder.waitForEvents(1);
        await sleep(100);
        expect(recorder.events.map(describeEvent)).to.deep.equal([`put ${ns}b@${rev}`]);
        expect(events).to.have.length(1);
      });

      it('never delivers an event synchronously inside the write', async () => {
        const { recorder } = watch(ns, (await registry.list(ns)).revision + 1);
        await eventually('watch to connect', () => recorder.connected > 0);
        const pending = registry.put(`${ns}a`, 'x');
        expect(recorder.events, 'delivered during put()').to.deep.equal([]);
        await pending;
        await recorder.waitForEvents(1);
      });

      it('cancel stops delivery', async () => {
        const { recorder, handle } = watch(ns, (await registry.list(ns)).revision + 1);
        await registry.put(`${ns}a`, '1');
        await recorder.waitForEvents(1);
        await handle.cancel();
        await registry.put(`${ns}a`, '2');
        await registry.delete(`${ns}a`);
        await sleep(300);
        expect(recorder.events).to.have.length(1);
        await handle.cancel(); // idempotent
      });

      it('two watches on overlapping prefixes each get their events', async () => {
        const start = (await registry.list(ns)).revision + 1;
        const outer = watch(ns, start).recorder;
        const inner = watch(`${ns}in/`, start).recorder;
        await registry.put(`${ns}x`, '1');
        await registry.put(`${ns}in/y`, '2');
        await outer.waitForEvents(2);
        await inner.waitForEvents(1);
        await sleep(100);
        expect(outer.events.map(eventKey)).to.deep.equal([`${ns}x`, `${ns}in/y`]);
        expect(inner.events.map(eventKey)).to.deep.equal([`${ns}in/y`]);
      });

      it('from a compacted revision calls onCompacted and ends the watch', async function () {
        if (!subject.compact) this.skip();
        const first = await registry.put(`${ns}a`, '1');
        await registry.put(`${ns}a`, '2');
        const last = await registry.put(`${ns}a`, '3');
        await subject.compact!(last);

        const stale = watch(ns, first).recorder;
        await eventually('onCompacted', () => stale.compacted.length > 0);
        expect(stale.compacted).to.have.length(1);
        expect(stale.compacted[0], 'reported compact revision').to.be.at.least(last);
        expect(stale.events).to.deep.equal([]);

        // The compaction revision itself is still watchable.
        const fresh = watch(ns, last).recorder;
        const events = await fresh.waitForEvents(1);
        expect(events.map(describeEvent)).to.deep.equal([`put ${ns}a@${last}`]);
        expect(fresh.compacted).to.deep.equal([]);

        await registry.put(`${ns}a`, '4');
        await fresh.waitForEvents(2);
        await sleep(100);
        expect(stale.events, 'a compacted watch is over').to.deep.equal([]);
        expect(stale.compacted).to.have.length(1);
      });
    });

    describe('status', () => {
      it('reports the store revision, a version and the endpoint', async () => {
        const rev = await registry.put(`${ns}a`, 'x');
        const status = await registry.status();
        expect(status.revision).to.be.at.least(rev);
        expect(status.version).to.be.a('string').and.not.equal('');
        expect(status.endpoint).to.be.a('string').and.not.equal('');
        if (registry.kind !== 'memory') expect(status.version).to.match(/^\d+\.\d+\.\d+/);
        else expect(status.version).to.equal('memory');
      });

      it('kind and description are set', () => {
        expect(['etcd', 'memory', 'redis']).to.include(registry.kind);
        expect(registry.description).to.be.a('string').and.not.equal('');
      });
    });
  });
}
