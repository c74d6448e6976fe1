/**
 * Operator intent and its audit trail (src/cluster/admin.ts), directly on a registry: what a repeated
 * action with a new reason stores, and how the actor falls back to the caller's default.
 */
import { expect } from 'chai';
import { listAudit, setServiceEnabled, withDefaultOptions } from '../../src/cluster/admin.js';
import { parseAdminIntent } from '../../src/cluster/codec.js';
import { keyLayout } from '../../src/cluster/keys.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import type { AdminIntent } from '../../src/types.js';

describe('operator intent (setServiceEnabled)', function () {
  const layout = keyLayout('admin-test');
  let registry: MemoryRegistry;

  beforeEach(async function () {
    registry = new MemoryRegistry();
    // An intent alone makes the id known (a stopped service can still be disabled).
    await registry.put(layout.adminOf('svc'), JSON.stringify({ enabled: true, actor: 'seed', at: 1 }));
  });

  afterEach(async function () {
    await registry.close();
  });

  const stored = async (): Promise<{ intent: AdminIntent; modRevision: number }> => {
    const kv = (await registry.get(layout.adminOf('svc')))!;
    const parsed = parseAdminIntent(kv.value);
    if (!parsed.ok) throw new Error(parsed.error);
    return { intent: parsed.value, modRevision: kv.modRevision };
  };

  it('a repeated disable with a new reason is changed:false but stores the new reason, actor and time', async function () {
    const first = await setServiceEnabled(registry, layout, 'svc', false, { reason: 'deploy 1.4', actor: 'alice', expiresAt: Date.now() + 60_000 });
    expect(first.changed).to.equal(true);
    const before = await stored();

    const again = await setServiceEnabled(registry, layout, 'svc', false, { reason: 'deploy 1.5', actor: 'bob' });
    expect(again.changed).to.equal(false);
    expect(again.intent).to.include({ enabled: false, reason: 'deploy 1.5', actor: 'bob' });
    const after = await stored();
    expect(after.intent).to.include({ enabled: false, reason: 'deploy 1.5', actor: 'bob', expiresAt: before.intent.expiresAt });
    expect(after.intent.at).to.be.at.least(before.intent.at);
    expect(again.audit).to.include({ changed: false, reasonUpdated: true, previousReason: 'deploy 1.4', reason: 'deploy 1.5', actor: 'bob' });

    // Same reason, or none: nothing is rewritten, the audit entry is plain.
    const same = await setServiceEnabled(registry, layout, 'svc', false, { reason: 'deploy 1.5', actor: 'carol' });
    const none = await setServiceEnabled(registry, layout, 'svc', false, { actor: 'carol' });
    expect([same.changed, none.changed]).to.deep.equal([false, false]);
    expect(same.audit).to.not.have.property('reasonUpdated');
    expect(none.audit).to.not.have.property('reasonUpdated');
    expect((await stored()).modRevision).to.equal(after.modRevision);
    expect((await stored()).intent).to.include({ reason: 'deploy 1.5', actor: 'bob' });

    expect([same.audited, none.audited]).to.deep.equal([false, false]);

    // The audit trail reads the new fields back; the two no-ops left no entry.
    const trail = await listAudit(registry, layout, { serviceId: 'svc' });
    expect(trail.map((e) => [e.changed, e.reason, e.reasonUpdated, e.previousReason])).to.deep.equal([
      [false, 'deploy 1.5', true, 'deploy 1.4'],
      [true, 'deploy 1.4', undefined, undefined],
    ]);
  });

  it('treats options set to undefined as absent, so the default actor holds', async function () {
    const res = await setServiceEnabled(registry, layout, 'svc', false, { reason: 'x', actor: undefined, source: undefined }, { actor: 'agent:a', source: 'api' });
    expect(res.audit).to.include({ actor: 'agent:a', source: 'api' });
    expect(res.intent.actor).to.equal('agent:a');
    const explicit = await setServiceEnabled(registry, layout, 'svc', true, { actor: 'ops' }, { actor: 'agent:a' });
    expect(explicit.audit.actor).to.equal('ops');
    const nobody = await setServiceEnabled(registry, layout, 'svc', false, { actor: undefined });
    expect(nobody.audit.actor).to.equal('unknown');
    expect(withDefaultOptions({ reason: undefined, actor: undefined, expiresAt: 5 }, { actor: 'd', reason: 'r' })).to.deep.equal({
      reason: 'r',
      actor: 'd',
      expiresAt: 5,
    });
  });
});
