/**
 * API keys for the agent's HTTP API.
 *
 * - A key has a `name` (recorded as the actor in the audit trail), a `role` (`viewer` reads,
 *   `operator` also enables and disables services) and the secret itself.
 * - Keys come from the `api.apiKey` setting (`SERVICE_DISCOVERY_API_KEY`, `--api-key`: one operator key
 *   named `default`) and/or the `api.keyFile` setting (`SERVICE_DISCOVERY_API_KEY_FILE`, `--api-key-file`).
 * - Clients send `Authorization: Bearer KEY` or `X-API-Key: KEY`.
 * - Reads may be open by configuration (`api.readAccess`: `open`); writes never are once any key exists.
 *   With no key at all, writes are refused unless `allowUnauthenticatedWrites` (demo mode) is set.
 * - Keys are compared as SHA-256 digests with `timingSafeEqual`, against every configured key, so
 *   neither the key's length nor which key matched leaks through timing.
 * - Secrets never appear in errors, logs or metrics: errors name the key only by its `name`.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { resolveConfig } from '../config/load.js';
import { SETTINGS, envNames } from '../config/settings.js';
import { ApiError } from './errors.js';

/** What a key may do. `operator` implies `viewer`. */
export type ApiRole = 'viewer' | 'operator';
export const API_ROLES: readonly ApiRole[] = ['viewer', 'operator'];

/** One API key. `key` is a secret: never log or print it. */
export interface ApiKey {
  /** Who holds the key; recorded as the actor of enable/disable actions. */
  name: string;
  role: ApiRole;
  key: string;
}

/** Who may call the API. */
export interface ApiAuthOptions {
  keys: ApiKey[];
  /** `open`: reads need no key; `viewer`: reads need any valid key. Writes always need an operator key. */
  readAccess: 'open' | 'viewer';
  /**
   * Demo mode: with no key configured at all, let anyone enable and disable services (actor
   * `anonymous`). Ignored as soon as one key is configured.
   */
  allowUnauthenticatedWrites?: boolean;
}

/** How much protection a route needs. */
export type RouteAccess = 'public' | 'read' | 'write';

/** The caller a request was authorised as. */
export interface Principal {
  /** The key's name, or `anonymous`. */
  name: string;
  role: ApiRole | 'anonymous';
}

/**
 * A request {@link ApiAuthenticator.authorize} refused: the 401 or 403 to send, and who was refused,
 * for the log: the name of the key presented (a viewer key on a write), or null when no valid key was.
 */
export class AccessRefusedError extends ApiError {
  constructor(
    statusCode: 401 | 403,
    code: 'unauthorized' | 'forbidden' | 'writes_disabled',
    message: string,
    readonly actor: string | null,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(statusCode, code, message, headers);
  }
}

/** The key configuration is unusable (bad file, duplicate names, …). Never contains a secret. */
export class ApiAuthConfigError extends Error {
  override name = 'ApiAuthConfigError';
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
const ENV_KEY = 'SERVICE_DISCOVERY_API_KEY';
const REALM = 'Bearer realm="proxy-stone-sd"';

interface StoredKey {
  name: string;
  role: ApiRole;
  digest: Buffer;
}

/**
 * Checks requests against an {@link ApiAuthOptions}. Built once per server; holds only digests of
 * the keys, not the keys themselves.
 */
export class ApiAuthenticator {
  readonly readAccess: 'open' | 'viewer';
  readonly allowUnauthenticatedWrites: boolean;
  readonly #keys: StoredKey[];

  constructor(options: ApiAuthOptions) {
    validateKeys(options.keys);
    if (options.readAccess !== 'open' && options.readAccess !== 'viewer') {
      throw new ApiAuthConfigError(`readAccess: expected "open" or "viewer", got ${JSON.stringify(options.readAccess)}`);
    }
    if (options.readAccess === 'viewer' && options.keys.length === 0) {
      throw new ApiAuthConfigError(
        `readAccess "viewer" needs at least one API key: set ${ENV_KEY} or a key file, or make reads open`,
      );
    }
    this.readAccess = options.readAccess;
    this.allowUnauthenticatedWrites = options.allowUnauthenticatedWrites === true && options.keys.length === 0;
    this.#keys = options.keys.map((k) => ({ name: k.name, role: k.role, digest: digest(k.key) }));
  }

  /** Number of configured keys (for startup logs; never the keys). */
  get keyCount(): number {
    return this.#keys.length;
  }

  /**
   * Decides whether a request with these headers may use a route of this access level.
   * Returns the principal, or throws the {@link AccessRefusedError} (401/403) to send.
   */
  authorize(access: RouteAccess, headers: IncomingHttpHeaders): Principal {
    if (access === 'public') return ANONYMOUS;
    const presented = credentialsOf(headers);
    // A wrong key is refused even where no key is needed: a misconfigured client should learn it at once.
    const principal = presented === undefined ? undefined : this.#match(presented);
    if (presented !== undefined && principal === undefined) {
      throw new AccessRefusedError(401, 'unauthorized', 'invalid API key', null, { 'www-authenticate': `${REALM}, error="invalid_token"` });
    }
    if (access === 'read') {
      if (principal) return principal;
      if (this.readAccess === 'open') return ANONYMOUS;
      throw missingCredentials();
    }
    // access === 'write'
    if (this.#keys.length === 0) {
      if (this.allowUnauthenticatedWrites) return ANONYMOUS;
      throw new AccessRefusedError(
        403,
        'writes_disabled',
        `management endpoints are disabled because no API key is configured: set ${ENV_KEY} (or a key file) and send it as "Authorization: Bearer <key>"`,
        null,
      );
    }
    if (!principal) throw missingCredentials();
    if (principal.role !== 'operator') {
      throw new AccessRefusedError(
        403,
        'forbidden',
        `API key "${principal.name}" has role ${principal.role}; this action needs role operator`,
        principal.name,
      );
    }
    return principal;
  }

  #match(presented: string): Principal | undefined {
    const d = digest(presented);
    let found: StoredKey | undefined;
    // Compare against every key, without stopping early, so timing says nothing about which matched.
    for (const k of this.#keys) {
      if (timingSafeEqual(d, k.digest) && found === undefined) found = k;
    }
    return found ? { name: found.name, role: found.role } : undefined;
  }
}

const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous', role: 'anonymous' });

function missingCredentials(): AccessRefusedError {
  return new AccessRefusedError(401, 'unauthorized', 'missing API key: send "Authorization: Bearer <key>" or "X-API-Key: <key>"', null, {
    'www-authenticate': REALM,
  });
}

/** The key a request presents, if any. `Authorization` wins over `X-API-Key`. */
function credentialsOf(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && authorization.trim() !== '') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization.trim());
    if (!m) {
      throw new AccessRefusedError(401, 'unauthorized', 'unsupported Authorization header: expected "Bearer <key>"', null, {
        'www-authenticate': `${REALM}, error="invalid_request"`,
      });
    }
    return m[1];
  }
  const header = headers['x-api-key'];
  const value = Array.isArray(header) ? header[0] : header;
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function validateKeys(keys: readonly ApiKey[]): void {
  const names = new Set<string>();
  const digests = new Set<string>();
  for (const [i, k] of keys.entries()) {
    const where = `API key ${i + 1}${typeof k?.name === 'string' ? ` ("${k.name}")` : ''}`;
    if (typeof k?.name !== 'string' || !NAME_RE.test(k.name)) {
      throw new ApiAuthConfigError(`${where}: name must be 1-64 characters of letters, digits, _ . @ -, starting with a letter or digit`);
    }
    if (!API_ROLES.includes(k.role)) throw new ApiAuthConfigError(`${where}: role must be viewer or operator`);
    if (typeof k.key !== 'string' || k.key.length === 0 || /\s/.test(k.key)) {
      throw new ApiAuthConfigError(`${where}: the key must be a non-empty string without whitespace`);
    }
    if (names.has(k.name)) throw new ApiAuthConfigError(`${where}: the name is used twice`);
    const d = digest(k.key).toString('hex');
    // Two names for one secret would make the audit trail's actor ambiguous.
    if (digests.has(d)) throw new ApiAuthConfigError(`${where}: the same key is configured under another name`);
    names.add(k.name);
    digests.add(d);
  }
}

/**
 * The API settings {@link loadApiAuth} reads: the `api` part of a resolved `SdConfig` fits as is.
 * `readAccess` defaults to `open`.
 */
export interface ApiAuthSettings {
  /** One operator key, named `default` (`api.apiKey`, `SERVICE_DISCOVERY_API_KEY`). */
  apiKey?: string;
  /** Key file path (`api.keyFile`, `SERVICE_DISCOVERY_API_KEY_FILE`). */
  keyFile?: string;
  /** `api.readAccess` (`SERVICE_DISCOVERY_API_READ_ACCESS`). */
  readAccess?: 'open' | 'viewer';
}

/** Options of {@link loadApiAuth}. */
export interface LoadApiAuthOptions {
  /** Environment to read when no settings are given (`process.env` by default). */
  env?: NodeJS.ProcessEnv;
  /** Demo mode, see {@link ApiAuthOptions.allowUnauthenticatedWrites}. */
  allowUnauthenticatedWrites?: boolean;
}

/**
 * Builds {@link ApiAuthOptions} from the API settings: `apiKey` (one `operator` key named `default`),
 * `keyFile` and `readAccess`. Synchronous: it runs once at startup.
 *
 * Pass the resolved config (`loadApiAuth(config.api)`), so the key, key file and read access follow
 * the one precedence of every setting (flag > env > config file > default). Without settings it
 * resolves the `api.*` settings from the environment through the same config loader (for an embedding
 * host that has no config of its own); other variables are not looked at.
 *
 * The key file is either JSON (`[{name, role, key}]` or `{keys: [...]}`) or lines `name:role:key`
 * (blank lines and `#` comments ignored; the key is everything after the second colon).
 *
 * @throws ApiAuthConfigError naming the file and line, never the secret
 * @throws ConfigError (from the config loader) for a bad environment variable, when no settings are given
 */
export function loadApiAuth(settings?: ApiAuthSettings, options: LoadApiAuthOptions = {}): ApiAuthOptions {
  const api = settings ?? apiSettingsFromEnv(options.env ?? process.env);
  const keys: ApiKey[] = [];
  // The loader keeps secrets verbatim; surrounding whitespace in a key is a paste accident, not part of it.
  const apiKey = api.apiKey?.trim();
  if (apiKey) keys.push({ name: 'default', role: 'operator', key: apiKey });
  if (api.keyFile) keys.push(...readKeyFile(api.keyFile));
  const readAccess = api.readAccess ?? 'open';
  if (readAccess !== 'open' && readAccess !== 'viewer') {
    throw new ApiAuthConfigError(`readAccess: expected "open" or "viewer", got ${JSON.stringify(readAccess)}`);
  }
  const auth: ApiAuthOptions = { keys, readAccess };
  if (options.allowUnauthenticatedWrites) auth.allowUnauthenticatedWrites = true;
  validateKeys(keys);
  return auth;
}

/** The `api.*` settings from these environment variables alone, read by the config loader. */
function apiSettingsFromEnv(env: NodeJS.ProcessEnv): ApiAuthSettings {
  // Only the API's variables: an unrelated bad one (SERVICE_PORT=abc) is not this caller's problem.
  const apiEnv: NodeJS.ProcessEnv = {};
  for (const setting of SETTINGS) {
    if (!setting.path.startsWith('api.')) continue;
    for (const name of envNames(setting)) if (env[name] !== undefined) apiEnv[name] = env[name];
  }
  return resolveConfig({ env: apiEnv }).config.api;
}

/** Parses a key file (see {@link loadApiAuth}). */
export function parseKeyFile(text: string, source = 'key file'): ApiKey[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let data: unknown;
    try {
      data = JSON.parse(trimmed);
    } catch {
      throw new ApiAuthConfigError(`${source}: not valid JSON`);
    }
    const list = Array.isArray(data) ? data : (data as { keys?: unknown }).keys;
    if (!Array.isArray(list)) throw new ApiAuthConfigError(`${source}: expected an array of {name, role, key} or {"keys": [...]}`);
    return list.map((item: unknown, i) => {
      const k = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
      const where = `${source}: entry ${i + 1}`;
      if (typeof k.name !== 'string') throw new ApiAuthConfigError(`${where}: name must be a string`);
      if (k.role !== 'viewer' && k.role !== 'operator') throw new ApiAuthConfigError(`${where}: role must be viewer or operator`);
      if (typeof k.key !== 'string' || k.key === '') throw new ApiAuthConfigError(`${where}: key must be a non-empty string`);
      return { name: k.name, role: k.role, key: k.key };
    });
  }
  const keys: ApiKey[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    const where = `${source}: line ${i + 1}`;
    if (second < 0) throw new ApiAuthConfigError(`${where}: expected name:role:key`);
    const name = line.slice(0, first).trim();
    const role = line.slice(first + 1, second).trim();
    const key = line.slice(second + 1).trim();
    if (role !== 'viewer' && role !== 'operator') throw new ApiAuthConfigError(`${where}: role must be viewer or operator`);
    if (key === '') throw new ApiAuthConfigError(`${where}: the key is empty`);
    keys.push({ name, role, key });
  });
  return keys;
}

function readKeyFile(path: string): ApiKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ApiAuthConfigError(`cannot read API key file ${path}: ${code}`);
  }
  return parseKeyFile(text, path);
}
