import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../cli/fixtures.js';

/**
 * The guides are executable documentation: every ```sh block of docs/getting-started.md, with those
 * of docs/load-balancers.md after its step 7 (that page continues the guide from there), runs as
 * written, in order, in one bash with `set -e`, from a fresh copy of the repository (npm ci and the
 * build included). A block marked ```sh norun (installing packages) is skipped.
 *
 * The guides use fixed ports (etcd on 2379, agents on 8791-8793, Prometheus on 9090, ...) and
 * /tmp/sd-getting-started, as a reader's machine would. So that they are free here, on a machine
 * shared with other test runs and perhaps a system etcd, bash runs in its own network namespace
 * (only its own loopback: nothing leaves it, nothing else is on its ports) and its own /tmp
 * (`unshare`, util-linux). Whatever the guides leave running is found by that namespace and killed,
 * and the test says what it was: the guides must stop everything they start.
 */

const GUIDE = 'docs/getting-started.md';
const LB_GUIDE = 'docs/load-balancers.md';
/** npm ci, the build, Prometheus's first scrapes, the events window and the lease expiry of the guide. */
const BUDGET_MS = 8 * 60_000;

interface Block {
  where: string;
  code: string;
}

/** The ```sh blocks of a page, with the line each starts on; `sh norun` ones left out. */
export function shBlocks(file: string): Block[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const blocks: Block[] = [];
  for (const m of text.matchAll(/^```sh( norun)?\n([\s\S]*?)^```$/gm)) {
    if (m[1]) continue;
    blocks.push({ where: `${file}:${text.slice(0, m.index).split('\n').length}`, code: m[2]! });
  }
  return blocks;
}

/** The guide's order: getting-started up to its step 8, the load-balancer page, then the rest. */
function guideScript(): { blocks: Block[]; script: string } {
  const text = readFileSync(path.join(ROOT, GUIDE), 'utf8');
  const step8 = text.split('\n').findIndex((l) => l.startsWith('## 8. '));
  expect(step8, `${GUIDE} has a step 8`).to.be.greaterThan(0);
  const line = (b: Block) => Number(b.where.split(':')[1]);
  const guide = shBlocks(GUIDE);
  const blocks = [...guide.filter((b) => line(b) < step8), ...shBlocks(LB_GUIDE), ...guide.filter((b) => line(b) > step8)];
  const script = ['set -e', ...blocks.flatMap((b) => [`echo "::block ${b.where} at $(date +%s)"`, b.code])].join('\n');
  return { blocks, script };
}

/** Tracked and new files of the working tree, as a fresh clone of it would hold them (nothing ignored: no node_modules, no dist). */
function copyRepository(to: string): void {
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  expect(listed.status, listed.stderr).to.equal(0);
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    const from = path.join(ROOT, file);
    if (!existsSync(from)) continue; // deleted, not yet committed
    mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    cpSync(from, path.join(to, file), { preserveTimestamps: true });
  }
}

/** The processes in the network namespace `ns` (`net:[4026…]`), with their command lines. */
function processesIn(ns: string): { pid: number; cmd: string }[] {
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) !== ns) continue;
      found.push({ pid: Number(entry), cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

describe('docs: the guides run as written (getting-started, then load-balancers)', function () {
  this.timeout(BUDGET_MS + 60_000);
  let work: string | undefined;

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('extracts the blocks in the guide\'s order, skipping only the install block', () => {
    const { blocks } = guideScript();
    const all = readFileSync(path.join(ROOT, GUIDE), 'utf8') + readFileSync(path.join(ROOT, LB_GUIDE), 'utf8');
    expect(blocks.length).to.equal((all.match(/^```sh$/gm) ?? []).length);
    expect((all.match(/^```sh norun$/gm) ?? []).length).to.equal(1);
    expect(blocks[0]!.code).to.match(/^npm ci\n/);
    expect(blocks.at(-1)!.code).to.match(/rm -rf \/tmp\/sd-getting-started/);
  });

  it('every sh block succeeds, in order, from a fresh copy, in a private network and /tmp; nothing is left running', async () => {
    // Outside /tmp: the namespace gets a /tmp of its own.
    work = mkdtempSync(path.join('/var/tmp', 'sd-guides-'));
    const repo = path.join(work, 'proxy-stone-sd');
    copyRepository(repo);
    const { script } = guideScript();
    writeFileSync(path.join(work, 'guide.sh'), script);
    const env = {
      PATH: [path.dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':'),
      HOME: process.env.HOME ?? '/root',
      LANG: 'C.UTF-8',
      NO_COLOR: '1',
      // No network in the namespace: npm ci installs from the cache the repository's own npm ci filled.
      npm_config_offline: 'true',
      npm_config_update_notifier: 'false',
    };
    // Root enters the namespaces directly. Anyone else first becomes root of a user namespace (to
    // set up the network and /tmp), then maps back to their own uid, so that the guides run as that
    // user (as root, nginx would hand its temp dirs to an unmapped `nobody`).
    const uid = process.getuid!();
    const setup = 'ip link set lo up && mount -t tmpfs tmpfs /tmp && exec';
    const args =
      uid === 0
        ? ['--net', '--mount', 'bash', '-c', `${setup} bash "$0"`, path.join(work, 'guide.sh')]
        : ['--map-root-user', '--net', '--mount', 'bash', '-c', `${setup} unshare --map-user=${uid} --map-group=${process.getgid!()} bash "$0"`, path.join(work, 'guide.sh')];
    const child = spawn('unshare', args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // 'exit', not 'close': what the guides leave running holds the pipes open.
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const ours = readlinkSync('/proc/self/ns/net');
    let ns: string | undefined;
    for (let i = 0; i < 100 && ns === undefined && child.exitCode === null; i++) {
      try {
        const seen = readlinkSync(`/proc/${child.pid}/ns/net`);
        if (seen !== ours) ns = seen;
      } catch {
        // Not started yet.
      }
      if (ns === undefined) await sleep(50);
    }
    const lastBlock = () => [...stdout.matchAll(/^::block (.*) at \d+$/gm)].at(-1)?.[1] ?? '(none)';
    const report = () => `last block started: ${lastBlock()}\n--- stdout (end)\n${stdout.slice(-6000)}\n--- stderr (end)\n${stderr.slice(-6000)}`;
    let leftovers: { pid: number; cmd: string }[] = [];
    try {
      expect(ns, `unshare did not start a network namespace (is util-linux's unshare allowed here?)\n${stderr}`).to.be.a('string');
      const timer = setTimeout(() => {
        stderr += `\n(the guide did not finish within ${BUDGET_MS / 1000} s)`;
        for (const p of processesIn(ns!)) kill(p.pid);
      }, BUDGET_MS);
      const code = await exited.finally(() => clearTimeout(timer));
      expect(code, `the guide failed (exit ${code})\n${report()}`).to.equal(0);
      // nginx -s quit and SIGTERM take a moment; whatever is still there after that was left running.
      for (let i = 0; i < 50 && processesIn(ns!).length > 0; i++) await sleep(200);
      leftovers = processesIn(ns!);
    } finally {
      if (ns) for (const p of processesIn(ns)) kill(p.pid);
    }
    expect(leftovers.map((p) => p.cmd), 'processes the guides started and did not stop').to.deep.equal([]);

    // What each step says it shows.
    const out = stdout;
    expect(out, report()).to.match(/^proxy-stone-sd\/\d+\.\d+\.\d+ linux-/m);
    expect(stderr).to.match(/^http:\/\/127\.0\.0\.1:2379 is healthy/m); // etcdctl says it on stderr
    expect(out).to.match(/^Cluster: 3 services, 3 healthy, 0 not taking traffic, 0 disabled; leader proxy-stone-\d ★$/m);
    expect(out).to.match(/^│  └─ us-east-1a \(2, 2 healthy\)$/m);
    expect(out).to.match(/"event":"registered","serviceId":"proxy-stone-3"/);
    expect(out).to.match(/"value":\[[\d.]+,"1"\]/); // sum(proxy_stone_is_leader)
    // load-balancers.md: HAProxy and nginx answered from the instances, and Prometheus found all three.
    expect(out).to.match(/^proxy-stone-2 disabled \(draining until|^proxy-stone-2 disabled$/m);
    expect(out).to.match(/^proxy-stone-1 us-east-1a http:\/\/127\.0\.0\.1:8791\/metrics up$/m);
    expect(out).to.match(/^proxy-stone-3 us-west-2a http:\/\/127\.0\.0\.1:8793\/metrics up$/m);
    // Step 8: the events, the disable that goes through, the one the guard refuses, the enable.
    expect(out).to.match(/serviceHealthChanged\s+proxy-stone-2\s+healthy → unhealthy/);
    expect(out).to.match(/serviceHealthChanged\s+proxy-stone-2\s+unhealthy → healthy/);
    expect(stderr).to.include('refusing to disable proxy-stone-3: zone us-west-2a of region us-west-2 would have 0 healthy enabled instances (minimum 1)');
    expect(out).to.match(/^exit 5$/m);
    expect(out).to.match(/^proxy-stone-2 enabled$/m);
    expect(out).to.match(/^leader: proxy-stone-\d$/m);
  });
});
