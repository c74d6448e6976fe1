import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runAgent } from '../../src/agent/run.js';
import { capturingLogger, eventually } from '../api/fixtures.js';
import { deadPort } from '../helpers/loopback.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { makePki, type Pki } from '../security/pki.js';
import { API_KEY, ensureBuilt, json, runCli, startCluster, type CliResult, type TestCluster } from './fixtures.js';

/** One line on stderr, `Error: …`, nothing else. */
function oneErrorLine(res: CliResult): string {
  expect(res.stderr, res.stderr).to.match(/^Error: [^\n]+\n$/);
  return res.stderr.trim();
}

describe('CLI: contexts (built binary, real etcd and Redis)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  let dir: string;
  let file: string;
  const env = (extra: NodeJS.ProcessEnv = {}) => ({ env: { PROXY_STONE_SD_CONTEXTS_FILE: file, ...extra } });

  before(async function () {
    this.timeout(120_000);
    ensureBuilt();
    cluster = await startCluster(1, { idPrefix: 'ctx' });
    dir = mkdtempSync(path.join(tmpdir(), 'sd-contexts-'));
    // In a directory that does not exist yet: `context set` creates it.
    file = path.join(dir, 'config', 'proxy-stone-sd', 'contexts.yaml');
  });
  after(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a context set once serves every later command; the file is 0600 and written whole', async () => {
    const set = await runCli(['context', 'set', 'test', '--endpoints', cluster.endpoint, '--namespace', cluster.namespace, '--json'], env());
    expect(set.code, set.stderr).to.equal(0);
    expect(json(set)).to.deep.equal({
      file,
      created: true,
      context: { name: 'test', current: true, endpoints: [cluster.endpoint], namespace: cluster.namespace },
    });
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(readdirSync(path.dirname(file)), 'no temp file left beside it').to.deep.equal(['contexts.yaml']);

    const status = await runCli(['status', '--json'], env());
    expect(status.code, status.stderr).to.equal(0);
    expect(json<{ namespace: string; counts: { total: number } }>(status)).to.deep.include({ namespace: cluster.namespace });
    expect(json<{ counts: { total: number } }>(status).counts.total).to.equal(1);
    const list = await runCli(['services', 'list', '--json'], env());
    expect(json<{ services: { id: string }[] }>(list).services.map((s) => s.id)).to.deep.equal(['ctx-1']);
    const doctor = await runCli(['doctor', '--json'], env());
    const checks = json<{ checks: { name: string; ok: boolean; detail: string }[] }>(doctor).checks;
    expect(checks[0]).to.deep.equal({ name: 'context', ok: true, detail: `test (${file})` });
    expect(checks.find((c) => c.name === 'namespace')?.detail ?? '').to.not.match(/empty|no services/);
  });

  it('flags and environment beat the context; --context and PROXY_STONE_SD_CONTEXT pick another', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    expect((await runCli(['context', 'set', 'elsewhere', '--endpoints', dead, '--namespace', 'nowhere'], env())).code).to.equal(0);
    // The first context stays current.
    expect(json<{ current: string }>(await runCli(['context', 'list', '--json'], env())).current).to.equal('test');

    for (const res of [
      await runCli(['status', '--context', 'elsewhere', '--timeout', '1'], env()),
      await runCli(['status', '--timeout', '1'], env({ PROXY_STONE_SD_CONTEXT: 'elsewhere' })),
      await runCli(['status', '--timeout', '1'], env({ SERVICE_DISCOVERY_ENDPOINTS: dead })),
    ]) {
      expect(res.code, res.stderr).to.equal(4);
      expect(res.stdout + res.stderr).to.include(dead);
    }
    // A typed --namespace beats the context's, the context's endpoints stay.
    const other = json<{ namespace: string; counts: { total: number } }>(await runCli(['status', '--namespace', 'ctx-empty-ns', '--json'], env()));
    expect(other).to.deep.include({ namespace: 'ctx-empty-ns' });
    expect(other.counts.total).to.equal(0);
    // A target typed on the command line replaces the context's endpoints; its namespace still applies.
    const typed = json<{ namespace: string; registry: { endpoints: string } }>(await runCli(['status', '--context', 'elsewhere', '--endpoints', cluster.endpoint, '--json'], env()));
    expect(typed).to.deep.include({ namespace: 'nowhere' });
    expect(typed.registry.endpoints).to.equal(cluster.endpoint);
  });

  it('--context typed on the command line beats the environment\'s target, namespace and credentials (an agent\'s container names its own cluster)', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    // The environment of an agent's container: another cluster, its namespace, its key and password.
    const agentEnv = env({
      SERVICE_DISCOVERY_ENDPOINTS: dead,
      SERVICE_DISCOVERY_NAMESPACE: 'the-local-one',
      SERVICE_DISCOVERY_API_KEY: 'local-agent-key-0123456789',
      SERVICE_DISCOVERY_USERNAME: 'local-user',
      SERVICE_DISCOVERY_PASSWORD: 'local-etcd-password',
    });
    // Credentials alone in the environment are used with the current context (this etcd has no auth,
    // so it refuses them), and not with a context typed on the command line.
    const credsOnly = { SERVICE_DISCOVERY_USERNAME: 'local-user', SERVICE_DISCOVERY_PASSWORD: 'local-etcd-password' };
    expect((await runCli(['status', '--timeout', '2'], env(credsOnly))).code).to.not.equal(0);
    const withCreds = await runCli(['status', '--context', 'test', '--json'], env(credsOnly));
    expect(withCreds.code, withCreds.stderr).to.equal(0);
    const named = await runCli(['status', '--context', 'test', '--json'], agentEnv);
    expect(named.code, named.stderr).to.equal(0);
    const seen = json<{ namespace: string; registry: { endpoints: string }; counts: { total: number } }>(named);
    expect(seen).to.deep.include({ namespace: cluster.namespace });
    expect(seen.registry.endpoints).to.equal(cluster.endpoint);
    expect(seen.counts.total).to.equal(1);
    // A write through the named context reaches its cluster.
    const disable = await runCli(['services', 'disable', 'ctx-1', '--context', 'test', '--force', '--reason', 'context over env', '--json'], agentEnv);
    expect(disable.code, disable.stderr).to.equal(0);
    const enable = await runCli(['services', 'enable', 'ctx-1', '--context', 'test', '--json'], agentEnv);
    expect(enable.code, enable.stderr).to.equal(0);
    // Typed flags still beat the named context.
    const typed = json<{ namespace: string }>(await runCli(['status', '--context', 'test', '--namespace', 'ctx-typed-ns', '--json'], agentEnv));
    expect(typed).to.deep.include({ namespace: 'ctx-typed-ns' });
    // Without --context on the command line the environment still beats the current context and PROXY_STONE_SD_CONTEXT.
    for (const extra of [{}, { PROXY_STONE_SD_CONTEXT: 'test' }]) {
      const res = await runCli(['status', '--timeout', '1'], env({ SERVICE_DISCOVERY_ENDPOINTS: dead, ...extra }));
      expect(res.code, res.stderr).to.equal(4);
      expect(res.stdout + res.stderr).to.include(dead);
    }
  });

  it('an unknown context is a usage error listing the known ones', async () => {
    const res = await runCli(['services', 'list', '--context', 'prod'], env());
    expect(res.code).to.equal(2);
    expect(oneErrorLine(res)).to.equal(`Error: --context prod: no such context in ${file} (known: test, elsewhere)`);
    const fromEnv = await runCli(['status'], env({ PROXY_STONE_SD_CONTEXT: 'prod' }));
    expect(fromEnv.code).to.equal(2);
    expect(oneErrorLine(fromEnv)).to.match(/^Error: PROXY_STONE_SD_CONTEXT prod: no such context/);
    for (const args of [['context', 'use', 'prod'], ['context', 'show', 'prod'], ['context', 'delete', 'prod']]) {
      const r = await runCli(args, env());
      expect(r.code, args.join(' ')).to.equal(2);
      expect(oneErrorLine(r)).to.include('(known: test, elsewhere)');
    }
  });

  it('context use, show, list and delete', async () => {
    const use = await runCli(['context', 'use', 'elsewhere', '--json'], env());
    expect(json(use)).to.deep.equal({ file, name: 'elsewhere', current: 'elsewhere' });
    const show = await runCli(['context', 'show'], env());
    expect(show.stdout).to.match(/context: +elsewhere \(current\)/).and.match(/namespace: +nowhere/);
    const list = await runCli(['context', 'list'], env());
    expect(list.stdout).to.match(/\*.*elsewhere/).and.match(/test .*etcd http/);
    const del = await runCli(['context', 'delete', 'elsewhere', '--json'], env());
    expect(json(del)).to.deep.equal({ file, name: 'elsewhere', current: null });
    const none = await runCli(['context', 'show'], env());
    expect(none.code).to.equal(2);
    expect(oneErrorLine(none)).to.match(/^Error: no current context in .*: name one, or choose one with: proxy-stone-sd context use NAME \(known: test\)$/);
    // With no current context and no target, commands fall back to the default etcd, as before.
    expect(json<{ registry: { endpoints: string } }>(await runCli(['status', '--json', '--timeout', '1'], env())).registry.endpoints).to.equal('http://127.0.0.1:2379');
    expect((await runCli(['context', 'use', 'test'], env())).code).to.equal(0);
  });

  it('reads a file a person wrote in YAML: comments, a comma-separated endpoints string, paths relative to the file', async () => {
    const yamlFile = path.join(dir, 'by-hand', 'contexts.yaml');
    mkdirSync(path.dirname(yamlFile), { recursive: true });
    writeFileSync(
      yamlFile,
      [
        '# my clusters',
        'current: local',
        'contexts:',
        '  local:',
        `    endpoints: ${cluster.endpoint}, ${cluster.endpoint}  # twice: two members`,
        `    namespace: ${cluster.namespace}`,
        '  tls:',
        '    endpoints: https://127.0.0.1:2379',
        '    credentials:',
        '      caFile: certs/ca.pem',
        '',
      ].join('\n'),
    );
    const status = await runCli(['services', 'list', '--json'], { env: { PROXY_STONE_SD_CONTEXTS_FILE: yamlFile } });
    expect(status.code, status.stderr).to.equal(0);
    expect(json<{ services: { id: string }[] }>(status).services.map((s) => s.id)).to.deep.equal(['ctx-1']);
    const show = await runCli(['context', 'show', 'tls', '--json'], { env: { PROXY_STONE_SD_CONTEXTS_FILE: yamlFile } });
    expect(json<{ context: { credentials: { caFile: string } } }>(show).context.credentials.caFile).to.equal(path.join(dir, 'by-hand', 'certs', 'ca.pem'));
  });

  it('a bad contexts file is one line naming the file, the context and the field; a command that would write it leaves it as it was', async () => {
    const bad = path.join(dir, 'bad.yaml');
    const cases: [string, RegExp][] = [
      ['contexts: {prod: {endpoints: [http://a:1}', /^Error: contexts file .*bad\.yaml invalid YAML at line 1 column \d+ \(\w+\)$/],
      ['contexts:\n  prod:\n    endpoint: http://127.0.0.1:2379\n', /bad\.yaml: contexts\.prod\.endpoint: unknown field: expected one of endpoints, namespace/],
      ['contexts:\n  prod:\n    endpoints: ftp://x\n', /bad\.yaml: contexts\.prod\.endpoints: ftp:\/\/x: expected http\(s\) etcd URLs, or one redis:\/\/ URL$/],
      ['contexts:\n  prod:\n    endpoints: redis://:hunter2@127.0.0.1:6379\n', /contexts\.prod\.endpoints: redis:\/\/127\.0\.0\.1:6379 holds a password: name a file holding it with credentials\.passwordFile instead$/],
      ['contexts:\n  prod:\n    namespace: "/x y"\n', /contexts\.prod\.namespace: \/x y: expected a key prefix/],
      ['contexts:\n  prod:\n    credentials: {certFile: c.pem}\n', /contexts\.prod\.credentials\.certFile: requires credentials\.keyFile$/],
      ['current: staging\ncontexts:\n  prod: {}\n', /bad\.yaml: current: names staging, which is not a context here \(known: prod\)$/],
      ['contexts:\n  "\u001b[31mred": {}\n', /bad\.yaml: contexts: "\\u001b\[31mred" is not a context name: expected letters, digits/],
      ['- a list\n', /contexts file .*bad\.yaml expected a mapping with current and contexts$/],
      [`contexts:\n  prod:\n    namespace: ${'x'.repeat(300 * 1024)}\n`, /contexts file .*bad\.yaml is \d+ bytes, expected at most 262144$/],
      ['a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n', /bad\.yaml (invalid YAML \(too many aliases\)|: "a": unknown field)/],
    ];
    for (const [text, expected] of cases) {
      writeFileSync(bad, text);
      const res = await runCli(['status'], { env: { PROXY_STONE_SD_CONTEXTS_FILE: bad } });
      expect(res.code, `${text.slice(0, 80)}: ${res.stderr}`).to.equal(2);
      expect(oneErrorLine(res), text.slice(0, 80)).to.match(expected);
      expect(res.stderr).to.not.include('hunter2').and.not.include('\u001b');
      const set = await runCli(['context', 'set', 'new', '--endpoints', cluster.endpoint], { env: { PROXY_STONE_SD_CONTEXTS_FILE: bad } });
      expect(set.code).to.equal(2);
      expect(readFileSync(bad, 'utf8')).to.equal(text);
    }
    // A typo'd flag value is refused before anything is written.
    const before = readFileSync(file, 'utf8');
    for (const args of [['--endpoints', 'redis://:pw@127.0.0.1:6379'], ['--agent', 'ftp://x'], ['--namespace', '/x'], ['--registry-cert', 'c.pem'], ['--endpoints', cluster.endpoint, '--registry', 'redis'], ['--registry', 'zookeeper']]) {
      const res = await runCli(['context', 'set', 'typo', ...args], env());
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.equal(2);
      expect(oneErrorLine(res)).to.match(/^Error: context typo: \w+(\.\w+)?: /);
    }
    expect((await runCli(['context', 'set', 'bad name'], env())).code).to.equal(2);
    expect(readFileSync(file, 'utf8')).to.equal(before);
  });

  describe('Redis with a password, and --registry', () => {
    let redis: RedisServer;
    let plain: string;
    before(async () => {
      redis = await startRedis({ password: 'ctx-redis-secret' });
      plain = `redis://127.0.0.1:${redis.port}`;
    });
    after(async () => redis?.stop());

    it('credentials come from the files a context names, only for its own target', async () => {
      const passwordFile = path.join(dir, 'redis-password');
      writeFileSync(passwordFile, 'ctx-redis-secret\n', { mode: 0o600 });
      const set = await runCli(['context', 'set', 'redis', '--endpoints', plain, '--password-file', passwordFile, '--namespace', 'ctx-redis'], env());
      expect(set.code, set.stderr).to.equal(0);
      expect(readFileSync(file, 'utf8')).to.include(passwordFile).and.not.include('ctx-redis-secret');
      const ok = await runCli(['status', '--context', 'redis', '--json'], env());
      expect(ok.code, ok.stderr).to.equal(0);
      expect(json<{ registry: { reachable: boolean } }>(ok).registry.reachable).to.equal(true);
      // The same endpoints typed on the command line get no password from the context.
      const typed = await runCli(['status', '--context', 'redis', '--endpoints', plain], env());
      expect(typed.code).to.equal(5);
      expect(oneErrorLine(typed)).to.match(/refused: it requires a password/);
      writeFileSync(passwordFile, '');
      const empty = await runCli(['status', '--context', 'redis'], env());
      expect(empty.code).to.equal(2);
      expect(oneErrorLine(empty)).to.equal(`Error: password file ${passwordFile} (context redis) is empty`);
      // A device that never ends is refused unread, never a hang: as the password file, as the contexts file.
      expect((await runCli(['context', 'set', 'redis', '--password-file', '/dev/zero'], env())).code).to.equal(0);
      const device = await runCli(['status', '--context', 'redis'], env());
      expect(device.code).to.equal(2);
      expect(oneErrorLine(device)).to.equal('Error: password file /dev/zero (context redis): expected a regular file');
      const deviceFile = await runCli(['status'], { env: { PROXY_STONE_SD_CONTEXTS_FILE: '/dev/zero' } });
      expect(deviceFile.code).to.equal(2);
      expect(oneErrorLine(deviceFile)).to.equal('Error: contexts file /dev/zero is not a regular file, expected a YAML file');
      expect((await runCli(['context', 'set', 'redis', '--password-file', passwordFile], env())).code).to.equal(0);
      rmSync(passwordFile);
      const missing = await runCli(['status', '--context', 'redis'], env());
      expect(missing.code).to.equal(2);
      expect(oneErrorLine(missing)).to.equal(`Error: cannot read password file ${passwordFile} (context redis): ENOENT`);
    });

    it('--registry means on every cluster command what it means for the agent', async () => {
      const url = `redis://:ctx-redis-secret@127.0.0.1:${redis.port}`;
      const ok = await runCli(['services', 'list', '--registry', 'redis', '--endpoints', url, '--json']);
      expect(ok.code, ok.stderr).to.equal(0);
      const etcd = await runCli(['status', '--registry', 'etcd', ...cluster.registryArgs, '--json']);
      expect(etcd.code, etcd.stderr).to.equal(0);
      const cases: [string[], NodeJS.ProcessEnv, string][] = [
        [['status', '--registry', 'etcd', '--endpoints', url], {}, `Error: --endpoints redis://127.0.0.1:${redis.port} is a Redis URL, but --registry is etcd: give http(s) etcd URLs, or the registry redis`],
        [['topology', '--registry', 'redis', '--endpoints', cluster.endpoint], {}, `Error: --endpoints ${cluster.endpoint}: expected one redis:// URL, as --registry is redis`],
        [['services', 'list', '--registry', 'redis'], {}, 'Error: --registry redis requires --endpoints with one redis:// URL'],
        [['audit', '--endpoints', url], { SERVICE_DISCOVERY_REGISTRY: 'etcd' }, `Error: --endpoints redis://127.0.0.1:${redis.port} is a Redis URL, but SERVICE_DISCOVERY_REGISTRY is etcd: give http(s) etcd URLs, or the registry redis`],
        [['status'], { SERVICE_DISCOVERY_REGISTRY: 'memory' }, "Error: SERVICE_DISCOVERY_REGISTRY memory: the memory registry lives inside one agent's process; reach it through that agent with --agent URL"],
        [['status', '--registry', 'zookeeper'], {}, 'Error: --registry zookeeper: expected etcd or redis'],
        [['status', '--registry', 'etcd', '--agent', 'http://127.0.0.1:8790'], {}, 'Error: --registry names the registry read directly, and --agent reads through an agent, which has its own: give one of them'],
      ];
      for (const [args, extra, line] of cases) {
        const res = await runCli(args, { env: extra });
        expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.equal(2);
        expect(oneErrorLine(res)).to.equal(line);
      }
    });
  });

  it('help lists each etcd-*/registry-* pair once; the hidden names still work', async () => {
    const help = await runCli(['services', 'list', '--help']);
    expect(help.stdout).to.include('--etcd-password').and.match(/also\s+--registry-password/).and.not.match(/^\s+--registry-password=/m);
    const agentHelp = await runCli(['agent', '--help']);
    expect(agentHelp.stdout).to.include('--etcd-password').and.not.match(/^\s+--registry-password=/m);
    const typed = await runCli(['status', '--registry-username', 'nobody', '--registry-password', 'x', '--endpoints', `http://127.0.0.1:${await deadPort()}`, '--timeout', '1']);
    expect(typed.code, typed.stderr).to.equal(4);
  });

  it('events --duration ends the stream; --for, its old name, still works and says so', async () => {
    for (const args of [['--for', '1'], ['--for=1']]) {
      const res = await runCli(['events', ...args, ...cluster.registryArgs]);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stderr, args.join(' ')).to.include('"--for" flag has been deprecated. Use "--duration"');
    }
    const now = await runCli(['events', '--duration', '1s', '--json', ...cluster.registryArgs]);
    expect(now.code, now.stderr).to.equal(0);
    expect(now.stderr).to.equal('');
  });

  it('compound durations reach the flags: disable --for 1h30m', async () => {
    const before = Date.now();
    const res = await runCli(['services', 'disable', 'ctx-1', '--for', '1h30m', '--reason', 'compound', '--json', ...cluster.registryArgs]);
    expect(res.code, res.stderr).to.equal(0);
    const until = json<{ service: { disabledUntil?: number } }>(res).service.disabledUntil!;
    expect(until).to.be.within(before + 5400_000, Date.now() + 5400_000);
    expect((await runCli(['services', 'enable', 'ctx-1', ...cluster.registryArgs])).code).to.equal(0);
  });
});

describe('CLI: --agent over mutual TLS (built binary, a real agent serving mTLS)', function () {
  this.timeout(60_000);
  let dir: string;
  let pki: Pki;
  let url: string;
  let stop: () => void;
  let running: Promise<number>;

  before(async function () {
    this.timeout(60_000);
    ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), 'sd-agent-mtls-'));
    pki = makePki(dir);
    const logger = capturingLogger();
    const until = new Promise<void>((resolve) => (stop = resolve));
    running = runAgent({
      env: {},
      until,
      logger,
      flags: {
        registry: 'memory',
        'service-id': 'mtls-1',
        'api-port': '0',
        'api-tls-cert': pki.serverCert,
        'api-tls-key': pki.serverKey,
        'api-tls-ca': pki.ca,
        'api-key': API_KEY,
        'health-url': 'http://127.0.0.1:1/health',
      },
    });
    await eventually('the agent started', () => logger.lines.some((l) => l.includes('"agent.started"')));
    url = (await eventually('the API URL in the log', () => /"url":"(https:[^"]+)"/.exec(logger.lines.find((l) => l.includes('api.listening')) ?? '')?.[1]))!;
  });
  after(async () => {
    stop?.();
    await running;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reaches the agent with --agent-ca, --agent-cert and --agent-key, or their env vars', async () => {
    const res = await runCli(['status', '--agent', url, '--agent-ca', pki.ca, '--agent-cert', pki.clientCert, '--agent-key', pki.clientKey, '--json']);
    expect(res.code, res.stderr).to.equal(0);
    expect(json<{ agent: { currentService: { id: string } } }>(res).agent.currentService.id).to.equal('mtls-1');
    const fromEnv = await runCli(['services', 'disable', 'mtls-1', '--reason', 'mtls', '--json'], {
      env: {
        PROXY_STONE_SD_AGENT: url,
        PROXY_STONE_SD_AGENT_CA_FILE: pki.ca,
        PROXY_STONE_SD_AGENT_CERT_FILE: pki.clientCert,
        PROXY_STONE_SD_AGENT_KEY_FILE: pki.clientKey,
        SERVICE_DISCOVERY_API_KEY: API_KEY,
      },
    });
    expect(fromEnv.code, fromEnv.stderr).to.equal(0);
    expect(json<{ changed: boolean }>(fromEnv).changed).to.equal(true);
  });

  it('without a client certificate, or trusting another CA, the handshake fails; half a pair is a usage error', async () => {
    for (const args of [['--agent-ca', pki.ca], ['--agent-ca', pki.otherCa, '--agent-cert', pki.clientCert, '--agent-key', pki.clientKey], []]) {
      const res = await runCli(['status', '--agent', url, ...args, '--timeout', '2']);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.be.oneOf([1, 4]);
      expect(oneErrorLine(res)).to.include(url);
    }
    const half = await runCli(['status', '--agent', url, '--agent-cert', pki.clientCert]);
    expect(half.code).to.equal(2);
    expect(oneErrorLine(half)).to.equal('Error: --agent-cert requires --agent-key (a client certificate and its key)');
    const missing = await runCli(['status', '--agent', url, '--agent-ca', path.join(dir, 'nope.pem')]);
    expect(missing.code).to.equal(2);
    expect(oneErrorLine(missing)).to.equal(`Error: cannot read agent CA file ${path.join(dir, 'nope.pem')}: ENOENT`);
  });

  it('a context holds the agent, its TLS files and the API key file', async () => {
    const file = path.join(dir, 'contexts.yaml');
    const keyFile = path.join(dir, 'api-key');
    writeFileSync(keyFile, `${API_KEY}\n`, { mode: 0o600 });
    const set = await runCli(
      ['context', 'set', 'secure', '--agent', url, '--agent-ca', pki.ca, '--agent-cert', pki.clientCert, '--agent-key', pki.clientKey, '--api-key-file', keyFile],
      { env: { PROXY_STONE_SD_CONTEXTS_FILE: file } },
    );
    expect(set.code, set.stderr).to.equal(0);
    expect(existsSync(file)).to.equal(true);
    expect(readFileSync(file, 'utf8')).to.not.include(API_KEY);
    const enable = await runCli(['services', 'enable', 'mtls-1', '--json'], { env: { PROXY_STONE_SD_CONTEXTS_FILE: file } });
    expect(enable.code, enable.stderr).to.equal(0);
    expect(json<{ enabled: boolean }>(enable).enabled).to.equal(true);
  });
});
