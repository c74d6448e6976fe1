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

  describe('a server that requires client certificates (mutual TLS)', () => {
    let mtls: RedisServer;
    let mtlsPort: number;
    before(async () => {
      [mtlsPort] = (await freePorts(1)) as [number];
      mtls = await startRedis({
        args: ['--tls-port', String(mtlsPort), '--tls-cert-file', pki.serverCert, '--tls-key-file', pki.serverKey, '--tls-ca-cert-file', pki.ca, '--tls-auth-clients', 'yes'],
      });
    });
    after(async () => {
      await mtls?.stop();
    });

    it('works with a client certificate from the CA it trusts', async () => {
      const r = new RedisRegistry({ endpoint: `rediss://127.0.0.1:${mtlsPort}`, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
      try {
        expect(await r.put('a', 'b')).to.be.greaterThan(1);
      } finally {
        await r.close();
      }
    });

    it('without a client certificate: a RegistryAuthError saying to set one', async () => {
      const err = await failure(new RedisRegistry({ endpoint: `rediss://127.0.0.1:${mtlsPort}`, tls: { ca: pki.ca }, callTimeoutMs: 2000 }));
      expect(err, String(err)).to.be.instanceOf(RegistryAuthError);
      // Which comes first, the server's alert or the reset of the call written meanwhile, is timing.
      expect(err.message).to.match(
        /(refused the TLS handshake \(certificate required\): it requires|reset the TLS connection before answering: it may require) a client certificate \(set --registry-cert and --registry-key\)$/,
      );
    });

    it('with a client certificate it does not trust: a RegistryAuthError saying so, not "set one"', async () => {
      const err = await failure(
        new RedisRegistry({ endpoint: `rediss://127.0.0.1:${mtlsPort}`, tls: { ca: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey }, callTimeoutMs: 2000 }),
      );
      expect(err, String(err)).to.be.instanceOf(RegistryAuthError);
      expect(err.message).to.match(
        /(refused the TLS handshake \(.*\): it does not|reset the TLS connection before answering: it may not) accept the client certificate \(--registry-cert must be signed by a CA the server trusts\)$/,
      );
    });
  });
});
