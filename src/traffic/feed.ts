/**
 * The registry as a load balancer needs it: a live {@link ClusterView} (list, then watch; re-list
 * after any reconnect) turned into one {@link TrafficSnapshot} per change, with each instance's
 * {@link TrafficVerdict}. What `lb haproxy` and `render` both build on.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { keyLayout, type KeyLayout } from '../cluster/keys.js';
import { ClusterView } from '../cluster/view.js';
import type { Registry } from '../registry/types.js';
import type { ClusterTopology, ServiceRecord } from '../types.js';
import { nextVerdictChange, trafficVerdict, type TrafficState } from './verdict.js';

/** One instance and what the load balancer should do with it. */
export interface TrafficEntry {
  service: ServiceRecord;
  state: TrafficState;
  reason: string;
}

/** The cluster at one moment, sorted by service id. */
export interface TrafficSnapshot {
  /** Epoch ms the verdicts were computed at. */
  at: number;
  /** Registry revision the view had reached. */
  revision: number;
  /**
   * The view lost its watch on the registry: this is the last known state, kept as it was. A load
   * balancer should keep its servers as they are rather than act on silence.
   */
  stale: boolean;
  entries: TrafficEntry[];
  /** Every record, as the API returns it. */
  services: ServiceRecord[];
  serving: ServiceRecord[];
  draining: ServiceRecord[];
  out: ServiceRecord[];
  leaderId: string | null;
  leader: ServiceRecord | null;
  topology: ClusterTopology;
}

export interface TrafficFeedEvents {
  /** After every change: a batch of watch events, a re-listing, a drain deadline, stale or live again. */
  snapshot: [TrafficSnapshot];
  /** Lost (true) or regained (false) the live watch on the registry. */
  stale: [boolean];
  /** Unparsable data under the namespace, skipped. */
  warning: [string];
}

export interface TrafficFeedOptions {
  /** Milliseconds between listing attempts while the registry does not answer (default 500). */
  retryMs?: number;
}

/**
 * A live feed of traffic verdicts. Events of one watch batch are coalesced into one snapshot (a
 * microtask later), so a consumer reacts at once, once. A drain ending at its deadline is a change
 * too, woken by a timer.
 */
export class TrafficFeed extends EventEmitter<TrafficFeedEvents> {
  readonly view: ClusterView;
  readonly layout: KeyLayout;
  private latest: TrafficSnapshot | undefined;
  private pending = false;
  private running = false;
  private synced = false;
  private clockTimer: NodeJS.Timeout | undefined;
  private clockAt: number | undefined;

  constructor(
    readonly registry: Registry,
    namespace: string,
    options: TrafficFeedOptions = {},
  ) {
    super();
    this.layout = keyLayout(namespace);
    this.view = new ClusterView(registry, this.layout, { retryMs: options.retryMs ?? 500 });
    this.view.on('event', () => this.changed());
    this.view.on('synced', () => {
      this.synced = true;
      this.changed();
    });
    this.view.on('stale', (stale) => {
      // The first listing turns the view live: that is no news.
      if (!this.synced) return;
      this.emit('stale', stale);
      this.changed();
    });
    this.view.on('warning', (m) => this.emit('warning', m));
  }

  /**
   * Lists and starts watching; resolves with the first snapshot, or rejects with the registry's
   * error while the feed keeps trying in the background (a later success emits `snapshot`).
   */
  async start(): Promise<TrafficSnapshot> {
    this.running = true;
    await this.view.start();
    return this.snapshotNow();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.clockTimer);
    this.clockAt = undefined;
    await this.view.stop();
  }

  /** The last snapshot emitted, if the registry was ever listed. */
  current(): TrafficSnapshot | undefined {
    return this.latest;
  }

  /** Computes (and remembers, without emitting) the snapshot of this moment. */
  snapshotNow(now = Date.now()): TrafficSnapshot {
    const services = this.view.state.services(now);
    const entries = services.map((service) => ({ service, ...trafficVerdict(service, now) }));
    const leaderId = this.view.leaderId();
    const pick = (state: TrafficState) => entries.filter((e) => e.state === state).map((e) => e.service);
    const snapshot: TrafficSnapshot = {
      at: now,
      revision: this.view.currentRevision,
      stale: this.view.stale,
      entries,
      services,
      serving: pick('serving'),
      draining: pick('draining'),
      out: pick('out'),
      leaderId,
      leader: services.find((s) => s.id === leaderId) ?? null,
      topology: this.view.topology(),
    };
    this.latest = snapshot;
    this.armClock(services, now);
    return snapshot;
  }

  private changed(): void {
    if (this.pending || !this.running || !this.synced) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      if (this.running) this.emit('snapshot', this.snapshotNow());
    });
  }

  /** Wakes when the earliest running drain reaches its deadline. */
  private armClock(services: readonly ServiceRecord[], now: number): void {
    const next = nextVerdictChange(services, now);
    if (next === this.clockAt) return;
    clearTimeout(this.clockTimer);
    this.clockAt = next;
    if (next === undefined || !this.running) return;
    // setTimeout's limit is 2^31-1 ms; a later deadline wakes early and re-arms.
    this.clockTimer = setTimeout(() => {
      this.clockAt = undefined;
      this.changed();
    }, Math.min(Math.max(0, next - now) + 1, 0x7fffffff));
    this.clockTimer.unref();
  }
}
