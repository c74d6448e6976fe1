import http from 'node:http';
import { expect } from 'chai';
import { listenOnLoopback, type LoopbackServer } from '../helpers/loopback.js';
import { ensureBuilt, json, runCli, type CliResult } from './fixtures.js';

/**
 * `--agent` pointed at something that is not an agent (issue 16, item 6): any HTTP server that
 * answers 200 with JSON (`{}`, `[]`, `{"services": 5}`) or HTML. Every command that takes --agent
 * says so in one line, "not a proxy-stone-sd agent at URL (what was wrong)", and exits 1 (the URL
 * works, it is not what the command needs); never "Cannot read properties of undefined".
 */

/** Every command that takes --agent, with the arguments it needs. */
const COMMANDS: string[][] = [
  ['status'],
  ['services', 'list'],
  ['services', 'show', 'svc-1'],
  ['services', 'enable', 'svc-1'],
  ['services', 'disable', 'svc-1'],
  ['services', 'disable', '--all', '--yes'],
  ['topology'],
  ['events', '--duration', '5'],
  ['audit'],
  ['doctor'],
];

/** What the impostors answer to every request, GET or POST, on any path. */
const BODIES: { name: string; type: string; body: string }[] = [
  { name: '{}', type: 'application/json', body: '{}' },
  { name: '[]', type: 'application/json', body: '[]' },
  { name: '{"services": 5}', type: 'application/json', body: '{"services": 5, "entries": "x", "status": "ok", "currentService": null}' },
  { name: 'HTML', type: 'text/html; charset=utf-8', body: '<!doctype html><html><body><h1>It works!</h1></body></html>' },
];

async function impostor(type: string, body: string): Promise<LoopbackServer> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': type });
    res.end(body);
  });
  return listenOnLoopback(server);
}

const CRASH = /Cannot read properties|TypeError|RangeError|is not a function|is not iterable|\n\s+at /;

describe('CLI: --agent at something that is not an agent', function () {
  this.timeout(180_000);
  const servers = new Map<string, LoopbackServer>();

  before(async function () {
    this.timeout(180_000);
    ensureBuilt();
    for (const b of BODIES) servers.set(b.name, await impostor(b.type, b.body));
  });
  after(async () => {
    for (const s of servers.values()) await s.close();
  });

  /** Runs `tasks` at most two at a time (the test machine may have two CPUs). */
  async function pairs<T>(tasks: (() => Promise<T>)[]): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < tasks.length; i += 2) out.push(...(await Promise.all(tasks.slice(i, i + 2).map((t) => t()))));
    return out;
  }

  for (const b of BODIES) {
    it(`every command, against a server answering 200 ${b.name}: exit 1, "not a proxy-stone-sd agent at URL (...)"`, async () => {
      const url = servers.get(b.name)!.url;
      const results = await pairs(COMMANDS.map((cmd) => async () => ({ cmd, res: await runCli([...cmd, '--agent', url, '--api-key', 'k'], { timeoutMs: 30_000 }) })));
      for (const { cmd, res } of results) {
        const what = `${cmd.join(' ')} → exit ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`;
        expect(res.code, what).to.equal(1);
        expect(`${res.stdout}${res.stderr}`, what).not.to.match(CRASH);
        expect(`${res.stdout}${res.stderr}`, what).to.include(`not a proxy-stone-sd agent at ${url} (`);
        if (cmd[0] === 'doctor') continue; // its checks go to stdout, each on its line
        expect(res.stdout, what).to.equal('');
        const lines = res.stderr.trimEnd().split('\n');
        expect(lines, what).to.have.length(1);
        expect(lines[0], what).to.match(new RegExp(`^Error: not a proxy-stone-sd agent at ${url.replace(/[.]/g, '\\.')} \\((GET|POST) /service-discovery/\\S+ .+\\) \\(hint: check the agent URL`));
      }
    });
  }

  it('says what was wrong with the answer', async () => {
    const cases: [string, string[], RegExp][] = [
      ['{}', ['status'], /\(GET \/service-discovery\/status answered: currentService: required\)/],
      ['[]', ['services', 'list'], /\(GET \/service-discovery\/services answered: expected an object, got an array\)/],
      ['{"services": 5}', ['services', 'list'], /\(GET \/service-discovery\/services answered: services: expected an array, got 5\)/],
      ['HTML', ['audit'], /\(GET \/service-discovery\/audit\?limit=50 answered text\/html, not JSON\)/],
      ['{}', ['events', '--duration', '5'], /\(GET \/service-discovery\/events answered application\/json, not an event stream\)/],
    ];
    for (const [body, cmd, detail] of cases) {
      const res = await runCli([...cmd, '--agent', servers.get(body)!.url]);
      expect(res.stderr, `${cmd.join(' ')} against ${body}`).to.match(detail);
    }
  });

  it('--json: {error} on stdout with exit 1, the same sentence', async () => {
    const url = servers.get('{}')!.url;
    const res: CliResult = await runCli(['services', 'list', '--json', '--agent', url]);
    expect(res.code, res.stdout).to.equal(1);
    const { error } = json<{ error: { code: string; message: string; exit: number } }>(res);
    expect(error.exit).to.equal(1);
    expect(error.message).to.match(new RegExp(`^not a proxy-stone-sd agent at ${url.replace(/[.]/g, '\\.')} \\(GET /service-discovery/services answered: services: required\\)$`));
  });
});

describe('CLI: an agent URL that answers without end', function () {
  this.timeout(60_000);
  let server: LoopbackServer;

  before(async () => {
    // JSON that never ends, and an event stream whose one event never ends: bounded reads cut both off.
    server = await listenOnLoopback(
      http.createServer((req, res) => {
        req.resume();
        const sse = req.url?.includes('/events');
        res.writeHead(200, { 'content-type': sse ? 'text/event-stream' : 'application/json' });
        res.write(sse ? 'data: ' : '{"services": ["');
        const chunk = 'x'.repeat(1024 * 1024);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        res.on('close', () => res.removeAllListeners('drain'));
        pump();
      }),
    );
  });
  after(() => server.close());

  it('a JSON answer is refused past its bound, an event past its own: memory stays bounded', async () => {
    const { AgentClient, MAX_ANSWER_BYTES } = await import('../../src/cli/agent-client.js');
    const { MAX_EVENT_BYTES } = await import('../../src/cli/sse-reader.js');
    const client = new AgentClient({ kind: 'agent', url: server.url, timeoutMs: 30_000 });
    try {
      const before = process.memoryUsage().rss;
      let error: unknown;
      await client.listServices().catch((err: unknown) => (error = err));
      expect((error as Error).message).to.include(`larger than ${MAX_ANSWER_BYTES} bytes`);
      const notices: string[] = [];
      const abort = new AbortController();
      const done = client.events(() => undefined, abort.signal, {
        onNotice: (n) => {
          notices.push(n);
          abort.abort();
        },
      });
      await done;
      expect(notices[0]).to.include(`larger than ${MAX_EVENT_BYTES} bytes`);
      expect(process.memoryUsage().rss - before).to.be.below(4 * MAX_ANSWER_BYTES);
    } finally {
      await client.close();
    }
  });
});
