/** The five statuses of the seed, in display order. */
export const SERVICE_STATUSES = ['healthy', 'unhealthy', 'starting', 'draining', 'stopped'] as const;
export type ServiceStatus = (typeof SERVICE_STATUSES)[number];

export type ServiceRole = 'leader' | 'follower';

/** Last known result of the local health checks, as published in the record. */
export interface HealthInfo {
  status: ServiceStatus;
  /** Milliseconds the last check took, null before the first check. */
  responseTime: number | null;
  /** Epoch milliseconds of the last check, null before the first check. */
  lastCheck: number | null;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  /** Why the last check failed, or why the status last changed. */
  message?: string;
  /** Present while the instance is held down as flapping (its status is then `unhealthy`). */
  flapping?: FlapInfo;
  /** Each check's state, when the instance has its own list of checks (`--check`); absent with the one default HTTP check. */
  checks?: CheckState[];
}

/** One of an instance's checks as its agent publishes it (`--check`, src/agent/checks/). Durations in seconds. */
export interface CheckState {
  name: string;
  kind: 'http' | 'tcp' | 'grpc' | 'ttl';
  /** What is checked: a URL, `host:port[/service]`, or the ttl check's name. */
  target: string;
  /** A failing critical check takes the instance out; a non-critical one is only reported. */
  critical: boolean;
  /** `starting` before its first pass (and failures within the grace period), then `healthy` / `unhealthy`. */
  status: ServiceStatus;
  /** What the last probe said: "SERVING", "HTTP 200", "grpc UNAVAILABLE: …", "2 consecutive timeouts after 1 s". */
  output?: string;
  /** Epoch ms of the last probe, null before the first. */
  lastCheck: number | null;
  interval: number;
  timeout: number;
  retries: number;
  /** `ttl` checks: seconds an "alive" report counts for. */
  ttl?: number;
}

/** A flap-damping hold: the instance changed health too often and is kept `unhealthy` until stable. */
export interface FlapInfo {
  /** Epoch ms the hold started. */
  since: number;
  /** Epoch ms the hold ends if no further change happens (`lastChange + holdDown`). */
  until: number;
  /** Epoch ms of the last raw health change: the stability clock starts there. */
  lastChange: number;
  /** Status changes counted: those that triggered the hold, plus any during it. */
  transitions: number;
  /** The window (s) the threshold applies to. */
  window: number;
  /** Seconds without a change that release the hold. */
  holdDown: number;
  /** Changes within the window that trigger a hold. */
  threshold: number;
}

/** The health-check settings of an instance, as its agent publishes them (seconds), so any reader can explain it. */
export interface HealthCheckSettings {
  interval: number;
  timeout: number;
  retries: number;
  gracePeriod: number;
  /** Lease TTL: an agent that dies is noticed by its lease running out. */
  ttl: number;
  /** Flap damping; threshold 0 = off. */
  flap: { threshold: number; window: number; holdDown: number };
}

/** What the agent knows of the instance's own maintenance switch (`--instance-maintenance-hook`). */
export interface InstanceMaintenanceInfo {
  /** What the operator's intent asks of the instance. */
  desired: 'serving' | 'maintenance';
  /** What the instance last reported; `unknown` before the first answer or while it does not answer. */
  actual: 'serving' | 'maintenance' | 'unknown';
  inSync: boolean;
  /** Why the last attempt failed, while out of sync. */
  lastError?: string;
  /** Epoch ms of the last change of this state. */
  since: number;
}

/**
 * A service record as every reader sees it. `enabled` is operator intent (from `<ns>/admin/<id>`),
 * `isHealthy` is `status === 'healthy' && enabled`, so routing by healthy services skips disabled ones.
 */
export interface ServiceRecord {
  id: string;
  name: string;
  host: string;
  port: number;
  version: string;
  tags: string[];
  region: string;
  zone: string;
  status: ServiceStatus;
  role: ServiceRole;
  enabled: boolean;
  health: HealthInfo;
  isHealthy: boolean;
  /** Epoch ms when this instance (this lease) registered. */
  registeredAt: number;
  /** Epoch ms of the last write of this record. */
  updatedAt: number;
  healthUrl: string;
  /** URL of the agent's HTTP API beside this instance, when it serves one. */
  apiUrl?: string;
  metadata: Record<string, string>;
  disabledReason?: string;
  /** The instance's health-check settings, for explaining detection times (absent from older agents). */
  checks?: HealthCheckSettings;
  /** The instance's own maintenance switch, when the agent drives it. */
  instanceMaintenance?: InstanceMaintenanceInfo;
  /**
   * Operator state from the intent: `enabled`, `draining` (disabled, the instance finishing its
   * in-flight work until `drainUntil`) or `disabled`. Absent in records written by older versions.
   */
  adminState?: AdminState;
  /** While `draining`: epoch ms by which the drain ends at the latest. */
  drainUntil?: number;
  /** A timed disable: epoch ms at which it lapses and the service counts as enabled again. */
  disabledUntil?: number;
}

/** What operator intent makes of a service: taking traffic, finishing in-flight work, or out. */
export type AdminState = 'enabled' | 'draining' | 'disabled';

/** Operator intent stored without a lease at `<ns>/admin/<id>`. */
export interface AdminIntent {
  enabled: boolean;
  reason?: string;
  actor: string;
  at: number;
  expiresAt?: number;
  /** A disable with a drain phase: epoch ms by which the drain ends at the latest. */
  drainUntil?: number;
  /** When the instance's own agent saw the drain end (absent while draining). */
  drainedAt?: number;
  /** Why the drain ended: the drain probe said idle, or the deadline passed. */
  drainEnd?: 'idle' | 'deadline';
  /** The disable overrode the capacity guard (`--force`). */
  forced?: boolean;
}

/** One management action, stored at `<ns>/audit/<time>-<rand>`. */
export interface AuditEntry {
  id: string;
  at: number;
  actor: string;
  /** `forget`: the intent and health hold of a retired id were removed; `resign`: the leader (`serviceId`) was asked to hand over. */
  action: 'enable' | 'disable' | 'forget' | 'resign';
  serviceId: string;
  /** `resign`: the term (fencing revision) the request was for. */
  term?: number;
  reason?: string;
  source?: string;
  /** Whether the action changed the state (false when it already was as asked). */
  changed: boolean;
  /** True when the state was already as asked but the stored reason was replaced by this one. */
  reasonUpdated?: boolean;
  /** The reason this entry replaced, when `reasonUpdated` and there was one. */
  previousReason?: string;
  /** A disable that overrode the capacity guard (`--force`). */
  forced?: boolean;
  /** Written by the system, not a person: a timed disable's expiry, a drain's end, a start-disabled agent. */
  automatic?: boolean;
  /** An enable written by the leader because a timed disable expired. */
  expired?: boolean;
  /** A timed disable: when it lapses (epoch ms). */
  expiresAt?: number;
  /** A disable with a drain phase: its deadline (epoch ms). */
  drainUntil?: number;
  /** The end of a drain, written by the instance's own agent: `idle` (its drain probe said so) or `deadline`. */
  drained?: 'idle' | 'deadline';
  /** The disable an agent started with `--start-disabled` wrote for itself. */
  startDisabled?: boolean;
  /** When the capacity guard was overridden: what it would have refused. */
  capacity?: string;
  /**
   * The stored intent this action replaced could not be read (why, as the readers reported it): it
   * counted as no intent, and this action overwrote it (an enable removes it).
   */
  repaired?: string;
}

export interface TopologyLeader {
  id: string;
  name: string;
  role: 'leader';
  host?: string;
  port?: number;
}

/** The seed's topology shape, plus a zone breakdown. */
export interface ClusterTopology {
  totalServices: number;
  healthyServices: number;
  unhealthyServices: number;
  servicesByRegion: Record<string, number>;
  servicesByZone: Record<string, Record<string, number>>;
  servicesByStatus: Record<ServiceStatus, number>;
  disabledServices: number;
  leader: TopologyLeader | null;
}

interface EventBase {
  timestamp: number;
}
export type ClusterEvent =
  | (EventBase & { type: 'serviceJoined'; serviceId: string; service: ServiceRecord })
  | (EventBase & { type: 'serviceLeft'; serviceId: string; service?: ServiceRecord })
  | (EventBase & {
      type: 'serviceHealthChanged';
      serviceId: string;
      previousStatus: ServiceStatus;
      status: ServiceStatus;
      service: ServiceRecord;
    })
  | (EventBase & {
      type: 'serviceEnabled' | 'serviceDisabled';
      serviceId: string;
      reason?: string;
      actor?: string;
      /** serviceDisabled of a timed disable: when it lapses. */
      expiresAt?: number;
      /** serviceDisabled with a drain phase: its deadline. */
      drainUntil?: number;
    })
  | (EventBase & { type: 'serviceUpdated'; serviceId: string; service: ServiceRecord })
  | (EventBase & { type: 'leaderElected'; leaderId: string | null; previousLeaderId: string | null });

export type ClusterEventType = ClusterEvent['type'];
export const CLUSTER_EVENT_TYPES: readonly ClusterEventType[] = [
  'serviceJoined',
  'serviceLeft',
  'serviceHealthChanged',
  'serviceEnabled',
  'serviceDisabled',
  'serviceUpdated',
  'leaderElected',
];

/**
 * Limits of the fields of a service record, shared by the registry codec (src/cluster/codec.ts) and
 * the agent's settings (src/config/settings.ts), so that an agent never registers a record its peers
 * would skip.
 */
export const RECORD_LIMITS = {
  /** The id, as in the API's path parameter. */
  id: 256,
  name: 256,
  /** A DNS name is at most 253 characters; an IPv6 literal with a zone id fits too. */
  host: 255,
  version: 128,
  /** Region and zone. */
  location: 128,
  tags: 64,
  tag: 128,
  metadataEntries: 64,
  metadataKey: 128,
  metadataValue: 1024,
  url: 2048,
  /** A health message, a reason, an error text. */
  message: 1024,
  /** Checks of one instance (`health.checks`), and the output of each. */
  checks: 16,
  checkOutput: 256,
  actor: 256,
} as const;
