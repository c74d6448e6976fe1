/**
 * The registry is a small key-value contract shaped after etcd v3: revisions, leases, transactions
 * and prefix watches. `etcd`, `redis` and `memory` implement it and pass one contract suite
 * (test/registry/contract.ts), so the agent's logic is written once.
 */

export interface KeyValue {
  key: string;
  value: string;
  /** Revision at which the key was created (0 never occurs for a live key). */
  createRevision: number;
  modRevision: number;
  /** Lease id as a decimal string, '0' when the key has no lease. */
  lease: string;
}

export interface ListResult {
  kvs: KeyValue[];
  /** The store revision the list was read at; watch from `revision + 1`. */
  revision: number;
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue }
  | { type: 'delete'; key: string; modRevision: number; prevValue?: string };

export interface WatchHandlers {
  /** Events of one store revision range, in order. `revision` is the header revision of the batch. */
  onEvents(events: WatchEvent[], revision: number): void;
  /** The requested start revision was compacted away: the watch is over, re-list and watch again. */
  onCompacted(compactRevision: number): void;
  /** The connection to the registry dropped; the watch resumes by itself. */
  onDisconnected?(error: Error): void;
  /** The watch is (re)established. */
  onConnected?(): void;
  /** The watch ended for a reason other than compaction or cancel; re-list and watch again. */
  onError?(error: Error): void;
}

export interface WatchHandle {
  cancel(): Promise<void>;
}

export interface RegistryLease {
  /** Lease id as a decimal string. */
  readonly id: string;
  readonly ttl: number;
  /**
   * Renews the lease once. Resolves with the TTL granted; rejects with LeaseLostError when the
   * registry no longer knows the lease, RegistryUnavailableError when it cannot be reached.
   * `timeoutMs` (default: the registry's call timeout) is how long one server may leave it
   * unanswered: the agent keeps it well inside the TTL, and etcd then tries the next member.
   */
  keepAliveOnce(options?: { timeoutMs?: number }): Promise<number>;
  /** Revokes the lease: every key under it is deleted at once. Never throws for an unknown lease. */
  revoke(): Promise<void>;
}

export type TxnCompare = {
  key: string;
  target: 'createRevision' | 'modRevision' | 'value';
  /** createRevision 0 means "the key does not exist". */
  equals: number | string;
};

export type TxnOp = { type: 'put'; key: string; value: string; lease?: string } | { type: 'delete'; key: string };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
}

export interface RegistryStatus {
  revision: number;
  /** Server version, e.g. "3.4.23" or "memory". */
  version: string;
  /** Which endpoint answered. */
  endpoint: string;
}

export interface Registry {
  readonly kind: 'etcd' | 'memory' | 'redis';
  /** Human description for messages: the endpoints, or "memory". Never contains credentials. */
  readonly description: string;
  /** etcd: the member in use right now (the registry moves off one that stops answering). */
  readonly activeEndpoint?: string;
  get(key: string): Promise<KeyValue | null>;
  list(prefix: string): Promise<ListResult>;
  put(key: string, value: string, options?: { lease?: string }): Promise<number>;
  /** Deletes one key; resolves true when it existed. */
  delete(key: string): Promise<boolean>;
  /** Runs `ops` atomically when every compare holds. */
  txn(compare: TxnCompare[], ops: TxnOp[]): Promise<TxnResult>;
  grantLease(ttlSeconds: number): Promise<RegistryLease>;
  /** How many leases the registry holds in total (for doctor and leak checks). */
  leaseCount(): Promise<number>;
  /** Watches every key under `prefix`, starting at `fromRevision` (inclusive). */
  watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): WatchHandle;
  /** Cheap round trip to prove the registry answers. */
  status(): Promise<RegistryStatus>;
  close(): Promise<void>;
}

/** One move of a multi-member etcd registry from a member that stopped answering to another. */
export interface MemberChange {
  /** Endpoint left (no credentials). */
  from: string;
  /** Endpoint now in use. */
  to: string;
  /** Why the member was left, e.g. `no answer within 2000ms`. */
  reason: string;
  /** Every member has failed recently, `to` included: the cluster, not one member, is away. */
  allFailing: boolean;
}

/** The registry did not answer in time or refused the connection. */
export class RegistryUnavailableError extends Error {
  override name = 'RegistryUnavailableError';
  constructor(
    readonly endpoint: string,
    /** What went wrong, without the endpoint: e.g. `no answer within 5000ms`. */
    readonly detail: string,
  ) {
    super(`registry ${endpoint} unreachable: ${detail}`);
  }
}

/**
 * The registry answered, and refused the request itself as invalid: one of its limits (etcd's
 * `--max-txn-ops`, `--max-request-bytes`) or a malformed request. Not an outage, so no retry helps
 * and nothing should report the registry as unreachable.
 */
export class RegistryRequestError extends Error {
  override name = 'RegistryRequestError';
  constructor(
    readonly endpoint: string,
    /** etcd's reason, e.g. `too many operations in txn request (etcd's --max-txn-ops)`. */
    readonly detail: string,
  ) {
    super(`registry ${endpoint} refused the request: ${detail}`);
  }
}

/** The registry says the lease no longer exists (expired or revoked). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(readonly leaseId: string) {
    super(`lease ${leaseId} no longer exists`);
  }
}

/**
 * Something about the registry an operator should hear once that is not a failure, such as a password
 * the server does not need. The registry neither logs nor prints: the caller does, in its own form
 * (the agent a JSON log line with `event`, the CLI one line on stderr).
 */
export interface RegistryWarning {
  /** Stable name for logs, e.g. `registry.auth_unneeded`. */
  event: string;
  message: string;
}

/** The registry refused the credentials or the operation. */
export class RegistryAuthError extends Error {
  override name = 'RegistryAuthError';
}

/**
 * etcd's ErrLeaderChanged ("etcdserver: leader changed"): raft elected a leader while a member was
 * serving a linearizable read, and etcd dropped the read. The member itself is fine, so it is asked
 * again (`times` at most, `pauseMs` apart) rather than left like a member that failed. Here, not in
 * the etcd module, for the CLI's HTTP reader too.
 */
export const LEADER_CHANGE_RETRY = { times: 3, pauseMs: 50 } as const;

export function isLeaderChange(err: unknown): boolean {
  return err instanceof Error && /\bleader changed\b/i.test(err.message);
}

/**
 * Classifies a TLS handshake failure from its message (OpenSSL's or Node's, as gRPC and undici pass
 * them on) into one line naming the endpoint, or returns undefined when the message is not one:
 *
 * - the server refused our certificate, or its absence (an OpenSSL alert): {@link RegistryAuthError};
 * - we refused the server's certificate (untrusted CA, expired, wrong name): {@link RegistryAuthError};
 * - the server does not speak TLS at all: {@link RegistryUnavailableError}.
 *
 * Credential and trust problems are auth errors because retrying will not fix them. Lives here, not
 * in the etcd module, so a reader that does not load etcd3 can use it too.
 */
export function tlsRegistryError(
  endpoint: string,
  message: string,
  options: { clientCert: boolean; flagPrefix?: 'etcd' | 'registry' },
): RegistryAuthError | RegistryUnavailableError | undefined {
  // The flags of the TLS files: `--etcd-ca` for etcd, their registry-neutral names for Redis.
  const flag = (name: string) => `--${options.flagPrefix ?? 'etcd'}-${name}`;
  const alert = /alert (bad certificate|certificate required|unknown ca|certificate unknown|handshake failure|access denied)/i.exec(message);
  if (alert) {
    const what = options.clientCert
      ? `it does not accept the client certificate (${flag('cert')} must be signed by a CA the server trusts)`
      : `it requires a client certificate (set ${flag('cert')} and ${flag('key')})`;
    return new RegistryAuthError(`registry ${endpoint} refused the TLS handshake (${alert[1]!.toLowerCase()}): ${what}`);
  }
  const untrusted =
    /(unable to verify the first certificate|self[- ]signed certificate(?: in certificate chain)?|unable to get local issuer certificate|certificate has expired|certificate is not yet valid|Hostname\/IP does not match certificate's altnames[^.]*|ERR_TLS_CERT_ALTNAME_INVALID)/i.exec(
      message,
    );
  if (untrusted) {
    return new RegistryAuthError(
      `registry ${endpoint} is not trusted: its TLS certificate failed verification (${untrusted[1]}); set ${flag('ca')} to the CA that signed it`,
    );
  }
  if (/disconnected before secure TLS connection was established|wrong version number|packet length too long/i.test(message)) {
    return new RegistryUnavailableError(
      endpoint,
      'TLS handshake failed: the server does not speak TLS on this port (use an http:// endpoint for a plain server)',
    );
  }
  return undefined;
}
