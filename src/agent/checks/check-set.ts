/**
 * Several checks of one instance (`--check`): each runs on its own {@link HealthChecker} (its own
 * cadence, timeout, retries and state machine, with the probe of its kind), and the set says what
 * the instance is: `unhealthy` when any critical check is, else `starting` while a critical check has
 * not passed yet, else `healthy`. Non-critical checks are reported, never decide. The set emits the
 * same events as a single HealthChecker, so the agent's flap damping and publish-on-change apply to
 * the instance as before; a result that changes one check's status says so (`checksChanged`), since
 * the record shows each check, and nothing else is published: N checks in a steady state write nothing.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { CheckState, HealthInfo, ServiceStatus } from '../../types.js';
import { HealthChecker, type HealthCheckerEvents, type HealthCheckResultEvent, type Probe } from '../health-checker.js';
import { describeFailure, type HealthHistoryEntry, type HealthTransition, type ProbeResult } from '../health-state.js';
import { MAX_CHECK_OUTPUT, type CheckSpec } from './check-spec.js';
import { GrpcProbe } from './grpc-check.js';
import { HttpProbe } from './http-check.js';
import { TcpProbe } from './tcp-check.js';
import { TtlProbe, type TtlReport } from './ttl-check.js';

export interface CheckSetOptions {
  specs: readonly CheckSpec[];
  /** The instance's settings, for checks that do not set their own (ms, ms, count, ms). */
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  gracePeriodMs: number;
  /** Clock (epoch ms); defaults to Date.now. */
  now?: () => number;
  /** Probe results kept per check; default 50. */
  historySize?: number;
}

/** A report to a ttl check that has no such name. */
export class UnknownCheckError extends Error {
  override name = 'UnknownCheckError';
  constructor(readonly check: string) {
    super(`no ttl check named "${check}"`);
  }
}

interface Member {
  spec: CheckSpec;
  checker: HealthChecker;
  ttl?: TtlProbe;
  /** What the last probe said, for the record. */
  output?: string;
  /** Seconds, as run. */
  interval: number;
  timeout: number;
  retries: number;
}

/** A CA file, read once at start; a missing file is the operator's to fix, said in one line. */
function readCa(spec: CheckSpec, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`check "${spec.name}": cannot read ca file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function probeOf(spec: CheckSpec, now: () => number): { probe: Probe; ttl?: TtlProbe } {
  if (spec.http) return { probe: new HttpProbe(spec.http, readCa(spec, spec.http.ca)) };
  if (spec.tcp) return { probe: new TcpProbe(spec.tcp) };
  if (spec.grpc) return { probe: new GrpcProbe(spec.grpc, readCa(spec, spec.grpc.ca)) };
  if (spec.ttl) {
    const ttl = new TtlProbe(spec.name, spec.ttl.deadline, now);
    return { probe: ttl, ttl };
  }
  throw new Error(`check "${spec.name}": no ${spec.kind} settings`);
}

function bounded(text: string): string {
  return text.length > MAX_CHECK_OUTPUT ? `${text.slice(0, MAX_CHECK_OUTPUT - 3)}...` : text;
}

/** Several checks of one instance; single use like HealthChecker: start() once, stop() once. */
export class CheckSet extends EventEmitter<HealthCheckerEvents> {
  readonly #members: Member[];
  readonly #now: () => number;
  #status: ServiceStatus = 'starting';
  #final: 'draining' | 'stopped' | undefined;
  #finalReason: string | undefined;
  #lastResult: ProbeResult | undefined;

  constructor(options: CheckSetOptions) {
    super();
    if (options.specs.length === 0) throw new RangeError('a check set needs at least one check');
    this.#now = options.now ?? Date.now;
    this.#members = options.specs.map((spec) => {
      const { probe, ttl } = probeOf(spec, this.#now);
      const interval = spec.interval ?? options.intervalMs / 1000;
      const timeout = spec.timeout ?? options.timeoutMs / 1000;
      // A missed ttl deadline is already a verdict: one evaluation decides unless told otherwise.
      const retries = spec.retries ?? (spec.kind === 'ttl' ? 1 : options.retries);
      const checker = new HealthChecker({
        url: spec.target,
        probe,
        intervalMs: interval * 1000,
        timeoutMs: timeout * 1000,
        retries,
        gracePeriodMs: options.gracePeriodMs,
        now: this.#now,
        ...(options.historySize !== undefined ? { historySize: options.historySize } : {}),
      });
      const member: Member = { spec, checker, interval, timeout, retries, ...(ttl ? { ttl } : {}) };
      checker.on('result', (r) => this.#onResult(member, r));
      return member;
    });
  }

  get status(): ServiceStatus {
    return this.#status;
  }

  /** Starts every check; each probes at once. */
  start(): void {
    for (const m of this.#members) m.checker.start();
  }

  /** Like HealthChecker.drain: no further probes; the instance is `draining`. */
  drain(reason = 'draining'): HealthTransition {
    for (const m of this.#members) m.checker.drain(reason);
    return this.#enterFinal('draining', reason);
  }

  /** Stops every check and waits for probes in flight. Idempotent. */
  async stop(reason = 'stopped'): Promise<void> {
    if (this.#final !== 'stopped') this.#enterFinal('stopped', reason);
    await Promise.all(this.#members.map((m) => m.checker.stop(reason)));
  }

  /**
   * A report to the ttl check `name` (the instance is alive, or failing with `note`). It counts from
   * now and is evaluated at once (unless an evaluation is in flight: then at the next one).
   * @throws UnknownCheckError when no ttl check has that name
   */
  report(name: string, ok: boolean, note?: string): TtlReport {
    const member = this.#members.find((m) => m.ttl && m.spec.name === name);
    if (!member?.ttl) throw new UnknownCheckError(name);
    const report = member.ttl.report(ok, note);
    // The report is the news: evaluate it now rather than up to an interval later.
    member.checker.probeNow();
    return report;
  }

  /** Names of the ttl checks, which accept reports. */
  ttlChecks(): string[] {
    return this.#members.filter((m) => m.ttl).map((m) => m.spec.name);
  }

  /** Each check's state, in configuration order. */
  states(): CheckState[] {
    return this.#members.map((m) => {
      const h = m.checker.snapshot();
      const state: CheckState = {
        name: m.spec.name,
        kind: m.spec.kind,
        target: m.spec.target,
        critical: m.spec.critical,
        status: h.status,
        lastCheck: h.lastCheck,
        interval: m.interval,
        timeout: m.timeout,
        retries: m.retries,
      };
      if (m.output !== undefined) state.output = m.output;
      if (m.spec.ttl) state.ttl = m.spec.ttl.deadline;
      return state;
    });
  }

  /** The instance's health: the worst critical check, with every check's state. */
  snapshot(): HealthInfo {
    const snaps = this.#members.map((m) => ({ m, h: m.checker.snapshot() }));
    const deciding = snaps.filter(({ m }) => m.spec.critical);
    const counted = deciding.length > 0 ? deciding : snaps;
    const lastChecks = snaps.map(({ h }) => h.lastCheck).filter((t): t is number => t !== null);
    const info: HealthInfo = {
      status: this.#status,
      responseTime: this.#lastResult?.latencyMs ?? null,
      lastCheck: lastChecks.length > 0 ? Math.max(...lastChecks) : null,
      consecutiveFailures: Math.max(...counted.map(({ h }) => h.consecutiveFailures)),
      consecutiveSuccesses: Math.min(...counted.map(({ h }) => h.consecutiveSuccesses)),
      checks: this.states(),
    };
    const message = this.#message();
    if (message !== undefined) info.message = message;
    return info;
  }

  /** Every check's recent results, each named by its check, oldest first. */
  history(): HealthHistoryEntry[] {
    const all = this.#members.flatMap((m) => m.checker.history().map((e) => ({ ...e, check: m.spec.name })));
    all.sort((a, b) => a.at - b.at);
    return all.slice(-50);
  }

  /** Why the instance is as it is, naming the checks that decide it. */
  #message(): string | undefined {
    if (this.#final) return this.#finalReason;
    const say = (m: Member): string => `${m.spec.name}: ${m.checker.snapshot().message ?? m.output ?? m.checker.status}`;
    const critical = this.#members.filter((m) => m.spec.critical);
    const failing = critical.filter((m) => m.checker.status === 'unhealthy');
    if (failing.length > 0) return failing.map(say).join('; ');
    const waiting = critical.filter((m) => m.checker.status === 'starting');
    if (waiting.length > 0) return `waiting for ${waiting.map(say).join('; ')}`;
    const optional = this.#members.filter((m) => !m.spec.critical && m.checker.status !== 'healthy');
    const passing = `${critical.length === this.#members.length ? 'all' : 'critical'} checks pass`;
    return optional.length > 0 ? `${passing}; non-critical ${optional.map(say).join('; ')}` : this.#lastResult ? passing : undefined;
  }

  #aggregate(): ServiceStatus {
    const critical = this.#members.filter((m) => m.spec.critical);
    // Only non-critical checks: nothing can take the instance out, it is healthy once any check ran.
    if (critical.length === 0) return this.#members.some((m) => m.checker.snapshot().lastCheck !== null) ? 'healthy' : 'starting';
    if (critical.some((m) => m.checker.status === 'unhealthy')) return 'unhealthy';
    if (critical.some((m) => m.checker.status === 'starting')) return 'starting';
    return 'healthy';
  }

  #onResult(member: Member, r: HealthCheckResultEvent): void {
    if (this.#final || r.transition.ignored) return;
    member.output = bounded(r.result.ok ? (r.result.output ?? 'ok') : describeFailure(r.result));
    this.#lastResult = r.result;
    const previous = this.#status;
    this.#status = this.#aggregate();
    const health = this.snapshot();
    const reason = health.message ?? this.#status;
    const transition: HealthTransition = { changed: previous !== this.#status, previous, status: this.#status, reason, at: r.result.at, ignored: false };
    this.#safeEmit('result', { result: r.result, transition, health, check: member.spec.name, checksChanged: r.transition.changed });
    if (transition.changed) this.#safeEmit('statusChange', { previous, status: this.#status, reason, at: transition.at, health });
  }

  #enterFinal(status: 'draining' | 'stopped', reason: string): HealthTransition {
    const previous = this.#status;
    const at = this.#now();
    if (previous === 'stopped' || previous === status) {
      return { changed: false, previous, status: previous, reason: `already ${previous}`, at, ignored: false };
    }
    this.#final = status;
    this.#finalReason = reason;
    this.#status = status;
    const health = this.snapshot();
    this.#safeEmit('statusChange', { previous, status, reason, at, health });
    return { changed: true, previous, status, reason, at, ignored: false };
  }

  #safeEmit<K extends keyof HealthCheckerEvents>(event: K, ...args: HealthCheckerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: HealthCheckerEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}
