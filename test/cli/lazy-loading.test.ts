import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { BIN, ROOT, cliEnv, ensureBuilt } from './fixtures.js';

/**
 * Start-up speed is a feature: `--version`/`--help` must not load the etcd client, and one-shot reads
 * must not load gRPC (they use etcd's HTTP gateway), ink, react or listr2. A preloaded module records
 * every module the CLI resolves (ESM through a resolve hook, CommonJS from require.cache at exit).
 */
describe('CLI lazy loading', function () {
  this.timeout(30_000);
  let dir: string;
  let etcdEndpoint: string;

  before(async function () {
    this.timeout(180_000);
    ensureBuilt();
    etcdEndpoint = (await sharedEtcd()).endpoint;
    dir = mkdtempSync(path.join(tmpdir(), 'sd-cli-modules-'));
    writeFileSync(
      path.join(dir, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.MODULE_LOG, r.url + '\\n');
  return r;
}
`,
    );
    writeFileSync(
      path.join(dir, 'record.mjs'),
      `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
register(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});
const require = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(process.env.MODULE_LOG, Object.keys(require.cache).join('\\n') + '\\n'));
`,
    );
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Packages (under node_modules) the command loaded. */
  function packagesLoaded(args: string[], env: NodeJS.ProcessEnv = {}): Set<string> {
    const log = path.join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
    writeFileSync(log, '');
    const res = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(dir, 'record.mjs')).href, BIN, ...args], {
      cwd: ROOT,
      env: cliEnv({ MODULE_LOG: log, ...env }),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(res.status, `${args.join(' ')}: ${res.stderr}`).to.equal(0);
    return packagesIn(log);
  }

  function packagesIn(log: string): Set<string> {
    const packages = new Set<string>();
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line);
      if (m) packages.add(m[1]!);
    }
    return packages;
  }

  const HEAVY = ['etcd3', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs'];
  const UI = ['ink', 'react', 'listr2'];
  // Loaded only when used: the SSE parser by event streams, the edit distance for a "did you mean" on an unknown setting.
  const ON_DEMAND = ['eventsource-parser', 'fastest-levenshtein'];

  it('--version and --help load neither etcd3 nor gRPC', () => {
    for (const args of [['--version'], ['--help'], ['services', 'list', '--help'], ['lb', 'haproxy', '--help'], ['render', '--help']]) {
      const loaded = packagesLoaded(args);
      for (const p of [...HEAVY, ...ON_DEMAND, 'undici', 'zod', 'handlebars']) expect(loaded.has(p), `${args.join(' ')} loaded ${p}`).to.equal(false);
    }
  });

  it('one-shot reads through etcd load no gRPC, zod, ink, react, listr2 or handlebars', () => {
    for (const args of [
      ['services', 'list', '--json', '--endpoints', etcdEndpoint],
      ['topology', '--endpoints', etcdEndpoint],
      ['status', '--json', '--endpoints', etcdEndpoint],
      ['services', 'list', '-l', 'team=edge', '--tag', 'canary', '--json', '--endpoints', etcdEndpoint],
      ['leader', '--json', '--endpoints', etcdEndpoint],
      ['leader', '--endpoints', etcdEndpoint],
    ]) {
      const loaded = packagesLoaded(args);
      for (const p of [...HEAVY, ...UI, ...ON_DEMAND, 'zod', 'undici', 'handlebars']) expect(loaded.has(p), `${args.join(' ')} loaded ${p}`).to.equal(false);
    }
  });

  it('the agent runs without the CLI framework, undici or any terminal UI module', async () => {
    const log = path.join(dir, 'modules-agent.txt');
    writeFileSync(log, '');
    const child = spawn(
      process.execPath,
      ['--import', pathToFileURL(path.join(dir, 'record.mjs')).href, BIN, 'agent', '--endpoints', etcdEndpoint, '--namespace', uniqueNamespace('lazy'), '--service-port', '1', '--api-host', '127.0.0.1', '--api-port', '0'],
      { cwd: ROOT, env: cliEnv({ MODULE_LOG: log, LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, 'exit');
    const t0 = Date.now();
    while (!output.includes('"agent.started"')) {
      if (Date.now() - t0 > 20_000 || child.exitCode !== null) throw new Error(`agent did not start:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code, output).to.equal(0);
    const loaded = packagesIn(log);
    // What it does need, so the recorder is known to see the agent's modules.
    for (const p of ['etcd3', 'fastify', 'pino']) expect(loaded.has(p), `agent did not load ${p}`).to.equal(true);
    // grpc-health-check: only for a grpc:// check (src/agent/checks/grpc-check.ts), and this agent has none.
    for (const p of ['@oclif/core', 'undici', ...UI, ...ON_DEMAND, 'cli-table3', 'chalk', 'handlebars', 'grpc-health-check']) expect(loaded.has(p), `agent loaded ${p}`).to.equal(false);
  });

  it('a contexts file as the context commands write it is read without yaml; one a person wrote in YAML loads it', () => {
    const file = path.join(dir, 'contexts.yaml');
    const env = { PROXY_STONE_SD_CONTEXTS_FILE: file };
    const set = spawnSync(process.execPath, [BIN, 'context', 'set', 'lazy', '--endpoints', etcdEndpoint], { cwd: ROOT, env: cliEnv(env), encoding: 'utf8', timeout: 20_000 });
    expect(set.status, set.stderr).to.equal(0);
    expect(packagesLoaded(['status', '--json'], env).has('yaml')).to.equal(false);
    writeFileSync(file, `current: lazy\ncontexts:\n  lazy:\n    endpoints: ${etcdEndpoint}\n`);
    expect(packagesLoaded(['status', '--json'], env).has('yaml')).to.equal(true);
  });

  // The start-up path (src/cli/fast-path.ts): help and version from the build's capture, this
  // package's commands from the bundle in dist/fast, which holds its own copy of @oclif/core.
  it('--version and --help of the root, a topic and a command load no package at all', () => {
    for (const args of [['--version'], ['-v'], ['--help'], [], ['services', '--help'], ['services', 'list', '-h'], ['lb', 'haproxy', '--help']]) {
      const loaded = packagesLoaded(args);
      expect([...loaded], args.join(' ')).to.deep.equal([]);
    }
  });

  it("this package's commands run from the bundle, not from @oclif/core in node_modules", () => {
    for (const args of [
      ['services', 'list', '--json', '--endpoints', etcdEndpoint],
      ['topology', '--json', '--endpoints', etcdEndpoint],
    ]) {
      const loaded = packagesLoaded(args);
      expect(loaded.has('@oclif/core'), `${args.join(' ')} loaded @oclif/core from node_modules`).to.equal(false);
    }
    // Without the start-up path, oclif as installed: the recorder does see it.
    const log = path.join(dir, 'modules-full.txt');
    writeFileSync(log, '');
    const res = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(dir, 'record.mjs')).href, BIN, 'services', 'list', '--json', '--endpoints', etcdEndpoint], {
      cwd: ROOT,
      env: cliEnv({ MODULE_LOG: log, PROXY_STONE_SD_FAST_START: '0' }),
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(res.status, res.stderr).to.equal(0);
    expect(packagesIn(log).has('@oclif/core')).to.equal(true);
  });

  it("one-shot reads over http load none of node's tls, crypto, child_process or readline modules", () => {
    // Node's own modules are not in require.cache: process.moduleLoadList names them.
    const preload = path.join(dir, 'builtins.cjs');
    writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(process.env.BUILTIN_LOG, process.moduleLoadList.join('\\n')));\n`);
    for (const args of [
      ['services', 'list', '--json', '--endpoints', etcdEndpoint],
      ['topology', '--json', '--endpoints', etcdEndpoint],
      ['leader', '--json', '--endpoints', etcdEndpoint],
    ]) {
      const log = path.join(dir, `builtins-${Math.random().toString(36).slice(2)}.txt`);
      const res = spawnSync(process.execPath, ['--require', preload, BIN, ...args], { cwd: ROOT, env: cliEnv({ BUILTIN_LOG: log }), encoding: 'utf8', timeout: 20_000 });
      expect(res.status, res.stderr).to.equal(0);
      const loaded = new Set(readFileSync(log, 'utf8').split('\n'));
      expect(loaded.has('NativeModule http'), `${args.join(' ')}: the recorder sees node's modules`).to.equal(true);
      for (const name of ['tls', 'https', 'crypto', 'child_process', 'readline']) expect(loaded.has(`NativeModule ${name}`), `${args.join(' ')} loaded ${name}`).to.equal(false);
    }
  });

  it('--json output loads no table or colour modules', () => {
    const loaded = packagesLoaded(['services', 'list', '--json', '--endpoints', etcdEndpoint]);
    expect(loaded.has('cli-table3')).to.equal(false);
  });
});
