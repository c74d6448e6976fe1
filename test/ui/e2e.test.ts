/**
 * The real command on a real pseudo-terminal: `node bin/run.js dashboard --endpoints …` inside tmux
 * (160x45), against the shared etcd and three in-process agents. Reads the screen with capture-pane
 * and types with send-keys, as an operator would.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { RegistryClient } from '../../src/cli/registry-client.js';
import { cliActor } from '../../src/cli/service-toggle.js';
import { startUiCluster, waitFor, type UiCluster } from './cluster.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/run.js');
const SOCKET = `sd-ui-e2e-${process.pid}`;
const SESSION = 'dash';
const EXIT_MARK = '__DASHBOARD_EXIT__=';

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function screen(): string {
  return tmux('capture-pane', '-p', '-t', SESSION);
}

/** Waits until the screen satisfies `check`, returning it; the error shows the last screen. */
async function waitForScreen(what: string, check: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  let last = '';
  try {
    await waitFor(what, () => check((last = screen())), timeoutMs, 20);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- screen ---\n${last}`);
  }
  return last;
}

/** The table line of a service (the first line naming it that has its place). */
function row(text: string, id: string): string {
  return text.split('\n').find((l) => l.includes(` ${id} `) && /\d\/[a-z]/.test(l) && l.startsWith('│')) ?? '';
}

/** The dashboard's own process: the node child of the shell tmux runs in the pane. */
function dashboardPid(): number {
  const shell = Number(tmux('display-message', '-p', '-t', SESSION, '#{pane_pid}').trim());
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …"; comm may hold spaces, so read after its closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    // By its executable, not its name: Node 24 names its main thread (comm) "MainThread".
    if (ppid === shell && exeOf(entry) === realpathSync(process.execPath)) return Number(entry);
  }
  throw new Error(`no node process under the pane's shell ${shell}`);
}

function exeOf(pid: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Established TCP connections of process `pid` to loopback port `port`, from /proc (Linux). */
function connectionsTo(pid: number, port: number): number {
  const sockets = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) sockets.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  let count = 0;
  for (const table of ['tcp', 'tcp6']) {
    const lines = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      // sl local_address rem_address st … inode: state 01 is ESTABLISHED, ports are hex.
      const f = line.trim().split(/\s+/);
      if (f[3] === '01' && parseInt(f[2]!.split(':')[1]!, 16) === port && sockets.has(f[9]!)) count += 1;
    }
  }
  return count;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

describe('dashboard end to end (tmux, real etcd, three agents)', function () {
  this.timeout(90_000);
  let cluster: UiCluster;
  let registry: RegistryClient;

  before(async function () {
    this.timeout(180_000);
    if (spawnSync('tmux', ['-V']).status !== 0) throw new Error('these tests need tmux (apt-get install tmux)');
    if (!existsSync(path.join(ROOT, 'dist/commands/dashboard.js'))) {
      const res = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`npm run build failed:\n${res.stdout}\n${res.stderr}`);
    }
    cluster = await startUiCluster(3);
    registry = new RegistryClient({ kind: 'registry', endpoints: [cluster.endpoint], namespace: cluster.namespace, timeoutMs: 2000 });
  });
  after(async () => {
    await registry?.close();
    await cluster?.stop();
  });
  afterEach(() => {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    // tmux leaves the socket file of a killed server behind.
    rmSync(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  });

  it('shows the cluster live, disables a service with d, and quits with q leaving the terminal clean', async () => {
    const command = [
      // No CI flags (ink would print only the last frame) and nothing naming another cluster.
      // One instance per zone: the capacity guard (tested in test/ui/drain.test.ts) is off here.
      'env -u CI -u CONTINUOUS_INTEGRATION -u PROXY_STONE_SD_AGENT -u SERVICE_DISCOVERY_ENDPOINTS SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE=0',
      shellQuote(process.execPath),
      shellQuote(BIN),
      'dashboard --endpoints',
      shellQuote(cluster.endpoint),
      '--namespace',
      shellQuote(cluster.namespace),
      `; echo ${EXIT_MARK}$?; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-*icanon'; sleep 60`,
    ].join(' ');
    tmux('new-session', '-d', '-x', '160', '-y', '45', '-s', SESSION, '-c', ROOT, command);

    // All three rows, the leader marked.
    const leader = cluster.nodes.find((n) => n.agent.isLeader())!.id;
    let text = await waitForScreen('three rows and a live link', (t) => ['ui-node-1', 'ui-node-2', 'ui-node-3'].every((id) => row(t, id)) && t.includes('● live'), 20_000);
    expect(row(text, leader)).to.match(new RegExp(`★ ${leader} .* leader ★ `));
    for (const n of cluster.nodes.filter((x) => x.id !== leader)) expect(row(text, n.id)).to.not.include('★');
    expect(text).to.match(/3 services │ health: 3 healthy {2}0 unhealthy │ admin: 0 disabled │ 3 taking traffic/);
    // The topology pane is drawn below the table (see the event log below).
    await waitForScreen('the leader in the topology pane', (t) => t.includes(`leader ${leader} ★`), 2000);

    // An upstream goes down: its row turns unhealthy within a second of the registry saying so.
    const victim = cluster.nodes.find((n) => n.id !== leader)!;
    const watcher = cluster.nodes.find((n) => n.id !== victim.id)!;
    const seen = new Promise<number>((resolve) => {
      const onEvent = (e: { type: string; serviceId?: string; status?: string }) => {
        if (e.type === 'serviceHealthChanged' && e.serviceId === victim.id && e.status === 'unhealthy') {
          watcher.agent.off('event', onEvent);
          resolve(Date.now());
        }
      };
      watcher.agent.on('event', onEvent);
    });
    victim.upstream.setMode('down');
    text = await waitForScreen(`${victim.id} unhealthy on screen`, (t) => /\bunhealthy\b/.test(row(t, victim.id)), 10_000);
    const onScreen = Date.now();
    const inRegistry = await seen;
    expect(onScreen - inRegistry, 'ms from the registry change to the screen').to.be.below(1000);
    if (process.env.DASHBOARD_E2E_VERBOSE) console.log(`      registry change → screen: ${onScreen - inRegistry} ms`);
    expect(text).to.match(/2 healthy {2}1 unhealthy/);
    // The event log is drawn below the table: a capture taken while tmux was still applying ink's
    // frame can show the new row above the old log (a CI run under load did), so wait for the line.
    await waitForScreen('the health change in the event log', (t) => new RegExp(`serviceHealthChanged +${victim.id} +healthy → unhealthy`).test(t), 2000);

    // Select it (rows are in id order), d, a reason, Enter, y.
    const ids = cluster.nodes.map((n) => n.id).sort();
    const current = ids.findIndex((id) => row(screen(), id).startsWith('│ ›'));
    const steps = ids.indexOf(victim.id) - current;
    for (let i = 0; i < Math.abs(steps); i++) tmux('send-keys', '-t', SESSION, steps > 0 ? 'j' : 'k');
    await waitForScreen(`${victim.id} selected`, (t) => row(t, victim.id).startsWith('│ ›'));
    tmux('send-keys', '-t', SESSION, 'd');
    await waitForScreen('the reason prompt', (t) => t.includes(`Disable ${victim.id} — reason:`));
    tmux('send-keys', '-t', SESSION, '-l', 'e2e maintenance');
    tmux('send-keys', '-t', SESSION, 'Enter');
    await waitForScreen('the confirmation', (t) => t.includes(`Disable ${victim.id} (reason: e2e maintenance)? y/N`));
    tmux('send-keys', '-t', SESSION, 'y');
    // A registered instance drains first (30 s by default): `drn 30s`, counting down, then `no`.
    text = await waitForScreen('the row disabled', (t) => / (no|drn \d+s) +/.test(row(t, victim.id).replace(/^.*(follower|leader ★)/, '')) && t.includes(`${victim.id} disabled (reason: e2e maintenance)`));
    expect(text).to.match(/│ admin: 1 disabled/);
    // The drain is the operator's: counted as draining although the instance's health says unhealthy.
    if (/drn \d+s/.test(row(text, victim.id))) expect(text).to.match(/│ admin: 1 disabled \(1 draining\)/);

    // The detail reads the record, the intent and the audit trail from etcd.
    tmux('send-keys', '-t', SESSION, 'Enter');
    await waitForScreen('the detail with the audit trail', (t) => /Audit \(newest first\)/.test(t) && t.includes('e2e maintenance'));
    tmux('send-keys', '-t', SESSION, 'Escape');
    await waitForScreen('the table again', (t) => row(t, victim.id).startsWith('│ ›'));
    // Watch, first listing, detail reads and the disable: one connection to etcd, as an agent holds.
    expect(connectionsTo(dashboardPid(), Number(new URL(cluster.endpoint).port))).to.equal(1);

    // The registry holds the intent, and every agent sees the service disabled.
    const intent = await registry.getIntent(victim.id);
    expect(intent).to.deep.include({ enabled: false, reason: 'e2e maintenance', actor: cliActor() });
    await waitFor('every agent sees it disabled', () => cluster.nodes.every((n) => n.agent.view.service(victim.id)?.enabled === false), 5000);

    // q: exit 0, the screen given back, the terminal out of raw mode.
    tmux('send-keys', '-t', SESSION, 'q');
    text = await waitForScreen('the exit code and the terminal mode', (t) => t.includes(EXIT_MARK) && /icanon/.test(t), 10_000);
    expect(text).to.include(`${EXIT_MARK}0`);
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    expect(lines, text).to.deep.equal([`${EXIT_MARK}0`, 'icanon']);
  });

  it('refuses to run without a terminal, pointing at services list and events --json (exit 2)', async () => {
    const res = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'dashboard', '--endpoints', cluster.endpoint], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    expect(res.code).to.equal(2);
    expect(res.stdout).to.equal('');
    expect(res.stderr.trim()).to.match(/^Error: the dashboard needs a terminal \(stdout is not one\); for scripts use `proxy-stone-sd services list --json` or `proxy-stone-sd events --json`$/);
  });
});
