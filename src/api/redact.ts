/**
 * Credentials out of request URLs before they reach a log line or an error message. The API takes
 * keys only in headers, but clients put them in query strings anyway (`?api_key=…`, `?token=…`), and
 * an absolute-form request target may carry userinfo (`http://user:password@host/…`).
 *
 * @module
 */

/** What a redacted value is replaced with. */
export const REDACTED = '[REDACTED]';

/**
 * Query parameter names whose values are treated as secrets, compared case-insensitively after
 * dropping `-` and `_` (so `api_key`, `API-Key` and `apikey` are one name).
 */
const SECRET_PARAMS: ReadonlySet<string> = new Set([
  'key',
  'apikey',
  'token',
  'accesstoken',
  'authtoken',
  'authorization',
  'auth',
  'bearer',
  'password',
  'passwd',
  'pass',
  'secret',
  'clientsecret',
  'signature',
  'sig',
]);

/** userinfo of an absolute-form target: `scheme://` then anything up to the `@` before the host. */
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#@]*@/;

/**
 * `url` (a request target: `/path?query`, or absolute-form) with the values of credential-like query
 * parameters and any userinfo replaced by `[REDACTED]`. Everything else is kept byte for byte, so the
 * logged URL still matches what the client sent.
 */
export function redactUrl(url: string): string {
  const withoutUserinfo = url.replace(USERINFO, `$1${REDACTED}@`);
  const q = withoutUserinfo.indexOf('?');
  if (q < 0) return withoutUserinfo;
  const hash = withoutUserinfo.indexOf('#', q);
  const query = withoutUserinfo.slice(q + 1, hash < 0 ? undefined : hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return isSecretParam(name) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
  return `${withoutUserinfo.slice(0, q + 1)}${redacted}${hash < 0 ? '' : withoutUserinfo.slice(hash)}`;
}

function isSecretParam(rawName: string): boolean {
  let name: string;
  try {
    name = decodeURIComponent(rawName.replace(/\+/g, ' '));
  } catch {
    name = rawName;
  }
  return SECRET_PARAMS.has(name.toLowerCase().replace(/[-_\s]/g, ''));
}
