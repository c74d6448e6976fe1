import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { defaultServiceId } from '../../src/agent/agent.js';
import { PrometheusTargetsSchema, ServiceListSchema, StatusResponseSchema, TopologySchema } from '../../src/api/schemas.js';
import { ensureBuilt } from '../cli/fixtures.js';
import { cleanEnv, LoggedProcess, ROOT } from '../deploy/helpers.js';
import { freePorts, uniqueNamespace } from '../helpers/etcd.js';
import { npm, packRepository, registryUnreachable, runCommand, type NpmResult } from '../helpers/npm-package.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { SseClient, eventually, http, postJson } from './fixtures.js';
import { SEED_METRIC_NAMES } from '../helpers/seed.js';

const DOC = path.join(ROOT, 'docs/embedding.md');
const MARKER = '<!-- embedding-example: server.ts';
/** Whole budget of the scratch app's install: dependencies come from the npm registry (or its cache). */
const INSTALL_MS = 180_000;
const KEY = 'embed-package-operator-key';

/** The `ts` block that follows the marker in docs/embedding.md: the example, exactly as documented. */
function docsExample(): string {
  const text = readFileSync(DOC, 'utf8');
  const at = text.indexOf(MARKER);
  if (at < 0) throw new Error(`docs/embedding.md has no ${MARKER} marker`);
  const block = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  if (!block) throw new Error('docs/embedding.md: no ```ts block after the example marker');
  return block[1]!;
}

/** The code of README.md's Embedding section. */
function readmeSnippet(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = /^## Embedding\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('//'));
}

function expectOk(what: string, res: NpmResult | { code: number | null; stdout: string; stderr: string }): void {
  expect(res.code, `${what}:\n${res.stdout}\n${res.stderr}`).to.equal(0);
}

/** Runs a command in `cwd` (asynchronously: the agents of other tests in this process keep their keep-alives). */
function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<NpmResult> {
  return runCommand(command, args, cwd, timeoutMs, cleanEnv({ NO_COLOR: '1' }));
}

describe('embedding: the docs example', function () {
  it("README's Embedding snippet is made of lines of the tested example in docs/embedding.md", function () {
    const example = docsExample();
    const lines = readmeSnippet();
    expect(lines.length, 'README.md has a ts block under ## Embedding').to.be.greaterThan(3);
    for (const line of lines) expect(example, `README line not in the example: ${line}`).to.include(line);
  });
});

/**
 * What an embedder gets: the packed tarball installed into a scratch Fastify app outside this
 * repository, the example of docs/embedding.md compiled there with tsc (strict, NodeNext) against
 * the installed types, and two copies of it run against a real etcd and driven over HTTP.
 */
describe('embedding: the packed package in a scratch Fastify app, against etcd', function () {
  this.timeout(30_000);
  let dir: string | undefined;
  let endpoint: string;
  let namespace: string;
  const apps: LoggedProcess[] = [];
  let ports: number[];
  let ids: string[];
  let sse: SseClient | undefined;
  const base = (i: number) => `http://127.0.0.1:${ports[i]}`;

  /** One instance of the example app: the seed's env vars, loopback only, an operator key. */
  function startApp(i: number, zone: string): LoggedProcess {
    const app = new LoggedProcess(
      spawn(process.execPath, ['dist/server.js'], {
        cwd: dir,
        env: cleanEnv({
          PORT: String(ports[i]),
          HOST: '127.0.0.1',
          SERVICE_HOST: '127.0.0.1',
          SERVICE_ZONE: zone,
          SERVICE_DISCOVERY_ENDPOINTS: endpoint,
          SERVICE_DISCOVERY_NAMESPACE: namespace,
          SERVICE_DISCOVERY_API_KEY: KEY,
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    apps.push(app);
    return app;
  }

  /** Resolves once the app's agent is registered and its instance healthy. */
  async function healthy(i: number): Promise<void> {
    await eventually(
      `instance ${i} registered and healthy`,
      async () => {
        const res = await http(`${base(i)}/service-discovery/status`);
        const status = StatusResponseSchema.parse(res.json);
        return status.status === 'registered' && status.currentService.status === 'healthy';
      },
      20_000,
    );
  }

  before(async function () {
    this.timeout(INSTALL_MS + 60_000);
    ensureBuilt();
    const offline = await registryUnreachable();
    if (offline) {
      console.log(`      (skipped: the scratch app installs from the npm registry, and ${offline})`);
      this.skip();
    }
    const pack = await packRepository();
    // Outside the repository, so nothing resolves from its node_modules.
    dir = mkdtempSync(path.join(tmpdir(), 'sd-embed-app-'));
    expect(path.relative(ROOT, dir).startsWith('..')).to.equal(true);
    writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'embed-example', private: true, type: 'module' }, null, 2)}\n`);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      `${JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            outDir: 'dist',
            rootDir: 'src',
            types: ['node'],
            noEmitOnError: true,
            skipLibCheck: false,
          },
          include: ['src'],
        },
        null,
        2,
      )}\n`,
    );
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src/server.ts'), docsExample());
    const install = await npm(
      ['install', '--no-audit', '--no-fund', '--prefer-offline', pack.tarball, 'fastify@5', 'typescript@5', '@types/node@20'],
      dir,
      INSTALL_MS,
    );
    expectOk('npm install of the tarball, fastify, typescript', install);
    // Type-checks the example against the installed declarations, then emits dist/server.js.
    expectOk('tsc (strict, NodeNext) of the docs example', await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.'], dir, 60_000));

    endpoint = (await sharedEtcd()).endpoint;
    namespace = uniqueNamespace('embed-package');
    ports = await freePorts(2);
    ids = ports.map((p) => defaultServiceId('proxy-stone', '127.0.0.1', p));
    const first = startApp(0, 'us-east-1a');
    await first.waitFor('the app listening', (r) => /Server listening at/.test(r.msg), 20_000);
    await healthy(0);
  });

  after(async function () {
    sse?.close();
    await Promise.all(apps.map((a) => a.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("one fastify in the app's tree, shared by the host and the package; the main entry loads neither fastify nor prom-client", async function () {
    const query = await run('npm', ['query', '[name=fastify]'], dir!, 30_000);
    expectOk('npm query', query);
    const copies = new Set((JSON.parse(query.stdout) as { location: string }[]).map((n) => n.location));
    expect([...copies]).to.deep.equal(['node_modules/fastify']);
    expect(existsSync(path.join(dir!, 'node_modules/proxy-stone-sd/node_modules/fastify'))).to.equal(false);
    const probe = [
      "import { createRequire } from 'node:module';",
      "const main = await import('proxy-stone-sd');",
      'const loaded = Object.keys(createRequire(import.meta.url).cache);',
      "const api = await import('proxy-stone-sd/api');",
      'console.log(JSON.stringify({ main: typeof main.ProxyStoneServiceDiscovery, api: typeof api.serviceDiscoveryPlugin,',
      "  fastify: loaded.some((f) => f.includes('/node_modules/fastify/')), promClient: loaded.some((f) => f.includes('/node_modules/prom-client/')) }));",
    ].join('\n');
    const res = await run(process.execPath, ['--input-type=module', '-e', probe], dir!, 30_000);
    expectOk('import of both entry points', res);
    expect(JSON.parse(res.stdout)).to.deep.equal({ main: 'function', api: 'function', fastify: false, promClient: false });
  });

  it("serves the seed's routes on the host's own port, beside the host's /health", async function () {
    expect((await http(`${base(0)}/health`)).json).to.deep.equal({ status: 'ok' });
    const status = StatusResponseSchema.parse((await http(`${base(0)}/service-discovery/status`)).json);
    expect(status.currentService).to.include({ id: ids[0], name: 'proxy-stone', port: ports[0], zone: 'us-east-1a', status: 'healthy' });
    expect(status).to.include({ enabled: true, isLeader: true, status: 'registered' });
    expect(status.registry.kind).to.equal('etcd');
    const list = ServiceListSchema.parse((await http(`${base(0)}/service-discovery/services`)).json);
    expect(list.services.map((s) => s.id)).to.deep.equal([ids[0]]);
    // The plugin advertised where the host listens.
    expect(list.services[0]!.apiUrl).to.equal(base(0));
    const topology = TopologySchema.parse((await http(`${base(0)}/service-discovery/topology`)).json);
    expect(topology).to.include({ totalServices: 1, healthyServices: 1 });
  });

  it('streams a second instance joining as serviceJoined (SSE), and both see the cluster of two', async function () {
    sse = new SseClient(`${base(0)}/service-discovery/events`);
    await sse.opened;
    expect(sse.status).to.equal(200);
    startApp(1, 'us-east-1b');
    const joined = await sse.waitFor(
      'serviceJoined of the second instance',
      (c) => c.events().find((e) => e.type === 'serviceJoined' && e.serviceId === ids[1]),
      20_000,
    );
    expect((joined.service as { zone: string }).zone).to.equal('us-east-1b');
    await healthy(1);
    for (const i of [0, 1]) {
      await eventually(`instance ${i} sees two healthy services`, async () => {
        const list = ServiceListSchema.parse((await http(`${base(i)}/service-discovery/services`)).json);
        return list.total === 2 && list.healthy === 2;
      });
    }
    const topology = TopologySchema.parse((await http(`${base(1)}/service-discovery/topology`)).json);
    expect(topology.leader?.id).to.equal(ids[0]);
  });

  it('disables and enables an instance with the API key; the capacity guard and a missing key refuse', async function () {
    const url = (verb: string) => `${base(0)}/service-discovery/services/${ids[1]}/${verb}`;
    expect((await postJson(url('disable'), { reason: 'deploy' })).status).to.equal(401);
    // Alone in its zone: the default guard (keep one healthy per zone) refuses, force overrides.
    const refused = await postJson(url('disable'), { reason: 'deploy' }, { 'X-API-Key': KEY });
    expect(refused.status, refused.text).to.equal(409);
    expect(refused.json).to.have.property('error', 'refused');
    const disabled = await postJson(url('disable'), { reason: 'deploy', force: true, drainTimeout: 0 }, { 'X-API-Key': KEY });
    expect(disabled.status, disabled.text).to.equal(200);
    expect(disabled.json).to.include({ serviceId: ids[1], enabled: false, changed: true });
    await sse!.waitFor('serviceDisabled', (c) => c.events().some((e) => e.type === 'serviceDisabled' && e.serviceId === ids[1] && e.actor === 'default'));
    const enabled = await postJson(url('enable'), {}, { Authorization: `Bearer ${KEY}` });
    expect(enabled.status, enabled.text).to.equal(200);
    expect(enabled.json).to.include({ serviceId: ids[1], enabled: true, changed: true });
    await sse!.waitFor('serviceEnabled', (c) => c.events().some((e) => e.type === 'serviceEnabled' && e.serviceId === ids[1]));
  });

  it("serves /metrics with the seed's metric names", async function () {
    const res = await http(`${base(0)}/metrics`);
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/plain/);
    for (const name of SEED_METRIC_NAMES) {
      expect(res.text, name).to.match(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(res.text).to.match(/^proxy_stone_cluster_size 2$/m);
    expect(res.text).to.match(/^proxy_stone_services_total\{status="healthy"\} 2$/m);
  });

  it('lists both instances for Prometheus HTTP service discovery, at the addresses the hosts advertised', async function () {
    const groups = PrometheusTargetsSchema.parse((await http(`${base(1)}/service-discovery/prometheus/targets`)).json);
    const expected = [0, 1]
      .map((i) => ({ target: `127.0.0.1:${ports[i]}`, id: ids[i], zone: i === 0 ? 'us-east-1a' : 'us-east-1b' }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    expect(groups.map((g) => ({ target: g.targets[0], id: g.labels.service_id, zone: g.labels.zone }))).to.deep.equal(expected);
  });

  it('SIGTERM: the second instance leaves the cluster (serviceLeft on the stream) and its process exits 0', async function () {
    const second = apps[1]!;
    second.proc.kill('SIGTERM');
    const exit = await Promise.race([second.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
    expect(exit, 'exited within 15 s of SIGTERM').to.deep.equal({ code: 0, signal: null });
    await sse!.waitFor('serviceLeft', (c) => c.events().some((e) => e.type === 'serviceLeft' && e.serviceId === ids[1]));
    const list = ServiceListSchema.parse((await http(`${base(0)}/service-discovery/services`)).json);
    expect(list.services.map((s) => s.id)).to.deep.equal([ids[0]]);
  });
});
