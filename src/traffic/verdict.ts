/**
 * What a load balancer should do with one instance, decided once for every consumer (the HAProxy
 * feed, rendered templates): take new traffic, finish in-flight work only, or nothing.
 *
 * @module
 */
import { isIP } from 'node:net';
import type { ServiceRecord } from '../types.js';
import { isoTime } from '../util/time.js';

/**
 * - `serving`: healthy and enabled, takes new traffic.
 * - `draining`: an operator drain runs (disabled with a drain deadline not yet reached), or the
 *   instance's agent is stopping it: no new traffic, in-flight requests finish.
 * - `out`: unhealthy, starting, stopped, disabled, or an address no load balancer can use.
 */
export type TrafficState = 'serving' | 'draining' | 'out';

export interface TrafficVerdict {
  state: TrafficState;
  /** Why, in a few words: `healthy`, `operator drain until 2026-…Z (deploy)`, `disabled (deploy)`, `unhealthy`. */
  reason: string;
}

/** Host names and address literals a load balancer config can hold: RFC 1123 labels (plus `_`), at most 253 characters. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/**
 * Whether `host` is an IP address or a host name. Registry data is hostile: anything else (spaces,
 * `;`, newlines) could inject commands into HAProxy's Runtime API or directives into a config file.
 */
export function isRoutableHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) !== 0 || HOST_NAME.test(host);
}

/** `host:port`, with an IPv6 address in brackets (`[::1]:3001`), as HAProxy and nginx write it. */
export function hostPort(host: string, port: number): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) === 6 ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/** The verdict for one record as the view returns it (operator intent applied at `now`). */
export function trafficVerdict(s: ServiceRecord, now = Date.now()): TrafficVerdict {
  if (!isRoutableHost(s.host) || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
    return { state: 'out', reason: 'no usable address (host must be an IP address or a host name, port 1-65535)' };
  }
  const admin = s.adminState ?? (s.enabled ? 'enabled' : 'disabled');
  const why = s.disabledReason ? ` (${s.disabledReason})` : '';
  const drainRuns = admin === 'draining' && s.drainUntil !== undefined && s.drainUntil > now;
  switch (s.status) {
    case 'unhealthy':
      return { state: 'out', reason: s.health.flapping ? 'unhealthy (flapping)' : 'unhealthy' };
    case 'starting':
      return { state: 'out', reason: 'starting' };
    case 'stopped':
      return { state: 'out', reason: 'stopped' };
    case 'draining':
      // The agent publishes `draining` while it stops its instance: let in-flight work finish.
      return admin === 'disabled' ? { state: 'out', reason: `disabled${why}` } : { state: 'draining', reason: 'stopping' };
    case 'healthy':
      if (drainRuns) return { state: 'draining', reason: `operator drain until ${isoTime(s.drainUntil!)}${why}` };
      if (admin !== 'enabled') return { state: 'out', reason: `disabled${why}` };
      return { state: 'serving', reason: 'healthy' };
  }
}

/**
 * The next moment a verdict changes by the clock alone: the earliest running drain's deadline. (A
 * lapsing timed disable is an event of the cluster view.)
 */
export function nextVerdictChange(services: readonly ServiceRecord[], now = Date.now()): number | undefined {
  let next: number | undefined;
  for (const s of services) {
    if (s.adminState === 'draining' && s.drainUntil !== undefined && s.drainUntil > now && (next === undefined || s.drainUntil < next)) next = s.drainUntil;
  }
  return next;
}
