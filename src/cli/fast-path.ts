import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir, release } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The CLI's start-up path (docs/decisions/0023-cli-start-up.md). Loading @oclif/core costs about as
 * much as starting node itself, so bin/run.js asks this module first, which imports nothing but node's
 * own modules:
 *  - `--version` and `--help` are answered from dist/fast (index.json, help.json), oclif's own output
 *    captured at build time, when nothing that could change that output is in play (a terminal's width, a theme,
 *    oclif's environment variables, hooks);
 *  - this package's commands run from dist/fast/cli.js, one bundle of oclif and every command class,
 *    through oclif's own `execute` (src/cli/bundled-cli.ts);
 *  - anything else (a plugin's command, a build without dist/fast) goes to oclif as before.
 * Both files are written by scripts/build-fast-path.ts from the built command classes and the manifest.
 */

/** dist/fast/index.json: what the build knew, so start-up needs no oclif to answer. */
export interface FastPathIndex {
  format: 1;
  /** package.json's `oclif.bin`, for the version line. */
  bin: string;
  /** package.json's `oclif.dirname`: where a user's theme.json would be. */
  dirname: string;
  versionFlags: string[];
  helpFlags: string[];
  /** This package's command ids (colon-separated), all of them in the bundle. */
  commands: string[];
  /** No hooks run around `--version`/`--help` and no theme is configured: the captured text is what oclif prints. */
  plain: boolean;
  /** No other plugin has a hook that runs around a command (init, prerun, postrun, finally, ...): this package's commands run without loading them. */
  pluginsIdle: boolean;
}

export const FAST_PATH_DIR = 'dist/fast';
export const FAST_PATH_INDEX = 'index.json';
/** dist/fast/help.json: oclif's help for a subject (a command id, a topic, '' for the root), as printed when stdout is not a terminal. */
export const FAST_PATH_HELP = 'help.json';
export const FAST_PATH_BUNDLE = 'cli.js';
/** `PROXY_STONE_SD_FAST_START=0` sends every command line through oclif's `execute`, as before the fast path. */
export const FAST_START_ENV = 'PROXY_STONE_SD_FAST_START';

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
  const { run } = (await import(pathToFileURL(path.join(root, FAST_PATH_DIR, FAST_PATH_BUNDLE)).href)) as {
    run: (argv: string[], dir: string, withoutPlugins: boolean) => Promise<unknown>;
  };
  // Help (a root's lists the plugins' commands) and the root's command line keep every plugin.
  const oneOfOurs = argv[0] !== undefined && !argv[0].startsWith('-') && !argv.some((arg) => index.helpFlags.includes(arg));
  await run(argv, binUrl, index.pluginsIdle && oneOfOurs);
  return true;
}

/** The index, unless it is missing or older than the manifest (then the manifest was rebuilt without it). */
function readIndex(root: string): FastPathIndex | undefined {
  const file = path.join(root, FAST_PATH_DIR, FAST_PATH_INDEX);
  try {
    if (statSync(file).mtimeMs < statSync(path.join(root, 'oclif.manifest.json')).mtimeMs) return undefined;
    const index = JSON.parse(readFileSync(file, 'utf8')) as FastPathIndex;
    return index.format === 1 ? index : undefined;
  } catch {
    return undefined;
  }
}

/** Neither oclif's settings, its debug output nor a user's theme could change what oclif prints. */
function plainEnvironment(index: FastPathIndex): boolean {
  const scope = index.bin.replaceAll('@', '').replaceAll(/[/-]/g, '_').toUpperCase();
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
