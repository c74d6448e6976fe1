/**
 * What one `--check URL` says: the kind of check, its target, and its own options. Pure parsing, no
 * I/O, shared by the settings' validation (a bad URL is a usage error naming `--check`, the env var or
 * the config key) and the agent, which builds the checks from the parsed specs.
 *
 * - `http://host:port/path`, `https://…`: a request; passes on an expected status (default 2xx), and,
 *   when asked, a body containing `body=` or a JSON value at `json=path` (`json=status=ok`);
 * - `tcp://host:port`: a connection succeeds within the timeout;
 * - `grpc://host:port[/service]`, `grpcs://…` (TLS): `grpc.health.v1.Health/Check` answers `SERVING`;
 * - `ttl://NAME`: the instance reports "alive" (API or library) at least every `ttl=` (default 30s).
 *
 * Options common to every kind, as query parameters: `name=`, `critical=false` (reported, never takes
 * the instance out), `interval=`, `timeout=`, `retries=` (the instance's when absent).
 *
 * @module
 */
import { DURATION_EXPECTATION, parseDuration } from '../../util/duration.js';
import { RECORD_LIMITS } from '../../types.js';
import { unsafeCharacterIn } from '../../util/text.js';

export const CHECK_KINDS = ['http', 'tcp', 'grpc', 'ttl'] as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

/** Most checks per instance: each is a timer and a record entry. */
export const MAX_CHECKS = RECORD_LIMITS.checks;
/** Longest check name, in characters. */
export const MAX_CHECK_NAME = 128;
/** Longest output of a check kept in the record, in characters. */
export const MAX_CHECK_OUTPUT = RECORD_LIMITS.checkOutput;
/** Default deadline of a `ttl://` check, in seconds. */
export const DEFAULT_CHECK_TTL = 30;

/** What a check URL looks like, for error messages. */
export const CHECK_URL_EXPECTATION = 'a check URL (http(s)://host:port/path, tcp://host:port, grpc(s)://host:port[/service] or ttl://NAME)';

/** One check as configured. Durations in seconds; undefined: the instance's setting. */
export interface CheckSpec {
  /** Unique among the instance's checks; default `<kind> <target>`. */
  name: string;
  kind: CheckKind;
  /** What is probed, for people: `http://127.0.0.1:3000/health/ready`, `127.0.0.1:50051/svc`, the ttl name. */
  target: string;
  /** A failing critical check takes the instance out; a non-critical one is only reported. */
  critical: boolean;
  interval?: number;
  timeout?: number;
  retries?: number;
  http?: {
    url: string;
    method: 'GET' | 'HEAD' | 'POST';
    /** Accepted statuses as inclusive ranges; default 200-299. */
    expect: Array<[number, number]>;
    /** The body must contain this text. */
    body?: string;
    /** A JSON body must hold `value` at `path` (dot-separated); any non-null value when `value` is undefined. */
    json?: { path: string[]; value?: string };
    headers: Record<string, string>;
    /** PEM file of the CA that signed the instance's certificate (https). */
    ca?: string;
    /** Skip certificate verification (https). */
    insecure: boolean;
  };
  tcp?: { host: string; port: number };
  grpc?: { host: string; port: number; service: string; tls: boolean; ca?: string; insecure: boolean };
  ttl?: { deadline: number };
}

/** A check URL that cannot be used; the message says what was expected. */
export class CheckSpecError extends Error {
  override name = 'CheckSpecError';
}

const COMMON = ['name', 'critical', 'interval', 'timeout', 'retries'];
const ALLOWED: Record<CheckKind, string[]> = {
  http: [...COMMON, 'method', 'expect', 'body', 'json', 'header', 'ca', 'insecure'],
  tcp: COMMON,
  grpc: [...COMMON, 'ca', 'insecure'],
  ttl: [...COMMON, 'ttl'],
};

function fail(text: string): never {
  throw new CheckSpecError(text);
}

function boolOption(key: string, raw: string): boolean {
  if (raw === 'true' || raw === '1' || raw === '') return true;
  if (raw === 'false' || raw === '0') return false;
  return fail(`${key}=${raw}: expected true or false`);
}

function durationOption(key: string, raw: string): number {
  let seconds: number;
  try {
    seconds = parseDuration(raw);
  } catch {
    return fail(`${key}=${raw}: expected ${DURATION_EXPECTATION}`);
  }
  if (!(seconds > 0)) fail(`${key}=${raw}: expected a duration > 0`);
  return seconds;
}

function expectOption(raw: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const part of raw.split(/[,;]/)) {
    const m = /^\s*([1-5]\d\d)\s*(?:-\s*([1-5]\d\d)\s*)?$/.exec(part);
    if (!m) fail(`expect=${raw}: expected HTTP statuses such as 200, 200-204 or 200,301`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) fail(`expect=${raw}: range ${lo}-${hi} is empty`);
    ranges.push([lo, hi]);
  }
  return ranges;
}

/** Host and port of an authority; `what` names the URL in messages. */
function hostPort(url: URL, what: string): { host: string; port: number } {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') fail(`${what}: expected a host`);
  if (url.port === '') fail(`${what}: expected a port (host:port)`);
  return { host, port: Number(url.port) };
}

/**
 * Parses one check URL. Throws {@link CheckSpecError} with a one-line message saying what is wrong
 * (the caller names `--check`, the env var or the config key, and {@link CHECK_URL_EXPECTATION}).
 */
export function parseCheckUrl(raw: string): CheckSpec {
  const text = raw.trim();
  const unsafe = unsafeCharacterIn(text);
  if (unsafe) fail(`contains ${unsafe.codePoint}`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined) fail('no scheme://');
  let url: URL;
  try {
    // WHATWG URL treats unknown schemes as opaque: parse them as http to read host, port and path alike.
    url = new URL(scheme === 'http' || scheme === 'https' ? text : `http${text.slice(scheme.length)}`);
  } catch {
    return fail('not a valid URL');
  }
  const kind: CheckKind | undefined =
    scheme === 'http' || scheme === 'https' ? 'http' : scheme === 'tcp' ? 'tcp' : scheme === 'grpc' || scheme === 'grpcs' ? 'grpc' : scheme === 'ttl' ? 'ttl' : undefined;
  if (kind === undefined) fail(`unknown scheme ${scheme}://`);
  if (url.username !== '' || url.password !== '') fail(`credentials in a check URL are not supported (use header=Authorization:...)`);

  const options = new Map<string, string[]>();
  for (const [key, value] of url.searchParams) {
    if (!ALLOWED[kind].includes(key)) fail(`unknown option ${key} for a ${kind} check; expected one of ${ALLOWED[kind].join(', ')}`);
    options.set(key, [...(options.get(key) ?? []), value]);
  }
  const one = (key: string): string | undefined => {
    const values = options.get(key);
    if (values !== undefined && values.length > 1) fail(`option ${key} given ${values.length} times; expected once`);
    return values?.[0];
  };

  const spec: CheckSpec = { name: '', kind, target: '', critical: true };
  const critical = one('critical');
  if (critical !== undefined) spec.critical = boolOption('critical', critical);
  for (const key of ['interval', 'timeout'] as const) {
    const v = one(key);
    if (v !== undefined) spec[key] = durationOption(key, v);
  }
  const retries = one('retries');
  if (retries !== undefined) {
    if (!/^\d{1,3}$/.test(retries) || Number(retries) < 1) fail(`retries=${retries}: expected an integer 1-999`);
    spec.retries = Number(retries);
  }
  const insecure = one('insecure');
  const ca = one('ca');

  switch (kind) {
    case 'http': {
      hostPort(url, scheme);
      const base = new URL(url.href);
      base.search = '';
      base.hash = '';
      const method = (one('method') ?? 'GET').toUpperCase();
      if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') fail(`method=${method}: expected GET, HEAD or POST`);
      const headers: Record<string, string> = {};
      for (const h of options.get('header') ?? []) {
        const colon = h.indexOf(':');
        const name = colon > 0 ? h.slice(0, colon).trim() : '';
        if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) fail(`header=${h}: expected Name:Value`);
        headers[name.toLowerCase()] = h.slice(colon + 1).trim();
      }
      const json = one('json');
      spec.http = {
        url: base.href,
        method,
        expect: expectOption(one('expect') ?? '200-299'),
        headers,
        insecure: insecure === undefined ? false : boolOption('insecure', insecure),
      };
      const body = one('body');
      if (body !== undefined) {
        if (body === '') fail('body=: expected the text the body must contain');
        spec.http.body = body;
      }
      if (json !== undefined) {
        const eq = json.indexOf('=');
        const path = (eq < 0 ? json : json.slice(0, eq)).split('.').filter((p) => p !== '');
        if (path.length === 0) fail(`json=${json}: expected a dot-separated path, optionally =value (json=status=ok)`);
        spec.http.json = eq < 0 ? { path } : { path, value: json.slice(eq + 1) };
      }
      if (ca !== undefined) spec.http.ca = ca;
      if (scheme === 'http' && (ca !== undefined || spec.http.insecure)) fail('ca and insecure apply to https:// checks only');
      spec.target = base.href;
      break;
    }
    case 'tcp': {
      if (url.pathname !== '/' && url.pathname !== '') fail(`tcp://host:port takes no path (got ${url.pathname})`);
      spec.tcp = hostPort(url, 'tcp');
      spec.target = url.host;
      break;
    }
    case 'grpc': {
      const { host, port } = hostPort(url, scheme);
      const service = decodeURIComponent(url.pathname.replace(/^\//, ''));
      if (service.includes('/')) fail(`${scheme}://host:port/service: expected one service name (got ${service})`);
      const tls = scheme === 'grpcs';
      if (!tls && (ca !== undefined || insecure !== undefined)) fail('ca and insecure apply to grpcs:// checks only');
      spec.grpc = { host, port, service, tls, insecure: insecure === undefined ? false : boolOption('insecure', insecure) };
      if (ca !== undefined) spec.grpc.ca = ca;
      spec.target = `${url.host}${service ? `/${service}` : ''}`;
      break;
    }
    case 'ttl': {
      const name = decodeURIComponent(url.hostname);
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name) || url.port !== '' || (url.pathname !== '/' && url.pathname !== '')) {
        fail('ttl://NAME: expected a name of letters, digits, ".", "_" and "-" (at most 64)');
      }
      const ttl = one('ttl');
      spec.ttl = { deadline: ttl === undefined ? DEFAULT_CHECK_TTL : durationOption('ttl', ttl) };
      spec.target = name;
      break;
    }
  }
  const name = one('name');
  if (name !== undefined && (name === '' || name.length > MAX_CHECK_NAME)) fail(`name=: expected 1-${MAX_CHECK_NAME} characters`);
  spec.name = name ?? (kind === 'ttl' ? spec.target : `${kind} ${spec.target}`);
  if (spec.name.length > MAX_CHECK_NAME) spec.name = spec.name.slice(0, MAX_CHECK_NAME);
  return spec;
}

/** Parses a list of check URLs: at most {@link MAX_CHECKS}, names unique. Throws {@link CheckSpecError}. */
export function parseCheckUrls(urls: readonly string[]): CheckSpec[] {
  if (urls.length > MAX_CHECKS) fail(`at most ${MAX_CHECKS} checks (got ${urls.length})`);
  const specs: CheckSpec[] = [];
  for (const url of urls) {
    let spec: CheckSpec;
    try {
      spec = parseCheckUrl(url);
    } catch (err) {
      if (err instanceof CheckSpecError && urls.length > 1) throw new CheckSpecError(`${url.length > 60 ? `${url.slice(0, 57)}...` : url}: ${err.message}`);
      throw err;
    }
    if (specs.some((s) => s.name === spec.name)) fail(`two checks named "${spec.name}"; give one a name= option`);
    specs.push(spec);
  }
  return specs;
}
