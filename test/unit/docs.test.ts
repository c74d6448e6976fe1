import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { configurationDoc } from '../../scripts/gen-docs.js';

describe('generated docs', () => {
  it('docs/configuration.md is current with the settings table (run `npm run docs`)', () => {
    const onDisk = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(onDisk).to.equal(configurationDoc());
  });
});
