import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedRedis } from '../helpers/redis.js';
import { assertBuilt, BIN, ClusterReader, spawnAgent, waitFor, type AgentProcess } from '../helpers/cluster.js';

interface ListJson {
  services: { id: string; role: string; enabled: boolean; status: string; isHealthy: boolean; disabledReason?: string }[];
  total: number;
}

/**
 * Three real agent processes on a real redis-server, read the way an operator would: the CLI straight
 * from Redis (`--endpoints redis://…`), and an agent's HTTP API.
 */
describe('agent processes on Redis, through the CLI and the API', function () {
  this.timeout(60_000);
  let endpoint: string;
  let namespace: string;
  let reader: ClusterReader;
  let upstreams: SampleUpstream[] = [];
  let agents: AgentProcess[] = [];
  let apiUrl: string;

  /** Runs the CLI without blocking this process (the sample upstreams answer health checks from here). */
  const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, NO_COLOR: '1', SERVICE_DISCOVERY_ENDPOINTS: '', PROXY_STONE_SD_AGENT: '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });
  const cli = (...args: string[]) => run([...args, '--endpoints', endpoint, '--namespace', namespace]);

  before(async () => {
    assertBuilt();
    endpoint = (await sharedRedis()).endpoint;
    namespace = uniqueNamespace('redis-cluster');
    reader = new ClusterReader(endpoint, namespace);
    upstreams = await Promise.all([0, 1, 2].map(() => startSampleUpstream()));
    agents = upstreams.map((u, i) =>
      spawnAgent({
        endpoint,
        namespace,
        id: `ps-${i + 1}`,
        servicePort: u.port,
        region: i === 2 ? 'us-west-2' : 'us-east-1',
        ...(i === 0 ? { flags: ['--api', '--api-port', '0'] } : {}),
      }),
    );
    apiUrl = await waitFor(
      'ps-1 serving its API',
      () => /"event":"api.listening","url":"([^"]+)"/.exec(agents[0]!.output())?.[1],
      15_000,
    );
    await waitFor(
      'three healthy services and one leader',
      async () => {
        const state = await reader.read();
        return state.services().length === 3 && state.services().every((s) => s.status === 'healthy') && state.leaderId() !== null;
      },
      15_000,
    );
  });

  after(async function () {
    for (const a of agents) a.signal('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    await Promise.all(upstreams.map((u) => u.close()));
    await reader?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const a of agents) console.error(`--- ${a.id} ---\n${a.output().slice(-3000)}`);
  });

  it('services list --json and topology --json show three healthy services and one leader', async () => {
    const list = await cli('services', 'list', '--json');
    expect(list.code, list.err).to.equal(0);
    const body = JSON.parse(list.out) as ListJson;
    expect(body.total).to.equal(3);
    expect(body.services.map((s) => s.id)).to.deep.equal(['ps-1', 'ps-2', 'ps-3']);
    expect(body.services.filter((s) => s.role === 'leader')).to.have.length(1);
    expect(body.services.every((s) => s.isHealthy)).to.equal(true);

    const topo = await cli('topology', '--json');
    expect(topo.code, topo.err).to.equal(0);
    const t = JSON.parse(topo.out) as { totalServices: number; servicesByRegion: Record<string, number>; leader: { id: string } | null };
    expect(t.totalServices).to.equal(3);
    expect(t.servicesByRegion).to.deep.equal({ 'us-east-1': 2, 'us-west-2': 1 });
    expect(body.services.find((s) => s.role === 'leader')!.id).to.equal(t.leader!.id);
  });

  it('status --json names the Redis server and its version', async () => {
    const status = await cli('status', '--json');
    expect(status.code, status.err).to.equal(0);
    const s = JSON.parse(status.out) as { registry: { reachable: boolean; version: string; endpoints: string }; counts: { total: number } };
    expect(s.registry.reachable).to.equal(true);
    expect(s.registry.version).to.match(/^\d+\.\d+\.\d+/);
    expect(s.registry.endpoints).to.equal(endpoint);
    expect(s.counts.total).to.equal(3);
  });

  it('services disable through Redis reaches the agents (API) and the event stream; enable undoes it', async () => {
    const events = spawn(process.execPath, [BIN, 'events', '--json', '--duration', '15', '--types', 'serviceDisabled,serviceEnabled', '--endpoints', endpoint, '--namespace', namespace], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    events.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      // The event stream lists first; give it a moment to be watching.
      await new Promise((r) => setTimeout(r, 1500));
      const disabled = await cli('services', 'disable', 'ps-2', '--reason', 'maintenance');
      expect(disabled.code, disabled.err).to.equal(0);
      const api = await waitFor(
        'the API to show ps-2 disabled',
        async () => {
          const res = await fetch(`${apiUrl}/service-discovery/services`);
          const body = (await res.json()) as ListJson;
          return body.services.find((s) => s.id === 'ps-2')?.enabled === false ? body : undefined;
        },
        10_000,
        100,
      );
      expect(api.services).to.have.length(3);
      expect(api.services.find((s) => s.id === 'ps-2')!.disabledReason).to.equal('maintenance');
      const enabled = await cli('services', 'enable', 'ps-2');
      expect(enabled.code, enabled.err).to.equal(0);
      await waitFor('both events on the stream', () => /serviceDisabled[\s\S]*serviceEnabled/.test(out), 10_000, 100);
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; serviceId: string });
      expect(lines.map((l) => [l.type, l.serviceId])).to.deep.equal([
        ['serviceDisabled', 'ps-2'],
        ['serviceEnabled', 'ps-2'],
      ]);
    } finally {
      events.kill('SIGTERM');
    }
  });

  it('doctor checks the Redis server, its persistence and the namespace', async () => {
    const doctor = await cli('doctor', '--json');
    const body = JSON.parse(doctor.out) as { checks: { name: string; ok: boolean; detail: string; skipped?: boolean }[] };
    const byName = new Map(body.checks.map((c) => [c.name, c]));
    expect(byName.get('redis server')?.ok, doctor.out).to.equal(true);
    expect(byName.get('redis persistence')?.detail).to.match(/^AOF on/);
    expect(byName.get('namespace')?.detail).to.match(/3 services/);
    expect(byName.get('leader')?.ok).to.equal(true);
  });

  it('doctor with no target follows a config file that names Redis', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'sd-doctor-'));
    try {
      const file = join(dir, 'config.json');
      writeFileSync(file, JSON.stringify({ cluster: { discovery: { endpoints: [endpoint], namespace } } }));
      const doctor = await run(['doctor', '--json', '--config', file]);
      const body = JSON.parse(doctor.out) as { checks: { name: string; ok: boolean; detail: string }[] };
      expect(body.checks.map((c) => c.name)).to.include('redis server');
      expect(body.checks.find((c) => c.name === 'namespace')?.detail).to.match(/3 services/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreachable Redis is one line and exit code 4; a malformed URL exit code 2, without its password', async () => {
    const unreachable = await run(['services', 'list', '--endpoints', 'redis://127.0.0.1:1', '--timeout', '2']);
    expect(unreachable.code, unreachable.err).to.equal(4);
    expect(unreachable.err.trim().split('\n')).to.have.length(1);
    expect(unreachable.err).to.match(/^Error: registry redis:\/\/127\.0\.0\.1:1 unreachable: connect ECONNREFUSED/);
    const bad = await run(['services', 'list', '--endpoints', 'redis://:hunter2@127.0.0.1:6379/99x']);
    expect(bad.code, bad.err).to.equal(2);
    expect(bad.err).to.match(/expected one Redis URL/);
    expect(bad.err).to.not.include('hunter2');
  });

  it('a wrong password is refused: one line naming the endpoint, exit code 5', async () => {
    const { startRedis } = await import('../helpers/redis.js');
    const own = await startRedis({ password: 'right' });
    try {
      const res = await run(['services', 'list', '--endpoints', `redis://:wrong@127.0.0.1:${own.port}`, '--timeout', '2']);
      expect(res.code, res.err).to.equal(5);
      expect(res.err.trim()).to.match(new RegExp(`^Error: registry redis://127\\.0\\.0\\.1:${own.port} refused: wrong user name or password`));
      expect(res.err).to.not.include('wrong@');
    } finally {
      await own.stop();
    }
  });

  it('takes the password as --registry-password too; with --etcd-password of another value it is one line naming both, exit code 2', async () => {
    const { startRedis } = await import('../helpers/redis.js');
    const own = await startRedis({ password: 'right' });
    const target = ['--endpoints', `redis://127.0.0.1:${own.port}`, '--namespace', namespace, '--timeout', '2'];
    try {
      const neutral = await run(['services', 'list', '--json', ...target, '--registry-password', 'right']);
      expect(neutral.code, neutral.err).to.equal(0);
      // Typed on the command line, it beats the environment variable (bound to the etcd name).
      const overEnv = await run(['services', 'list', '--json', ...target, '--registry-password', 'right'], { SERVICE_DISCOVERY_PASSWORD: 'wrong' });
      expect(overEnv.code, overEnv.err).to.equal(0);
      const same = await run(['services', 'list', '--json', ...target, '--etcd-password', 'right', '--registry-password', 'right']);
      expect(same.code, same.err).to.equal(0);
      const both = await run(['services', 'list', ...target, '--etcd-password', 'wrong', '--registry-password', 'right']);
      expect(both.code, both.err).to.equal(2);
      expect(both.err.trim()).to.equal(
        'Error: --etcd-password and --registry-password both given, with different values: they are the same setting, give one of them',
      );
    } finally {
      await own.stop();
    }
  });

  it('a password Redis does not need: the CLI says so in one Warning line, without ioredis\'s [WARN]', async () => {
    const res = await cli('services', 'list', '--json', '--registry-password', 'not-needed');
    expect(res.code, res.err).to.equal(0);
    expect((JSON.parse(res.out) as ListJson).total).to.equal(3);
    expect(res.err.trim().split('\n')).to.deep.equal([
      `Warning: registry ${endpoint} requires no password, but one was given: it is not needed; if this server should require one, check its requirepass or ACL setup`,
    ]);
    // doctor says it in its check instead.
    const doctor = await cli('doctor', '--json', '--registry-password', 'not-needed');
    const body = JSON.parse(doctor.out) as { checks: { name: string; ok: boolean; detail: string }[] };
    const server = body.checks.find((c) => c.name === 'redis server');
    expect(server?.ok, doctor.out).to.equal(true);
    expect(server?.detail).to.match(/; a password was given but the server requires none \(check its requirepass if it should\)$/);
    expect(doctor.err).to.not.include('[WARN]');
  });

  it('a password Redis does not need: the agent logs registry.auth_unneeded once, as a JSON line, and nothing else on stderr', async () => {
    const upstream = await startSampleUpstream();
    const agent = spawnAgent({
      endpoint,
      namespace: uniqueNamespace('redis-auth-unneeded'),
      id: 'ps-nopass',
      servicePort: upstream.port,
      env: { SERVICE_DISCOVERY_PASSWORD: 'not-needed' },
    });
    try {
      await waitFor('the agent started', () => agent.output().includes('"event":"agent.started"'), 15_000);
      const lines = agent.output().trim().split('\n');
      const notJson = lines.filter((l) => !l.startsWith('{'));
      expect(notJson, 'every line is a JSON log line').to.deep.equal([]);
      const warned = lines.map((l) => JSON.parse(l) as { event?: string; level: number; msg: string }).filter((l) => l.event === 'registry.auth_unneeded');
      expect(warned).to.have.length(1);
      expect(warned[0]!.level).to.equal(40); // pino's warn
      expect(warned[0]!.msg).to.match(/^registry redis:\/\/127\.0\.0\.1:\d+ requires no password, but one was given/);
      expect(agent.output()).to.not.include('not-needed');
    } finally {
      agent.signal('SIGTERM');
      await agent.exited;
      await upstream.close();
    }
  });
});
