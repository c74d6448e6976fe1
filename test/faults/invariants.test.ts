import { expect } from 'chai';
import { InvariantChecker, type ElectionSample, type LeaderSample } from './invariants.js';

/** The checker is only worth its silence if it speaks up: fed made-up samples, it must flag these. */
describe('faults: the invariant checker itself', () => {
  let checker: InvariantChecker;

  beforeEach(() => {
    // Never started: no sampling, no connection; samples are fed by hand.
    checker = new InvariantChecker({ endpoint: 'http://127.0.0.1:1', namespace: 'ns' });
    checker.watch({ key: 'a#1', serviceId: 'a', apiUrl: 'http://a' });
    checker.watch({ key: 'b#1', serviceId: 'b', apiUrl: 'http://b' });
  });

  afterEach(() => checker.stop());

  const answers = (key: string, list: [number, boolean | undefined, number?][]) => {
    const samples: LeaderSample[] = list.map(([t, isLeader, term]) => ({ sentAt: t, receivedAt: t + 2, isLeader, term: term ?? 10 }));
    checker.samples.get(key)!.push(...samples);
  };
  const election = (t: number, leaderId: string | null, leaderTerm: number | null, leaderRecord: ElectionSample['leaderRecord'] = null) =>
    checker.election.push({ sentAt: t, receivedAt: t + 1, revision: t, leaderId, leaderTerm, candidates: 2, leaderRecord });

  it('is silent for a clean handover', () => {
    answers('a#1', [[0, true], [25, true], [50, true], [75, false], [100, false]]);
    answers('b#1', [[0, false], [25, false], [50, false], [80, true, 20], [105, true, 20]]);
    election(30, 'a', 10);
    election(90, 'b', 20);
    expect(checker.violations()).to.deep.equal([]);
  });

  it('flags an answer inside another agent\'s proven leadership', () => {
    answers('a#1', [[0, true], [25, true], [50, true], [75, true]]);
    answers('b#1', [[30, true, 20]]);
    expect(checker.violations().join('\n')).to.match(/two leaders: b#1 answered isLeader/);
  });

  it('flags overlapping runs, but not runs broken by a missing answer', () => {
    answers('a#1', [[0, true], [50, true], [100, undefined], [150, true], [200, true]]);
    answers('b#1', [[110, true, 20], [140, true, 20]]);
    // b's run 112..140 sits inside a's gap (the unanswered sample at 100): no proof of overlap.
    expect(checker.violations()).to.deep.equal([]);
    answers('b#1', [[160, true, 20], [190, true, 20]]);
    expect(checker.violations().join('\n')).to.match(/two leaders/);
  });

  it('flags a claim to a term etcd has ended, and a leader record that names someone else', () => {
    answers('a#1', [[0, true], [25, true], [50, true]]);
    election(20, 'b', 20);
    election(60, 'b', 20, { leaderId: 'a', term: 10, since: 0 });
    const found = checker.violations().join('\n');
    expect(found).to.match(/a#1 claimed term 10 .* named b/);
    expect(found).to.match(/<ns>\/leader at revision 60 names a/);
  });
});
