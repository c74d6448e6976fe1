/**
 * The API's settings checked against the world: its address, and its key file, are settings like any
 * other. A host that does not resolve, an address or port this machine will not listen on, a key file
 * whose keys cannot be used: each is refused as a bad value (exit 2, naming the env var, flag or file
 * key that set it), not reported as a bare `getaddrinfo ENOTFOUND` from deep inside the server.
 *
 * @module
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { settingError, type ConfigError, type LoadedConfig } from './load.js';

const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_NODATA']);

function unresolved(loaded: LoadedConfig, code: string, cause: unknown): ConfigError {
  const { host } = loaded.config.api;
  return settingError(loaded, 'api.host', `expected a host name of this machine that resolves; ${host} does not (${code})`, cause);
}

/**
 * Resolves the API host before anything starts (no registry opened, nothing logged), so a name that
 * does not exist is refused as early as a malformed one. A DNS server that does not answer right now
 * (`EAI_AGAIN`) is not the value's fault: listening will say whether it works.
 *
 * @throws ConfigError naming `api.host` when its name does not resolve
 */
export async function checkApiHost(loaded: LoadedConfig): Promise<void> {
  const { api } = loaded.config;
  if (!api.enabled || isIP(api.host) !== 0) return;
  try {
    await lookup(api.host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (UNRESOLVED.has(code)) throw unresolved(loaded, code, err);
  }
}

/**
 * What a failed listen on `api.host`:`api.port` says about those settings, as a ConfigError naming the
 * one at fault (the failure itself as its `cause`); undefined for any other failure (which is then not
 * a configuration problem).
 */
export function apiListenError(err: unknown, loaded: LoadedConfig): ConfigError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const { host, port } = loaded.config.api;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (UNRESOLVED.has(code)) return unresolved(loaded, code, err);
  if (code === 'EADDRNOTAVAIL') return settingError(loaded, 'api.host', `expected an address of this machine; cannot listen on ${where} (EADDRNOTAVAIL)`, err);
  if (code === 'EADDRINUSE') return settingError(loaded, 'api.port', `expected a free port (or 0 for any); cannot listen on ${where}: in use (EADDRINUSE)`, err);
  if (code === 'EACCES') {
    return settingError(loaded, 'api.port', `expected a port this user may listen on (1024 and above, or 0 for any); cannot listen on ${where} (EACCES)`, err);
  }
  return undefined;
}

/**
 * The API's keys (`loadApiAuth(config.api)`, from the API module) refused as a setting: a key file
 * whose lines or keys cannot be used, or keys that clash with the API key, name the key file setting
 * (else the API key's). Its messages never hold a secret (src/api/auth.ts). Matched by name, so that
 * this module does not load the API's.
 *
 * @throws ConfigError for an `ApiAuthConfigError`; anything else as it is
 */
export function apiKeys<T>(load: () => T, loaded: LoadedConfig): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof Error) || err.name !== 'ApiAuthConfigError') throw err;
    const path = loaded.config.api.keyFile !== undefined ? 'api.keyFile' : 'api.apiKey';
    const expected = path === 'api.keyFile' ? 'a file of name:role:key lines or JSON [{name, role, key}]' : 'a key without spaces or control characters';
    throw settingError(loaded, path, `expected ${expected}; ${err.message}`, err);
  }
}
