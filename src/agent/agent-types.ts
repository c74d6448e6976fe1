/**
 * The agent's public types: its options, its events and its status snapshot, as embedders, the HTTP
 * API and the CLI read them (agent.ts re-exports them; they are here so that file is the agent alone).
 *
 * @module
 */
import type { ClusterView } from '../cluster/view.js';
import type { SdConfig } from '../config/types.js';
import type { Registry } from '../registry/types.js';
import type { ClusterEvent, ServiceRecord } from '../types.js';
import type { Logger } from '../util/logger.js';
import type { HealthCheckResultEvent } from './health-checker.js';

export interface AgentOptions {
  config: SdConfig;
  /** A registry to share (the demo runs several agents on one memory registry). Not closed by stop(). */
  registry?: Registry;
  /**
   * A view of the namespace to share with other agents of this process (one watch for all of them
   * instead of one each). Needs `registry`; its creator starts and stops it, the agent only listens.
   */
  view?: ClusterView;
  logger?: Logger;
}

/** What `status()` reports about registration. */
export type AgentRegistrationStatus = 'registered' | 'registering' | 'stopping' | 'stopped';

export interface AgentStatusSnapshot {
  enabled: boolean;
  currentService: Pick<ServiceRecord, 'id' | 'name' | 'host' | 'port' | 'status' | 'role'> & {
    region: string;
    zone: string;
    version: string;
    enabled: boolean;
  };
  isLeader: boolean;
  /**
   * `registered`; `registering` (not started yet, or no live lease yet); `stopping` (stop() is
   * draining, resigning and revoking); `stopped`.
   */
  status: AgentRegistrationStatus;
  leaderId: string | null;
  /** `SERVICE_DISCOVERY_CLUSTER_NAME` and the key namespace this agent registers under. */
  cluster: { name: string; namespace: string };
  /**
   * `lastContact`: epoch ms of the registry's last answer to this agent (registration or lease
   * keep-alive), null before the first.
   */
  registry: { kind: string; endpoints: string; reachable: boolean; lastContact: number | null };
  /** `lastUpdate`: the last moment the view was known current (a change, a listing, or a keep-alive answer while watching). */
  view: { stale: boolean; lastUpdate: number; services: number; revision: number };
  /** `term`: create revision of this agent's election key (its fencing token), null when not campaigning. */
  lease: { id: string | null; ttl: number; renewedAt: number | null; term: number | null };
}

/** Events of the agent: the seed's (with its payloads) plus the full event objects and local changes. */
export interface AgentEvents {
  serviceJoined: [ServiceRecord, ClusterEvent];
  serviceLeft: [string, ClusterEvent];
  serviceHealthChanged: [ClusterEvent];
  serviceEnabled: [ClusterEvent];
  serviceDisabled: [ClusterEvent];
  serviceUpdated: [ClusterEvent];
  leaderElected: [string | null, ClusterEvent];
  /** Every cluster event, in order. */
  event: [ClusterEvent];
  /** This agent gained (true) or lost (false) leadership. */
  leadership: [boolean];
  registered: [{ leaseId: string; reregistration: boolean }];
  /** A registration attempt failed (it is retried): the registry's error. */
  registrationFailed: [Error];
  leaseLost: [{ leaseId: string; reason: string }];
  keepaliveFailed: [Error];
  healthResult: [HealthCheckResultEvent];
  stale: [boolean];
  warning: [string];
}
