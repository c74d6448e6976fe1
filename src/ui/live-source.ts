/**
 * Where the dashboard's live data comes from: one full listing, then events, and a new listing only
 * when the link was lost or the stream says it cannot resume. Never a polling loop over etcd.
 *
 * - {@link RegistrySource}: etcd directly, through the same {@link ClusterView} the agents use (list,
 *   then watch from the next revision; a compacted or broken watch re-lists and diffs). The dashboard
 *   hands it the registry client its reads and actions use: one connection to etcd, as an agent has.
 * - {@link AgentSource}: an agent's API, through the CLI's {@link ClusterClient} (SSE events resumed
 *   with Last-Event-ID; `GET /services` and `GET /status` for listings).
 *
 * @module
 */
import type { AgentStatus, ClusterClient, RegistryTarget } from '../cli/cluster-contract.js';
import type { ClusterView } from '../cluster/view.js';
import type { Registry } from '../registry/types.js';
import type { ClusterEvent, ServiceRecord } from '../types.js';
import type { ConnectionState } from './dashboard-state.js';
import type { Tone } from './format.js';

/** What a source tells the dashboard. */
export interface LiveSink {
  /** A full listing: replace everything. */
  snapshot(services: ServiceRecord[], leaderId: string | null): void;
  event(e: ClusterEvent): void;
  connection(update: Partial<ConnectionState>): void;
  notice(message: string, tone?: Tone): void;
}

export interface LiveSource {
  /** Starts feeding `sink` in the background until `signal` aborts; never throws. */
  start(sink: LiveSink, signal: AbortSignal): void;
  /** Stops and releases every connection the source opened. */
  close(): Promise<void>;
}

/** Milliseconds between listing attempts while the registry cannot be listed. */
const REGISTRY_RETRY_MS = 1_000;

/**
 * The registry directly: a {@link ClusterView} on a registry client, its own or (with `registry`) the
 * one the dashboard's reads and actions use.
 */
export class RegistrySource implements LiveSource {
  private registry: Registry | undefined;
  private view: ClusterView | undefined;
  private closed = false;

  constructor(
    private readonly target: RegistryTarget,
    private readonly options: {
      /**
       * A one-shot listing to draw while the watch connects (the CLI's HTTP-gateway read is up before
       * the gRPC client has even loaded); ignored once the watch has listed.
       */
      quickList?: () => Promise<{ services: ServiceRecord[]; leaderId: string | null }>;
      /**
       * The registry client to watch through, owned by the caller: the source stops its watch on
       * close but leaves the client open. Without it the source opens a client of its own and closes it.
       */
      registry?: () => Promise<Registry>;
    } = {},
  ) {}

  start(sink: LiveSink, signal: AbortSignal): void {
    let watching = false;
    void this.options
      .quickList?.()
      .then(({ services, leaderId }) => {
        if (!watching && !this.closed) sink.snapshot(services, leaderId);
      })
      .catch(() => undefined); // the watch's own listing reports what is wrong
    const watched: LiveSink = {
      snapshot: (services, leaderId) => {
        watching = true;
        sink.snapshot(services, leaderId);
      },
      event: (e) => sink.event(e),
      connection: (update) => sink.connection(update),
      notice: (m, tone) => sink.notice(m, tone),
    };
    void this.run(watched, signal).catch((err: unknown) => {
      sink.connection({ connected: false, error: message(err) });
    });
  }

  private async run(sink: LiveSink, signal: AbortSignal): Promise<void> {
    const shared = this.options.registry;
    const [registry, { ClusterView }, { keyLayout }] = await Promise.all([
      // The registry's own warnings go to the event log too: stderr would tear through the frame (a
      // shared client's owner routes them itself).
      shared ? shared() : openEtcd({ ...this.target, onWarning: (m) => sink.notice(m, 'warn') }),
      import('../cluster/view.js'),
      import('../cluster/keys.js'),
    ]);
    // Closed while our own client was loading: nobody else will close it. A shared one is its owner's.
    if (this.closed || signal.aborted) return shared ? undefined : registry.close();
    this.registry = registry;
    const view: ClusterView = new ClusterView(this.registry, keyLayout(this.target.namespace), { retryMs: REGISTRY_RETRY_MS });
    this.view = view;
    let everSynced = false;
    view.on('synced', () => {
      sink.snapshot(view.services(), view.leaderId());
      sink.connection({ connected: true });
      if (everSynced) sink.notice(`re-listed ${view.services().length} services from ${this.registry!.description}`, 'info');
      everSynced = true;
    });
    view.on('event', (e) => sink.event(e));
    view.on('warning', (m) => sink.notice(m, 'warn'));
    view.on('stale', (stale) => {
      sink.connection({ connected: !stale });
      // The first listing also flips the view to live; only later changes are news.
      if (!stale && !everSynced) return;
      sink.notice(stale ? `lost the watch on ${this.registry!.description}; reconnecting` : `watching ${this.registry!.description} again`, stale ? 'bad' : 'good');
    });
    signal.addEventListener('abort', () => void this.close(), { once: true });
    try {
      await view.start();
    } catch (err) {
      // The view keeps retrying by itself; say why it is not live yet.
      sink.connection({ connected: false, error: message(err) });
      sink.notice(`cannot list ${this.registry.description}: ${message(err)}; retrying every ${REGISTRY_RETRY_MS / 1000}s`, 'bad');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.view?.stop().catch(() => undefined);
    if (!this.options.registry) await this.registry?.close().catch(() => undefined);
  }
}

async function openEtcd(target: RegistryTarget): Promise<Registry> {
  if (target.registry === 'redis') {
    const { RedisRegistry } = await import('../registry/redis.js');
    return new RedisRegistry({
      endpoint: target.endpoints[0]!,
      callTimeoutMs: target.timeoutMs,
      ...(target.username !== undefined ? { username: target.username } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      ...(target.tls ? { tls: target.tls } : {}),
      onWarning: (w) => target.onWarning?.(w.message),
    });
  }
  const { EtcdRegistry } = await import('../registry/etcd.js');
  return new EtcdRegistry({
    endpoints: target.endpoints,
    callTimeoutMs: target.timeoutMs,
    ...(target.username !== undefined ? { username: target.username, password: target.password ?? '' } : {}),
    ...(target.tls ? { tls: target.tls } : {}),
  });
}

export interface AgentSourceOptions {
  /** Milliseconds between `GET /status` reads for the header's registry line (default 5000). */
  statusEveryMs?: number;
  /**
   * Milliseconds to wait for the event stream to open before listing anyway (default 1000): the
   * listing normally waits for it, so that nothing changes unseen between the two, but a stream held
   * up (a buffering proxy) must not leave the screen empty.
   */
  streamWaitMs?: number;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5_000;

/**
 * An agent's API. The event stream opens first; the listing starts once it is open (the client's
 * `onOpen`), and events are held while the listing is read, then replayed on top of it, so nothing
 * that happens before, during or after the listing is lost, with one listing.
 */
export class AgentSource implements LiveSource {
  private buffer: ClusterEvent[] | undefined;
  /** The event stream has been open at least once. */
  private opened = false;
  private listing: Promise<void> | undefined;
  private listAgain = false;
  private retryDelay = RETRY_MIN_MS;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private sink: LiveSink | undefined;
  private signal: AbortSignal | undefined;

  constructor(
    private readonly client: ClusterClient,
    private readonly options: AgentSourceOptions = {},
  ) {}

  start(sink: LiveSink, signal: AbortSignal): void {
    this.sink = sink;
    this.signal = signal;
    signal.addEventListener('abort', () => void this.close(), { once: true });
    this.follow();
    // The stream lists when it opens; should it be slow to, draw a listing meanwhile (and again on open).
    this.later(this.options.streamWaitMs ?? 1_000, () => {
      if (!this.opened && !this.listing) void this.relist();
    });
    const every = this.options.statusEveryMs ?? 5_000;
    const tick = () => {
      void this.readStatus().finally(() => this.later(every, tick));
    };
    this.later(every, tick);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Follows the event stream; its first connection failing is retried here, later ones by the client. */
  private follow(): void {
    const signal = this.signal!;
    let open = false;
    void this.client
      .events((e) => this.onEvent(e), signal, {
        onOpen: () => {
          // Reconnections resume with Last-Event-ID, or say through onNotice that they could not.
          if (open) return;
          open = true;
          this.opened = true;
          void this.relist();
        },
        onNotice: (m) => {
          this.sink!.notice(m, /resumed/.test(m) ? 'good' : 'warn');
          // Interrupted, resumed, reset or overflowed: a fresh listing makes sure nothing was missed.
          void this.relist();
        },
      })
      .catch((err: unknown) => {
        if (this.closed || signal.aborted) return;
        this.sink!.connection({ connected: false, error: message(err) });
        this.later(this.nextDelay(), () => {
          this.follow();
          void this.relist();
        });
      });
  }

  private onEvent(e: ClusterEvent): void {
    if (this.buffer) this.buffer.push(e);
    else this.sink!.event(e);
  }

  /** Lists services and status, replays what arrived meanwhile; retries with back-off while it fails. */
  private relist(): Promise<void> {
    if (this.listing) {
      this.listAgain = true;
      return this.listing;
    }
    this.listing = this.listOnce().finally(() => {
      this.listing = undefined;
      if (this.listAgain && !this.closed) {
        this.listAgain = false;
        void this.relist();
      }
    });
    return this.listing;
  }

  private async listOnce(): Promise<void> {
    if (this.closed) return;
    this.buffer = [];
    try {
      const [list, status] = await Promise.all([this.client.listServices(), this.client.status()]);
      if (this.closed) return;
      const agent = status.agent ?? undefined;
      this.sink!.snapshot(list.services, agent?.leaderId ?? list.services.find((s) => s.role === 'leader')?.id ?? null);
      const held = this.buffer;
      this.buffer = undefined;
      for (const e of held) this.sink!.event(e);
      this.sink!.connection({ connected: true, ...(agent ? agentConnection(agent) : {}) });
      this.retryDelay = RETRY_MIN_MS;
    } catch (err) {
      const held = this.buffer ?? [];
      this.buffer = undefined;
      for (const e of held) this.sink!.event(e);
      if (this.closed) return;
      this.sink!.connection({ connected: false, error: message(err) });
      this.later(this.nextDelay(), () => void this.relist());
    }
  }

  private async readStatus(): Promise<void> {
    if (this.closed) return;
    try {
      const status = await this.client.status();
      if (!this.closed && status.agent) this.sink!.connection(agentConnection(status.agent));
    } catch {
      // The event stream and the listing report an unreachable agent; the header keeps its last word.
    }
  }

  private nextDelay(): number {
    const d = this.retryDelay;
    this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
    return d;
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }
}

function agentConnection(status: AgentStatus): Partial<ConnectionState> {
  return {
    // An agent older than the cluster section names none: its instance's name instead.
    cluster: status.cluster ? clusterLabel(status.cluster.name, status.cluster.namespace) : `${status.currentService.name} (via ${status.currentService.id})`,
    registry: { description: `${status.registry.kind} ${status.registry.endpoints}`, reachable: status.registry.reachable, stale: status.view.stale },
  };
}

/** The header's cluster: `proxy-stone-cluster (proxy-stone)`, the name and the namespace it lives under. */
export function clusterLabel(name: string | undefined, namespace: string): string {
  return name ? `${name} (${namespace})` : namespace;
}

function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
