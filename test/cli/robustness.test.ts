import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { expect } from 'chai';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { API_KEY, ROOT, binOnPath, cliEnv, ensureBuilt, json, runCli, startCluster, type CliResult, type TestCluster } from './fixtures.js';
import { deadPort } from '../helpers/loopback.js';

/** Every command that talks to a cluster, with an id that exists in the test cluster. */
const COMMANDS: string[][] = [
  ['status'],
  ['services', 'list'],
  ['services', 'show', 'cli-node-1'],
  ['services', 'disable', 'cli-node-1'],
  ['services', 'enable', 'cli-node-1'],
  ['services', 'disable', '--all', '--yes'],
  ['topology'],
  ['audit'],
  ['events'],
  ['doctor'],
];
const TIMEOUT_S = 1.5;
/**
 * --timeout, plus start-up and shutdown. Unloaded, each command ends about 0.5-1 s after its
 * timeout; the slack is for a busy 2-CPU test machine running the suites in parallel. What the
 * bound proves is "no hang"; the message proves that the timeout is what fired.
 */
const BOUND_MS = TIMEOUT_S * 1000 + 8000;
/** ANSI escape sequences of any kind, and SGR (colour/style) ones. */
const ANSI = /\u001b\[/;
const SGR = /\u001b\[[\d;]*m/;

/** Runs `tasks` at most `limit` at a time (the test machine may have two CPUs). */
async function pool<T>(tasks: (() => Promise<T>)[], limit = 3): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

/** A TCP server that accepts connections and never says a word. */
async function blackhole(): Promise<{ url: string; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}


/** What an unanswered command must do: fail within the bound, with its documented code, in one line. */
function expectBounded(res: CliResult, args: string[]): void {
  const what = `${args.join(' ')} → exit ${res.code} after ${res.ms}ms\nstdout: ${res.stdout}\nstderr: ${res.stderr}`;
  expect(res.ms, what).to.be.below(BOUND_MS);
  if (args[0] === 'doctor') {
    expect(res.code, what).to.equal(1);
    return;
  }
  expect(res.code, what).to.equal(4);
  if (args[0] === 'status' && args.includes('--endpoints')) {
    expect(res.stdout, what).to.match(/reachable: +no/);
    return;
  }
  expect(res.stderr.trim().split('\n'), what).to.have.length(1);
  expect(res.stderr, what).to.match(new RegExp(`^Error: (registry|agent) \\S+ unreachable: no answer within ${TIMEOUT_S * 1000}ms`));
}

describe('CLI robustness', function () {
  this.timeout(120_000);
  before(function () {
    this.timeout(180_000);
    ensureBuilt();
  });

  describe('--timeout bounds every command', () => {
    it('against a server that accepts TCP and never answers, as etcd and as an agent', async () => {
      const hole = await blackhole();
      try {
        const runs = COMMANDS.flatMap((cmd) =>
          (['--endpoints', '--agent'] as const).map((flag) => {
            const args = [...cmd, flag, hole.url, '--timeout', String(TIMEOUT_S), ...(flag === '--agent' ? ['--api-key', API_KEY] : [])];
            return async () => ({ args, res: await runCli(args, { timeoutMs: 30_000 }) });
          }),
        );
        for (const { args, res } of await pool(runs)) expectBounded(res, args);
      } finally {
        hole.close();
      }
    });

    describe('against a frozen etcd (SIGSTOP)', () => {
      let etcd: EtcdServer | undefined;
      before(async function () {
        this.timeout(60_000);
        etcd = await startEtcd({ own: true });
        if (!etcd.controllable || etcd.pid === undefined) {
          await etcd.stop();
          etcd = undefined;
          this.skip(); // a Docker or external etcd cannot be frozen from here
        }
        etcd.kill('SIGSTOP');
      });
      after(async () => {
        if (!etcd) return;
        etcd.kill('SIGCONT');
        await etcd.stop();
      });

      it('every command fails with its documented code within --timeout', async () => {
        const runs = COMMANDS.map((cmd) => {
          const args = [...cmd, '--endpoints', etcd!.endpoint, '--timeout', String(TIMEOUT_S)];
          return async () => ({ args, res: await runCli(args, { timeoutMs: 30_000 }) });
        });
        for (const { args, res } of await pool(runs)) expectBounded(res, args);
      });

      it('--json gives {error} with code "unreachable" and exit 4', async () => {
        const res = await runCli(['services', 'disable', 'x', '--json', '--endpoints', etcd!.endpoint, '--timeout', '1']);
        expect(res.code).to.equal(4);
        expect(json<{ error: unknown }>(res).error).to.deep.include({ code: 'unreachable', exit: 4 });
        expect(res.stderr).to.equal('');
      });
    });
  });

  describe('failures are one clear line and a non-zero exit, within seconds', () => {
    let cluster: TestCluster;
    let dead: string;
    before(async function () {
      this.timeout(120_000);
      cluster = await startCluster(1);
      dead = `http://127.0.0.1:${await deadPort()}`;
    });
    after(async () => {
      await cluster?.stop();
    });

    it('wrong ids, bad flags, a dead etcd and a dead agent', async () => {
      const agent = [...cluster.agentArgs, '--api-key', API_KEY];
      const cases: { args: string[]; exit: number; line: RegExp }[] = [
        { args: ['services', 'show', 'no-such-id', ...cluster.registryArgs], exit: 3, line: /^Error: service no-such-id not found \(hint: list the ids with: proxy-stone-sd services list\)$/ },
        { args: ['services', 'disable', 'no-such-id', ...cluster.registryArgs], exit: 3, line: /^Error: service no-such-id not found/ },
        { args: ['services', 'enable', 'no-such-id', ...agent], exit: 3, line: /^Error: service no-such-id not found/ },
        { args: ['services', 'show', 'no-such-id', ...agent], exit: 3, line: /^Error: service no-such-id not found/ },
        { args: ['services', 'list', '--bogus'], exit: 2, line: /^Error: Nonexistent flag: --bogus \(hint: see proxy-stone-sd services list --help\)$/ },
        { args: ['services', 'list', '--status', 'sleepy'], exit: 2, line: /^Error: Expected --status=sleepy to be one of: healthy, unhealthy/ },
        { args: ['topology', '--timeout', 'soon'], exit: 2, line: /^Error: --timeout: invalid duration "soon"/ },
        { args: ['events', '--types', 'serviceExploded'], exit: 2, line: /^Error: --types: expected a comma-separated list .*; unknown: serviceExploded/ },
        { args: ['services', 'show'], exit: 2, line: /^Error: Missing 1 required arg: ID \(Service id, as shown by services list\)/ },
        { args: ['services', 'show', 'a', 'b'], exit: 2, line: /^Error: Unexpected argument: b/ },
        { args: ['services', 'disable', 'x', '--zone', 'z'], exit: 2, line: /^Error: All of the following must be provided when using --zone: --all/ },
        { args: ['services', 'disable'], exit: 2, line: /^Error: missing service id/ },
        { args: ['status', '--endpoints', dead, '--agent', dead], exit: 2, line: /^Error: --endpoints and --agent both given/ },
        { args: ['audit', '--agent', 'ftp://127.0.0.1'], exit: 2, line: /^Error: --agent ftp:\/\/127\.0\.0\.1: expected an http\(s\) URL/ },
        { args: ['services', 'list', '--endpoints', dead], exit: 4, line: new RegExp(`^Error: registry ${dead} unreachable: connection refused`) },
        { args: ['topology', '--endpoints', dead], exit: 4, line: /unreachable: connection refused/ },
        { args: ['services', 'disable', 'x', '--endpoints', dead], exit: 4, line: new RegExp(`^Error: registry ${dead} unreachable: .*connect ECONNREFUSED|^Error: registry ${dead} unreachable: connection refused`) },
        { args: ['events', '--endpoints', dead], exit: 4, line: new RegExp(`^Error: registry ${dead} unreachable`) },
        { args: ['services', 'list', '--agent', dead], exit: 4, line: new RegExp(`^Error: agent ${dead} unreachable: connection refused \\(hint: check the agent URL`) },
        { args: ['services', 'disable', 'x', '--agent', dead, '--api-key', API_KEY], exit: 4, line: new RegExp(`^Error: agent ${dead} unreachable: connection refused`) },
        { args: ['events', '--agent', dead], exit: 4, line: new RegExp(`^Error: agent ${dead} unreachable: connection refused`) },
        { args: ['status', '--agent', dead], exit: 4, line: new RegExp(`^Error: agent ${dead} unreachable: connection refused`) },
        { args: ['services', 'enable', 'cli-node-1', ...cluster.agentArgs], exit: 5, line: /^Error: agent \S+ refused the request: .* \(hint: pass a key with --api-key/ },
      ];
      const results = await pool(cases.map((c) => () => runCli(c.args)));
      results.forEach((res, i) => {
        const c = cases[i]!;
        const what = `${c.args.join(' ')} → exit ${res.code} after ${res.ms}ms\nstdout: ${res.stdout}\nstderr: ${res.stderr}`;
        expect(res.code, what).to.equal(c.exit);
        expect(res.stdout, what).to.equal('');
        expect(res.stderr.trim().split('\n'), what).to.have.length(1);
        expect(res.stderr.trim(), what).to.match(c.line);
        expect(res.stderr, what).not.to.match(/\n\s+at /);
        expect(res.ms, what).to.be.below(10_000);
      });
      // The same failures under --json: one JSON value on stdout with the same exit code, nothing on stderr.
      const jsonResults = await pool(cases.filter((c) => c.args[0] !== 'events').map((c) => () => runCli([...c.args, '--json'])));
      jsonResults.forEach((res) => {
        const { error } = json<{ error: { code: string; message: string; exit: number } }>(res);
        expect(error.exit, res.stdout).to.equal(res.code);
        expect(error.message).to.not.include('\n');
        expect(res.stderr).to.equal('');
      });
    });
  });

  describe('colour', () => {
    let cluster: TestCluster;
    before(async function () {
      this.timeout(120_000);
      cluster = await startCluster(2);
    });
    after(async () => {
      await cluster?.stop();
    });

    const commands = () => [
      ['topology', ...cluster.registryArgs],
      ['services', 'list', ...cluster.registryArgs],
      ['services', 'show', 'cli-node-1', ...cluster.registryArgs],
      ['status', ...cluster.registryArgs],
      ['status', ...cluster.agentArgs],
      ['audit', ...cluster.registryArgs],
      ['doctor', ...cluster.registryArgs],
      ['services', 'show', 'no-such-id', ...cluster.registryArgs],
      ['services', 'list', '--bogus'],
    ];

    it('without a terminal: no escape sequences at all, on stdout or stderr', async () => {
      // Neither NO_COLOR nor FORCE_COLOR: only the missing TTY keeps colour off.
      const env = { NO_COLOR: undefined, FORCE_COLOR: undefined, TERM: 'xterm-256color', COLORTERM: 'truecolor' };
      for (const args of commands()) {
        const res = await runCli(args, { env });
        expect(res.stdout + res.stderr, args.join(' ')).not.to.match(ANSI);
      }
    });

    it('on a terminal, NO_COLOR turns colour off (and without it there is colour)', async function () {
      if (spawnSync('script', ['--version']).status !== 0) this.skip(); // needs util-linux `script` for a pseudo-terminal
      const bin = binOnPath();
      try {
        const onTty = (args: string[], env: NodeJS.ProcessEnv) =>
          spawnSync('script', ['-qec', `stty cols 160 rows 48 2>/dev/null; proxy-stone-sd ${args.map((a) => `'${a}'`).join(' ')}`, '/dev/null'], {
            cwd: ROOT,
            env: cliEnv({ PATH: bin.path, SHELL: '/bin/bash', TERM: 'xterm-256color', NO_COLOR: undefined, FORCE_COLOR: undefined, ...env }),
            encoding: 'utf8',
            input: '',
            timeout: 30_000,
          }).stdout;
        const coloured = onTty(['topology', ...cluster.registryArgs], {});
        expect(coloured, 'a terminal without NO_COLOR gets colour').to.match(SGR);
        for (const args of commands()) {
          const out = onTty(args, { NO_COLOR: '1' });
          expect(out, args.join(' ')).not.to.match(SGR);
        }
      } finally {
        bin.remove();
      }
    });
  });
});
