import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { tmpdir } from 'node:os';
import { uniqueNamespace } from '../helpers/etcd.js';
import { startHaproxy, type HaproxyServer } from '../helpers/haproxy.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { DOCS_DIR, loadBalancersDoc } from '../traffic/fixtures.js';
import { API_KEY, ROOT, binOnPath, cliEnv, ensureBuilt, followProbe, runShell, startCluster, type CliResult, type ShellRun, type TestCluster } from './fixtures.js';

/**
 * Every example in `--help` (and in docs/cli.md) works when pasted into bash. Examples are written
 * with fixed placeholder values that a reader recognises and this test swaps for the test cluster's:
 *
 * | in the example                       | here                                  |
 * | ------------------------------------ | ------------------------------------- |
 * | `http://127.0.0.1:2379`, no target   | the test etcd (also as SERVICE_DISCOVERY_ENDPOINTS) |
 * | `http://127.0.0.1:8790`              | the API of the agent of proxy-stone-1 |
 * | `http://127.0.0.1:3001`, port `3001` | proxy-stone-1's upstream              |
 * | `--api-port 8791`, `--base-port 8791`| `0` (a free port)                     |
 * | `$SERVICE_DISCOVERY_API_KEY`         | an operator key of the test agents    |
 * | `proxy-stone-1` … `proxy-stone-3`    | the test cluster's services (same ids) |
 * | `/run/haproxy/admin.sock`            | the admin socket of a test HAProxy (backend `proxy_stone`) |
 * | `upstream.conf.hbs`                  | the nginx template of docs/load-balancers.md, in a temp dir |
 * | `/etc/nginx/conf.d/proxy-stone-upstream.conf` | a file in that temp dir |
 * | `nginx -s reload`                    | the reload command of a test nginx |
 *
 * One-shot commands must exit 0. Commands that run until stopped (events, agent, demo) must still be
 * running after they settle and then exit 0 on Ctrl-C (SIGINT to the process group), or end on their
 * own with --count; the dashboard runs on a pseudo-terminal and must quit on `q`.
 */

interface ManifestCommand {
  id: string;
  summary?: string;
  description?: string;
  examples?: (string | { command: string; description?: string })[];
}

/** How a command that does not end on its own is run. */
const FOLLOWS: Record<string, { ready?: RegExp | 'following'; settleMs: number }> = {
  // Ready once etcd counts its watch stream (or the agent its SSE client): see followProbe.
  events: { ready: 'following', settleMs: 1000 },
  agent: { ready: /agent\.started/, settleMs: 500 },
  demo: { ready: /Ctrl-C to stop/, settleMs: 500 },
  // Ready once the backend is in sync / the registry listed (their JSON log lines); `render --once` ends by itself.
  'lb:haproxy': { ready: /"event":"haproxy\.synced"/, settleMs: 500 },
  render: { ready: /"event":"feed\.listed"/, settleMs: 500 },
};
const INTERACTIVE: Record<string, { quit: string; ready: RegExp; settleMs: number }> = {
  // Ready when the key help (`… q quit`) is on screen.
  dashboard: { quit: 'q', ready: /quit/, settleMs: 500 },
};
/** Commands that start agents: they get a namespace of their own, so they do not join the test cluster. */
const STARTS_AGENTS = new Set(['agent', 'demo']);
/** Exit codes other than 0 that an example documents. */
const EXPECTED_EXIT: Record<string, number> = {
  // A retired id's forget, shown on an instance that still runs here: refused (exit 5), as its description says.
  'proxy-stone-sd services forget proxy-stone-3 --reason "host decommissioned"': 5,
};

function loadManifest(): ManifestCommand[] {
  const file = path.join(ROOT, 'oclif.manifest.json');
  if (!existsSync(file)) ensureBuilt();
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as { commands: Record<string, ManifestCommand> };
  return Object.values(manifest.commands);
}

function render(example: string): string {
  return example.replaceAll('<%= config.bin %>', 'proxy-stone-sd').trim();
}

/** The command an example runs: `services:list` for `FOO=1 proxy-stone-sd services list --json`. */
function commandOf(line: string, ids: readonly string[]): string | undefined {
  const words = line.replace(/^(\w+=\S+\s+)*/, '').split(/\s+/);
  if (words[0] !== 'proxy-stone-sd') return undefined;
  const two = `${words[1]}:${words[2]}`;
  return ids.includes(two) ? two : ids.includes(words[1]!) ? words[1] : undefined;
}

/** `proxy-stone-sd …` lines of the bash blocks in docs/cli.md. */
function docsExamples(): string[] {
  const text = readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8');
  const lines: string[] = [];
  for (const block of text.matchAll(/```bash\n([\s\S]*?)```/g)) {
    for (const raw of block[1]!.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (/^(\w+=\S+\s+)*proxy-stone-sd\s/.test(line)) lines.push(line);
    }
  }
  return lines;
}

const commands = loadManifest();
const ids = commands.map((c) => c.id);
const helpExamples = commands.flatMap((c) => (c.examples ?? []).map((e) => ({ id: c.id, line: render(typeof e === 'string' ? e : e.command) })));
const seen = new Set(helpExamples.map((e) => e.line));
const extraDocsExamples = docsExamples()
  .filter((line) => !seen.has(line))
  .map((line) => ({ id: commandOf(line, ids) ?? '?', line }));

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('help examples', function () {
  this.timeout(40_000);
  let cluster: TestCluster;
  let bin: ReturnType<typeof binOnPath>;
  let agentsNamespace: string;
  /** What the load-balancer examples feed: started only when such examples exist. */
  let haproxy: HaproxyServer | undefined;
  let nginx: NginxServer | undefined;
  let lbDir: string | undefined;
  let contextsDir: string;
  let contextsFile: string;

  before(async function () {
    this.timeout(180_000);
    ensureBuilt();
    cluster = await startCluster(3, { idPrefix: 'proxy-stone' });
    contextsDir = mkdtempSync(path.join(tmpdir(), 'psd-cli-examples-contexts-'));
    contextsFile = path.join(contextsDir, 'contexts.yaml');
    seedContexts();
    bin = binOnPath();
    agentsNamespace = uniqueNamespace('cli-examples-agents');
    const lines = [...helpExamples, ...extraDocsExamples].map((e) => e.line);
    if (lines.some((l) => l.includes('/run/haproxy/admin.sock'))) haproxy = await startHaproxy();
    if (lines.some((l) => l.includes('upstream.conf.hbs'))) {
      lbDir = mkdtempSync(path.join(tmpdir(), 'psd-cli-examples-lb-'));
      writeFileSync(path.join(lbDir, 'upstream.conf.hbs'), loadBalancersDoc().files.get(`${DOCS_DIR}/upstream.conf.hbs`)!);
      const dir = lbDir;
      nginx = await startNginx({
        config: (where) =>
          [
            `pid ${where.dir}/nginx.pid;`,
            'events {}',
            'http {',
            '  access_log off;',
            ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${where.dir}/${t};`),
            `  include ${dir}/proxy-stone-upstream.conf;`,
            `  server { listen 127.0.0.1:${where.port}; location / { proxy_pass http://proxy_stone; } }`,
            '}',
            '',
          ].join('\n'),
        beforeStart: async () => writeFileSync(path.join(dir, 'proxy-stone-upstream.conf'), 'upstream proxy_stone { server 127.0.0.1:1 down; }\n'),
      });
    }
  });
  after(async () => {
    await cluster?.stop();
    await haproxy?.stop();
    await nginx?.stop();
    if (lbDir) rmSync(lbDir, { recursive: true, force: true });
    if (contextsDir) rmSync(contextsDir, { recursive: true, force: true });
    bin?.remove();
  });

  function substitute(line: string): string {
    const upstream = cluster.nodes[0]!.upstream;
    return line
      .replaceAll('http://127.0.0.1:2379', cluster.endpoint)
      .replaceAll('http://127.0.0.1:8790', cluster.nodes[0]!.api.url)
      .replaceAll('http://127.0.0.1:3001', upstream.url)
      .replace(/\bSERVICE_PORT=3001\b/g, `SERVICE_PORT=${upstream.port}`)
      .replace(/--service-port 3001\b/g, `--service-port ${upstream.port}`)
      .replace(/--(api|base)-port 8791\b/g, '--$1-port 0')
      .replaceAll('/run/haproxy/admin.sock', haproxy?.socket ?? '/run/haproxy/admin.sock')
      .replace(/(?<=--template )upstream\.conf\.hbs\b/g, lbDir ? path.join(lbDir, 'upstream.conf.hbs') : 'upstream.conf.hbs')
      .replaceAll('/etc/nginx/conf.d/proxy-stone-upstream.conf', lbDir ? path.join(lbDir, 'proxy-stone-upstream.conf') : '/etc/nginx/conf.d/proxy-stone-upstream.conf')
      .replaceAll('nginx -s reload', nginx?.reloadCommand ?? 'nginx -s reload');
  }

  /**
   * The contexts the examples name, written afresh before each example (one deletes `staging`):
   * `prod` is the test etcd and namespace, `staging` the agent of proxy-stone-1.
   */
  function seedContexts(): void {
    const contexts = {
      current: 'prod',
      contexts: { prod: { endpoints: [cluster.endpoint], namespace: cluster.namespace }, staging: { agent: cluster.nodes[0]!.api.url } },
    };
    writeFileSync(contextsFile, JSON.stringify(contexts));
  }

  function envFor(id: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: bin.path, SERVICE_DISCOVERY_API_KEY: API_KEY, PROXY_STONE_SD_CONTEXTS_FILE: contextsFile };
    if (STARTS_AGENTS.has(id)) return { ...env, SERVICE_DISCOVERY_NAMESPACE: agentsNamespace, SERVICE_DISCOVERY_API_PORT: '0' };
    return { ...env, SERVICE_DISCOVERY_ENDPOINTS: cluster.endpoint, SERVICE_DISCOVERY_NAMESPACE: cluster.namespace };
  }

  /** Keeps events flowing while an `events` example runs: proxy-stone-3 disabled and enabled in turn. */
  function startActivity(): { stop(): Promise<void> } {
    let stopped = false;
    const agent = cluster.nodes[0]!.agent;
    const loop = (async () => {
      let enabled = true;
      while (!stopped) {
        enabled = !enabled;
        await agent.setServiceEnabled('proxy-stone-3', enabled, { reason: 'help examples', actor: 'test' }).catch(() => undefined);
        await delay(300);
      }
      await agent.setServiceEnabled('proxy-stone-3', true, { actor: 'test' }).catch(() => undefined);
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
      },
    };
  }

  /** Runs a command that does not end on its own; `endedEarly` when it stopped before being told to. */
  async function follow(id: string, line: string): Promise<CliResult & { endedEarly: boolean }> {
    const how = FOLLOWS[id]!;
    const activity = id === 'events' ? startActivity() : undefined;
    try {
      const agent = / --agent (\S+)/.exec(line)?.[1];
      const probe = followProbe(agent ? { agent } : { etcd: cluster.endpoint });
      if (how.ready === 'following') await probe.before();
      const run = runShell(line, { env: envFor(id) });
      let exited = false;
      void run.done.then(() => (exited = true));
      const ready = async () =>
        how.ready === undefined || (how.ready === 'following' ? probe.following() : how.ready.test(run.output().stdout + run.output().stderr));
      const readyBy = Date.now() + 20_000;
      while (!exited && !(await ready()) && Date.now() < readyBy) await delay(100);
      await Promise.race([run.done, delay(how.settleMs)]);
      if (exited) return { ...(await run.done), endedEarly: true };
      if (!/--count\b/.test(line)) run.signal('SIGINT');
      return { ...(await settle(run, /--count\b/.test(line) ? 20_000 : 10_000)), endedEarly: false };
    } finally {
      await activity?.stop();
    }
  }

  async function interactive(id: string, line: string): Promise<CliResult> {
    const how = INTERACTIVE[id]!;
    const started = Date.now();
    // `script` gives the command a pseudo-terminal, as a person's shell would.
    const child = spawn('script', ['-qec', `stty cols 160 rows 48 2>/dev/null; ${line}`, '/dev/null'], {
      cwd: ROOT,
      env: cliEnv({ ...envFor(id), SHELL: '/bin/bash', TERM: 'xterm-256color' }),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<number | null>((resolve) => child.on('close', resolve));
    let note = '';
    let exited = false;
    void done.then(() => (exited = true));
    const readyBy = Date.now() + 20_000;
    while (!exited && !how.ready.test(stdout) && Date.now() < readyBy) await delay(100);
    if ((await Promise.race([done, delay(how.settleMs).then(() => 'running' as const)])) === 'running') {
      child.stdin.write(how.quit);
      if ((await Promise.race([done, delay(10_000).then(() => 'stuck' as const)])) === 'stuck') {
        note = `\n(did not quit on "${how.quit}")`;
        process.kill(-child.pid!, 'SIGKILL');
      }
    } else {
      note = '\n(ended before it was asked to quit)';
    }
    const code = await done;
    return { code: note ? null : code, stdout: stdout + note, stderr, ms: Date.now() - started };
  }

  async function check(ctx: Mocha.Context, id: string, line: string): Promise<void> {
    const skip = (why: string) => {
      console.log(`      (skipped: ${why})`);
      ctx.skip();
    };
    if (INTERACTIVE[id] && spawnSync('script', ['--version']).status !== 0) skip('needs `script` (util-linux) for a pseudo-terminal');
    // The demo's default ports cannot be swapped for free ones by the test.
    if (id === 'demo' && !/--base-port/.test(line) && !(await portsFree(8791, 3))) skip('ports 8791-8793, the demo default, are in use on this machine');
    const command = substitute(line);
    seedContexts();
    let res: CliResult;
    let endedEarly = false;
    const follows = FOLLOWS[id] && !/--once\b/.test(line);
    if (follows) ({ endedEarly, ...res } = await follow(id, command));
    else if (INTERACTIVE[id]) res = await interactive(id, command);
    else res = await settle(runShell(command, { env: envFor(id) }), 25_000);
    const shown = `${line}\n→ ${command}\nexit ${res.code} after ${res.ms}ms\nstdout: ${res.stdout.slice(-1500)}\nstderr: ${res.stderr.slice(-1500)}`;
    if (follows && !/--count\b/.test(line)) expect(endedEarly, `ended before Ctrl-C: ${shown}`).to.equal(false);
    expect(res.code, shown).to.equal(EXPECTED_EXIT[line] ?? 0);
    // An example documented to fail says why on stderr, as one Error line.
    if (EXPECTED_EXIT[line] !== undefined) expect(res.stderr.trim().split('\n'), shown).to.have.length(1);
    else if (!STARTS_AGENTS.has(id) && !INTERACTIVE[id]) expect(res.stderr, shown).not.to.match(/Error|Warning/);
  }

  describe('every command documents itself', () => {
    for (const c of commands) {
      it(`${c.id.replaceAll(':', ' ')} has a summary, a description and examples`, () => {
        expect(c.summary, c.id).to.be.a('string').and.not.equal('');
        expect(c.description, c.id).to.be.a('string').and.not.equal('');
        expect(c.examples ?? [], c.id).to.not.be.empty;
      });
    }

    it('docs/cli.md shows every example of the commands it documents', () => {
      const doc = readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8');
      const headings = doc.split('\n').filter((l) => l.startsWith('### '));
      for (const { id, line } of helpExamples) {
        if (!headings.some((h) => h.includes(`\`${id.replaceAll(':', ' ')}`))) continue;
        expect(doc, `docs/cli.md lacks the --help example: ${line}`).to.include(line);
      }
    });
  });

  describe('--help examples run', () => {
    for (const { id, line } of helpExamples) {
      it(line, function () {
        return check(this, id, line);
      });
    }
  });

  describe('docs/cli.md examples run', () => {
    for (const { id, line } of extraDocsExamples) {
      it(line, function () {
        if (id === '?') throw new Error(`docs/cli.md example names no known command: ${line}`);
        return check(this, id, line);
      });
    }
  });

  async function portsFree(first: number, count: number): Promise<boolean> {
    for (let p = first; p < first + count; p++) if (!(await portFree(p))) return false;
    return true;
  }
});

/** Waits for the command to end; kills its process group after `ms`. */
async function settle(run: ShellRun, ms: number): Promise<CliResult> {
  const timer = setTimeout(() => run.signal('SIGKILL'), ms);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
