/**
 * Prometheus metrics of one agent, with prom-client.
 *
 * Each {@link AgentMetrics} has its own prom-client `Registry`, not the global one, so several agents
 * in one process (the demo, tests, an embedding host) never collide. Process metrics (`process_*`,
 * `nodejs_*`) describe the process, not an agent: they live in one lazily created process-level
 * registry (never prom-client's global, which a host may use for its own) and are appended to each
 * agent's output, so every agent's `/metrics` is a complete, valid exposition with each name once.
 *
 * Registry latency (`proxy_stone_registry_request_duration_seconds`) is measured by a Registry
 * decorator ({@link AgentMetrics.instrumentRegistry}) rather than by timing agent operations: an
 * agent operation is several round trips (register = grant + put + txn) mixed with local work, while
 * the decorator sees each call, keep-alives included, labelled by operation. The price is wiring: the
 * composition root wraps the registry before building the agent (see the example on the class).
 *
 * The seed fixes `proxy_stone_services_total` as the name of a gauge; `promtool check metrics`
 * warns that non-counters should not end in `_total`. The seed wins; the warning is expected.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import type { ServiceAgent } from '../agent/agent.js';
import type { ClusterView } from '../cluster/view.js';
import type {
  KeyValue,
  ListResult,
  Registry,
  RegistryLease,
  RegistryStatus,
  TxnCompare,
  TxnOp,
  TxnResult,
  WatchHandle,
  WatchHandlers,
} from '../registry/types.js';
import { CLUSTER_EVENT_TYPES, SERVICE_STATUSES, type ClusterEvent } from '../types.js';
import type { EventStream } from './events.js';

/** Options of {@link AgentMetrics}. */
export interface AgentMetricsOptions {
  /** Append the process-level `process_*` / `nodejs_*` metrics to {@link AgentMetrics.render} (default true). */
  processMetrics?: boolean;
}

/** Registry operations timed by {@link AgentMetrics.instrumentRegistry}. */
export type RegistryOperation =
  | 'get'
  | 'list'
  | 'put'
  | 'delete'
  | 'txn'
  | 'grantLease'
  | 'keepAlive'
  | 'revoke'
  | 'leaseCount'
  | 'status';

let processRegistry: PromRegistry | undefined;

/** The process-wide registry of default process metrics, created (and its collectors started) once. */
export function processMetricsRegistry(): PromRegistry {
  if (!processRegistry) {
    processRegistry = new PromRegistry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const SECONDS_FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The metrics of one agent. Create it, optionally wrap the registry, then {@link observe} the agent:
 *
 * ```ts
 * const metrics = new AgentMetrics();
 * const registry = metrics.instrumentRegistry(await openRegistry(config.cluster.discovery));
 * const agent = new ServiceAgent({ config, registry }); // the caller closes `registry` after stop()
 * const api = await startApiServer(agent, { ...options, metrics }); // observes the agent
 * ```
 */
export class AgentMetrics {
  /** This agent's metrics only (no process metrics): merge it into a host's registry if you like. */
  readonly registry = new PromRegistry();
  readonly processMetrics: boolean;

  readonly #healthDuration: Histogram<'outcome'>;
  readonly #healthChecks: Counter<'outcome'>;
  readonly #leaderElections: Counter;
  readonly #registrations: Counter<'kind'>;
  readonly #registryDuration: Histogram<'operation' | 'outcome'>;
  readonly #keepaliveFailures: Counter;
  readonly #leaseLost: Counter;
  readonly #watchReconnects: Counter;
  readonly #events: Counter<'type'>;
  readonly #sseOverflows: Counter;
  readonly #sseRefused: Counter<'limit'>;
  readonly #streams = new Set<EventStream>();
  #agent: ServiceAgent | undefined;
  #view: ClusterView | undefined;
  #viewEverCurrent = false;
  #detach: () => void = () => undefined;

  constructor(options: AgentMetricsOptions = {}) {
    this.processMetrics = options.processMetrics ?? true;
    const registers = [this.registry];
    const agentOf = (): ServiceAgent | undefined => this.#agent;
    const servicesOf = () => {
      const agent = agentOf();
      try {
        return agent ? agent.view.services() : [];
      } catch {
        return []; // not started yet
      }
    };

    new Gauge({
      name: 'proxy_stone_services_total',
      help: 'Services in the cluster view by health status, enabled or not (a gauge; the name is fixed by the seed). Taking traffic: proxy_stone_services_routable.',
      labelNames: ['status'],
      registers,
      collect() {
        const counts = Object.fromEntries(SERVICE_STATUSES.map((s) => [s, 0]));
        for (const s of servicesOf()) counts[s.status] = (counts[s.status] ?? 0) + 1;
        for (const status of SERVICE_STATUSES) this.set({ status }, counts[status] ?? 0);
      },
    });
    new Gauge({
      name: 'proxy_stone_services_routable',
      help:
        'Services in the cluster view taking traffic: status healthy and enabled (isHealthy, what getHealthyServices() returns). ' +
        'proxy_stone_services_total{status="healthy"} counts disabled healthy services too.',
      registers,
      collect() {
        this.set(servicesOf().filter((s) => s.isHealthy).length);
      },
    });
    new Gauge({
      name: 'proxy_stone_services_by_region',
      help:
        'Services in the cluster view by region and zone. Every agent reports the whole cluster: take max() over agents per (region, zone), then sum by region.',
      labelNames: ['region', 'zone'],
      registers,
      collect() {
        // Rebuilt on each scrape, so a region or zone nobody registers in any more disappears.
        this.reset();
        const counts = new Map<string, { region: string; zone: string; n: number }>();
        for (const s of servicesOf()) {
          const key = JSON.stringify([s.region, s.zone]);
          const entry = counts.get(key) ?? { region: s.region, zone: s.zone, n: 0 };
          entry.n += 1;
          counts.set(key, entry);
        }
        for (const { region, zone, n } of counts.values()) this.set({ region, zone }, n);
      },
    });
    new Gauge({
      name: 'proxy_stone_service_info',
      help:
        'One series per service in the cluster view, value 1, labelled with its id, region, zone, version, status, role and enabled (true/false). ' +
        'Cardinality: one series per registered service, so bounded by the cluster size; a status, role or version change replaces the series.',
      labelNames: ['service_id', 'region', 'zone', 'version', 'status', 'role', 'enabled'],
      registers,
      collect() {
        this.reset();
        for (const s of servicesOf()) {
          this.set(
            { service_id: s.id, region: s.region, zone: s.zone, version: s.version, status: s.status, role: s.role, enabled: String(s.enabled) },
            1,
          );
        }
      },
    });
    new Gauge({
      name: 'proxy_stone_cluster_size',
      help: 'Services registered in the cluster, as this agent sees it.',
      registers,
      collect() {
        this.set(servicesOf().length);
      },
    });
    new Gauge({
      name: 'proxy_stone_is_leader',
      help: '1 while this agent is the cluster leader, else 0.',
      registers,
      collect() {
        this.set(agentOf()?.isLeader() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'proxy_stone_view_stale',
      help: "1 while this agent's cluster view may be out of date (registry unreachable), else 0.",
      registers,
      collect() {
        const agent = agentOf();
        this.set(!agent || agent.isStale() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'proxy_stone_service_flapping',
      help: 'One series per service held down as flapping (status unhealthy until stable), value 1; absent when none is.',
      labelNames: ['service_id'],
      registers,
      collect() {
        this.reset();
        for (const s of servicesOf()) if (s.health.flapping) this.set({ service_id: s.id }, 1);
      },
    });
    new Gauge({
      name: 'proxy_stone_instance_maintenance_mismatch',
      help: "1 while the local instance's own maintenance mode differs from the operator's intent (--instance-maintenance-hook), else 0.",
      registers,
      collect() {
        const m = agentOf()?.instanceMaintenance();
        this.set(m && !m.inSync ? 1 : 0);
      },
    });
    const streams = this.#streams;
    new Gauge({
      name: 'proxy_stone_sse_clients',
      help: 'Clients connected to the event stream (GET /service-discovery/events).',
      registers,
      collect() {
        let n = 0;
        for (const s of streams) n += s.clientCount;
        this.set(n);
      },
    });
    this.#healthDuration = new Histogram({
      name: 'proxy_stone_health_check_duration_seconds',
      help: 'Duration of the health checks of the local instance.',
      labelNames: ['outcome'],
      buckets: SECONDS_FAST,
      registers,
    });
    this.#healthChecks = new Counter({
      name: 'proxy_stone_health_checks_total',
      help: 'Health checks of the local instance by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.#leaderElections = new Counter({
      name: 'proxy_stone_leader_elections_total',
      help: 'Leader elections seen by this agent (leaderElected events naming a leader).',
      registers,
    });
    this.#registrations = new Counter({
      name: 'proxy_stone_service_registrations_total',
      help: 'Registrations of the local instance: initial, or reregistration after a lost lease.',
      labelNames: ['kind'],
      registers,
    });
    this.#registryDuration = new Histogram({
      name: 'proxy_stone_registry_request_duration_seconds',
      help: 'Round-trip time of registry (etcd) requests made by this agent.',
      labelNames: ['operation', 'outcome'],
      buckets: SECONDS_FAST,
      registers,
    });
    this.#keepaliveFailures = new Counter({
      name: 'proxy_stone_lease_keepalive_failures_total',
      help: 'Lease keep-alives that failed because the registry did not answer.',
      registers,
    });
    this.#leaseLost = new Counter({
      name: 'proxy_stone_lease_lost_total',
      help: 'Leases found expired or revoked, each followed by a reregistration.',
      registers,
    });
    this.#watchReconnects = new Counter({
      name: 'proxy_stone_watch_reconnects_total',
      help: 'Times the cluster view became current again after being stale (watch re-established).',
      registers,
    });
    this.#events = new Counter({
      name: 'proxy_stone_cluster_events_total',
      help: 'Cluster events seen by this agent, by type.',
      labelNames: ['type'],
      registers,
    });
    this.#sseOverflows = new Counter({
      name: 'proxy_stone_sse_overflow_disconnects_total',
      help: 'Event stream clients disconnected for falling too far behind.',
      registers,
    });
    this.#sseRefused = new Counter({
      name: 'proxy_stone_sse_refused_total',
      help: 'Event stream clients refused past a cap: limit="total" (the agent\'s maximum, 503) or "client" (one address\'s maximum, 429).',
      labelNames: ['limit'],
      registers,
    });
    for (const limit of ['total', 'client']) this.#sseRefused.inc({ limit }, 0);
    // Known label values start at 0, so dashboards and rate() see them before the first increment.
    for (const outcome of ['success', 'failure']) {
      this.#healthChecks.inc({ outcome }, 0);
      this.#healthDuration.zero({ outcome });
    }
    for (const kind of ['initial', 'reregistration']) this.#registrations.inc({ kind }, 0);
    for (const type of CLUSTER_EVENT_TYPES) this.#events.inc({ type }, 0);
  }

  /**
   * Starts counting this agent's events; returns a function that stops it. Call before or after
   * `agent.start()`; calling again with the same agent is a no-op, with another agent an error (one
   * AgentMetrics per agent).
   */
  observe(agent: ServiceAgent): () => void {
    if (this.#agent === agent) return this.#detach;
    if (this.#agent) throw new Error('this AgentMetrics already observes another agent');
    this.#agent = agent;
    const onHealth = ({ result }: { result: { ok: boolean; latencyMs: number } }): void => {
      const outcome = result.ok ? 'success' : 'failure';
      this.#healthChecks.inc({ outcome });
      this.#healthDuration.observe({ outcome }, result.latencyMs / 1000);
    };
    const onEvent = (e: ClusterEvent): void => {
      this.#events.inc({ type: e.type });
      if (e.type === 'leaderElected' && e.leaderId !== null) this.#leaderElections.inc();
      this.#hookView();
    };
    const onRegistered = ({ reregistration }: { reregistration: boolean }): void => {
      this.#registrations.inc({ kind: reregistration ? 'reregistration' : 'initial' });
      this.#hookView();
    };
    const onKeepaliveFailed = (): void => void this.#keepaliveFailures.inc();
    const onLeaseLost = (): void => void this.#leaseLost.inc();
    const onStale = (): void => this.#hookView();
    agent.on('healthResult', onHealth);
    agent.on('event', onEvent);
    agent.on('registered', onRegistered);
    agent.on('keepaliveFailed', onKeepaliveFailed);
    agent.on('leaseLost', onLeaseLost);
    agent.on('stale', onStale);
    this.#detach = () => {
      agent.off('healthResult', onHealth);
      agent.off('event', onEvent);
      agent.off('registered', onRegistered);
      agent.off('keepaliveFailed', onKeepaliveFailed);
      agent.off('leaseLost', onLeaseLost);
      agent.off('stale', onStale);
      this.#view?.off('stale', this.#onViewStale);
    };
    // Observed after start() (the usual order: start the agent, then its API): its first
    // registration has already happened and would otherwise never be counted.
    if (agent.status().lease.id !== null) this.#registrations.inc({ kind: 'initial' });
    this.#hookView();
    return this.#detach;
  }

  /** Counts the clients of an event stream in `proxy_stone_sse_clients`, its overflows and the clients it refused. */
  trackEventStream(stream: EventStream): () => void {
    const onOverflow = (): void => this.#sseOverflows.inc();
    const onRefused = (limit: 'total' | 'client'): void => this.#sseRefused.inc({ limit });
    this.#streams.add(stream);
    stream.on('overflow', onOverflow);
    stream.on('refused', onRefused);
    return () => {
      this.#streams.delete(stream);
      stream.off('overflow', onOverflow);
      stream.off('refused', onRefused);
    };
  }

  /** Wraps a registry so each call is timed in `proxy_stone_registry_request_duration_seconds`. */
  instrumentRegistry(registry: Registry): Registry {
    return new InstrumentedRegistry(registry, (operation, outcome, seconds) =>
      this.#registryDuration.observe({ operation, outcome }, seconds),
    );
  }

  /** Content type of {@link render}'s output (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: this agent's metrics, then the process metrics (when enabled). */
  async render(): Promise<string> {
    this.#hookView();
    const own = await this.registry.metrics();
    if (!this.processMetrics) return own;
    const proc = await processMetricsRegistry().metrics();
    return `${own.endsWith('\n') ? own : `${own}\n`}${proc}`;
  }

  /** Watches the agent's ClusterView for stale→current transitions, once it exists. */
  #hookView(): void {
    if (this.#view || !this.#agent) return;
    let view: ClusterView;
    try {
      view = this.#agent.view;
    } catch {
      return; // not started yet
    }
    this.#view = view;
    // The first time the view becomes current is the initial listing, not a reconnect.
    this.#viewEverCurrent = !view.stale;
    view.on('stale', this.#onViewStale);
  }

  readonly #onViewStale = (stale: boolean): void => {
    if (stale) return;
    if (this.#viewEverCurrent) this.#watchReconnects.inc();
    this.#viewEverCurrent = true;
  };
}

type Observe = (operation: RegistryOperation, outcome: 'ok' | 'error', seconds: number) => void;

async function timed<T>(observe: Observe, operation: RegistryOperation, call: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    const value = await call();
    observe(operation, 'ok', (performance.now() - t0) / 1000);
    return value;
  } catch (err) {
    observe(operation, 'error', (performance.now() - t0) / 1000);
    throw err;
  }
}

/** A Registry decorator timing every request; watches are streams, not requests, and pass through. */
class InstrumentedRegistry implements Registry {
  readonly kind: Registry['kind'];
  readonly description: string;

  constructor(
    private readonly inner: Registry,
    private readonly observe: Observe,
  ) {
    this.kind = inner.kind;
    this.description = inner.description;
  }

  get(key: string): Promise<KeyValue | null> {
    return timed(this.observe, 'get', () => this.inner.get(key));
  }
  list(prefix: string): Promise<ListResult> {
    return timed(this.observe, 'list', () => this.inner.list(prefix));
  }
  put(key: string, value: string, options?: { lease?: string }): Promise<number> {
    return timed(this.observe, 'put', () => this.inner.put(key, value, options));
  }
  delete(key: string): Promise<boolean> {
    return timed(this.observe, 'delete', () => this.inner.delete(key));
  }
  txn(compare: TxnCompare[], ops: TxnOp[]): Promise<TxnResult> {
    return timed(this.observe, 'txn', () => this.inner.txn(compare, ops));
  }
  async grantLease(ttlSeconds: number): Promise<RegistryLease> {
    const lease = await timed(this.observe, 'grantLease', () => this.inner.grantLease(ttlSeconds));
    const observe = this.observe;
    return {
      id: lease.id,
      ttl: lease.ttl,
      keepAliveOnce: (options) => timed(observe, 'keepAlive', () => lease.keepAliveOnce(options)),
      revoke: () => timed(observe, 'revoke', () => lease.revoke()),
    };
  }
  leaseCount(): Promise<number> {
    return timed(this.observe, 'leaseCount', () => this.inner.leaseCount());
  }
  watchPrefix(prefix: string, fromRevision: number, handlers: WatchHandlers): WatchHandle {
    return this.inner.watchPrefix(prefix, fromRevision, handlers);
  }
  status(): Promise<RegistryStatus> {
    return timed(this.observe, 'status', () => this.inner.status());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
