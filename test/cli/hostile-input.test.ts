import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ensureBuilt, runCli, type CliResult } from './fixtures.js';
import { deadPort } from '../helpers/loopback.js';

/**
 * Hostile input on the command line and in the environment (issue 16): every bad value is refused
 * before anything starts, with exit 2 and one line on stderr naming the flag, environment variable
 * or file key as it was given, and what was expected. Never a stack trace, never exit 1 with a bare
 * message from deep inside.
 */


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

  describe('values that used to end in exit 1 with a bare message from deep inside', () => {
    const HOST = 'expected a host name or an IP address without brackets (e.g. proxy-stone-1.internal, 10.0.0.7, fd00::7)';

    it('--endpoints redis://:bad, from the flag or the environment', async () => {
      await runAll([
        { args: ['status', '--endpoints', 'redis://:bad'], line: /^Error: --endpoints redis:\/\/:bad: expected one Redis URL such as redis:\/\/127\.0\.0\.1:6379$/ },
        { args: ['services', 'list'], env: { SERVICE_DISCOVERY_ENDPOINTS: 'redis://:bad' }, line: /^Error: SERVICE_DISCOVERY_ENDPOINTS redis:\/\/:bad: expected one Redis URL/ },
        { args: ['agent', '--endpoints', 'redis://:bad'], line: /^Error: --endpoints=redis:\/\/:bad \(flag\): expected comma-separated http\(s\) URLs/ },
      ]);
    });

    it('agent: a SERVICE_HOST with control characters or a space', async () => {
      await runAll([
        { args: ['agent', '--registry', 'memory', '--api-port', '0'], env: { SERVICE_HOST: 'a\u0001b' }, line: `Error: SERVICE_HOST="a\\u0001b" (env): ${HOST}; contains a control character (U+0001)` },
        { args: ['agent', '--registry', 'memory', '--api-port', '0', '--service-host', 'a b'], line: `Error: --service-host=a b (flag): ${HOST}` },
        { args: ['agent', '--registry', 'memory', '--api-port', '0'], env: { SERVICE_DISCOVERY_API_HOST: 'a\u202eb' }, line: `Error: SERVICE_DISCOVERY_API_HOST="a\\u202eb" (env): ${HOST}; contains a bidirectional control character (U+202E)` },
      ]);
    });

    it('agent: an API key with a space, from the environment or a flag (never shown)', async () => {
      await runAll([
        { args: ['agent', '--registry', 'memory', '--api-port', '0'], env: { SERVICE_DISCOVERY_API_KEY: 'secret part' }, line: 'Error: SERVICE_DISCOVERY_API_KEY=*** (env): expected a key without spaces or control characters' },
        { args: ['agent', '--registry', 'memory', '--api-port', '0', '--api-key', 'secret part'], line: 'Error: --api-key=*** (flag): expected a key without spaces or control characters' },
      ]);
    });

    it('agent: a key file with a key holding a space names the key file setting, never the key', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sd-keys-'));
      try {
        const file = path.join(dir, 'keys');
        writeFileSync(file, '# keys\nops:operator:secret part\n');
        const expected = `(env): expected a file of name:role:key lines or JSON [{name, role, key}]; API key 1 ("ops"): the key must be a non-empty string without whitespace`;
        await runAll([
          { args: ['agent', '--registry', 'memory', '--api-port', '0'], env: { SERVICE_DISCOVERY_API_KEY_FILE: file }, line: `Error: SERVICE_DISCOVERY_API_KEY_FILE=${file} ${expected}` },
          { args: ['agent', '--registry', 'memory', '--api-port', '0', '--api-key-file', file], line: `Error: --api-key-file=${file} ${expected.replace('(env)', '(flag)')}` },
        ]);
        writeFileSync(file, 'ops:admin:k1\n');
        await runAll([{ args: ['agent', '--registry', 'memory', '--api-port', '0', '--api-key-file', file], line: `Error: --api-key-file=${file} (flag): expected a file of name:role:key lines or JSON [{name, role, key}]; ${file}: line 1: role must be viewer or operator` }]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('agent: an API host that does not resolve is refused before anything starts', async () => {
      const args = ['agent', '--registry', 'memory', '--api-port', '0'];
      await runAll([
        { args, env: { SERVICE_DISCOVERY_API_HOST: 'no-such-host.invalid' }, line: /^Error: SERVICE_DISCOVERY_API_HOST=no-such-host\.invalid \(env\): expected a host name of this machine that resolves; no-such-host\.invalid does not \(ENOTFOUND\)$/ },
        { args: [...args, '--api-host', 'no-such-host.invalid'], line: /^Error: --api-host=no-such-host\.invalid \(flag\): expected a host name of this machine that resolves/ },
      ]);
    });

    it('agent: an API address this machine cannot listen on names the setting (exit 2)', async () => {
      // A documentation address (RFC 5737) is no address of this machine.
      const res = await runCli(['agent', '--registry', 'memory', '--api-port', '0', '--api-host', '192.0.2.1']);
      const all = `exit ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`;
      expect(res.code, all).to.equal(2);
      expect(res.stderr.trimEnd().split('\n'), all).to.have.length(1);
      expect(res.stderr.trimEnd(), all).to.match(/^Error: --api-host=192\.0\.2\.1 \(flag\): expected an address of this machine; cannot listen on 192\.0\.2\.1:0 \(EADDRNOTAVAIL\)$/);
      // What the agent logged as it stopped is JSON lines on stdout; it never registered.
      expect(res.stdout, all).not.to.include('agent.started');

      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as net.AddressInfo).port;
      try {
        const inUse = await runCli(['agent', '--registry', 'memory', '--api-host', '127.0.0.1'], { env: { SERVICE_DISCOVERY_API_PORT: String(port) } });
        const what = `exit ${inUse.code}\nstdout: ${inUse.stdout}\nstderr: ${inUse.stderr}`;
        expect(inUse.code, what).to.equal(2);
        expect(inUse.stderr.trimEnd().split('\n'), what).to.have.length(1);
        expect(inUse.stderr.trimEnd(), what).to.equal(
          `Error: SERVICE_DISCOVERY_API_PORT=${port} (env): expected a free port (or 0 for any); cannot listen on 127.0.0.1:${port}: in use (EADDRINUSE)`,
        );
      } finally {
        taken.close();
      }
    });
  });

  describe("the agent's own flag parser", () => {
    it('shows what was typed escaped, on one line', async () => {
      await runAll([
        {
          args: ['agent', '--log-level', 'x\ny\u001b[2J'],
          line: 'Error: Expected --log-level=x\\u000ay\\u001b[2J to be one of: trace, debug, info, warn, error, fatal, silent (hint: see proxy-stone-sd agent --help)',
        },
        { args: ['agent', '--bo\u0007gus'], line: 'Error: Nonexistent flag: --bo\\u0007gus (hint: see proxy-stone-sd agent --help)' },
      ]);
    });
  });

  describe("the commands' target flags: what could not be used is a usage error, not exit 4 from the network", () => {
    it('--endpoints, --agent, --api-key, --namespace, --timeout, --etcd-username', async () => {
      const endpoints = ['--endpoints', dead];
      await runAll([
        { args: ['status', '--endpoints', 'http://127.0.0.1:0'], line: 'Error: --endpoints http://127.0.0.1:0: expected http(s) URLs such as http://127.0.0.1:2379, or one redis:// URL' },
        { args: ['status', '--endpoints', 'http://a b'], line: 'Error: --endpoints http://a b: expected http(s) URLs' },
        { args: ['status', '--endpoints', `${dead},http://e\u0007:2379`], line: 'Error: --endpoints http://e\\u0007:2379: expected http(s) URLs' },
        { args: ['status', '--agent', `${dead}/\u0001`], line: `Error: --agent ${dead}/\\u0001: expected an http(s) URL such as http://127.0.0.1:8790` },
        { args: ['status'], env: { PROXY_STONE_SD_AGENT: 'http://127.0.0.1:0' }, line: 'Error: PROXY_STONE_SD_AGENT http://127.0.0.1:0: expected an http(s) URL such as http://127.0.0.1:8790' },
        { args: ['status', '--agent', dead, '--api-key', 'a\nb'], line: 'Error: --api-key: expected a key without spaces or control characters' },
        { args: ['audit', '--agent', dead], env: { SERVICE_DISCOVERY_API_KEY: 'two words' }, line: 'Error: SERVICE_DISCOVERY_API_KEY: expected a key without spaces or control characters' },
        { args: ['status', ...endpoints, '--namespace', 'a\u0001b'], line: 'Error: --namespace "a\\u0001b": expected a key prefix without spaces, not starting with / (e.g. proxy-stone); contains a control character (U+0001)' },
        { args: ['services', 'list', ...endpoints], env: { SERVICE_DISCOVERY_NAMESPACE: 'x'.repeat(300) }, line: /^Error: SERVICE_DISCOVERY_NAMESPACE x{117}\.\.\.: expected at most 256 characters \(got 300\)$/ },
        { args: ['status', ...endpoints, '--timeout', '0.0001'], line: 'Error: --timeout: expected a duration of at least 1ms (e.g. 5, 500ms, 2s)' },
        { args: ['status', ...endpoints, '--etcd-username', 'u\u0001', '--etcd-password', 'p'], line: 'Error: --etcd-username "u\\u0001": expected a non-empty string; contains a control character (U+0001)' },
        { args: ['services', 'disable', 'x', ...endpoints, '--reason', 'r'.repeat(501)], line: 'Error: --reason: expected at most 500 characters (got 501)' },
        { args: ['services', 'enable', 'x', ...endpoints, '--reason', 'ok\u001b[2J'], line: 'Error: --reason: expected text without control characters; contains U+001B' },
      ]);
    });
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

    it('commands: --timeout, events --duration, services disable --for/--drain-timeout, the feeds\' intervals', async () => {
      const endpoints = ['--endpoints', dead];
      await runAll([
        { args: ['status', ...endpoints, '--timeout', '99999999999999999999'], line: `Error: --timeout: invalid duration "99999999999999999999": ${MAX}` },
        { args: ['services', 'list', ...endpoints, '--timeout', '600h'], line: `Error: --timeout: invalid duration "600h": ${MAX}` },
        { args: ['events', ...endpoints, '--duration', '600h'], line: `Error: --duration: invalid duration "600h": ${MAX}` },
        { args: ['services', 'disable', 'x', ...endpoints, '--for', '600h'], line: `Error: --for: invalid duration "600h": ${MAX}` },
        { args: ['services', 'disable', 'x', ...endpoints, '--drain-timeout', '99999999999999999999'], line: `Error: --drain-timeout: invalid duration "99999999999999999999": ${MAX}` },
        { args: ['lb', 'haproxy', ...endpoints, '--socket', '/nonexistent', '--backend', 'b', '--resync-interval', '600h'], line: `Error: --resync-interval: invalid duration "600h": ${MAX}` },
        { args: ['render', ...endpoints, '--template', '/nonexistent', '--out', '/tmp/x', '--debounce', '600h'], line: `Error: --debounce: invalid duration "600h": ${MAX}` },
      ]);
    });
  });
});
