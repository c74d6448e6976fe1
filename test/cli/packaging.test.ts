import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { npm, packRepository, registryUnreachable, type PackedPackage } from '../helpers/npm-package.js';
import { COMPLETION_CASES, ROOT, bashCompletion, ensureBuilt, expectCompletions, runCli, startCluster, type TestCluster } from './fixtures.js';

/** Whole budget of the global install: dependencies come from the npm registry. */
const INSTALL_MS = 150_000;

/**
 * What a user gets from `npm install -g`: the packed tarball installs into a clean prefix, with its
 * dependencies from the registry and no install scripts (npm 11 skips unapproved ones), and the
 * installed `proxy-stone-sd` runs: help, version, a read against etcd, shell completion.
 */
describe('packaging: npm pack, then a global install into a clean prefix', function () {
  this.timeout(60_000);
  let dir: string;
  let pack: PackedPackage;
  let prefix: string;
  let installed = false;
  let cluster: TestCluster;

  before(function () {
    this.timeout(180_000);
    ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), 'sd-cli-pack-'));
    prefix = path.join(dir, 'prefix');
  });
  after(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The installed binary, run from outside the repository with only the prefix's bin on PATH. */
  function installedCli(args: string[], env: NodeJS.ProcessEnv = {}) {
    return runCli(args, {
      executable: path.join(prefix, 'bin', 'proxy-stone-sd'),
      cwd: dir,
      env: { PATH: [path.join(prefix, 'bin'), path.dirname(process.execPath), '/usr/bin:/bin'].join(path.delimiter), ...env },
      timeoutMs: 30_000,
    });
  }

  it('npm pack holds bin/run.js, the compiled commands and the manifest, and no tests or sources', async function () {
    this.timeout(120_000);
    pack = await packRepository();
    const files = pack.files.map((f) => f.path);
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, unknown> };
    for (const must of ['package.json', 'bin/run.js', 'oclif.manifest.json', 'dist/index.js', 'dist/index.d.ts', 'dist/traffic/index.js', 'dist/traffic/index.d.ts', 'README.md']) {
      expect(files, must).to.include(must);
    }
    // Every entry point of package.json's `exports` (the library and its API subpath), types included.
    const { exports } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> };
    for (const [subpath, target] of Object.entries(exports)) {
      for (const file of typeof target === 'string' ? [target] : Object.values(target)) expect(files, `exports["${subpath}"]`).to.include(file.replace(/^\.\//, ''));
    }
    // A topic that is also a command (leader, leader resign) lives in its folder's index.js.
    for (const id of Object.keys(manifest.commands)) {
      const file = `dist/commands/${id.replaceAll(':', '/')}`;
      expect([`${file}.js`, `${file}/index.js`].some((f) => files.includes(f)), `command ${id}`).to.equal(true);
    }
    // The start-up path (docs/decisions/0023-cli-start-up.md): without it the CLI still runs, only slower.
    for (const must of ['dist/fast/index.json', 'dist/fast/help.json', 'dist/fast/cli.cjs', 'dist/fast/start.cjs', 'bin/package.json']) expect(files, must).to.include(must);
    expect(files.filter((f) => /(^|\/)test\/|\.test\.|^src\/|^bench\/|^scripts\/|tsconfig|\.mocharc|^\.ci\//.test(f)), 'tests, sources or tooling in the tarball').to.deep.equal([]);
  });

  it('installs globally into an empty prefix, dependencies from the npm registry', async function () {
    this.timeout(INSTALL_MS + 30_000);
    if (!pack) this.skip();
    const offline = await registryUnreachable();
    if (offline) {
      console.log(`      (skipped: the global install needs the npm registry, and ${offline})`);
      this.skip();
    }
    const res = await npm(
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', pack.tarball],
      dir,
      INSTALL_MS,
    );
    expect(res.code, `${res.stdout}\n${res.stderr}`).to.equal(0);
    installed = true;
    // npm 11 runs no dependency install scripts unless approved; report which were skipped.
    const skipped = /install scripts[\s\S]*/i.exec(`${res.stdout}\n${res.stderr}`)?.[0].trim();
    if (skipped) console.log(`      (npm: ${skipped.split('\n').slice(0, 6).join(' | ')})`);
  });

  describe('the installed proxy-stone-sd', () => {
    before(function () {
      if (!installed) this.skip();
    });

    it('--help and --version', async () => {
      const help = await installedCli(['--help']);
      expect(help.code, help.stderr).to.equal(0);
      expect(help.stdout).to.match(/USAGE\n {2}\$ proxy-stone-sd \[COMMAND\]/);
      for (const command of ['services', 'topology', 'events', 'doctor', 'autocomplete']) expect(help.stdout).to.include(command);
      const version = await installedCli(['--version']);
      expect(version.code, version.stderr).to.equal(0);
      const { version: expected } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
      expect(version.stdout).to.match(new RegExp(`^proxy-stone-sd/${expected.replaceAll('.', '\\.')} `));
    });

    it('services list --json, disable and enable against etcd', async function () {
      this.timeout(120_000);
      cluster = await startCluster(1);
      const res = await installedCli(['services', 'list', '--json', ...cluster.registryArgs]);
      expect(res.code, res.stderr).to.equal(0);
      const list = JSON.parse(res.stdout) as { total: number; services: { id: string }[] };
      expect(list.total).to.equal(1);
      expect(list.services[0]!.id).to.equal('cli-node-1');
      // Writes go through etcd3 and gRPC (protobufjs without its skipped postinstall).
      for (const verb of ['disable', 'enable']) {
        const toggled = await installedCli(['services', verb, 'cli-node-1', '--json', ...cluster.registryArgs]);
        expect(toggled.code, toggled.stderr).to.equal(0);
        expect(JSON.parse(toggled.stdout)).to.include({ serviceId: 'cli-node-1', enabled: verb === 'enable', changed: true });
      }
    });

    it("brings its peer dependency fastify along, so the agent's API loads", async () => {
      const api = path.join(prefix, 'lib/node_modules/proxy-stone-sd/dist/api/index.js');
      const res = await runCli(['--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(api).href)}); console.log(typeof m.serviceDiscoveryPlugin)`], {
        executable: process.execPath,
        cwd: dir,
        timeoutMs: 30_000,
      });
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout.trim()).to.equal('function');
    });

    it('imports as a library by package name: proxy-stone-sd and proxy-stone-sd/traffic', async () => {
      const script = "const sd = await import('proxy-stone-sd'); const t = await import('proxy-stone-sd/traffic'); console.log(typeof sd.ClusterView, typeof t.TrafficFeed, typeof t.HaproxySyncer, typeof t.TemplateRenderer)";
      // From the prefix's lib/, `proxy-stone-sd` resolves to the installed package through its exports.
      const res = await runCli(['--input-type=module', '-e', script], { executable: process.execPath, cwd: path.join(prefix, 'lib'), timeoutMs: 30_000 });
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout.trim()).to.equal('function function function function');
    });

    it('shell completion: autocomplete bash, autocomplete script bash', () => {
      const home = path.join(dir, 'home');
      const result = bashCompletion(
        { PATH: [path.join(prefix, 'bin'), path.dirname(process.execPath), '/usr/bin:/bin'].join(path.delimiter), HOME: home, XDG_CACHE_HOME: path.join(home, '.cache') },
        COMPLETION_CASES.map(([words]) => words),
      );
      expectCompletions(result);
    });
  });
});
