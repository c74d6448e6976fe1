/**
 * What one HAProxy backend should look like, and the Runtime API changes that get it there. Pure:
 * no socket, no clock, so every rule is tested on its own.
 *
 * Ownership: the servers the feed manages are named `<prefix><service id>` (sanitised); every other
 * server of the backend, from the config file or another tool, is never touched.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { ADMIN_FORCED_DRAIN, ADMIN_FORCED_MAINT, type HaproxyServerState } from './haproxy-runtime.js';
import type { TrafficState } from './verdict.js';

/** The prefix that marks the servers the feed owns, unless `--server-prefix` says otherwise. */
export const DEFAULT_SERVER_PREFIX = 'psd-';
/**
 * HAProxy's own health check on every server, beside the registry's: it notices a dead instance in
 * `inter × fall` (2 s) even before its lease runs out, and uses the backend's `option httpchk`.
 */
export const DEFAULT_SERVER_OPTIONS = 'check inter 1s fall 2 rise 2';

/** HAProxy's server states, as `set server … state` takes them. */
export type ServerState = 'ready' | 'drain' | 'maint';

/** The HAProxy state for a traffic verdict. */
export const STATE_FOR: Record<TrafficState, ServerState> = { serving: 'ready', draining: 'drain', out: 'maint' };

/** One server the backend should have. */
export interface DesiredServer {
  name: string;
  serviceId: string;
  /** IP address (host names are resolved before planning: HAProxy 2.6 cannot resolve a dynamic server's name without resolvers). */
  addr: string;
  port: number;
  state: ServerState;
  reason: string;
}

export type PlanAction =
  | { kind: 'add'; server: DesiredServer }
  | { kind: 'address'; server: DesiredServer; from: string }
  | { kind: 'state'; server: DesiredServer; from: ServerState }
  | { kind: 'remove'; name: string; from: ServerState; addr: string };

/** Characters HAProxy allows in a server name (anything else is refused: "character '@' is not permitted"). */
const NAME_CHARS = /^[A-Za-z0-9._:-]+$/;
const MAX_NAME = 64;

/** Checks a `--server-prefix`: non-empty, HAProxy name characters, short enough to leave room for ids. */
export function validatePrefix(prefix: string): string | undefined {
  if (prefix === '') return 'expected a non-empty prefix';
  if (!NAME_CHARS.test(prefix)) return 'expected letters, digits and . _ : - only (HAProxy server name characters)';
  if (prefix.length > 24) return 'expected at most 24 characters';
  return undefined;
}

/** Checks a backend name: HAProxy proxy-name characters, and nothing that could end a command. */
export function validateBackend(name: string): string | undefined {
  if (name === '' || !NAME_CHARS.test(name) || name.length > 128) return 'expected a backend name of letters, digits and . _ : - (as in haproxy.cfg)';
  return undefined;
}

/**
 * Checks `--server-options`: words appended to `add server`. One command per line, and `;` chains
 * commands on HAProxy's CLI, so neither may appear.
 */
export function validateServerOptions(options: string): string | undefined {
  if (/[;\r\n#\u0000-\u001f\u007f]/.test(options)) return 'expected `add server` options on one line, without ; or #';
  // An agent check may bring a server out of maintenance by itself, undoing the registry's verdict.
  if (/(^|\s)agent-check(\s|$)/.test(options)) return 'agent-check is not supported: HAProxy\'s agent could take a server out of maintenance behind the registry\'s back';
  if (options.length > 1000) return 'expected at most 1000 characters';
  return undefined;
}

/**
 * The server name of a service: `<prefix><id>` when the id is made of HAProxy's name characters and
 * short enough; otherwise the id's usable characters cut short plus 8 hex digits of its SHA-256, so
 * two ids never share a name.
 */
export function serverName(prefix: string, serviceId: string): string {
  const plain = `${prefix}${serviceId}`;
  if (NAME_CHARS.test(serviceId) && plain.length <= MAX_NAME) return plain;
  const hash = createHash('sha256').update(serviceId).digest('hex').slice(0, 8);
  const room = MAX_NAME - prefix.length - hash.length - 1;
  return `${prefix}${serviceId.replace(/[^A-Za-z0-9._:-]/g, '_').slice(0, Math.max(0, room))}-${hash}`;
}

/** What HAProxy's admin bits say the operator state is. */
export function stateOf(server: HaproxyServerState): ServerState {
  if (server.adminState & ADMIN_FORCED_MAINT) return 'maint';
  if (server.adminState & ADMIN_FORCED_DRAIN) return 'drain';
  return 'ready';
}

/** Order of application: traffic gains first (adds, ready), then drains, then losses, so the backend never empties on the way. */
const STATE_ORDER: Record<ServerState, number> = { ready: 0, drain: 1, maint: 2 };

/**
 * The changes that make the backend's owned servers (`prefix`) equal to `desired`. Servers not
 * owned are left out of the plan entirely.
 */
export function planBackend(desired: readonly DesiredServer[], current: readonly HaproxyServerState[], prefix: string): PlanAction[] {
  const owned = new Map(current.filter((s) => s.name.startsWith(prefix)).map((s) => [s.name, s]));
  const wanted = new Map(desired.map((d) => [d.name, d]));
  const adds: PlanAction[] = [];
  const moves: PlanAction[] = [];
  const states: (PlanAction & { kind: 'state' })[] = [];
  const removes: PlanAction[] = [];
  for (const d of desired) {
    const now = owned.get(d.name);
    if (!now) {
      adds.push({ kind: 'add', server: d });
      continue;
    }
    if (now.addr !== d.addr || now.port !== d.port) moves.push({ kind: 'address', server: d, from: `${now.addr}:${now.port}` });
    const from = stateOf(now);
    if (from !== d.state) states.push({ kind: 'state', server: d, from });
  }
  for (const [name, s] of owned) if (!wanted.has(name)) removes.push({ kind: 'remove', name, from: stateOf(s), addr: `${s.addr}:${s.port}` });
  adds.sort((a, b) => STATE_ORDER[(a as { server: DesiredServer }).server.state] - STATE_ORDER[(b as { server: DesiredServer }).server.state]);
  states.sort((a, b) => STATE_ORDER[a.server.state] - STATE_ORDER[b.server.state]);
  return [...adds, ...moves, ...states, ...removes];
}
