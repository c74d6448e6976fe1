import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { listAudit, setServiceEnabled, type SetEnabledOptions, type SetEnabledResult } from '../cluster/admin.js';
import { parseMinHealthy } from '../cluster/capacity.js';
import { adminStateOf, parseHealthState } from '../cluster/codec.js';
import { applyStartDisabled, expireDueIntents } from '../cluster/intent.js';
import { keyLayout, type KeyLayout } from '../cluster/keys.js';
import { filterServices, type ServiceFilter } from '../cluster/topology.js';
import { ClusterView } from '../cluster/view.js';
import type { SdConfig } from '../config/types.js';
import { memberFailoverMs, openRegistry } from '../registry/index.js';
import { LeaseLostError, type Registry, type TxnOp, type TxnResult } from '../registry/types.js';
import type { AuditEntry, ClusterEvent, ClusterTopology, HealthCheckSettings, HealthInfo, InstanceMaintenanceInfo, ServiceRecord, ServiceStatus } from '../types.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { AgentEvents, AgentOptions, AgentRegistrationStatus, AgentStatusSnapshot } from './agent-types.js';
import { errMessage, withDeadline } from './calls.js';
import { DrainWatcher } from './drain.js';
import { HealthChecker, type HealthCheckResultEvent } from './health-checker.js';
import type { HealthHistoryEntry } from './health-state.js';
import { InstanceMaintenanceHook } from './maintenance-hook.js';
import { LeaseSession, type Session } from './lease-session.js';
import { agentRegistryOptions } from './registry-options.js';
import { checkSettingsOf, flapSettingsOf, healthUrlOf, localRecord } from './local-record.js';
import { PublishedHealth } from './published-health.js';
import { RecordPublisher } from './record-publisher.js';
import { memoryRegistryNotice } from './registry-notices.js';

export { agentRegistryOptions } from './registry-options.js';
export type { AgentEvents, AgentOptions, AgentRegistrationStatus, AgentStatusSnapshot } from './agent-types.js';

/** The agent is not (or no longer) the leader, so a leader-only write was not attempted. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError';
}

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
  private leaderTimer: NodeJS.Timeout | undefined;
  private leading = false;
  /** The session in which this agent last became leader, and when. */
  private leaderSession: Session | undefined;
  private leaderSince = 0;
  private readonly publisher: RecordPublisher;
  private reachable = false;
  private lastContact: number | null = null;
  private apiUrl: string | undefined;
  private maintenanceHook: InstanceMaintenanceHook | undefined;
  /** Watches this instance's own drain after a disable (see drain.ts). */
  private drain: DrainWatcher | undefined;
  /** `--start-disabled` was settled (written, or an intent already existed) by this process. */
  private startDisabledDone = false;
  private intentTimer: NodeJS.Timeout | undefined;
  private expiring: Promise<void> | undefined;
  private expireAgain = false;

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
          this.evaluateLeadership();
        },
        registrationFailed: (err) => this.emit('registrationFailed', err),
        renewed: (session) => {
          this.publisher.publishIfDue();
          // A term given up while etcd was out of reach is resigned now that it answers again.
          if (session.resigning) void this.stepDown(session);
          this.evaluateLeadership();
        },
        keepaliveFailed: (err) => this.emit('keepaliveFailed', err),
        livenessChanged: () => this.evaluateLeadership(),
        lost: (info) => this.emit('leaseLost', info),
      },
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
      this.evaluateLeadership();
    };
    const onSynced = () => {
      this.evaluateLeadership();
      // After a re-list (an etcd restart, say): resume a drain, and expire what lapsed meanwhile.
      this.drain?.update(view.state.intent(this.id));
      if (this.isLeader()) void this.expireIntents();
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
    clearInterval(this.leaderTimer);
    clearTimeout(this.intentTimer);
    this.drain?.stop();
    // Demote before the resign reaches etcd: the next leader is elected by that resign, so the two
    // never both answer `isLeader` true.
    this.setLeading(false);
    this.checker?.drain('agent stopping');
    this.health.patch({ status: 'draining', message: 'agent stopping' });
    // The instance keeps whatever mode it is in: stopping the agent is not an operator's intent.
    const hookStopped = this.maintenanceHook?.stop();
    const session = this.leaseSession.current;
    if (session) {
      const shortCall = <T>(p: Promise<T>) => withDeadline(p, 1000);
      const putDraining: TxnOp = this.publisher.prepare(session, 'draining').op;
      let resigned = false;
      if (session.electionKey && session.electionRevision !== undefined) {
        // One round trip hands over leadership: the draining record, our election key and, if we
        // lead, the leader record change together, fenced by our key (while it exists and was the
        // lowest, nobody else can have written the leader record).
        const res = await shortCall(
          this.registry.txn(
            [{ key: session.electionKey, target: 'createRevision', equals: session.electionRevision }],
            [putDraining, { type: 'delete', key: session.electionKey }, ...(wasLeader ? [{ type: 'delete' as const, key: this.layout.leader }] : [])],
          ),
        ).catch(() => undefined);
        resigned = res?.succeeded === true;
      }
      if (!resigned) await shortCall(this.publisher.put(session, 'draining')).catch(() => undefined);
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

  /** True only while our election key is the lowest and our lease is provably alive. */
  isLeader(): boolean {
    const session = this.leaseSession.current;
    if (!this.leading || !session || session.resigning || this.state !== 'running') return false;
    // Checked on every call, not only by timer: a process thawed after SIGSTOP must not claim
    // leadership for even one call before its timers run.
    return Date.now() < this.leaseSession.deadline(session);
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
    const session = this.leaseSession.current;
    if (!session?.electionKey || session.electionRevision === undefined) throw new NotLeaderError('not a leadership candidate');
    if (!this.isLeader()) throw new NotLeaderError(`agent ${this.id} is not the leader`);
    return this.fencedTxn(session, ops);
  }

  /** The fenced transaction itself, without the local leadership check (exposed for fault tests). */
  async fencedTxn(session: Pick<Session, 'electionKey' | 'electionRevision'> | undefined = this.leaseSession.current, ops: TxnOp[]): Promise<TxnResult> {
    if (!session?.electionKey || session.electionRevision === undefined) throw new NotLeaderError('not a leadership candidate');
    const res = await this.registry.txn(
      [{ key: session.electionKey, target: 'createRevision', equals: session.electionRevision }],
      ops,
    );
    if (!res.succeeded) this.logger.warn({ event: 'leader.fenced' }, 'leader-only write refused: our election key is gone');
    return res;
  }

  /** The fencing token of the current session, for tests that replay a stale leader's write. */
  fencingToken(): { electionKey?: string; electionRevision?: number } | undefined {
    const session = this.leaseSession.current;
    return session ? { electionKey: session.electionKey, electionRevision: session.electionRevision } : undefined;
  }

  // ---- lease, registration, election ----

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
    const key = this.layout.electionOf(session.lease.id);
    const record = this.publisher.prepare(session);
    const res = await this.registry.txn(
      [{ key, target: 'createRevision', equals: 0 }],
      [record.op, { type: 'put', key, value: this.id, lease: session.lease.id }],
    );
    session.electionKey = key;
    if (res.succeeded) {
      record.written();
      // Our key is new in this transaction, so its create revision is the transaction's revision.
      session.electionRevision = res.revision;
    } else {
      // The key names our brand-new lease, so only a half-finished earlier attempt could hold it.
      await this.publisher.put(session);
      session.electionRevision = (await this.registry.get(key))?.createRevision;
    }
  }

  private evaluateLeadership(): void {
    const session = this.leaseSession.current;
    const candidate = this.viewRef?.state.leaderCandidate();
    const ours = !!session?.electionKey && candidate?.key === session.electionKey && candidate.createRevision === session.electionRevision;
    const alive = !!session && Date.now() < this.leaseSession.deadline(session);
    const leading = this.state === 'running' && ours && alive && !session!.resigning;
    if (this.leading && !leading && this.state === 'running' && session && this.leaderSession === session && !session.resigning) {
      // Leadership lost while running: the lease deadline passed (etcd may or may not have expired
      // the lease; we cannot tell from here) or the view shows our key gone. Give up the term for
      // good rather than resume it later, and resign it in etcd through the fence, so the next
      // candidate need not wait for our lease to run out. A thawed or cut-off ex-leader's attempt
      // is refused by the fence (`leader.fenced`); then it campaigns again from the back.
      session.resigning = true;
      this.logger.warn(
        { event: 'leader.step_down', serviceId: this.id, term: session.electionRevision ?? null, reason: alive ? 'election key gone' : 'lease deadline passed' },
        `stepping down: ${alive ? 'our election key is no longer the lowest' : 'lease deadline passed without a renewal'}`,
      );
      void this.stepDown(session);
    }
    this.setLeading(leading);
  }

  /**
   * Resigns a term given up while running (see evaluateLeadership): deletes our election key and the
   * leader record, fenced by the key's create revision, then campaigns again with a new key (at the
   * back of the line). Refused by the fence when the key is already gone (the lease expired, someone
   * else leads); fails harmlessly while etcd is out of reach, and is retried after the next keep-alive.
   */
  private async stepDown(session: Session): Promise<void> {
    if (session.steppingDown || !session.resigning || this.leaseSession.current !== session) return;
    session.steppingDown = true;
    try {
      const res = await this.fencedTxn(session, [
        { type: 'delete', key: session.electionKey! },
        { type: 'delete', key: this.layout.leader },
      ]);
      if (this.leaseSession.current !== session || this.state !== 'running') return;
      if (res.succeeded) {
        this.logger.info({ event: 'leader.resigned', serviceId: this.id, term: session.electionRevision }, 'resigned our term in etcd; campaigning again');
      }
      // Either way the old key is gone now: campaign afresh under the same lease, if it still lives.
      await this.campaign(session);
    } catch (err) {
      if (err instanceof LeaseLostError) await this.leaseSession.lost(session, err.message);
      else this.logger.debug({ event: 'leader.step_down_failed', err: errMessage(err) }, `step-down not confirmed yet: ${errMessage(err)}`);
    } finally {
      session.steppingDown = false;
    }
  }

  /** Puts a new election key under the session's lease (its create revision is the new term). */
  private async campaign(session: Session): Promise<void> {
    const key = this.layout.electionOf(session.lease.id);
    const res = await this.registry.txn(
      [{ key, target: 'createRevision', equals: 0 }],
      [{ type: 'put', key, value: this.id, lease: session.lease.id }],
    );
    if (this.leaseSession.current !== session) return;
    session.electionKey = key;
    session.electionRevision = res.succeeded ? res.revision : (await this.registry.get(key))?.createRevision;
    session.resigning = false;
    this.evaluateLeadership();
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    const session = this.leaseSession.current;
    this.logger.info(
      { event: leading ? 'leader.elected' : 'leader.lost', serviceId: this.id, term: session?.electionRevision ?? null },
      leading ? `${this.id} is now the leader` : `${this.id} is no longer the leader`,
    );
    clearInterval(this.leaderTimer);
    if (!leading) clearTimeout(this.intentTimer);
    if (leading && session) {
      this.leaderSession = session;
      this.leaderSince = Date.now();
      void this.writeLeaderRecord(session);
      // Its first step is an expiry pass: disables that lapsed while nobody led are re-enabled now.
      void this.leaderMaintenance();
      this.leaderTimer = setInterval(() => void this.leaderMaintenance(), 60_000);
      this.leaderTimer.unref();
    }
    this.emit('leadership', leading);
    if (this.state === 'running') this.publisher.publish();
  }

  /** `<ns>/leader`: who leads since when, for operators (`etcdctl get <ns>/leader`). One write per term. */
  private async writeLeaderRecord(session: Session): Promise<void> {
    const value = JSON.stringify({ leaderId: this.id, since: this.leaderSince, term: session.electionRevision });
    try {
      await this.leaderWrite([{ type: 'put', key: this.layout.leader, value, lease: session.lease.id }]);
    } catch (err) {
      this.logger.debug({ event: 'leader.record_failed', err: errMessage(err) }, `leader record not written: ${errMessage(err)}`);
    }
  }

  /**
   * Leader-only housekeeping, each write fenced: expired timed disables are re-enabled (see
   * {@link expireIntents}; this is its backstop) and the audit trail is trimmed to its retention (the newest 1000 entries and at most 30 days).
   */
  private async leaderMaintenance(): Promise<void> {
    try {
      const now = Date.now();
      const ops: TxnOp[] = [];
      void this.expireIntents();
      // Flap holds of instances gone for good: a live agent removes its own on release, so one whose
      // hold ran out an hour ago with no record registered is left over.
      const holds = await this.registry.list(this.layout.health);
      for (const kv of holds.kvs) {
        const id = kv.key.slice(this.layout.health.length);
        const parsed = parseHealthState(kv.value, id);
        if (this.view.state.service(id)) continue;
        // Unparsable values are skipped (with the view's warning), never deleted: they may be someone's data.
        if (parsed.ok && parsed.value.flapping.until + 3600_000 <= now) ops.push({ type: 'delete', key: kv.key });
      }
      const { kvs } = await this.registry.list(this.layout.audit);
      const cutoff = String(now - 30 * 24 * 3600 * 1000).padStart(13, '0');
      kvs.forEach((kv, i) => {
        const name = kv.key.slice(this.layout.audit.length);
        if (i < kvs.length - 1000 || name < cutoff) ops.push({ type: 'delete', key: kv.key });
      });
      for (let i = 0; i < ops.length; i += 100) {
        if (!this.isLeader()) return;
        await this.leaderWrite(ops.slice(i, i + 100));
      }
    } catch (err) {
      this.logger.debug({ event: 'leader.maintenance_failed', err: errMessage(err) }, `leader maintenance skipped: ${errMessage(err)}`);
    }
  }

  /**
   * The leader re-enables expired timed disables, fenced, with an audit entry each (intent.ts), and
   * arms a timer for the next expiry. Runs on becoming leader (finding what expired while nobody
   * led), on intent changes, after a re-list and from the minute's maintenance; one pass at a time,
   * a failed pass (registry away) retried after a second while still leading.
   */
  private expireIntents(): Promise<void> {
    if (this.expiring) {
      this.expireAgain = true;
      return this.expiring;
    }
    this.expiring = (async () => {
      do {
        this.expireAgain = false;
        const session = this.leaseSession.current;
        if (!this.isLeader() || !session?.electionKey || session.electionRevision === undefined) {
          // Leading, but the lease is not provably alive this instant (a keep-alive late under load):
          // look again shortly rather than wait for the minute's maintenance.
          if (this.leading && this.state === 'running') this.armIntentTimer(Date.now() + 500);
          return;
        }
        clearTimeout(this.intentTimer);
        let retryAt: number | undefined;
        try {
          const pass = await expireDueIntents(this.registry, this.layout, { key: session.electionKey, createRevision: session.electionRevision }, `leader:${this.id}`);
          for (const id of pass.expired) {
            this.logger.info({ event: 'intent.expired', serviceId: id }, `timed disable of ${id} expired: re-enabled (audited)`);
          }
          if (pass.fenced) {
            this.logger.warn({ event: 'leader.fenced' }, 'expiry refused: our election key is gone');
            return;
          }
          // A conflicting write (an operator, a drain's end) moved an intent under us: look again soon.
          retryAt = pass.conflicted ? Date.now() + 200 : pass.next;
        } catch (err) {
          this.logger.debug({ event: 'intent.expiry_failed', err: errMessage(err) }, `expiry pass failed: ${errMessage(err)}; retrying`);
          retryAt = Date.now() + 1000;
        }
        if (retryAt !== undefined && this.isLeader()) this.armIntentTimer(retryAt);
      } while (this.expireAgain);
    })().finally(() => {
      this.expiring = undefined;
    });
    return this.expiring;
  }

  private armIntentTimer(at: number): void {
    clearTimeout(this.intentTimer);
    const delay = Math.min(Math.max(0, at - Date.now()), 0x7fffffff);
    this.intentTimer = setTimeout(() => void this.expireIntents(), delay);
    this.intentTimer.unref();
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
        this.evaluateLeadership();
        this.emit('leaderElected', e.leaderId, e);
        break;
      case 'serviceEnabled':
      case 'serviceDisabled':
        if (e.serviceId === this.id) {
          this.publisher.publish();
          this.drain?.update(this.view.state.intent(this.id));
          this.maintenanceHook?.poke();
        }
        // A disable lapsed, or a new one may expire: the leader re-enables on time (see expireIntents).
        if (this.isLeader() && this.view.state.intent(e.serviceId)?.expiresAt !== undefined) void this.expireIntents();
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
