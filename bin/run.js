#!/usr/bin/env node
// `agent` runs for as long as its instance does, so it skips the CLI framework and loads only what
// it runs (docs/decisions/0008-oclif.md). Every other command line tries the start-up path first
// (src/cli/fast-path.ts, docs/decisions/0021-cli-start-up.md), which hands it to oclif when it can't.
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
