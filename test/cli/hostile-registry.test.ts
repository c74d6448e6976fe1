import { expect } from 'chai';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { putUnderLease } from '../helpers/records.js';
import { RAW } from '../helpers/terminal.js';
import { startEtcd, uniqueNamespace, type EtcdServer } from '../helpers/etcd.js';
import { ensureBuilt, json, runCli, type CliResult } from './fixtures.js';

/**
 * Registry data is hostile until shown otherwise: a record written with etcdctl (or by a broken or
 * malicious writer) can hold escape sequences that clear the screen or recolour it, a bell, C1
 * controls that some terminals obey as CSI, and bidirectional overrides that make text read
 * differently from what it is. Every read command shows them escaped, in human output and in JSON,
 * and the JSON still reads back as the very same strings.
 */
const CLEAR = '\u001b[2J\u001b[31m';
const BELL = '\u0007';
const RLO = '\u202e';
const C1_CSI = '\u009b';
const DEL = '\u007f';

describe('CLI: hostile registry data never reaches the terminal raw', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  let namespace: string;
  const name = `evil${CLEAR}RED`;
  const region = `eu${RLO}lave`;
  const message = `failed${BELL}${C1_CSI}31m`;
  const reason = `maintenance${DEL}${CLEAR}`;

  before(async function () {
    this.timeout(60_000);
    ensureBuilt();
    etcd = await startEtcd();
    namespace = uniqueNamespace('hostile');
    const registry = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 3000 });
    try {
      const now = Date.now();
      await putUnderLease(
        registry,
        `${namespace}/services/evil-1`,
        JSON.stringify({
          id: 'evil-1',
          name,
          host: '127.0.0.1',
          port: 3999,
          version: `1${RLO}`,
          tags: [`tag${CLEAR}`],
          region,
          zone: `z${BELL}`,
          status: 'unhealthy',
          health: { status: 'unhealthy', lastCheck: now, responseTime: 3, consecutiveFailures: 2, consecutiveSuccesses: 0, message },
          registeredAt: now,
          updatedAt: now,
          metadata: { [`k${CLEAR}`]: `v${RLO}` },
        }),
      );
      await registry.put(`${namespace}/admin/evil-1`, JSON.stringify({ enabled: false, reason, actor: `ops${CLEAR}`, at: now }));
      await registry.put(
        `${namespace}/audit/0001`,
        JSON.stringify({ id: '0001', at: now, actor: `ops${CLEAR}`, action: 'disable', serviceId: 'evil-1', reason, changed: true }),
      );
    } finally {
      await registry.close();
    }
  });

  after(async function () {
    this.timeout(30_000);
    await etcd?.stop();
  });

  const cli = (args: string[]): Promise<CliResult> => runCli([...args, '--endpoints', etcd.endpoint, '--namespace', namespace]);

  function expectEscaped(res: CliResult, what: string): void {
    const all = `${res.stdout}${res.stderr}`;
    expect(res.code, `${what}\n${all}`).to.equal(0);
    const raw = RAW.exec(all);
    expect(raw, `${what} wrote U+${raw?.[0].charCodeAt(0).toString(16).padStart(4, '0')} raw:\n${JSON.stringify(all)}`).to.equal(null);
  }

  for (const args of [['services', 'list'], ['services', 'show', 'evil-1'], ['topology'], ['audit'], ['status']]) {
    it(`${args.join(' ')}: escaped in the human output`, async () => {
      const res = await cli(args);
      expectEscaped(res, args.join(' '));
      if (args[1] === 'show') {
        // Shown, not obeyed: an operator sees what the record tried.
        expect(res.stdout).to.include('evil\\u001b[2J\\u001b[31mRED');
        expect(res.stdout).to.include('failed\\u0007\\u009b31m');
        expect(res.stdout).to.include('eu\\u202elave');
      }
    });

    it(`${args.join(' ')} --json: escaped, and the very same strings when parsed`, async () => {
      const res = await cli([...args, '--json']);
      expectEscaped(res, `${args.join(' ')} --json`);
      const text = JSON.stringify(json(res));
      if (args[0] === 'services' || args[0] === 'topology') expect(text).to.include(JSON.stringify(region).slice(1, -1));
      if (args[1] === 'show') {
        const shown = json<{ service: { name: string; health: { message: string } } }>(res);
        expect(shown.service.name).to.equal(name);
        expect(shown.service.health.message).to.equal(message);
      }
    });
  }

  it('events, human and NDJSON: an update with hostile strings is escaped as it streams', async () => {
    const human = cli(['events', '--count', '1', '--duration', '20']);
    const ndjson = cli(['events', '--count', '1', '--duration', '20', '--json']);
    // Both have listed and are watching once the first update after a moment arrives.
    await new Promise((r) => setTimeout(r, 2500));
    const registry = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 3000 });
    try {
      const now = Date.now();
      await putUnderLease(
        registry,
        `${namespace}/services/evil-2`,
        JSON.stringify({ id: 'evil-2', name, host: '127.0.0.1', port: 3998, region, zone: 'z', status: 'healthy', registeredAt: now, updatedAt: now }),
      );
    } finally {
      await registry.close();
    }
    const [h, j] = await Promise.all([human, ndjson]);
    expectEscaped(h, 'events');
    expect(h.stdout).to.include('evil-2');
    expectEscaped(j, 'events --json');
    const event = JSON.parse(j.stdout.trim().split('\n')[0]!) as { service?: { region: string } };
    expect(event.service?.region).to.equal(region);
  });
});
