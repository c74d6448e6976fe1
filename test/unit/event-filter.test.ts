import { expect } from 'chai';
import { EventFilter, parseSince } from '../../src/cluster/event-filter.js';
import { parseLabelSelector } from '../../src/cluster/selector.js';
import type { ClusterEvent, ServiceRecord } from '../../src/types.js';

const T0 = 1_800_000_000_000;

function rec(id: string, region: string, metadata: Record<string, string>, tags: string[] = []): ServiceRecord {
  return { id, region, metadata, tags } as unknown as ServiceRecord;
}

describe('events: which events concern the selected services (src/cluster/event-filter.ts)', () => {
  const edge = rec('edge-1', 'eu-west-1', { team: 'edge' }, ['canary']);
  const core = rec('core-1', 'us-east-1', { team: 'core' });
  const events: ClusterEvent[] = [
    { type: 'serviceDisabled', serviceId: 'edge-1', timestamp: T0 },
    { type: 'serviceEnabled', serviceId: 'core-1', timestamp: T0 },
    { type: 'serviceJoined', serviceId: 'new-1', service: rec('new-1', 'eu-west-1', { team: 'edge' }), timestamp: T0 },
    { type: 'serviceEnabled', serviceId: 'new-1', timestamp: T0 },
    { type: 'leaderElected', leaderId: 'core-1', previousLeaderId: 'edge-1', timestamp: T0 },
    { type: 'serviceLeft', serviceId: 'new-1', timestamp: T0 },
    { type: 'serviceEnabled', serviceId: 'new-1', timestamp: T0 },
  ];
  const pass = (filter: EventFilter) => events.filter((e) => filter.matches(e)).map((e) => `${e.type}:${'serviceId' in e ? e.serviceId : e.leaderId}`);

  it('by label: records from the listing and from events that carry one; a service that left is forgotten', () => {
    const f = new EventFilter({ labels: parseLabelSelector('team=edge') });
    f.remember([edge, core]);
    expect(pass(f)).to.deep.equal(['serviceDisabled:edge-1', 'serviceJoined:new-1', 'serviceEnabled:new-1', 'serviceLeft:new-1']);
  });

  it('by region and tag; leaderElected is judged by the new leader', () => {
    const region = new EventFilter({ region: 'us-east-1' });
    region.remember([edge, core]);
    expect(pass(region)).to.deep.equal(['serviceEnabled:core-1', 'leaderElected:core-1']);
    const tag = new EventFilter({ tags: ['canary'] });
    tag.remember([edge, core]);
    expect(pass(tag)).to.deep.equal(['serviceDisabled:edge-1']);
  });

  it('by service id, which also matches a leader change away from it; no selection passes everything', () => {
    expect(pass(new EventFilter({ serviceId: 'edge-1' }))).to.deep.equal(['serviceDisabled:edge-1', 'leaderElected:core-1']);
    expect(pass(new EventFilter({}))).to.have.length(events.length);
  });

  it('--since: a duration back from now, or an ISO time; anything else says what it expected', () => {
    expect(parseSince('10m', T0)).to.equal(T0 - 600_000);
    expect(parseSince('90', T0)).to.equal(T0 - 90_000);
    expect(parseSince('2026-12-04T12:00:00Z', T0 + 1e12)).to.equal(Date.parse('2026-12-04T12:00:00Z'));
    expect(() => parseSince('yesterday', T0)).to.throw(/^expected a duration back from now \(e\.g\. 10m, 2h\) or an ISO time/);
    expect(() => parseSince('2026-13-45', T0 + 1e12)).to.throw(/expected a duration back/);
    expect(() => parseSince(new Date(T0 + 60_000).toISOString(), T0)).to.throw(/ahead of this machine's clock/);
    expect(() => parseSince('-5m', T0)).to.throw(/expected/);
  });
});
