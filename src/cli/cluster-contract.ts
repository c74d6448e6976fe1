/**
 * The CLI's library layer, its contract: one {@link ClusterClient} with two implementations that give
 * the same results, `RegistryClient` (etcd directly) and `AgentClient` (an agent's HTTP API), and what
 * both share: targets, result shapes, errors and pure helpers. The implementations import this module,
 * never cluster-client.ts, which loads them on demand (`openClusterClient`): the arrows run one way, and
 * `--help` never pays for etcd, gRPC or undici. Nothing here imports oclif; apart from types it holds
 * only small error classes and pure functions.
 *
 * Result shapes are the agent API's (the seed's), so `--json` output is the same whichever way the
 * CLI reached the cluster.
 *
 * @module
 */
import type { DetectionBudget } from '../cluster/detection-budget.js';
import type { AgentStatusSnapshot } from '../agent/agent.js';
import type { HealthHistoryEntry } from '../agent/health-state.js';
import type { MinHealthy } from '../cluster/capacity.js';
import type { LeaderInfo } from '../cluster/leader.js';
import type { Selection } from '../cluster/selector.js';
import type { ServiceFilter, ServiceList } from '../cluster/topology.js';
import type {
  AdminIntent,
  AuditEntry,
  ClusterEvent,
  ClusterEventType,
  ClusterTopology,
  HealthInfo,
  ServiceRecord,
  ServiceStatus,
  TopologyLeader,
} from '../types.js';

export type { ServiceFilter, ServiceList } from '../cluster/topology.js';

/** Reach the registry (etcd or Redis) directly. */
export interface RegistryTarget {
  kind: 'registry';
  /** Which backend the endpoints are: etcd (default) or redis (one redis:// or rediss:// URL). */
  registry?: 'etcd' | 'redis';
  /** etcd client URLs (http or https), or one Redis URL. */
  endpoints: string[];
  namespace: string;
  /** The cluster's name for `status` and the dashboard (the registry does not store one). */
  clusterName?: string;
  /** Milliseconds allowed for each network call. */
  timeoutMs: number;
  username?: string;
  password?: string;
  /** PEM file paths, as for the agent: `ca` alone is TLS, with `cert` and `key` mutual TLS. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Called with each unparsable entry skipped under the namespace (one line each). */
  onWarning?: (message: string) => void;
  /** The context (of the contexts file) the target was resolved with, if any. */
  context?: TargetContext;
}

/** Which context of which contexts file a target was resolved with. */
export interface TargetContext {
  name: string;
  file: string;
}

/** Reach the cluster through one agent's HTTP API. */
export interface AgentTarget {
  kind: 'agent';
  /** The agent's base URL, e.g. `http://127.0.0.1:8790` (a trailing `/service-discovery` is accepted). */
  url: string;
  /** Sent as `Authorization: Bearer <key>`; needed for enable/disable, and for reads when the agent requires it. */
  apiKey?: string;
  /** Milliseconds allowed for each request (streams: for connecting and for the response headers). */
  timeoutMs: number;
  /** PEM file paths for an https agent: `ca` to trust its certificate, `cert` and `key` when it asks for a client certificate. */
  tls?: { ca?: string; cert?: string; key?: string };
  onWarning?: (message: string) => void;
  /** The context (of the contexts file) the target was resolved with, if any. */
  context?: TargetContext;
}

export type ClusterTarget = RegistryTarget | AgentTarget;

/** An agent's own status: the seed's `GET /service-discovery/status` body. */
export type AgentStatus = AgentStatusSnapshot;

/**
 * `status`: one shape whichever way the CLI reached the cluster. Through the registry, `agent` is null
 * and `version` is the registry server's; through an agent, the registry fields are what that agent
 * sees (its view's revision, no server version) and `agent` is its own status, the seed's fields
 * included.
 */
export interface StatusResult {
  /** `SERVICE_DISCOVERY_CLUSTER_NAME`: the agent's through an agent, this command's setting through the registry. */
  clusterName: string;
  namespace: string;
  registry: {
    /** `etcd`, `redis` or (an agent's own) `memory`. */
    kind: string;
    /** The endpoints asked, comma-separated, credentials removed. */
    endpoints: string;
    reachable: boolean;
    /** Registry server version; null when unreachable or read through an agent. */
    version: string | null;
    /** Store revision the counts were read at (an agent's view revision); null when unreachable. */
    revision: number | null;
    /** Why it is unreachable. */
    error?: string;
  };
  leader: TopologyLeader | null;
  /**
   * `healthy`: instances taking traffic (status healthy and enabled); `unhealthy`: the others, for
   * whatever reason; `disabled`: operator-disabled, whatever their health. null when the registry
   * could not be read.
   */
  counts: { total: number; healthy: number; unhealthy: number; disabled: number } | null;
  /** The agent's own status when read through one; null through the registry. */
  agent: AgentStatus | null;
}

/** The counts of a {@link StatusResult}, from a topology. */
export function statusCounts(t: ClusterTopology): NonNullable<StatusResult['counts']> {
  return { total: t.totalServices, healthy: t.healthyServices, unhealthy: t.unhealthyServices, disabled: t.disabledServices };
}

/** The seed's `GET /service-discovery/services/:id/health` body. */
export interface ServiceHealthResult {
  serviceId: string;
  status: ServiceStatus;
  health: HealthInfo;
  /** Probe history, oldest first; only the service's own agent has it (empty elsewhere). */
  history: HealthHistoryEntry[];
  /** Where the service's own agent serves its history, when it advertises an API. */
  historyUrl?: string;
}

/** The API's enable/disable answer. */
export interface SetEnabledSummary {
  serviceId: string;
  enabled: boolean;
  /** False when the service already was in the asked state. */
  changed: boolean;
  /**
   * Present (true) when the service already was in the asked state but the request's new reason
   * replaced the stored one (`changed` is then false).
   */
  reasonUpdated?: true;
  /** The reason replaced, when `reasonUpdated` and there was one. */
  previousReason?: string;
  /** The stored intent could not be read (why): this action overwrote it, even with `changed` false. */
  repaired?: string;
  service?: ServiceRecord;
}

/** The summary of an enable/disable: what changed, and whether only the reason did. */
export function setEnabledSummary(result: {
  serviceId: string;
  enabled: boolean;
  changed: boolean;
  reasonUpdated?: boolean;
  previousReason?: string;
  repaired?: string;
  service?: ServiceRecord;
}): SetEnabledSummary {
  return {
    serviceId: result.serviceId,
    enabled: result.enabled,
    changed: result.changed,
    ...(result.reasonUpdated === true ? { reasonUpdated: true as const } : {}),
    ...(result.reasonUpdated === true && typeof result.previousReason === 'string' ? { previousReason: result.previousReason } : {}),
    ...(typeof result.repaired === 'string' ? { repaired: result.repaired } : {}),
    ...(result.service ? { service: result.service } : {}),
  };
}

export interface AuditResult {
  entries: AuditEntry[];
}

export interface SetEnabledRequest {
  reason?: string;
  /** Recorded in the audit trail on the registry path; an agent records its API key's name instead. */
  actor?: string;
  /** Disable: epoch ms at which it lapses (the leader re-enables it). */
  expiresAt?: number;
  /** Disable: seconds the instance drains before it counts as disabled. */
  drainTimeout?: number;
  /** Disable: override the capacity guard. */
  force?: boolean;
  /** Disable on the registry path: the capacity guard's minimum (an agent applies its own). */
  minHealthy?: MinHealthy;
}

/** What `leader resign` sends. */
export interface ResignRequestOptions {
  term?: number;
  reason?: string;
  /** Recorded in the audit trail on the registry path; an agent records its API key's name instead. */
  actor?: string;
}

/** The API's resign answer: whom the request was for. */
export interface ResignSummary {
  leaderId: string;
  term: number;
  requested: true;
}

/** What `services forget` sends. */
export interface ForgetRequestOptions {
  force?: boolean;
  reason?: string;
  /** Recorded in the audit trail on the registry path; an agent records its API key's name instead. */
  actor?: string;
}

/** The API's forget answer (src/cluster/forget.ts's result without its audit entry). */
export interface ForgetSummary {
  serviceId: string;
  removed: { intent: boolean; healthHold: boolean };
  live: boolean;
}

export interface EventsOptions {
  /** Only these event types (all when absent). */
  types?: ReadonlySet<ClusterEventType>;
  /**
   * Through an agent only: first replay the events its history holds from this epoch ms on; when the
   * history does not reach back that far, `onNotice` says from when it does.
   */
  since?: number;
  /** Connection changes worth telling a person (lost, reconnected, resynced), one line each. */
  onNotice?: (message: string) => void;
  /**
   * The stream is open: every change from now on arrives as an event, so a listing started after
   * this call leaves no gap. Through an agent: each time the SSE response arrives (the first
   * connection, then each reconnection, which resumes by itself or says so through `onNotice`).
   * Through etcd: once, when the first listing is done and the watch runs (it re-lists by itself).
   */
  onOpen?: () => void;
}

/**
 * What the CLI needs from a cluster. Every call is bounded by the target's timeout; `close()` must be
 * called so that no socket or gRPC channel keeps the process alive.
 */
export interface ClusterClient {
  readonly kind: 'registry' | 'agent';
  /** Where the client talks to, for messages (no credentials). */
  readonly description: string;
  status(): Promise<StatusResult>;
  listServices(filter?: ServiceFilter): Promise<ServiceList>;
  /** @throws ServiceNotFoundError */
  getService(id: string): Promise<ServiceRecord>;
  /** @throws ServiceNotFoundError */
  getServiceHealth(id: string): Promise<ServiceHealthResult>;
  /**
   * Operator intent for a service, null when none is recorded (enabled by default). The registry
   * stores it; an agent's API does not expose it, so there it is rebuilt from the record and the
   * newest audit entry that changed it.
   */
  getIntent(id: string): Promise<AdminIntent | null>;
  /** The topology of the services `selection` matches (all when empty); the leader is the cluster's. */
  topology(selection?: Selection): Promise<ClusterTopology>;
  /** Idempotent: `changed` is false when the service already was in that state. @throws ServiceNotFoundError */
  setEnabled(id: string, enabled: boolean, request?: SetEnabledRequest): Promise<SetEnabledSummary>;
  /** Newest first. */
  audit(options?: { serviceId?: string; limit?: number }): Promise<AuditResult>;
  /** Who leads, its term and fencing revision, and the candidates in line (src/cluster/leader.ts). */
  leader(): Promise<LeaderInfo>;
  /** Asks the leader (of `request.term`, when given) to hand over; resolves once asked. @throws NoLeaderError, LeaderTermError */
  resignLeader(request?: ResignRequestOptions): Promise<ResignSummary>;
  /** Removes the intent and health hold of a retired id (src/cluster/forget.ts). @throws ServiceNotFoundError, LiveServiceError */
  forget(id: string, request?: ForgetRequestOptions): Promise<ForgetSummary>;
  /**
   * Follows the live event stream, calling `onEvent` for each event, until `signal` aborts (then it
   * resolves). Rejects when the stream cannot be opened at all; later interruptions are retried.
   */
  events(onEvent: (event: ClusterEvent) => void, signal: AbortSignal, options?: EventsOptions): Promise<void>;
  close(): Promise<void>;
}

/** The target options are unusable (both or neither way given, a bad URL, an unreadable TLS file). Exit 2. */
export class TargetError extends Error {
  override name = 'TargetError';
}

/** The agent's API did not answer in time or refused the connection. Exit 4, like an unreachable etcd. */
export class AgentUnavailableError extends Error {
  override name = 'AgentUnavailableError';
  constructor(
    readonly url: string,
    detail: string,
  ) {
    super(`agent ${url} unreachable: ${detail}`);
  }
}

/** The code of an {@link AgentRequestError} from a URL that answers, but not as an agent (exit 1). */
export const NOT_AN_AGENT = 'not_an_agent';

/** The agent answered with an error (`{error, message}` body). 401/403 map to exit 5, 400 to 2. */
export class AgentRequestError extends Error {
  override name = 'AgentRequestError';
  constructor(
    readonly url: string,
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What `services show` prints: the record, its health, the operator intent and its audit trail. */
export interface ServiceDetails {
  service: ServiceRecord;
  health: ServiceHealthResult;
  intent: AdminIntent | null;
  audit: AuditEntry[];
  /** Worst-case detection times from the record's `checks`; null for records of agents that do not publish them. */
  budget?: DetectionBudget | null;
  /** Why `health.history` is empty although the service has one (its agent's API did not answer). */
  historyUnavailable?: string;
}

/** Rebuilds an intent from a record and its audit trail (newest first), for sources that do not expose it. */
export function intentFromAudit(service: ServiceRecord, entries: readonly AuditEntry[]): AdminIntent | null {
  const last = entries.find((e) => e.changed && e.serviceId === service.id && (e.action === 'enable' || e.action === 'disable'));
  if (!last) return service.enabled ? null : { enabled: false, reason: service.disabledReason, actor: 'unknown', at: 0 };
  const enabled = last.action === 'enable';
  // The trail and the record disagree (an intent expired, or was removed by hand): the record wins.
  if (enabled !== service.enabled) return service.enabled ? null : { enabled: false, reason: service.disabledReason, actor: 'unknown', at: 0 };
  return { enabled, ...(last.reason !== undefined ? { reason: last.reason } : {}), actor: last.actor, at: last.at };
}
