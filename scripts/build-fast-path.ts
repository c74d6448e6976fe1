// Builds the CLI's start-up path (src/cli/fast-path.ts, docs/decisions/0023-cli-start-up.md) from what
// `tsc` and `oclif manifest` just wrote, so it cannot drift from the commands (test/cli/fast-path.test.ts
// compares it with oclif's full `execute` for every command):
//  - dist/fast/cli.cjs: one CommonJS bundle of @oclif/core, the runner and every command in the manifest
//    with what they import from src (each module evaluated only when first used); every other package
//    stays in node_modules;
//  - dist/fast/start.cjs: the start-up path itself (src/cli/fast-path.ts) as CommonJS, for bin/run.js;
//  - dist/fast/index.json: the command ids and what start-up needs to know of oclif's settings;
//  - dist/fast/help.json: oclif's `--help` text for the root, each topic and each command, captured from
//    the built CLI run through oclif with stdout not a terminal.
// Run by `npm run build` after `oclif manifest`.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { FAST_PATH_BUNDLE, FAST_PATH_DIR, FAST_PATH_HELP, FAST_PATH_INDEX, FAST_PATH_START, FAST_START_ENV, type FastPathIndex } from '../src/cli/fast-path.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, FAST_PATH_DIR);
/** Help captures run side by side; each is one CLI start. */
const CONCURRENCY = 4;
/** The hook events oclif runs around one of this package's commands (the others concern plugin installs). */
const COMMAND_RUN_HOOKS = ['init', 'prerun', 'postrun', 'finally', 'preparse', 'command_not_found', 'command_incomplete', 'jit_plugin_not_installed'];
const HELP_TIMEOUT_MS = 30_000;
/**
 * Commands that start an agent and run for as long as it does: their start-up is a small part of
 * their run, and their modules (the agent, its API) would make the bundle a fifth larger, which every
 * other command reads at its start. bin/run.js runs `agent` without oclif anyway.
 */
const LONG_RUNNING = ['agent', 'demo'];
const LONG_RUNNING_REASON = 'it runs an agent, for as long as that runs';

interface ManifestCommand {
  id: string;
  relativePath?: string[];
  hasDynamicHelp?: boolean;
}

async function main(): Promise<void> {
  const manifestFile = path.join(root, 'oclif.manifest.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { commands: Record<string, ManifestCommand> };
  // `oclif manifest` lists the commands in the order it finds their files, which varies from build to
  // build: in id order, a rebuild changes the committed file only when a command did.
  manifest.commands = Object.fromEntries(Object.entries(manifest.commands).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
  const commands = Object.values(manifest.commands);
  for (const c of commands) if (!c.relativePath) throw new Error(`oclif.manifest.json: command ${c.id} has no relativePath`);
  const config = await Config.load(root);

  const started = Date.now();
  rmSync(outdir, { recursive: true, force: true });
  const built = await bundle(commands);
  await buildStart();
  const help = await captureHelp(config, commands);
  const plain =
    !config.pjson.oclif.theme &&
    !config.getPluginsList().some((p) => (p.hooks.init?.length ?? 0) > 0 || (p.hooks.finally?.length ?? 0) > 0);
  const pluginsIdle = !config
    .getPluginsList()
    .some((p) => !p.isRoot && COMMAND_RUN_HOOKS.some((event) => (p.hooks[event]?.length ?? 0) > 0));
  const index: FastPathIndex = {
    format: 2,
    bin: config.bin,
    dirname: config.dirname,
    versionFlags: [...new Set(['--version', ...(config.pjson.oclif.additionalVersionFlags ?? [])])],
    helpFlags: [...new Set([...(config.pjson.oclif.additionalHelpFlags ?? []), '--help'])],
    commands: commands.map((c) => c.id),
    bundle: { bytes: built.bytes, sha256: built.sha256 },
    left: built.left,
    manifestBytes: statSync(manifestFile).size,
    plain,
    pluginsIdle,
  };
  writeFileSync(path.join(outdir, FAST_PATH_HELP), `${JSON.stringify(help)}\n`);
  // Written last: the fast path is used only when the index is newer than the manifest.
  writeFileSync(path.join(outdir, FAST_PATH_INDEX), `${JSON.stringify(index)}\n`);
  console.log(
    `wrote ${FAST_PATH_DIR}: ${commands.length - Object.keys(built.left).length} of ${commands.length} commands in ${(built.bytes / 1024).toFixed(0)} KiB of bundle, help for ${Object.keys(help).length} subjects (${Date.now() - started} ms)`,
  );
  for (const [id, why] of Object.entries(built.left)) console.log(`  ${id} runs through oclif: ${why}`);
}

/**
 * dist/fast/start.cjs: src/cli/fast-path.ts as one CommonJS file, which bin/run.js (CommonJS too)
 * requires, so that no ES module is loaded before the bundle. It uses node's modules only.
 */
async function buildStart(): Promise<void> {
  const res = await build({
    entryPoints: [path.join(root, 'dist', 'cli', 'fast-path.js')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: path.join(outdir, FAST_PATH_START),
    metafile: true,
    logLevel: 'warning',
  });
  const inputs = Object.keys(res.metafile.inputs);
  if (inputs.length !== 1) throw new Error(`build-fast-path: ${FAST_PATH_START} must hold fast-path.js alone, not ${inputs.join(', ')}`);
}

/** What the bundle holds, for the index. */
interface BuiltBundle {
  bytes: number;
  sha256: string;
  /** Command ids left to oclif's full path: they import a package that `require()` cannot load (ESM with top-level await). */
  left: Record<string, string>;
}

/**
 * dist/fast/cli.cjs: one CommonJS file of oclif, the runner and every command that can be in it.
 * CommonJS, so that start-up can hand V8 a code cache for it on Node 20 too (src/cli/fast-path.ts),
 * and one file, as no module is evaluated before it is first used (esbuild's lazy module wrappers):
 * a run of `services list` evaluates oclif and that command's modules only.
 */
async function bundle(commands: ManifestCommand[]): Promise<BuiltBundle> {
  const entry = (ids: ManifestCommand[]) =>
    [
      `import { runBundled } from './dist/cli/bundled-cli.js';`,
      `const commands = {`,
      ...ids.map((c) => `  ${JSON.stringify(c.id)}: () => import('./${c.relativePath!.join('/')}'),`),
      `};`,
      `export function run(argv, dir, withoutPlugins) { return runBundled(commands, dir, argv, withoutPlugins); }`,
    ].join('\n');
  const options = (ids: ManifestCommand[], write: boolean) =>
    ({
      stdin: { contents: entry(ids), resolveDir: root, sourcefile: 'fast-path-entry.js', loader: 'js' },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile: path.join(outdir, FAST_PATH_BUNDLE),
      write,
      // The modules that read `import.meta.url` (a package.json beside them, createRequire) see the
      // bundle's own URL: dist/fast/cli.cjs is two levels below the root, as dist/<dir>/<file>.js are.
      define: { 'import.meta.url': '__bundleUrl' },
      banner: { js: 'var __bundleUrl = require("node:url").pathToFileURL(__filename).href;' },
      plugins: [withoutOwnEngineCheck(), withoutCollatorForPlainIds(), withoutEagerExecFile(), lazyModules(), packagesFromNodeModules()],
      // Reading the file is part of every start: without comments and blanks it is about half the size.
      // Names are kept, so a stack trace still names the function.
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: 'none',
      metafile: true,
      logLevel: 'warning',
    }) satisfies BuildOptions;
  // A first pass finds the commands whose modules import, statically, a package that `require()`
  // cannot load; they stay with oclif's full path, and the bundle is built without them.
  const probe = await build(options(commands, false));
  const left = { ...unrequirableImports(probe.metafile, commands), ...Object.fromEntries(commands.filter((c) => LONG_RUNNING.includes(c.id)).map((c) => [c.id, LONG_RUNNING_REASON])) };
  const kept = commands.filter((c) => !Object.hasOwn(left, c.id));
  const cli = await build(options(kept, false));
  if (process.env.FAST_PATH_METAFILE) writeFileSync(process.env.FAST_PATH_METAFILE, JSON.stringify(cli.metafile));
  // esbuild writes ASCII but for a regular expression's own characters (ansis strips C1 controls with
  // a literal one). Escaped, the file is ASCII throughout, which node reads into a string faster.
  const file = Buffer.from(cli.outputFiles![0]!.text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  mkdirSync(outdir, { recursive: true });
  writeFileSync(path.join(outdir, FAST_PATH_BUNDLE), file);
  return { bytes: file.length, sha256: createHash('sha256').update(file).digest('hex'), left };
}

/**
 * In CommonJS, a module's static `import 'pkg'` becomes `require('pkg')`. Node >= 20.19 requires ES
 * modules too, but not one with top-level await (ink, through yoga-layout). For each command, the
 * first package its modules import that way and that this node cannot `require()`.
 */
function unrequirableImports(metafile: Metafile, commands: ManifestCommand[]): Record<string, string> {
  const requireHere = createRequire(path.join(root, 'package.json'));
  const verdicts = new Map<string, string | undefined>();
  const reason = (pkg: string): string | undefined => {
    if (!verdicts.has(pkg)) {
      try {
        requireHere(pkg);
        verdicts.set(pkg, undefined);
      } catch (err) {
        verdicts.set(pkg, `it imports ${pkg}, which require() cannot load (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    return verdicts.get(pkg);
  };
  const left: Record<string, string> = {};
  for (const c of commands) {
    const start = c.relativePath!.join('/');
    const seen = new Set<string>();
    const queue = [start];
    for (let file = queue.shift(); file !== undefined && left[c.id] === undefined; file = queue.shift()) {
      if (seen.has(file)) continue;
      seen.add(file);
      for (const imported of metafile.inputs[file]?.imports ?? []) {
        if (!imported.external) queue.push(imported.path);
        else if (file.startsWith('dist/') && imported.kind !== 'dynamic-import') {
          const why = reason(imported.path);
          if (why) left[c.id] = why;
        }
      }
    }
    if (!seen.has(start) || !metafile.inputs[start]) throw new Error(`build-fast-path: ${start} (command ${c.id}) is not in the bundle's inputs`);
  }
  return left;
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

/**
 * oclif sorts a plugin's commands by `localeCompare` when it loads them, and the first
 * `localeCompare` in a process sets up ICU's collator: about 10 ms of every start. For ids of
 * lower-case letters, `:` and `-`, the root collation (English, C and POSIX locales) orders them as
 * code units do, so there the ids are compared as code units; a locale that tailors the order of
 * Latin letters (Czech "ch", Danish "aa", Lithuanian "y", ...) or any other id keeps
 * `localeCompare`. ICU takes its locale from LC_ALL, then LC_MESSAGES, then LANG. The build stops if
 * the line changes.
 */
function withoutCollatorForPlainIds(): Plugin {
  return {
    name: 'without-collator-for-plain-ids',
    setup(b) {
      b.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const line = /^(\s*)\.sort\(\(a, b\) => a\.id\.localeCompare\(b\.id\)\);$/m;
        if (!line.test(source)) throw new Error(`${args.path}: no .sort((a, b) => a.id.localeCompare(b.id)) line, check how oclif orders commands now`);
        const compare = [
          `const rootCollation = /^(|C|POSIX|en)([_.@-]|$)/.test(process.env.LC_ALL || process.env.LC_MESSAGES || process.env.LANG || '');`,
          `const plainId = /^[a-z:-]+$/;`,
          `function compareIds(a, b) {`,
          `  if (rootCollation && plainId.test(a) && plainId.test(b)) return a < b ? -1 : a > b ? 1 : 0;`,
          `  return a.localeCompare(b);`,
          `}`,
        ].join('\n');
        return { contents: `${source.replace(line, '$1.sort((a, b) => compareIds(a.id, b.id));')}\n${compare}\n`, loader: 'js' };
      });
    },
  };
}

/**
 * wsl-utils and powershell-utils (oclif's, to tell WSL apart) each make a promise-returning execFile
 * when they load, which loads child_process on every start; they call it only on WSL. Made on first
 * call instead. The build stops if the line changes.
 */
function withoutEagerExecFile(): Plugin {
  return {
    name: 'without-eager-exec-file',
    setup(b) {
      b.onLoad({ filter: /[\\/](wsl-utils|powershell-utils)[\\/]index\.js$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        const line = /^const execFile = promisify\(childProcess\.execFile\);$/m;
        if (!line.test(source)) throw new Error(`${args.path}: no eager promisify(childProcess.execFile) line, check what it does at load now`);
        return { contents: source.replace(line, 'const execFile = (...args) => promisify(childProcess.execFile)(...args);'), loader: 'js' };
      });
    },
  };
}

/**
 * Modules that oclif or a command's modules require at load but that a one-shot read never uses:
 * node's tls and crypto (https, random ids), child_process and readline (prompts, a shell's name),
 * perf_hooks (oclif's timings), and tinyglobby, with which oclif finds command files when a plugin
 * has no manifest. Loading them costs about 20 ms (measured in docs/decisions/0023-cli-start-up.md).
 * Each is replaced by an object whose properties load the real module on first use. Its property
 * names are those of the module as this build loads it; a default or namespace import keeps them
 * lazy, as esbuild copies them as getters. tinyglobby only where oclif requires it, as a plain
 * require whose `glob` is read when called.
 */
const LAZY_BUILTINS = ['child_process', 'crypto', 'https', 'perf_hooks', 'readline', 'tls'];
const LAZY_IN_OCLIF = ['tinyglobby'];

function lazyModules(): Plugin {
  const requireHere = createRequire(path.join(root, 'node_modules', '@oclif', 'core', 'package.json'));
  const stub = (specifier: string) => {
    const names = Object.keys(requireHere(specifier) as object).filter((name) => name !== 'default');
    return [
      `let loaded;`,
      `const load = () => (loaded ??= require(${JSON.stringify(specifier)}));`,
      `module.exports = Object.defineProperties({}, {`,
      ...names.map((name) => `  ${JSON.stringify(name)}: { enumerable: true, get: () => load()[${JSON.stringify(name)}] },`),
      `});`,
    ].join('\n');
  };
  const inOclif = /[\\/]node_modules[\\/]@oclif[\\/]core[\\/]lib[\\/]/;
  return {
    name: 'lazy-modules',
    setup(b) {
      const builtins = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
      b.onResolve({ filter: builtins }, (args) =>
        // The real module, for the stand-in's own require.
        args.namespace === 'lazy-module' ? { path: args.path, external: true } : { path: `node:${args.path.replace(/^node:/, '')}`, namespace: 'lazy-module' },
      );
      const packages = new RegExp(`^(${LAZY_IN_OCLIF.join('|')})$`);
      b.onResolve({ filter: packages }, (args) =>
        args.namespace === 'lazy-module' || !inOclif.test(args.importer) ? undefined : { path: args.path, namespace: 'lazy-module', pluginData: path.dirname(args.importer) },
      );
      b.onLoad({ filter: /.*/, namespace: 'lazy-module' }, (args) => ({
        contents: stub(args.path),
        loader: 'js',
        // A package's stand-in resolves the real package from where oclif required it.
        resolveDir: (args.pluginData as string | undefined) ?? root,
      }));
    },
  };
}

/**
 * Every package but oclif loads from node_modules when (and only if) it is used, as it does without
 * the bundle; oclif and what it requires are in the bundle. typescript, which oclif requires only to
 * run a plugin's TypeScript sources in development, stays out.
 */
function packagesFromNodeModules(): Plugin {
  return {
    name: 'packages-from-node-modules',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path === 'typescript') return { path: args.path, external: true };
        // oclif's own packages, and those behind a stand-in of lazyModules in oclif, are bundled.
        if (args.importer.includes(`${path.sep}node_modules${path.sep}`) || args.namespace === 'lazy-module') return undefined;
        if (args.path === '@oclif/core') return undefined;
        if (args.path.startsWith('@oclif/core/')) throw new Error(`${args.importer}: import '@oclif/core', not ${args.path} (the start-up bundle holds the package's main entry)`);
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
