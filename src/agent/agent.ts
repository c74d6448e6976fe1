/**
 * The embedded agent, `ServiceAgent`: what embedders, the API and the CLI's `agent` command hold. It
 * composes parts that each have a file, and wires them to the cluster view and to each other:
 *
 * - lease-session.ts: the one lease (grant, keep-alive, its deadline, re-grant when it is lost);
 * - leadership.ts: campaign, self-demotion when the lease deadline passes, fenced writes, step-down;
 * - leader-duties.ts: what the leader does while it leads (expiring timed disables, audit retention);
 * - record-publisher.ts and local-record.ts: publish-on-change of the record, and its content;
 * - published-health.ts: the probes' results through the flap damper, and the hold's persistence;
 * - instance-admin.ts: what an operator's intent does to the instance (start-disabled, drain, hook);
 * - staleness.ts: whether the view can be trusted.
 *
 * Here stay the public API (its types in agent-types.ts), start and stop, and the view's events.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { listAudit, setServiceEnabled, type SetEnabledOptions, type SetEnabledResult } from '../cluster/admin.js';
import { parseMinHealthy } from '../cluster/capacity.js';
import { keyLayout, type KeyLayout } from '../cluster/keys.js';
import { filterServices, type ServiceFilter } from '../cluster/topology.js';
import { ClusterView } from '../cluster/view.js';
import { forgetService, type ForgetOptions, type ForgetResult } from '../cluster/forget.js';
import { leaderInfo, requestResign, type LeaderInfo, type ResignOptions, type ResignResult } from '../cluster/leader.js';
import type { ResignRequest } from '../cluster/state.js';
import type { SdConfig } from '../config/types.js';
import { memberFailoverMs, openRegistry } from '../registry/index.js';
import type { Registry, TxnOp, TxnResult } from '../registry/types.js';
import type { AuditEntry, ClusterEvent, ClusterTopology, HealthCheckSettings, HealthInfo, InstanceMaintenanceInfo, ServiceRecord, ServiceStatus } from '../types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { AgentEvents, AgentOptions, AgentRegistrationStatus, AgentStatusSnapshot } from './agent-types.js';
import { errMessage, withDeadline } from './calls.js';
import { parseCheckUrls } from './checks/check-spec.js';
import { CheckSet, UnknownCheckError } from './checks/check-set.js';
import type { TtlReport } from './checks/ttl-check.js';
import { HealthChecker, type HealthCheckResultEvent } from './health-checker.js';
import type { HealthHistoryEntry } from './health-state.js';
import { InstanceAdmin } from './instance-admin.js';
import { LeaderDuties } from './leader-duties.js';
import { Leadership } from './leadership.js';
import { LeaseSession, type Session } from './lease-session.js';
import { checkSettingsOf, flapSettingsOf, healthUrlOf, instanceBaseUrl, localRecord } from './local-record.js';
import { PublishedHealth } from './published-health.js';
import { RecordPublisher } from './record-publisher.js';
import { Staleness } from './staleness.js';
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
  /** The one default HTTP check, or the instance's own list of checks (`--check`). */
  private checker: HealthChecker | CheckSet | undefined;
  private state: 'idle' | 'running' | 'stopping' | 'stopped' = 'idle';
  private readonly startedAt = Date.now();
  private readonly leaseSession: LeaseSession;
  private readonly leadership: Leadership;
  private readonly duties: LeaderDuties;
  private readonly publisher: RecordPublisher;
  private readonly health: PublishedHealth;
  private readonly staleness: Staleness;
  private apiUrl: string | undefined;
  private readonly admin: InstanceAdmin;

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
    const common = { serviceId: this.id, registry: () => this.registry, logger: this.logger };
    this.staleness = new Staleness({ view: () => this.viewRef, changed: (stale) => this.emit('stale', stale), logger: this.logger });
    const running = () => this.state === 'running';
    this.health = new PublishedHealth({ ...common, holdKey: this.layout.healthOf(this.id), flap: flapSettingsOf(this.config) });
    const election = this.config.cluster.leaderElection;
    this.leaseSession = new LeaseSession({
      ...common,
      running,
      ttl: election.ttl,
      renewIntervalMs: election.renewInterval * 1000,
      keepAliveTimeoutMs: memberFailoverMs(this.config),
      hooks: {
        beforeGrant: () => this.admin.settleStartDisabled(),
        populate: (session) => this.populate(session),
        contact: () => this.staleness.contact(),
        reachable: (reachable) => this.staleness.setReachable(reachable),
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
      ...common,
      running,
      layout: this.layout,
      lease: this.leaseSession,
      candidate: () => this.viewRef?.state.leaderCandidate(),
      resignRequest: () => this.viewRef?.resignRequest(),
      changed: (leading) => {
        if (leading) this.duties.start();
        else this.duties.stop();
        this.emit('leadership', leading);
        if (this.state === 'running') this.publisher.publish();
      },
    });
    this.duties = new LeaderDuties({
      ...common,
      running,
      layout: this.layout,
      leadership: this.leadership,
      hasRecord: (id) => !!this.view.state.service(id),
    });
    this.publisher = new RecordPublisher({
      ...common,
      running,
      key: this.layout.service(this.id),
      record: (session, status) => this.currentRecord(status, session),
      session: () => this.leaseSession.current,
      refreshInterval: this.config.cluster.healthCheck.refreshInterval,
      unreachable: () => this.staleness.setReachable(false),
    });
    const hc = this.config.cluster.healthCheck;
    this.admin = new InstanceAdmin({
      ...common,
      layout: this.layout,
      intent: () => this.viewRef?.state.intent(this.id),
      listed: () => !!this.viewRef && this.viewRef.lastUpdate !== 0,
      startDisabled: s.startDisabled,
      drainProbeUrl: s.drainProbeUrl,
      maintenanceUrl: s.maintenanceHook ? (s.maintenanceUrl ?? instanceBaseUrl(this.config)) : undefined,
      timeoutMs: hc.timeout * 1000,
      recheckMs: hc.interval * 1000,
      changed: () => this.publisher.publish(),
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
      this.staleness.check();
      this.leadership.evaluate();
    };
    const onSynced = () => {
      this.leadership.evaluate();
      // After a re-list (an etcd restart, say): resume a drain, and expire what lapsed meanwhile.
      this.admin.resync();
      if (this.isLeader()) void this.duties.expireIntents();
    };
    const onResign = (request: ResignRequest) => {
      this.leadership.resignRequested(request);
    };
    view.on('event', onEvent);
    view.on('resignRequested', onResign);
    // A shared view's warnings are reported by its owner, once, not by each agent on it.
    if (this.ownsView) view.on('warning', onWarning);
    view.on('stale', onStale);
    view.on('synced', onSynced);
    this.viewListeners = () => {
      view.off('event', onEvent);
      view.off('warning', onWarning);
      view.off('stale', onStale);
      view.off('synced', onSynced);
      view.off('resignRequested', onResign);
    };

    const hc = this.config.cluster.healthCheck;
    const timing = { intervalMs: hc.interval * 1000, timeoutMs: hc.timeout * 1000, retries: hc.retries, gracePeriodMs: hc.gracePeriod * 1000 };
    const checks = this.config.service.checks ?? [];
    this.checker = checks.length > 0 ? new CheckSet({ specs: parseCheckUrls(checks), ...timing }) : new HealthChecker({ url: this.healthUrl, ...timing });
    await this.health.restore();
    this.checker.on('result', (r) => this.onHealthResult(r));
    this.admin.startDrain();
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
    this.admin.resync();
    this.leaseSession.startRenewing();
    if (this.state === 'running') this.admin.startHook();
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
    this.admin.stopDrain();
    // Demote before the resign reaches etcd: the next leader is elected by that resign, so the two
    // never both answer `isLeader` true.
    this.leadership.demote();
    this.checker?.drain('agent stopping');
    this.health.patch({ status: 'draining', message: 'agent stopping' });
    // The instance keeps whatever mode it is in: stopping the agent is not an operator's intent.
    const hookStopped = this.admin.stopHook();
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
      maintenance: this.admin.info(),
    });
  }

  status(): AgentStatusSnapshot {
    const { id, name, host, port, status, role, region, zone, version, enabled } = this.currentRecord();
    const session = this.leaseSession.current;
    return {
      enabled: this.config.enabled,
      currentService: { id, name, host, port, status, role, region, zone, version, enabled },
      isLeader: this.isLeader(),
      status: this.registrationStatus(),
      leaderId: this.viewRef?.leaderId() ?? null,
      cluster: { name: this.config.cluster.name, namespace: this.layout.namespace },
      registry: {
        kind: this.registryRef?.kind ?? this.config.cluster.discovery.registry,
        endpoints: this.registryRef?.description ?? '',
        reachable: this.staleness.reachable,
        lastContact: this.staleness.lastContact,
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
    return this.staleness.stale;
  }

  /**
   * A report to the ttl check `name` (`ttl://NAME`): the instance is alive (`ok`), or failing, with an
   * optional note shown as the check's output, evaluated at once.
   * @throws UnknownCheckError when the agent has no ttl check of that name (or has not started)
   */
  reportCheck(name: string, ok: boolean, note?: string): TtlReport {
    if (!(this.checker instanceof CheckSet)) throw new UnknownCheckError(name);
    return this.checker.report(name, ok, note);
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
    return this.admin.info();
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

  /** Who leads, its term and fencing revision, from this agent's view (src/cluster/leader.ts). */
  leaderInfo(): LeaderInfo {
    return leaderInfo(this.view.state);
  }

  /** Asks the current leader (or the leader of `options.term`) to hand over; audited (src/cluster/leader.ts). */
  async requestLeaderResign(options: ResignOptions = {}): Promise<ResignResult> {
    const result = await requestResign(this.registry, this.layout, { actor: `agent:${this.id}`, ...definedOptions(options) });
    this.logger.info(
      { event: 'leader.resign_asked', leaderId: result.leaderId, term: result.term, actor: result.audit.actor },
      `asked leader ${result.leaderId} (term ${result.term}) to hand over, for ${result.audit.actor}`,
    );
    return result;
  }

  /** Removes the intent and health hold of a retired id; audited (src/cluster/forget.ts). */
  async forgetService(serviceId: string, options: ForgetOptions = {}): Promise<ForgetResult> {
    const result = await forgetService(this.registry, this.layout, serviceId, { actor: `agent:${this.id}`, ...definedOptions(options) });
    this.logger.info(
      { event: 'service.forgotten', serviceId, actor: result.audit?.actor, removed: result.removed, live: result.live },
      `forget ${serviceId}${result.audit ? ` by ${result.audit.actor}` : ' (nothing stored)'}`,
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
    // With several checks the record shows each one's status: a change of any of them is published too.
    if (r.transition.changed || r.checksChanged === true || flapChanged || this.publisher.refreshDue()) this.publisher.publish();
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
          this.admin.intentChanged();
        }
        // A disable lapsed, or a new one may expire: the leader re-enables on time (see leader-duties.ts).
        if (this.isLeader() && this.view.state.intent(e.serviceId)?.expiresAt !== undefined) void this.duties.expireIntents();
        this.emit(e.type, e);
        break;
      case 'serviceUpdated':
        // A drain that ended (draining -> disabled) is when the instance's own switch follows.
        if (e.serviceId === this.id) this.admin.intentChanged();
        this.emit(e.type, e);
        break;
      default:
        this.emit(e.type, e);
    }
    this.emit('event', e);
  }
}

/** `options` without its undefined properties, so they do not override defaults in a spread. */
function definedOptions<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
