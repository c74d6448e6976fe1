#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ keeps V8's compiled code between runs (in the OS temp dir; NODE_DISABLE_COMPILE_CACHE=1
// turns it off), which takes a good part of every start after the first. Node 20 has no such thing.
module.enableCompileCache?.();

// `agent` runs for as long as its instance does, so it skips the CLI framework and loads only what
// it runs (docs/decisions/0008-oclif.md). Every other command line tries the start-up path first
// (src/cli/fast-path.ts, docs/decisions/0023-cli-start-up.md), which hands it to oclif when it can't.
const [command, ...args] = process.argv.slice(2);
if (command === 'agent' && !args.some((arg) => arg === '--help' || arg === '-h')) {
  const { runAgentCommandLine } = await import('../dist/agent/command-line.js');
  process.exit(await runAgentCommandLine(args));
} else {
  const { runFastPath } = await import('../dist/cli/fast-path.js');
  if (!(await runFastPath(process.argv.slice(2), import.meta.url))) {
    const { execute } = await import('@oclif/core');
    await execute({ dir: import.meta.url });
  }
}
