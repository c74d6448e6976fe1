/**
 * The registry contract in memory: the embedded default for standalone and demo mode, held to the
 * same contract suite as etcd (test/registry/contract.ts).
 *
 * Why this file is long: it is a small etcd (revisions, leases with expiry, transactions, a watch
 * history with compaction) and reads best whole, as the model the other registries are checked against.
 *
 * @module
 */
import {
  LeaseLostError,
  RegistryUnavailableError,
  type KeyValue,
  type ListResult,
  type Registry,
  type RegistryLease,
  type RegistryStatus,
  type TxnCompare,
  type TxnOp,
  type TxnResult,
  type WatchEvent,
  type WatchHandle,
  type WatchHandlers,
} from './types.js';

/** Options of {@link MemoryRegistry}. */
export interface MemoryRegistryOptions {
  /**
   * Share the store of another MemoryRegistry instead of creating one: both see the same keys,
   * revisions and leases, but each has its own watches, availability and `close()`.
   * Store options (`historyLimit`, `minLeaseTtl`) are ignored when sharing.
   */
  shareWith?: MemoryRegistry;
  /** Revisions of watch history kept (default 10,000); older start revisions get `onCompacted`. */
  historyLimit?: number;
  /** Smallest lease TTL in seconds; shorter requests are raised to it (default 1). */
  minLeaseTtl?: number;
  /** Start as unreachable, as if `setAvailable(false)` had been called (default true). */
  available?: boolean;
}

const ENDPOINT = 'memory';
const DEFAULT_HISTORY_LIMIT = 10_000;

interface StoredKv {
  value: string;
  createRevision: number;
  modRevision: number;
  lease: string;
}

interface StoredLease {
  id: string;
  ttl: number;
  keys: Set<string>;
  timer: NodeJS.Timeout;
}

/** Every write produces exactly one revision and one history entry. */
interface HistoryEntry {
  revision: number;
  events: WatchEvent[];
}

type Change = { type: 'put'; key: string; value: string; lease: string } | { type: 'delete'; key: string };

/**
 * The state an etcd server would hold: keys, revisions, leases and the watch history.
 * Shared by every MemoryRegistry client connected to it.
 */
class MemoryStore {
  // A fresh etcd is at revision 1; the first write yields 2.
  revision = 1;
  /** Watches must start at or after this revision (0: nothing compacted yet). */
  compactRevision = 0;
  readonly kvs = new Map<string, StoredKv>();
  readonly leases = new Map<string, StoredLease>();
  readonly history: HistoryEntry[] = [];
  /** One commit listener per open client; the store is disposed when the last one leaves. */
  readonly listeners = new Set<(entry: HistoryEntry) => void>();
  // etcd lease ids are large int64s; starting high keeps ids etcd-like (and never '0').
  private nextLeaseId = 0x694d_0000_0000n + BigInt(Math.floor(Math.random() * 0xffff_ffff));

  constructor(
    readonly historyLimit: number,
    readonly minLeaseTtl: number,
  ) {}

  get(key: string): KeyValue | null {
    const kv = this.kvs.get(key);
    return kv ? toKeyValue(key, kv) : null;
  }

  range(prefix: string): KeyValue[] {
    const matches: { bytes: Buffer; kv: KeyValue }[] = [];
    for (const [key, kv] of this.kvs) {
      if (key.startsWith(prefix)) matches.push({ bytes: Buffer.from(key), kv: toKeyValue(key, kv) });
    }
    // etcd orders keys bytewise (UTF-8), which differs from JS string order for some characters.
    matches.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    return matches.map((m) => m.kv);
  }

  /** Checks that every lease a put names exists, before anything is applied. */
  assertLeases(changes: Change[]): void {
    for (const c of changes) {
      if (c.type === 'put' && c.lease !== '0' && !this.leases.has(c.lease)) throw new LeaseLostError(c.lease);
    }
  }

  /**
   * Applies the changes atomically as one revision and notifies watchers. Deletes of missing keys
   * change nothing; when nothing changes the revision stays, as in etcd.
   */
  commit(changes: Change[]): number {
    const effective = changes.filter((c) => c.type === 'put' || this.kvs.has(c.key));
    if (effective.length === 0) return this.revision;
    const revision = ++this.revision;
    const events: WatchEvent[] = [];
    for (const change of effective) {
      const previous = this.kvs.get(change.key);
      if (previous && previous.lease !== '0') this.leases.get(previous.lease)?.keys.delete(change.key);
      if (change.type === 'put') {
        const kv: StoredKv = {
          value: change.value,
          createRevision: previous?.createRevision ?? revision,
          modRevision: revision,
          lease: change.lease,
        };
        this.kvs.set(change.key, kv);
        if (kv.lease !== '0') this.leases.get(kv.lease)?.keys.add(change.key);
        events.push({ type: 'put', kv: toKeyValue(change.key, kv) });
      } else {
        this.kvs.delete(change.key);
        events.push({ type: 'delete', key: change.key, modRevision: revision, prevValue: previous?.value });
      }
    }
    const entry: HistoryEntry = { revision, events };
    this.history.push(entry);
    if (this.history.length > this.historyLimit) {
      // Dropping history is an implicit compaction: those start revisions can no longer be served.
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactRevision = Math.max(this.compactRevision, dropped[dropped.length - 1]!.revision + 1);
    }
    for (const listener of this.listeners) listener(entry);
    return revision;
  }

  compact(revision: number): void {
    if (revision > this.revision) {
      throw new Error(`required revision ${revision} is a future revision (current ${this.revision})`);
    }
    // Compacting at or below the current compaction point is a no-op (etcd errors; tests prefer calm).
    if (revision <= this.compactRevision) return;
    let drop = 0;
    while (drop < this.history.length && this.history[drop]!.revision < revision) drop++;
    this.history.splice(0, drop);
    this.compactRevision = revision;
  }

  grant(ttlSeconds: number): StoredLease {
    const ttl = Math.max(this.minLeaseTtl, Math.round(ttlSeconds));
    const id = String(this.nextLeaseId++);
    const lease: StoredLease = { id, ttl, keys: new Set(), timer: this.expiryTimer(id, ttl) };
    this.leases.set(id, lease);
    return lease;
  }

  keepAlive(id: string): number {
    const lease = this.leases.get(id);
    if (!lease) throw new LeaseLostError(id);
    clearTimeout(lease.timer);
    lease.timer = this.expiryTimer(id, lease.ttl);
    return lease.ttl;
  }

  /** Deletes the lease and every key attached to it, in one revision. Unknown ids are ignored. */
  revoke(id: string): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    clearTimeout(lease.timer);
    const keys = [...lease.keys].sort();
    this.leases.delete(id);
    this.commit(keys.map((key) => ({ type: 'delete', key })));
  }

  dispose(): void {
    for (const lease of this.leases.values()) clearTimeout(lease.timer);
  }

  private expiryTimer(id: string, ttl: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.revoke(id), ttl * 1000);
    // A demo or test must be able to exit while leases are alive.
    timer.unref();
    return timer;
  }
}

type QueueItem =
  | { kind: 'events'; events: WatchEvent[]; revision: number }
  | { kind: 'connected' }
  | { kind: 'disconnected'; error: Error }
  | { kind: 'compacted'; revision: number }
  | { kind: 'error'; error: Error };

/** One prefix watch of one client. Callbacks always run later, from a queue, in order. */
class MemoryWatch {
  /** No more items will be queued (compacted, failed or cancelled). */
  ended = false;
  cancelled = false;
  private readonly queue: QueueItem[] = [];
  private scheduled = false;

  constructor(
    readonly prefix: string,
    /** Next store revision this watch has not seen yet. */
    public nextRevision: number,
    private readonly handlers: WatchHandlers,
  ) {}

  enqueue(item: QueueItem): void {
    if (this.ended) return;
    if (item.kind === 'compacted' || item.kind === 'error') this.ended = true;
    this.queue.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      // Never deliver inside the write that caused the event: callers must not see re-entrancy.
      setImmediate(() => this.flush());
    }
  }

  /** Queues the part of a revision under this watch's prefix. */
  offer(entry: HistoryEntry): void {
    // A watch may start at a future revision: nothing before it is delivered.
    if (entry.revision < this.nextRevision) return;
    this.nextRevision = entry.revision + 1;
    const events = entry.events.filter((e) => (e.type === 'put' ? e.kv.key : e.key).startsWith(this.prefix));
    if (events.length > 0) this.enqueue({ kind: 'events', events: events.map(cloneEvent), revision: entry.revision });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0 && !this.cancelled) {
      const item = this.queue.shift()!;
      try {
        this.dispatch(item);
      } catch (err) {
        // Like etcd3: a throwing handler surfaces as an uncaught error, but later items still arrive.
        setImmediate(() => {
          throw err;
        });
      }
    }
  }

  private dispatch(item: QueueItem): void {
    switch (item.kind) {
      case 'events':
        this.handlers.onEvents(item.events, item.revision);
        break;
      case 'connected':
        this.handlers.onConnected?.();
        break;
      case 'disconnected':
        this.handlers.onDisconnected?.(item.error);
        break;
      case 'compacted':
        this.handlers.onCompacted(item.revision);
        break;
      case 'error':
        this.handlers.onError?.(item.error);
        break;
    }
  }
}

/**
 * An in-process registry with etcd v3 semantics: one global revision, per-key create/mod revisions,
 * leases whose expiry deletes their keys, atomic compare-and-swap transactions and prefix watches
 * that replay history from a revision. It backs standalone and demo mode, where several agents in one
 * process share one store: give each agent its own client with {@link MemoryRegistry.connect}, so
 * closing or partitioning one agent leaves the others alone.
 */
export class MemoryRegistry implements Registry {
  readonly kind = 'memory' as const;
  readonly description = ENDPOINT;
  private readonly store: MemoryStore;
  private readonly watches = new Set<MemoryWatch>();
  private available: boolean;
  private closed = false;

  constructor(options: MemoryRegistryOptions = {}) {
    if (options.shareWith) {
      if (options.shareWith.closed) throw new Error('cannot share the store of a closed MemoryRegistry');
      this.store = options.shareWith.store;
    } else {
      const historyLimit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
      if (!(historyLimit >= 1)) throw new Error(`historyLimit must be at least 1, got ${historyLimit}`);
      this.store = new MemoryStore(Math.floor(historyLimit), Math.max(1, options.minLeaseTtl ?? 1));
    }
    this.available = options.available ?? true;
    this.store.listeners.add(this.onCommit);
  }

  /** A new client on the same store (another agent in the same process). */
  connect(options: Pick<MemoryRegistryOptions, 'available'> = {}): MemoryRegistry {
    return new MemoryRegistry({ ...options, shareWith: this });
  }

  async get(key: string): Promise<KeyValue | null> {
    this.assertUsable();
    return this.store.get(key);
  }

  async list(prefix: string): Promise<ListResult> {
    this.assertUsable();
    return { kvs: this.store.range(prefix), revision: this.store.revision };
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<number> {
    this.assertUsable();
    const changes: Change[] = [{ type: 'put', key, value, lease: options.lease ?? '0' }];
    this.store.assertLeases(changes);
    return this.store.commit(changes);
  }

  async delete(key: string): Promise<boolean> {
    this.assertUsable();
    const existed = this.store.kvs.has(key);
    this.store.commit([{ type: 'delete', key }]);
    return existed;
  }

  async txn(compare: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    this.assertUsable();
    const seen = new Set<string>();
    for (const op of ops) {
      // etcd rejects a txn that touches one key twice; keep the same contract.
      if (seen.has(op.key)) throw new Error(`duplicate key given in txn request: ${op.key}`);
      seen.add(op.key);
    }
    if (!compare.every((c) => this.holds(c))) return { succeeded: false, revision: this.store.revision };
    const changes: Change[] = ops.map((op) =>
      op.type === 'put' ? { type: 'put', key: op.key, value: op.value, lease: op.lease ?? '0' } : op,
    );
    this.store.assertLeases(changes);
    return { succeeded: true, revision: this.store.commit(changes) };
  }

  async grantLease(ttlSeconds: number): Promise<RegistryLease> {
    this.assertUsable();
    const lease = this.store.grant(ttlSeconds);
    return new MemoryLease(this.store, this.assertUsable, lease.id, lease.ttl);
  }

  async leaseCount(): Promise<number> {
    this.assertUsable();
    return this.store.leases.size;
  }

  watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): WatchHandle {
    // Like etcd, a start revision of 0 (or less) means "from the next write".
    const start = fromRevision > 0 ? fromRevision : this.store.revision + 1;
    const watch = new MemoryWatch(prefix, start, handlers);
    if (this.closed) {
      watch.enqueue({ kind: 'error', error: unavailable('registry closed') });
    } else {
      this.watches.add(watch);
      if (this.available) this.establish(watch);
      else watch.enqueue({ kind: 'disconnected', error: unavailable('simulated outage') });
    }
    return {
      cancel: async () => {
        watch.cancelled = true;
        watch.ended = true;
        this.watches.delete(watch);
      },
    };
  }

  async status(): Promise<RegistryStatus> {
    this.assertUsable();
    return { revision: this.store.revision, version: 'memory', endpoint: ENDPOINT };
  }

  /**
   * Closes this client: its watches stop and later calls reject. The store lives on while other
   * clients use it; the last client to close clears the lease timers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.watches) {
      watch.cancelled = true;
      watch.ended = true;
    }
    this.watches.clear();
    this.store.listeners.delete(this.onCommit);
    if (this.store.listeners.size === 0) this.store.dispose();
  }

  /**
   * Discards watch history before `revision`, like etcd's compaction: watches starting earlier get
   * `onCompacted`. Throws for a future revision; a revision already compacted is a no-op.
   */
  compact(revision: number): void {
    this.store.compact(revision);
  }

  /**
   * Revokes any lease by id, as `etcdctl lease revoke` does: its keys go at once. Operators of the
   * standalone registry (and tests of lease loss) use it; unknown ids are ignored.
   */
  revokeLease(id: string): void {
    this.store.revoke(id);
  }

  /** The revision below which watches can no longer start (0 when nothing was compacted). */
  get compactRevision(): number {
    return this.store.compactRevision;
  }

  /**
   * Simulates this client losing (false) or regaining (true) its connection. While unavailable every
   * call rejects with RegistryUnavailableError and watches get `onDisconnected`; the store keeps
   * running, so leases that are not renewed expire as they would on a real server. On return, watches
   * get `onConnected` and the events they missed (or `onCompacted` if those are gone).
   */
  setAvailable(available: boolean): void {
    if (this.closed || available === this.available) return;
    this.available = available;
    for (const watch of this.watches) {
      if (available) this.establish(watch);
      else watch.enqueue({ kind: 'disconnected', error: unavailable('simulated outage') });
    }
  }

  /** Whether calls currently succeed (not closed and not in a simulated outage). */
  get isAvailable(): boolean {
    return this.available && !this.closed;
  }

  /** Called by the store for every committed revision. */
  private readonly onCommit = (entry: HistoryEntry): void => {
    // A disconnected watch skips live events and catches up from history when it reconnects.
    if (!this.available) return;
    for (const watch of this.watches) {
      if (watch.ended) this.watches.delete(watch);
      else watch.offer(entry);
    }
  };

  /** Throws when this client cannot reach the store. */
  private readonly assertUsable = (): void => {
    if (this.closed) throw unavailable('registry closed');
    if (!this.available) throw unavailable('simulated outage');
  };

  /** (Re)starts a watch: replays history from its next revision, then it receives live events. */
  private establish(watch: MemoryWatch): void {
    if (watch.nextRevision < this.store.compactRevision) {
      watch.enqueue({ kind: 'compacted', revision: this.store.compactRevision });
      this.watches.delete(watch);
      return;
    }
    watch.enqueue({ kind: 'connected' });
    for (const entry of this.store.history) {
      if (entry.revision >= watch.nextRevision) watch.offer(entry);
    }
    watch.nextRevision = Math.max(watch.nextRevision, this.store.revision + 1);
  }

  private holds(c: TxnCompare): boolean {
    const kv = this.store.kvs.get(c.key);
    switch (c.target) {
      // etcd compares a missing key's revisions as 0, and a value compare on a missing key fails.
      case 'createRevision':
        return (kv?.createRevision ?? 0) === Number(c.equals);
      case 'modRevision':
        return (kv?.modRevision ?? 0) === Number(c.equals);
      case 'value':
        return kv !== undefined && kv.value === String(c.equals);
    }
  }
}

class MemoryLease implements RegistryLease {
  constructor(
    private readonly store: MemoryStore,
    /** The owning client's availability check: a lease is only as reachable as its client. */
    private readonly assertUsable: () => void,
    readonly id: string,
    readonly ttl: number,
  ) {}

  async keepAliveOnce(): Promise<number> {
    this.assertUsable();
    return this.store.keepAlive(this.id);
  }

  async revoke(): Promise<void> {
    this.assertUsable();
    this.store.revoke(this.id);
  }
}

function toKeyValue(key: string, kv: StoredKv): KeyValue {
  return { key, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision, lease: kv.lease };
}

/** Each watcher gets its own objects, as it would from the wire. */
function cloneEvent(event: WatchEvent): WatchEvent {
  return event.type === 'put' ? { type: 'put', kv: { ...event.kv } } : { ...event };
}

function unavailable(detail: string): RegistryUnavailableError {
  return new RegistryUnavailableError(ENDPOINT, detail);
}
