import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CODE_CACHE_DIR, CODE_CACHE_RUNS, FAST_PATH_DIR, FAST_PATH_HELP, FAST_PATH_INDEX, FAST_START_ENV, NO_CODE_CACHE_ENV, type FastPathIndex } from '../../src/cli/fast-path.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { BIN, ROOT, cliEnv, ensureBuilt, runCli, startCluster, type CliResult, type TestCluster } from './fixtures.js';

/**
 * The start-up path (src/cli/fast-path.ts: captured help and version, the bundle in dist/fast) answers
 * every command line exactly as oclif's full `execute` does (PROXY_STONE_SD_FAST_START=0). Every
 * command in the manifest is run both ways with --help, with an unknown flag, and for real against a
 * test cluster, so a command added or changed after this test was written is held to it too.
 */

interface Run {
  /** Arguments after the command's words. */
  args: string[];
  /** Runs until stopped: compare the first line matching this, and the exit code after SIGINT (Ctrl-C) a second later. */
  until?: RegExp;
  /** Puts the cluster back between the two runs (e.g. enable after disable), so both start from one state. */
  restore?: string[];
  /** Same, done here (e.g. remove a file the run wrote). */
  reset?: () => void;
}

interface Context {
  target: string[];
  empty: string[];
  id: string;
  dir: string;
}

/** A real run for each command; a command not listed runs with `--json` against the test cluster. */
const RUNS: Record<string, (c: Context) => Run | undefined> = {
  // bin/run.js hands `agent` to its own parser before the start-up path (test/unit/agent-command-line.test.ts).
  agent: () => undefined,
  audit: (c) => ({ args: ['--json', ...c.target] }),
  // Not a terminal: refused, the same way both times.
  dashboard: (c) => ({ args: c.target }),
  demo: () => ({ args: ['--agents', '1', '--base-port', '0'], until: /127\.0\.0\.1/ }),
  doctor: (c) => ({ args: ['--json', ...c.target] }),
  events: (c) => ({ args: ['--json', '--duration', '1', ...c.empty] }),
  // A resign that succeeds moves leadership, and what the next read sees depends on how far the new
  // leader got: a term that is not the leader's is refused the same way both times.
  'leader:resign': (c) => ({ args: ['--term', '999999', '--json', ...c.target] }),
  render: (c) => ({
    args: ['--template', path.join(c.dir, 'upstream.hbs'), '--out', path.join(c.dir, 'upstream.conf'), '--once', ...c.target],
    // Written only when its bytes change: the second run must find no file, as the first did.
    reset: () => rmSync(path.join(c.dir, 'upstream.conf'), { force: true }),
  }),
  'lb:haproxy': (c) => ({ args: ['--socket', path.join(c.dir, 'no-haproxy.sock'), '--backend', 'proxy_stone', ...c.target], until: /"lb\.started"/ }),
  'services:disable': (c) => ({
    args: [c.id, '--reason', 'start-up path test', '--yes', '--json', ...c.target],
    restore: ['services', 'enable', c.id, '--yes', '--json', ...c.target],
  }),
  'services:enable': (c) => ({ args: [c.id, '--yes', '--json', ...c.target] }),
  'services:show': (c) => ({ args: [c.id, '--json', ...c.target] }),
};

/** Times, ages, clock skews, ports and pids differ from one run to the next; the words and the shape may not. */
function normalised(text: string): string {
  return text.replace(/[+-]?\d+/g, 'N');
}

describe('CLI start-up path answers as oclif does', function () {
  this.timeout(60_000);
  ensureBuilt();
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, { id: string }> };
  const index = JSON.parse(readFileSync(path.join(ROOT, FAST_PATH_DIR, FAST_PATH_INDEX), 'utf8')) as FastPathIndex;
  const help = JSON.parse(readFileSync(path.join(ROOT, FAST_PATH_DIR, FAST_PATH_HELP), 'utf8')) as Record<string, string>;
  let cluster: TestCluster;
  let context: Context;

  before(async function () {
    this.timeout(120_000);
    cluster = await startCluster(2, { idPrefix: 'fast-path' });
    const dir = mkdtempSync(path.join(tmpdir(), 'sd-fast-path-'));
    writeFileSync(path.join(dir, 'upstream.hbs'), '{{#each serving}}server {{hostport this}};\n{{/each}}');
    context = { target: cluster.registryArgs, empty: ['--endpoints', cluster.endpoint, '--namespace', uniqueNamespace('fast-empty')], id: cluster.nodes[0]!.id, dir };
  });
  after(async () => {
    await cluster?.stop();
    if (context) rmSync(context.dir, { recursive: true, force: true });
  });

  const oclif = { [FAST_START_ENV]: '0' };

  async function expectSame(args: string[]): Promise<CliResult> {
    const fast = await runCli(args);
    const full = await runCli(args, { env: oclif });
    expect({ code: fast.code, stdout: fast.stdout, stderr: fast.stderr }, args.join(' ')).to.deep.equal({ code: full.code, stdout: full.stdout, stderr: full.stderr });
    return fast;
  }

  it('the index holds every command of the manifest, and help for each (but those whose help is computed when asked)', () => {
    expect([...index.commands].sort()).to.deep.equal(Object.keys(manifest.commands).sort());
    for (const id of Object.keys(manifest.commands)) {
      const dynamic = (manifest.commands[id] as { hasDynamicHelp?: boolean }).hasDynamicHelp === true;
      expect(help[id] === undefined, `help of ${id}`).to.equal(dynamic);
    }
    expect(help['']).to.match(/^.*\n\nVERSION\n/);
  });

  it('the one-shot commands are in the bundle; the dashboard (ink cannot be required) and the agent commands are left to oclif', () => {
    expect(Object.keys(index.left).sort()).to.deep.equal(['agent', 'dashboard', 'demo']);
    expect(index.left.dashboard).to.match(/ink/);
  });

  it('--version, -v, --help, -h and no arguments at all', async () => {
    for (const args of [['--version'], ['-v'], ['--help'], ['-h'], [], ['--version', '--json'], ['help'], ['--bogus'], ['nosuchcommand'], ['services'], ['services', 'nosuch'], ['lb', '--help']]) {
      await expectSame(args);
    }
  });

  for (const id of Object.keys(manifest.commands)) {
    const words = id.split(':');
    it(`${words.join(' ')}: --help, an unknown flag and a run`, async function () {
      const help = await expectSame([...words, '--help']);
      expect(help.code).to.equal(0);
      await expectSame(['-h', ...words]);
      const bad = await expectSame([...words, '--no-such-flag-anywhere']);
      expect(bad.code).to.equal(2);
      await expectSame([...words, '--json', '--no-such-flag-anywhere']);

      const run = (RUNS[id] ?? ((c: Context) => ({ args: ['--json', ...c.target] })))(context);
      if (!run) return;
      if (run.until) {
        const fast = await runUntil([...words, ...run.args], run.until, {});
        const full = await runUntil([...words, ...run.args], run.until, oclif);
        expect(fast, `${id} run`).to.deep.equal(full);
        return;
      }
      const fast = await runCli([...words, ...run.args], { timeoutMs: 30_000 });
      if (run.restore) await runCli(run.restore, { timeoutMs: 30_000 });
      run.reset?.();
      const full = await runCli([...words, ...run.args], { env: oclif, timeoutMs: 30_000 });
      if (run.restore) await runCli(run.restore, { timeoutMs: 30_000 });
      expect({ code: fast.code, stdout: normalised(fast.stdout), stderr: normalised(fast.stderr) }, `${id} run`).to.deep.equal({
        code: full.code,
        stdout: normalised(full.stdout),
        stderr: normalised(full.stderr),
      });
    });
  }

  it('help asked on a terminal-like setting or with oclif settings goes to oclif, with the same text', async () => {
    for (const env of [{ OCLIF_COLUMNS: '60' }, { PROXY_STONE_SD_DISABLE_THEME: 'true' }]) {
      const fast = await runCli(['services', 'list', '--help'], { env });
      const full = await runCli(['services', 'list', '--help'], { env: { ...env, ...oclif } });
      expect(fast.stdout).to.equal(full.stdout);
    }
    const narrow = await runCli(['services', 'list', '--help'], { env: { OCLIF_COLUMNS: '60' } });
    expect(narrow.stdout, 'OCLIF_COLUMNS=60 is not the captured text').to.not.equal(help['services:list']);
  });

  describe('the code cache', () => {
    let cacheDir: string;
    beforeEach(() => {
      cacheDir = mkdtempSync(path.join(tmpdir(), 'sd-code-cache-'));
    });
    afterEach(() => rmSync(cacheDir, { recursive: true, force: true }));

    const list = () => ['services', 'list', '--json', ...context.target];
    const cacheFile = () => path.join(cacheDir, CODE_CACHE_DIR, index.bundle.sha256.slice(0, 16), `services-list-node${process.versions.node}-${process.arch}.v8`);
    const withCache = (env: NodeJS.ProcessEnv = {}) => ({ env: { PROXY_STONE_SD_CACHE_DIR: cacheDir, ...env } });
    async function expectSameAsOclif(fast: CliResult): Promise<void> {
      const full = await runCli(list(), { env: oclif });
      expect({ code: fast.code, stdout: normalised(fast.stdout), stderr: fast.stderr }).to.deep.equal({ code: full.code, stdout: normalised(full.stdout), stderr: full.stderr });
    }

    it("is written by a command's first runs, then used as it is", async () => {
      const runsIn = (file: string) => readFileSync(file).readUInt32BE(16);
      const first = await runCli(list(), withCache());
      expect(first.code, first.stderr).to.equal(0);
      const file = cacheFile();
      expect(readFileSync(file).subarray(0, 8).toString('latin1')).to.equal('PSSD-V8\n');
      expect(runsIn(file)).to.equal(1);
      expect(statSync(file).mode & 0o777).to.equal(0o600);
      expect(statSync(path.dirname(file)).mode & 0o777).to.equal(0o700);
      for (let run = 2; run <= CODE_CACHE_RUNS; run++) {
        expect((await runCli(list(), withCache())).code).to.equal(0);
        expect(runsIn(file), 'written again by an early run').to.equal(run);
      }
      const written = statSync(file).mtimeMs;
      const later = await runCli(list(), withCache());
      expect(statSync(file).mtimeMs, 'accepted, so not written again').to.equal(written);
      expect(runsIn(file)).to.equal(CODE_CACHE_RUNS);
      await expectSameAsOclif(later);
    });

    it('a damaged cache is not used, the command answers the same, and a whole cache replaces it', async () => {
      expect((await runCli(list(), withCache())).code).to.equal(0);
      const file = cacheFile();
      const whole = readFileSync(file);
      // Damaged data under an intact header (its CRC no longer matches), and data V8 refuses under a
      // header whose CRC does match (written by hand).
      const damaged = Buffer.from(whole);
      damaged.fill(0xa5, 20 + 1000, 20 + 5000);
      const garbage = Buffer.alloc(4096, 0x5a);
      const refused = Buffer.alloc(20);
      refused.write('PSSD-V8\n', 'latin1');
      refused.writeUInt32BE(garbage.length, 8);
      refused.writeUInt32BE((await import('node:zlib')).crc32(garbage), 12);
      refused.writeUInt32BE(CODE_CACHE_RUNS, 16);
      for (const bytes of [damaged, Buffer.concat([refused, garbage]), Buffer.from('not a cache'), whole.subarray(0, whole.length - 7)]) {
        writeFileSync(file, bytes);
        const run = await runCli(list(), withCache());
        await expectSameAsOclif(run);
        expect(readFileSync(file).equals(bytes), 'replaced').to.equal(false);
        expect(readFileSync(file).length).to.be.greaterThan(100_000);
      }
    });

    it('none is written with NODE_DISABLE_COMPILE_CACHE, after a failed run, or where the cache directory cannot be made', async () => {
      expect((await runCli(list(), withCache({ [NO_CODE_CACHE_ENV]: '1' }))).code).to.equal(0);
      expect((await runCli(['services', 'list', '--no-such-flag'], withCache())).code).to.equal(2);
      expect(existsSync(path.join(cacheDir, CODE_CACHE_DIR)), 'nothing written').to.equal(false);
      // A file where the directory would be.
      const blocked = path.join(cacheDir, 'blocked');
      writeFileSync(blocked, '');
      const run = await runCli(list(), { env: { PROXY_STONE_SD_CACHE_DIR: blocked } });
      await expectSameAsOclif(run);
      expect(readdirSync(cacheDir)).to.deep.equal(['blocked']);
    });
  });

  it('a manifest newer than the index (rebuilt without it) turns the start-up path off', async () => {
    const file = path.join(ROOT, FAST_PATH_DIR, FAST_PATH_INDEX);
    const { atime, mtime } = statSync(file);
    const saved = readFileSync(file, 'utf8');
    try {
      // An index that takes `--stale` for a version flag: used while it is newer than the manifest...
      writeFileSync(file, saved.replace('"versionFlags":[', '"versionFlags":["--stale",'));
      utimesSync(file, atime, mtime);
      expect((await runCli(['--stale'])).stdout).to.match(/^proxy-stone-sd\/\S+ \S+ node-v/);
      // ...and not once the manifest is newer, or of another size than the index says: oclif knows no --stale.
      utimesSync(file, new Date(0), new Date(0));
      const res = await runCli(['--stale']);
      expect(res.code).to.equal(2);
      expect(res.stdout).to.equal('');
      writeFileSync(file, saved.replace('"versionFlags":[', '"versionFlags":["--stale",').replace(/"manifestBytes":(\d+)/, (_, n: string) => `"manifestBytes":${Number(n) + 1}`));
      utimesSync(file, atime, mtime);
      expect((await runCli(['--stale'])).code).to.equal(2);
    } finally {
      writeFileSync(file, saved);
      utimesSync(file, atime, mtime);
    }
  });
});

const SETTLE_MS = 1000;

/** Starts the CLI, waits for a line matching `until`, sends SIGINT; the line (normalised) and the exit code. */
function runUntil(args: string[], until: RegExp, env: NodeJS.ProcessEnv): Promise<{ line: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let line: string | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')}: no line matching ${until} within 30 s:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (line !== undefined) return;
      line = output.split('\n').find((l) => until.test(l));
      // A moment to settle (install its signal handlers), as a person pressing Ctrl-C would give it.
      if (line !== undefined) setTimeout(() => child.kill('SIGINT'), SETTLE_MS);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ line: normalised(line ?? ''), code });
    });
  });
}
