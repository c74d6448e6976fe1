/**
 * The package as a user gets it: `npm pack` of this repository (once per test process), and npm run
 * with a clean environment against the npm registry, for the tests that install the tarball
 * somewhere else (a global prefix, a scratch app) and use it from there.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** What `npm pack --json` says about the tarball. */
export interface PackResult {
  filename: string;
  files: { path: string }[];
}

/** A packed tarball of this repository. */
export interface PackedPackage extends PackResult {
  /** Absolute path of the .tgz. */
  tarball: string;
}

export interface NpmResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** npm's own environment, minus what `npm test` passes down (npm_config_*), so the child starts clean. */
export function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs npm (asynchronously: in-process agents keep their keep-alives meanwhile), killed after `timeoutMs`. */
export function npm(args: string[], cwd: string, timeoutMs: number): Promise<NpmResult> {
  return runCommand('npm', args, cwd, timeoutMs, npmEnv());
}

/** Runs a command to its end in `cwd`, asynchronously, killed after `timeoutMs` (said at the end of stderr). */
export function runCommand(command: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<NpmResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\n(killed after ${timeoutMs}ms)`;
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Why the npm registry cannot be used right now, or undefined when it answers. */
export async function registryUnreachable(): Promise<string | undefined> {
  const registry = spawnSync('npm', ['config', 'get', 'registry'], { env: npmEnv(), encoding: 'utf8' }).stdout.trim() || 'https://registry.npmjs.org/';
  try {
    const res = await fetch(new URL('@oclif%2fcore', registry.endsWith('/') ? registry : `${registry}/`), {
      method: 'HEAD',
      signal: AbortSignal.timeout(8000),
    });
    return res.status < 500 ? undefined : `${registry} answered HTTP ${res.status}`;
  } catch (err) {
    return `${registry} unreachable (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`;
  }
}

let packed: Promise<PackedPackage> | undefined;

/**
 * `npm pack` of this repository into a temp dir removed at process exit; packed once per test
 * process, shared by every caller. Packs the current build: `--ignore-scripts` skips `prepack` (a
 * full rebuild), which would delete dist/ under test files running in parallel.
 */
export function packRepository(): Promise<PackedPackage> {
  packed ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sd-pack-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const res = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT, 90_000);
    if (res.code !== 0) throw new Error(`npm pack failed (exit ${res.code}):\n${res.stderr}`);
    const result = (JSON.parse(res.stdout) as PackResult[])[0]!;
    return { ...result, tarball: path.join(dir, result.filename) };
  })();
  return packed;
}
