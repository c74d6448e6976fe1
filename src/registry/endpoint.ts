/**
 * Small helpers about etcd endpoints and keys shared by the gRPC registry and the CLI's HTTP reader.
 * Kept apart from `etcd.ts` so that importing them never loads etcd3 and gRPC.
 */

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
