import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMPLETION_CASES, bashCompletion, binOnPath, ensureBuilt, expectCompletions } from './fixtures.js';

describe('shell completion (oclif plugin-autocomplete), built binary', function () {
  this.timeout(60_000);
  let home: string;
  let bin: ReturnType<typeof binOnPath>;
  before(() => {
    ensureBuilt();
    home = mkdtempSync(path.join(tmpdir(), 'sd-cli-home-'));
    bin = binOnPath();
  });
  after(() => {
    bin?.remove();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('autocomplete bash and autocomplete script bash set up completion of commands and flags', () => {
    const result = bashCompletion(
      { PATH: bin.path, HOME: home, XDG_CACHE_HOME: path.join(home, '.cache') },
      COMPLETION_CASES.map(([words]) => words),
    );
    expectCompletions(result);
  });
});
