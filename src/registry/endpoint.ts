/**
 * Small helpers about endpoints, hosts and keys shared by the gRPC registry, the CLI's HTTP reader, the
 * CLI's target flags and the configuration loader, so that one definition says what an endpoint is.
 * Kept apart from `etcd.ts` so that importing them never loads etcd3 and gRPC.
 */
import { isIP } from 'node:net';
import { UNSAFE_CHARACTER } from '../util/text.js';

/** Whitespace, or a character a terminal could act on: never part of a URL or host we can use. */
const UNUSABLE = new RegExp(`\\s|${UNSAFE_CHARACTER}`);

/**
 * Parses a URL we could actually connect to: no whitespace or control characters anywhere (the URL
 * parser would quietly drop a tab or a newline, and the raw string is what gets used), a host, and not
 * port 0 (which would connect to the scheme's default port instead).
 */
function usableUrl(value: string): URL | undefined {
  if (UNUSABLE.test(value)) return undefined;
  try {
    const url = new URL(value);
    return url.hostname !== '' && url.port !== '0' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** An http(s) URL with a host, e.g. an etcd endpoint, a health URL or an agent's API. */
export function isHttpUrl(value: string): boolean {
  const url = usableUrl(value);
  return url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:');
}

/** Whether an endpoint names Redis (`redis://`, `rediss://`); says nothing about its validity. */
export function isRedisUrl(value: string): boolean {
  return /^rediss?:\/\//i.test(value);
}

/** An etcd endpoint (http(s) URL) or a Redis URL `redis[s]://[user:password@]host[:port][/db]`. */
export function isRegistryUrl(value: string): boolean {
  if (isHttpUrl(value)) return true;
  const url = usableUrl(value);
  return url !== undefined && (url.protocol === 'redis:' || url.protocol === 'rediss:') && /^(\/\d{0,2})?$/.test(url.pathname);
}

const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

/**
 * A host name (labels of letters, digits, `-` and `_`, at most 253 characters, as DNS and Docker
 * names go) or an IP address; IPv6 without brackets (`fd00::7`), since the agent adds them where a
 * URL needs them.
 */
export function isHostOrIp(value: string): boolean {
  if (UNUSABLE.test(value)) return false;
  if (isIP(value) !== 0) return true;
  return value.length <= 253 && HOST_NAME.test(value);
}

/**
 * etcd's own default client URL, as `etcdctl` uses it. Where the agent, the library and the CLI look
 * when no endpoint is configured (the seed's config names etcd on localhost).
 */
export const DEFAULT_ETCD_ENDPOINT = 'http://127.0.0.1:2379';

/** The smallest key greater than every key with this prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Strips userinfo from every URL in a text, parsed or not (a typo'd URL too), so it can appear in messages. */
export function redactUserinfo(text: string): string {
  return text.replace(/\/\/[^@/\s]*@/g, '//');
}

/** Strips userinfo from an endpoint so it can appear in messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
