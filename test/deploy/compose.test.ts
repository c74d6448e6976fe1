import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { parse as parseYaml } from 'yaml';
import * as AjvModule from 'ajv';
import { resolveConfig } from '../../src/config/load.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { agentEnvNames, assertBuilt, BIN, cleanEnv, eventually, freePorts, LoggedProcess, ROOT } from './helpers.js';

const COMPOSE_FILE = path.join(ROOT, 'docker/service-discovery.yml');
const COMPOSE_DIR = path.dirname(COMPOSE_FILE);
const ENTRYPOINT = path.join(ROOT, 'deploy/docker-entrypoint.sh');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: string[];
  ports?: string[];
  user?: string;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, { name?: string } | null>;
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR-default}` interpolation, with an empty environment. */
function interpolate(value: string): string {
  return value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_m, _name: string, fallback: string | undefined) => fallback ?? '');
}

function envOf(service: ComposeService): Record<string, string> {
  const raw = service.environment ?? {};
  const entries = Array.isArray(raw) ? raw.map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]) : Object.entries(raw);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v === null || v === undefined ? '' : String(v))]));
}

function commandFlags(service: ComposeService): Map<string, string> {
  const args = Array.isArray(service.command) ? service.command : String(service.command ?? '').split(/\s+/);
  return new Map(args.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split(/=(.*)/s).slice(0, 2) as [string, string]));
}

function dependsOn(service: ComposeService): string[] {
  const d = service.depends_on ?? [];
  return Array.isArray(d) ? d : Object.keys(d);
}

/** `[host_ip:]host_port:container_port` → parts. */
function parsePort(spec: string): { ip?: string; host: number; container: number } {
  const parts = spec.split(':');
  const container = Number(parts.pop()!.split('/')[0]);
  const host = Number(parts.pop());
  return { ip: parts.pop(), host, container };
}

function volumeMounts(service: ComposeService): Array<{ source: string; target: string; bind: boolean }> {
  return (service.volumes ?? []).map((v) => {
    const [source, target] = v.split(':') as [string, string];
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });
}

const compose = parseYaml(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as ComposeFile;
const services = compose.services;
const names = Object.keys(services);
const etcdNames = names.filter((n) => /^etcd\d+$/.test(n));
const agentNames = names.filter((n) => /^sd-agent-\d+$/.test(n));
const instanceNames = names.filter((n) => /^proxy-stone-\d+$/.test(n));

/** What the seed's Docker section sets for every agent. */
const SEED_ENV = [
  'SERVICE_DISCOVERY_ENABLED',
  'SERVICE_DISCOVERY_REGISTRY',
  'SERVICE_DISCOVERY_ENDPOINTS',
  'SERVICE_DISCOVERY_NAMESPACE',
  'SERVICE_NAME',
  'SERVICE_HOST',
  'SERVICE_PORT',
  'SERVICE_VERSION',
  'SERVICE_REGION',
  'SERVICE_ZONE',
];

describe('deploy: docker/service-discovery.yml', () => {
  it('has a three-member etcd cluster, three instances each with an agent, Prometheus and Grafana', () => {
    expect(etcdNames).to.deep.equal(['etcd1', 'etcd2', 'etcd3']);
    expect(instanceNames).to.deep.equal(['proxy-stone-1', 'proxy-stone-2', 'proxy-stone-3']);
    expect(agentNames).to.deep.equal(['sd-agent-1', 'sd-agent-2', 'sd-agent-3']);
    expect(names).to.include.members(['prometheus', 'grafana']);
    expect(compose.networks?.default?.name, "the seed's network name").to.equal('proxy-stone-discovery');
  });

  it('conforms to the Compose Specification (JSON schema)', function () {
    // The schema is carried in the repository (see its NOTICE); ajv is a declared dev dependency.
    const schemaFile = path.join(ROOT, 'test/deploy/schema/compose-spec.json');
    // ajv is CommonJS: under NodeNext its class is the default export's `default`.
    const AjvClass = (AjvModule.default as unknown as { default: typeof AjvModule.Ajv }).default;
    const ajv = new AjvClass({ strict: false, allErrors: true, validateSchema: false });
    const validate = ajv.compile(JSON.parse(readFileSync(schemaFile, 'utf8')) as object);
    const valid = validate(compose);
    expect(valid, JSON.stringify(validate.errors, null, 1)).to.equal(true);
    // And it does reject a malformed file.
    expect(validate({ services: { x: { depends_on: 5, ports: 'nope' } } })).to.equal(false);
  });

  it('depends_on names existing services; named volumes are declared; bind mounts exist', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const dep of dependsOn(s)) expect(names, `${name} depends on ${dep}`).to.include(dep);
      for (const m of volumeMounts(s)) {
        if (m.bind) expect(existsSync(path.resolve(COMPOSE_DIR, m.source)), `${name}: ${m.source}`).to.equal(true);
        else expect(compose.volumes ?? {}, `${name}: volume ${m.source}`).to.have.property(m.source);
      }
    }
    const used = new Set(Object.values(services).flatMap((s) => volumeMounts(s).filter((m) => !m.bind).map((m) => m.source)));
    expect([...Object.keys(compose.volumes ?? {})].filter((v) => !used.has(v)), 'unused volumes').to.deep.equal([]);
  });

  it('publishes unique host ports, on 127.0.0.1 only', () => {
    const hostPorts = Object.values(services).flatMap((s) => (s.ports ?? []).map(parsePort));
    expect(new Set(hostPorts.map((p) => p.host)).size).to.equal(hostPorts.length);
    for (const p of hostPorts) expect(p.ip, `port ${p.host}`).to.equal('127.0.0.1');
  });

  it('etcd members agree on the cluster: names, peer URLs, initial-cluster with all three, token, data on a volume', () => {
    const flags = etcdNames.map((n) => ({ name: n, flags: commandFlags(services[n]!) }));
    const initialCluster = flags[0]!.flags.get('initial-cluster')!;
    const members = new Map(initialCluster.split(',').map((m) => m.split('=') as [string, string]));
    expect([...members.keys()].sort()).to.deep.equal(etcdNames);
    for (const { name, flags: f } of flags) {
      expect(f.get('name'), name).to.equal(name);
      expect(f.get('initial-cluster'), `${name}: same initial-cluster`).to.equal(initialCluster);
      expect(f.get('initial-cluster-token'), `${name}: same token`).to.equal(flags[0]!.flags.get('initial-cluster-token'));
      expect(f.get('initial-cluster-state')).to.equal('new');
      expect(f.get('initial-advertise-peer-urls'), `${name}: advertised peer URL is its initial-cluster entry`).to.equal(members.get(name));
      expect(new URL(members.get(name)!).hostname).to.equal(name);
      expect(new URL(f.get('advertise-client-urls')!).hostname).to.equal(name);
      expect(new URL(f.get('listen-peer-urls')!).port).to.equal(new URL(members.get(name)!).port);
      expect(new URL(f.get('listen-client-urls')!).port).to.equal(new URL(f.get('advertise-client-urls')!).port);
      expect(volumeMounts(services[name]!).map((m) => m.target), `${name}: data dir on a volume`).to.include(f.get('data-dir'));
    }
  });

  it("agents use only real settings (the seed's variables included), with values the agent's own loader accepts", () => {
    const known = agentEnvNames();
    for (const name of agentNames) {
      const env = envOf(services[name]!);
      expect(Object.keys(env).filter((k) => !known.has(k)), `${name}: unknown variables`).to.deep.equal([]);
      expect(Object.keys(env), name).to.include.members(SEED_ENV);
      // The same loader as the agent: a bad value here would stop the container at start.
      const { config } = resolveConfig({ env });
      expect(config.cluster.discovery.registry).to.equal('etcd');
      expect(config.api.host).to.equal('0.0.0.0');
    }
  });

  it('each agent points at its own instance, at every etcd member, and advertises its own API', () => {
    const ids = new Set<string>();
    for (const name of agentNames) {
      const s = services[name]!;
      const env = envOf(s);
      const n = name.replace('sd-agent-', '');
      const instance = services[env.SERVICE_HOST!];
      expect(instance, `${name}: SERVICE_HOST=${env.SERVICE_HOST} is a service`).to.not.equal(undefined);
      expect(env.SERVICE_HOST).to.equal(`proxy-stone-${n}`);
      expect(envOf(instance!).PORT, `${name}: SERVICE_PORT is the instance's port`).to.equal(env.SERVICE_PORT);
      expect(dependsOn(s)).to.include.members([env.SERVICE_HOST!, ...etcdNames]);
      ids.add(env.SERVICE_ID!);
      const endpoints = env.SERVICE_DISCOVERY_ENDPOINTS!.split(',').map((u) => new URL(u));
      expect(endpoints.map((u) => u.hostname).sort()).to.deep.equal(etcdNames);
      for (const u of endpoints) expect(new URL(commandFlags(services[u.hostname]!).get('advertise-client-urls')!).port).to.equal(u.port);
      const apiPort = Number(env.SERVICE_DISCOVERY_API_PORT);
      expect((s.ports ?? []).map(parsePort).map((p) => p.container), `${name}: publishes its API port`).to.include(apiPort);
      expect(env.SERVICE_DISCOVERY_ADVERTISE_URL).to.equal(`http://${name}:${apiPort}`);
      expect(s.build?.context && path.resolve(COMPOSE_DIR, s.build.context, s.build.dockerfile ?? 'Dockerfile')).to.equal(path.join(ROOT, 'Dockerfile'));
    }
    expect(ids.size, 'distinct service ids').to.equal(agentNames.length);
  });

  it('Prometheus loads docs/prometheus/prometheus.yml, its rule file, and scrapes every agent and etcd member', () => {
    const p = services.prometheus!;
    const flags = commandFlags(p);
    const mounts = volumeMounts(p);
    const configMount = mounts.find((m) => m.target === flags.get('config.file'));
    expect(configMount && path.resolve(COMPOSE_DIR, configMount.source)).to.equal(path.join(ROOT, 'docs/prometheus/prometheus.yml'));
    expect(mounts.map((m) => m.target), 'TSDB on a volume').to.include(flags.get('storage.tsdb.path'));
    const config = parseYaml(readFileSync(path.join(ROOT, 'docs/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[]; labels?: Record<string, string> }> }>;
    };
    for (const rules of config.rule_files) {
      const inContainer = path.posix.resolve(path.posix.dirname(flags.get('config.file')!), rules);
      const mount = mounts.find((m) => m.target === inContainer);
      expect(mount, `${rules} is mounted at ${inContainer}`).to.not.equal(undefined);
      expect(existsSync(path.resolve(COMPOSE_DIR, mount!.source))).to.equal(true);
    }
    const job = (name: string) => config.scrape_configs.find((j) => j.job_name === name)!.static_configs;
    const agentTargets = job('proxy-stone-sd');
    expect(agentTargets.flatMap((c) => c.targets).sort()).to.deep.equal(
      agentNames.map((n) => `${n}:${envOf(services[n]!).SERVICE_DISCOVERY_API_PORT}`).sort(),
    );
    for (const c of agentTargets) {
      const env = envOf(services[c.targets[0]!.split(':')[0]!]!);
      expect(c.labels, c.targets[0]).to.deep.equal({ service_id: env.SERVICE_ID, region: env.SERVICE_REGION, zone: env.SERVICE_ZONE });
    }
    expect(job('etcd').flatMap((c) => c.targets).sort()).to.deep.equal(etcdNames.map((n) => `${n}:2379`));
    expect(dependsOn(p)).to.include.members(agentNames);
  });

  it('Grafana is provisioned with the Prometheus data source and the dashboard from docs/grafana', () => {
    const g = services.grafana!;
    const mounts = volumeMounts(g);
    const provisioning = mounts.find((m) => m.target === '/etc/grafana/provisioning')!;
    expect(path.resolve(COMPOSE_DIR, provisioning.source)).to.equal(path.join(COMPOSE_DIR, 'grafana/provisioning'));
    const ds = parseYaml(readFileSync(path.join(COMPOSE_DIR, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: Array<{ type: string; url: string }>;
    };
    const url = new URL(ds.datasources[0]!.url);
    expect(ds.datasources[0]!.type).to.equal('prometheus');
    expect(names).to.include(url.hostname);
    expect(url.port).to.equal('9090');
    const providers = parseYaml(readFileSync(path.join(COMPOSE_DIR, 'grafana/provisioning/dashboards/proxy-stone-sd.yml'), 'utf8')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const dashboards = mounts.find((m) => m.target === providers.providers[0]!.options.path);
    expect(dashboards, 'the provider path is mounted').to.not.equal(undefined);
    expect(existsSync(path.resolve(COMPOSE_DIR, dashboards!.source, 'proxy-stone-sd.json'))).to.equal(true);
    const home = envOf(g).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(home.startsWith(`${dashboards!.target}/`)).to.equal(true);
    expect(existsSync(path.resolve(COMPOSE_DIR, dashboards!.source, path.posix.basename(home)))).to.equal(true);
  });

  it('instances run the stand-in, which answers like Proxy-Stone', async function () {
    this.timeout(15_000);
    for (const name of instanceNames) {
      const s = services[name]!;
      expect(s.command).to.deep.equal(['node', '/standin/server.mjs']);
      const mount = volumeMounts(s).find((m) => m.target === '/standin')!;
      expect(existsSync(path.resolve(COMPOSE_DIR, mount.source, 'server.mjs'))).to.equal(true);
    }
    const [port] = await freePorts(1);
    const standin = spawn(process.execPath, [path.join(COMPOSE_DIR, 'standin/server.mjs')], { env: { ...cleanEnv(), PORT: String(port), HOST: '127.0.0.1' }, stdio: 'ignore' });
    try {
      const url = `http://127.0.0.1:${port}`;
      const health = await eventually('stand-in up', async () => {
        const r = await fetch(`${url}/health`);
        return r.status === 200 ? ((await r.json()) as { status: string }) : undefined;
      });
      expect(health.status).to.equal('ok');
      expect((await fetch(`${url}/admin/down`, { method: 'POST' })).status).to.equal(200);
      const down = await fetch(`${url}/health`);
      expect(down.status).to.equal(503);
      expect(((await down.json()) as { status: string }).status).to.equal('unhealthy');
      expect((await fetch(`${url}/health/live`)).status).to.equal(200);
      await fetch(`${url}/api/cluster/disable-serving`, { method: 'POST' });
      expect(await (await fetch(`${url}/api/cluster/service-status`)).json()).to.deep.equal({ status: { mode: 'maintenance', enabled: false } });
    } finally {
      standin.kill('SIGTERM');
    }
  });
});

// ---- Dockerfile and .dockerignore ----

interface Instruction {
  op: string;
  args: string;
  stage: string;
}

function dockerfile(): Instruction[] {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\r?\n/g, ' ');
  const out: Instruction[] = [];
  let stage = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage = /\bAS\s+(\S+)/i.exec(m[2]!)?.[1] ?? m[2]!;
    out.push({ op, args: m[2]!, stage });
  }
  return out;
}

/** Docker's .dockerignore rules: globs on slash paths, a directory match covers its contents, `!` re-includes, the last match wins. */
function dockerIgnored(file: string, patterns: string[]): boolean {
  const toRegExp = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .map((seg) => (seg === '**' ? '.*' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?')}$`,
    );
  const parents = file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = toRegExp(negate ? raw.slice(1) : raw);
    if (parents.some((p) => re.test(p))) ignored = !negate;
  }
  return ignored;
}

function filesUnder(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.posix.join(dir, e.name)) : [path.posix.join(dir, e.name)],
  );
}

describe('deploy: Dockerfile', () => {
  const instructions = dockerfile();
  const stages = [...new Set(instructions.map((i) => i.stage))];
  const final = stages.at(-1)!;
  const inFinal = (op: string) => instructions.filter((i) => i.stage === final && i.op === op);
  const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it('is multi-stage on a slim Node 24 image and installs only production dependencies in the final stage', () => {
    expect(stages.length).to.be.at.least(2);
    for (const from of instructions.filter((i) => i.op === 'FROM')) expect(from.args).to.match(/^node:\$\{NODE_VERSION\}-bookworm-slim\b|^node:24[.\d]*-bookworm-slim\b/);
    expect(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).to.match(/ARG NODE_VERSION=24\b/);
    expect(inFinal('RUN').some((r) => /npm ci --omit=dev/.test(r.args))).to.equal(true);
    expect(instructions.filter((i) => i.stage !== final && i.op === 'RUN').some((r) => /npm run build/.test(r.args))).to.equal(true);
  });

  it('runs as a non-root user, through an init and an exec-ing entrypoint, with a HEALTHCHECK on GET /health', () => {
    const user = inFinal('USER').at(-1)?.args;
    expect(user).to.be.a('string').and.not.match(/^(root|0)(:|$)/);
    const entrypoint = JSON.parse(inFinal('ENTRYPOINT').at(-1)!.args) as string[];
    expect(entrypoint[0]).to.equal('/usr/bin/tini');
    expect(entrypoint.at(-1)).to.equal('docker-entrypoint.sh');
    expect(JSON.parse(inFinal('CMD').at(-1)!.args)).to.deep.equal(['agent']);
    const health = inFinal('HEALTHCHECK').at(-1)!.args;
    expect(health).to.match(/\/health'/).and.match(/SERVICE_DISCOVERY_API_PORT/);
    expect(readFileSync(ENTRYPOINT, 'utf8')).to.match(/^exec "\$@"$/m);
  });

  it('COPY sources exist and the .dockerignore allowlist lets them into the build context', () => {
    const copies = instructions.filter((i) => i.op === 'COPY' && !/--from=/.test(i.args));
    expect(copies.length).to.be.greaterThan(3);
    for (const c of copies) {
      const parts = c.args.split(/\s+/).filter((a) => !a.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        expect(existsSync(path.join(ROOT, source)), `COPY ${source}`).to.equal(true);
        const files = statSync(path.join(ROOT, source)).isDirectory() ? filesUnder(source) : [source];
        const excluded = files.filter((f) => dockerIgnored(f, ignore));
        expect(excluded, `COPY ${source}: excluded by .dockerignore`).to.deep.equal([]);
      }
    }
    // And what must stay out does.
    for (const f of ['node_modules/etcd3/package.json', 'dist/index.js', 'test/deploy/compose.test.ts', '.git/config', 'docs/design.md']) {
      expect(dockerIgnored(f, ignore), f).to.equal(true);
    }
  });

  it('copies from the build stage what `npm run build` produces, and the env it sets names real settings', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; oclif: { commands: string } };
    expect(pkg.scripts.build).to.include('oclif manifest');
    const fromBuild = instructions.filter((i) => i.op === 'COPY' && /--from=/.test(i.args));
    for (const c of fromBuild) expect(stages, c.args).to.include(/--from=(\S+)/.exec(c.args)![1]);
    const copied = fromBuild.map((c) => c.args.split(/\s+/).at(-2));
    expect(copied).to.include.members(['/app/dist', '/app/oclif.manifest.json']);
    expect(pkg.oclif.commands).to.equal('./dist/commands');
    const known = agentEnvNames();
    const env = inFinal('ENV').flatMap((e) => [...e.args.matchAll(/(\w+)=/g)].map((m) => m[1]!));
    expect(env.filter((k) => k.startsWith('SERVICE_') && !known.has(k))).to.deep.equal([]);
    const port = /SERVICE_DISCOVERY_API_PORT=(\d+)/.exec(inFinal('ENV').map((e) => e.args).join(' '))![1];
    expect(inFinal('EXPOSE').map((e) => e.args)).to.include(port);
  });
});

// ---- the entrypoint, run directly (not in Docker) with an agent's compose environment ----

describe('deploy: deploy/docker-entrypoint.sh with sd-agent-1 environment against a real etcd', function () {
  this.timeout(45_000);
  let tmp: string;
  let agent: LoggedProcess | undefined;
  let standin: ReturnType<typeof spawn> | undefined;
  let client: Etcd3 | undefined;

  before(() => {
    assertBuilt();
    tmp = mkdtempSync(path.join(tmpdir(), 'sd-entrypoint-'));
    // The image links /usr/local/bin/proxy-stone-sd to bin/run.js; do the same on a PATH of our own.
    symlinkSync(BIN, path.join(tmp, 'proxy-stone-sd'));
  });
  after(async () => {
    await agent?.stop();
    standin?.kill('SIGTERM');
    client?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('is valid sh', () => {
    const r = spawnSync('sh', ['-n', ENTRYPOINT], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
  });

  it('execs the agent (node is the process), which registers with the compose settings, passes the HEALTHCHECK, and deregisters on SIGTERM', async () => {
    const etcd = await sharedEtcd();
    const namespace = uniqueNamespace('deploy-entrypoint');
    const [instancePort, apiPort] = await freePorts(2);
    standin = spawn(process.execPath, [path.join(COMPOSE_DIR, 'standin/server.mjs')], {
      env: { ...cleanEnv(), PORT: String(instancePort), HOST: '127.0.0.1' },
      stdio: 'ignore',
    });
    const env = envOf(services['sd-agent-1']!);
    // Only what names the network changes: etcd, the instance and the API are on 127.0.0.1 here.
    const local = {
      ...env,
      SERVICE_DISCOVERY_ENDPOINTS: etcd.endpoint,
      SERVICE_DISCOVERY_NAMESPACE: namespace,
      SERVICE_HOST: '127.0.0.1',
      SERVICE_PORT: String(instancePort),
      SERVICE_DISCOVERY_API_HOST: '127.0.0.1',
      SERVICE_DISCOVERY_API_PORT: String(apiPort),
      SERVICE_DISCOVERY_ADVERTISE_URL: `http://127.0.0.1:${apiPort}`,
    };
    const procEnv = cleanEnv({ ...local, PATH: `${tmp}${path.delimiter}${process.env.PATH ?? ''}` });
    agent = new LoggedProcess(spawn('sh', [ENTRYPOINT], { env: procEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
    const registered = await agent.waitForEvent('registered', 20_000);
    expect(registered.serviceId).to.equal(env.SERVICE_ID);

    // exec: the pid we started is node running proxy-stone-sd, not a shell waiting for it.
    const cmdline = readFileSync(`/proc/${agent.proc.pid}/cmdline`, 'utf8').split('\0');
    expect(path.basename(cmdline[0]!)).to.match(/^node/);
    expect(cmdline.slice(1, 3)).to.deep.equal([path.join(tmp, 'proxy-stone-sd'), 'agent']);

    client = new Etcd3({ hosts: etcd.endpoint });
    const key = `${namespace}/services/${env.SERVICE_ID}`;
    const record = await eventually('a healthy record', async () => {
      const value = await client!.get(key).string();
      const r = value ? (JSON.parse(value) as Record<string, unknown>) : undefined;
      return r?.status === 'healthy' ? r : undefined;
    }, 15_000);
    expect(record).to.include({ id: env.SERVICE_ID, name: env.SERVICE_NAME, version: env.SERVICE_VERSION, region: env.SERVICE_REGION, zone: env.SERVICE_ZONE });

    // The image's HEALTHCHECK command, run as Docker would (with the container's env).
    // Docker marks a container unhealthy after --retries=3 failed checks in a row; allow the same.
    const health = inFinalHealthcheck();
    const runCheck = () => spawnSync(health[0] === 'node' ? process.execPath : health[0]!, health.slice(1), { env: procEnv, encoding: 'utf8', timeout: 10_000 });
    let check = runCheck();
    for (let attempt = 1; attempt < 3 && check.status !== 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      check = runCheck();
    }
    expect(check.status, `${check.stdout}${check.stderr}`).to.equal(0);

    const exit = await agent.stop();
    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(await client.get(key).string(), 'the entry leaves at once').to.equal(null);
    expect(agent.badLines).to.deep.equal([]);
  });

  it('routes CLI commands to proxy-stone-sd (`status`) and runs other programs as they are', () => {
    const env = cleanEnv({ PATH: `${tmp}${path.delimiter}${process.env.PATH ?? ''}` });
    const status = spawnSync('sh', [ENTRYPOINT, 'status', '--endpoints', 'http://127.0.0.1:1', '--timeout', '1', '--json'], { env, encoding: 'utf8', timeout: 20_000 });
    expect(status.status, status.stderr).to.equal(4);
    expect(JSON.parse(status.stdout)).to.have.nested.property('registry.reachable', false);
    const echo = spawnSync('sh', [ENTRYPOINT, 'echo', 'hello'], { env, encoding: 'utf8' });
    expect(echo.stdout).to.equal('hello\n');
  });
});

function inFinalHealthcheck(): string[] {
  const instructions = dockerfile();
  const final = instructions.at(-1)!.stage;
  const hc = instructions.filter((i) => i.stage === final && i.op === 'HEALTHCHECK').at(-1)!.args;
  return JSON.parse(/CMD\s+(\[.*\])\s*$/.exec(hc)![1]!) as string[];
}
