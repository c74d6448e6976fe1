/**
 * Sentences that explain an instance's health to a person, computed from registry data alone (pure
 * functions, shared by the CLI, the API and the dashboard).
 *
 * @module
 */
import type { AdminIntent, FlapInfo, InstanceMaintenanceInfo } from '../types.js';
import { isoTime } from '../util/time.js';

/** Durations for humans: "1m", "30s", "1.5s", "500ms". */
export function formatSeconds(ms: number): string {
  if (ms > 0 && ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s >= 60 && Number.isInteger(s / 60)) return `${s / 60}m`;
  if (s >= 10 || Number.isInteger(s)) return `${Math.round(s)}s`;
  return `${Math.round(s * 10) / 10}s`;
}

/** A flap-damping hold at `now`: "held down: 6 changes in 1m, stable for 12s of 30s". */
export function describeFlapping(info: FlapInfo, now: number): string {
  const stable = Math.max(0, Math.min(now - info.lastChange, info.holdDown * 1000));
  return `held down: ${info.transitions} changes in ${formatSeconds(info.window * 1000)}, stable for ${formatSeconds(Math.floor(stable / 1000) * 1000)} of ${formatSeconds(info.holdDown * 1000)}`;
}

/** Operator intent as a sentence: "disabled by ci-key: deploy 42", "enabled by alice". */
export function describeIntent(intent: Pick<AdminIntent, 'enabled' | 'actor' | 'reason' | 'expiresAt'>): string {
  const verb = intent.enabled ? 'enabled' : 'disabled';
  const by = intent.actor && intent.actor !== 'unknown' ? ` by ${intent.actor}` : '';
  const reason = intent.reason ? `: ${intent.reason}` : '';
  const until = intent.expiresAt !== undefined ? ` (until ${isoTime(intent.expiresAt)})` : '';
  return `${verb}${by}${reason}${until}`;
}

/** The instance's own maintenance switch: "instance in maintenance as asked", "MISMATCH: ...". */
export function describeInstanceMaintenance(m: InstanceMaintenanceInfo): string {
  if (m.inSync) return `instance ${m.actual === 'maintenance' ? 'in maintenance' : 'serving'}, as asked`;
  const actual = m.actual === 'unknown' ? 'state unknown' : m.actual;
  return `mismatch: asked ${m.desired}, instance ${actual}${m.lastError ? ` (${m.lastError})` : ''}; retrying`;
}
