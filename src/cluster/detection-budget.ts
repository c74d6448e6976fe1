/**
 * The detection budget of an instance: how long, at worst, until the cluster notices something is
 * wrong with it, computed from the settings its agent publishes in the record (`checks`).
 *
 * - Agent (or host) dies: its lease runs out, at most `ttl` later (etcd 3.4 raises TTLs below 2 s to 2 s).
 * - Upstream turns sick: `retries` failed probes, one every `interval`, the last taking up to
 *   `timeout`: at most `interval × retries + timeout` (the health checker's schedule; see
 *   `src/agent/health-checker.ts`). During the grace period after start it stays `starting` instead.
 * - Upstream recovers: one success, at most `interval + timeout` later; a flap-damping hold adds
 *   `holdDown` seconds without a change.
 * - With several checks (`health.checks`, `--check`), each has its own interval, timeout and retries:
 *   the instance is as late as its slowest critical check (a `ttl` check: its `ttl`, then `retries`
 *   evaluations one `interval` apart). Non-critical checks never change the instance's status.
 *
 * @module
 */
import type { CheckState, HealthCheckSettings } from '../types.js';
import { formatSeconds } from './explain.js';

export interface DetectionBudget {
  /** Seconds until a dead agent's record disappears (lease TTL). */
  death: number;
  /** Seconds until a sick upstream is marked unhealthy (outside the grace period). */
  sick: number;
  /** Seconds until a recovered upstream is marked healthy again (without a flap hold). */
  recovery: number;
  /** Seconds after start during which failures keep the instance `starting`. */
  gracePeriod: number;
  /** Seconds of stability that release a flap hold; null when damping is off. */
  holdDown: number | null;
  /** With several checks: each one's own times (`sick` and `recovery` above are the critical ones' worst). */
  checks?: CheckBudget[];
}

/** One check's detection times, in seconds. */
export interface CheckBudget {
  name: string;
  critical: boolean;
  sick: number;
  recovery: number;
}

function checkBudget(c: Pick<CheckState, 'name' | 'kind' | 'critical' | 'interval' | 'timeout' | 'retries' | 'ttl'>): CheckBudget {
  // A ttl check fails at the first evaluation after its deadline; nothing is probed, so no timeout.
  const sick = c.kind === 'ttl' ? (c.ttl ?? 0) + c.interval * c.retries : c.interval * c.retries + c.timeout;
  return { name: c.name, critical: c.critical, sick: round(sick), recovery: round(c.kind === 'ttl' ? c.interval : c.interval + c.timeout) };
}

const round = (s: number) => Math.round(s * 1000) / 1000;

/** The budget from the published settings and, with several checks, from each check's own (`health.checks`). */
export function detectionBudget(c: HealthCheckSettings, checks?: readonly CheckState[]): DetectionBudget {
  const budget: DetectionBudget = {
    death: c.ttl,
    sick: round(c.interval * c.retries + c.timeout),
    recovery: round(c.interval + c.timeout),
    gracePeriod: c.gracePeriod,
    holdDown: c.flap.threshold > 0 ? c.flap.holdDown : null,
  };
  if (checks && checks.length > 0) {
    budget.checks = checks.map(checkBudget);
    const critical = budget.checks.filter((b) => b.critical);
    if (critical.length > 0) {
      budget.sick = Math.max(...critical.map((b) => b.sick));
      budget.recovery = Math.max(...critical.map((b) => b.recovery));
    }
  }
  return budget;
}

/** One line per budget, for `services show` and the dashboard. */
export function describeBudget(c: HealthCheckSettings, checks?: readonly CheckState[]): string[] {
  const b = detectionBudget(c, checks);
  const f = (s: number) => formatSeconds(s * 1000);
  const lines = [`agent death noticed within ${f(b.death)} (lease TTL)`];
  if (b.checks) {
    lines.push(`sick upstream noticed within ${f(b.sick)} (the slowest critical check)`);
    for (const k of b.checks) lines.push(`  ${k.name}${k.critical ? '' : ' (non-critical)'}: failure within ${f(k.sick)}, recovery within ${f(k.recovery)}`);
    lines.push(`recovery noticed within ${f(b.recovery)} (one success of each failing check)${b.gracePeriod > 0 ? `; failures ignored for ${f(b.gracePeriod)} after start` : ''}`);
  } else {
    lines.push(
      `sick upstream noticed within ${f(b.sick)} (${f(c.interval)} interval × ${c.retries} ${c.retries === 1 ? 'retry' : 'retries'} + ${f(c.timeout)} timeout)`,
      `recovery noticed within ${f(b.recovery)} (one success)${b.gracePeriod > 0 ? `; failures ignored for ${f(b.gracePeriod)} after start` : ''}`,
    );
  }
  lines.push(
    b.holdDown === null
      ? 'flap damping off'
      : `flap damping: ${c.flap.threshold} changes within ${f(c.flap.window)} hold it unhealthy until ${f(b.holdDown)} without a change`,
  );
  return lines;
}
