// Regenerates the docs that are derived from code, so they cannot drift (a test compares them).
import { writeFileSync } from 'node:fs';
import { renderConfigReference } from '../src/config/reference.js';

export function configurationDoc(): string {
  return renderConfigReference();
}

if (process.argv[1]?.endsWith('gen-docs.ts')) {
  writeFileSync(new URL('../docs/configuration.md', import.meta.url), configurationDoc());
  console.log('wrote docs/configuration.md');
}
