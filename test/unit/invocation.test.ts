import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { invokedAs, shellQuote } from '../../src/cli/invocation.js';

/** Real files in a temp dir: a clone with bin/run.js, a project with node_modules/.bin, a bin dir on PATH. */
describe('invokedAs: the command that runs this program as printed', () => {
  let root: string;
  let clone: string;
  let script: string;
  const bin = 'proxy-stone-sd';

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'sd-invocation-'));
    clone = path.join(root, 'clone');
    mkdirSync(path.join(clone, 'bin'), { recursive: true });
    script = path.join(clone, 'bin', 'run.js');
    writeFileSync(script, '#!/usr/bin/env node\n');
    chmodSync(script, 0o755);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('from a clone, where the bin name is on no PATH: ./bin/run.js', () => {
    expect(invokedAs({ script, cwd: clone, pathEnv: '/usr/bin:/bin', bin })).to.equal('./bin/run.js');
    // node bin/run.js, as npm run demo does: the same script.
    expect(invokedAs({ script: 'bin/run.js', cwd: clone, pathEnv: '', bin })).to.equal('./bin/run.js');
  });

  it('from elsewhere: the absolute path, quoted when a shell would split it', () => {
    expect(invokedAs({ script, cwd: root, pathEnv: '', bin })).to.equal('./clone/bin/run.js');
    expect(invokedAs({ script, cwd: '/', pathEnv: '', bin })).to.equal(script);
    mkdirSync(path.join(root, 'elsewhere'));
    expect(invokedAs({ script, cwd: path.join(root, 'elsewhere'), pathEnv: '', bin })).to.equal(script);
    const spaced = path.join(root, 'my clone');
    mkdirSync(path.join(spaced, 'bin'), { recursive: true });
    writeFileSync(path.join(spaced, 'bin', 'run.js'), '');
    chmodSync(path.join(spaced, 'bin', 'run.js'), 0o755);
    expect(invokedAs({ script: path.join(spaced, 'bin', 'run.js'), cwd: '/', pathEnv: '', bin })).to.equal(`'${spaced}/bin/run.js'`);
  });

  it('installed: the bin name, when that name on PATH is this very program', () => {
    const binDir = path.join(root, 'global-bin');
    mkdirSync(binDir);
    symlinkSync(script, path.join(binDir, bin));
    expect(invokedAs({ script: path.join(binDir, bin), cwd: '/', pathEnv: `/nonexistent:${binDir}`, bin })).to.equal(bin);
    // Started as ./bin/run.js, but the same file is on PATH under its name: the name works too.
    expect(invokedAs({ script, cwd: clone, pathEnv: binDir, bin })).to.equal(bin);
  });

  it('not the bin name when that name on PATH is another program (an older install)', () => {
    const binDir = path.join(root, 'other-bin');
    mkdirSync(binDir);
    writeFileSync(path.join(binDir, bin), '#!/bin/sh\n');
    chmodSync(path.join(binDir, bin), 0o755);
    expect(invokedAs({ script, cwd: clone, pathEnv: binDir, bin })).to.equal('./bin/run.js');
  });

  it("a project's own node_modules/.bin entry: npx", () => {
    const project = path.join(root, 'app');
    mkdirSync(path.join(project, 'node_modules', '.bin'), { recursive: true });
    symlinkSync(script, path.join(project, 'node_modules', '.bin', bin));
    expect(invokedAs({ script: path.join(project, 'node_modules', '.bin', bin), cwd: project, pathEnv: '/usr/bin', bin })).to.equal(`npx ${bin}`);
  });

  it('a script without the executable bit: through node', () => {
    chmodSync(script, 0o644);
    expect(invokedAs({ script, cwd: clone, pathEnv: '', bin })).to.equal('node ./bin/run.js');
  });

  it('shellQuote leaves plain words alone and quotes the rest, quotes included', () => {
    expect(shellQuote('./bin/run.js')).to.equal('./bin/run.js');
    expect(shellQuote("/a b/it's")).to.equal(`'/a b/it'\\''s'`);
    expect(shellQuote('$(rm -rf /)')).to.equal("'$(rm -rf /)'");
  });
});
