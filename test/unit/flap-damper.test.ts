import { expect } from 'chai';
import { FlapDamper, flapReason } from '../../src/agent/flap-damper.js';
import { detectionBudget, describeBudget } from '../../src/cluster/detection-budget.js';
import { describeFlapping, describeInstanceMaintenance, describeIntent, formatSeconds } from '../../src/cluster/explain.js';
import { parseHealthState, parseServiceRecord } from '../../src/cluster/codec.js';
import type { HealthCheckSettings } from '../../src/types.js';

const T0 = 1_700_000_000_000;

function damper(threshold = 4, windowMs = 60_000, holdDownMs = 30_000): FlapDamper {
  return new FlapDamper({ threshold, windowMs, holdDownMs });
}

/** Alternating healthy/unhealthy changes, `gap` ms apart from `from`; returns the time of the last. */
function flap(d: FlapDamper, n: number, from: number, gap = 5000): number {
  let at = from;
  for (let i = 0; i < n; i++) {
    at = from + i * gap;
    d.change(i % 2 === 0 ? 'healthy' : 'unhealthy', i % 2 === 0 ? 'unhealthy' : 'healthy', at);
  }
  return at;
}

describe('FlapDamper', () => {
  it('holds the instance unhealthy at the threshold-th change within the window, not before', () => {
    const d = damper(4);
    flap(d, 3, T0);
    expect(d.held).to.equal(false);
    expect(d.apply('healthy')).to.equal('healthy');
    const o = d.change('unhealthy', 'healthy', T0 + 15_000);
    expect(o.entered).to.equal(true);
    expect(d.apply('healthy')).to.equal('unhealthy');
    expect(d.apply('starting')).to.equal('unhealthy');
    expect(d.apply('draining')).to.equal('draining');
    expect(d.info()).to.deep.equal({
      since: T0 + 15_000,
      until: T0 + 45_000,
      lastChange: T0 + 15_000,
      transitions: 4,
      window: 60,
      holdDown: 30,
      threshold: 4,
    });
  });

  it('changes spread wider than the window never trigger a hold', () => {
    const d = damper(4, 60_000);
    flap(d, 20, T0, 21_000); // at most 3 changes in any 60 s
    expect(d.held).to.equal(false);
  });

  it('does not count starting -> healthy, draining or stopping', () => {
    const d = damper(2);
    d.change('starting', 'healthy', T0);
    d.change('starting', 'unhealthy', T0 + 1);
    d.change('healthy', 'draining', T0 + 2);
    d.change('draining', 'stopped', T0 + 3);
    expect(d.held).to.equal(false);
  });

  it('each change while held restarts the stability clock; released after hold-down without a change', () => {
    const d = damper(4, 60_000, 30_000);
    const entered = flap(d, 4, T0);
    expect(d.held).to.equal(true);
    expect(d.evaluate(entered + 29_999).released).to.equal(false);
    const again = entered + 20_000;
    expect(d.change('healthy', 'unhealthy', again).updated).to.equal(true);
    expect(d.info()).to.include({ transitions: 5, lastChange: again, until: again + 30_000 });
    expect(d.evaluate(entered + 30_000).released).to.equal(false);
    expect(d.evaluate(again + 30_000).released).to.equal(true);
    expect(d.held).to.equal(false);
    expect(d.apply('healthy')).to.equal('healthy');
    // The count starts afresh: three more changes are not enough.
    flap(d, 3, again + 31_000);
    expect(d.held).to.equal(false);
  });

  it('threshold 0 is off', () => {
    const d = damper(0);
    flap(d, 50, T0, 10);
    expect(d.held).to.equal(false);
    expect(d.enabled).to.equal(false);
    expect(d.restore({ since: T0, until: T0 + 1, lastChange: T0, transitions: 5, window: 60, holdDown: 30, threshold: 4 }, T0)).to.equal(false);
  });

  it('restores a persisted hold that has not run out, with the current hold-down', () => {
    const source = damper(4, 60_000, 30_000);
    const last = flap(source, 4, T0);
    const persisted = JSON.parse(JSON.stringify({ serviceId: 'ps-1', flapping: source.info() })) as unknown;
    const parsed = parseHealthState(JSON.stringify(persisted), 'ps-1');
    if (!parsed.ok) throw new Error(parsed.error);

    const resumed = damper(4, 60_000, 30_000);
    expect(resumed.restore(parsed.value.flapping, last + 10_000)).to.equal(true);
    expect(resumed.apply('healthy')).to.equal('unhealthy');
    expect(resumed.evaluate(last + 29_000).released).to.equal(false);
    expect(resumed.evaluate(last + 30_000).released).to.equal(true);

    const late = damper(4, 60_000, 30_000);
    expect(late.restore(parsed.value.flapping, last + 30_000)).to.equal(false);
    expect(late.held).to.equal(false);
  });

  it('rejects bad parameters and a hold stored under another id', () => {
    expect(() => new FlapDamper({ threshold: -1, windowMs: 1, holdDownMs: 1 })).to.throw(/threshold/);
    expect(() => new FlapDamper({ threshold: 1, windowMs: 0, holdDownMs: 1 })).to.throw(/windowMs/);
    const bad = parseHealthState(JSON.stringify({ serviceId: 'other', flapping: { since: 1, until: 2, lastChange: 1, transitions: 4, window: 60, holdDown: 30, threshold: 4 } }), 'ps-1');
    expect(bad).to.deep.equal({ ok: false, error: 'serviceId "other" does not match its key "ps-1"' });
    expect(parseHealthState('{"serviceId":"ps-1","flapping":{"since":"x"}}', 'ps-1')).to.deep.include({ ok: false });
  });

  it('explains a hold in sentences', () => {
    const d = damper(6, 60_000, 30_000);
    const last = flap(d, 6, T0, 1000);
    const info = d.info()!;
    expect(flapReason(info)).to.equal('held down as flapping: 6 status changes within 1m; released after 30s without a change');
    expect(describeFlapping(info, last + 12_400)).to.equal('held down: 6 changes in 1m, stable for 12s of 30s');
    expect(describeFlapping(info, last + 90_000)).to.equal('held down: 6 changes in 1m, stable for 30s of 30s');
  });
});

describe('detection budget and health sentences', () => {
  const checks: HealthCheckSettings = { interval: 5, timeout: 2, retries: 3, gracePeriod: 60, ttl: 10, flap: { threshold: 4, window: 600, holdDown: 300 } };

  it('worst cases: death = TTL, sick = interval x retries + timeout, recovery = interval + timeout', () => {
    expect(detectionBudget(checks)).to.deep.equal({ death: 10, sick: 17, recovery: 7, gracePeriod: 60, holdDown: 300 });
    expect(detectionBudget({ ...checks, interval: 0.5, timeout: 0.25, retries: 1, flap: { threshold: 0, window: 600, holdDown: 300 } })).to.deep.include({
      sick: 0.75,
      recovery: 0.75,
      holdDown: null,
    });
  });

  it('describes the budget line by line', () => {
    expect(describeBudget(checks)).to.deep.equal([
      'agent death noticed within 10s (lease TTL)',
      'sick upstream noticed within 17s (5s interval × 3 retries + 2s timeout)',
      'recovery noticed within 7s (one success); failures ignored for 1m after start',
      'flap damping: 4 changes within 10m hold it unhealthy until 5m without a change',
    ]);
    expect(describeBudget({ ...checks, interval: 1, timeout: 0.5, retries: 1, gracePeriod: 0, flap: { threshold: 0, window: 1, holdDown: 1 } })).to.deep.equal([
      'agent death noticed within 10s (lease TTL)',
      'sick upstream noticed within 1.5s (1s interval × 1 retry + 500ms timeout)',
      'recovery noticed within 1.5s (one success)',
      'flap damping off',
    ]);
  });

  it('formats durations and intents', () => {
    expect([formatSeconds(500), formatSeconds(1000), formatSeconds(1500), formatSeconds(60_000), formatSeconds(90_000), formatSeconds(0)]).to.deep.equal([
      '500ms',
      '1s',
      '1.5s',
      '1m',
      '90s',
      '0s',
    ]);
    expect(describeIntent({ enabled: false, actor: 'ci-key', reason: 'deploy 42' })).to.equal('disabled by ci-key: deploy 42');
    expect(describeIntent({ enabled: true, actor: 'alice' })).to.equal('enabled by alice');
    expect(describeIntent({ enabled: false, actor: 'unknown', expiresAt: Date.UTC(2030, 0, 1) })).to.equal('disabled (until 2030-01-01T00:00:00.000Z)');
    expect(describeInstanceMaintenance({ desired: 'maintenance', actual: 'maintenance', inSync: true, since: 0 })).to.equal('instance in maintenance, as asked');
    expect(describeInstanceMaintenance({ desired: 'maintenance', actual: 'serving', inSync: false, lastError: 'HTTP 500', since: 0 })).to.equal(
      'mismatch: asked maintenance, instance serving (HTTP 500); retrying',
    );
  });

  it('records carry checks, flapping and instanceMaintenance through the codec; garbage there is named', () => {
    const base = { id: 'a', name: 'n', host: 'h', port: 1, status: 'unhealthy' };
    const flapping = { since: 1, until: 2, lastChange: 1, transitions: 4, window: 60, holdDown: 30, threshold: 4 };
    const good = parseServiceRecord(
      JSON.stringify({ ...base, health: { status: 'unhealthy', flapping }, checks, instanceMaintenance: { desired: 'maintenance', actual: 'unknown', inSync: false, lastError: 'x', since: 5 } }),
      'a',
    );
    if (!good.ok) throw new Error(good.error);
    expect(good.value.health.flapping).to.deep.equal(flapping);
    expect(good.value.checks).to.deep.equal(checks);
    expect(good.value.instanceMaintenance).to.deep.include({ desired: 'maintenance', inSync: false });
    expect(parseServiceRecord(JSON.stringify({ ...base, checks: { ...checks, retries: 0 } }), 'a')).to.deep.equal({
      ok: false,
      error: 'checks.retries: expected an integer 1-1000000000, got 0',
    });
  });
});
