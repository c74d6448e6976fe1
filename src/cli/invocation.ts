/**
 * How to write a command so that it runs as printed, in the shell the user started from: the bin
 * name when that name on PATH is this very program (an installed package), `npx <bin>` when this is
 * a project's own `node_modules/.bin` entry, `./bin/run.js` when the script lies under the working
 * directory (a clone, `npm run demo`), its absolute path otherwise. A demo that prints
 * `proxy-stone-sd topology` to someone who ran it from a fresh clone, where nothing by that name is
 * on PATH, prints a command that fails.
 *
 * @module
 */
import { accessSync, constants, realpathSync } from 'node:fs';
import path from 'node:path';

export interface InvocationContext {
  /** The script node ran: `process.argv[1]`. */
  script: string;
  /** The working directory the commands will be typed in. */
  cwd: string;
  /** The PATH they will be looked up on. */
  pathEnv: string;
  /** The package's bin name, e.g. `proxy-stone-sd`. */
  bin: string;
}

/** The command prefix that runs this program as printed, quoted for a POSIX shell where needed. */
export function invokedAs(context: InvocationContext): string {
  const script = path.resolve(context.cwd, context.script);
  const real = realOrNull(script);
  if (real !== null && onPath(context.bin, context.pathEnv) === real) return context.bin;
  const relative = path.relative(context.cwd, script);
  // Under `/` every path is inside: the absolute one reads better there.
  const inside = relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) && path.dirname(context.cwd) !== context.cwd;
  if (inside && path.dirname(relative) === path.join('node_modules', '.bin')) return `npx ${context.bin}`;
  // A script node ran need not be executable (a copy without its mode): node runs it either way.
  const runnable = executable(script) ? '' : 'node ';
  if (inside) return `${runnable}${shellQuote(`.${path.sep}${relative}`)}`;
  return `${runnable}${shellQuote(script)}`;
}

/** The real path `name` resolves to on `pathEnv`, as a shell would find it; null when none. */
function onPath(name: string, pathEnv: string): string | null {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    if (executable(candidate)) return realOrNull(candidate);
  }
  return null;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function realOrNull(file: string): string | null {
  try {
    return realpathSync(file);
  } catch {
    return null;
  }
}

/** `'it''s'`-style quoting, only when the word holds anything a shell would read specially. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
