import { readFileSync } from 'node:fs';

/**
 * Reads a TLS file (CA, certificate or key) a registry client (or the CLI's client of an agent) was
 * configured with, failing with one line that names the registry, the file's role and its path, and
 * only the error code: never the file's contents, which for a key are secret.
 */
export function readCredentialFile(registry: 'etcd' | 'Redis' | 'agent', what: 'CA' | 'certificate' | 'key', path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${registry} ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
