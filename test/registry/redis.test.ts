import { expect } from 'chai';
import { RedisRegistry } from '../../src/registry/redis.js';
import { LeaseLostError, RegistryAuthError, RegistryUnavailableError, type RegistryWarning } from '../../src/registry/types.js';
import { uniqueNamespace, untilStopped } from '../helpers/etcd.js';
import { randomStorePrefix, sharedRedis, startRedis, type RedisServer } from '../helpers/redis.js';
import { WatchRecorder, eventKey, eventually, registryContract, sleep } from './contract.js';

registryContract('redis', async () => {
  const server = await sharedRedis();
  const registry = new RedisRegistry({ endpoint: server.endpoint, callTimeoutMs: 3000, storePrefix: randomStorePrefix() });
  return {
    registry,
    cleanup: () => registry.close(),
    compact: (revision) => registry.compact(revision),
  };
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error,
  );
}

describe('RedisRegistry specifics', function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => {
    server = await sharedRedis();
  });

  it('a refused connection is one line naming the endpoint, without waiting for the timeout', async () => {
    const closed = new RedisRegistry({ endpoint: 'redis://127.0.0.1:1', callTimeoutMs: 3000 });
    try {
      const started = Date.now();
      const err = await failure(closed.get('x'));
      expect(err).to.be.instanceOf(RegistryUnavailableError);
      expect(err.message).to.equal('registry redis://127.0.0.1:1 unreachable: connect ECONNREFUSED 127.0.0.1:1');
      expect(Date.now() - started).to.be.below(2500);
    } finally {
      await closed.close();
    }
  });

  it('a delete event carries the previous value; watchers of another client see writes at once (Pub/Sub)', async () => {
    const prefix = randomStorePrefix();
    const a = new RedisRegistry({ endpoint: server.endpoint, storePrefix: prefix, pollIntervalMs: 60_000 });
    const b = new RedisRegistry({ endpoint: server.endpoint, storePrefix: prefix, pollIntervalMs: 60_000 });
    try {
      const ns = `${uniqueNamespace('prev')}/`;
      const start = await a.put(`${ns}a`, 'first');
      const rec = new WatchRecorder();
      const handle = b.watchPrefix(ns, start + 1, rec);
      await eventually('watch connected', () => rec.connected > 0);
      await a.put(`${ns}a`, 'second');
      await a.delete(`${ns}a`);
      // The poll interval is a minute: only Pub/Sub can deliver these in time.
      const events = await rec.waitForEvents(2, 3000);
      expect(events[1]).to.deep.include({ type: 'delete', key: `${ns}a`, prevValue: 'second' });
      await handle.cancel();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('an expired lease is gone for every caller at its deadline, even before any watcher polls', async () => {
    const registry = new RedisRegistry({ endpoint: server.endpoint, storePrefix: randomStorePrefix() });
    try {
      const lease = await registry.grantLease(1);
      await registry.put('k', 'v', { lease: lease.id });
      await sleep(1100);
      // A compare-and-swap right after the deadline: the key must already count as absent.
      const res = await registry.txn([{ key: 'k', target: 'createRevision', equals: 0 }], [{ type: 'put', key: 'k', value: 'mine' }]);
      expect(res.succeeded).to.equal(true);
      const err = await failure(lease.keepAliveOnce());
      expect(err).to.be.instanceOf(LeaseLostError);
    } finally {
      await registry.close();
    }
  });

  it('a store that lost its data (FLUSHALL) makes watches re-list (onCompacted)', async () => {
    const own = await startRedis();
    const registry = new RedisRegistry({ endpoint: own.endpoint, pollIntervalMs: 200 });
    try {
      const first = await registry.put('a', '1');
      await registry.put('b', '1');
      const rec = new WatchRecorder();
      const handle = registry.watchPrefix('', first + 2, rec);
      await eventually('connected', () => rec.connected > 0);
      const { Redis } = await import('ioredis');
      const raw = new Redis(own.endpoint);
      await raw.flushall();
      raw.disconnect();
      await registry.put('c', '1');
      await eventually('onCompacted', () => rec.compacted.length > 0);
      await handle.cancel();
    } finally {
      await registry.close();
      await own.stop();
    }
  });

  it('garbage under the store prefix does not crash a list', async () => {
    const prefix = randomStorePrefix();
    const registry = new RedisRegistry({ endpoint: server.endpoint, storePrefix: prefix });
    const { Redis } = await import('ioredis');
    const raw = new Redis(server.endpoint);
    try {
      await registry.put('ns/good', 'ok');
      // A key listed in the index whose hash is missing, and a stray string key.
      await raw.zadd(`${prefix}keys`, 0, 'ns/ghost');
      await raw.set(`${prefix}kv:ns/stray`, 'not a hash');
      const res = await registry.list('ns/');
      expect(res.kvs.map((kv) => kv.key)).to.deep.equal(['ns/good']);
    } finally {
      raw.disconnect();
      await registry.close();
    }
  });
});

describe('RedisRegistry authentication', function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => {
    server = await startRedis({
      password: 's3cret',
      args: [
        ...['--user', 'sd', 'on', '>sdpass', '~*', '&*', '+@all'],
        ...['--user', 'reader', 'on', '>rpass', '~*', '&*', '+@read'],
        ...['--user', 'scripter', 'on', '>spass', '~*', '&*', '+eval', '+evalsha', '+ping'],
      ],
    });
    // The least-privilege user docs/redis.md recommends.
    await ACL(server, ['SETUSER', 'least', 'on', '>lpass', '~proxy-stone-sd:*', '&proxy-stone-sd:*', '+@read', '+@write', '-@dangerous', '+@scripting', '+@pubsub', '+time', '+info', '+ping']);
  });
  after(async () => {
    await server?.stop();
  });
  const port = () => server.port;

  it('the right password (in the URL) works', async () => {
    const r = new RedisRegistry({ endpoint: `redis://:s3cret@127.0.0.1:${port()}` });
    try {
      expect(await r.put('a', 'b')).to.be.greaterThan(1);
    } finally {
      await r.close();
    }
  });

  it('an ACL user and password given apart from the URL work', async () => {
    const r = new RedisRegistry({ endpoint: `redis://127.0.0.1:${port()}`, username: 'sd', password: 'sdpass' });
    try {
      expect((await r.status()).version).to.match(/^\d+\.\d+/);
    } finally {
      await r.close();
    }
  });

  for (const [what, endpoint, expected] of [
    ['a wrong password', (p: number) => `redis://:nope@127.0.0.1:${p}`, /refused: wrong user name or password$/],
    ['no password', (p: number) => `redis://127.0.0.1:${p}`, /refused: it requires a password/],
    ['a user without the needed commands', (p: number) => `redis://reader:rpass@127.0.0.1:${p}`, /refused: .*the ACL user needs '~proxy-stone-sd/],
    ['a user who may run scripts but not the commands inside them', (p: number) => `redis://scripter:spass@127.0.0.1:${p}`, /refused: The user executing the script can't run this command or subcommand \(the ACL user needs/],
  ] as const) {
    it(`${what}: RegistryAuthError, one line, no secret`, async () => {
      const url = endpoint(port());
      const r = new RedisRegistry({ endpoint: url, callTimeoutMs: 2000 });
      try {
        const err = await failure(r.put('a', 'b'));
        expect(err, String(err)).to.be.instanceOf(RegistryAuthError);
        expect(err.message).to.match(expected);
        expect(err.message).to.not.match(/nope|rpass|spass|s3cret/);
        expect(err.message).to.include(`redis://127.0.0.1:${port()}`);
        expect(err.message.split('\n')).to.have.length(1);
      } finally {
        await r.close();
      }
    });
  }

  it("the least-privilege ACL user of docs/redis.md can do everything the agent does", async () => {
    const r = new RedisRegistry({ endpoint: `redis://least:lpass@127.0.0.1:${port()}`, callTimeoutMs: 2000 });
    try {
      const lease = await r.grantLease(5);
      const rec = new WatchRecorder();
      const handle = r.watchPrefix('acl/', 0, rec);
      await eventually('connected', () => rec.connected > 0);
      await r.txn([{ key: 'acl/k', target: 'createRevision', equals: 0 }], [{ type: 'put', key: 'acl/k', value: 'v', lease: lease.id }]);
      expect(await lease.keepAliveOnce()).to.equal(5);
      await lease.revoke();
      await rec.waitForEvents(2);
      expect((await r.status()).version).to.match(/^\d+\./);
      expect(await r.leaseCount()).to.be.a('number');
      await handle.cancel();
    } finally {
      await r.close();
    }
  });

  it('a password alone that the server needs works, without a warning', async () => {
    const warnings: RegistryWarning[] = [];
    const r = new RedisRegistry({ endpoint: `redis://127.0.0.1:${port()}`, password: 's3cret', onWarning: (w) => warnings.push(w) });
    try {
      expect(await r.put('a', 'b')).to.be.greaterThan(1);
      expect((await r.status()).version).to.match(/^\d+\./);
      expect(warnings).to.deep.equal([]);
    } finally {
      await r.close();
    }
  });

  it('refused credentials are retried on the next call: a password added on the server later is picked up', async () => {
    const r = new RedisRegistry({ endpoint: `redis://:later@127.0.0.1:${port()}`, callTimeoutMs: 2000 });
    const { Redis } = await import('ioredis');
    const admin = new Redis(`redis://:s3cret@127.0.0.1:${port()}`);
    try {
      expect(await failure(r.put('a', 'b'))).to.be.instanceOf(RegistryAuthError);
      await admin.call('ACL', 'SETUSER', 'default', '>later');
      expect(await eventually('the new password accepted', () => r.put('a', 'b').catch(() => undefined), 5000, 100)).to.be.greaterThan(1);
    } finally {
      admin.disconnect();
      await r.close();
    }
  });
});

async function ACL(server: RedisServer, args: string[]): Promise<void> {
  const { Redis } = await import('ioredis');
  const admin = new Redis(`redis://:s3cret@127.0.0.1:${server.port}`);
  try {
    await admin.call('ACL', ...args);
  } finally {
    admin.disconnect();
  }
}

describe('RedisRegistry with a password the server does not need', function () {
  this.timeout(30_000);
  let server: RedisServer;
  // ioredis reports an unneeded AUTH with console.warn; this spy (tests only) shows that it no longer does.
  let ioredisWarnings: unknown[][];
  let consoleWarn: typeof console.warn;
  beforeEach(() => {
    ioredisWarnings = [];
    consoleWarn = console.warn;
    console.warn = (...args: unknown[]) => void ioredisWarnings.push(args);
  });
  afterEach(() => {
    console.warn = consoleWarn;
  });
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  for (const [how, options] of [
    ['in the URL', (p: number) => ({ endpoint: `redis://:not-needed@127.0.0.1:${p}` })],
    ['as an option', (p: number) => ({ endpoint: `redis://127.0.0.1:${p}`, password: 'not-needed' })],
  ] as const) {
    it(`given ${how}: calls work, and onWarning hears it once (registry.auth_unneeded), ioredis says nothing`, async () => {
      const warnings: RegistryWarning[] = [];
      const r = new RedisRegistry({ ...options(server.port), callTimeoutMs: 2000, storePrefix: randomStorePrefix(), onWarning: (w) => warnings.push(w) });
      try {
        expect(await r.put('a', 'b')).to.be.greaterThan(0);
        // Known with the first answer: the check rides on the connection's handshake.
        expect(warnings.map((w) => w.event)).to.deep.equal(['registry.auth_unneeded']);
        const rec = new WatchRecorder();
        const handle = r.watchPrefix('a', 0, rec);
        await eventually('watch connected', () => rec.connected > 0);
        await r.put('a', 'c');
        await rec.waitForEvents(1);
        await handle.cancel();
        expect(warnings).to.have.length(1);
        expect(warnings[0]!.message).to.equal(
          `registry redis://127.0.0.1:${server.port} requires no password, but one was given: it is not needed; if this server should require one, check its requirepass or ACL setup`,
        );
        expect(ioredisWarnings).to.deep.equal([]);
      } finally {
        await r.close();
      }
    });
  }

  it('says it once per registry, also across a reconnect', async () => {
    const warnings: RegistryWarning[] = [];
    const r = new RedisRegistry({ endpoint: `redis://127.0.0.1:${server.port}`, password: 'not-needed', callTimeoutMs: 2000, storePrefix: randomStorePrefix(), onWarning: (w) => warnings.push(w) });
    try {
      await r.put('a', 'b');
      await server.restart();
      expect(await eventually('a call after the restart', () => r.put('a', 'c').catch(() => undefined), 10_000, 100)).to.be.greaterThan(0);
      expect(warnings).to.have.length(1);
      expect(ioredisWarnings).to.deep.equal([]);
    } finally {
      await r.close();
    }
  });
});

describe('RedisRegistry with a failing Redis', function () {
  this.timeout(60_000);
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });

  it('a frozen Redis (SIGSTOP) fails calls within the timeout; SIGCONT recovers', async () => {
    const registry = new RedisRegistry({ endpoint: server.endpoint, callTimeoutMs: 1000 });
    try {
      await registry.put('a', '1');
      const pid = server.pid;
      server.kill('SIGSTOP');
      try {
        await untilStopped(pid);
        const started = Date.now();
        const err = await failure(registry.get('a'));
        expect(err).to.be.instanceOf(RegistryUnavailableError);
        expect(err.message).to.equal(`registry ${server.endpoint} unreachable: no answer within 1000ms`);
        expect(Date.now() - started).to.be.below(3000);
      } finally {
        server.kill('SIGCONT');
      }
      const kv = await eventually('answers again', () => registry.get('a').catch(() => undefined), 10_000, 200);
      expect(kv!.value).to.equal('1');
    } finally {
      await registry.close();
    }
  });

  it('kill -9 and restart on the same dir: data survives (AOF), the watch resumes without gaps', async () => {
    const registry = new RedisRegistry({ endpoint: server.endpoint, callTimeoutMs: 1000, pollIntervalMs: 200 });
    try {
      const ns = `${uniqueNamespace('restart')}/`;
      const first = await registry.put(`${ns}a`, '1');
      const rec = new WatchRecorder();
      const handle = registry.watchPrefix(ns, first + 1, rec);
      await eventually('connected', () => rec.connected > 0);
      await registry.put(`${ns}b`, '1');
      await rec.waitForEvents(1);
      server.kill('SIGKILL');
      const err = await eventually('a call to fail', () => registry.get(`${ns}a`).then(() => undefined, (e: unknown) => e as Error), 10_000, 100);
      expect(err).to.be.instanceOf(RegistryUnavailableError);
      await eventually('watch told of the disconnect', () => rec.disconnected.length > 0);
      await server.restart();
      const kv = await eventually('answers after restart', () => registry.get(`${ns}a`).catch(() => undefined), 15_000, 200);
      expect(kv).to.include({ value: '1', modRevision: first });
      await registry.put(`${ns}c`, '1');
      await rec.waitForEvents(2, 15_000);
      expect(rec.events.map(eventKey)).to.deep.equal([`${ns}b`, `${ns}c`]);
      expect(rec.compacted).to.deep.equal([]);
      expect(rec.connected).to.be.at.least(2);
      await handle.cancel();
    } finally {
      await registry.close();
    }
  });
});
