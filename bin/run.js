#!/usr/bin/env node
// CommonJS (bin/package.json): a CommonJS entry starts without node's ES module loader, which the
// CLI's start-up path never needs (docs/decisions/0023-cli-start-up.md).
const { existsSync } = require('node:fs');
const { enableCompileCache } = require('node:module');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

// Node 22.1+ keeps V8's compiled code between runs (in the OS temp dir; NODE_DISABLE_COMPILE_CACHE=1
// turns it off) for the modules it loads itself; the start-up path keeps its own for its bundle.
enableCompileCache?.();

/** This file's URL, for the start-up path; oclif is given the package root (bin/package.json has no name). */
const bin = pathToFileURL(__filename).href;
const root = path.join(__dirname, '..');

async function main() {
  // `agent` runs for as long as its instance does, so it skips the CLI framework and loads only what
  // it runs (docs/decisions/0008-oclif.md). Every other command line tries the start-up path first
  // (src/cli/fast-path.ts, built as dist/fast/start.cjs), which hands it to oclif when it can't.
  const [command, ...args] = process.argv.slice(2);
  if (command === 'agent' && !args.some((arg) => arg === '--help' || arg === '-h')) {
    const { runAgentCommandLine } = await import('../dist/agent/command-line.js');
    process.exit(await runAgentCommandLine(args));
  }
  const start = path.join(root, 'dist', 'fast', 'start.cjs');
  if (existsSync(start) && (await require(start).runFastPath(process.argv.slice(2), bin))) return;
  const { execute } = await import('@oclif/core');
  await execute({ dir: root });
}

void main();
