import { Command, Errors, ux } from '@oclif/core';
import { escapeUnsafe, safeJsonText } from '../util/text.js';
import { describeError, EXIT } from './errors.js';

type CommandError = Error & { exitCode?: number; oclif?: { exit?: number } };

/**
 * Shared by every command: `--json` (oclif's enableJsonFlag: results on stdout as one JSON value,
 * `this.log` silenced) and one mapping from library errors to a one-line message and an exit code
 * (a user's mistake is one line on stderr; a bug keeps oclif's report, with its stack under DEBUG).
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  protected override async catch(err: CommandError): Promise<unknown> {
    // `this.exit(n)` is how a command ends with a code, not a failure.
    if (err instanceof Errors.ExitError) throw err;
    // oclif's parse errors (unknown flag, bad value, missing argument) carry their exit code (2).
    if (err instanceof Errors.CLIError || err.oclif?.exit !== undefined) {
      const exit = err.oclif?.exit ?? EXIT.failure;
      const message = oneLine(err.message);
      process.exitCode = exit;
      if (this.jsonEnabled()) {
        this.logJson({ error: { code: exit === EXIT.usage ? 'usage' : 'failure', message, exit } });
        return undefined;
      }
      // One line instead of oclif's wrapped message followed by the whole help text.
      process.stderr.write(`Error: ${escapeUnsafe(message)}${exit === EXIT.usage ? ` (hint: see ${this.helpCommand()})` : ''}\n`);
      return this.exit(exit);
    }
    const described = describeError(err);
    process.exitCode = described.exit;
    if (this.jsonEnabled()) {
      this.logJson({ error: { code: codeName(described.exit), message: described.message, exit: described.exit } });
      return undefined;
    }
    if (described.bug && process.env.DEBUG) throw err;
    if (!described.bug) {
      // A user-caused failure: one unwrapped line, `Error: <what> (hint: <what to do>)`, and the
      // documented exit code. A message can quote what was typed or read (an endpoint, registry data,
      // a contexts file): shown, never obeyed.
      const hint = described.suggestions[0];
      process.stderr.write(`Error: ${escapeUnsafe(described.message.split('\n')[0]!)}${hint ? ` (hint: ${escapeUnsafe(hint)})` : ''}\n`);
      return this.exit(described.exit);
    }
    return this.error(escapeUnsafe(described.message), { exit: described.exit, suggestions: described.suggestions });
  }

  /** oclif's JSON output, with the DEL, C1 and bidirectional characters of registry strings escaped. */
  protected override logJson(json: unknown): void {
    ux.stdout(safeJsonText(ux.colorizeJson(json, { pretty: true, theme: this.config.theme?.json })));
  }

  /** `proxy-stone-sd services list --help`, as a person would type it. */
  protected helpCommand(): string {
    const id = this.id ? ` ${this.id.replaceAll(':', this.config.topicSeparator ?? ':')}` : '';
    return `${this.config.bin}${id} --help`;
  }
}

function codeName(exit: number): string {
  for (const [name, code] of Object.entries(EXIT)) if (code === exit) return name;
  return 'failure';
}

/**
 * The message on one line. oclif's parse errors span lines ("Parsing --timeout", then why, then a
 * pointer to --help): they become `--timeout: why`, and the pointer is dropped.
 */
export function oneLine(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.replace(/\s+/g, ' ').trim())
    .filter((l) => l.length > 0 && !/^See more help with/.test(l));
  if (lines.length === 0) return message.trim();
  const parsing = /^Parsing (--\S+)$/.exec(lines[0]!);
  if (parsing && lines.length > 1) return `${parsing[1]}: ${lines.slice(1).join(' ')}`;
  // "Missing 1 required arg:" then "id  Service id (see …)" per argument.
  if (/^Missing \d+ required args?:$/.test(lines[0]!) && lines.length > 1) {
    const args = lines.slice(1).map((l) => {
      const [, name = l, description] = /^(\S+)(?: (.*?))?\.?$/.exec(l) ?? [];
      return description ? `${name.toUpperCase()} (${description})` : name.toUpperCase();
    });
    return `${lines[0]} ${args.join(', ')}`;
  }
  return lines.join(' ').replace(/^The following errors? occurred:\s*/, '');
}
