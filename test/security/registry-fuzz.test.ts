import { expect } from 'chai';
import fc from 'fast-check';
import { Box } from 'ink';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { computeTopology, serviceList } from '../../src/cluster/topology.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { ClusterState } from '../../src/cluster/state.js';
import { renderAuditTable, renderEvent, renderServiceDetails, renderServiceList, renderTopology } from '../../src/cli/views.js';
import { listAudit } from '../../src/cluster/admin.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import type { KeyValue } from '../../src/registry/types.js';
import type { ClusterEvent } from '../../src/types.js';
import { DetailPane } from '../../src/ui/components/detail-pane.js';
import { EventLog } from '../../src/ui/components/event-log.js';
import { ServicesTable } from '../../src/ui/components/services-table.js';
import { ColorScope } from '../../src/ui/components/theme.js';
import { DashboardState } from '../../src/ui/dashboard-state.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { ensureBuilt, runCli } from '../cli/fixtures.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { putUnderLease, sampleRecord } from '../helpers/records.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { connection } from '../ui/fixtures.js';
import { rawIn } from '../helpers/terminal.js';

/**
 * Property-based: whatever bytes sit under the namespace, no reader throws, every human view shows
 * them escaped, and a CLI run against them exits cleanly with no stack trace.
 */


/** Strings that mean trouble: controls, bidi overrides, lone surrogates, long runs. */
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\u001b[2J', '\u001b]0;title\u0007', '\u009b31m', '\u202e', '\u2066', '\r', '\u0000', '\ud800', '__proto__', 'constructor'),
  fc.string({ unit: 'grapheme', maxLength: 10 }).map((s) => s.repeat(50)),
);
const hostileNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(9e15, -1, 2 ** 31, 2 ** 53, Number.MAX_VALUE, 1e308, 0.5, -0),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  hostileNumber,
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileString, { maxLength: 5 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 3 }),
);

const FIELDS = ['id', 'name', 'host', 'port', 'version', 'tags', 'region', 'zone', 'status', 'role', 'enabled', 'health', 'registeredAt', 'updatedAt', 'healthUrl', 'apiUrl', 'metadata', 'checks', 'instanceMaintenance', 'drainUntil'];
const HEALTH_FIELDS = ['status', 'responseTime', 'lastCheck', 'consecutiveFailures', 'consecutiveSuccesses', 'message', 'flapping'];

/** A stored record for `id`: a good one with some fields (or health fields) replaced by hostile values, or plain garbage. */
const storedRecord = (id: string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.dictionary(fc.constantFrom(...FIELDS), hostileValue, { maxKeys: 3 }), fc.dictionary(fc.constantFrom(...HEALTH_FIELDS), hostileValue, { maxKeys: 2 })).map(([fields, health]) => {
      const { isHealthy: _derived, ...base } = sampleRecord(id, { updatedAt: Date.now() });
      return JSON.stringify({ ...base, ...fields, health: { ...base.health, ...health }, id: fields.id === undefined ? id : fields.id });
    }) },
    { weight: 2, arbitrary: fc.tuple(hostileString, hostileString, hostileString).map(([name, region, message]) => {
      const { isHealthy: _derived, ...base } = sampleRecord(id, { name, region, zone: message, tags: [name], metadata: { [name]: message } });
      return JSON.stringify({ ...base, health: { ...base.health, message } });
    }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null') },
  );

const storedIntent = fc.oneof(
  fc.record({ enabled: fc.boolean(), reason: hostileString, actor: hostileString, at: fc.oneof(fc.constant(Date.now()), hostileNumber), expiresAt: fc.option(hostileNumber, { nil: undefined }) }).map((v) => JSON.stringify(v)),
  fc.string({ unit: 'binary', maxLength: 80 }),
);

const storedAudit = fc
  .record({ id: hostileString, at: fc.oneof(fc.constant(Date.now()), hostileNumber), actor: hostileString, action: fc.constantFrom('enable', 'disable', 'x'), serviceId: hostileString, reason: hostileString, changed: fc.boolean(), repaired: fc.option(hostileString, { nil: undefined }) })
  .map((v) => JSON.stringify(v));

describe('fuzz: hostile registry data', function () {
  this.timeout(120_000);

  it('every reader takes any value without throwing, and every human view escapes it', async () => {
    const layout = keyLayout('fuzz');
    let revision = 0;
    const kv = (key: string, value: string, lease = '7'): KeyValue => ({ key, value, createRevision: ++revision, modRevision: revision, lease });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.constantFrom('service', 'admin', 'audit', 'election')), { minLength: 1, maxLength: 6 }).chain((slots) =>
          fc.tuple(
            ...slots.map(([id, kind]) =>
              (kind === 'service' ? storedRecord(id) : kind === 'admin' ? storedIntent : kind === 'audit' ? storedAudit : hostileString).map((value) => ({ id, kind, value })),
            ),
          ),
        ),
        async (entries) => {
          const state = new ClusterState(layout, () => undefined);
          const events: ClusterEvent[] = [];
          const audit = new MemoryRegistry();
          for (const { id, kind, value } of entries) {
            const key = kind === 'service' ? layout.service(id) : kind === 'admin' ? layout.adminOf(id) : kind === 'audit' ? `${layout.audit}${id}-${revision}` : `${layout.root}/election/${id}`;
            if (kind === 'audit') await audit.put(key, value);
            events.push(...state.put(kv(key, value)));
          }
          const services = state.services();
          const entriesRead = await listAudit(audit, layout);
          await audit.close();
          const texts = [
            renderServiceList(serviceList(services)),
            renderTopology(computeTopology(services, state.leaderId()), services),
            renderAuditTable(entriesRead),
            ...events.map(renderEvent),
            ...services.map((service) =>
              renderServiceDetails({ service, health: { serviceId: service.id, status: service.status, health: service.health, history: [] }, intent: state.intent(service.id) ?? null, audit: entriesRead }),
            ),
          ];
          for (const text of texts) expect(rawIn(text), JSON.stringify(text)).to.equal(null);

          // The dashboard: its state escapes data on the way in; the panes draw nothing raw.
          const dash = new DashboardState({ connection: connection() });
          dash.replaceAll(services, state.leaderId());
          for (const e of events) dash.applyEvent(e);
          dash.setViewport(8);
          const frames: string[] = [];
          for (const element of [
            createElement(ServicesTable, { state: dash, width: 100, rows: 8, now: Date.now() }),
            createElement(EventLog, { state: dash, width: 100, rows: 6 }),
          ]) {
            const app = render(createElement(ColorScope, { enabled: false, children: createElement(Box, { flexDirection: 'column' }, element) }));
            frames.push(app.lastFrame() ?? '');
            app.unmount();
          }
          if (services[0]) {
            dash.select(services[0].id);
            dash.press('', { return: true }, Date.now());
            const app = render(createElement(ColorScope, { enabled: false, children: createElement(DetailPane, { state: dash, width: 100, rows: 20, now: Date.now() }) }));
            frames.push(app.lastFrame() ?? '');
            app.unmount();
          }
          for (const f of frames) expect(rawIn(f), JSON.stringify(f)).to.equal(null);
          // Nothing a record held reached a shared prototype (a region named __proto__ once did).
          expect(Object.keys(Object.prototype)).to.deep.equal([]);
        },
      ),
      { numRuns: 150, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) },
    );
  });

  describe('through the CLI, on etcd', () => {
    let endpoint: string;
    before(async () => {
      ensureBuilt();
      endpoint = (await sharedEtcd()).endpoint;
    });

    it('read commands exit 0 over hostile records, intents and audit entries: no stack trace, nothing raw', async () => {
      const samples = fc.sample(fc.tuple(storedRecord('f-1'), storedRecord('f-2'), storedIntent, storedAudit, storedAudit), { numRuns: 4, seed: Date.now() % 100_000 });
      for (const [r1, r2, intent, a1, a2] of samples) {
        const namespace = uniqueNamespace('fuzz');
        const layout = keyLayout(namespace);
        const registry = new EtcdRegistry({ endpoints: [endpoint], callTimeoutMs: 3000 });
        try {
          await putUnderLease(registry, layout.service('f-1'), r1);
          await putUnderLease(registry, layout.service('f-2'), r2);
          await registry.put(layout.adminOf('f-1'), intent);
          await registry.put(`${layout.audit}0000000000001-aaaa`, a1);
          await registry.put(`${layout.audit}0000000000002-aaaa`, a2);
        } finally {
          await registry.close();
        }
        for (const args of [['services', 'list'], ['topology'], ['audit'], ['status'], ['services', 'show', 'f-1'], ['services', 'list', '--json'], ['doctor']]) {
          const res = await runCli([...args, '--endpoints', endpoint, '--namespace', namespace]);
          const all = `${res.stdout}${res.stderr}`;
          const what = `${args.join(' ')} over ${JSON.stringify([r1, intent, a1])}:\n${all}`;
          // show answers 3 (not found) for a record that was skipped, doctor 1 for skipped entries.
          expect(res.code, what).to.be.oneOf(args[1] === 'show' ? [0, 3] : args[0] === 'doctor' ? [0, 1] : [0]);
          expect(all, what).not.to.match(/\n\s+at .*\(.*:\d+:\d+\)|TypeError|RangeError|Invalid time value/);
          expect(rawIn(all), what).to.equal(null);
          if (args.includes('--json')) expect(() => JSON.parse(res.stdout), what).not.to.throw();
        }
      }
    });
  });
});
