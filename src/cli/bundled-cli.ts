import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Errors, execute, Plugin, type Command, type Interfaces } from '@oclif/core';

/** A command file's module as the bundle imports it: the class is its default export (or any exported command class). */
export type CommandModule = Record<string, unknown>;
/** Imports one command's module: in the bundle each module is evaluated when first imported, so a run evaluates only its command's code. */
export type CommandImport = () => Promise<CommandModule>;

type FindCommand = (this: Plugin, id: string, opts?: { must: boolean }) => Promise<Command.Class | undefined>;

/**
 * Runs the CLI from the start-up bundle (dist/fast, built by scripts/build-fast-path.ts): oclif's own
 * `execute` (version, help, hooks, flag parsing, errors, exit codes), with the one difference that this
 * package's command classes come from the bundle instead of one `import()` per file. Everything else
 * (plugin commands, topics, unknown commands) is oclif's usual lookup.
 *
 * `dir` is bin/run.js's URL. With `withoutPlugins`, oclif loads no
 * other plugin (the help and autocomplete plugins' package files and manifests): the caller knows the
 * command line runs one of this package's commands and that no plugin has a hook that runs then.
 */
export async function runBundled(commands: Record<string, CommandImport>, dir: string, argv: string[], withoutPlugins = false): Promise<unknown> {
  // The bundle holds its own copy of oclif, so changing its Plugin class changes nothing outside this
  // process's CLI run. Every way oclif loads a command class ends in Plugin.findCommand.
  const find = Plugin.prototype.findCommand as FindCommand;
  const bundled: FindCommand = async function (this: Plugin, id, opts) {
    if (!this.isRoot || !Object.hasOwn(commands, id)) return find.call(this, id, opts);
    const found = commandClassIn(await commands[id]!());
    // As oclif answers a command file without a command class.
    if (!found) return opts?.must ? Errors.error(`command ${id} not found`) : undefined;
    // What Plugin.findCommand sets on a class it imports.
    return Object.assign(found, { id, plugin: this, isESM: true, relativePath: this.manifest.commands[id]?.relativePath });
  };
  Plugin.prototype.findCommand = bundled as Plugin['findCommand'];
  // The package root, above bin/ (whose own package.json only makes bin/run.js CommonJS).
  const root = fileURLToPath(new URL('..', dir));
  if (!withoutPlugins) return execute({ args: argv, dir: root });
  // The same, with no plugins listed.
  const pjson = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as Interfaces.PJSON;
  return execute({ args: argv, loadOptions: { root, pjson: { ...pjson, oclif: { ...pjson.oclif, plugins: [] } } } });
}

/** oclif's rule (searchForCommandClass): the default export, else the first export that has `run`. */
function commandClassIn(module: CommandModule): Command.Class | undefined {
  const isCommand = (value: unknown): value is Command.Class => typeof value === 'function' && typeof (value as { run?: unknown }).run === 'function';
  if (isCommand(module.default)) return module.default;
  return Object.values(module).find(isCommand);
}
