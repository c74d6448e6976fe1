// Replaced by the fault-injection suite (issue 6); keeps `npm run test:faults` runnable meanwhile.
describe('fault suite', () => {
  it.skip('is being written');
});
