/**
 * Small pure formatters for the dashboard: fixed-width cells, compact ages and one line per event.
 * No ink, no colour: components decide how to paint what these return.
 *
 * @module
 */
import type { ClusterEvent, ServiceStatus } from '../types.js';
import { spanText, timeLeft } from '../util/time.js';

/** Cuts `text` to `width` cells (with `…` when cut) and pads it to exactly `width`. */
export function cell(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return '';
  const fitted = fit(text, width);
  return align === 'left' ? fitted.padEnd(width) : fitted.padStart(width);
}

/** Cuts `text` to at most `width` characters, marking the cut with `…`. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** `now`, `12s`, `3m`, `2h`, `4d`; `-` for never. Compact enough for a table cell. */
export function age(epochMs: number | null | undefined, now: number): string {
  if (!epochMs) return '-';
  // Whole seconds passed (the CLI's `ago` rounds to the nearest one).
  const s = Math.max(0, Math.floor((now - epochMs) / 1000));
  return s < 1 ? 'now' : spanText(s);
}

/** `12s ago`, or `just now`; `never` when there is no time. */
export function ago(epochMs: number | null | undefined, now: number): string {
  const a = age(epochMs, now);
  if (a === '-') return 'never';
  return a === 'now' ? 'just now' : `${a} ago`;
}

/** `HH:MM:SS` in local time: an operator compares it with the wall clock beside them. */
export function clock(epochMs: number): string {
  const d = new Date(epochMs);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

export function latency(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : `${Math.round(ms)}ms`;
}

/** How bad a status is, for the status sort (problems first) and for colour. */
export const STATUS_RANK: Record<ServiceStatus, number> = {
  unhealthy: 0,
  starting: 1,
  draining: 2,
  stopped: 3,
  healthy: 4,
};

/** The tone of a status, mapped to a colour by the components (and dropped under NO_COLOR). */
export type Tone = 'good' | 'bad' | 'warn' | 'info' | 'muted';

export const STATUS_TONE: Record<ServiceStatus, Tone> = {
  healthy: 'good',
  unhealthy: 'bad',
  starting: 'warn',
  draining: 'info',
  stopped: 'muted',
};

/** One line about an event, without the time: `healthy → unhealthy (HTTP 503)`. */
export function eventDetail(e: ClusterEvent): string {
  switch (e.type) {
    case 'serviceJoined':
      return `joined ${e.service.host}:${e.service.port} ${e.service.region}/${e.service.zone} (${e.service.status})`;
    case 'serviceLeft':
      return e.service ? `left ${e.service.host}:${e.service.port}` : 'left';
    case 'serviceHealthChanged':
      return `${e.previousStatus} → ${e.status}${e.service.health.message ? ` (${e.service.health.message})` : ''}`;
    case 'serviceEnabled':
    case 'serviceDisabled':
      return [e.type === 'serviceEnabled' ? 'enabled' : 'disabled', e.actor ? `by ${e.actor}` : '', e.reason ? `reason: ${e.reason}` : '']
        .filter(Boolean)
        .join(' ');
    case 'serviceUpdated':
      return `updated ${e.service.host}:${e.service.port} v${e.service.version}`;
    case 'leaderElected':
      return `${e.leaderId ?? 'nobody'} leads (was ${e.previousLeaderId ?? 'nobody'})`;
  }
}

export function eventTone(e: ClusterEvent): Tone {
  switch (e.type) {
    case 'serviceHealthChanged':
      return STATUS_TONE[e.status];
    case 'serviceLeft':
    case 'serviceDisabled':
      return 'warn';
    case 'serviceJoined':
    case 'serviceEnabled':
      return 'good';
    default:
      return 'info';
  }
}

/** Printable characters of a keypress or paste (src/util/text.ts). */
export { printable } from '../util/text.js';

/** Time left until `epochMs`, compact: `25s`, `4m`, `2h`, `3d`; `0s` once passed. */
export function left(epochMs: number, now: number): string {
  return timeLeft(epochMs, now);
}

/** Operator state `draining`: disabled, and the drain's deadline not passed yet (health plays no part). */
export function isDraining(s: { enabled: boolean; drainUntil?: number }, now: number): s is { enabled: false; drainUntil: number } {
  return !s.enabled && s.drainUntil !== undefined && s.drainUntil > now;
}

/**
 * The ENABLED cell, at most 7 wide: `yes`; `drn 25s` (draining, counting down to disabled);
 * `no 29m` (a timed disable's time left); `no`.
 */
export function enabledCell(s: { enabled: boolean; drainUntil?: number; disabledUntil?: number }, now: number): string {
  if (s.enabled) return 'yes';
  if (isDraining(s, now)) return `drn ${left(s.drainUntil, now)}`;
  return s.disabledUntil !== undefined ? `no ${left(s.disabledUntil, now)}` : 'no';
}
