import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as UndiciAgent } from 'undici';
import { runAgent } from '../../src/agent/run.js';
import { loadApiAuth, type ApiAuthOptions } from '../../src/api/auth.js';
import { startApiServer } from '../../src/api/server.js';
import { resolveConfig } from '../../src/config/load.js';
import { makePki, type Pki } from '../security/pki.js';
import { TestCluster, capturingLogger, eventually, http } from './fixtures.js';

/** The error a request fails with, or undefined when it succeeds. */
async function failure(request: Promise<unknown>): Promise<Error | undefined> {
  try {
    await request;
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

describe('API server: TLS', function () {
  let dir: string;
  let cluster: TestCluster;
  let pki: Pki;

  before(async function () {
    this.timeout(30_000);
    dir = await mkdtemp(join(tmpdir(), 'sd-tls-'));
    pki = makePki(dir);
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

  it('takes HTTPS from the api.tls settings and keys from the api settings, as the agent command does', async function () {
    const { config } = resolveConfig({
      env: { SERVICE_DISCOVERY_API_KEY: 'settings-key-1234' },
      flags: { 'api-tls-cert': pki.serverCert, 'api-tls-key': pki.serverKey, 'api-port': '0' },
    });
    const logger = capturingLogger();
    const api = await startApiServer(cluster.agents[0]!, {
      host: config.api.host,
      port: config.api.port,
      auth: loadApiAuth(config.api),
      tls: config.api.tls,
      logger,
    });
    const dispatcher = new UndiciAgent({ connect: { ca: await readFile(pki.ca) } });
    try {
      expect(api.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect((await http(`${api.url}/service-discovery/status`, { dispatcher })).status).to.equal(200);
      const refused = await http(`${api.url}/service-discovery/services/tls-a/disable`, { method: 'POST', dispatcher });
      expect(refused.status).to.equal(401);
      const allowed = await http(`${api.url}/service-discovery/services/tls-a/enable`, {
        method: 'POST',
        headers: { 'X-API-Key': 'settings-key-1234' },
        dispatcher,
      });
      expect(allowed.status, allowed.text).to.equal(200);
      expect(logger.lines.join('\n')).to.include('"tls":true').and.not.include('settings-key-1234');
    } finally {
      await dispatcher.close();
      await api.close();
    }
  });

  it('with api.tls.ca, requires a client certificate from that CA (mTLS); API keys still apply', async function () {
    const { config } = resolveConfig({
      env: {},
      flags: { 'api-tls-cert': pki.serverCert, 'api-tls-key': pki.serverKey, 'api-tls-ca': pki.ca, 'api-key': 'mtls-key-5678' },
    });
    const logger = capturingLogger();
    const api = await startApiServer(cluster.agents[0]!, { host: '127.0.0.1', port: 0, auth: loadApiAuth(config.api), tls: config.api.tls, logger });
    const ca = await readFile(pki.ca);
    const withCert = new UndiciAgent({ connect: { ca, cert: await readFile(pki.clientCert), key: await readFile(pki.clientKey) } });
    const withoutCert = new UndiciAgent({ connect: { ca } });
    const wrongCa = new UndiciAgent({ connect: { ca, cert: await readFile(pki.otherClientCert), key: await readFile(pki.otherClientKey) } });
    try {
      const ok = await http(`${api.url}/service-discovery/status`, { dispatcher: withCert });
      expect(ok.status).to.equal(200);
      // The handshake itself refuses these: no HTTP answer at all, so nothing is read or logged as a request.
      expect(await failure(http(`${api.url}/service-discovery/status`, { dispatcher: withoutCert }))).to.be.instanceOf(Error);
      expect(await failure(http(`${api.url}/service-discovery/status`, { dispatcher: wrongCa }))).to.be.instanceOf(Error);
      const noKey = await http(`${api.url}/service-discovery/services/tls-a/disable`, { method: 'POST', dispatcher: withCert });
      expect(noKey.status).to.equal(401);
      const withKey = await http(`${api.url}/service-discovery/services/tls-a/enable`, {
        method: 'POST',
        headers: { Authorization: 'Bearer mtls-key-5678' },
        dispatcher: withCert,
      });
      expect(withKey.status, withKey.text).to.equal(200);
      expect(logger.lines.join('\n')).to.include('"clientCerts":true');
    } finally {
      await Promise.all([withCert.close(), withoutCert.close(), wrongCa.close()]);
      await api.close();
    }
  });

  it('the agent command serves HTTPS, key-file keys and viewer-only reads from its flags', async function () {
    const keyFile = join(dir, 'agent-keys.txt');
    await writeFile(keyFile, 'grafana:viewer:agent-viewer-key\nci:operator:agent-operator-key\n');
    const logger = capturingLogger();
    let stop!: () => void;
    const until = new Promise<void>((resolve) => (stop = resolve));
    const running = runAgent({
      env: {},
      until,
      logger,
      flags: {
        registry: 'memory',
        'service-id': 'run-tls',
        'api-port': '0',
        'api-tls-cert': pki.serverCert,
        'api-tls-key': pki.serverKey,
        'api-key-file': keyFile,
        'api-read-access': 'viewer',
        'health-url': 'http://127.0.0.1:1/health',
      },
    });
    const dispatcher = new UndiciAgent({ connect: { ca: await readFile(pki.ca) } });
    try {
      // The API listens before the agent registers: the disable below needs the registered record.
      await eventually('the agent started', () => logger.lines.some((l) => l.includes('"agent.started"')));
      const url = await eventually('the API URL in the log', () => /"url":"(https:[^"]+)"/.exec(logger.lines.find((l) => l.includes('api.listening')) ?? '')?.[1]);
      expect((await http(`${url}/service-discovery/status`, { dispatcher })).status, 'viewer read access: no key, no read').to.equal(401);
      const read = await http(`${url}/service-discovery/status`, { dispatcher, headers: { 'X-API-Key': 'agent-viewer-key' } });
      expect(read.status).to.equal(200);
      const viewerWrite = await http(`${url}/service-discovery/services/run-tls/disable`, { method: 'POST', dispatcher, headers: { 'X-API-Key': 'agent-viewer-key' } });
      expect(viewerWrite.status).to.equal(403);
      const write = await http(`${url}/service-discovery/services/run-tls/disable`, { method: 'POST', dispatcher, headers: { 'X-API-Key': 'agent-operator-key' } });
      expect(write.status, write.text).to.equal(200);
      const [entry] = ((await http(`${url}/service-discovery/audit`, { dispatcher, headers: { 'X-API-Key': 'agent-viewer-key' } })).json as { entries: { actor: string }[] }).entries;
      expect(entry!.actor).to.equal('ci');
    } finally {
      stop();
      expect(await running).to.equal(0);
      await dispatcher.close();
    }
    expect(logger.lines.join('\n')).to.not.include('agent-operator-key').and.not.include('agent-viewer-key');
  });

  it('refuses half a TLS configuration at start, naming what is missing', async function () {
    const agent = cluster.agents[0]!;
    const auth: ApiAuthOptions = { keys: [], readAccess: 'open' };
    const start = (tls: { cert?: string; key?: string; ca?: string }) =>
      failure(startApiServer(agent, { host: '127.0.0.1', port: 0, auth, tls }).then((api) => api.close()));
    expect((await start({ cert: pki.serverCert }))?.message).to.equal(
      'API TLS needs a certificate and a key file (--api-tls-cert, --api-tls-key); missing: the key',
    );
    expect((await start({ ca: pki.ca }))?.message).to.equal(
      'API TLS needs a certificate and a key file (--api-tls-cert, --api-tls-key); missing: the certificate and the key',
    );
    // No file set at all is plain HTTP, which is what an unset api.tls gives.
    expect(await start({})).to.equal(undefined);
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
