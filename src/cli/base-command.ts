import { Command, Errors } from '@oclif/core';
import { describeError, EXIT } from './errors.js';

type CommandError = Error & { exitCode?: number; oclif?: { exit?: number } };

/**
 * Shared by every command: `--json` (oclif's enableJsonFlag: results on stdout as one JSON value,
 * `this.log` silenced) and one mapping from library errors to a one-line message and an exit code.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  protected override async catch(err: CommandError): Promise<unknown> {
    // oclif's own parse and usage errors already carry exit 2 and a clear message.
    if (err instanceof Errors.CLIError || err.oclif?.exit !== undefined) {
      const exit = err.oclif?.exit ?? EXIT.failure;
      process.exitCode = exit;
      if (this.jsonEnabled()) {
        this.logJson({ error: { code: exit === EXIT.usage ? 'usage' : 'failure', message: firstLine(err.message), exit } });
        return undefined;
      }
      throw err;
    }
    const described = describeError(err);
    process.exitCode = described.exit;
    if (this.jsonEnabled()) {
      this.logJson({ error: { code: codeName(described.exit), message: described.message, exit: described.exit } });
      return undefined;
    }
    if (described.bug && process.env.DEBUG) throw err;
    return this.error(described.message, { exit: described.exit, suggestions: described.suggestions });
  }
}

function codeName(exit: number): string {
  for (const [name, code] of Object.entries(EXIT)) if (code === exit) return name;
  return 'failure';
}

/** The message on one line: oclif's parse errors span lines ("Parsing --timeout", then why); the help pointer is dropped. */
function firstLine(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !/^See more help with/.test(l));
  return lines.length > 0 ? lines.join(' ') : message;
}
