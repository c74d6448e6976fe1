// Builds the CLI's start-up path (src/cli/fast-path.ts, docs/decisions/0021-cli-start-up.md) from what
// `tsc` and `oclif manifest` just wrote, so it cannot drift from the commands (test/cli/fast-path.test.ts
// compares it with oclif's full `execute` for every command):
//  - dist/fast/cli.js (+ chunks): one ESM bundle of @oclif/core and every command in the manifest, with
//    every other package left to node_modules and each lazily imported module in its own chunk;
//  - dist/fast/index.json: the command ids, and oclif's `--help` text for the root, each topic and each
//    command, captured from the built CLI run through oclif with stdout not a terminal.
// Run by `npm run build` after `oclif manifest`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';
import { build, type Plugin } from 'esbuild';
import { FAST_PATH_BUNDLE, FAST_PATH_DIR, FAST_PATH_INDEX, FAST_START_ENV, type FastPathIndex } from '../src/cli/fast-path.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, FAST_PATH_DIR);
/** Help captures run side by side; each is one CLI start. */
const CONCURRENCY = 4;
const HELP_TIMEOUT_MS = 30_000;

interface ManifestCommand {
  id: string;
  relativePath?: string[];
  hasDynamicHelp?: boolean;
}

async function main(): Promise<void> {
  const manifest = JSON.parse(readFileSync(path.join(root, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, ManifestCommand> };
  const commands = Object.values(manifest.commands);
  for (const c of commands) if (!c.relativePath) throw new Error(`oclif.manifest.json: command ${c.id} has no relativePath`);
  const config = await Config.load(root);

  const started = Date.now();
  rmSync(outdir, { recursive: true, force: true });
  const bytes = await bundle(commands);
  const help = await captureHelp(config, commands);
  const plain =
    !config.pjson.oclif.theme &&
    !config.getPluginsList().some((p) => (p.hooks.init?.length ?? 0) > 0 || (p.hooks.finally?.length ?? 0) > 0);
  const index: FastPathIndex = {
    format: 1,
    bin: config.bin,
    dirname: config.dirname,
    versionFlags: [...new Set(['--version', ...(config.pjson.oclif.additionalVersionFlags ?? [])])],
    helpFlags: [...new Set([...(config.pjson.oclif.additionalHelpFlags ?? []), '--help'])],
    commands: commands.map((c) => c.id),
    help,
    plain,
  };
  // Written last: the fast path is used only when the index is newer than the manifest.
  writeFileSync(path.join(outdir, FAST_PATH_INDEX), `${JSON.stringify(index)}\n`);
  console.log(
    `wrote ${FAST_PATH_DIR}: ${commands.length} commands in ${(bytes / 1024).toFixed(0)} KiB of bundle, help for ${Object.keys(help).length} subjects (${Date.now() - started} ms)`,
  );
}

/** The bundle; returns its size in bytes. */
async function bundle(commands: ManifestCommand[]): Promise<number> {
  const entry = [
    `import { runBundled } from './dist/cli/bundled-cli.js';`,
    ...commands.map((c, i) => `import * as c${i} from './${c.relativePath!.join('/')}';`),
    `const commands = { ${commands.map((c, i) => `${JSON.stringify(c.id)}: c${i}`).join(', ')} };`,
    `export function run(argv, dir) { return runBundled(commands, dir, argv); }`,
  ].join('\n');
  const result = await build({
    stdin: { contents: entry, resolveDir: root, sourcefile: 'fast-path-entry.js', loader: 'js' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // Each module the commands import lazily stays lazy, in a chunk of its own. Chunks sit beside the
    // entry, two levels below the package root as dist/<dir>/<file>.js do, so a module's
    // `new URL('../../package.json', import.meta.url)` still finds the package's file.
    splitting: true,
    outdir,
    entryNames: path.basename(FAST_PATH_BUNDLE, '.js'),
    chunkNames: '[name]-[hash]',
    // @oclif/core is CommonJS and requires node's modules by name.
    banner: { js: `import { createRequire as __fastPathRequire } from 'node:module'; const require = __fastPathRequire(import.meta.url);` },
    plugins: [onlyOclifInside()],
    metafile: true,
    logLevel: 'warning',
  });
  if (process.env.FAST_PATH_METAFILE) writeFileSync(process.env.FAST_PATH_METAFILE, JSON.stringify(result.metafile));
  return Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
}

/**
 * Of the packages our code imports, only @oclif/core (and what it imports) goes into the bundle: it is
 * most of the start-up time, and the command classes must extend the very copy that runs them. Every
 * other package loads from node_modules when (and only if) it is used, as it does without the bundle.
 */
function onlyOclifInside(): Plugin {
  return {
    name: 'only-oclif-inside',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        // oclif requires typescript only to run a plugin's TypeScript sources in development.
        if (args.path === 'typescript') return { path: args.path, external: true };
        if (args.importer.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        if (args.path === '@oclif/core' || args.path.startsWith('@oclif/core/')) return undefined;
        return { path: args.path, external: true };
      });
    },
  };
}

/** oclif's help for the root, each topic of this package and each command, from the CLI built without the fast path. */
async function captureHelp(config: Config, commands: ManifestCommand[]): Promise<Record<string, string>> {
  const ids = commands.map((c) => c.id);
  const topics = config.topics.map((t) => t.name).filter((name) => ids.some((id) => id.startsWith(`${name}:`)));
  // A command whose help is computed when asked (hasDynamicHelp: a default read at run time) is left to oclif.
  const subjects = ['', ...topics, ...commands.filter((c) => !c.hasDynamicHelp).map((c) => c.id)];
  // No user theme, no oclif settings from the builder's environment: what a plain run prints.
  const home = mkdtempSync(path.join(tmpdir(), 'sd-fast-path-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), [FAST_START_ENV]: '0' };
  const help: Record<string, string> = {};
  try {
    const queue = [...subjects];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let subject = queue.shift(); subject !== undefined; subject = queue.shift()) {
          const args = [...(subject ? subject.split(':') : []), '--help'];
          const res = await runCli(args, env);
          if (res.code !== 0 || res.stderr !== '') throw new Error(`capturing help: ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
          help[subject] = res.stdout;
        }
      }),
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  return Object.fromEntries(subjects.map((s) => [s, help[s]!]));
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bin/run.js'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: HELP_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

await main();
