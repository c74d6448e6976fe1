/**
 * Keeps one HAProxy backend equal to the registry over the Runtime API: one dynamic server per
 * instance, `ready` while it serves, `drain` while it drains, `maint` while it is out, deleted when
 * it leaves. Servers it does not own (named without its prefix) are never touched.
 *
 * A pass reads `show servers state`, plans ({@link planBackend}) and applies. Passes run at once on
 * every feed snapshot, and every `resyncIntervalMs` as well (with `show info`), because HAProxy has
 * no change stream: a restart or reload starts again from the config file, with no dynamic server.
 * While the socket is away, passes retry with back-off, and the first one back is a full re-sync.
 *
 * @module
 */
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { silentLogger, type Logger } from '../util/logger.js';
import type { TrafficSnapshot } from './feed.js';
import { DEFAULT_SERVER_OPTIONS, DEFAULT_SERVER_PREFIX, planBackend, serverName, stateOf, STATE_FOR, type DesiredServer, type PlanAction, type ServerState } from './haproxy-plan.js';
import { HaproxyCommandError, HaproxyUnreachableError, isBusyAnswer, type HaproxyInfo, type HaproxyRuntimeApi, type HaproxyServerState } from './haproxy-runtime.js';
import { hostPort, isRoutableHost } from './verdict.js';

/** One change the syncer made (or, for `remove-waiting`, is waiting to make). */
export interface HaproxyChange {
  kind: 'added' | 'state' | 'address' | 'removed' | 'remove-waiting';
  server: string;
  serviceId?: string;
  /** Previous state or address, for `state` and `address`. */
  from?: string;
  /** New state or address (`added`: its state). */
  to?: string;
  reason?: string;
  /** Epoch ms the change was acknowledged by HAProxy. */
  at: number;
}

export interface HaproxySyncSummary {
  /** Owned servers per state after the pass. */
  ready: number;
  drain: number;
  maint: number;
  /** Changes made by this pass. */
  changes: number;
  /** HAProxy's pid, as `show info` last said. */
  pid: number | undefined;
  at: number;
}

export interface HaproxySyncEvents {
  change: [HaproxyChange];
  /** A pass completed with HAProxy in the desired state. */
  synced: [HaproxySyncSummary];
  /** The socket went away (once per outage). */
  unreachable: [HaproxyUnreachableError];
  /** A different HAProxy process answers than before (restart or reload). */
  restarted: [{ fromPid: number; toPid: number }];
  /**
   * Something retrying cannot fix: the backend does not exist (on first contact) or the socket is
   * not at `level admin`. The syncer has stopped.
   */
  fatal: [Error];
}

export interface HaproxySyncOptions {
  api: HaproxyRuntimeApi;
  backend: string;
  /** Marks owned servers (default {@link DEFAULT_SERVER_PREFIX}). */
  prefix?: string;
  /** Appended to every `add server` (default {@link DEFAULT_SERVER_OPTIONS}; `''` for none). */
  serverOptions?: string;
  /** Milliseconds between full re-reads of HAProxy's state (default 1000). */
  resyncIntervalMs?: number;
  /**
   * Milliseconds a server whose instance left stays in `maint` before `del server` (default
   * {@link DEFAULT_REMOVE_DELAY_MS}). Longer than `retries × (timeout connect + 1 s)` of haproxy.cfg,
   * so no request still retrying its connection on the server meets a deleted one.
   */
  removeDelayMs?: number;
  /** Longest wait between attempts while the socket is away (default 1000). */
  retryMaxMs?: number;
  logger?: Logger;
  /** Host name to IP address (default: the system resolver, 2 s timeout, answers kept 30 s). */
  resolve?: (host: string) => Promise<string | undefined>;
}

/** The backend is not in HAProxy's running config. */
export class HaproxyBackendMissingError extends Error {
  override name = 'HaproxyBackendMissingError';
  constructor(readonly backend: string, socketPath: string) {
    super(`HAProxy at ${socketPath} has no backend "${backend}" (check --backend against the backend sections of haproxy.cfg)`);
  }
}

/** The socket refuses changes: it is below `level admin`. */
export class HaproxyPermissionError extends Error {
  override name = 'HaproxyPermissionError';
  constructor(socketPath: string) {
    super(`HAProxy socket ${socketPath} refuses changes: it needs \`stats socket ${socketPath} mode 600 level admin\` in haproxy.cfg`);
  }
}

const RETRY_MIN_MS = 100;

/**
 * HAProxy's `del server` refuses a server with sessions or idle connections, but not one that a
 * request still points at while it waits to retry a failed connection (up to `retries` times, a
 * turn-around of up to 1 s apart); that request then uses the freed server and HAProxy crashes
 * (haproxy/haproxy#2298, fixed in 2.9 and backported; Debian 12's 2.6.12 has it: without
 * `option redispatch`, bench/traffic.ts's kill -9 of an instance crashed it every time). A server
 * that left is therefore deleted only after this long in `maint`, where no new request reaches it.
 * 10 s covers the docs' haproxy.cfg: retries 3 × (timeout connect 2 s + 1 s) = 9 s.
 */
export const DEFAULT_REMOVE_DELAY_MS = 10_000;

export class HaproxySyncer extends EventEmitter<HaproxySyncEvents> {
  readonly backend: string;
  readonly prefix: string;
  readonly serverOptions: string;
  private readonly api: HaproxyRuntimeApi;
  private readonly logger: Logger;
  private readonly resyncIntervalMs: number;
  private readonly retryMaxMs: number;
  private readonly removeDelayMs: number;
  private readonly resolveHost: (host: string) => Promise<string | undefined>;
  private snapshot: TrafficSnapshot | undefined;
  private running = false;
  private passing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  private reachable: boolean | undefined;
  private everInSync = false;
  private info: HaproxyInfo | undefined;
  /** Names of servers whose `del` waits for the remove delay to pass and their connections to end. */
  private readonly waiting = new Set<string>();
  /** Since when each owned server has been in `maint`, as this syncer saw or made it. */
  private readonly maintSince = new Map<string, number>();
  /** Service id of each owned server name, for log lines about servers that left. */
  private readonly ids = new Map<string, string>();
  /** Problems already logged, so a lasting one is one line, not one per pass. */
  private readonly told = new Set<string>();
  /** Last addresses resolved per host, used while the resolver fails. */
  private readonly resolved = new Map<string, { addr: string; at: number }>();

  constructor(options: HaproxySyncOptions) {
    super();
    this.api = options.api;
    this.backend = options.backend;
    this.prefix = options.prefix ?? DEFAULT_SERVER_PREFIX;
    this.serverOptions = options.serverOptions ?? DEFAULT_SERVER_OPTIONS;
    this.logger = options.logger ?? silentLogger;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 1000;
    this.removeDelayMs = options.removeDelayMs ?? DEFAULT_REMOVE_DELAY_MS;
    this.resolveHost = options.resolve ?? ((host) => this.systemResolve(host));
  }

  get socketPath(): string {
    return this.api.socketPath;
  }

  /** Starts the periodic re-sync; passes need a snapshot first ({@link update}). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.trigger();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.passing?.catch(() => undefined);
  }

  /** The registry changed: a pass now (or right after the one under way). */
  update(snapshot: TrafficSnapshot): void {
    this.snapshot = snapshot;
    this.trigger();
  }

  /** Runs one pass now (after the one under way), for callers that need it done: tests, benchmarks. */
  async syncNow(): Promise<void> {
    while (this.passing) await this.passing.catch(() => undefined);
    await this.runPass(true);
  }

  private trigger(): void {
    if (!this.running) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    void this.runPass(false);
  }

  private runPass(periodic: boolean): Promise<void> {
    const pass = this.pass(periodic).finally(() => {
      this.passing = undefined;
      if (!this.running) return;
      if (this.again) {
        this.again = false;
        this.trigger();
        return;
      }
      clearTimeout(this.timer);
      const delay = this.reachable === false ? this.nextRetry() : this.resyncIntervalMs;
      this.timer = setTimeout(() => {
        if (!this.passing) void this.runPass(true);
      }, delay);
    });
    this.passing = pass;
    return pass;
  }

  private nextRetry(): number {
    const d = this.retryDelay;
    this.retryDelay = Math.min(this.retryMaxMs, this.retryDelay * 2);
    return d;
  }

  private async pass(periodic: boolean): Promise<void> {
    // Never act before the registry was listed once: an empty desired state would empty the backend.
    const snapshot = this.snapshot;
    try {
      // Who answers: a new pid (or a younger process) is a restarted HAProxy, which lost every dynamic server.
      if (periodic || this.reachable !== true) await this.readInfo();
      const current = await this.readServers();
      this.markReachable();
      this.noteMaint(current);
      if (!snapshot) return;
      const desired = await this.desiredServers(snapshot);
      const actions = planBackend(desired, current, this.prefix);
      // A server waiting for `del` that came back, or that someone else deleted, waits no more.
      for (const name of this.waiting) if (!actions.some((a) => a.kind === 'remove' && a.name === name)) this.waiting.delete(name);
      let changes = 0;
      for (const action of actions) changes += await this.apply(action);
      const owned = this.countOwned(desired);
      if (changes > 0 || !this.everInSync) {
        this.everInSync = true;
        this.logger.info(
          { event: 'haproxy.synced', backend: this.backend, ready: owned.ready, drain: owned.drain, maint: owned.maint, changes, pid: this.info?.pid },
          `backend ${this.backend}: ${owned.ready} ready, ${owned.drain} drain, ${owned.maint} maint (${changes} change${changes === 1 ? '' : 's'})`,
        );
      }
      this.emit('synced', { ...owned, changes, pid: this.info?.pid, at: Date.now() });
    } catch (err) {
      this.failed(err);
    }
  }

  private async readInfo(): Promise<void> {
    const info = await this.api.info();
    const before = this.info;
    this.info = info;
    // Uptime only grows within one process; a container restart may reuse the pid.
    if (before && (before.pid !== info.pid || info.uptimeSec + 1 < before.uptimeSec)) {
      this.logger.warn(
        { event: 'haproxy.restarted', fromPid: before.pid, toPid: info.pid, uptimeSec: info.uptimeSec },
        `HAProxy restarted (pid ${before.pid} → ${info.pid}): it starts from its config file, re-adding the servers of backend ${this.backend}`,
      );
      this.waiting.clear();
      this.maintSince.clear();
      this.emit('restarted', { fromPid: before.pid, toPid: info.pid });
    }
  }

  private async readServers() {
    try {
      return await this.api.serversState(this.backend);
    } catch (err) {
      if (err instanceof HaproxyCommandError && /find backend|no such backend/i.test(err.answer)) throw new HaproxyBackendMissingError(this.backend, this.socketPath);
      throw err;
    }
  }

  private markReachable(): void {
    if (this.reachable === true) return;
    const again = this.reachable === false;
    this.reachable = true;
    this.retryDelay = RETRY_MIN_MS;
    this.told.delete('unreachable');
    this.logger.info(
      { event: 'haproxy.connected', socket: this.socketPath, backend: this.backend, pid: this.info?.pid, version: this.info?.version },
      `${again ? 'HAProxy answers again' : 'connected to HAProxy'} at ${this.socketPath} (pid ${this.info?.pid ?? '?'}, ${this.info?.version ?? 'version unknown'})${again ? ': full re-sync' : ''}`,
    );
  }

  private failed(err: unknown): void {
    if (err instanceof HaproxyUnreachableError) {
      if (this.reachable !== false) {
        this.reachable = false;
        this.logger.warn(
          { event: 'haproxy.unreachable', socket: this.socketPath, code: err.code, err: err.reason },
          `${err.message}; retrying every ${this.retryMaxMs / 1000}s at most, servers are re-synced when it answers`,
        );
        this.emit('unreachable', err);
      }
      return;
    }
    const fatal =
      err instanceof HaproxyCommandError && err.permissionDenied
        ? new HaproxyPermissionError(this.socketPath)
        : err instanceof HaproxyBackendMissingError && !this.everInSync
          ? err
          : undefined;
    if (fatal) {
      this.running = false;
      clearTimeout(this.timer);
      this.logger.error({ event: 'haproxy.fatal', socket: this.socketPath, backend: this.backend, err: fatal.message }, fatal.message);
      this.emit('fatal', fatal);
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    if (this.tellOnce(`error:${message}`)) this.logger.error({ event: 'haproxy.sync_failed', backend: this.backend, err: message }, `sync of backend ${this.backend} failed: ${message}; retrying`);
  }

  /** Applies one action; returns the number of changes HAProxy acknowledged. Unreachable errors end the pass. */
  private async apply(action: PlanAction): Promise<number> {
    const b = this.backend;
    try {
      switch (action.kind) {
        case 'add': {
          const d = action.server;
          await this.api.addServer(b, d.name, hostPort(d.addr, d.port), this.serverOptions);
          if (/(^|\s)check(\s|$)/.test(this.serverOptions)) await this.api.enableHealth(b, d.name);
          // A new server starts in maintenance.
          if (d.state !== 'maint') await this.api.setState(b, d.name, d.state);
          else this.maintSince.set(d.name, Date.now());
          this.changed({ kind: 'added', server: d.name, serviceId: d.serviceId, to: d.state, reason: d.reason }, `added ${d.name} (${hostPort(d.addr, d.port)}) as ${d.state}: ${d.reason}`, { address: hostPort(d.addr, d.port) });
          return 1;
        }
        case 'address': {
          const d = action.server;
          await this.api.setAddress(b, d.name, d.addr, d.port);
          this.changed({ kind: 'address', server: d.name, serviceId: d.serviceId, from: action.from, to: hostPort(d.addr, d.port) }, `${d.name} moved from ${action.from} to ${hostPort(d.addr, d.port)}`);
          return 1;
        }
        case 'state': {
          const d = action.server;
          await this.api.setState(b, d.name, d.state);
          if (d.state === 'maint') this.maintSince.set(d.name, Date.now());
          else this.maintSince.delete(d.name);
          this.changed({ kind: 'state', server: d.name, serviceId: d.serviceId, from: action.from, to: d.state, reason: d.reason }, `${d.name}: ${action.from} → ${d.state} (${d.reason})`);
          return 1;
        }
        case 'remove':
          return await this.remove(action.name, action.from);
      }
    } catch (err) {
      if (err instanceof HaproxyUnreachableError || (err instanceof HaproxyCommandError && err.permissionDenied)) throw err;
      // One refused command does not stop the others; the next pass reads the state again.
      const message = err instanceof Error ? err.message : String(err);
      this.logger.warn({ event: 'haproxy.command_failed', backend: b, err: message }, `${message}; retrying on the next pass`);
      return 0;
    }
  }

  /**
   * Maintenance first (no new traffic); `del` once the server has been in maintenance for the remove
   * delay (see {@link DEFAULT_REMOVE_DELAY_MS}) and HAProxy no longer refuses it for its connections.
   */
  private async remove(name: string, from: ServerState): Promise<number> {
    const serviceId = this.ids.get(name);
    let changes = 0;
    if (from !== 'maint') {
      await this.api.setState(this.backend, name, 'maint');
      this.maintSince.set(name, Date.now());
      this.changed({ kind: 'state', server: name, ...(serviceId ? { serviceId } : {}), from, to: 'maint', reason: 'left the registry' }, `${name}: ${from} → maint (left the registry)`);
      changes++;
    }
    const since = this.maintSince.get(name) ?? Date.now();
    if (!this.maintSince.has(name)) this.maintSince.set(name, since);
    try {
      if (Date.now() - since < this.removeDelayMs) return changes + this.removeWaits(name, serviceId);
      await this.api.deleteServer(this.backend, name);
    } catch (err) {
      if (!isBusyAnswer(err)) throw err;
      return changes + this.removeWaits(name, serviceId);
    }
    this.waiting.delete(name);
    this.maintSince.delete(name);
    this.ids.delete(name);
    this.changed({ kind: 'removed', server: name, ...(serviceId ? { serviceId } : {}), reason: 'left the registry' }, `removed ${name} (left the registry)`);
    return changes + 1;
  }

  /** Notes (once) that a server that left waits in maintenance for its `del`; counts no change. */
  private removeWaits(name: string, serviceId: string | undefined): 0 {
    if (this.waiting.has(name)) return 0;
    this.waiting.add(name);
    const change: HaproxyChange = { kind: 'remove-waiting', server: name, ...(serviceId ? { serviceId } : {}), at: Date.now() };
    this.logger.info(
      { event: 'haproxy.server.remove_waiting', ...change },
      `${name} left the registry: in maintenance, deleted after ${this.removeDelayMs / 1000}s there, once its connections end`,
    );
    this.emit('change', change);
    return 0;
  }

  /** Keeps {@link maintSince} equal to what HAProxy says: when each owned server was first seen in maintenance. */
  private noteMaint(current: readonly HaproxyServerState[]): void {
    const inMaint = new Set(current.filter((s) => s.name.startsWith(this.prefix) && stateOf(s) === 'maint').map((s) => s.name));
    for (const name of this.maintSince.keys()) if (!inMaint.has(name)) this.maintSince.delete(name);
    const now = Date.now();
    for (const name of inMaint) if (!this.maintSince.has(name)) this.maintSince.set(name, now);
  }

  private changed(change: Omit<HaproxyChange, 'at'>, message: string, extra: Record<string, unknown> = {}): void {
    const full: HaproxyChange = { ...change, at: Date.now() };
    this.logger.info({ event: `haproxy.server.${change.kind}`, backend: this.backend, ...change, ...extra }, message);
    this.emit('change', full);
  }

  /** The servers the snapshot asks for; instances without a usable address are left out (said once). */
  private async desiredServers(snapshot: TrafficSnapshot): Promise<DesiredServer[]> {
    const out: DesiredServer[] = [];
    for (const e of snapshot.entries) {
      const s = e.service;
      const name = serverName(this.prefix, s.id);
      if (!isRoutableHost(s.host) || s.port < 1) {
        if (this.tellOnce(`address:${s.id}:${s.host}:${s.port}`)) {
          this.logger.warn({ event: 'haproxy.server.skipped', serviceId: s.id, host: s.host, port: s.port }, `${s.id} is left out: ${e.reason}`);
        }
        continue;
      }
      const addr = await this.resolveHost(s.host);
      if (addr === undefined) {
        if (this.tellOnce(`resolve:${s.host}`)) this.logger.warn({ event: 'haproxy.server.unresolved', serviceId: s.id, host: s.host }, `${s.id} is left out: its host ${s.host} does not resolve`);
        continue;
      }
      this.told.delete(`resolve:${s.host}`);
      this.ids.set(name, s.id);
      out.push({ name, serviceId: s.id, addr, port: s.port, state: STATE_FOR[e.state], reason: e.reason });
    }
    return out;
  }

  /** Owned servers per state: the desired ones, plus those in maintenance waiting for `del`. */
  private countOwned(desired: readonly DesiredServer[]): { ready: number; drain: number; maint: number } {
    const counts = { ready: 0, drain: 0, maint: this.waiting.size };
    for (const d of desired) counts[d.state]++;
    return counts;
  }

  private tellOnce(key: string): boolean {
    if (this.told.has(key)) return false;
    this.told.add(key);
    return true;
  }

  /** The system resolver (what HAProxy itself would use at start-up), bounded and remembered. */
  private async systemResolve(host: string): Promise<string | undefined> {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    if (isIP(bare) === 4) return bare;
    if (isIP(bare) === 6) return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    const cached = this.resolved.get(host);
    if (cached && Date.now() - cached.at < 30_000) return cached.addr;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        lookup(host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), 2000);
        }),
      ]);
      const addr = answer.family === 6 ? new URL(`http://[${answer.address}]/`).hostname.slice(1, -1) : answer.address;
      this.resolved.set(host, { addr, at: Date.now() });
      return addr;
    } catch {
      // A resolver hiccup keeps the last answer rather than taking the server out.
      return cached?.addr;
    } finally {
      clearTimeout(timer);
    }
  }
}
