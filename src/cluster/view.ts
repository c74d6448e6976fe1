import { EventEmitter } from 'node:events';
import type { Registry, WatchEvent, WatchHandle } from '../registry/types.js';
import type { ClusterEvent, ClusterTopology, ServiceRecord } from '../types.js';
import type { KeyLayout } from './keys.js';
import { ClusterState, type ElectionCandidate } from './state.js';
import { computeTopology } from './topology.js';

export interface ClusterViewEvents {
  event: [ClusterEvent];
  /** Unparsable or foreign data under the namespace, skipped. */
  warning: [string];
  /** The view lost (true) or regained (false) its live link to the registry. */
  stale: [boolean];
  /** A full listing was applied (first start or after a compaction / lost watch). */
  synced: [number];
}

export interface ClusterViewOptions {
  /** Milliseconds between re-list attempts while the registry cannot be listed. */
  retryMs?: number;
}

/**
 * A live view of the namespace: list, then watch from the list's revision + 1. A compacted or broken
 * watch re-lists and diffs, so watchers see every join and leave once. While the registry is
 * unreachable the last view is kept and marked stale.
 */
export class ClusterView extends EventEmitter<ClusterViewEvents> {
  readonly state: ClusterState;
  private watch: WatchHandle | undefined;
  private running = false;
  private revision = 0;
  private staleFlag = true;
  private lastSyncAt = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly retryMs: number;

  constructor(
    private readonly registry: Registry,
    readonly layout: KeyLayout,
    options: ClusterViewOptions = {},
  ) {
    super();
    this.retryMs = options.retryMs ?? 500;
    this.state = new ClusterState(layout, (m) => this.emit('warning', m));
  }

  /**
   * Lists and starts watching. Resolves once the first listing is applied, or rejects with the
   * registry error; either way the view keeps trying in the background until stop().
   */
  async start(): Promise<void> {
    this.running = true;
    try {
      await this.sync();
    } catch (err) {
      this.scheduleResync();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.resyncTimer);
    const watch = this.watch;
    this.watch = undefined;
    await watch?.cancel();
  }

  get stale(): boolean {
    return this.staleFlag;
  }

  /** Epoch ms of the last moment the view was known to be current (last sync or watch batch). */
  get lastUpdate(): number {
    return this.lastSyncAt;
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
    const events = first ? [] : this.state.replaceWith(listing.kvs);
    if (first) for (const kv of listing.kvs) this.state.put(kv);
    this.revision = listing.revision;
    this.lastSyncAt = Date.now();
    this.openWatch(listing.revision + 1);
    this.setStale(false);
    this.emit('synced', listing.revision);
    for (const e of events) this.emit('event', e);
  }

  private openWatch(fromRevision: number): void {
    const previous = this.watch;
    this.watch = this.registry.watchPrefix(this.layout.root, fromRevision, {
      onEvents: (events, revision) => this.apply(events, revision),
      onConnected: () => {
        this.lastSyncAt = Date.now();
        this.setStale(false);
      },
      onDisconnected: () => this.setStale(true),
      onCompacted: () => this.resyncSoon(),
      onError: () => this.resyncSoon(),
    });
    void previous?.cancel();
  }

  private apply(events: WatchEvent[], revision: number): void {
    const now = Date.now();
    const out: ClusterEvent[] = [];
    for (const ev of events) {
      out.push(...(ev.type === 'put' ? this.state.put(ev.kv, now) : this.state.delete(ev.key, now)));
    }
    this.revision = Math.max(this.revision, revision);
    this.lastSyncAt = now;
    this.setStale(false);
    for (const e of out) this.emit('event', e);
  }

  private resyncSoon(): void {
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
