/**
 * etcd with TLS, client certificates (mTLS) and username/password, against real etcd servers this
 * file starts itself: one serving https with `--client-cert-auth`, one with authentication enabled
 * and a user whose role covers only the test's namespace. Checks the registry client, a real agent
 * (in process and as `proxy-stone-sd agent` processes), the CLI, and that no secret reaches logs,
 * errors or metrics.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect, promisify } from 'node:util';
import { Agent as UndiciAgent, request } from 'undici';
import { ServiceAgent } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/api/metrics.js';
import { configFromPartial } from '../../src/config/load.js';
import { openRegistry } from '../../src/registry/index.js';
import { EtcdRegistry, type EtcdRegistryOptions } from '../../src/registry/etcd.js';
import { RegistryAuthError, RegistryUnavailableError, type WatchEvent } from '../../src/registry/types.js';
import type { SdConfig } from '../../src/config/types.js';
import { capturingLogger, eventually, startUpstream, type Upstream } from '../api/fixtures.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { findExecutable } from '../helpers/server-process.js';
import { makePki, type Pki } from './pki.js';

const execFileAsync = promisify(execFile);
const ROOT = resolvePath(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'bin/run.js');
/** Found as every helper finds its server (ETCD_BIN, PATH, /usr/bin, /usr/local/bin); a missing one fails the suite. */
function required(name: string, envVar: string): string {
  const found = findExecutable(name, { envVar, dirs: ['/usr/bin', '/usr/local/bin'], pathFirst: true });
  if (!found) throw new Error(`the TLS and auth tests need ${name}: install etcd-server and etcd-client (apt-get) or set ${envVar}`);
  return found;
}
const ETCD = required('etcd', 'ETCD_BIN');
const ETCDCTL = required('etcdctl', 'ETCDCTL_BIN');

// Distinctive secrets, so a grep over every output finds any leak.
const ROOT_PASSWORD = 'root-Pw-8c1e55d0';
const AGENT_USER = 'sd-agent';
const AGENT_PASSWORD = 'agent-Pw-Zq7x3-41b9f2';
const API_KEY = 'api-key-secret-77e2c4a9d1';
const CALL_TIMEOUT_MS = 1500;

/** An etcd process this file owns. */
interface OwnEtcd {
  endpoint: string;
  pid: number | undefined;
  stop(): Promise<void>;
  output(): string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts etcd on loopback with a fresh data dir; `tls` serves https and requires client certificates. */
async function startOwnEtcd(dir: string, name: string, tls?: Pki): Promise<OwnEtcd> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    `--name=${name}`,
    `--data-dir=${join(dir, `${name}.etcd`)}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
    '--heartbeat-interval=50',
    '--election-timeout=500',
    '--logger=zap',
    '--log-outputs=stderr',
    '--log-level=warn',
    ...(tls ? [`--cert-file=${tls.serverCert}`, `--key-file=${tls.serverKey}`, `--trusted-ca-file=${tls.ca}`, '--client-cert-auth'] : []),
  ];
  const child: ChildProcess = spawn(ETCD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  // If mocha exits without after() (Ctrl-C, --exit), do not leave an etcd behind.
  process.once('exit', kill);
  const server: OwnEtcd = {
    endpoint,
    get pid() {
      return child.exitCode === null ? child.pid : undefined;
    },
    output: () => output,
    stop: async () => {
      process.off('exit', kill);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(kill, 3000);
      await exited;
      clearTimeout(timer);
    },
  };
  // Health over the same transport the clients use.
  const dispatcher = tls
    ? new UndiciAgent({ connect: { ca: readFileSync(tls.ca), cert: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey) } })
    : undefined;
  try {
    await eventually(
      `etcd ${name} healthy at ${endpoint}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`etcd ${name} exited: ${output.slice(-2000)}`);
        try {
          const res = await request(`${endpoint}/health`, { dispatcher, headersTimeout: 1000, bodyTimeout: 1000 });
          return res.statusCode === 200 && /"health"\s*:\s*"true"/.test(await res.body.text());
        } catch {
          return false;
        }
      },
      15_000,
      100,
    );
  } catch (err) {
    await server.stop();
    throw err;
  } finally {
    await dispatcher?.close();
  }
  return server;
}

async function etcdctl(endpoint: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(ETCDCTL, [`--endpoints=${endpoint}`, '--command-timeout=5s', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 10_000,
  });
  return stdout;
}

/** The error a promise rejects with (fails the test if it resolves), and how long it took. */
async function rejection(promise: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (err) {
    return { error: err as Error, ms: Date.now() - started };
  }
  expect.fail('expected a rejection');
}

/** Every secret of this file, including a slice of the client's private key material. */
function secrets(pki: Pki): string[] {
  const keyBody = readFileSync(pki.clientKey, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
  const serverKeyBody = readFileSync(pki.serverKey, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
  return [ROOT_PASSWORD, AGENT_PASSWORD, API_KEY, keyBody[1]!.slice(0, 40), serverKeyBody[1]!.slice(0, 40)];
}

function expectNoSecret(text: string, pki: Pki, where: string): void {
  for (const secret of secrets(pki)) expect(text, `${where} must not contain a secret`).to.not.include(secret);
}

describe('etcd with TLS, client certificates and authentication', function () {
  this.timeout(60_000);
  let dir: string;
  let pki: Pki;
  let tlsEtcd: OwnEtcd | undefined;
  let authEtcd: OwnEtcd | undefined;
  let upstream: Upstream;
  const namespace = uniqueNamespace('security');
  const open: EtcdRegistry[] = [];

  const mtlsOptions = (): EtcdRegistryOptions => ({
    endpoints: [tlsEtcd!.endpoint],
    callTimeoutMs: CALL_TIMEOUT_MS,
    tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey },
  });
  const authOptions = (password = AGENT_PASSWORD): EtcdRegistryOptions => ({
    endpoints: [authEtcd!.endpoint],
    callTimeoutMs: CALL_TIMEOUT_MS,
    username: AGENT_USER,
    password,
  });
  const registry = (options: EtcdRegistryOptions): EtcdRegistry => {
    const r = new EtcdRegistry(options);
    open.push(r);
    return r;
  };

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'sd-etcd-security-'));
    pki = makePki(dir);
    [tlsEtcd, authEtcd] = await Promise.all([startOwnEtcd(dir, 'sd-tls', pki), startOwnEtcd(dir, 'sd-auth')]);
    // A user whose role covers only this namespace, as an operator would set it up.
    const e = authEtcd.endpoint;
    await etcdctl(e, ['user', 'add', `root:${ROOT_PASSWORD}`]);
    await etcdctl(e, ['user', 'grant-role', 'root', 'root']);
    await etcdctl(e, ['role', 'add', 'sd-namespace']);
    await etcdctl(e, ['role', 'grant-permission', 'sd-namespace', '--prefix=true', 'readwrite', `${namespace}/`]);
    await etcdctl(e, ['user', 'add', `${AGENT_USER}:${AGENT_PASSWORD}`]);
    await etcdctl(e, ['user', 'grant-role', AGENT_USER, 'sd-namespace']);
    await etcdctl(e, ['auth', 'enable']);
    upstream = await startUpstream();
  });

  after(async function () {
    await Promise.all(open.map((r) => r.close().catch(() => undefined)));
    await upstream?.close();
    await Promise.all([tlsEtcd?.stop(), authEtcd?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('TLS with client certificates (mTLS)', function () {
    it('connects with ca + cert + key: reads, writes and watches', async function () {
      const r = registry(mtlsOptions());
      const status = await r.status();
      expect(status.version).to.match(/^3\./);
      const rev = await r.put(`${namespace}/tls/a`, '1');
      const events: WatchEvent[] = [];
      const handle = r.watchPrefix(`${namespace}/tls/`, rev + 1, { onEvents: (e) => events.push(...e), onCompacted: () => undefined });
      await r.put(`${namespace}/tls/b`, '2');
      await eventually('a watch event over TLS', () => events.length === 1);
      await handle.cancel();
      expect((await r.list(`${namespace}/tls/`)).kvs.map((kv) => kv.value)).to.deep.equal(['1', '2']);
    });

    it('without a client certificate: a one-line RegistryAuthError naming the endpoint, within the call timeout', async function () {
      const { error, ms } = await rejection(registry({ ...mtlsOptions(), tls: { ca: pki.ca } }).get('x'));
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect(error.message).to.equal(
        `registry ${tlsEtcd!.endpoint} refused the TLS handshake (bad certificate): it requires a client certificate (set --etcd-cert and --etcd-key)`,
      );
      expect(ms).to.be.below(CALL_TIMEOUT_MS + 500);
    });

    it('with a client certificate from another CA: refused, saying so', async function () {
      const { error, ms } = await rejection(
        registry({ ...mtlsOptions(), tls: { ca: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey } }).get('x'),
      );
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect(error.message).to.match(/^registry https:\/\/127\.0\.0\.1:\d+ refused the TLS handshake \(.+\): it does not accept the client certificate/);
      expect(error.message).to.not.include('\n');
      expect(ms).to.be.below(CALL_TIMEOUT_MS + 500);
    });

    it('with the wrong CA (or none): the server is not trusted, one line, within the call timeout', async function () {
      for (const tls of [{ ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey }, undefined]) {
        const { error, ms } = await rejection(registry({ ...mtlsOptions(), tls }).status());
        expect(error, inspect(tls)).to.be.instanceOf(RegistryAuthError);
        expect(error.message).to.equal(
          `registry ${tlsEtcd!.endpoint} is not trusted: its TLS certificate failed verification (unable to verify the first certificate); set --etcd-ca to the CA that signed it`,
        );
        expect(ms).to.be.below(CALL_TIMEOUT_MS + 500);
      }
    });

    it('a plain http client against the TLS port fails with a hint; https against a plain server too', async function () {
      const plain = await rejection(registry({ endpoints: [tlsEtcd!.endpoint.replace('https:', 'http:')], callTimeoutMs: CALL_TIMEOUT_MS }).get('x'));
      expect(plain.error).to.be.instanceOf(RegistryUnavailableError);
      expect(plain.error.message).to.match(/unreachable: .*use https:\/\/ and --etcd-ca/);
      const https = await rejection(registry({ endpoints: [authEtcd!.endpoint.replace('http:', 'https:')], callTimeoutMs: CALL_TIMEOUT_MS, tls: { ca: pki.ca } }).get('x'));
      expect(https.error).to.be.instanceOf(RegistryUnavailableError);
      expect(https.error.message).to.include('the server does not speak TLS on this port');
    });
  });

  describe('username and password', function () {
    it('works for a user whose role covers the namespace; keys outside it are refused', async function () {
      const r = registry(authOptions());
      await r.put(`${namespace}/auth/a`, '1');
      expect((await r.get(`${namespace}/auth/a`))?.value).to.equal('1');
      const lease = await r.grantLease(5);
      await r.put(`${namespace}/auth/leased`, 'x', { lease: lease.id });
      expect(await lease.keepAliveOnce()).to.be.above(0);
      await lease.revoke();
      const outside = await rejection(r.put('elsewhere/a', '1'));
      expect(outside.error).to.be.instanceOf(RegistryAuthError);
      expect(outside.error.message).to.equal(
        `registry ${authEtcd!.endpoint} refused: permission denied (the user's role must grant readwrite on the namespace prefix)`,
      );
    });

    it('a wrong password is a RegistryAuthError without the password, within the call timeout', async function () {
      const wrong = 'wrong-Pw-0f9d8c7b';
      const { error, ms } = await rejection(registry(authOptions(wrong)).get(`${namespace}/auth/a`));
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect(error.message).to.equal(`registry ${authEtcd!.endpoint} refused: authentication failed, invalid user ID or password`);
      for (const text of [error.message, error.stack ?? '', inspect(error), JSON.stringify(error)]) {
        expect(text).to.not.include(wrong);
        expect(text).to.not.include(AGENT_PASSWORD);
      }
      expect(ms).to.be.below(CALL_TIMEOUT_MS + 500);
    });

    it('no credentials against an etcd with authentication: says to set them', async function () {
      const { error } = await rejection(registry({ endpoints: [authEtcd!.endpoint], callTimeoutMs: CALL_TIMEOUT_MS }).get('x'));
      expect(error).to.be.instanceOf(RegistryAuthError);
      expect(error.message).to.equal(
        `registry ${authEtcd!.endpoint} refused: it requires authentication; set --etcd-username and --etcd-password`,
      );
    });

    it('recovers a watch from a compacted revision with only the namespace role', async function () {
      const r = registry(authOptions());
      const ns = `${namespace}/compact/`;
      const first = await r.put(`${ns}a`, '1');
      // A gap between the start and the compaction, so a fallback guess (start + 1) would be wrong.
      for (let i = 0; i < 3; i++) await r.put(`${ns}b`, String(i));
      const last = await r.put(`${ns}a`, '2');
      await etcdctl(authEtcd!.endpoint, [`--user=root:${ROOT_PASSWORD}`, 'compact', String(last), '--physical']);
      const compacted: number[] = [];
      const errors: Error[] = [];
      const handle = r.watchPrefix(ns, first, {
        onEvents: () => undefined,
        onCompacted: (rev) => compacted.push(rev),
        onError: (err) => errors.push(err),
      });
      await eventually('onCompacted', () => compacted.length === 1 || errors.length > 0);
      await handle.cancel();
      expect(errors).to.deep.equal([]);
      // The oldest readable revision, found by reading inside the namespace (no access elsewhere).
      expect(compacted[0]).to.equal(last);
    });
  });

  describe('a real agent', function () {
    const agentConfig = (id: string, discovery: Partial<SdConfig['cluster']['discovery']>): SdConfig =>
      configFromPartial({
        cluster: {
          leaderElection: { ttl: 2, renewInterval: 0.5 },
          healthCheck: { interval: 0.2, timeout: 0.5, retries: 2, gracePeriod: 0, url: upstream.url },
          discovery: { registry: 'etcd', namespace, callTimeout: CALL_TIMEOUT_MS / 1000, ...discovery },
          // One instance: the capacity guard (tested in test/agent/drain.test.ts) is off here.
          minHealthyPerZone: '0',
        },
        service: { id, host: '127.0.0.1', port: upstream.port },
        log: { level: 'debug' },
      });

    for (const mode of ['mTLS', 'username/password'] as const) {
      it(`registers, leads and deregisters over ${mode}; logs, errors and metrics hold no secret`, async function () {
        const id = mode === 'mTLS' ? 'agent-mtls' : 'agent-auth';
        const discovery: Partial<SdConfig['cluster']['discovery']> =
          mode === 'mTLS'
            ? { endpoints: [tlsEtcd!.endpoint], tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }
            : { endpoints: [authEtcd!.endpoint], username: AGENT_USER, password: AGENT_PASSWORD };
        const config = agentConfig(id, discovery);
        const logger = capturingLogger();
        const metrics = new AgentMetrics();
        // As `agent` does: the registry from the config, timed by the metrics.
        const raw = await openRegistry(config.cluster.discovery);
        const agent = new ServiceAgent({ config, logger, registry: metrics.instrumentRegistry(raw) });
        metrics.observe(agent);
        const reader = registry(mode === 'mTLS' ? mtlsOptions() : authOptions());
        try {
          await agent.start();
          await eventually(`${id} healthy in its view`, () => agent.view.service(id)?.status === 'healthy');
          await eventually(`${id} leads`, () => agent.isLeader());
          const stored = await reader.get(`${namespace}/services/${id}`);
          expect(JSON.parse(stored!.value)).to.include({ id, status: 'healthy' });
          await agent.setServiceEnabled(id, false, { reason: 'security test', actor: 'test' });
          await eventually('the disable in the view', () => agent.view.service(id)?.enabled === false);
          await agent.setServiceEnabled(id, true, { actor: 'test' });
          const text = await metrics.render();
          expect(text).to.match(/^proxy_stone_registry_request_duration_seconds_count\{operation="txn",outcome="ok"\} [1-9]/m);
          expectNoSecret(text, pki, 'metrics');
        } finally {
          await agent.stop();
          await raw.close();
        }
        expect(await reader.get(`${namespace}/services/${id}`), 'the lease is revoked on stop').to.equal(null);
        expectNoSecret(logger.lines.join('\n'), pki, 'the agent log');
        expectNoSecret(inspect(config.cluster.discovery.tls ?? {}), pki, 'the config');
      });
    }
  });

  describe('processes: `proxy-stone-sd agent` and the CLI', function () {
    before(function () {
      // These run the built CLI, as operators do (`npm test` builds first).
      if (!existsSync(join(ROOT, 'dist/commands/agent.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    });

    interface Proc {
      child: ChildProcess;
      output(): string;
      exited: Promise<number | null>;
    }

    const spawnAgent = (args: string[], env: NodeJS.ProcessEnv = {}): Proc => {
      const child = spawn(process.execPath, [BIN, 'agent', ...args], {
        env: { ...process.env, LOG_LEVEL: 'debug', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, output: () => out, exited };
    };
    const stopProc = async (p: Proc): Promise<number | null> => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
      const code = await p.exited;
      clearTimeout(timer);
      return code;
    };
    const common = (id: string) => [
      '--namespace', namespace,
      '--service-id', id,
      '--service-host', '127.0.0.1',
      '--service-port', String(upstream.port),
      '--health-url', upstream.url,
      '--health-interval', '0.3',
      '--grace-period', '0',
      '--leader-ttl', '2',
      '--renew-interval', '0.5',
      '--call-timeout', '1.5',
      '--api-port', '0',
    ];
    const cli = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      try {
        const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 20_000 });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    };

    it('agents register over mTLS and over auth; the CLI lists them; nothing prints a secret', async function () {
      const mtls = spawnAgent([
        ...common('proc-mtls'),
        '--endpoints', tlsEtcd!.endpoint,
        '--etcd-ca', pki.ca,
        '--etcd-cert', pki.clientCert,
        '--etcd-key', pki.clientKey,
      ]);
      // The password as a flag (the harshest case for leaks) and the API key from the environment.
      const auth = spawnAgent(
        [...common('proc-auth'), '--endpoints', authEtcd!.endpoint, '--etcd-username', AGENT_USER, '--etcd-password', AGENT_PASSWORD],
        { SERVICE_DISCOVERY_API_KEY: API_KEY },
      );
      try {
        for (const p of [mtls, auth]) await eventually('agent started', () => /"event":"agent\.started"/.test(p.output()), 15_000, 50);
        const apiUrl = (p: Proc) => /"event":"api\.listening"[^\n]*"url":"([^"]+)"/.exec(p.output())![1]!;
        // Each agent's API works, including a refused write (whose log line must not echo the key).
        const metricsText = await (await request(`${apiUrl(auth)}/metrics`)).body.text();
        expect(metricsText).to.include('proxy_stone_cluster_size');
        const refused = await request(`${apiUrl(auth)}/service-discovery/services/proc-auth/disable`, {
          method: 'POST',
          headers: { authorization: 'Bearer not-the-key' },
        });
        expect(refused.statusCode).to.equal(401);
        await refused.body.text();
        const allowed = await request(`${apiUrl(auth)}/service-discovery/services/proc-auth/enable`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        expect(allowed.statusCode).to.equal(200);
        await allowed.body.text();

        // The CLI over mTLS: its reader talks to etcd directly.
        const listed = await cli([
          'services', 'list', '--json', '--namespace', namespace,
          '--endpoints', tlsEtcd!.endpoint, '--etcd-ca', pki.ca, '--etcd-cert', pki.clientCert, '--etcd-key', pki.clientKey,
        ]);
        expect(listed.code, listed.stderr).to.equal(0);
        const ids = (JSON.parse(listed.stdout) as { services: { id: string }[] }).services.map((s) => s.id);
        expect(ids).to.include('proc-mtls');
        // The CLI over auth, the password from the environment.
        const viaAuth = await cli(['services', 'list', '--json', '--namespace', namespace, '--endpoints', authEtcd!.endpoint, '--etcd-username', AGENT_USER], {
          SERVICE_DISCOVERY_PASSWORD: AGENT_PASSWORD,
        });
        expect(viaAuth.code, viaAuth.stderr).to.equal(0);
        expect((JSON.parse(viaAuth.stdout) as { services: { id: string }[] }).services.map((s) => s.id)).to.include('proc-auth');

        // Refusals: exit non-zero with one line naming the endpoint and no secret.
        const badPassword = await cli(['services', 'list', '--namespace', namespace, '--endpoints', authEtcd!.endpoint, '--etcd-username', AGENT_USER, '--etcd-password', 'wrong-Pw-cli-1234']);
        expect(badPassword.code).to.equal(5);
        expect(badPassword.stderr.trim().split('\n')).to.have.length(1);
        expect(badPassword.stderr).to.include(authEtcd!.endpoint).and.not.include('wrong-Pw-cli-1234');
        const noCert = await cli(['services', 'list', '--namespace', namespace, '--endpoints', tlsEtcd!.endpoint, '--etcd-ca', pki.ca]);
        // A refused handshake is a credentials problem (exit 5) that says what to set, not "unreachable".
        expect(noCert.code, noCert.stderr).to.equal(5);
        expect(noCert.stderr.trim().split('\n')).to.have.length(1);
        expect(noCert.stderr).to.include(tlsEtcd!.endpoint).and.include('--etcd-cert');
        for (const r of [listed, viaAuth, badPassword, noCert]) expectNoSecret(r.stdout + r.stderr, pki, 'CLI output');
      } finally {
        expect(await stopProc(mtls)).to.equal(0);
        expect(await stopProc(auth)).to.equal(0);
      }
      expectNoSecret(mtls.output(), pki, 'the mTLS agent output');
      expectNoSecret(auth.output(), pki, 'the auth agent output');
      expect(auth.output()).to.include('"event":"agent.stopped"');
    });

    it('an agent with a wrong password keeps running, logs the refusal in one line without the password, and stops on SIGTERM', async function () {
      const wrong = 'wrong-Pw-agent-5a5a';
      const p = spawnAgent([...common('proc-wrong'), '--endpoints', authEtcd!.endpoint, '--etcd-username', AGENT_USER, '--etcd-password', wrong]);
      try {
        await eventually('the refusal in the log', () => /authentication failed, invalid user ID or password/.test(p.output()), 15_000, 50);
      } finally {
        await stopProc(p);
      }
      expect(p.output()).to.not.include(wrong);
      expectNoSecret(p.output(), pki, 'the refused agent output');
    });
  });
});
