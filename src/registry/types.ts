/**
 * The registry is a small key-value contract shaped after etcd v3: revisions, leases, transactions
 * and prefix watches. `etcd` and `memory` both implement it and pass one contract suite
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
   */
  keepAliveOnce(): Promise<number>;
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
  readonly kind: 'etcd' | 'memory';
  /** Human description for messages: the endpoints, or "memory". Never contains credentials. */
  readonly description: string;
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

/** The registry did not answer in time or refused the connection. */
export class RegistryUnavailableError extends Error {
  override name = 'RegistryUnavailableError';
  constructor(
    readonly endpoint: string,
    detail: string,
  ) {
    super(`registry ${endpoint} unreachable: ${detail}`);
  }
}

/** The registry says the lease no longer exists (expired or revoked). */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(readonly leaseId: string) {
    super(`lease ${leaseId} no longer exists`);
  }
}

/** The registry refused the credentials or the operation. */
export class RegistryAuthError extends Error {
  override name = 'RegistryAuthError';
}
