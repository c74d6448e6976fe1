import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { BIN, ROOT, cliEnv, ensureBuilt, runCli, waitFor } from './fixtures.js';

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

  it('suggests a disable that goes through, an enable, and a disable the capacity guard refuses', async () => {
    const suggested = [...out.matchAll(/^ {2}proxy-stone-sd (services .*?)(?: {3}# (.*))?$/gm)].map((m) => ({ args: m[1]!, says: m[2] }));
    expect(suggested.map((s) => s.args.split(' ').slice(0, 3).join(' '))).to.deep.equal([
      'services disable proxy-stone-1',
      'services enable proxy-stone-1',
      'services disable proxy-stone-3',
    ]);
    const run = (args: string) => runCli(args.match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, '')));
    const disabled = await run(suggested[0]!.args);
    expect(disabled.code, disabled.stderr).to.equal(0);
    expect(disabled.stdout).to.match(/^proxy-stone-1 disabled \(draining until /);
    const enabled = await run(suggested[1]!.args);
    expect(enabled.code, enabled.stderr).to.equal(0);
    expect(enabled.stdout).to.match(/^proxy-stone-1 enabled/);
    expect(suggested[2]!.says).to.equal('refused: the last of its zone');
    const refused = await run(suggested[2]!.args);
    expect(refused.code, refused.stderr).to.equal(5);
    expect(refused.stderr).to.include('refusing to disable proxy-stone-3: zone us-west-2a of region us-west-2 would have 0 healthy enabled instances (minimum 1)');
  });
});
