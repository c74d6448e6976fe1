import { expect } from 'chai';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { RECORD_LIMITS } from '../../src/types.js';
import { putUnderLease } from '../helpers/records.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { ensureBuilt, json, runCli, type CliResult } from './fixtures.js';

/**
 * Records with every field as long as a reader takes (issue 16, item 13; RECORD_LIMITS), written
 * straight into a real etcd as anyone with etcdctl could: human output stays bounded (table cells cut
 * with `…`, rows not padded to the widest cell, `services show` values cut with "… (N more
 * characters)"), while --json stays exact. A record with a megabyte in it is past what any reader
 * takes: skipped with a warning, the others shown.
 */
const MB = 1_000_000;
const BIG_REGION = `eu-${'r'.repeat(RECORD_LIMITS.location - 3)}`;
const BIG_HOST = `h${'o'.repeat(RECORD_LIMITS.host - 9)}.example`;
const BIG_REASON = `deploy ${'x'.repeat(RECORD_LIMITS.message - 7)}`;
const BIG_MESSAGE = `failed: ${'m'.repeat(RECORD_LIMITS.message - 8)}`;

describe('CLI: oversized registry records', function () {
  this.timeout(120_000);
  let endpoint: string;
  let namespace: string;

  before(async function () {
    this.timeout(120_000);
    ensureBuilt();
    endpoint = (await sharedEtcd()).endpoint;
    namespace = uniqueNamespace('oversized');
    const registry = new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 10_000 });
    try {
      const now = Date.now();
      const record = (id: string, over: Record<string, unknown> = {}) =>
        JSON.stringify({
          id,
          name: 'proxy-stone',
          host: '10.0.0.1',
          port: 3001,
          version: '1.0.0',
          region: 'us-east-1',
          zone: 'us-east-1a',
          status: 'healthy',
          health: { status: 'healthy', lastCheck: now, responseTime: 2, consecutiveFailures: 0, consecutiveSuccesses: 3 },
          registeredAt: now,
          updatedAt: now,
          ...over,
        });
      for (let i = 0; i < 9; i++) await putUnderLease(registry, `${namespace}/services/svc-${i}`, record(`svc-${i}`));
      await putUnderLease(registry, `${namespace}/services/big-region`, record('big-region', { region: BIG_REGION, metadata: { note: 'y'.repeat(RECORD_LIMITS.metadataValue) } }));
      await putUnderLease(registry, `${namespace}/services/megabyte`, record('megabyte', { region: `eu-${'r'.repeat(MB)}` }));
      await putUnderLease(
        registry,
        `${namespace}/services/big-host`,
        record('big-host', { host: BIG_HOST, status: 'unhealthy', health: { status: 'unhealthy', lastCheck: now, responseTime: 2, consecutiveFailures: 3, consecutiveSuccesses: 0, message: BIG_MESSAGE } }),
      );
      await registry.put(`${namespace}/admin/big-host`, JSON.stringify({ enabled: false, reason: BIG_REASON, actor: 'ops', at: now }));
      await registry.put(
        `${namespace}/audit/0001`,
        JSON.stringify({ id: '0001', at: now, actor: `ops-${'a'.repeat(RECORD_LIMITS.actor - 4)}`, action: 'disable', serviceId: 'big-host', reason: BIG_REASON, changed: true }),
      );
    } finally {
      await registry.close();
    }
  });

  const cli = (args: string[]): Promise<CliResult> => runCli([...args, '--endpoints', endpoint, '--namespace', namespace], { timeoutMs: 60_000 });

  /** Human output: bounded in all, and in every line. */
  function expectBounded(res: CliResult, what: string, maxBytes: number, maxLine: number): string[] {
    expect(res.code, `${what}: ${res.stderr.slice(0, 500)}`).to.equal(0);
    expect(res.stdout.length, what).to.be.below(maxBytes);
    const lines = res.stdout.split('\n');
    const longest = Math.max(...lines.map((l) => l.length));
    expect(longest, `${what}: longest line`).to.be.at.most(maxLine);
    return lines;
  }

  it('services list: cells cut with an ellipsis, rows not padded to the widest cell', async () => {
    const res = await cli(['services', 'list']);
    const lines = expectBounded(res, 'services list', 8_000, 400);
    const row = (id: string) => lines.find((l) => l.includes(` ${id} `)) ?? '';
    expect(row('big-region')).to.include('eu-rrrr').and.to.include('…');
    expect(row('big-host')).to.include('hoooo').and.to.include('…');
    // A normal row is as wide as the capped columns, not as the widest cell.
    expect(row('svc-0').length).to.be.at.most(400);
    // The megabyte is past what any reader takes: skipped, said once, and the rest listed.
    expect(row('megabyte')).to.equal('');
    expect(res.stderr).to.match(/skipping \S+\/services\/megabyte: \d+ characters: expected a value of at most \d+/);
    expect(res.stderr.length).to.be.below(2_000);
  });

  it('services list --json: every byte of every field', async () => {
    const res = await cli(['services', 'list', '--json']);
    expect(res.code).to.equal(0);
    const list = json<{ services: { id: string; region: string; host: string; disabledReason?: string }[] }>(res);
    expect(list.services.find((s) => s.id === 'big-region')!.region).to.equal(BIG_REGION);
    expect(list.services.find((s) => s.id === 'big-host')!.host).to.equal(BIG_HOST);
    expect(list.services.find((s) => s.id === 'big-host')!.disabledReason).to.equal(BIG_REASON);
  });

  it('services show: each value cut at 1000 characters, saying how many more there are', async () => {
    const res = await cli(['services', 'show', 'big-host']);
    const lines = expectBounded(res, 'services show', 20_000, 1_200);
    const line = (key: string) => lines.find((l) => l.startsWith(`${key}:`)) ?? '';
    // A host name is at most 255 characters: shown whole in the detail view.
    expect(line('address')).to.match(/^address: +ho+\.example:3001$/);
    expect(line('message')).to.match(new RegExp(`^message: +failed: m+… \\((\\d+) more characters\\)$`));
    const more = Number(/\((\d+) more characters\)$/.exec(line('message'))![1]);
    // What is shown and what is said to be left add up to the value.
    expect(line('message').replace(/^message: +/, '').replace(/… \(\d+ more characters\)$/, '').length + more).to.equal(BIG_MESSAGE.length);
    const region = await cli(['services', 'show', 'big-region']);
    expectBounded(region, 'services show big-region', 20_000, 1_200);
    const shown = json<{ service: { host: string; health: { message: string } } }>(await cli(['services', 'show', 'big-host', '--json']));
    expect(shown.service.host).to.equal(BIG_HOST);
    expect(shown.service.health.message).to.equal(BIG_MESSAGE);
  });

  it('topology and audit: bounded lines', async () => {
    expectBounded(await cli(['topology']), 'topology', 8_000, 400);
    const audit = expectBounded(await cli(['audit']), 'audit', 4_000, 400);
    expect(audit.join('\n')).to.include('deploy xxx').and.to.include('…');
  });
});
