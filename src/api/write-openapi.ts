/**
 * Writes docs/openapi.json from the route table: `npx tsx src/api/write-openapi.ts`.
 * With `--check`, exits 1 when the file differs instead of writing it (for CI).
 *
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { openApiDocument } from './openapi.js';

/** Where the committed copy of the document lives. */
export const OPENAPI_DOC_PATH = new URL('../../docs/openapi.json', import.meta.url);

/** The document as committed: two-space JSON with a trailing newline. */
export function renderOpenApiDocument(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}

async function main(): Promise<void> {
  const text = renderOpenApiDocument();
  if (process.argv.includes('--check')) {
    const current = await readFile(OPENAPI_DOC_PATH, 'utf8').catch(() => '');
    if (current !== text) {
      process.stderr.write('docs/openapi.json is out of date: run npx tsx src/api/write-openapi.ts\n');
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(OPENAPI_DOC_PATH, text);
  process.stdout.write(`wrote ${OPENAPI_DOC_PATH.pathname}\n`);
}

if (process.argv[1] && new URL(`file://${process.argv[1]}`).pathname === new URL(import.meta.url).pathname) {
  await main();
}
