import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { startAgentCluster, waitFor, type AgentCluster, type Upstream } from '../helpers/agent-cluster.js';
import { freePorts, uniqueNamespace } from '../helpers/etcd.js';
import { startHaproxy, type HaproxyServer } from '../helpers/haproxy.js';
import { startNginx, type NginxServer } from '../helpers/nginx.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { API_KEY, binOnPath, ensureBuilt, ROOT, runShell, type ShellRun } from '../cli/fixtures.js';
import { DOCS_DIR, docsCommand, foreground, loadBalancersDoc, localDocsCommand } from './fixtures.js';

/**
 * docs/load-balancers.md, followed as written: its haproxy.cfg, nginx.conf and template, its
 * commands, in front of three stand-in instances (docker/standin/server.mjs, what getting-started
 * runs) with their agents on etcd. Only paths and ports are swapped for free ones.
 */

type StandIn = Upstream & { proc: ChildProcess };

async function startStandIn(): Promise<StandIn> {
  const [port] = await freePorts(1);
  const proc = spawn(process.execPath, [path.join(ROOT, 'docker/standin/server.mjs')], { env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' }, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await waitFor(`stand-in on ${port}`, async () => (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok === true, 10_000, 50);
  return {
    port: port!,
    proc,
    close: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Which stand-in answered each of `count` requests (its port), by port. A GET whose reused keep-alive
 * connection was reset is sent once more, as browsers and most HTTP clients do: an nginx reload closes
 * idle client connections, and one may be picked for a request at that very moment (the page says so).
 */
async function answers(url: string, count: number): Promise<Record<number, number>> {
  const seen: Record<number, number> = {};
  const get = () => fetch(url, { signal: AbortSignal.timeout(5000) });
  for (let i = 0; i < count; i++) {
    const res = await get().catch((err: unknown) => {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
      if (cause && /ECONNRESET|other side closed|socket hang up/i.test(`${(cause as NodeJS.ErrnoException).code ?? ''} ${cause.message}`)) return get();
      throw err;
    });
    expect(res.status, `answer ${i} from ${url}`).to.equal(200);
    const { port } = (await res.json()) as { port: number };
    seen[port] = (seen[port] ?? 0) + 1;
  }
  return seen;
}

/** The last JSON log line of a command's stdout with this event, if any. */
function logged(run: ShellRun, event: string, match: (r: Record<string, unknown>) => boolean = () => true): Record<string, unknown> | undefined {
  const records = run
    .output()
    .stdout.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return records.filter((r) => r.event === event && match(r)).at(-1);
}

describe('docs/load-balancers.md works as written', function () {
  this.timeout(90_000);
  const doc = loadBalancersDoc();
  let cluster: AgentCluster<StandIn>;
  let bin: ReturnType<typeof binOnPath>;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const running: ShellRun[] = [];

  before(async function () {
    this.timeout(120_000);
    ensureBuilt();
    cluster = await startAgentCluster(3, {
      idPrefix: 'proxy-stone',
      upstream: startStandIn,
      apiKey: API_KEY,
      namespaceTag: 'lb-docs',
      namespace: uniqueNamespace('lb-docs'),
      healthCheck: { interval: 0.5, retries: 2 },
      version: '1.0.0',
    });
    bin = binOnPath();
    dir = mkdtempSync(path.join(tmpdir(), 'psd-lb-docs-'));
    // The docs use the default namespace; the test cluster has its own.
    env = { PATH: bin.path, SERVICE_DISCOVERY_NAMESPACE: cluster.namespace };
  });

  after(async () => {
    for (const r of running) r.signal('SIGKILL');
    await cluster?.stop();
    bin?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const port = (id: string) => cluster.nodes.find((n) => n.id === id)!.upstream.port;

  /** When an agent's view first sees `id` disabled (epoch ms): the registry change, as the fleet sees it. */
  function disabledSeen(id: string): Promise<number> {
    return new Promise((resolve) => {
      const view = cluster.nodes[0]!.agent.view;
      const on = (e: { type: string; serviceId?: string; timestamp: number }) => {
        if (e.type !== 'serviceDisabled' || e.serviceId !== id) return;
        view.off('event', on);
        resolve(Date.now());
      };
      view.on('event', on);
    });
  }

  /** A docs command line with this run's paths, ports and etcd; `npx proxy-stone-sd` and `./bin/run.js` are the built CLI on PATH. */
  const localise = (line: string, swaps: [string, string][] = []): string => localDocsCommand(line, { endpoint: cluster.endpoint, dir, swaps });

  /** Runs a command of the docs to its end; it must exit 0. */
  async function run(line: string): Promise<string> {
    const r = runShell(line, { env });
    const res = await r.done;
    expect(res.code, `${line}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`).to.equal(0);
    return res.stdout;
  }

  /** Starts a command the docs run in the background (`… > log &`), keeping its output here instead. */
  function background(line: string): ShellRun {
    const r = runShell(foreground(line), { env });
    running.push(r);
    return r;
  }

  describe('HAProxy', () => {
    let haproxy: HaproxyServer;
    let lb: ShellRun;
    const swaps = (): [string, string][] => [
      [`${DOCS_DIR}/haproxy.sock`, haproxy.socket],
      ['127.0.0.1:8080', `127.0.0.1:${haproxy.port}`],
    ];

    after(async () => {
      lb?.signal('SIGINT');
      await lb?.done;
      await haproxy?.stop();
    });

    it('haproxy.cfg is valid, and lb haproxy puts the three instances behind it', async () => {
      const cfg = doc.files.get(`${DOCS_DIR}/haproxy.cfg`)!;
      expect(cfg).to.include('retry-on all-retryable-errors').and.include('option redispatch').and.include('option httpchk GET /health').and.include('http-request disable-l7-retry if !METH_GET');
      haproxy = await startHaproxy({ config: (where) => cfg.replaceAll(`${DOCS_DIR}/haproxy.sock`, where.socket).replaceAll('127.0.0.1:8080', `127.0.0.1:${where.port}`) });
      writeFileSync(path.join(dir, 'haproxy.cfg'), readFileSync(path.join(haproxy.dir, 'haproxy.cfg')));
      await run(localise(docsCommand(doc.commands, 'haproxy -c -f'), swaps()));
      lb = background(localise(docsCommand(doc.commands, './bin/run.js lb haproxy'), swaps()));
      await waitFor('haproxy.synced in the log', () => logged(lb, 'haproxy.synced') !== undefined, 20_000, 50);
      const seen = await answers(`${haproxy.url}/`, 6);
      expect(Object.keys(seen).map(Number).sort()).to.deep.equal(['proxy-stone-1', 'proxy-stone-2', 'proxy-stone-3'].map(port).sort());
      expect(logged(lb, 'haproxy.server.added', (r) => r.server === 'psd-proxy-stone-1')).to.include({ to: 'ready', reason: 'healthy' });
    });

    it('disabling one takes it out of traffic at once; enabling brings it back', async () => {
      const disable = docsCommand(doc.commands, 'npx proxy-stone-sd services disable proxy-stone-2');
      const seen$ = disabledSeen('proxy-stone-2');
      await run(localise(disable));
      const done = Date.now();
      // At once: by the time the disable command has exited, or very soon after.
      await waitFor('psd-proxy-stone-2 in maint', () => logged(lb, 'haproxy.server.state', (r) => r.server === 'psd-proxy-stone-2' && r.to === 'maint') !== undefined, 2000, 5);
      const change = logged(lb, 'haproxy.server.state', (r) => r.server === 'psd-proxy-stone-2')!;
      console.log(`      HAProxy changed ${(change.time as number) - (await seen$)} ms after an agent saw the disable, ${(change.time as number) - done} ms after the command exited`);
      expect(change.reason).to.equal('disabled (try the feed)');
      const seen = await answers(`${haproxy.url}/`, 12);
      expect(seen).to.not.have.property(String(port('proxy-stone-2')));
      expect(Object.keys(seen)).to.have.length(2);
      await run(localise(docsCommand(doc.commands, 'npx proxy-stone-sd services enable proxy-stone-2')));
      await waitFor('psd-proxy-stone-2 ready', () => logged(lb, 'haproxy.server.state', (r) => r.server === 'psd-proxy-stone-2' && r.to === 'ready') !== undefined, 5000, 5);
      expect(Object.keys(await answers(`${haproxy.url}/`, 6))).to.have.length(3);
    });

    it('lb haproxy stops on Ctrl-C with exit 0', async () => {
      lb.signal('SIGINT');
      const res = await lb.done;
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stderr).to.equal('');
      const events = res.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { event: string }).event);
      expect(events[0]).to.equal('lb.started');
      expect(events.at(-1)).to.equal('signal');
    });
  });

  describe('nginx', () => {
    let nginx: NginxServer;
    let render: ShellRun;
    const swaps = (): [string, string][] => [
      [`${DOCS_DIR}/nginx`, nginx.dir],
      ['127.0.0.1:8081', `127.0.0.1:${nginx.port}`],
    ];

    after(async () => {
      render?.signal('SIGINT');
      await render?.done;
      await nginx?.stop();
    });

    it('render --once writes the upstream nginx starts with, as the docs show it', async () => {
      writeFileSync(path.join(dir, 'upstream.conf.hbs'), doc.files.get(`${DOCS_DIR}/upstream.conf.hbs`)!);
      const conf = doc.files.get(`${DOCS_DIR}/nginx/nginx.conf`)!;
      expect(conf).to.include('proxy_next_upstream error timeout');
      nginx = await startNginx({
        config: (where) => conf.replaceAll(`${DOCS_DIR}/nginx`, where.dir).replaceAll('127.0.0.1:8081', `127.0.0.1:${where.port}`),
        beforeStart: async (where) => {
          const once = docsCommand(doc.commands, 'npx proxy-stone-sd render', '--once');
          await run(localise(once, [[`${DOCS_DIR}/nginx`, where.dir]]));
        },
      });
      // What the docs show for `cat upstream.conf`, with this run's ports.
      const shown = /```nginx\n([\s\S]*?)```/.exec(readFileSync(path.join(ROOT, 'docs/load-balancers.md'), 'utf8'))![1]!;
      let written = readFileSync(path.join(nginx.dir, 'upstream.conf'), 'utf8');
      for (const [i, id] of ['proxy-stone-1', 'proxy-stone-2', 'proxy-stone-3'].entries()) written = written.replaceAll(`127.0.0.1:${port(id)}`, `127.0.0.1:300${i + 1}`);
      expect(written).to.equal(shown);
      // The docs start nginx as a daemon with these flags; the helper runs the same in the foreground.
      expect(doc.commands).to.include(`nginx -p ${DOCS_DIR}/nginx -c nginx.conf -e error.log`);
      const seen = await answers(`${nginx.url}/`, 6);
      expect(Object.keys(seen)).to.have.length(3);
    });

    it('render --exec reloads nginx after each change: a disabled instance gets no new request', async () => {
      render = background(localise(docsCommand(doc.commands, './bin/run.js render', '--exec'), swaps()));
      await waitFor('feed.listed in the render log', () => logged(render, 'feed.listed') !== undefined, 20_000, 50);
      const seen$ = disabledSeen('proxy-stone-3');
      await run(localise(docsCommand(doc.commands, 'npx proxy-stone-sd services disable proxy-stone-3')));
      await waitFor('nginx reloaded', () => logged(render, 'render.exec') !== undefined, 5000, 10);
      const reloaded = logged(render, 'render.exec')!;
      console.log(`      upstream written and nginx reloaded ${(reloaded.time as number) - (await seen$)} ms after an agent saw the disable (debounce 200 ms, reload ${reloaded.ms} ms)`);
      // The reload is graceful: new workers take new requests from the moment they run.
      await waitFor('requests no longer reaching proxy-stone-3', async () => !(String(port('proxy-stone-3')) in (await answers(`${nginx.url}/`, 3))), 5000, 20);
      const seen = await answers(`${nginx.url}/`, 12);
      expect(Object.keys(seen).map(Number).sort()).to.deep.equal([port('proxy-stone-1'), port('proxy-stone-2')].sort());
      expect(readFileSync(path.join(nginx.dir, 'upstream.conf'), 'utf8')).to.not.include(`:${port('proxy-stone-3')} `);
      await run(localise(docsCommand(doc.commands, 'npx proxy-stone-sd services enable proxy-stone-3')));
      await waitFor('proxy-stone-3 back', async () => String(port('proxy-stone-3')) in (await answers(`${nginx.url}/`, 6)), 10_000, 50);
      expect(await nginx.errorLog()).to.not.match(/\[(emerg|crit)\]/);
    });

    it('render stops on Ctrl-C with exit 0', async () => {
      render.signal('SIGINT');
      const res = await render.done;
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stderr).to.equal('');
    });
  });

  it('covers the three feeds the issue asks for: HAProxy, nginx and Prometheus service discovery', () => {
    const text = readFileSync(path.join(ROOT, 'docs/load-balancers.md'), 'utf8');
    for (const heading of ['## HAProxy', '## nginx', '## Prometheus service discovery']) expect(text).to.include(`\n${heading}\n`);
  });
});
