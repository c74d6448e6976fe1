/**
 * The CLI's start-up path (docs/decisions/0023-cli-start-up.md). Loading @oclif/core costs about as
 * much as starting node itself, so bin/run.js asks this module first (built as dist/fast/start.cjs),
 * which uses nothing but node's own modules:
 *  - `--version` and `--help` are answered from dist/fast (index.json, help.json), oclif's own output
 *    captured at build time, when nothing that could change that output is in play (a terminal's width, a theme,
 *    oclif's environment variables, hooks);
 *  - this package's commands run from dist/fast/cli.cjs, one CommonJS bundle of oclif and the command
 *    classes, through oclif's own `execute` (src/cli/bundled-cli.ts). V8 compiles it from a code cache
 *    kept in the user's cache directory (Node 20 has no compile cache of its own): compiling oclif and
 *    the command's modules is most of what a start costs beyond node's own;
 *  - anything else (a plugin's command, a build without dist/fast) goes to oclif as before.
 * All of dist/fast is written by scripts/build-fast-path.ts from the built command classes and the manifest.
 */

// Node's modules through getBuiltinModule rather than `import`: an import of node:fs makes an ES
// module of it, reading every export on the way, and the ReadStream one loads fs streams (a few ms).
const { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = process.getBuiltinModule('node:fs');
const { Module, createRequire } = process.getBuiltinModule('node:module');
const { homedir, release } = process.getBuiltinModule('node:os');
const path = process.getBuiltinModule('node:path');
const { fileURLToPath } = process.getBuiltinModule('node:url');
const vm = process.getBuiltinModule('node:vm');

/** dist/fast/index.json: what the build knew, so start-up needs no oclif to answer. */
export interface FastPathIndex {
  format: 2;
  /** package.json's `oclif.bin`, for the version line. */
  bin: string;
  /** package.json's `oclif.dirname`: where a user's theme.json would be. */
  dirname: string;
  versionFlags: string[];
  helpFlags: string[];
  /** This package's command ids (colon-separated). */
  commands: string[];
  /** The bundle: its size and content hash name its code cache. */
  bundle: { bytes: number; sha256: string };
  /** Commands not in the bundle, each with why (a package `require()` cannot load, or it runs an agent): oclif runs them. */
  left: Record<string, string>;
  /** oclif.manifest.json's size when the index was written: a manifest rebuilt since turns the start-up path off. */
  manifestBytes: number;
  /** No hooks run around `--version`/`--help` and no theme is configured: the captured text is what oclif prints. */
  plain: boolean;
  /** No other plugin has a hook that runs around a command (init, prerun, postrun, finally, ...): this package's commands run without loading them. */
  pluginsIdle: boolean;
}

export const FAST_PATH_DIR = 'dist/fast';
export const FAST_PATH_INDEX = 'index.json';
/** dist/fast/help.json: oclif's help for a subject (a command id, a topic, '' for the root), as printed when stdout is not a terminal. */
export const FAST_PATH_HELP = 'help.json';
export const FAST_PATH_BUNDLE = 'cli.cjs';
/** This module as CommonJS, which bin/run.js requires (it names the file itself: it imports nothing). */
export const FAST_PATH_START = 'start.cjs';
/** `PROXY_STONE_SD_FAST_START=0` sends every command line through oclif's `execute`, as before the fast path. */
export const FAST_START_ENV = 'PROXY_STONE_SD_FAST_START';
/** Node's own switch for its compile cache also turns off the bundle's code cache. */
export const NO_CODE_CACHE_ENV = 'NODE_DISABLE_COMPILE_CACHE';
/** Under the user's cache directory (oclif's: `PROXY_STONE_SD_CACHE_DIR`, else XDG's), one folder per bundle. */
export const CODE_CACHE_DIR = 'code-cache';
/** Code caches of other bundles (an older install) are removed once this old. */
const STALE_CODE_CACHE_MS = 7 * 24 * 3600_000;

/** The environment variables by which oclif would print something other than what was captured. */
const OCLIF_SCOPED = ['CACHE_DIR', 'CONFIG_DIR', 'DATA_DIR', 'BINPATH', 'NPM_REGISTRY', 'DISABLE_THEME', 'DEBUG'];

/**
 * Runs the command line if the fast path can. Resolves to false when it did nothing, and the caller
 * runs oclif's `execute`. `binUrl` is bin/run.js's `import.meta.url`.
 */
export async function runFastPath(argv: string[], binUrl: string): Promise<boolean> {
  if (process.env[FAST_START_ENV] === '0') return false;
  const root = path.resolve(path.dirname(fileURLToPath(binUrl)), '..');
  const index = readIndex(root);
  if (!index) return false;
  // As oclif's Command module does: a reader that stops early (`| head`) is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const env = index.plain && plainEnvironment(index);
  if (env && index.versionFlags.includes(argv[0]!) && !onWsl()) {
    // oclif's Config.userAgent, which `--version` prints.
    const pjson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version?: string };
    process.stdout.write(`${pjson.name}/${pjson.version ?? '0.0.0'} ${process.platform}-${process.arch === 'ia32' ? 'x86' : process.arch} node-${process.version}\n`);
    return true;
  }
  const help = env && !process.stdout.isTTY ? capturedHelp(root, index, argv) : undefined;
  if (help !== undefined) {
    process.stdout.write(help);
    return true;
  }
  if (!forThisPackage(index, argv)) return false;
  const id = commandId(index, argv);
  if (id !== undefined && Object.hasOwn(index.left, id)) return false;
  // The bundle is CommonJS and requires ES-module packages (chalk...): node >= 20.19 and 22.12 can.
  if (!(process.features as { require_module?: boolean }).require_module) return false;
  const bundle = loadBundle(path.join(root, FAST_PATH_DIR, FAST_PATH_BUNDLE), codeCacheFile(index, id ?? 'root')) as {
    run: (argv: string[], dir: string, withoutPlugins: boolean) => Promise<unknown>;
  };
  // Help (a root's lists the plugins' commands) and the root's command line keep every plugin.
  const oneOfOurs = argv[0] !== undefined && !argv[0].startsWith('-') && !argv.some((arg) => index.helpFlags.includes(arg));
  await bundle.run(argv, binUrl, index.pluginsIdle && oneOfOurs);
  return true;
}

/** The index, unless it is missing, or older or of another size than the manifest (then the manifest was rebuilt without it). */
function readIndex(root: string): FastPathIndex | undefined {
  const file = path.join(root, FAST_PATH_DIR, FAST_PATH_INDEX);
  try {
    const manifest = statSync(path.join(root, 'oclif.manifest.json'));
    if (statSync(file).mtimeMs < manifest.mtimeMs) return undefined;
    const index = JSON.parse(readFileSync(file, 'utf8')) as FastPathIndex;
    return index.format === 2 && index.manifestBytes === manifest.size ? index : undefined;
  } catch {
    return undefined;
  }
}

/** The prefix of oclif's own variables for this CLI (`PROXY_STONE_SD`), as oclif's Config.scopedEnvVarKey makes it. */
function envScope(index: FastPathIndex): string {
  return index.bin.replaceAll('@', '').replaceAll(/[/-]/g, '_').toUpperCase();
}

/** Neither oclif's settings, its debug output nor a user's theme could change what oclif prints. */
function plainEnvironment(index: FastPathIndex): boolean {
  const scope = envScope(index);
  for (const key of Object.keys(process.env)) {
    if (key.startsWith('OCLIF_')) return false;
  }
  if (process.env.DEBUG || process.env.CLI_FLAGS_DEBUG || process.env.NODE_ENV === 'development') return false;
  if (OCLIF_SCOPED.some((name) => process.env[`${scope}_${name}`] !== undefined)) return false;
  if (process.platform === 'win32') return false;
  // Config.configDir on Linux and macOS, where oclif reads a user's theme.json.
  const home = process.env.HOME || homedir();
  return !existsSync(path.join(process.env.XDG_CONFIG_HOME || path.join(home, '.config'), index.dirname, 'theme.json'));
}

/** oclif names the platform `wsl` there (its getPlatform): leave that to oclif. */
function onWsl(): boolean {
  if (process.platform !== 'linux') return false;
  if (release().toLowerCase().includes('microsoft')) return true;
  try {
    return readFileSync('/proc/version', 'utf8').toLowerCase().includes('microsoft');
  } catch {
    return false;
  }
}

/**
 * The captured help for a command line oclif answers with help: nothing at all, or words naming a
 * command or topic plus a help flag. Any other shape (a flag value, `--`, an unknown word) is oclif's.
 */
function capturedHelp(root: string, index: FastPathIndex, argv: string[]): string | undefined {
  const words = argv.filter((arg) => !index.helpFlags.includes(arg));
  if (argv.length > 0 && words.length === argv.length) return undefined;
  if (words.some((word) => word.startsWith('-'))) return undefined;
  try {
    const help = JSON.parse(readFileSync(path.join(root, FAST_PATH_DIR, FAST_PATH_HELP), 'utf8')) as Record<string, string>;
    return Object.hasOwn(help, words.join(':')) ? help[words.join(':')] : undefined;
  } catch {
    return undefined;
  }
}

/** Words before the first flag start one of this package's commands or topics, or there are none (oclif's root). */
function forThisPackage(index: FastPathIndex, argv: string[]): boolean {
  const first = argv[0];
  if (first === undefined || first.startsWith('-')) return true;
  return index.commands.some((id) => id.split(':')[0] === first);
}

/** The command a command line runs, as oclif finds it (words before the first flag, topics separated by spaces). */
function commandId(index: FastPathIndex, argv: string[]): string | undefined {
  const words: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith('-')) break;
    words.push(arg);
  }
  for (let n = words.length; n > 0; n--) {
    const id = words.slice(0, n).join(':');
    if (index.commands.includes(id)) return id;
  }
  return undefined;
}

/**
 * Where the code cache of the bundle for one command lives, or undefined without one. Each command
 * has its own: V8 keeps in it the functions that ran, which differ from one command to the next.
 */
function codeCacheFile(index: FastPathIndex, id: string): string | undefined {
  if (process.env[NO_CODE_CACHE_ENV]) return undefined;
  const scope = envScope(index);
  const home = process.env.HOME || homedir();
  // oclif's Config.cacheDir.
  const base =
    process.env[`${scope}_CACHE_DIR`] ||
    (process.platform === 'darwin'
      ? path.join(home, 'Library', 'Caches', index.dirname)
      : process.platform === 'win32'
        ? path.join(process.env.LOCALAPPDATA || home, index.dirname)
        : path.join(process.env.XDG_CACHE_HOME || path.join(home, '.cache'), index.dirname));
  const name = `${id.replaceAll(':', '-')}-node${process.versions.node}-${process.arch}.v8`;
  return path.join(base, CODE_CACHE_DIR, index.bundle.sha256.slice(0, 16), name);
}

/**
 * A code cache file: this header, then V8's data. V8 checks that the data was made by the same V8
 * with the same flags for a source of the same length, but not (in release builds) that the data
 * is intact; a damaged cache could crash node, so the header holds the data's CRC-32 (node's own
 * compile cache, on Node 22, checks one too), and the number of runs that have written it.
 */
const CODE_CACHE_MAGIC = 'PSSD-V8\n';
const CODE_CACHE_HEADER = CODE_CACHE_MAGIC.length + 12;
/**
 * The first runs of a command each write its cache again, keeping the larger: V8 keeps only the
 * functions that ran, and a first run against an empty cluster runs none of those that read records.
 */
export const CODE_CACHE_RUNS = 3;

interface CodeCache {
  data: Buffer;
  /** How many runs have written it. */
  runs: number;
}

/** A code cache file, or undefined if there is none or it is not whole. */
function readCodeCache(file: string): CodeCache | undefined {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch {
    return undefined;
  }
  if (raw.length < CODE_CACHE_HEADER || raw.toString('latin1', 0, CODE_CACHE_MAGIC.length) !== CODE_CACHE_MAGIC) return undefined;
  const data = raw.subarray(CODE_CACHE_HEADER);
  const { crc32 } = process.getBuiltinModule('node:zlib');
  const at = CODE_CACHE_MAGIC.length;
  if (raw.readUInt32BE(at) !== data.length || raw.readUInt32BE(at + 4) !== crc32(data)) return undefined;
  return { data, runs: raw.readUInt32BE(at + 8) };
}

/**
 * Runs a CommonJS file as require() would, but compiled by V8 from `cacheFile` when it holds a code
 * cache V8 accepts (else V8 compiles from source, which takes about three times as long). Without
 * one, or for a command's first few runs, the cache is written when the process ends well: it then
 * holds every function that ran. Failing to read or write it (none yet, a read-only home) only costs
 * the time it would save.
 */
function loadBundle(file: string, cacheFile: string | undefined): Record<string, unknown> {
  const source = readFileSync(file, 'utf8');
  const cached = cacheFile ? readCodeCache(cacheFile) : undefined;
  const script = new vm.Script(Module.wrap(source), {
    filename: file,
    cachedData: cached?.data,
    // `import()` in the bundle (ES-module packages such as ink) goes to node's own loader.
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const kept = cached && !script.cachedDataRejected ? cached : undefined;
  if (cacheFile && (kept === undefined || kept.runs < CODE_CACHE_RUNS)) {
    process.once('exit', (code) => {
      if (code === 0) writeCodeCache(cacheFile, script, kept);
    });
  }
  const wrapper = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  const module = { exports: {} as Record<string, unknown>, filename: file, loaded: false };
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
  module.loaded = true;
  return module.exports;
}

/** Written aside and renamed into place, so a concurrent run reads a whole cache or none. */
function writeCodeCache(file: string, script: import('node:vm').Script, previous: CodeCache | undefined): void {
  const dir = path.dirname(file);
  try {
    const fresh = !existsSync(dir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const made = script.createCachedData();
    const data = previous && previous.data.length > made.length ? previous.data : made;
    const header = Buffer.alloc(CODE_CACHE_HEADER);
    const at = header.write(CODE_CACHE_MAGIC, 'latin1');
    header.writeUInt32BE(data.length, at);
    header.writeUInt32BE(process.getBuiltinModule('node:zlib').crc32(data), at + 4);
    header.writeUInt32BE((previous?.runs ?? 0) + 1, at + 8);
    const aside = `${file}.${process.pid}.tmp`;
    writeFileSync(aside, Buffer.concat([header, data]), { mode: 0o600 });
    renameSync(aside, file);
    if (fresh) removeStaleCodeCaches(path.dirname(dir), path.basename(dir));
  } catch {
    // No cache this time.
  }
}

/** The caches of other bundles (an older or another install), once unused for a week. */
function removeStaleCodeCaches(parent: string, current: string): void {
  for (const entry of readdirSync(parent)) {
    if (entry === current) continue;
    const dir = path.join(parent, entry);
    if (Date.now() - statSync(dir).mtimeMs > STALE_CODE_CACHE_MS) rmSync(dir, { recursive: true, force: true });
  }
}
