import { expect } from 'chai';
import { checkCapacity, describeShortfall, parseMinHealthy, requiredHealthy, type MinHealthy } from '../../src/cluster/capacity.js';
import { adminStateOf, withIntent } from '../../src/cluster/codec.js';
import { parseDuration } from '../../src/util/duration.js';
import { timeLeft } from '../../src/cli/render.js';
import type { AdminIntent, ServiceRecord, ServiceStatus } from '../../src/types.js';
import { sampleRecord } from '../helpers/records.js';

function rec(id: string, region: string, zone: string, status: ServiceStatus = 'healthy', enabled = true): ServiceRecord {
  return sampleRecord(id, { region, zone, status, enabled });
}

describe('capacity guard maths', () => {
  const one: MinHealthy = { count: 1 };

  it('parses counts and percentages, and rejects anything else naming the setting', () => {
    expect(parseMinHealthy('1')).to.deep.equal({ count: 1 });
    expect(parseMinHealthy(' 0 ')).to.deep.equal({ count: 0 });
    expect(parseMinHealthy('50%')).to.deep.equal({ percent: 50 });
    expect(parseMinHealthy('100%')).to.deep.equal({ percent: 100 });
    for (const bad of ['', '-1', '1.5', '101%', 'one', '%', '5 %']) {
      expect(() => parseMinHealthy(bad), bad).to.throw(RangeError, /min-healthy-per-zone: expected a whole number/);
    }
  });

  it('rounds a percentage up: 50% of 3 is 2, 34% of 3 is 2, 33% of 3 is 1, 0% is 0', () => {
    expect(requiredHealthy({ percent: 50 }, 3)).to.equal(2);
    expect(requiredHealthy({ percent: 34 }, 3)).to.equal(2);
    expect(requiredHealthy({ percent: 33 }, 3)).to.equal(1);
    expect(requiredHealthy({ percent: 0 }, 3)).to.equal(0);
    expect(requiredHealthy({ percent: 100 }, 4)).to.equal(4);
    expect(requiredHealthy({ count: 2 }, 10)).to.equal(2);
  });

  it('refuses the last healthy enabled instance of a zone, naming the zone', () => {
    const services = [rec('a', 'us-east-1', 'us-east-1a'), rec('b', 'us-east-1', 'us-east-1b'), rec('c', 'us-east-1', 'us-east-1b')];
    const v = checkCapacity(services, 'a', one);
    expect(v.ok).to.equal(false);
    expect(v.shortfalls).to.have.length(1);
    expect(v.shortfalls[0]).to.include({ scope: 'zone', name: 'us-east-1a', after: 0, minimum: 1, total: 1 });
    expect(describeShortfall(v.shortfalls[0]!)).to.equal('zone us-east-1a of region us-east-1 would have 0 healthy enabled instances (minimum 1)');
    // The other zone keeps one.
    expect(checkCapacity(services, 'b', one).ok).to.equal(true);
  });

  it('counts only healthy enabled instances: an unhealthy or disabled peer is no capacity', () => {
    const services = [rec('a', 'r', 'z'), rec('b', 'r', 'z', 'unhealthy'), rec('c', 'r', 'z', 'healthy', false), rec('d', 'r', 'z', 'starting')];
    expect(checkCapacity(services, 'a', one).ok).to.equal(false);
    expect(checkCapacity([...services, rec('e', 'r', 'z')], 'a', one).ok).to.equal(true);
  });

  it('allows disabling what carries no traffic (unhealthy, disabled, unknown id) whatever the minimum', () => {
    const services = [rec('a', 'r', 'z', 'unhealthy'), rec('b', 'r', 'z', 'healthy', false)];
    for (const id of ['a', 'b', 'nope']) {
      const v = checkCapacity(services, id, { count: 5 });
      expect(v, id).to.include({ ok: true, reducesCapacity: false });
    }
  });

  it('checks the region too: a percentage of the region can refuse where the zone would not', () => {
    const services = [rec('a', 'r', 'z1'), rec('b', 'r', 'z1'), rec('c', 'r', 'z2', 'unhealthy'), rec('d', 'r', 'z2', 'unhealthy')];
    // Zone z1: 2 instances, 50% = 1, after = 1: fine. Region: 4 instances, 50% = 2, after = 1: refused.
    const v = checkCapacity(services, 'a', { percent: 50 });
    expect(v.ok).to.equal(false);
    expect(v.shortfalls.map((s) => s.scope)).to.deep.equal(['region']);
    expect(v.shortfalls[0]).to.include({ name: 'r', after: 1, minimum: 2, total: 4 });
  });

  it('keeps zones of different regions apart, and a minimum of 0 never refuses', () => {
    const services = [rec('a', 'us', 'a'), rec('b', 'eu', 'a')];
    expect(checkCapacity(services, 'a', one).ok).to.equal(false);
    expect(checkCapacity(services, 'a', { count: 0 }).ok).to.equal(true);
    expect(checkCapacity(services, 'a', { percent: 0 }).ok).to.equal(true);
  });
});

describe('drain and expiry as readers see them', () => {
  const base: AdminIntent = { enabled: false, reason: 'deploy', actor: 'cli:me', at: 1000 };

  it('a disable drains until its deadline or its recorded end, then is disabled; a lapsed one is enabled', () => {
    const draining: AdminIntent = { ...base, drainUntil: 5000 };
    expect(adminStateOf(undefined, 2000)).to.equal('enabled');
    expect(adminStateOf(draining, 2000)).to.equal('draining');
    expect(adminStateOf(draining, 5000)).to.equal('disabled');
    expect(adminStateOf({ ...draining, drainedAt: 3000, drainEnd: 'idle' }, 3001)).to.equal('disabled');
    expect(adminStateOf(base, 2000)).to.equal('disabled');
    expect(adminStateOf({ ...draining, expiresAt: 4000 }, 4000)).to.equal('enabled');
    expect(adminStateOf({ enabled: true, actor: 'x', at: 1 }, 2000)).to.equal('enabled');
  });

  it('withIntent fills adminState, drainUntil and disabledUntil, and isHealthy is false from the first moment', () => {
    const r = rec('a', 'r', 'z');
    const d = withIntent(r, { ...base, drainUntil: 5000, expiresAt: 60_000 }, 2000);
    expect(d).to.include({ enabled: false, isHealthy: false, adminState: 'draining', drainUntil: 5000, disabledUntil: 60_000, disabledReason: 'deploy' });
    const later = withIntent(r, { ...base, drainUntil: 5000, expiresAt: 60_000 }, 6000);
    expect(later).to.include({ adminState: 'disabled', disabledUntil: 60_000 });
    expect(later).to.not.have.property('drainUntil');
    const lapsed = withIntent(r, { ...base, expiresAt: 60_000 }, 60_000);
    expect(lapsed).to.include({ enabled: true, isHealthy: true, adminState: 'enabled' });
    expect(lapsed).to.not.have.property('disabledUntil');
  });

  it('durations for --for and --drain-timeout, and the time left shown', () => {
    expect(parseDuration('30m')).to.equal(1800);
    expect(parseDuration('1.5h')).to.equal(5400);
    expect(parseDuration('0')).to.equal(0);
    expect(parseDuration('1h30m')).to.equal(5400);
    expect(() => parseDuration('30m1h')).to.throw(/invalid duration/);
    expect(() => parseDuration('-5s')).to.throw(/invalid duration/);
    expect(timeLeft(10_000, 0)).to.equal('10s');
    expect(timeLeft(90_500, 0)).to.equal('1m 31s');
    expect(timeLeft(3_600_000, 0)).to.equal('1h');
    expect(timeLeft(0, 5000)).to.equal('0s');
  });
});
