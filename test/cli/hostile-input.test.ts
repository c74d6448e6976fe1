import net from 'node:net';
import { expect } from 'chai';
import { ensureBuilt, runCli, type CliResult } from './fixtures.js';

/**
 * Hostile input on the command line and in the environment (issue 16): every bad value is refused
 * before anything starts, with exit 2 and one line on stderr naming the flag, environment variable
 * or file key as it was given, and what was expected. Never a stack trace, never exit 1 with a bare
 * message from deep inside.
 */

/** A port nothing listens on (it was free a moment ago): nothing here may get as far as connecting. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Exit 2, nothing on stdout, one line on stderr matching `line`, no stack. */
export function expectUsageError(res: CliResult, line: RegExp | string, what: string): void {
  const all = `${what} → exit ${res.code} after ${res.ms}ms\nstdout: ${res.stdout}\nstderr: ${res.stderr}`;
  expect(res.code, all).to.equal(2);
  expect(res.stdout, all).to.equal('');
  const lines = res.stderr.trimEnd().split('\n');
  expect(lines, all).to.have.length(1);
  if (typeof line === 'string') expect(lines[0], all).to.include(line);
  else expect(lines[0], all).to.match(line);
  expect(res.stderr, all).not.to.match(/\n\s+at |TypeError|RangeError/);
}

/** Runs the cases a few at a time (the test machine may have two CPUs). */
async function runAll(cases: { args: string[]; env?: NodeJS.ProcessEnv; line: RegExp | string }[]): Promise<void> {
  const results: CliResult[] = [];
  for (let i = 0; i < cases.length; i += 3) {
    results.push(...(await Promise.all(cases.slice(i, i + 3).map((c) => runCli(c.args, { env: c.env ?? {} })))));
  }
  results.forEach((res, i) => {
    const c = cases[i]!;
    expectUsageError(res, c.line, `${Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)} `).join('')}${c.args.join(' ')}`);
  });
}

describe('CLI: hostile input is refused with exit 2, naming the setting', function () {
  this.timeout(120_000);
  let dead: string;
  before(async function () {
    this.timeout(180_000);
    ensureBuilt();
    dead = `http://127.0.0.1:${await deadPort()}`;
  });

  describe("durations past a timer's range (Node fires a delay above 2^31-1 ms after 1 ms)", () => {
    const MAX = 'expected a duration of at most 576h (24 days)';

    it('agent: a duration setting from a flag or the environment', async () => {
      await runAll([
        { args: ['agent', '--registry', 'memory', '--health-interval', '600h'], line: `Error: --health-interval=600h (flag): ${MAX}` },
        { args: ['agent', '--registry', 'memory', '--renew-interval=99999999999999999999'], line: `Error: --renew-interval=99999999999999999999 (flag): ${MAX}` },
        { args: ['agent', '--registry', 'memory'], env: { SERVICE_DISCOVERY_LEADER_TTL: '600h' }, line: `Error: SERVICE_DISCOVERY_LEADER_TTL=600h (env): ${MAX}` },
        { args: ['agent', '--registry', 'memory'], env: { SERVICE_DISCOVERY_CALL_TIMEOUT: '99999999999999999999' }, line: `Error: SERVICE_DISCOVERY_CALL_TIMEOUT=99999999999999999999 (env): ${MAX}` },
      ]);
    });

    it('commands: --timeout, events --for, services disable --for/--drain-timeout, the feeds\' intervals', async () => {
      const endpoints = ['--endpoints', dead];
      await runAll([
        { args: ['status', ...endpoints, '--timeout', '99999999999999999999'], line: `Error: --timeout: invalid duration "99999999999999999999": ${MAX}` },
        { args: ['services', 'list', ...endpoints, '--timeout', '600h'], line: `Error: --timeout: invalid duration "600h": ${MAX}` },
        { args: ['events', ...endpoints, '--for', '600h'], line: `Error: --for: invalid duration "600h": ${MAX}` },
        { args: ['services', 'disable', 'x', ...endpoints, '--for', '600h'], line: `Error: --for: invalid duration "600h": ${MAX}` },
        { args: ['services', 'disable', 'x', ...endpoints, '--drain-timeout', '99999999999999999999'], line: `Error: --drain-timeout: invalid duration "99999999999999999999": ${MAX}` },
        { args: ['lb', 'haproxy', ...endpoints, '--socket', '/nonexistent', '--backend', 'b', '--resync-interval', '600h'], line: `Error: --resync-interval: invalid duration "600h": ${MAX}` },
        { args: ['render', ...endpoints, '--template', '/nonexistent', '--out', '/tmp/x', '--debounce', '600h'], line: `Error: --debounce: invalid duration "600h": ${MAX}` },
      ]);
    });
  });
});
