import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as UndiciAgent } from 'undici';
import { startApiServer } from '../../src/api/server.js';
import { TestCluster, http } from './fixtures.js';

describe('API server: TLS', function () {
  let dir: string;
  let cluster: TestCluster;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'sd-tls-'));
    // A throwaway self-signed certificate for 127.0.0.1.
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    cluster = await TestCluster.memory();
    await cluster.addAgent({ id: 'tls-a' });
  });

  after(async function () {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves HTTPS from cert/key files', async function () {
    const api = await startApiServer(cluster.agents[0]!, {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
      auth: { keys: [{ name: 'ops', role: 'operator', key: 'tls-test-key' }], readAccess: 'open' },
    });
    const dispatcher = new UndiciAgent({ connect: { ca: await readFile(join(dir, 'cert.pem')) } });
    try {
      expect(api.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await http(`${api.url}/service-discovery/status`, { dispatcher });
      expect(res.status).to.equal(200);
      expect((res.json as { currentService: { id: string } }).currentService.id).to.equal('tls-a');
      const write = await http(`${api.url}/service-discovery/services/tls-a/disable`, {
        method: 'POST',
        headers: { Authorization: 'Bearer tls-test-key' },
        dispatcher,
      });
      expect(write.status, write.text).to.equal(200);
      // Without trusting the certificate, the client refuses it; plain HTTP gets no API answer.
      let refused: unknown;
      try {
        await http(`${api.url}/service-discovery/status`);
      } catch (err) {
        refused = err;
      }
      expect(refused, 'an untrusted self-signed certificate is refused').to.be.instanceOf(Error);
      let plain: unknown;
      try {
        const r = await http(api.url.replace('https:', 'http:') + '/service-discovery/status');
        plain = r.status;
      } catch (err) {
        plain = err;
      }
      expect(plain).to.not.equal(200);
    } finally {
      await dispatcher.close();
      await api.close();
    }
  });

  it('fails clearly when a certificate file is missing', async function () {
    let error: Error | undefined;
    try {
      await startApiServer(cluster.agents[0]!, {
        host: '127.0.0.1',
        port: 0,
        tls: { cert: join(dir, 'nope.pem'), key: join(dir, 'key.pem') },
        auth: { keys: [], readAccess: 'open' },
      });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/^cannot read the TLS certificate .*nope\.pem: ENOENT$/);
  });
});
