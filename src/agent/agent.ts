import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { listAudit, setServiceEnabled, type SetEnabledOptions, type SetEnabledResult } from '../cluster/admin.js';
import { parseMinHealthy } from '../cluster/capacity.js';
import { adminStateOf } from '../cluster/codec.js';
import { applyStartDisabled } from '../cluster/intent.js';
import { keyLayout, type KeyLayout } from '../cluster/keys.js';
import { filterServices, type ServiceFilter } from '../cluster/topology.js';
import { ClusterView } from '../cluster/view.js';
import type { SdConfig } from '../config/types.js';
import { memberFailoverMs, openRegistry } from '../registry/index.js';
import type { Registry, TxnOp, TxnResult } from '../registry/types.js';
import type { AuditEntry, ClusterEvent, ClusterTopology, HealthCheckSettings, HealthInfo, InstanceMaintenanceInfo, ServiceRecord, ServiceStatus } from '../types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { AgentEvents, AgentOptions, AgentRegistrationStatus, AgentStatusSnapshot } from './agent-types.js';
import { errMessage, withDeadline } from './calls.js';
import { DrainWatcher } from './drain.js';
import { HealthChecker, type HealthCheckResultEvent } from './health-checker.js';
import type { HealthHistoryEntry } from './health-state.js';
import { LeaderDuties } from './leader-duties.js';
import { Leadership } from './leadership.js';
import { LeaseSession, type Session } from './lease-session.js';
import { checkSettingsOf, flapSettingsOf, healthUrlOf, localRecord } from './local-record.js';
import { InstanceMaintenanceHook } from './maintenance-hook.js';
import { PublishedHealth } from './published-health.js';
import { RecordPublisher } from './record-publisher.js';
import { agentRegistryOptions } from './registry-options.js';
import { memoryRegistryNotice } from './registry-notices.js';

export { NotLeaderError } from './leadership.js';
export { agentRegistryOptions } from './registry-options.js';
export type { AgentEvents, AgentOptions, AgentRegistrationStatus, AgentStatusSnapshot } from './agent-types.js';

/** Stable id from name, host and port, so operator intent keyed by id survives restarts. */
export function defaultServiceId(name: string, host: string, port: number): string {
  const digest = createHash('sha256').update(`${name}\0${host}\0${port}`).digest('hex').slice(0, 10);
  const slug = `${name}-${host}-${port}`.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').slice(0, 60);
  return `${slug}-${digest}`;
}

/**
 * The embedded agent: registers the local instance under one lease, health-checks it, contends for
 * leadership with etcd's election recipe on the same lease, and keeps a live view of the cluster.
 */
export class ServiceAgent extends EventEmitter<AgentEvents> {
  readonly config: SdConfig;
  readonly id: string;
  readonly layout: KeyLayout;
  readonly logger: Logger;
  private registryRef: Registry | undefined;
  private readonly ownsRegistry: boolean;
  private viewRef: ClusterView | undefined;
  private readonly ownsView: boolean;
  /** Listeners this agent put on the view, removed on stop (a shared view outlives its agents). */
  private viewListeners: (() => void) | undefined;
  private checker: HealthChecker | undefined;
  private readonly leaseSession: LeaseSession;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly health: PublishedHealth;
  private readonly startedAt = Date.now();
  private readonly leadership: Leadership;
  private readonly duties: LeaderDuties;
  private readonly publisher: RecordPublisher;
  private reachable = false;
  private lastContact: number | null = null;
  private apiUrl: string | undefined;
  private maintenanceHook: InstanceMaintenanceHook | undefined;
  /** Watches this instance's own drain after a disable (see drain.ts). */
  private drain: DrainWatcher | undefined;
  /** `--start-disabled` was settled (written, or an intent already existed) by this process. */
  private startDisabledDone = false;

  constructor(options: AgentOptions) {
    super();
    this.config = options.config;
    this.logger = options.logger ?? silentLogger;
    if (options.view && !options.registry) throw new Error('a shared view needs the registry it reads (options.registry)');
    this.registryRef = options.registry;
    this.ownsRegistry = !options.registry;
    this.viewRef = options.view;
    this.ownsView = !options.view;
    const s = this.config.service;
    this.id = s.id ?? defaultServiceId(s.name, s.host, s.port);
    // Known up front when configured; otherwise whoever serves the API says where (setApiUrl).
    this.apiUrl = this.config.api.enabled ? this.config.api.advertiseUrl : undefined;
    this.layout = keyLayout(this.config.cluster.discovery.namespace);
    this.health = new PublishedHealth({
      serviceId: this.id,
      holdKey: this.layout.healthOf(this.id),
      registry: () => this.registry,
      flap: flapSettingsOf(this.config),
      logger: this.logger,
    });
    const election = this.config.cluster.leaderElection;
    this.leaseSession = new LeaseSession({
      serviceId: this.id,
      registry: () => this.registry,
      running: () => this.state === 'running',
      ttl: election.ttl,
      renewIntervalMs: election.renewInterval * 1000,
      keepAliveTimeoutMs: memberFailoverMs(this.config),
      logger: this.logger,
      hooks: {
        beforeGrant: () => this.settleStartDisabled(),
        populate: (session) => this.populate(session),
        contact: () => this.contact(),
        reachable: (reachable) => this.setReachable(reachable),
        registered: (info) => {
          this.emit('registered', info);
          // A health change while the registration was in flight could not be published without a
          // session (the first probe often answers before etcd does): publish it now, not at the next renew.
          if (this.publisher.dirty) this.publisher.publish();
          this.leadership.evaluate();
        },
        registrationFailed: (err) => this.emit('registrationFailed', err),
        renewed: (session) => {
          this.publisher.publishIfDue();
          this.leadership.renewed(session);
        },
        keepaliveFailed: (err) => this.emit('keepaliveFailed', err),
        livenessChanged: () => this.leadership.evaluate(),
        lost: (info) => this.emit('leaseLost', info),
      },
    });
    this.leadership = new Leadership({
      serviceId: this.id,
      layout: this.layout,
      registry: () => this.registry,
      lease: this.leaseSession,
      running: () => this.state === 'running',
      candidate: () => this.viewRef?.state.leaderCandidate(),
      changed: (leading) => {
        if (leading) this.duties.start();
        else this.duties.stop();
        this.emit('leadership', leading);
        if (this.state === 'running') this.publisher.publish();
      },
      logger: this.logger,
    });
    this.duties = new LeaderDuties({
      serviceId: this.id,
      layout: this.layout,
      registry: () => this.registry,
      leadership: this.leadership,
      running: () => this.state === 'running',
      hasRecord: (id) => !!this.view.state.service(id),
      logger: this.logger,
    });
    this.publisher = new RecordPublisher({
      key: this.layout.service(this.id),
      registry: () => this.registry,
      record: (session, status) => this.currentRecord(status, session),
      session: () => this.leaseSession.current,
      running: () => this.state === 'running',
      refreshInterval: this.config.cluster.healthCheck.refreshInterval,
      unreachable: () => this.setReachable(false),
      logger: this.logger,
    });
  }

  get registry(): Registry {
    if (!this.registryRef) throw new Error('agent not started');
    return this.registryRef;
  }

  get view(): ClusterView {
    if (!this.viewRef) throw new Error('agent not started');
    return this.viewRef;
  }

  get healthUrl(): string {
    return healthUrlOf(this.config);
  }

  /**
   * Where this agent's HTTP API answers (`api.advertiseUrl` until {@link setApiUrl} says otherwise),
   * as written into the record; undefined when it serves none that is known.
   */
  get advertisedApiUrl(): string | undefined {
    return this.apiUrl;
  }

  /** Where this agent's HTTP API answers, written into the record so the CLI, peers and Prometheus can find it. */
  setApiUrl(url: string | undefined): void {
    this.apiUrl = url;
    if (this.state === 'running') this.publisher.publish();
  }

  /** Starts everything. Resolves once the view is listed and the instance is registered, or the first attempt failed. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`agent already ${this.state}`);
    this.state = 'running';
    if (!this.registryRef) {
      this.registryRef = await openRegistry(this.config.cluster.discovery, agentRegistryOptions(this.config, this.logger));
      // A registry given to the agent is its owner's to explain (runAgent, the demo).
      if (this.registryRef.kind === 'memory') {
        const notice = memoryRegistryNotice();
        this.logger.warn({ event: notice.event }, notice.message);
      }
    }
    const view = (this.viewRef ??= new ClusterView(this.registry, this.layout));
    const onEvent = (e: ClusterEvent) => this.onClusterEvent(e);
    const onWarning = (m: string) => {
      this.logger.warn({ event: 'registry.skipped' }, m);
      this.emit('warning', m);
    };
    const onStale = () => {
      this.checkStale();
      this.leadership.evaluate();
    };
    const onSynced = () => {
      this.leadership.evaluate();
      // After a re-list (an etcd restart, say): resume a drain, and expire what lapsed meanwhile.
      this.drain?.update(view.state.intent(this.id));
      if (this.isLeader()) void this.duties.expireIntents();
    };
    view.on('event', onEvent);
    // A shared view's warnings are reported by its owner, once, not by each agent on it.
    if (this.ownsView) view.on('warning', onWarning);
    view.on('stale', onStale);
    view.on('synced', onSynced);
    this.viewListeners = () => {
      view.off('event', onEvent);
      view.off('warning', onWarning);
      view.off('stale', onStale);
      view.off('synced', onSynced);
    };

    const hc = this.config.cluster.healthCheck;
    this.checker = new HealthChecker({
      url: this.healthUrl,
      intervalMs: hc.interval * 1000,
      timeoutMs: hc.timeout * 1000,
      retries: hc.retries,
      gracePeriodMs: hc.gracePeriod * 1000,
    });
    await this.health.restore();
    this.checker.on('result', (r) => this.onHealthResult(r));
    this.drain = new DrainWatcher({
      serviceId: this.id,
      layout: this.layout,
      registry: () => this.registry,
      actor: `agent:${this.id}`,
      probeUrl: this.config.service.drainProbeUrl,
      probeTimeoutMs: hc.timeout * 1000,
      logger: this.logger,
    });
    this.checker.on('statusChange', (c) => {
      this.logger.info(
        { event: 'health.changed', serviceId: this.id, from: c.previous, to: c.status, reason: c.reason },
        `health ${c.previous} -> ${c.status}: ${c.reason}`,
      );
    });

    // A shared view is started by its owner; start() is idempotent, so this only waits for it.
    const viewReady = view.start().catch((err: unknown) => {
      this.logger.warn({ event: 'view.unavailable', err: errMessage(err) }, `cannot list the registry yet: ${errMessage(err)}; retrying`);
    });
    this.checker.start();
    await Promise.all([viewReady, this.leaseSession.ensure()]);
    this.drain.update(view.state.intent(this.id));
    this.leaseSession.startRenewing();
    this.startMaintenanceHook();
  }

  /**
   * Graceful stop: stop claiming leadership, then in one transaction publish `draining` and resign
   * (delete our election key, so a follower takes over at once), then revoke the lease (the record
   * goes with it, so peers see the leave).
   */
  async stop(): Promise<void> {
    if (this.state === 'idle' || this.state === 'stopped') {
      this.state = 'stopped';
      return;
    }
    if (this.state === 'stopping') return;
    // Whether we lead right now: then `<ns>/leader` is ours to delete with our election key.
    const wasLeader = this.isLeader();
    this.state = 'stopping';
    this.leaseSession.halt();
    this.duties.stop();
    this.drain?.stop();
    // Demote before the resign reaches etcd: the next leader is elected by that resign, so the two
    // never both answer `isLeader` true.
    this.leadership.demote();
    this.checker?.drain('agent stopping');
    this.health.patch({ status: 'draining', message: 'agent stopping' });
    // The instance keeps whatever mode it is in: stopping the agent is not an operator's intent.
    const hookStopped = this.maintenanceHook?.stop();
    const session = this.leaseSession.current;
    if (session) {
      const draining = this.publisher.prepare(session, 'draining');
      // One round trip hands over leadership (leadership.ts); without a term, the record alone.
      const resigned = await this.leadership.handOver(session, [draining.op], wasLeader, 1000);
      if (!resigned) await withDeadline(this.publisher.put(session, 'draining'), 1000).catch(() => undefined);
    }
    await this.leaseSession.close(session);
    this.health.patch({ status: 'stopped' });
    await hookStopped;
    await this.checker?.stop('agent stopped');
    this.viewListeners?.();
    if (this.ownsView) await this.viewRef?.stop();
    if (this.ownsRegistry) await this.registryRef?.close();
    this.state = 'stopped';
  }

  /** True only while our election key is the lowest and our lease is provably alive (see leadership.ts). */
  isLeader(): boolean {
    return this.leadership.isLeader();
  }

  get running(): boolean {
    return this.state === 'running';
  }

  /** The local record as this agent would publish it now. */
  currentRecord(status: ServiceStatus = this.health.current.status, session: Session | undefined = this.leaseSession.current): ServiceRecord {
    return localRecord(this.config, {
      id: this.id,
      status,
      health: this.health.current,
      intent: this.viewRef?.state.intent(this.id),
      leader: this.isLeader(),
      registeredAt: session?.registeredAt ?? this.startedAt,
      healthUrl: this.healthUrl,
      apiUrl: this.apiUrl,
      checks: this.checkSettings(),
      maintenance: this.maintenanceHook?.info(),
    });
  }

  status(): AgentStatusSnapshot {
    const rec = this.currentRecord();
    const session = this.leaseSession.current;
    return {
      enabled: this.config.enabled,
      currentService: {
        id: rec.id,
        name: rec.name,
        host: rec.host,
        port: rec.port,
        status: rec.status,
        role: rec.role,
        region: rec.region,
        zone: rec.zone,
        version: rec.version,
        enabled: rec.enabled,
      },
      isLeader: this.isLeader(),
      status: this.registrationStatus(),
      leaderId: this.viewRef?.leaderId() ?? null,
      registry: {
        kind: this.registryRef?.kind ?? this.config.cluster.discovery.registry,
        endpoints: this.registryRef?.description ?? '',
        reachable: this.reachable,
        lastContact: this.lastContact,
      },
      view: {
        stale: this.isStale(),
        lastUpdate: this.viewRef?.lastUpdate ?? 0,
        services: this.viewRef?.state.size ?? 0,
        revision: this.viewRef?.currentRevision ?? 0,
      },
      lease: {
        id: session?.lease.id ?? null,
        ttl: this.config.cluster.leaderElection.ttl,
        renewedAt: session?.renewedAt ?? null,
        term: session?.electionRevision ?? null,
      },
    };
  }

  private registrationStatus(): AgentRegistrationStatus {
    switch (this.state) {
      case 'stopping':
        return 'stopping';
      case 'stopped':
        return 'stopped';
      case 'idle':
        return 'registering';
      case 'running':
        return this.leaseSession.current ? 'registered' : 'registering';
    }
  }

  /** The view is stale when the watch is down or our own keep-alives are not getting through. */
  isStale(): boolean {
    return !this.viewRef || this.viewRef.stale || !this.reachable;
  }

  healthHistory(): HealthHistoryEntry[] {
    return this.checker?.history() ?? [];
  }

  healthSnapshot(): HealthInfo {
    return { ...this.health.current };
  }

  /** The health-check settings published in the record (`checks`), for detection budgets. */
  checkSettings(): HealthCheckSettings {
    return checkSettingsOf(this.config);
  }

  /** The instance maintenance hook's state, when `--instance-maintenance-hook` is on. */
  instanceMaintenance(): InstanceMaintenanceInfo | undefined {
    return this.maintenanceHook?.info();
  }

  // ---- the seed's programmatic API ----

  async getAvailableServices(): Promise<ServiceRecord[]> {
    return this.view.services();
  }

  async getHealthyServices(filter: Omit<ServiceFilter, 'healthy'> = {}): Promise<ServiceRecord[]> {
    return filterServices(this.view.services(), { ...filter, healthy: true });
  }

  async getClusterTopology(): Promise<ClusterTopology> {
    return this.view.topology();
  }

  /** Records operator intent (and an audit entry) for any service of the cluster. */
  async setServiceEnabled(serviceId: string, enabled: boolean, options: SetEnabledOptions | string = {}): Promise<SetEnabledResult> {
    const opts = typeof options === 'string' ? { reason: options } : options;
    // Defaults apply where an option is absent or undefined (a spread would let `actor: undefined` win).
    const result = await setServiceEnabled(this.registry, this.layout, serviceId, enabled, opts, {
      actor: `agent:${this.id}`,
      // A hand-built config (an embedder's, typed before this setting existed) gets the default.
      minHealthy: parseMinHealthy(this.config.cluster.minHealthyPerZone ?? '1'),
    });
    this.logger.info(
      { event: enabled ? 'service.enabled' : 'service.disabled', serviceId, actor: result.audit.actor, reason: opts.reason, changed: result.changed },
      `${enabled ? 'enable' : 'disable'} ${serviceId} by ${result.audit.actor}${result.changed ? '' : ' (no change)'}`,
    );
    return result;
  }

  async getAudit(options: { serviceId?: string; limit?: number } = {}): Promise<AuditEntry[]> {
    return listAudit(this.registry, this.layout, options);
  }

  /**
   * Runs a leader-only write, fenced by our election key's create revision: if another agent took
   * over meanwhile (our key is gone), etcd refuses the transaction and nothing is written.
   */
  async leaderWrite(ops: TxnOp[]): Promise<TxnResult> {
    return this.leadership.leaderWrite(ops);
  }

  /** The fenced transaction itself, without the local leadership check (exposed for fault tests). */
  async fencedTxn(session: Pick<Session, 'electionKey' | 'electionRevision'> | undefined = this.leaseSession.current, ops: TxnOp[]): Promise<TxnResult> {
    return this.leadership.fencedTxn(session, ops);
  }

  /** The fencing token of the current session, for tests that replay a stale leader's write. */
  fencingToken(): { electionKey?: string; electionRevision?: number } | undefined {
    const session = this.leaseSession.current;
    return session ? { electionKey: session.electionKey, electionRevision: session.electionRevision } : undefined;
  }

  // ---- what the lease session asks of the agent ----

  /** Runs before each lease grant: `--start-disabled` writes its intent before the first record exists. */
  private async settleStartDisabled(): Promise<void> {
    if (!this.config.service.startDisabled || this.startDisabledDone) return;
    // Before the first record exists, so the instance is never routable for a moment.
    const wrote = await applyStartDisabled(this.registry, this.layout, this.id, `agent:${this.id}`);
    this.startDisabledDone = true;
    this.logger.info(
      { event: wrote ? 'start_disabled.applied' : 'start_disabled.skipped', serviceId: this.id },
      wrote ? `started disabled (reason start-disabled); enable with: services enable ${this.id}` : 'start-disabled: an operator intent already exists for this id; it stands',
    );
  }

  /** What lives under a new lease: the record and, with leader election, our election key. */
  private async populate(session: Session): Promise<void> {
    if (!this.config.cluster.leaderElection.enabled) return this.publisher.put(session);
    // Record and campaign in one transaction: one round trip fewer per registration, which is
    // what a thousand agents starting at once wait for.
    const record = this.publisher.prepare(session);
    if (await this.leadership.enter(session, [record.op], () => this.publisher.put(session))) record.written();
  }

  private onHealthResult(r: HealthCheckResultEvent): void {
    const flapChanged = this.health.take(r);
    this.emit('healthResult', r);
    if (r.transition.changed || flapChanged || this.publisher.refreshDue()) this.publisher.publish();
  }

  private startMaintenanceHook(): void {
    const s = this.config.service;
    if (!s.maintenanceHook || this.state !== 'running') return;
    const host = s.host.includes(':') ? `[${s.host}]` : s.host;
    const hc = this.config.cluster.healthCheck;
    const hook = new InstanceMaintenanceHook({
      baseUrl: s.maintenanceUrl ?? `http://${host}:${s.port}`,
      // Anything but enabled (disabled, draining, a timed disable) keeps the instance out of service.
      // Until the view has listed once the intent is unknown, and the hook waits.
      // Maintenance once the drain is over: while draining, routers stop sending, the instance finishes its work.
      desired: () => {
        if (!this.viewRef || this.viewRef.lastUpdate === 0) return undefined;
        return adminStateOf(this.viewRef.state.intent(this.id)) === 'disabled' ? 'maintenance' : 'serving';
      },
      timeoutMs: hc.timeout * 1000,
      recheckMs: hc.interval * 1000,
      logger: this.logger,
    });
    hook.on('change', () => this.publisher.publish());
    this.maintenanceHook = hook;
    hook.start();
  }

  private onClusterEvent(e: ClusterEvent): void {
    switch (e.type) {
      case 'serviceJoined':
        this.emit('serviceJoined', e.service, e);
        break;
      case 'serviceLeft':
        this.emit('serviceLeft', e.serviceId, e);
        break;
      case 'leaderElected':
        this.leadership.evaluate();
        this.emit('leaderElected', e.leaderId, e);
        break;
      case 'serviceEnabled':
      case 'serviceDisabled':
        if (e.serviceId === this.id) {
          this.publisher.publish();
          this.drain?.update(this.view.state.intent(this.id));
          this.maintenanceHook?.poke();
        }
        // A disable lapsed, or a new one may expire: the leader re-enables on time (see leader-duties.ts).
        if (this.isLeader() && this.view.state.intent(e.serviceId)?.expiresAt !== undefined) void this.duties.expireIntents();
        this.emit(e.type, e);
        break;
      case 'serviceUpdated':
        if (e.serviceId === this.id) {
          this.drain?.update(this.view.state.intent(this.id));
          // A drain that ended (draining -> disabled) is when the instance's own switch follows.
          this.maintenanceHook?.poke();
        }
        this.emit(e.type, e);
        break;
      default:
        this.emit(e.type, e);
    }
    this.emit('event', e);
  }

  /** The registry answered: proof that our view (watching on the same connection) is current. */
  private contact(): void {
    this.lastContact = Date.now();
    this.viewRef?.noteContact(this.lastContact);
  }

  private setReachable(reachable: boolean): void {
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    this.checkStale();
  }

  private lastStale = true;
  private everCurrent = false;
  private checkStale(): void {
    const stale = this.isStale();
    if (stale === this.lastStale) return;
    this.lastStale = stale;
    this.logger[stale ? 'warn' : 'info'](
      { event: stale ? 'view.stale' : 'view.current' },
      stale ? 'cluster view is stale: the registry is not answering' : `cluster view is current${this.everCurrent ? ' again' : ''}`,
    );
    if (!stale) this.everCurrent = true;
    this.emit('stale', stale);
  }
}
