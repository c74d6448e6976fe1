import { expect } from 'chai';
import { settleWithin } from '../../src/agent/calls.js';

describe('settleWithin (the graceful stop\'s deadline)', () => {
  it('resolves as soon as every step has settled, with nothing pending', async () => {
    const started = Date.now();
    const result = await settleWithin({ a: Promise.resolve(1), b: new Promise((r) => setTimeout(r, 20)) }, 5000);
    expect(result).to.deep.equal({ pending: [], failed: [] });
    expect(Date.now() - started).to.be.below(5000);
  });

  it('names the steps still running at the deadline, and does not wait for them', async () => {
    const never = new Promise<void>(() => undefined);
    const result = await settleWithin({ quick: Promise.resolve(), stuck: never, 'also stuck': never }, 50);
    expect(result.pending).to.deep.equal(['stuck', 'also stuck']);
    expect(result.failed).to.deep.equal([]);
  });

  it('reports a failed step and still waits for the others', async () => {
    const boom = new Error('boom');
    let slowDone = false;
    const result = await settleWithin(
      { failing: Promise.reject(boom), slow: new Promise<void>((r) => setTimeout(() => ((slowDone = true), r()), 30)) },
      5000,
    );
    expect(slowDone).to.equal(true);
    expect(result.pending).to.deep.equal([]);
    expect(result.failed).to.deep.equal([['failing', boom]]);
  });
});
