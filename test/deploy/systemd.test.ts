import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../../src/config/load.js';
import { agentEnvNames, BIN, ROOT } from './helpers.js';

const UNIT = path.join(ROOT, 'deploy/systemd/proxy-stone-sd.service');
const ENV_EXAMPLE = path.join(ROOT, 'deploy/systemd/agent.env.example');
const SYSTEMD_ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));

/** Unit file → section → key → values (keys may repeat). Comments and blank lines skipped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    current!.set(key, [...(current!.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

/** A copy of the unit whose ExecStart runs this checkout's bin/run.js (verify wants an existing executable). */
function localUnit(dir: string): string {
  const file = path.join(dir, 'proxy-stone-sd.service');
  writeFileSync(file, readFileSync(UNIT, 'utf8').replaceAll('/usr/local/bin/proxy-stone-sd', BIN));
  return file;
}

describe('deploy: systemd unit (deploy/systemd/proxy-stone-sd.service)', () => {
  const unit = parseUnit(readFileSync(UNIT, 'utf8'));
  const service = unit.get('Service')!;
  const one = (key: string) => service.get(key)?.at(-1);

  it('runs the agent with its settings from an EnvironmentFile, stops it with SIGTERM, restarts on failure', () => {
    expect(one('ExecStart')).to.equal('/usr/local/bin/proxy-stone-sd agent');
    expect(one('EnvironmentFile')).to.equal('/etc/proxy-stone-sd/agent.env');
    expect(one('KillSignal')).to.equal('SIGTERM');
    expect(Number(one('TimeoutStopSec'))).to.be.within(5, 60);
    expect(one('Restart')).to.equal('on-failure');
    expect(one('RestartPreventExitStatus'), 'a configuration error (exit 2) is not retried').to.equal('2');
    expect(unit.get('Install')?.get('WantedBy')).to.deep.equal(['multi-user.target']);
    expect(unit.get('Unit')?.get('After')?.join(' ')).to.include('network-online.target');
  });

  it('is hardened, without options that break node (MemoryDenyWriteExecute)', () => {
    for (const [key, value] of Object.entries({
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      DynamicUser: 'yes',
      CapabilityBoundingSet: '',
      RestrictNamespaces: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      SystemCallArchitectures: 'native',
      SystemCallErrorNumber: 'EPERM',
    })) {
      expect(one(key), key).to.equal(value);
    }
    expect(service.get('MemoryDenyWriteExecute')).to.equal(undefined);
  });

  it('the example EnvironmentFile names only real settings, with values the agent accepts', () => {
    const env: Record<string, string> = {};
    for (const raw of readFileSync(ENV_EXAMPLE, 'utf8').split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const eq = line.indexOf('=');
      env[line.slice(0, eq)] = line.slice(eq + 1);
    }
    const known = agentEnvNames();
    expect(Object.keys(env).filter((k) => !known.has(k))).to.deep.equal([]);
    const { config } = resolveConfig({ env });
    expect(config.cluster.discovery.registry).to.equal('etcd');
    expect(config.service.port).to.equal(3001);
  });

  it('systemd-analyze verify accepts it', function () {
    if (!SYSTEMD_ANALYZE) {
      console.log('      (skipped: systemd-analyze is not installed here)');
      this.skip();
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'sd-systemd-'));
    try {
      const r = spawnSync(SYSTEMD_ANALYZE!, ['verify', localUnit(dir)], { encoding: 'utf8', timeout: 20_000 });
      const output = `${r.stdout}${r.stderr}`.trim();
      expect(r.status, output).to.equal(0);
      // verify also reports unknown keys and bad values as warnings with exit 0: none allowed.
      expect(output).to.equal('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('systemd-analyze security rates its exposure OK (below 2.0)', function () {
    if (!SYSTEMD_ANALYZE) this.skip();
    const dir = mkdtempSync(path.join(tmpdir(), 'sd-systemd-'));
    try {
      const r = spawnSync(SYSTEMD_ANALYZE!, ['security', '--offline=yes', '--no-pager', localUnit(dir)], { encoding: 'utf8', timeout: 20_000 });
      const m = /Overall exposure level for \S+: ([\d.]+)/.exec(`${r.stdout}${r.stderr}`);
      if (!m) {
        console.log(`      (skipped: this systemd-analyze cannot rate unit files offline: ${r.stderr.trim().split('\n')[0]})`);
        this.skip();
      }
      expect(Number(m![1])).to.be.below(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
