import { Config, execute, type Command, type Interfaces } from '@oclif/core';

/** A command file's module as the bundle imports it: the class is its default export (or any exported command class). */
export type CommandModule = Record<string, unknown>;

/**
 * Runs the CLI from the start-up bundle (dist/fast, built by scripts/build-fast-path.ts): oclif's own
 * `execute` (version, help, hooks, flag parsing, errors, exit codes), with the one difference that this
 * package's command classes come from the bundle instead of one `import()` per file. Everything else
 * (plugin commands, topics, unknown commands) is oclif's usual lookup.
 *
 * `dir` is bin/run.js's URL, as `execute({ dir })` is given it.
 */
export async function runBundled(commands: Record<string, CommandModule>, dir: string, argv: string[]): Promise<unknown> {
  let config: Config;
  try {
    config = await Config.load(dir);
  } catch {
    // `execute` fails the same way, with oclif's message and exit code.
    return execute({ args: argv, dir });
  }
  const plugin = config.getPluginsList().find((p) => p.isRoot);
  if (plugin) {
    const find = plugin.findCommand.bind(plugin) as (id: string, opts?: { must: boolean }) => Promise<Command.Class | undefined>;
    // The plugin's manifest entries load through this method (Plugin.load: `load: () => this.findCommand(id)`),
    // so oclif's later reload of the configuration, which keeps the plugin objects, keeps it too.
    const bundled = async (id: string, opts?: { must: boolean }): Promise<Command.Class | undefined> => {
      const module = commands[id];
      const found = module && commandClassIn(module);
      if (!found) return find(id, opts);
      // What Plugin.findCommand sets on a class it imports.
      return Object.assign(found, { id, plugin, isESM: true, relativePath: config.findCommand(id)?.relativePath });
    };
    plugin.findCommand = bundled as Interfaces.Plugin['findCommand'];
  }
  return execute({ args: argv, loadOptions: config });
}

/** oclif's rule (searchForCommandClass): the default export, else the first export that has `run`. */
function commandClassIn(module: CommandModule): Command.Class | undefined {
  const isCommand = (value: unknown): value is Command.Class => typeof value === 'function' && typeof (value as { run?: unknown }).run === 'function';
  if (isCommand(module.default)) return module.default;
  return Object.values(module).find(isCommand);
}
