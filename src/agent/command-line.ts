import { parseArgs, type ParseArgsConfig } from 'node:util';
import v8 from 'node:v8';
import type { FlagValue } from '../config/load.js';
import { CONFIG_FILE_FLAG, SETTINGS, flagNames } from '../config/settings.js';
import { escapeUnsafe } from '../util/text.js';

/**
 * `proxy-stone-sd agent` without the CLI framework. The agent is the one long-running process of the
 * package, and oclif stays resident once loaded (7-8 MB of an idle agent, docs/decisions/0008-oclif.md), so
 * bin/run.js hands `agent` here and keeps oclif for help and every other command. The flags are
 * the same ones: both this parser and the oclif command are generated from the settings table, and
 * the config loader validates the values either way.
 */

/** A command-line mistake: printed on one line, exit code 2 (usage), like oclif's parse errors. */
export class AgentUsageError extends Error {
  override name = 'AgentUsageError';
}

/** Parses `agent`'s flags into what `runAgent` takes: values keyed by flag name, `--no-x` as false. */
export function parseAgentArgs(args: readonly string[]): Record<string, FlagValue> {
  const options: NonNullable<ParseArgsConfig['options']> = { [CONFIG_FILE_FLAG]: { type: 'string' } };
  const negations = new Map<string, string>();
  const enums = new Map<string, readonly string[]>();
  // `--check` is given once per check: its values add up (oclif's `multiple: true`).
  const repeatable = new Set<string>();
  for (const s of SETTINGS) {
    if (s.kind === 'list' && s.itemKind === 'check') for (const flag of flagNames(s)) repeatable.add(flag);
    // Aliases stay keyed by their own name: the config loader sees both and refuses two different values.
    for (const flag of flagNames(s)) {
      options[flag] = { type: s.kind === 'boolean' ? 'boolean' : 'string' };
      if (s.kind === 'boolean') negations.set(`no-${flag}`, flag);
      if (s.enumValues) enums.set(flag, s.enumValues);
    }
  }
  for (const negation of negations.keys()) options[negation] = { type: 'boolean' };
  let tokens: ReturnType<typeof parseArgs>['tokens'];
  try {
    ({ tokens } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false, tokens: true }));
  } catch (err) {
    throw new AgentUsageError(usageMessage(err));
  }
  const flags: Record<string, FlagValue> = {};
  // Left to right, so the last of `--api` / `--no-api` wins, as with oclif.
  for (const token of tokens ?? []) {
    if (token.kind !== 'option') continue;
    const negated = negations.get(token.name);
    if (negated !== undefined) {
      flags[negated] = false;
    } else if (options[token.name]!.type === 'boolean') {
      flags[token.name] = true;
    } else {
      const value = token.value ?? '';
      const allowed = enums.get(token.name);
      if (allowed && !allowed.includes(value)) {
        throw new AgentUsageError(`Expected --${token.name}=${value} to be one of: ${allowed.join(', ')}`);
      }
      if (repeatable.has(token.name)) {
        const before = flags[token.name];
        flags[token.name] = [...(Array.isArray(before) ? before : []), value];
      } else {
        flags[token.name] = value;
      }
    }
  }
  return flags;
}

/**
 * V8's defaults suit a busy process, not an agent that idles for months (docs/benchmarks.md,
 * "Agent memory"). Three settings, read by V8 as it goes, so they take effect here, before the
 * agent's modules load (loading them is the start-up burst):
 * - the young generation stays at its initial 1 MB (semi-space growth factor 1) instead of growing
 *   to 16 MB per semi-space during start-up and being given back only after a minute of idleness:
 *   a lower peak and first minute, for a few more scavenges at start-up;
 * - `--optimize-for-size` collects the old generation after about 2 MB of growth instead of 8 MB:
 *   the garbage of probes and keep-alives no longer piles up for minutes (idle RSS stayed at 77-80
 *   MB over 7 minutes, against a creep from 77 to 84 MB without it), for a major GC of a 20 MB heap
 *   every minute or two;
 * - TurboFan, V8's optimising compiler, is off during start-up and back on once the agent serves:
 *   start-up is one-off code that runs hot for a moment (parsing etcd's .proto files, building
 *   schemas, compiling routes), and its optimised versions and the compiler's working memory would
 *   stay resident for the agent's lifetime: 5-10 MB of an idle agent (73 MB against 77-83 MB, side
 *   by side). Left off for good it saves 2 MB more, but a busy API then answers a third as many
 *   requests a second, so the steady state gets TurboFan for what turns hot there. (`--jitless`
 *   would save 6 MB more but has to be given to node itself and takes WebAssembly away;
 *   `--max-semi-space-size` and such are node options too.)
 */
function tuneV8ForAnIdleAgent(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--optimize-for-size');
  v8.setFlagsFromString('--no-opt');
}

/** The end of start-up: TurboFan back on (see tuneV8ForAnIdleAgent). */
function startUpIsOver(): void {
  v8.setFlagsFromString('--opt');
}

/** node:util's parse errors in oclif's words, so both paths read the same. */
function usageMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const flag = /'(-{1,2}[^' ]+)/.exec(e.message ?? '')?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `Nonexistent flag: ${flag ?? '(unknown)'}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(e.message ?? '') ? `Flag ${flag?.split(/[ ,]/)[0] ?? ''} expects a value` : (e.message ?? 'invalid flag value');
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `Unexpected argument: ${/'([^']*)'/.exec(e.message ?? '')?.[1] ?? ''}`;
    default:
      return e.message?.split('\n')[0] ?? String(err);
  }
}

/**
 * Runs `agent` with its command-line arguments and returns the exit code. A usage or configuration
 * mistake prints one line on stderr (exit 2); anything else a user can cause is described by the
 * CLI's own error mapping, so messages and exit codes match the other commands.
 */
export async function runAgentCommandLine(args: readonly string[], bin = 'proxy-stone-sd'): Promise<number> {
  tuneV8ForAnIdleAgent();
  try {
    const flags = parseAgentArgs(args);
    const { runAgent } = await import('./run.js');
    return await runAgent({ flags, onStarted: startUpIsOver });
  } catch (err) {
    // Messages quote what was typed: shown escaped, on one line (a newline becomes \u000a).
    if (err instanceof AgentUsageError) {
      process.stderr.write(`Error: ${escapeUnsafe(err.message)} (hint: see ${bin} agent --help)\n`);
      return 2;
    }
    const { describeError } = await import('../cli/errors.js');
    const described = describeError(err);
    process.stderr.write(`Error: ${escapeUnsafe(described.message)}\n`);
    // A bug keeps its stack, shown on request as with the other commands.
    if (described.bug && process.env.DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return described.exit;
  }
}
