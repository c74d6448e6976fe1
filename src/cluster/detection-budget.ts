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
 *
 * @module
 */
import type { HealthCheckSettings } from '../types.js';
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
}

const round = (s: number) => Math.round(s * 1000) / 1000;

export function detectionBudget(c: HealthCheckSettings): DetectionBudget {
  return {
    death: c.ttl,
    sick: round(c.interval * c.retries + c.timeout),
    recovery: round(c.interval + c.timeout),
    gracePeriod: c.gracePeriod,
    holdDown: c.flap.threshold > 0 ? c.flap.holdDown : null,
  };
}

/** One line per budget, for `services show` and the dashboard. */
export function describeBudget(c: HealthCheckSettings): string[] {
  const b = detectionBudget(c);
  const f = (s: number) => formatSeconds(s * 1000);
  const lines = [
    `agent death noticed within ${f(b.death)} (lease TTL)`,
    `sick upstream noticed within ${f(b.sick)} (${f(c.interval)} interval × ${c.retries} ${c.retries === 1 ? 'retry' : 'retries'} + ${f(c.timeout)} timeout)`,
    `recovery noticed within ${f(b.recovery)} (one success)${b.gracePeriod > 0 ? `; failures ignored for ${f(b.gracePeriod)} after start` : ''}`,
  ];
  lines.push(
    b.holdDown === null
      ? 'flap damping off'
      : `flap damping: ${c.flap.threshold} changes within ${f(c.flap.window)} hold it unhealthy until ${f(b.holdDown)} without a change`,
  );
  return lines;
}
