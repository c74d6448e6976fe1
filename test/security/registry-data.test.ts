import { expect } from 'chai';
import { ServiceAgent } from '../../src/agent/agent.js';
import { startApiServer } from '../../src/api/index.js';
import type { DoctorResult } from '../../src/cli/doctor-checks.js';
import { listAudit, setServiceEnabled } from '../../src/cluster/admin.js';
import { encodeServiceRecord, MAX_VALUE_CHARS, parseAuditEntry, parseServiceRecord, RECORD_LIMITS } from '../../src/cluster/codec.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { computeTopology } from '../../src/cluster/topology.js';
import { terminalSafe } from '../../src/util/text.js';
import { ClusterState, NO_LEASE } from '../../src/cluster/state.js';
import { configFromPartial, resolveConfig } from '../../src/config/load.js';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import type { KeyValue } from '../../src/registry/types.js';
import { ensureBuilt, json, runCli } from '../cli/fixtures.js';
import { waitFor } from '../helpers/cluster.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sampleRecord } from '../helpers/records.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';

/**
 * Registry data is input: anyone with etcdctl, another version or a broken writer can put anything
 * under the namespace. Every reader bounds what it takes (sizes, counts, times), reads a bad intent
 * the same way on every path, and does not serve a record no lease will ever remove.
 */
describe('registry data: bounded, one reading on every path', function () {
  this.timeout(60_000);

  const kv = (key: string, value: unknown, lease = '7'): KeyValue => ({
    key,
    value: typeof value === 'string' ? value : JSON.stringify(value),
    createRevision: 1,
    modRevision: 1,
    lease,
  });

  describe('codec bounds', () => {
    it('refuses times a Date cannot hold, naming the field', () => {
      const huge = parseServiceRecord(JSON.stringify({ ...sampleRecord('a'), updatedAt: 9e15 }), 'a');
      expect(huge.ok).to.equal(false);
      expect(!huge.ok && huge.error).to.match(/^updatedAt: expected a time in epoch milliseconds/);
      const fraction = parseServiceRecord(JSON.stringify({ ...sampleRecord('a'), registeredAt: 1.5 }), 'a');
      expect(fraction.ok).to.equal(false);
      const audit = parseAuditEntry(JSON.stringify({ id: 'x', at: 9e15, actor: 'a', action: 'disable', serviceId: 'a', changed: true }));
      expect(!audit.ok && audit.error).to.match(/^at: expected a time/);
    });

    it('refuses oversized values, strings and lists before they reach a view', () => {
      const big = JSON.stringify({ ...sampleRecord('a'), tags: Array.from({ length: 64 }, () => 'x'.repeat(128 * 1024 / 64)) });
      const parsed = parseServiceRecord(big, 'a');
      expect(!parsed.ok && parsed.error).to.match(new RegExp(`expected a value of at most ${MAX_VALUE_CHARS}`));
      const tags = parseServiceRecord(JSON.stringify({ ...sampleRecord('a'), tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }), 'a');
      expect(!tags.ok && tags.error).to.match(/^tags: expected an array of at most 64 items/);
      const name = parseServiceRecord(JSON.stringify({ ...sampleRecord('a'), name: 'n'.repeat(257) }), 'a');
      expect(!name.ok && name.error).to.match(/^name: expected a string of at most 256 characters, got a string of 257 characters/);
    });

    it('the largest record an agent may be configured with is one every reader takes', () => {
      const L = RECORD_LIMITS;
      const env = {
        SERVICE_ID: 'i'.repeat(L.id),
        SERVICE_NAME: 'n'.repeat(L.name),
        SERVICE_VERSION: 'v'.repeat(L.version),
        SERVICE_REGION: 'r'.repeat(L.location),
        SERVICE_ZONE: 'z'.repeat(L.location),
        SERVICE_TAGS: Array.from({ length: L.tags }, (_, i) => `${i}`.padEnd(L.tag, 't')).join(','),
        SERVICE_METADATA: Array.from({ length: L.metadataEntries }, (_, i) => `${`${i}`.padEnd(L.metadataKey, 'k')}=${'m'.repeat(L.metadataValue)}`).join(','),
      };
      const { config } = resolveConfig({ env });
      const s = config.service;
      const record = sampleRecord(s.id!, { name: s.name, version: s.version, region: s.region, zone: s.zone, tags: s.tags, metadata: s.metadata, healthUrl: 'h'.repeat(L.url) });
      record.health.message = 'm'.repeat(L.message);
      const parsed = parseServiceRecord(encodeServiceRecord(record), s.id!);
      expect(parsed.ok, parsed.ok ? '' : parsed.error).to.equal(true);
      // One more character anywhere is refused at load, naming the setting.
      for (const [name, value] of Object.entries(env)) {
        expect(() => resolveConfig({ env: { ...env, [name]: `${value}x` } }), name).to.throw(new RegExp(name));
      }
    });

    it('keeps a metadata key named __proto__ as data', () => {
      const parsed = parseServiceRecord(`{"id":"a","name":"n","host":"h","port":1,"status":"healthy","metadata":{"__proto__":"x"}}`, 'a');
      expect(parsed.ok).to.equal(true);
      const metadata = parsed.ok ? parsed.value.metadata : {};
      expect(Object.getPrototypeOf(metadata)).to.equal(Object.prototype);
      expect(Object.keys(metadata)).to.deep.equal(['__proto__']);
    });

    it('a region or zone named __proto__ is counted as data and pollutes no prototype', () => {
      const services = [sampleRecord('a', { region: '__proto__', zone: 'polluted' }), sampleRecord('b', { region: 'constructor', zone: 'name' })];
      const topology = computeTopology(services, null);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(Object.getPrototypeOf(topology.servicesByZone)).to.equal(Object.prototype);
      expect(Object.entries(topology.servicesByZone)).to.deep.equal([['__proto__', { polluted: 1 }], ['constructor', { name: 1 }]]);
      expect(Object.entries(topology.servicesByRegion)).to.deep.equal([['__proto__', 1], ['constructor', 1]]);
      const escaped = terminalSafe({ metadata: { ['__proto__']: 'x\u0007' } as Record<string, string> });
      expect(Object.keys(escaped.metadata)).to.deep.equal(['__proto__']);
    });

    it('skips a record without a lease, with a warning that says why', () => {
      const layout = keyLayout('ns');
      const warnings: string[] = [];
      const state = ClusterState.fromList(
        layout,
        [kv(layout.service('by-hand'), sampleRecord('by-hand'), '0'), kv(layout.service('agent'), sampleRecord('agent'))],
        (m) => warnings.push(m),
      );
      expect(state.services().map((s) => s.id)).to.deep.equal(['agent']);
      expect(warnings).to.deep.equal([`skipping ${layout.service('by-hand')}: ${NO_LEASE}`]);
    });

    it('reads an unreadable intent as no intent, even after a good one', () => {
      const layout = keyLayout('ns');
      const state = ClusterState.fromList(layout, [kv(layout.service('a'), sampleRecord('a'))]);
      state.put(kv(layout.adminOf('a'), { enabled: false, actor: 'ops', at: 1 }, '0'));
      expect(state.service('a')?.enabled).to.equal(false);
      const events = state.put(kv(layout.adminOf('a'), '{garbage', '0'));
      expect(state.service('a')?.enabled).to.equal(true);
      expect(events.map((e) => e.type)).to.deep.equal(['serviceEnabled']);
    });
  });

  describe('on etcd', () => {
    let registry: EtcdRegistry;
    let endpoint: string;
    let namespace: string;
    let upstream: SampleUpstream | undefined;
    let agent: ServiceAgent | undefined;

    before(async () => {
      ensureBuilt();
      endpoint = (await sharedEtcd()).endpoint;
    });

    beforeEach(async () => {
      namespace = uniqueNamespace('regdata');
      registry = new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 3000 });
    });

    afterEach(async () => {
      await agent?.stop();
      await upstream?.close();
      agent = undefined;
      upstream = undefined;
      await registry.close();
    });

    const cli = (args: string[]) => runCli([...args, '--endpoints', endpoint, '--namespace', namespace]);

    async function putLive(id: string, overrides: Record<string, unknown> = {}): Promise<void> {
      const lease = await registry.grantLease(60);
      await registry.put(keyLayout(namespace).service(id), JSON.stringify({ ...sampleRecord(id, { host: '127.0.0.1' }), ...overrides }), { lease: lease.id });
    }

    it('status, services show, audit and topology survive times out of range', async () => {
      const now = Date.now();
      await putLive('good-1', { updatedAt: now, registeredAt: now });
      await putLive('bad-time', { updatedAt: 9e15 });
      const layout = keyLayout(namespace);
      await registry.put(layout.adminOf('good-1'), JSON.stringify({ enabled: true, actor: 'ops', at: now, expiresAt: 9e15 }));
      await registry.put(`${layout.audit}0000000000001-aaaa`, JSON.stringify({ id: 'x', at: 9e15, actor: 'ops', action: 'disable', serviceId: 'good-1', changed: true }));
      await registry.put(`${layout.audit}0000000000002-aaaa`, JSON.stringify({ id: 'y', at: now, actor: 'ops', action: 'disable', serviceId: 'good-1', changed: true }));
      for (const args of [['status'], ['services', 'show', 'good-1'], ['audit'], ['topology'], ['services', 'list']]) {
        const res = await cli(args);
        expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.equal(0);
        expect(res.stderr, args.join(' ')).not.to.match(/Invalid time value|RangeError/);
      }
      const list = json<{ services: { id: string }[] }>(await cli(['services', 'list', '--json']));
      expect(list.services.map((s) => s.id)).to.deep.equal(['good-1']);
      const audit = json<{ entries: { id: string }[] }>(await cli(['audit', '--json']));
      expect(audit.entries.map((e) => e.id)).to.deep.equal(['y']);
    });

    it('a record written by hand without a lease is not served, and doctor says so', async () => {
      const now = Date.now();
      await putLive('live-1', { updatedAt: now, registeredAt: now });
      await registry.put(keyLayout(namespace).service('by-hand'), JSON.stringify(sampleRecord('by-hand', { host: '127.0.0.1' })));
      const list = json<{ services: { id: string }[] }>(await cli(['services', 'list', '--json']));
      expect(list.services.map((s) => s.id)).to.deep.equal(['live-1']);
      const shown = await cli(['services', 'show', 'by-hand']);
      expect(shown.code).to.not.equal(0);
      const doctor = await cli(['doctor', '--json']);
      const { checks } = json<DoctorResult>(doctor);
      const ns = checks.find((c) => c.name === 'namespace');
      expect(ns?.ok).to.equal(false);
      expect(ns?.detail).to.include('by-hand').and.include('no lease');
    });

    it('no-op enables and disables leave the audit trail alone', async () => {
      const now = Date.now();
      await putLive('svc-1', { updatedAt: now, registeredAt: now });
      const layout = keyLayout(namespace);
      const opts = { actor: 'ops', minHealthy: { count: 0 } };
      for (let i = 0; i < 5; i++) {
        const r = await setServiceEnabled(registry, layout, 'svc-1', true, opts);
        expect(r).to.include({ changed: false, audited: false });
      }
      expect(await listAudit(registry, layout)).to.have.length(0);
      await setServiceEnabled(registry, layout, 'svc-1', false, { ...opts, reason: 'patching' });
      await setServiceEnabled(registry, layout, 'svc-1', false, { ...opts, reason: 'patching' });
      await setServiceEnabled(registry, layout, 'svc-1', false, { ...opts, reason: 'patching, then reboot' });
      const entries = await listAudit(registry, layout);
      expect(entries.map((e) => [e.action, e.changed, e.reasonUpdated ?? false])).to.deep.equal([
        ['disable', false, true],
        ['disable', true, false],
      ]);
    });

    it('refuses an expiry a Date cannot hold and a huge actor never makes the intent unreadable', async () => {
      const now = Date.now();
      await putLive('svc-2', { updatedAt: now, registeredAt: now });
      const layout = keyLayout(namespace);
      let error: unknown;
      await setServiceEnabled(registry, layout, 'svc-2', false, { expiresAt: 9e15, minHealthy: { count: 0 } }).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(RangeError);
      expect((error as Error).message).to.match(/^expiresAt: expected an integer of epoch milliseconds/);
      expect(await registry.get(layout.adminOf('svc-2'))).to.equal(null);
      await setServiceEnabled(registry, layout, 'svc-2', false, { actor: `cli:${'u'.repeat(5000)}`, minHealthy: { count: 0 } });
      const list = json<{ services: { id: string; enabled: boolean }[] }>(await cli(['services', 'list', '--json']));
      expect(list.services.find((s) => s.id === 'svc-2')?.enabled).to.equal(false);
    });

    it('a corrupted intent reads as enabled for agents and the CLI alike, and enable or disable repairs it', async () => {
      upstream = await startSampleUpstream();
      agent = new ServiceAgent({
        registry,
        config: configFromPartial({
          cluster: {
            leaderElection: { enabled: true, ttl: 3, renewInterval: 0.3 },
            healthCheck: { interval: 0.2, timeout: 0.5, retries: 2, gracePeriod: 1, refreshInterval: 0 },
            discovery: { registry: 'etcd', endpoints: [endpoint], namespace },
            minHealthyPerZone: '0',
          },
          service: { id: 'ps-1', host: '127.0.0.1', port: upstream.port },
        }),
      });
      await agent.start();
      const a = agent;
      await waitFor('ps-1 healthy', () => a.view.service('ps-1')?.isHealthy === true, 10_000);
      const layout = keyLayout(namespace);
      await setServiceEnabled(registry, layout, 'ps-1', false, { actor: 'ops', minHealthy: { count: 0 }, drainTimeout: 0 });
      await waitFor('the agent sees the disable', () => a.view.service('ps-1')?.enabled === false, 5000);

      // Corrupted by hand: every path now reads it the same way.
      await registry.put(layout.adminOf('ps-1'), '{"enabled": "no"');
      await waitFor('the agent reads it as no intent', () => a.view.service('ps-1')?.enabled === true, 5000);
      const shown = json<{ service: { enabled: boolean } }>(await cli(['services', 'show', 'ps-1', '--json']));
      expect(shown.service.enabled).to.equal(true);

      // An enable repairs it: the key goes, and the trail says what was replaced.
      const enabled = await cli(['services', 'enable', 'ps-1']);
      expect(enabled.code, enabled.stderr).to.equal(0);
      expect(enabled.stdout).to.match(/ps-1 enabled: its stored intent could not be read \(not JSON\) and was replaced/);
      expect(await registry.get(layout.adminOf('ps-1'))).to.equal(null);
      const [repair] = await listAudit(registry, layout);
      expect(repair).to.include({ action: 'enable', changed: false, repaired: 'not JSON' });

      // A disable over a corrupted intent writes a good one.
      await registry.put(layout.adminOf('ps-1'), JSON.stringify({ enabled: false, at: 9e15 }));
      const disabled = await cli(['services', 'disable', 'ps-1', '--drain-timeout', '0', '--json']);
      expect(disabled.code, disabled.stderr).to.equal(0);
      expect(json<{ changed: boolean; repaired?: string }>(disabled)).to.include({ changed: true });
      await waitFor('the agent sees the repaired disable', () => a.view.service('ps-1')?.enabled === false, 5000);
      const [second] = await listAudit(registry, layout);
      expect(second?.repaired).to.match(/^at: expected a time/);

      // Through the agent's API: the answer says what it repaired.
      await registry.put(layout.adminOf('ps-1'), '[]');
      const api = await startApiServer(a, { host: '127.0.0.1', port: 0, auth: { keys: [{ name: 'ops', role: 'operator', key: 'registry-data-key' }], readAccess: 'open' } });
      try {
        const res = await fetch(`${api.url}/service-discovery/services/ps-1/enable`, { method: 'POST', headers: { authorization: 'Bearer registry-data-key' } });
        expect(res.status).to.equal(200);
        expect(await res.json()).to.include({ changed: false, repaired: 'value: expected an object, got an array' });
      } finally {
        await api.close();
      }
    });
  });
});
