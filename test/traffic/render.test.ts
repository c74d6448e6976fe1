import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { setServiceEnabled } from '../../src/cluster/admin.js';
import { keyLayout, type KeyLayout } from '../../src/cluster/keys.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { BIN, cliEnv, ensureBuilt, ROOT, runCli } from '../cli/fixtures.js';
import { LoggedProcess } from '../deploy/helpers.js';
import { freePorts, uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { DOCS_DIR, loadBalancersDoc, putRecord } from './fixtures.js';

/** The docs' nginx template, exactly. */
const TEMPLATE = loadBalancersDoc().files.get(`${DOCS_DIR}/upstream.conf.hbs`)!;

describe('traffic: render', function () {
  this.timeout(60_000);
  let endpoint: string;
  let layout: KeyLayout;
  let writer: EtcdRegistry;
  let dir: string;
  let template: string;
  let out: string;

  const target = () => ['--endpoints', endpoint, '--namespace', layout.namespace];

  before(async function () {
    this.timeout(120_000);
    ensureBuilt();
    endpoint = (await sharedEtcd()).endpoint;
  });

  beforeEach(async () => {
    layout = keyLayout(uniqueNamespace('render'));
    writer = new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 5000 });
    for (let i = 1; i <= 3; i++) await putRecord(writer, layout, `proxy-stone-${i}`, 3000 + i);
    dir = mkdtempSync(path.join(tmpdir(), 'psd-render-'));
    template = path.join(dir, 'upstream.conf.hbs');
    writeFileSync(template, TEMPLATE);
    out = path.join(dir, 'upstream.conf');
  });

  afterEach(async () => {
    await writer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--once writes the upstream of the serving instances, with the floor server, and exits 0', async () => {
    await setServiceEnabled(writer, layout, 'proxy-stone-2', false, { reason: 'deploy', actor: 'test', drainTimeout: 30, minHealthy: { count: 0 } });
    const res = await runCli(['render', '--template', template, '--out', out, '--once', ...target()]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stderr).to.equal('');
    expect(readFileSync(out, 'utf8')).to.equal(
      [
        '# Written by proxy-stone-sd render from the registry: edits here are overwritten.',
        'upstream proxy_stone {',
        '    server 127.0.0.1:3001 max_fails=1 fail_timeout=5s;  # proxy-stone-1',
        '    server 127.0.0.1:3003 max_fails=1 fail_timeout=5s;  # proxy-stone-3',
        '    # An upstream without a server is a config error: this one keeps it valid, and is never used.',
        '    server 127.0.0.1:1 down;',
        '}',
        '',
      ].join('\n'),
    );
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; serving: number; draining: number; outOfTraffic: number });
    expect(lines.map((l) => l.event)).to.deep.equal(['render.written']);
    expect(lines[0]).to.include({ serving: 2, draining: 1, outOfTraffic: 0 });
  });

  it('writes only when the bytes change, through a rename, and runs --exec only then', async () => {
    const marker = path.join(dir, 'reloaded');
    const exec = `echo reload >> ${marker}`;
    expect((await runCli(['render', '--template', template, '--out', out, '--once', '--exec', exec, ...target()])).code).to.equal(0);
    const first = statSync(out);
    expect(readFileSync(marker, 'utf8')).to.equal('reload\n');
    // Nothing that the template shows changed: no write, no reload.
    await putRecord(writer, layout, 'proxy-stone-1', 3001, { version: '9.9.9' });
    const again = await runCli(['render', '--template', template, '--out', out, '--once', '--exec', exec, ...target()]);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.equal('');
    const second = statSync(out);
    expect([second.ino, second.mtimeMs]).to.deep.equal([first.ino, first.mtimeMs]);
    expect(readFileSync(marker, 'utf8')).to.equal('reload\n');
    // A change it shows: a new file renamed over the old one (a new inode), and the reload.
    await writer.delete(layout.service('proxy-stone-3'));
    expect((await runCli(['render', '--template', template, '--out', out, '--once', '--exec', exec, ...target()])).code).to.equal(0);
    expect(statSync(out).ino).to.not.equal(first.ino);
    expect(readFileSync(out, 'utf8')).to.not.include('3003');
    expect(readFileSync(marker, 'utf8')).to.equal('reload\nreload\n');
    // No temporary file left behind.
    expect(readdirSync(dir).sort()).to.deep.equal(['reloaded', 'upstream.conf', 'upstream.conf.hbs']);
  });

  it('--once with the registry unreachable: exit 4 with one line, nothing written', async () => {
    const [port] = await freePorts(1);
    const res = await runCli(['render', '--template', template, '--out', out, '--once', '--endpoints', `http://127.0.0.1:${port}`, '--timeout', '1']);
    expect(res.code, res.stderr).to.equal(4);
    expect(res.stderr.trim().split('\n')).to.have.length(1);
    expect(res.stderr).to.match(/^Error: registry http:\/\/127\.0\.0\.1:\d+ unreachable: .* \(hint: check that etcd answers/);
    expect(existsSync(out)).to.equal(false);
  });

  it('a bad template is one line naming the file and line, exit 2, nothing written', async () => {
    writeFileSync(template, 'upstream x {\n{{#each serving}}\n    server {{hostport this}};\n{{/each\n}\n');
    const syntax = await runCli(['render', '--template', template, '--out', out, '--once', ...target()]);
    expect(syntax.code).to.equal(2);
    expect(syntax.stderr).to.match(new RegExp(`^Error: template ${template.replace(/[.]/g, '\\.')} line 4: syntax error near .*\\(hint: the template language is Handlebars`));
    expect(syntax.stderr.trim().split('\n')).to.have.length(1);
    // A field the records do not have: found on the first render.
    writeFileSync(template, 'upstream x {\n{{#each serving}}\n    server {{hostname}}:{{port}};\n{{/each}}\n}\n');
    const field = await runCli(['render', '--template', template, '--out', out, '--once', ...target()]);
    expect(field.code).to.equal(2);
    expect(field.stderr).to.match(/^Error: template \S+ line 3: "hostname" not defined \(hint/);
    expect(existsSync(out)).to.equal(false);
    const missing = await runCli(['render', '--template', path.join(dir, 'nope.hbs'), '--out', out, '--once', ...target()]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/^Error: template \S+nope\.hbs: no such file/);
  });

  it('usage errors: --agent, an --out directory that does not exist, a missing --template', async () => {
    const agent = await runCli(['render', '--template', template, '--out', out, '--once', '--agent', 'http://127.0.0.1:8790']);
    expect(agent.code).to.equal(2);
    expect(agent.stderr).to.equal('Error: render reads the registry itself: give --endpoints (etcd URLs or one redis:// URL) instead of --agent\n');
    const nowhere = await runCli(['render', '--template', template, '--out', path.join(dir, 'no/such/dir/up.conf'), '--once', ...target()]);
    expect(nowhere.code).to.equal(2);
    expect(nowhere.stderr).to.match(/^Error: --out \S+: directory \S+\/no\/such\/dir does not exist\n$/);
    const noTemplate = await runCli(['render', '--out', out, '--once', ...target()]);
    expect(noTemplate.code).to.equal(2);
    expect(noTemplate.stderr).to.match(/^Error: Missing required flag template/);
  });

  it('registry strings cannot break out of a line, and unusable addresses never serve', async () => {
    await putRecord(writer, layout, 'proxy-stone-9', 3009, { host: '10.0.0.9;\n    server evil.example:80' });
    await putRecord(writer, layout, 'proxy-stone-1', 3001, { name: 'x\n}\nserver evil:1;', metadata: { 'k\n': 'v\u001b[2J' } });
    writeFileSync(template, '{{#each serving}}{{name}} {{hostport this}}\n{{/each}}{{#each out}}out {{id}}\n{{/each}}{{#each services}}{{#each metadata}}{{@key}}={{this}}\n{{/each}}{{/each}}');
    const res = await runCli(['render', '--template', template, '--out', out, '--once', ...target()]);
    expect(res.code, res.stderr).to.equal(0);
    expect(readFileSync(out, 'utf8')).to.equal(['x}server evil:1; 127.0.0.1:3001', 'proxy-stone 127.0.0.1:3002', 'proxy-stone 127.0.0.1:3003', 'out proxy-stone-9', 'k=v[2J', ''].join('\n'));
  });

  describe('running', () => {
    let proc: LoggedProcess | undefined;
    afterEach(async () => {
      await proc?.stop();
      proc = undefined;
    });

    function start(...args: string[]): LoggedProcess {
      proc = new LoggedProcess(spawn(process.execPath, [BIN, 'render', '--template', template, '--out', out, ...target(), ...args], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
      return proc;
    }

    it('debounces a burst into one write and one --exec', async () => {
      const log = path.join(dir, 'execs');
      const p = start('--debounce', '2s', '--exec', `echo run >> ${log}`);
      await p.waitForEvent('render.started');
      await p.waitForEvent('render.exec');
      // Three disables at once: one render for all of them.
      await Promise.all([1, 2, 3].map((i) => setServiceEnabled(writer, layout, `proxy-stone-${i}`, false, { actor: 'test', drainTimeout: 0, minHealthy: { count: 0 } })));
      await p.waitForEvent('render.written', 15_000, (r) => r.serving === 0);
      await new Promise((r) => setTimeout(r, 2500));
      expect(p.events('render.written').map((r) => r.serving)).to.deep.equal([3, 0]);
      expect(readFileSync(log, 'utf8')).to.equal('run\nrun\n');
      expect(readFileSync(out, 'utf8')).to.not.match(/server 127\.0\.0\.1:300\d/);
    });

    it('a failing --exec is logged and run again after the next change, and render keeps running', async () => {
      const fail = path.join(dir, 'fail');
      const log = path.join(dir, 'execs');
      writeFileSync(fail, '');
      const p = start('--debounce', '0', '--exec', `echo run >> ${log}; if [ -e ${fail} ]; then echo "nginx: [emerg] broken" >&2; exit 1; fi`);
      const failed = await p.waitForEvent('render.exec_failed');
      expect(failed).to.include({ code: 1, reason: 'exit 1', output: 'nginx: [emerg] broken' });
      expect(failed.msg).to.equal(`--exec command failed: exit 1: nginx: [emerg] broken; it runs again after the next change`);
      rmSync(fail);
      // A change the template does not show: the file stays, but the command it owes runs again.
      await putRecord(writer, layout, 'proxy-stone-1', 3001, { version: '2.0.0' });
      await p.waitForEvent('render.exec');
      expect(p.events('render.written')).to.have.length(1);
      expect(readFileSync(log, 'utf8')).to.equal('run\nrun\n');
      // Once it succeeded, an unchanged render runs nothing.
      await putRecord(writer, layout, 'proxy-stone-1', 3001, { version: '3.0.0' });
      await new Promise((r) => setTimeout(r, 1000));
      expect(readFileSync(log, 'utf8')).to.equal('run\nrun\n');
      expect(p.proc.exitCode).to.equal(null);
    });

    it('an --exec that hangs is killed after --exec-timeout', async () => {
      const p = start('--exec', 'sleep 30', '--exec-timeout', '500ms');
      const failed = await p.waitForEvent('render.exec_failed');
      expect(failed.reason).to.equal('no exit within 500 ms (killed)');
      expect(failed.ms as number).to.be.lessThan(5000);
    });

    it('waits for an unreachable registry without writing anything, and stops on SIGTERM with exit 0', async () => {
      const [port] = await freePorts(1);
      proc = new LoggedProcess(
        spawn(process.execPath, [BIN, 'render', '--template', template, '--out', out, '--endpoints', `http://127.0.0.1:${port}`, '--timeout', '500ms'], {
          cwd: ROOT,
          env: cliEnv(),
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      const warned = await proc.waitForEvent('feed.unreachable');
      expect(warned.msg).to.match(/^registry http:\/\/127\.0\.0\.1:\d+ unreachable: .*; retrying until it answers$/);
      expect(existsSync(out)).to.equal(false);
      const { code } = await proc.stop();
      expect(code).to.equal(0);
      expect(proc.stderr).to.equal('');
      expect(existsSync(out)).to.equal(false);
    });
  });
});
