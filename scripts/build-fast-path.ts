// Builds the CLI's start-up path (src/cli/fast-path.ts, docs/decisions/0023-cli-start-up.md) from what
// `tsc` and `oclif manifest` just wrote, so it cannot drift from the commands (test/cli/fast-path.test.ts
// compares it with oclif's full `execute` for every command):
//  - dist/fast/cli.js (+ chunks): one ESM bundle of every command in the manifest and what they import
//    from src, each command and each lazily imported module in a chunk of its own, and
//    dist/fast/oclif-core.cjs, @oclif/core as one CommonJS file; every other package stays in node_modules;
//  - dist/fast/index.json: the command ids and what start-up needs to know of oclif's settings;
//  - dist/fast/help.json: oclif's `--help` text for the root, each topic and each command, captured from
//    the built CLI run through oclif with stdout not a terminal.
// Run by `npm run build` after `oclif manifest`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';
import { build, type Plugin } from 'esbuild';
import { FAST_PATH_BUNDLE, FAST_PATH_DIR, FAST_PATH_HELP, FAST_PATH_INDEX, FAST_START_ENV, type FastPathIndex } from '../src/cli/fast-path.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, FAST_PATH_DIR);
/** Help captures run side by side; each is one CLI start. */
const CONCURRENCY = 4;
/** @oclif/core and what it requires, as one CommonJS file beside the bundle. */
const OCLIF_BUNDLE = 'oclif-core.cjs';
/** The hook events oclif runs around one of this package's commands (the others concern plugin installs). */
const COMMAND_RUN_HOOKS = ['init', 'prerun', 'postrun', 'finally', 'preparse', 'command_not_found', 'command_incomplete', 'jit_plugin_not_installed'];
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
  const pluginsIdle = !config
    .getPluginsList()
    .some((p) => !p.isRoot && COMMAND_RUN_HOOKS.some((event) => (p.hooks[event]?.length ?? 0) > 0));
  const index: FastPathIndex = {
    format: 1,
    bin: config.bin,
    dirname: config.dirname,
    versionFlags: [...new Set(['--version', ...(config.pjson.oclif.additionalVersionFlags ?? [])])],
    helpFlags: [...new Set([...(config.pjson.oclif.additionalHelpFlags ?? []), '--help'])],
    commands: commands.map((c) => c.id),
    plain,
    pluginsIdle,
  };
  writeFileSync(path.join(outdir, FAST_PATH_HELP), `${JSON.stringify(help)}\n`);
  // Written last: the fast path is used only when the index is newer than the manifest.
  writeFileSync(path.join(outdir, FAST_PATH_INDEX), `${JSON.stringify(index)}\n`);
  console.log(
    `wrote ${FAST_PATH_DIR}: ${commands.length} commands in ${(bytes / 1024).toFixed(0)} KiB of bundle, help for ${Object.keys(help).length} subjects (${Date.now() - started} ms)`,
  );
}

/** The bundle; returns its size in bytes. */
async function bundle(commands: ManifestCommand[]): Promise<number> {
  // @oclif/core is CommonJS: as one CommonJS file it loads in about half the time it takes as part of
  // an ES module graph (measured in docs/decisions/0023-cli-start-up.md).
  const oclif = await build({
    stdin: { contents: `module.exports = require('@oclif/core');`, resolveDir: root, sourcefile: 'oclif-core-entry.cjs', loader: 'js' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: path.join(outdir, OCLIF_BUNDLE),
    // oclif requires typescript only to run a plugin's TypeScript sources in development.
    external: ['typescript'],
    plugins: [withoutOwnEngineCheck()],
    metafile: true,
    logLevel: 'warning',
  });
  const entry = [
    `import { runBundled } from './dist/cli/bundled-cli.js';`,
    `const commands = {`,
    ...commands.map((c) => `  ${JSON.stringify(c.id)}: () => import('./${c.relativePath!.join('/')}'),`),
    `};`,
    `export function run(argv, dir) { return runBundled(commands, dir, argv); }`,
  ].join('\n');
  const cli = await build({
    stdin: { contents: entry, resolveDir: root, sourcefile: 'fast-path-entry.js', loader: 'js' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // Each command and each module the commands import lazily stays lazy, in a chunk of its own.
    // Chunks sit beside the entry, two levels below the package root as dist/<dir>/<file>.js do, so a
    // module's `new URL('../../package.json', import.meta.url)` still finds the package's file.
    splitting: true,
    outdir,
    entryNames: path.basename(FAST_PATH_BUNDLE, '.js'),
    chunkNames: '[name]-[hash]',
    plugins: [oclifFromItsBundle(), packagesFromNodeModules()],
    metafile: true,
    logLevel: 'warning',
  });
  if (process.env.FAST_PATH_METAFILE) writeFileSync(process.env.FAST_PATH_METAFILE, JSON.stringify(cli.metafile));
  return [oclif, cli].flatMap((r) => Object.values(r.metafile.outputs)).reduce((sum, o) => sum + o.bytes, 0);
}

/**
 * `@oclif/core` in the command classes and the runner is the CommonJS bundle beside them: one copy of
 * oclif, the one that runs them (their classes extend its Command, its parser checks their flags).
 */
function oclifFromItsBundle(): Plugin {
  const names = Object.keys(createRequire(import.meta.url)('@oclif/core') as object);
  return {
    name: 'oclif-from-its-bundle',
    setup(b) {
      b.onResolve({ filter: /^@oclif\/core(\/|$)/ }, (args) => {
        if (args.path !== '@oclif/core') throw new Error(`${args.importer}: import '@oclif/core', not ${args.path} (the start-up bundle maps only the package's main entry)`);
        return { path: '@oclif/core', namespace: 'oclif-core' };
      });
      b.onLoad({ filter: /.*/, namespace: 'oclif-core' }, () => ({
        contents: [
          `import { createRequire } from 'node:module';`,
          `const core = createRequire(import.meta.url)('./${OCLIF_BUNDLE}');`,
          ...names.map((name) => `export const ${name} = core.${name};`),
        ].join('\n'),
        loader: 'js',
      }));
    },
  };
}

/**
 * oclif's index checks node's version against the engines of @oclif/core's own package.json, found
 * next to its lib/ folder. Bundled, there is no such file next to it: the check could only fail to
 * read it (and it says nothing then), after loading semver for nothing. The build stops if the line
 * changes, rather than bundle a different check unread.
 */
function withoutOwnEngineCheck(): Plugin {
  return {
    name: 'without-own-engine-check',
    setup(b) {
      b.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]index\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const call = /^checkNodeVersion\(\);$/m;
        if (!call.test(source)) throw new Error(`${args.path}: no checkNodeVersion(); line, check what oclif does at load now`);
        return { contents: source.replace(call, '// checkNodeVersion(): see scripts/build-fast-path.ts'), loader: 'js' };
      });
    },
  };
}

/** Every other package loads from node_modules when (and only if) it is used, as it does without the bundle. */
function packagesFromNodeModules(): Plugin {
  return {
    name: 'packages-from-node-modules',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => ({ path: args.path, external: true }));
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
