import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { BIN, ROOT, cliEnv, ensureBuilt, runShell, waitFor, type CliResult } from './fixtures.js';

/** The demo is a newcomer's first contact: the commands it suggests must do what it says they do. */
describe('CLI: the demo and the commands it suggests', function () {
  this.timeout(60_000);
  let demo: ChildProcess | undefined;
  let out = '';

  before(async () => {
    ensureBuilt();
    demo = spawn(process.execPath, [BIN, 'demo', '--base-port', '0'], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the demo ready', () => out.includes('Ctrl-C to stop'), 30_000);
  });

  after(async () => {
    if (!demo || demo.exitCode !== null) return;
    const exited = new Promise((resolve) => demo!.once('exit', resolve));
    demo.kill('SIGINT');
    await exited;
  });

  it('says once, in its own words, that its memory registry is shared by these agents only', () => {
    expect(out).to.match(/^proxy-stone-sd demo: 3 agents on an in-memory registry\n {2}\(only these agents share it: nothing outside this process sees them; --endpoints http:\/\/127\.0\.0\.1:2379 runs them on etcd\)\n/);
    expect(out.match(/in-memory registry|only these agents share it/g)).to.have.length(2);
  });

  /** The lines under "Try:", as printed. */
  const tries = () => out.slice(out.indexOf('\nTry:\n') + 6, out.indexOf('\n\nCtrl-C')).split('\n').map((l) => l.replace(/^ {2}/, ''));

  it('prints commands that run from where it was started: ./bin/run.js in a clone, where proxy-stone-sd is not on PATH', () => {
    const cli = tries().filter((t) => !t.startsWith('curl '));
    expect(cli.length).to.equal(4);
    for (const t of cli) expect(t).to.match(/^\.\/bin\/run\.js /);
    expect(out).to.not.match(/^ {2}proxy-stone-sd /m);
  });

  it('every suggested command does what it says, run as printed by a shell from the repository root, in order', async function () {
    this.timeout(90_000);
    const lines = tries();
    expect(lines.map((l) => l.replace(/http:\/\/127\.0\.0\.1:\d+/g, 'URL').replace(/ {3}#.*/, ''))).to.deep.equal([
      'curl URL/service-discovery/services',
      'curl URL/service-discovery/topology',
      'curl -N URL/service-discovery/events',
      './bin/run.js topology --agent URL',
      './bin/run.js services disable proxy-stone-1 --reason "try it" --agent URL',
      './bin/run.js services enable proxy-stone-1 --agent URL',
      './bin/run.js services disable proxy-stone-3 --agent URL',
      'curl -X POST URL/admin/flap',
    ]);
    const results: CliResult[] = [];
    for (const line of lines) {
      if (line.startsWith('curl -N ')) {
        // The live stream runs until Ctrl-C: wait for its first bytes, then press it.
        const stream = runShell(line, { cwd: ROOT });
        await waitFor('the event stream answering', () => stream.output().stdout.length > 0, 10_000);
        stream.signal('SIGINT');
        await stream.done;
        continue;
      }
      results.push(await runShell(line, { cwd: ROOT }).done);
    }
    const [services, topology, tree, disabled, enabled, refused, flap] = results;
    for (const r of [services, topology, tree, disabled, enabled, flap]) expect(r!.code, r!.stderr).to.equal(0);
    expect(JSON.parse(services!.stdout)).to.include({ total: 3 });
    expect(tree!.stdout).to.match(/^Cluster: 3 services/);
    expect(disabled!.stdout).to.match(/^proxy-stone-1 disabled \(draining until /);
    expect(enabled!.stdout).to.match(/^proxy-stone-1 enabled/);
    expect(lines[6]).to.match(/# refused: the last of its zone$/);
    expect(refused!.code, refused!.stderr).to.equal(5);
    expect(refused!.stderr).to.include('refusing to disable proxy-stone-3: zone us-west-2a of region us-west-2 would have 0 healthy enabled instances (minimum 1)');
    expect(JSON.parse(flap!.stdout)).to.deep.include({ mode: 'flapping' });
  });
});
