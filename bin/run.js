#!/usr/bin/env node
// `agent` runs for as long as its instance does, so it skips the CLI framework and loads only what
// it runs (docs/decisions/0008-oclif.md). Its help, and every other command, go through oclif.
const [command, ...args] = process.argv.slice(2);
if (command === 'agent' && !args.some((arg) => arg === '--help' || arg === '-h')) {
  const { runAgentCommandLine } = await import('../dist/agent/command-line.js');
  process.exit(await runAgentCommandLine(args));
} else {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url });
}
