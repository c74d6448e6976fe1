import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, service as healthService } from 'grpc-health-check';
import { CheckSpecError, parseCheckUrl, parseCheckUrls } from '../../src/agent/checks/check-spec.js';
import { CheckSet } from '../../src/agent/checks/check-set.js';
import { GrpcProbe } from '../../src/agent/checks/grpc-check.js';
import { HttpProbe } from '../../src/agent/checks/http-check.js';
import { TcpProbe } from '../../src/agent/checks/tcp-check.js';
import { ConfigError, resolveConfig } from '../../src/config/load.js';
import { parseServiceRecord } from '../../src/cluster/codec.js';
import { ServiceAgent } from '../../src/agent/agent.js';
import { parseAgentArgs } from '../../src/agent/command-line.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { renderServiceDetails } from '../../src/cli/views.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { http as request, postJson, startUpstream, testConfig } from '../api/fixtures.js';
import { ensureBuilt, runCli } from '../cli/fixtures.js';
import { waitFor } from '../helpers/agent-cluster.js';
import { useTestAgents } from '../helpers/agents.js';
import { deadPort, listenOnLoopback, type LoopbackServer } from '../helpers/loopback.js';

const probe = (ms = 2000): AbortSignal => AbortSignal.timeout(ms);

/** A real grpc-js server with the standard health service, on a free loopback port. */
async function startGrpcHealthServer(initial: Record<string, 'SERVING' | 'NOT_SERVING'>): Promise<{ port: number; health: HealthImplementation; stop(): Promise<void> }> {
  const server = new grpc.Server();
  const health = new HealthImplementation(initial);
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, health, stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()) };
}

/** A TCP listener on loopback that can stop accepting (close). */
async function startTcpListener(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('health checks beyond one GET (issue 17)', function () {
  this.timeout(20_000);

  describe('--check URLs', () => {
    it('parses each kind with its options', () => {
      const h = parseCheckUrl('http://127.0.0.1:3000/health/ready?expect=200-204,301&body=ok&json=status.ready=true&header=X-Probe:1&interval=5s&critical=false');
      expect(h).to.include({ kind: 'http', name: 'http http://127.0.0.1:3000/health/ready', critical: false, interval: 5 });
      expect(h.http).to.deep.include({ url: 'http://127.0.0.1:3000/health/ready', method: 'GET', body: 'ok', headers: { 'x-probe': '1' } });
      expect(h.http!.expect).to.deep.equal([[200, 204], [301, 301]]);
      expect(h.http!.json).to.deep.equal({ path: ['status', 'ready'], value: 'true' });
      expect(parseCheckUrl('tcp://127.0.0.1:6379?timeout=500ms')).to.deep.include({ kind: 'tcp', target: '127.0.0.1:6379', timeout: 0.5, tcp: { host: '127.0.0.1', port: 6379 } });
      const g = parseCheckUrl('grpcs://[::1]:50051/pkg.Svc?insecure=true&name=api');
      expect(g).to.include({ kind: 'grpc', name: 'api', target: '[::1]:50051/pkg.Svc' });
      expect(g.grpc).to.deep.equal({ host: '::1', port: 50051, service: 'pkg.Svc', tls: true, insecure: true });
      expect(parseCheckUrl('ttl://worker?ttl=10s&retries=2')).to.deep.include({ kind: 'ttl', name: 'worker', retries: 2, ttl: { deadline: 10 } });
    });

    it('refuses bad URLs with a one-line reason', () => {
      const bad: Array<[string, RegExp]> = [
        ['ftp://x:1', /unknown scheme ftp:\/\//],
        ['tcp://127.0.0.1', /expected a port/],
        ['tcp://127.0.0.1:80/x', /takes no path/],
        ['http://h:1/?expect=200,abc', /expect=200,abc/],
        ['http://h:1/?interval=soon', /interval=soon: expected a duration/],
        ['http://h:1/?critical=maybe', /critical=maybe: expected true or false/],
        ['http://h:1/?bogus=1', /unknown option bogus for a http check/],
        ['http://h:1/?insecure=true', /https:\/\/ checks only/],
        ['grpc://h:1/a/b', /one service name/],
        ['ttl://has space', /ttl:\/\/NAME|not a valid URL/],
        ['127.0.0.1:80', /no scheme/],
        ['http://h:1/\u001b[2J', /contains U\+001B/],
      ];
      for (const [url, message] of bad) {
        expect(() => parseCheckUrl(url), url).to.throw(CheckSpecError, message);
        try {
          parseCheckUrl(url);
        } catch (err) {
          expect((err as Error).message, url).not.to.include('\n');
        }
      }
      expect(() => parseCheckUrls(['ttl://a', 'ttl://a'])).to.throw(CheckSpecError, /two checks named "a"/);
    });

    it('proxy-stone-sd agent with a bad --check or SERVICE_CHECKS: exit 2, one line naming it', async function () {
      this.timeout(60_000);
      ensureBuilt();
      const flag = await runCli(['agent', '--check', 'http://127.0.0.1:3000/health', '--check', 'tcp://127.0.0.1'], { timeoutMs: 15_000 });
      expect(flag.code, flag.stderr).to.equal(2);
      expect(flag.stderr.trimEnd()).to.equal(
        'Error: --check=http://127.0.0.1:3000/health tcp://127.0.0.1 (flag): expected a check URL (http(s)://host:port/path, tcp://host:port, grpc(s)://host:port[/service] or ttl://NAME); tcp://127.0.0.1: tcp: expected a port (host:port)',
      );
      const env = await runCli(['agent'], { env: { SERVICE_CHECKS: 'grpc://127.0.0.1:50051?critical=perhaps' }, timeoutMs: 15_000 });
      expect(env.code, env.stderr).to.equal(2);
      expect(env.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(env.stderr).to.match(/^Error: SERVICE_CHECKS=.* \(env\): expected a check URL .*; critical=perhaps: expected true or false/);
    });

    it('`agent` takes --check once per check (its own parser, without oclif)', () => {
      const flags = parseAgentArgs(['--check', 'http://h:1/ready', '--service-port', '1', '--check=tcp://h:1', '--check', 'ttl://n?ttl=1m&critical=false']);
      expect(flags.check).to.deep.equal(['http://h:1/ready', 'tcp://h:1', 'ttl://n?ttl=1m&critical=false']);
      expect(resolveConfig({ env: {}, flags }).config.service.checks).to.have.length(3);
    });

    it('a bad --check, SERVICE_CHECKS or service.checks is a config error naming its source', () => {
      const message = (f: () => unknown): string => {
        try {
          f();
        } catch (err) {
          expect(err).to.be.instanceOf(ConfigError);
          return (err as Error).message;
        }
        throw new Error('no error');
      };
      expect(message(() => resolveConfig({ env: {}, flags: { check: ['tcp://127.0.0.1:1', 'udp://x:1'] } }))).to.match(/--check=.*\(flag\): expected a check URL .*unknown scheme udp/);
      expect(message(() => resolveConfig({ env: { SERVICE_CHECKS: 'tcp://h:1 tcp://h' } }))).to.match(/SERVICE_CHECKS=.*\(env\): expected a check URL.*expected a port/);
      expect(message(() => resolveConfig({ env: {}, file: { path: '/tmp/sd.json', data: { service: { checks: ['grpc://h'] } } } }))).to.match(/service\.checks/);
      expect(message(() => resolveConfig({ env: {}, flags: { check: ['grpcs://127.0.0.1:50051?ca=/nonexistent/ca.pem'] } }))).to.match(
        /--check=.*\(flag\): .*grpc 127\.0\.0\.1:50051: ca=\/nonexistent\/ca\.pem: cannot read it \(ENOENT\)$/,
      );
      // Commas stay inside a URL; whitespace separates them.
      const ok = resolveConfig({ env: { SERVICE_CHECKS: 'http://h:1/?expect=200,204  tcp://h:2' } });
      expect(ok.config.service.checks).to.deep.equal(['http://h:1/?expect=200,204', 'tcp://h:2']);
    });
  });

  describe('probes against real servers', () => {
    let server: LoopbackServer | undefined;
    afterEach(async () => {
      await server?.close();
      server = undefined;
    });

    it('http: wrong status, wrong body and JSON values fail, naming what was expected', async () => {
      let answer = { status: 200, body: '{"status":"ok","db":{"ready":false}}' };
      server = await listenOnLoopback(http.createServer((_req, res) => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body)));
      const run = (query: string) => new HttpProbe(parseCheckUrl(`${server!.url}/health/ready${query}`).http!).run(probe());
      expect(await run('')).to.deep.include({ ok: true, httpStatus: 200, output: 'HTTP 200' });
      expect(await run('?body=%22ok%22')).to.include({ ok: true });
      expect(await run('?body=READY')).to.include({ ok: false, error: 'HTTP 200 (body lacks "READY")' });
      expect(await run('?json=status=ok')).to.include({ ok: true, output: 'HTTP 200, status "ok"' });
      expect(await run('?json=db.ready=true')).to.include({ ok: false, error: 'HTTP 200 (db.ready is false, expected "true")' });
      expect(await run('?json=db.missing')).to.include({ ok: false, error: 'HTTP 200 (no value at db.missing)' });
      expect(await run('?expect=204')).to.include({ ok: false, error: 'HTTP 200 (expected 204)' });
      answer = { status: 503, body: '{"status":"degraded"}' };
      expect(await run('')).to.include({ ok: false, httpStatus: 503, error: 'HTTP 503 (degraded)' });
      expect(await run('?expect=200-299,503')).to.include({ ok: true });
      answer = { status: 200, body: 'not json' };
      expect(await run('?json=status')).to.include({ ok: false, error: 'HTTP 200 (body is not JSON)' });
    });

    it('tcp: passes while the listener accepts, fails once it is closed', async () => {
      const listener = await startTcpListener();
      const p = new TcpProbe({ host: '127.0.0.1', port: listener.port });
      expect(await p.run(probe())).to.deep.equal({ ok: true, output: 'connected' });
      await listener.close();
      const err = await p.run(probe()).then(() => null, (e: unknown) => e as NodeJS.ErrnoException);
      expect(err?.code).to.equal('ECONNREFUSED');
    });

    it('grpc: SERVING passes, NOT_SERVING and an unknown service fail, a shut-down server is UNAVAILABLE', async () => {
      const g = await startGrpcHealthServer({ '': 'SERVING', 'pkg.Api': 'SERVING' });
      const overall = new GrpcProbe(parseCheckUrl(`grpc://127.0.0.1:${g.port}`).grpc!);
      const api = new GrpcProbe(parseCheckUrl(`grpc://127.0.0.1:${g.port}/pkg.Api`).grpc!);
      const unknown = new GrpcProbe(parseCheckUrl(`grpc://127.0.0.1:${g.port}/pkg.Nope`).grpc!);
      try {
        expect(await overall.run(probe())).to.deep.equal({ ok: true, output: 'SERVING' });
        expect(await api.run(probe())).to.deep.equal({ ok: true, output: 'SERVING' });
        g.health.setStatus('pkg.Api', 'NOT_SERVING');
        expect(await api.run(probe())).to.deep.equal({ ok: false, error: 'NOT_SERVING' });
        expect((await unknown.run(probe())).error).to.match(/^grpc NOT_FOUND/);
        await g.stop();
        expect((await overall.run(probe())).error).to.match(/^grpc UNAVAILABLE/);
      } finally {
        overall.close();
        api.close();
        unknown.close();
        await g.stop();
      }
    });
  });

  describe('over TLS, with a real self-signed certificate', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'sd-checks-tls-'));
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
        { stdio: 'ignore' },
      );
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('https: refused without the CA, passes with ca= or insecure=true; a missing CA file is a one-line error', async () => {
      const tls = { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
      const server = https.createServer(tls, (_req, res) => res.end('ok'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
      const ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
      const probes = [new HttpProbe(parseCheckUrl(url).http!), new HttpProbe(parseCheckUrl(url).http!, ca), new HttpProbe(parseCheckUrl(`${url}?insecure=true`).http!)];
      try {
        const refused = await probes[0]!.run(probe()).then(() => null, (e: unknown) => e as NodeJS.ErrnoException);
        expect(refused?.code).to.equal('DEPTH_ZERO_SELF_SIGNED_CERT');
        expect(await probes[1]!.run(probe())).to.include({ ok: true, httpStatus: 200 });
        expect(await probes[2]!.run(probe())).to.include({ ok: true, httpStatus: 200 });
        expect(() => new CheckSet({ specs: parseCheckUrls([`${url}?ca=${join(dir, 'missing.pem')}`]), intervalMs: 100, timeoutMs: 100, retries: 1, gracePeriodMs: 0 })).to.throw(
          `check "http ${url}": cannot read ca file ${join(dir, 'missing.pem')}: ENOENT`,
        );
      } finally {
        for (const p of probes) p.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('grpcs: SERVING with the CA, UNAVAILABLE without it', async () => {
      const server = new grpc.Server();
      new HealthImplementation({ '': 'SERVING' }).addToServer(server);
      const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(join(dir, 'cert.pem')), private_key: readFileSync(join(dir, 'key.pem')) }]);
      const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
      const trusted = new GrpcProbe(parseCheckUrl(`grpcs://127.0.0.1:${port}`).grpc!, readFileSync(join(dir, 'cert.pem'), 'utf8'));
      const untrusted = new GrpcProbe(parseCheckUrl(`grpcs://127.0.0.1:${port}`).grpc!);
      try {
        expect(await trusted.run(probe())).to.deep.equal({ ok: true, output: 'SERVING' });
        expect((await untrusted.run(probe())).error).to.match(/^grpc UNAVAILABLE/);
      } finally {
        trusted.close();
        untrusted.close();
        server.forceShutdown();
      }
    });
  });

  describe('CheckSet', () => {
    const timing = { intervalMs: 100, timeoutMs: 500, retries: 2, gracePeriodMs: 0 };
    let set: CheckSet | undefined;
    afterEach(async () => {
      await set?.stop();
      set = undefined;
    });

    it('a ttl check whose reporter stops takes the instance out, naming it; a failing non-critical check does not', async () => {
      const dead = await deadPort();
      set = new CheckSet({ specs: parseCheckUrls([`ttl://worker?ttl=400ms`, `tcp://127.0.0.1:${dead}?critical=false&name=side`]), ...timing });
      set.report('worker', true, 'batch 1 done');
      const reporter = setInterval(() => set!.report('worker', true), 100);
      set.start();
      try {
        await waitFor('healthy with a failing non-critical check', () => set!.status === 'healthy' && set!.states()[1]!.status === 'unhealthy', 5000);
        const h = set.snapshot();
        expect(h.message, h.message).to.match(/^critical checks pass; non-critical side: 2 consecutive refused connections \(127\.0\.0\.1:\d+\)$/);
        expect(h.checks!.map((c) => [c.name, c.kind, c.critical, c.status])).to.deep.equal([
          ['worker', 'ttl', true, 'healthy'],
          ['side', 'tcp', false, 'unhealthy'],
        ]);
      } finally {
        clearInterval(reporter);
      }
      await waitFor('unhealthy once reports stop', () => set!.status === 'unhealthy', 5000);
      expect(set.snapshot().message).to.equal('worker: 1 consecutive failure (no report within the 400ms ttl)');
      expect(set.states()[0]).to.include({ status: 'unhealthy', output: 'no report within the 400ms ttl', ttl: 0.4, retries: 1 });
      set.report('worker', false, 'queue stuck');
      await waitFor('says why', () => set!.states()[0]!.output === 'reported failing: queue stuck', 5000);
      expect(() => set!.report('nope', true)).to.throw(/no ttl check named "nope"/);
    });
    it('a report is evaluated at once, not at the next interval', async () => {
      // A minute between evaluations: only the report itself can make it pass within the test.
      set = new CheckSet({ specs: parseCheckUrls(['ttl://job?interval=60s&ttl=60s']), ...timing });
      set.start();
      await waitFor('the first evaluation: no report yet', () => set!.states()[0]!.output === 'no report yet', 5000);
      set.report('job', true, 'done');
      await waitFor('healthy right after the report', () => set!.status === 'healthy', 5000);
      expect(set.states()[0]).to.include({ status: 'healthy', output: 'done', interval: 60 });
      set.report('job', false, 'broken');
      await waitFor('unhealthy right after a fail', () => set!.status === 'unhealthy', 5000);
    });
  });

  describe('an agent with several checks, on real etcd', () => {
    const t = useTestAgents('etcd', 'checks');

    it('a non-critical failure keeps it healthy, a critical one takes it out and is named; the steady state writes nothing', async () => {
      const tcp = await startTcpListener();
      const g = await startGrpcHealthServer({ '': 'SERVING' });
      try {
        const a = await t.agent('c', {
          checks: [`tcp://127.0.0.1:${tcp.port}?critical=false&name=side-port`, `grpc://127.0.0.1:${g.port}`, `ttl://never-reported?critical=false&ttl=60s`],
        });
        const record = async () => {
          const kv = await t.registry.get(a.layout.service('c'));
          const parsed = kv ? parseServiceRecord(kv.value, 'c') : undefined;
          return parsed?.ok ? parsed.value : undefined;
        };
        await waitFor('healthy in etcd with every check', async () => {
          const r = await record();
          // The never-reported ttl check fails once the grace period (1 s) is over: then all is settled.
          return r?.status === 'healthy' && r.health.checks?.[1]?.status === 'healthy' && r.health.checks[2]?.status === 'unhealthy';
        }, 8000);
        const before = (await t.registry.status()).revision;
        await new Promise((r) => setTimeout(r, 1200)); // 6 rounds of 3 checks at 0.2 s
        expect((await t.registry.status()).revision - before, 'registry writes in steady state').to.equal(0);

        const updates: string[] = [];
        a.view.on('event', (e) => {
          if (e.type === 'serviceUpdated' && e.serviceId === 'c') updates.push(e.service.health.checks?.[0]?.status ?? '?');
        });
        await tcp.close();
        await waitFor('side-port unhealthy in the record', async () => (await record())?.health.checks?.[0]?.status === 'unhealthy', 8000);
        // The instance's status did not change; watchers hear of the check as a serviceUpdated.
        await waitFor('a serviceUpdated saying so', () => updates.includes('unhealthy'), 5000);
        const r1 = (await record())!;
        expect(r1.status).to.equal('healthy');
        expect(r1.health.checks![0]).to.include({ name: 'side-port', kind: 'tcp', critical: false });
        expect(r1.health.checks![0]!.output).to.match(/ECONNREFUSED/);

        g.health.setStatus('', 'NOT_SERVING');
        await waitFor('unhealthy in the record', async () => (await record())?.status === 'unhealthy', 8000);
        const r2 = (await record())!;
        expect(r2.health.message).to.equal(`grpc 127.0.0.1:${g.port}: 2 consecutive failures (NOT_SERVING)`);
        expect(r2.health.checks![1]).to.include({ kind: 'grpc', status: 'unhealthy', output: 'NOT_SERVING', critical: true });
        expect(a.healthHistory().some((e) => e.check === `grpc 127.0.0.1:${g.port}` && e.change?.to === 'unhealthy')).to.equal(true);
      } finally {
        await tcp.close().catch(() => undefined);
        await g.stop();
      }
    });
  });

  describe('the API and services show', () => {
    const OPERATOR = 'operator-secret-checks-7d1e';
    let agent: ServiceAgent | undefined;
    let api: ApiServer | undefined;
    let registry: MemoryRegistry | undefined;
    let closeUpstream: (() => Promise<void>) | undefined;
    afterEach(async () => {
      await api?.close();
      await agent?.stop();
      await registry?.close();
      await closeUpstream?.();
    });

    it('a ttl check is reported through POST /checks/:name/pass|fail; the service entry and its health show every check', async () => {
      const upstream = await startUpstream();
      closeUpstream = upstream.close;
      registry = new MemoryRegistry();
      const config = testConfig({ id: 'api-checks' }, upstream.url);
      config.service.checks = [`${upstream.url}?name=ready`, 'ttl://worker?ttl=1s'];
      agent = new ServiceAgent({ config, registry });
      await agent.start();
      api = await startApiServer(agent, { host: '127.0.0.1', port: 0, auth: { keys: [{ name: 'deployer', role: 'operator', key: OPERATOR }], readAccess: 'open' } });
      const base = `${api.url}/service-discovery`;
      const auth = { Authorization: `Bearer ${OPERATOR}` };
      const entry = async () => (await request(`${base}/services/api-checks`)).json as { status: string; health: { message?: string; checks?: Array<{ name: string; status: string; output?: string }> } };

      // As in Consul, a ttl check fails until its first report (the grace period, 0 here, covers a start).
      await waitFor('unhealthy: the worker never reported', async () => (await entry()).status === 'unhealthy', 5000);
      expect((await entry()).health.message).to.match(/^worker: \d+ consecutive failures? \(no report (yet|within the 1s ttl)\)$/);

      expect((await postJson(`${base}/checks/worker/pass`, {})).status, 'no key').to.equal(401);
      expect((await postJson(`${base}/checks/nope/pass`, {}, auth)).status).to.equal(404);
      const bad = await postJson(`${base}/checks/worker/maybe`, {}, auth);
      expect(bad.status).to.equal(400);
      expect(bad.text).to.include('expected pass or fail');
      expect((await postJson(`${base}/checks/worker/pass`, { note: 'x'.repeat(257) }, auth)).status).to.equal(400);
      const ok = await postJson(`${base}/checks/worker/pass`, { note: 'batch 7 done' }, auth);
      expect(ok.status, ok.text).to.equal(200);
      expect(ok.json).to.include({ check: 'worker', ok: true, note: 'batch 7 done' });

      await waitFor('healthy after the report', async () => (await entry()).status === 'healthy', 5000);
      const e = await entry();
      expect((e as unknown as { healthUrl: string }).healthUrl, 'the first HTTP check, without its options').to.equal(upstream.url);
      expect(e.health.checks!.map((c) => [c.name, c.status, c.output])).to.deep.equal([
        ['ready', 'healthy', 'HTTP 200'],
        ['worker', 'healthy', 'batch 7 done'],
      ]);
      const health = (await request(`${base}/services/api-checks/health`)).json as { budget: { sick: number; checks: Array<{ name: string; sick: number }> }; history: Array<{ check?: string }> };
      // ready: 0.2 s × 2 + 0.5 s; worker: 1 s ttl + 0.2 s × 1.
      expect(health.budget.checks).to.deep.equal([
        { name: 'ready', critical: true, sick: 0.9, recovery: 0.7 },
        { name: 'worker', critical: true, sick: 1.2, recovery: 0.2 },
      ]);
      expect(health.budget.sick).to.equal(1.2);
      expect(health.history.some((h) => h.check === 'worker')).to.equal(true);

      const fail = await postJson(`${base}/checks/worker/fail`, { note: 'queue stuck' }, auth);
      expect(fail.status).to.equal(200);
      await waitFor('unhealthy, saying why', async () => (await entry()).health.message === 'worker: 1 consecutive failure (reported failing: queue stuck)', 5000);

      const record = agent.currentRecord();
      const text = renderServiceDetails({ service: record, health: { serviceId: record.id, status: record.status, health: record.health, history: agent.healthHistory() }, intent: null, audit: [] });
      expect(text).to.match(/Checks\n/);
      expect(text).to.match(/worker\s+│?\s*ttl\s+│?\s*unhealthy/);
      expect(text).to.include('reported failing: queue stuck');
      expect(text).to.include('worker: failure within 1.2s, recovery within 200ms');
    });
  });
});
