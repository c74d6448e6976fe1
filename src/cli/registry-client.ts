import { listAudit, ServiceNotFoundError, setServiceEnabled } from '../cluster/admin.js';
import { keyLayout, type KeyLayout } from '../cluster/keys.js';
import { ClusterState } from '../cluster/state.js';
import { forgetService } from '../cluster/forget.js';
import { leaderInfoFrom, requestResign, type LeaderInfo } from '../cluster/leader.js';
import type { Selection } from '../cluster/selector.js';
import { computeTopology, filterServices, serviceList, type ServiceFilter, type ServiceList } from '../cluster/topology.js';
import type { ClusterView } from '../cluster/view.js';
import { redactUrl } from '../registry/endpoint.js';
import type { EtcdRegistry } from '../registry/etcd.js';
import { RegistryUnavailableError, type ListResult, type Registry } from '../registry/types.js';
import type { AdminIntent, ClusterEvent, ClusterTopology, ServiceRecord } from '../types.js';
import {
  setEnabledSummary,
  type AuditResult,
  type ClusterClient,
  type EventsOptions,
  type ForgetRequestOptions,
  type ForgetSummary,
  type ResignRequestOptions,
  type ResignSummary,
  statusCounts,
  type StatusResult,
  type RegistryTarget,
  type ServiceHealthResult,
  type SetEnabledRequest,
  type SetEnabledSummary,
} from './cluster-contract.js';
import { EtcdHttpReader } from './etcd-http-reader.js';

/** What one-shot reads need from the registry: consistent listings and the server version. */
interface SnapshotReader {
  readonly description: string;
  list(prefix: string): Promise<ListResult>;
  /** One listing of several prefixes at a single revision. */
  listConsistent(prefixes: readonly string[]): Promise<ListResult>;
  status(): Promise<{ version: string }>;
  close(): Promise<void>;
}

/**
 * Redis one-shot reads: the namespace in one listing (one Lua script, so one revision), filtered to
 * the prefixes asked for. Shares the client that writes and watches.
 */
class RedisSnapshotReader implements SnapshotReader {
  constructor(
    readonly description: string,
    private readonly open: () => Promise<Registry>,
  ) {}

  async list(prefix: string): Promise<ListResult> {
    return (await this.open()).list(prefix);
  }

  async listConsistent(prefixes: readonly string[]): Promise<ListResult> {
    let common = prefixes[0] ?? '';
    for (const p of prefixes) while (!p.startsWith(common)) common = common.slice(0, -1);
    const listed = await (await this.open()).list(common);
    return { kvs: listed.kvs.filter((kv) => prefixes.some((p) => kv.key.startsWith(p))), revision: listed.revision };
  }

  async status(): Promise<{ version: string }> {
    const status = await (await this.open()).status();
    return { version: status.version };
  }

  async close(): Promise<void> {
    // The registry client closes the shared connection.
  }
}

/**
 * etcd reads through the gRPC client that also writes and watches: several prefixes at one revision,
 * as {@link EtcdHttpReader} does over the gateway. For a long-lived caller that has loaded gRPC anyway.
 */
class EtcdSnapshotReader implements SnapshotReader {
  constructor(
    readonly description: string,
    private readonly open: () => Promise<EtcdRegistry>,
  ) {}

  async list(prefix: string): Promise<ListResult> {
    return (await this.open()).list(prefix);
  }

  async listConsistent(prefixes: readonly string[]): Promise<ListResult> {
    const [first, ...rest] = prefixes;
    if (first === undefined) return { kvs: [], revision: 0 };
    const registry = await this.open();
    const head = await registry.list(first);
    const others = await Promise.all(rest.map((p) => registry.list(p, head.revision)));
    return { kvs: [...head.kvs, ...others.flatMap((o) => o.kvs)], revision: head.revision };
  }

  async status(): Promise<{ version: string }> {
    const status = await (await this.open()).status();
    return { version: status.version };
  }

  async close(): Promise<void> {
    // The registry client closes the shared connection.
  }
}

export interface RegistryClientOptions {
  /**
   * Where etcd reads go. `gateway` (default): etcd's HTTP gateway, which answers a one-shot command
   * before gRPC could even load. `registry`: the gRPC client that writes and watches, so a
   * long-lived caller (the dashboard) holds one connection to etcd. Redis reads always share it.
   */
  reads?: 'gateway' | 'registry';
}

/**
 * The cluster read straight from the registry. One-shot reads are one consistent listing (etcd: through
 * its HTTP gateway, {@link EtcdHttpReader}, unless `reads: 'registry'`; Redis: one script) turned into a
 * {@link ClusterState}, the same code the agents use; enable/disable and the live event stream open a
 * registry client on first use ({@link RegistryClient.registry}, one per client).
 */
export class RegistryClient implements ClusterClient {
  readonly kind = 'registry' as const;
  readonly description: string;
  readonly layout: KeyLayout;
  readonly reader: SnapshotReader;
  private opened: Promise<Registry> | undefined;

  constructor(
    private readonly target: RegistryTarget,
    options: RegistryClientOptions = {},
  ) {
    this.layout = keyLayout(target.namespace);
    if (target.registry === 'redis') {
      this.description = target.endpoints.map((e) => e.replace(/\/\/[^@/]*@/, '//')).join(',');
      this.reader = new RedisSnapshotReader(this.description, () => this.registry());
    } else if (options.reads === 'registry') {
      this.description = target.endpoints.map((e) => redactUrl(e.replace(/\/+$/, ''))).join(',');
      // openRegistry opens an EtcdRegistry for an etcd target.
      this.reader = new EtcdSnapshotReader(this.description, () => this.registry() as Promise<EtcdRegistry>);
    } else {
      const reader = new EtcdHttpReader(target);
      this.reader = reader;
      this.description = reader.description;
    }
  }

  /** One listing of services, intents and election keys at a single revision. */
  async snapshot(): Promise<{ state: ClusterState; revision: number }> {
    const { services, admin, election } = this.layout;
    const listing = await this.reader.listConsistent([services, admin, election]);
    return { state: ClusterState.fromList(this.layout, listing.kvs, this.target.onWarning), revision: listing.revision };
  }

  async status(): Promise<StatusResult> {
    const base = { clusterName: this.target.clusterName ?? '', namespace: this.layout.namespace };
    const kind = this.target.registry ?? 'etcd';
    try {
      const [member, { state, revision }] = await Promise.all([this.reader.status(), this.snapshot()]);
      const topology = computeTopology(state.services(), state.leaderId());
      return {
        ...base,
        registry: { kind, endpoints: this.description, reachable: true, version: member.version, revision },
        leader: topology.leader,
        counts: statusCounts(topology),
        agent: null,
      };
    } catch (err) {
      if (!(err instanceof RegistryUnavailableError)) throw err;
      return {
        ...base,
        registry: { kind, endpoints: this.description, reachable: false, version: null, revision: null, error: err.message.replace(/^registry \S+ unreachable: /, '') },
        leader: null,
        counts: null,
        agent: null,
      };
    }
  }

  async listServices(filter: ServiceFilter = {}): Promise<ServiceList> {
    const { state } = await this.snapshot();
    return serviceList(filterServices(state.services(), filter));
  }

  async getService(id: string): Promise<ServiceRecord> {
    const { state } = await this.snapshot();
    const service = state.service(id);
    if (!service) throw new ServiceNotFoundError(id);
    return service;
  }

  async getServiceHealth(id: string): Promise<ServiceHealthResult> {
    const service = await this.getService(id);
    // The probe history lives only in the memory of the service's own agent.
    return {
      serviceId: id,
      status: service.status,
      health: service.health,
      history: [],
      ...historyUrlOf(service),
    };
  }

  async getIntent(id: string): Promise<AdminIntent | null> {
    const { state } = await this.snapshot();
    if (!state.service(id) && !state.intent(id)) throw new ServiceNotFoundError(id);
    return state.intent(id) ?? null;
  }

  async topology(selection: Selection = {}): Promise<ClusterTopology> {
    const { state } = await this.snapshot();
    const all = state.services();
    return computeTopology(filterServices(all, selection), state.leaderId(), all);
  }

  async setEnabled(id: string, enabled: boolean, request: SetEnabledRequest = {}): Promise<SetEnabledSummary> {
    const registry = await this.registry();
    const result = await setServiceEnabled(registry, this.layout, id, enabled, {
      ...(request.reason !== undefined ? { reason: request.reason } : {}),
      actor: request.actor ?? 'cli',
      source: 'cli',
      ...(request.expiresAt !== undefined ? { expiresAt: request.expiresAt } : {}),
      ...(request.drainTimeout !== undefined ? { drainTimeout: request.drainTimeout } : {}),
      ...(request.force !== undefined ? { force: request.force } : {}),
      ...(request.minHealthy !== undefined ? { minHealthy: request.minHealthy } : {}),
    });
    return setEnabledSummary({ ...result, reasonUpdated: result.audit.reasonUpdated, previousReason: result.audit.previousReason, repaired: result.audit.repaired });
  }

  async leader(): Promise<LeaderInfo> {
    const { election, leader, resign } = this.layout;
    const listing = await this.reader.listConsistent([election, leader, resign]);
    return leaderInfoFrom(this.layout, listing.kvs);
  }

  async resignLeader(request: ResignRequestOptions = {}): Promise<ResignSummary> {
    const registry = await this.registry();
    const result = await requestResign(registry, this.layout, { ...request, actor: request.actor ?? 'cli', source: 'cli' });
    return { leaderId: result.leaderId, term: result.term, requested: true };
  }

  async forget(id: string, request: ForgetRequestOptions = {}): Promise<ForgetSummary> {
    const registry = await this.registry();
    const result = await forgetService(registry, this.layout, id, { ...request, actor: request.actor ?? 'cli', source: 'cli' });
    return { serviceId: result.serviceId, removed: result.removed, live: result.live };
  }

  async audit(options: { serviceId?: string; limit?: number } = {}): Promise<AuditResult> {
    return { entries: await listAudit(this.reader, this.layout, { limit: 100, ...options }) };
  }

  async events(onEvent: (event: ClusterEvent) => void, signal: AbortSignal, options: EventsOptions = {}): Promise<void> {
    if (signal.aborted) return;
    const registry = await this.registry();
    const { ClusterView } = await import('../cluster/view.js');
    const view: ClusterView = new ClusterView(registry, this.layout);
    view.on('event', (e) => {
      if (!options.types || options.types.has(e.type)) onEvent(e);
    });
    view.on('warning', (m) => this.target.onWarning?.(m));
    let lost = false;
    view.on('stale', (stale) => {
      if (stale === lost) return;
      lost = stale;
      options.onNotice?.(stale ? `lost the watch on ${this.description}; reconnecting` : `watching ${this.description} again`);
    });
    // While etcd is down nothing else holds the event loop (the view's retry timers are unref'd and
    // gRPC has no open call), and node would exit with 13 in the middle of following: hold it.
    const hold = setInterval(() => undefined, 60_000);
    try {
      await view.start();
      if (!signal.aborted) options.onOpen?.();
      await new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      clearInterval(hold);
      await view.stop();
    }
  }

  async close(): Promise<void> {
    await this.reader.close();
    await (await this.opened?.catch(() => undefined))?.close();
  }

  /**
   * The registry client for writes and watches, opened on first use (loading gRPC or ioredis only
   * then). It stays this client's: a caller that watches through it (the dashboard's live source)
   * must leave it open, and `close()` closes it.
   */
  registry(): Promise<Registry> {
    // One client however many callers ask at once (status lists and reads the version together).
    if (!this.opened) {
      this.opened = import('../registry/index.js').then(({ openRegistry }) => openRegistry({
        registry: this.target.registry ?? 'etcd',
        endpoints: this.target.endpoints,
        namespace: this.target.namespace,
        callTimeout: this.target.timeoutMs / 1000,
        ...(this.target.username !== undefined ? { username: this.target.username, password: this.target.password ?? '' } : {}),
        ...(this.target.username === undefined && this.target.password !== undefined ? { password: this.target.password } : {}),
        ...(this.target.tls ? { tls: this.target.tls } : {}),
      }, { onWarning: (w) => this.target.onWarning?.(w.message) }));
    }
    return this.opened;
  }
}

/** Where a service's own agent serves its probe history: the same URL its peers' APIs give. */
function historyUrlOf(record: ServiceRecord): { historyUrl?: string } {
  if (!record.apiUrl) return {};
  try {
    const base = new URL(record.apiUrl);
    // apiUrl comes from the registry: follow only plain http(s) URLs.
    if (base.protocol !== 'http:' && base.protocol !== 'https:') return {};
    return { historyUrl: `${base.origin}${base.pathname.replace(/\/+$/, '')}/service-discovery/services/${encodeURIComponent(record.id)}/health` };
  } catch {
    return {};
  }
}
