import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceAgent } from '../../src/agent/agent.js';
import { ApiAuthConfigError, ApiAuthenticator, loadApiAuth, parseKeyFile, type ApiAuthOptions } from '../../src/api/auth.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { ConfigError, configFromPartial, resolveConfig } from '../../src/config/load.js';
import { TestCluster, capturingLogger, eventually, http, postJson } from './fixtures.js';

const OPERATOR = 'operator-secret-5f1c9a7e3b';
const VIEWER = 'viewer-secret-0d8e2b6c41';

describe('API auth: API keys, roles and read access', function () {
  let cluster: TestCluster;
  let agent: ServiceAgent;
  const servers: ApiServer[] = [];
  const logger = capturingLogger();

  async function serve(auth: ApiAuthOptions): Promise<string> {
    const api = await startApiServer(agent, { host: '127.0.0.1', port: 0, auth, logger });
    servers.push(api);
    return api.url;
  }

  const keys = [
    { name: 'deployer', role: 'operator' as const, key: OPERATOR },
    { name: 'dashboard', role: 'viewer' as const, key: VIEWER },
  ];

  before(async function () {
    cluster = await TestCluster.memory();
    agent = await cluster.addAgent({ id: 'auth-a' });
    // Several API servers on one agent here; each adds its listeners.
    agent.setMaxListeners(50);
    await cluster.addAgent({ id: 'auth-b' });
    await cluster.settled(2);
  });

  after(async function () {
    await Promise.all(servers.map((s) => s.close()));
    await cluster?.stop();
    // Secrets never reach the log, whatever happened above.
    const log = logger.lines.join('\n');
    expect(log).to.not.include(OPERATOR);
    expect(log).to.not.include(VIEWER);
    expect(log).to.not.include('wrong-key-123');
  });

  async function auditCount(): Promise<number> {
    return (await agent.getAudit({ serviceId: 'auth-b' })).length;
  }

  it('readAccess viewer: reads need a key (401 + WWW-Authenticate), any valid role reads', async function () {
    const base = await serve({ keys, readAccess: 'viewer' });
    const anon = await http(`${base}/service-discovery/services`);
    expect(anon.status).to.equal(401);
    expect(anon.headers['www-authenticate']).to.match(/^Bearer/);
    expect(anon.json).to.deep.equal({
      error: 'unauthorized',
      message: 'missing API key: send "Authorization: Bearer <key>" or "X-API-Key: <key>"',
    });
    expect((await http(`${base}/service-discovery/services`, { headers: { Authorization: `Bearer ${VIEWER}` } })).status).to.equal(200);
    expect((await http(`${base}/service-discovery/services`, { headers: { 'X-API-Key': OPERATOR } })).status).to.equal(200);
    expect((await http(`${base}/metrics`)).status).to.equal(401);
    // Orchestrator probes and the document stay open.
    expect((await http(`${base}/health`)).status).to.equal(200);
    expect((await http(`${base}/health/live`)).status).to.equal(200);
    expect((await http(`${base}/service-discovery/openapi.json`)).status).to.equal(200);
  });

  it('readAccess open: reads need no key, but a wrong key is still refused', async function () {
    const base = await serve({ keys, readAccess: 'open' });
    expect((await http(`${base}/service-discovery/topology`)).status).to.equal(200);
    const wrong = await http(`${base}/service-discovery/topology`, { headers: { Authorization: 'Bearer wrong-key-123' } });
    expect(wrong.status).to.equal(401);
    expect(wrong.json).to.deep.equal({ error: 'unauthorized', message: 'invalid API key' });
    expect(wrong.text).to.not.include('wrong-key-123');
    const basic = await http(`${base}/service-discovery/topology`, { headers: { Authorization: 'Basic Zm9vOmJhcg==' } });
    expect(basic.status).to.equal(401);
  });

  it('writes: 401 without a key, 401 with a wrong one, 403 for a viewer; nothing changes', async function () {
    const base = await serve({ keys, readAccess: 'open' });
    const url = `${base}/service-discovery/services/auth-b/disable`;
    const before = await auditCount();

    const none = await postJson(url, { reason: 'x' });
    expect(none.status).to.equal(401);
    expect(none.headers['www-authenticate']).to.match(/^Bearer/);
    const wrong = await postJson(url, { reason: 'x' }, { Authorization: 'Bearer wrong-key-123' });
    expect(wrong.status).to.equal(401);
    const viewer = await postJson(url, { reason: 'x' }, { 'X-API-Key': VIEWER });
    expect(viewer.status).to.equal(403);
    expect(viewer.json).to.deep.equal({
      error: 'forbidden',
      message: 'API key "dashboard" has role viewer; this action needs role operator',
    });
    // A refused request is refused before its body is even read: a bad body does not change that.
    expect((await postJson(url, { nonsense: true })).status).to.equal(401);

    expect(await auditCount()).to.equal(before);
    expect(agent.view.service('auth-b')?.enabled).to.equal(true);

    const ok = await postJson(url, { reason: 'x' }, { Authorization: `bearer ${OPERATOR}` });
    expect(ok.status, ok.text).to.equal(200);
    const [entry] = await agent.getAudit({ serviceId: 'auth-b', limit: 1 });
    expect(entry).to.include({ actor: 'deployer', action: 'disable', changed: true, source: '127.0.0.1' });
    expect(await auditCount()).to.equal(before + 1);
    expect((await postJson(`${base}/service-discovery/services/auth-b/enable`, {}, { 'X-API-Key': OPERATOR })).status).to.equal(200);
    await eventually('auth-b enabled again', () => agent.view.service('auth-b')?.enabled === true);
  });

  it('no key configured: writes refused with 403 saying to set SERVICE_DISCOVERY_API_KEY', async function () {
    const base = await serve({ keys: [], readAccess: 'open' });
    const before = await auditCount();
    const res = await postJson(`${base}/service-discovery/services/auth-b/disable`, {});
    expect(res.status).to.equal(403);
    expect((res.json as { error: string }).error).to.equal('writes_disabled');
    expect((res.json as { message: string }).message).to.include('SERVICE_DISCOVERY_API_KEY');
    expect(await auditCount()).to.equal(before);
    expect((await http(`${base}/service-discovery/services`)).status).to.equal(200);
  });

  it('demo mode: allowUnauthenticatedWrites lets anyone write, as actor anonymous', async function () {
    const base = await serve({ keys: [], readAccess: 'open', allowUnauthenticatedWrites: true });
    const res = await postJson(`${base}/service-discovery/services/auth-b/disable`, { reason: 'demo' });
    expect(res.status, res.text).to.equal(200);
    const [entry] = await agent.getAudit({ serviceId: 'auth-b', limit: 1 });
    expect(entry).to.include({ actor: 'anonymous', reason: 'demo' });
    expect((await postJson(`${base}/service-discovery/services/auth-b/enable`, {})).status).to.equal(200);
  });

  it('allowUnauthenticatedWrites is ignored once a key exists', async function () {
    const base = await serve({ keys, readAccess: 'open', allowUnauthenticatedWrites: true });
    expect((await postJson(`${base}/service-discovery/services/auth-b/disable`, {})).status).to.equal(401);
  });

  it('refuses a configuration that would lock every reader out', async function () {
    expect(() => new ApiAuthenticator({ keys: [], readAccess: 'viewer' })).to.throw(ApiAuthConfigError, /at least one API key/);
    let error: unknown;
    try {
      await startApiServer(agent, { host: '127.0.0.1', port: 0, auth: { keys: [], readAccess: 'viewer' } });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ApiAuthConfigError);
  });
});

describe('loadApiAuth', function () {
  let dir: string;
  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'sd-keys-'));
  });
  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the key, key file and read access from the resolved config', async function () {
    const file = join(dir, 'cfg-keys.txt');
    await writeFile(file, 'grafana:viewer:graf-key\n');
    const { config } = resolveConfig({
      env: { SERVICE_DISCOVERY_API_KEY: 'env-key', SERVICE_DISCOVERY_API_READ_ACCESS: 'open' },
      // Flags win over env, as for every setting.
      flags: { 'api-key-file': file, 'api-read-access': 'viewer' },
    });
    expect(loadApiAuth(config.api)).to.deep.equal({
      keys: [
        { name: 'default', role: 'operator', key: 'env-key' },
        { name: 'grafana', role: 'viewer', key: 'graf-key' },
      ],
      readAccess: 'viewer',
    });
    expect(loadApiAuth(configFromPartial().api)).to.deep.equal({ keys: [], readAccess: 'open' });
    expect(loadApiAuth({}, { allowUnauthenticatedWrites: true })).to.deep.equal({ keys: [], readAccess: 'open', allowUnauthenticatedWrites: true });
  });

  it('without settings, reads the api.* environment variables through the config loader', function () {
    const auth = loadApiAuth(undefined, { env: { SERVICE_DISCOVERY_API_KEY: ' s3cret-value \n' } });
    expect(auth).to.deep.equal({ keys: [{ name: 'default', role: 'operator', key: 's3cret-value' }], readAccess: 'open' });
    expect(loadApiAuth(undefined, { env: {} })).to.deep.equal({ keys: [], readAccess: 'open' });
    expect(loadApiAuth(undefined, { env: { SERVICE_DISCOVERY_API_READ_ACCESS: 'viewer', SERVICE_DISCOVERY_API_KEY: 'k' } }).readAccess).to.equal('viewer');
    // A bad value is the loader's one-line ConfigError naming the variable.
    expect(() => loadApiAuth(undefined, { env: { SERVICE_DISCOVERY_API_READ_ACCESS: 'closed' } })).to.throw(
      ConfigError,
      /^SERVICE_DISCOVERY_API_READ_ACCESS=closed \(env\): expected one of open, viewer$/,
    );
    expect(() => loadApiAuth(undefined, { env: { SERVICE_DISCOVERY_API_READ_ACCESS: 'viewer' } })).to.throw(ConfigError, /requires an API key/);
    // Variables of other settings are not this function's business, even when invalid.
    expect(loadApiAuth(undefined, { env: { SERVICE_PORT: 'abc', SERVICE_DISCOVERY_REGISTRY: 'etcd' } })).to.deep.equal({ keys: [], readAccess: 'open' });
  });

  it('reads a key file of name:role:key lines, plus the env key', async function () {
    const file = join(dir, 'keys.txt');
    await writeFile(file, '# deployers\nci:operator:ci-key:with:colons\n\ngrafana:viewer:graf-key\n');
    const auth = loadApiAuth({ apiKey: 'env-key', keyFile: file });
    expect(auth.keys).to.deep.equal([
      { name: 'default', role: 'operator', key: 'env-key' },
      { name: 'ci', role: 'operator', key: 'ci-key:with:colons' },
      { name: 'grafana', role: 'viewer', key: 'graf-key' },
    ]);
    // The file may also come from SERVICE_DISCOVERY_API_KEY_FILE.
    expect(loadApiAuth(undefined, { env: { SERVICE_DISCOVERY_API_KEY_FILE: file } }).keys).to.have.length(2);
  });

  it('reads a JSON key file', async function () {
    const file = join(dir, 'keys.json');
    await writeFile(file, JSON.stringify({ keys: [{ name: 'ops', role: 'operator', key: 'k1' }] }));
    expect(loadApiAuth({ keyFile: file }).keys).to.deep.equal([{ name: 'ops', role: 'operator', key: 'k1' }]);
    expect(parseKeyFile('[{"name":"v","role":"viewer","key":"k2"}]')).to.deep.equal([{ name: 'v', role: 'viewer', key: 'k2' }]);
  });

  it('reports bad files by line, never echoing a key', async function () {
    const check = (text: string, pattern: RegExp) => {
      let error: Error | undefined;
      try {
        parseKeyFile(text, 'keys.txt');
      } catch (err) {
        error = err as Error;
      }
      expect(error, text).to.be.instanceOf(ApiAuthConfigError);
      expect(error!.message).to.match(pattern);
      expect(error!.message).to.not.include('topsecret');
    };
    check('ci:admin:topsecret', /^keys\.txt: line 1: role must be viewer or operator$/);
    check('ok:viewer:k\nbroken-topsecret', /^keys\.txt: line 2: expected name:role:key$/);
    check('[{"name":"x","role":"root","key":"topsecret"}]', /entry 1: role/);
    expect(() => loadApiAuth({ keyFile: join(dir, 'missing') })).to.throw(ApiAuthConfigError, /ENOENT/);
    // Through the config loader a missing file is caught before: a ConfigError naming the variable.
    expect(() => loadApiAuth(undefined, { env: { SERVICE_DISCOVERY_API_KEY_FILE: join(dir, 'missing') } })).to.throw(
      ConfigError,
      /^SERVICE_DISCOVERY_API_KEY_FILE=.*missing \(env\): file not found$/,
    );
    const dup = join(dir, 'dup.txt');
    await writeFile(dup, 'a:viewer:topsecret\nb:operator:topsecret\n');
    expect(() => loadApiAuth({ keyFile: dup })).to.throw(ApiAuthConfigError, /same key/);
    await writeFile(dup, 'a:viewer:topsecret1\na:operator:topsecret2\n');
    expect(() => loadApiAuth({ keyFile: dup })).to.throw(ApiAuthConfigError, /used twice/);
  });
});
