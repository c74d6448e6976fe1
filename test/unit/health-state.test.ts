import { expect } from 'chai';
import {
  DEFAULT_HEALTH_HISTORY_SIZE,
  HealthStateMachine,
  describeFailure,
  type HealthStateOptions,
  type ProbeResult,
} from '../../src/agent/health-state.js';

const T0 = 1_700_000_000_000;

function machine(overrides: Partial<HealthStateOptions> = {}): HealthStateMachine {
  return new HealthStateMachine({ retries: 3, gracePeriodMs: 0, startedAt: T0, ...overrides });
}

function ok(at: number, latencyMs = 5, httpStatus = 200): ProbeResult {
  return { at, latencyMs, ok: true, httpStatus };
}

function fail(at: number, detail: number | string = 503, latencyMs = 5): ProbeResult {
  return typeof detail === 'number'
    ? { at, latencyMs, ok: false, httpStatus: detail }
    : { at, latencyMs, ok: false, error: detail };
}

/** Feeds n failures one second apart starting at `from`; returns the time of the last one. */
function failN(m: HealthStateMachine, n: number, from: number): number {
  let at = from;
  for (let i = 0; i < n; i++) {
    at = from + i * 1000;
    m.record(fail(at));
  }
  return at;
}

describe('HealthStateMachine', () => {
  describe('construction', () => {
    it('starts in `starting` with empty health', () => {
      const m = machine();
      expect(m.status).to.equal('starting');
      expect(m.statusSince).to.equal(T0);
      expect(m.snapshot()).to.deep.equal({
        status: 'starting',
        responseTime: null,
        lastCheck: null,
        consecutiveFailures: 0,
        consecutiveSuccesses: 0,
      });
      expect(m.history()).to.deep.equal([]);
      expect(m.historySize).to.equal(DEFAULT_HEALTH_HISTORY_SIZE);
    });

    it('rejects invalid parameters', () => {
      expect(() => machine({ retries: 0 })).to.throw(RangeError, /retries/);
      expect(() => machine({ retries: 1.5 })).to.throw(RangeError, /retries/);
      expect(() => machine({ gracePeriodMs: -1 })).to.throw(RangeError, /gracePeriodMs/);
      expect(() => machine({ gracePeriodMs: Number.NaN })).to.throw(RangeError, /gracePeriodMs/);
      expect(() => machine({ startedAt: Number.POSITIVE_INFINITY })).to.throw(RangeError, /startedAt/);
      expect(() => machine({ historySize: -1 })).to.throw(RangeError, /historySize/);
    });
  });

  describe('success', () => {
    it('turns starting healthy on the first success', () => {
      const m = machine();
      const t = m.record(ok(T0 + 10, 7));
      expect(t).to.deep.equal({
        changed: true,
        previous: 'starting',
        status: 'healthy',
        reason: 'first check succeeded',
        at: T0 + 10,
        ignored: false,
      });
      expect(m.snapshot()).to.deep.equal({
        status: 'healthy',
        responseTime: 7,
        lastCheck: T0 + 10,
        consecutiveFailures: 0,
        consecutiveSuccesses: 1,
        message: 'first check succeeded',
      });
      expect(m.statusSince).to.equal(T0 + 10);
    });

    it('turns starting healthy within the grace period, reporting earlier failures', () => {
      const m = machine({ gracePeriodMs: 60_000 });
      m.record(fail(T0 + 1000));
      m.record(fail(T0 + 2000));
      const t = m.record(ok(T0 + 3000));
      expect(t.changed).to.equal(true);
      expect(t.status).to.equal('healthy');
      expect(t.reason).to.equal('check succeeded after 2 failures');
    });

    it('keeps healthy healthy and counts successes', () => {
      const m = machine();
      m.record(ok(T0 + 1));
      const t = m.record(ok(T0 + 2));
      expect(t).to.include({ changed: false, previous: 'healthy', status: 'healthy', reason: 'check succeeded' });
      expect(m.snapshot().consecutiveSuccesses).to.equal(2);
    });

    it('resets consecutive failures without a status change below the threshold', () => {
      const m = machine();
      m.record(ok(T0 + 1));
      m.record(fail(T0 + 2));
      m.record(fail(T0 + 3));
      const t = m.record(ok(T0 + 4));
      expect(t).to.include({ changed: false, status: 'healthy', reason: 'check succeeded after 2 failures' });
      expect(m.snapshot()).to.include({ consecutiveFailures: 0, consecutiveSuccesses: 1 });
    });
  });

  describe('retries from healthy', () => {
    for (const retries of [1, 2, 3, 5]) {
      it(`retries=${retries}: stays healthy for ${retries - 1} failures, unhealthy on failure #${retries}`, () => {
        const m = machine({ retries });
        m.record(ok(T0));
        for (let i = 1; i < retries; i++) {
          const t = m.record(fail(T0 + i));
          expect(t.changed, `failure #${i}`).to.equal(false);
          expect(t.status).to.equal('healthy');
          expect(m.snapshot().consecutiveFailures).to.equal(i);
        }
        const t = m.record(fail(T0 + retries));
        expect(t).to.include({ changed: true, previous: 'healthy', status: 'unhealthy' });
        expect(m.snapshot().consecutiveFailures).to.equal(retries);
      });
    }

    it('explains the failure streak', () => {
      const m = machine({ retries: 2 });
      m.record(ok(T0));
      const first = m.record(fail(T0 + 1));
      expect(first.reason).to.equal('1 consecutive HTTP 503 answer, 2 needed to mark unhealthy');
      const second = m.record(fail(T0 + 2, 'timeout after 1000ms'));
      expect(second.reason).to.equal('2 consecutive failures (last: timeout after 1000ms)');
      expect(m.snapshot().message).to.equal('2 consecutive failures (last: timeout after 1000ms)');
    });

    it('needs the failures to be consecutive: a success in between restarts the count', () => {
      const m = machine({ retries: 3 });
      m.record(ok(T0));
      m.record(fail(T0 + 1));
      m.record(fail(T0 + 2));
      m.record(ok(T0 + 3));
      expect(m.record(fail(T0 + 4)).status).to.equal('healthy');
      expect(m.record(fail(T0 + 5)).status).to.equal('healthy');
      expect(m.record(fail(T0 + 6)).status).to.equal('unhealthy');
    });

    it('ignores the grace period once healthy', () => {
      const m = machine({ retries: 1, gracePeriodMs: 60_000 });
      m.record(ok(T0 + 1000));
      const t = m.record(fail(T0 + 2000));
      expect(t).to.include({ changed: true, status: 'unhealthy' });
    });
  });

  describe('unhealthy', () => {
    it('stays unhealthy on further failures, counting them', () => {
      const m = machine({ retries: 2 });
      m.record(ok(T0));
      failN(m, 2, T0 + 1000);
      const t = m.record(fail(T0 + 5000, 'ECONNREFUSED 127.0.0.1:3001'));
      expect(t).to.include({ changed: false, previous: 'unhealthy', status: 'unhealthy' });
      expect(t.reason).to.equal('3 consecutive failures (last: ECONNREFUSED 127.0.0.1:3001)');
      expect(m.snapshot().consecutiveFailures).to.equal(3);
    });

    it('recovers on a single success', () => {
      const m = machine({ retries: 3 });
      m.record(ok(T0));
      failN(m, 3, T0 + 1000);
      expect(m.status).to.equal('unhealthy');
      const t = m.record(ok(T0 + 10_000));
      expect(t).to.deep.equal({
        changed: true,
        previous: 'unhealthy',
        status: 'healthy',
        reason: 'check succeeded after 3 failures',
        at: T0 + 10_000,
        ignored: false,
      });
      expect(m.snapshot()).to.include({ consecutiveFailures: 0, consecutiveSuccesses: 1 });
      expect(m.snapshot().message).to.equal('check succeeded after 3 failures');
    });

    it('uses the singular for one failure', () => {
      const m = machine({ retries: 1 });
      m.record(ok(T0));
      m.record(fail(T0 + 1));
      expect(m.record(ok(T0 + 2)).reason).to.equal('check succeeded after 1 failure');
    });
  });

  describe('grace period', () => {
    const GRACE = 60_000;

    it('keeps starting for any number of failures within the grace period', () => {
      const m = machine({ retries: 3, gracePeriodMs: GRACE });
      for (let i = 0; i < 10; i++) {
        const t = m.record(fail(T0 + i * 1000));
        expect(t.changed).to.equal(false);
        expect(t.status).to.equal('starting');
      }
      expect(m.snapshot().consecutiveFailures).to.equal(10);
    });

    it('reports the time left in whole seconds, rounded up', () => {
      const m = machine({ retries: 3, gracePeriodMs: GRACE });
      expect(m.record(fail(T0 + 48_000)).reason).to.equal(
        'within grace period (12s left): 1 consecutive HTTP 503 answer',
      );
      expect(m.record(fail(T0 + 48_500)).reason).to.match(/^within grace period \(12s left\)/);
      expect(m.record(fail(T0 + 59_999)).reason).to.match(/^within grace period \(1ms left\)/);
      expect(m.record(fail(T0 + 59_400)).reason).to.match(/^within grace period \(600ms left\)/);
      expect(m.graceRemainingMs(T0 + 59_400)).to.equal(600);
      expect(m.graceRemainingMs(T0 + GRACE + 1)).to.equal(0);
    });

    it('treats the exact end of the grace period as elapsed', () => {
      const m = machine({ retries: 3, gracePeriodMs: GRACE });
      m.record(fail(T0 + GRACE - 2));
      m.record(fail(T0 + GRACE - 1));
      const t = m.record(fail(T0 + GRACE));
      expect(t).to.include({ changed: true, previous: 'starting', status: 'unhealthy' });
      expect(t.reason).to.equal('3 consecutive HTTP 503 answers');
    });

    it('flips on the first failure after the grace period when retries were reached during it', () => {
      const m = machine({ retries: 3, gracePeriodMs: GRACE });
      failN(m, 5, T0 + 1000);
      expect(m.status).to.equal('starting');
      const t = m.record(fail(T0 + GRACE + 1));
      expect(t).to.include({ changed: true, status: 'unhealthy' });
      expect(m.snapshot().consecutiveFailures).to.equal(6);
    });

    it('counts failures made during the grace period towards retries', () => {
      const m = machine({ retries: 3, gracePeriodMs: GRACE });
      m.record(fail(T0 + GRACE - 1000));
      const second = m.record(fail(T0 + GRACE + 1000));
      expect(second).to.include({ changed: false, status: 'starting' });
      expect(second.reason).to.equal('2 consecutive HTTP 503 answers, 3 needed to mark unhealthy');
      expect(m.record(fail(T0 + GRACE + 2000))).to.include({ changed: true, status: 'unhealthy' });
    });

    it('needs retries failures after the grace period when none happened during it', () => {
      const m = machine({ retries: 3, gracePeriodMs: GRACE });
      expect(m.record(fail(T0 + GRACE + 1)).status).to.equal('starting');
      expect(m.record(fail(T0 + GRACE + 2)).status).to.equal('starting');
      expect(m.record(fail(T0 + GRACE + 3)).status).to.equal('unhealthy');
    });

    it('restarts the count when a success interrupts the failures (then rules of healthy apply)', () => {
      const m = machine({ retries: 2, gracePeriodMs: GRACE });
      failN(m, 4, T0);
      expect(m.record(ok(T0 + 30_000)).status).to.equal('healthy');
      expect(m.record(fail(T0 + 31_000)).status).to.equal('healthy');
      expect(m.record(fail(T0 + 32_000)).status).to.equal('unhealthy');
    });

    it('with gracePeriodMs 0, starting behaves like healthy for failures', () => {
      const m = machine({ retries: 2, gracePeriodMs: 0 });
      expect(m.record(fail(T0)).status).to.equal('starting');
      expect(m.record(fail(T0 + 1)).status).to.equal('unhealthy');
    });

    it('retries=1 after the grace period flips on the first failure', () => {
      const m = machine({ retries: 1, gracePeriodMs: GRACE });
      expect(m.record(fail(T0 + GRACE - 1)).status).to.equal('starting');
      expect(m.record(fail(T0 + GRACE)).status).to.equal('unhealthy');
    });

    it('applies to results timed before startedAt as within grace', () => {
      const m = machine({ retries: 1, gracePeriodMs: GRACE });
      expect(m.record(fail(T0 - 5)).status).to.equal('starting');
    });
  });

  describe('drain and stop', () => {
    it('drains from starting, healthy and unhealthy', () => {
      for (const setup of [
        (_m: HealthStateMachine): void => undefined,
        (m: HealthStateMachine): void => void m.record(ok(T0)),
        (m: HealthStateMachine): void => void failN(m, 3, T0),
      ]) {
        const m = machine();
        setup(m);
        const previous = m.status;
        const t = m.drain(T0 + 99_000, 'SIGTERM');
        expect(t).to.deep.equal({ changed: true, previous, status: 'draining', reason: 'SIGTERM', at: T0 + 99_000, ignored: false });
        expect(m.status).to.equal('draining');
        expect(m.statusSince).to.equal(T0 + 99_000);
        expect(m.snapshot().message).to.equal('SIGTERM');
      }
    });

    it('ignores results while draining: no status, counter, lastCheck or history change', () => {
      const m = machine({ retries: 1 });
      m.record(ok(T0, 3));
      m.drain(T0 + 1);
      const before = m.snapshot();
      const historyBefore = m.history();
      for (const r of [fail(T0 + 2), fail(T0 + 3), ok(T0 + 4)]) {
        const t = m.record(r);
        expect(t).to.deep.equal({
          changed: false,
          previous: 'draining',
          status: 'draining',
          reason: 'result ignored: draining',
          at: r.at,
          ignored: true,
        });
      }
      expect(m.snapshot()).to.deep.equal(before);
      expect(m.history()).to.deep.equal(historyBefore);
    });

    it('drain is idempotent and does not leave stopped', () => {
      const m = machine();
      m.drain(T0 + 1);
      expect(m.drain(T0 + 2)).to.include({ changed: false, status: 'draining', reason: 'already draining' });
      expect(m.statusSince).to.equal(T0 + 1);
      m.stop(T0 + 3);
      expect(m.drain(T0 + 4)).to.include({ changed: false, status: 'stopped' });
    });

    it('stops from any status; stopped is final and ignores results', () => {
      for (const setup of [
        (_m: HealthStateMachine): void => undefined,
        (m: HealthStateMachine): void => void m.record(ok(T0)),
        (m: HealthStateMachine): void => void failN(m, 3, T0),
        (m: HealthStateMachine): void => void m.drain(T0),
      ]) {
        const m = machine();
        setup(m);
        const previous = m.status;
        expect(m.stop(T0 + 50)).to.deep.equal({ changed: true, previous, status: 'stopped', reason: 'stopped', at: T0 + 50, ignored: false });
        expect(m.record(ok(T0 + 60))).to.include({ ignored: true, changed: false, status: 'stopped' });
        expect(m.stop(T0 + 70)).to.include({ changed: false, reason: 'already stopped' });
        expect(m.status).to.equal('stopped');
      }
    });
  });

  describe('snapshot message', () => {
    it('is absent before any failure or change', () => {
      expect(machine().snapshot()).to.not.have.property('message');
    });

    it('shows the failure reason while failing, the change reason after a plain success', () => {
      const m = machine({ retries: 3 });
      m.record(ok(T0));
      expect(m.snapshot().message).to.equal('first check succeeded');
      m.record(fail(T0 + 1, 'ECONNRESET'));
      expect(m.snapshot().message).to.equal('1 consecutive failure (ECONNRESET), 3 needed to mark unhealthy');
      m.record(ok(T0 + 2));
      expect(m.snapshot().message).to.equal('first check succeeded');
    });

    it('prefers a later drain over an earlier failure', () => {
      const m = machine({ retries: 3 });
      m.record(fail(T0));
      m.drain(T0, 'shutting down');
      expect(m.snapshot().message).to.equal('shutting down');
    });
  });

  describe('history', () => {
    it('records results newest last, with the change they caused', () => {
      const m = machine({ retries: 1 });
      m.record(ok(T0, 4));
      m.record(ok(T0 + 1, 5));
      m.record(fail(T0 + 2, 'timeout after 1000ms', 1000));
      expect(m.history()).to.deep.equal([
        { at: T0, latencyMs: 4, ok: true, httpStatus: 200, change: { from: 'starting', to: 'healthy', reason: 'first check succeeded' } },
        { at: T0 + 1, latencyMs: 5, ok: true, httpStatus: 200 },
        {
          at: T0 + 2,
          latencyMs: 1000,
          ok: false,
          error: 'timeout after 1000ms',
          change: { from: 'healthy', to: 'unhealthy', reason: '1 consecutive timeout after 1 s' },
        },
      ]);
    });

    it('is bounded to the default size of 50, dropping the oldest', () => {
      const m = machine();
      for (let i = 0; i < 120; i++) m.record(ok(T0 + i, i));
      const h = m.history();
      expect(h).to.have.length(50);
      expect(h[0]?.at).to.equal(T0 + 70);
      expect(h[49]?.at).to.equal(T0 + 119);
      expect(h.map((e) => e.at)).to.deep.equal(Array.from({ length: 50 }, (_, i) => T0 + 70 + i));
    });

    it('honours a custom size, including exactly at and around the wrap', () => {
      const m = machine({ historySize: 3 });
      m.record(ok(T0 + 1));
      m.record(ok(T0 + 2));
      expect(m.history().map((e) => e.at)).to.deep.equal([T0 + 1, T0 + 2]);
      m.record(ok(T0 + 3));
      expect(m.history().map((e) => e.at)).to.deep.equal([T0 + 1, T0 + 2, T0 + 3]);
      m.record(ok(T0 + 4));
      expect(m.history().map((e) => e.at)).to.deep.equal([T0 + 2, T0 + 3, T0 + 4]);
      for (let i = 5; i <= 10; i++) m.record(ok(T0 + i));
      expect(m.history().map((e) => e.at)).to.deep.equal([T0 + 8, T0 + 9, T0 + 10]);
    });

    it('keeps nothing with historySize 0', () => {
      const m = machine({ historySize: 0 });
      m.record(ok(T0));
      expect(m.history()).to.deep.equal([]);
      expect(m.status).to.equal('healthy');
    });

    it('returns copies that callers cannot use to corrupt the machine', () => {
      const m = machine({ retries: 1 });
      m.record(ok(T0));
      const h = m.history();
      h[0]!.ok = false;
      h[0]!.change!.to = 'stopped';
      h.pop();
      expect(m.history()[0]).to.include({ ok: true });
      expect(m.history()[0]?.change?.to).to.equal('healthy');
    });
  });

  describe('describeFailure', () => {
    it('prefers error text, then HTTP status', () => {
      expect(describeFailure(fail(T0, 'ECONNREFUSED 127.0.0.1:1'))).to.equal('ECONNREFUSED 127.0.0.1:1');
      expect(describeFailure(fail(T0, 502))).to.equal('HTTP 502');
      expect(describeFailure({ at: T0, latencyMs: 1, ok: false, httpStatus: 503, error: 'HTTP 503 (degraded)' })).to.equal(
        'HTTP 503 (degraded)',
      );
      expect(describeFailure({ at: T0, latencyMs: 1, ok: false })).to.equal('failed');
    });
  });
});
