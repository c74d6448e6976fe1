import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisRegistry } from '../../src/registry/redis.js';
import { RegistryAuthError, RegistryUnavailableError } from '../../src/registry/types.js';
import { freePorts } from '../helpers/etcd.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { makePki, type Pki } from './pki.js';

/** rediss:// against a real redis-server with TLS on, certificates from a throwaway CA. */
describe('Redis registry over TLS (rediss://)', function () {
  this.timeout(30_000);
  let pki: Pki;
  let server: RedisServer;
  let tlsPort: number;

  before(async () => {
    pki = makePki(mkdtempSync(join(tmpdir(), 'sd-redis-pki-')));
    [tlsPort] = (await freePorts(1)) as [number];
    server = await startRedis({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', pki.serverCert, '--tls-key-file', pki.serverKey, '--tls-ca-cert-file', pki.ca, '--tls-auth-clients', 'no'],
    });
  });
  after(async () => {
    await server?.stop();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  async function failure(r: RedisRegistry): Promise<Error> {
    try {
      await r.put('a', 'b');
    } catch (err) {
      return err as Error;
    } finally {
      await r.close();
    }
    throw new Error('expected a rejection');
  }

  it('works with the CA that signed the server certificate', async () => {
    const r = new RedisRegistry({ endpoint: `rediss://127.0.0.1:${tlsPort}`, tls: { ca: pki.ca } });
    try {
      expect(await r.put('a', 'b')).to.be.greaterThan(1);
    } finally {
      await r.close();
    }
  });

  it('an untrusted server certificate is a RegistryAuthError naming the CA setting', async () => {
    const err = await failure(new RedisRegistry({ endpoint: `rediss://127.0.0.1:${tlsPort}`, tls: { ca: pki.otherCa }, callTimeoutMs: 2000 }));
    expect(err, String(err)).to.be.instanceOf(RegistryAuthError);
    expect(err.message).to.match(new RegExp(`^registry rediss://127\\.0\\.0\\.1:${tlsPort} is not trusted: .*--registry-ca`));
  });

  it('rediss:// to a plain port is one line that suggests redis://', async () => {
    const err = await failure(new RedisRegistry({ endpoint: `rediss://127.0.0.1:${server.port}`, tls: { ca: pki.ca }, callTimeoutMs: 2000 }));
    expect(err, String(err)).to.be.instanceOf(RegistryUnavailableError);
    expect(err.message.split('\n')).to.have.length(1);
    expect(err.message).to.match(/use redis:\/\/ instead of rediss:\/\//);
  });
});
