import { EventEmitter } from 'node:events';
import type { Registry, WatchEvent, WatchHandle } from '../registry/types.js';
import type { ClusterEvent, ClusterTopology, ServiceRecord } from '../types.js';
import type { KeyLayout } from './keys.js';
import { ClusterState, type ElectionCandidate, type ResignRequest } from './state.js';
import { computeTopology } from './topology.js';

export interface ClusterViewEvents {
  event: [ClusterEvent];
  /** Unparsable or foreign data under the namespace, skipped. */
  warning: [string];
  /** The view lost (true) or regained (false) its live link to the registry. */
  stale: [boolean];
  /** A full listing was applied (first start or after a compaction / lost watch). */
  synced: [number];
  /** `<ns>/resign` appeared or changed: an operator asks the leader of its term to hand over. */
  resignRequested: [ResignRequest];
}

export interface ClusterViewOptions {
  /** Milliseconds between re-list attempts while the registry cannot be listed. */
  retryMs?: number;
}

/**
 * A live view of the namespace: list, then watch from the list's revision + 1. A compacted, broken or
 * disconnected watch re-lists (as soon as the registry answers) and diffs, so watchers see every
 * join and leave once. While the registry is unreachable the last view is kept and marked stale.
 *
 * One view may serve many agents of one process (one watch instead of one per agent): it has no
 * listener limit, and whoever created it starts and stops it.
 */
export class ClusterView extends EventEmitter<ClusterViewEvents> {
  readonly state: ClusterState;
  private watch: WatchHandle | undefined;
  private running = false;
  private started: Promise<void> | undefined;
  private revision = 0;
  private staleFlag = true;
  private lastSyncAt = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  private watchGeneration = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt: number | undefined;
  private readonly retryMs: number;

  constructor(
    private readonly registry: Registry,
    readonly layout: KeyLayout,
    options: ClusterViewOptions = {},
  ) {
    super();
    this.setMaxListeners(0);
    this.retryMs = options.retryMs ?? 500;
    this.state = new ClusterState(layout, (m) => this.emit('warning', m));
  }

  /**
   * Lists and starts watching. Resolves once the first listing is applied, or rejects with the
   * registry error; either way the view keeps trying in the background until stop(). Calling it
   * again while running returns the first call's promise.
   */
  start(): Promise<void> {
    if (this.running && this.started) return this.started;
    this.running = true;
    this.started = this.sync().catch((err: unknown) => {
      this.scheduleResync();
      throw err;
    });
    return this.started;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.started = undefined;
    clearTimeout(this.resyncTimer);
    clearTimeout(this.expiryTimer);
    this.expiryAt = undefined;
    const watch = this.watch;
    this.watch = undefined;
    await watch?.cancel();
  }

  get stale(): boolean {
    return this.staleFlag;
  }

  /**
   * Epoch ms of the last moment the view was known to be current: the last listing or watch batch,
   * or the last {@link noteContact} while the watch was up. A quiet, healthy cluster sends no watch
   * events, so without the latter its view would look as old as its last change.
   */
  get lastUpdate(): number {
    return this.lastSyncAt;
  }

  /**
   * Proof of currency from outside the watch: the registry answered a call (the agent's lease
   * keep-alive) at `at`. While the watch is connected (it shares the connection) the view is as
   * current as that answer; a stale view is not made current by it.
   */
  noteContact(at = Date.now()): void {
    if (!this.staleFlag && this.running) this.lastSyncAt = Math.max(this.lastSyncAt, at);
  }

  get currentRevision(): number {
    return this.revision;
  }

  services(): ServiceRecord[] {
    return this.state.services();
  }

  service(id: string): ServiceRecord | undefined {
    return this.state.service(id);
  }

  leaderId(): string | null {
    return this.state.leaderId();
  }

  electionCandidates(): ElectionCandidate[] {
    return this.state.electionCandidates();
  }

  topology(): ClusterTopology {
    return computeTopology(this.services(), this.leaderId());
  }

  private async sync(): Promise<void> {
    const listing = await this.registry.list(this.layout.root);
    if (!this.running) return;
    const first = this.revision === 0;
    const resignBefore = this.state.resignRequest();
    const events = first ? [] : this.state.replaceWith(listing.kvs);
    if (first) for (const kv of listing.kvs) this.state.put(kv);
    this.revision = listing.revision;
    this.lastSyncAt = Date.now();
    this.openWatch(listing.revision + 1);
    this.setStale(false);
    this.emit('synced', listing.revision);
    for (const e of events) this.emit('event', e);
    this.announceResign(resignBefore);
    this.scheduleExpiry();
  }

  private openWatch(fromRevision: number): void {
    const previous = this.watch;
    // Only the newest watch speaks: a replaced one's late callbacks are ignored.
    const generation = ++this.watchGeneration;
    const live = () => generation === this.watchGeneration && this.running;
    this.watch = this.registry.watchPrefix(this.layout.root, fromRevision, {
      onEvents: (events, revision) => {
        if (live()) this.apply(events, revision);
      },
      onConnected: () => {
        if (!live()) return;
        this.lastSyncAt = Date.now();
        this.setStale(false);
      },
      // A watch that resumes by itself after a lost connection cannot be trusted to resume at the
      // right revision: etcd3 moves its resume point to the head as soon as etcd acknowledges the
      // watch, before etcd has replayed the older events it owes, so a connection lost in between
      // skips them for good (seen in the fault suite: a join missed across an etcd restart).
      // Re-list and diff once the registry answers again, as after a compaction.
      onDisconnected: () => {
        if (live()) this.resyncSoon();
      },
      onCompacted: () => {
        if (live()) this.resyncSoon();
      },
      onError: () => {
        if (live()) this.resyncSoon();
      },
    });
    void previous?.cancel();
  }

  private apply(events: WatchEvent[], revision: number): void {
    const now = Date.now();
    const out: ClusterEvent[] = [];
    const resignBefore = this.state.resignRequest();
    for (const ev of events) {
      out.push(...(ev.type === 'put' ? this.state.put(ev.kv, now) : this.state.delete(ev.key, now)));
    }
    this.revision = Math.max(this.revision, revision);
    this.lastSyncAt = now;
    this.setStale(false);
    for (const e of out) this.emit('event', e);
    this.announceResign(resignBefore);
    this.scheduleExpiry();
  }

  /** The resign request as last read, if any (src/cluster/leader.ts). */
  resignRequest(): ResignRequest | undefined {
    return this.state.resignRequest();
  }

  private announceResign(before: ResignRequest | undefined): void {
    const after = this.state.resignRequest();
    if (after && after !== before) this.emit('resignRequested', after);
  }

  /**
   * Wakes at the earliest intent expiry, so a lapsed disable is announced (`serviceEnabled`) when it
   * lapses rather than when the leader gets round to deleting its key.
   */
  private scheduleExpiry(): void {
    if (!this.running) return;
    const next = this.state.nextIntentExpiry();
    if (next === this.expiryAt) return;
    clearTimeout(this.expiryTimer);
    this.expiryAt = next;
    if (next === undefined) return;
    // setTimeout's limit is 2^31-1 ms (~24.8 days); a later expiry just wakes up early and re-arms.
    const delay = Math.min(Math.max(0, next - Date.now()), 0x7fffffff);
    this.expiryTimer = setTimeout(() => {
      this.expiryAt = undefined;
      if (!this.running) return;
      for (const e of this.state.expireIntents()) this.emit('event', e);
      this.scheduleExpiry();
    }, delay);
    this.expiryTimer.unref();
  }

  private resyncSoon(): void {
    this.watchGeneration++;
    const watch = this.watch;
    this.watch = undefined;
    void watch?.cancel();
    this.setStale(true);
    this.scheduleResync(0);
  }

  private scheduleResync(delay = this.retryMs): void {
    if (!this.running) return;
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.sync().catch(() => this.scheduleResync());
    }, delay);
    this.resyncTimer.unref();
  }

  private setStale(stale: boolean): void {
    if (stale === this.staleFlag) return;
    this.staleFlag = stale;
    this.emit('stale', stale);
  }
}
