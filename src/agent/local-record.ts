/**
 * This instance's service record as its agent publishes it, and what in it comes from configuration
 * alone (the health URL, the check settings readers use for detection budgets). Pure functions: the
 * agent passes in its state, the record publisher writes the result.
 *
 * @module
 */
import type { SdConfig } from '../config/types.js';
import { parseCheckUrl } from './checks/check-spec.js';
import type { AdminIntent, HealthCheckSettings, HealthInfo, InstanceMaintenanceInfo, ServiceRecord, ServiceStatus } from '../types.js';

/** The agent's state that goes into its record. */
export interface LocalRecordState {
  id: string;
  status: ServiceStatus;
  health: HealthInfo;
  /** This instance's operator intent, as the cluster view shows it. */
  intent: AdminIntent | undefined;
  leader: boolean;
  registeredAt: number;
  healthUrl: string;
  apiUrl: string | undefined;
  checks: HealthCheckSettings;
  maintenance: InstanceMaintenanceInfo | undefined;
}

export function localRecord(config: SdConfig, state: LocalRecordState): ServiceRecord {
  const s = config.service;
  const { intent, status } = state;
  const enabled = intent && (intent.expiresAt === undefined || intent.expiresAt > Date.now()) ? intent.enabled : true;
  const record: ServiceRecord = {
    id: state.id,
    name: s.name,
    host: s.host,
    port: s.port,
    version: s.version,
    tags: s.tags,
    region: s.region,
    zone: s.zone,
    status,
    role: state.leader ? 'leader' : 'follower',
    enabled,
    health: { ...state.health, status },
    isHealthy: status === 'healthy' && enabled,
    registeredAt: state.registeredAt,
    updatedAt: Date.now(),
    healthUrl: state.healthUrl,
    metadata: s.metadata,
  };
  if (state.apiUrl) record.apiUrl = state.apiUrl;
  if (!enabled && intent?.reason) record.disabledReason = intent.reason;
  record.checks = state.checks;
  if (state.maintenance) record.instanceMaintenance = state.maintenance;
  return record;
}

/**
 * The record's `healthUrl`: where the health checker probes the instance (`--health-url`, or the
 * instance's address and `--health-path`), or with `--check` the first HTTP check's URL.
 */
export function healthUrlOf(config: SdConfig): string {
  // With `--check`, the record's health URL is the first HTTP check's (what a load balancer would probe too).
  for (const url of config.service.checks ?? []) {
    if (/^https?:\/\//i.test(url.trim())) return httpCheckUrl(url);
  }
  const hc = config.cluster.healthCheck;
  if (hc.url) return hc.url;
  return `${instanceBaseUrl(config)}${hc.path.startsWith('/') ? '' : '/'}${hc.path}`;
}

/** A check URL without its options (the query). */
function httpCheckUrl(url: string): string {
  try {
    return parseCheckUrl(url).http?.url ?? url;
  } catch {
    return url;
  }
}

/** `http://host:port` of the instance (an IPv6 host in brackets). */
export function instanceBaseUrl(config: SdConfig): string {
  const { host, port } = config.service;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The health-check settings published in the record (`checks`), for detection budgets. */
export function checkSettingsOf(config: SdConfig): HealthCheckSettings {
  const hc = config.cluster.healthCheck;
  return {
    interval: hc.interval,
    timeout: hc.timeout,
    retries: hc.retries,
    gracePeriod: hc.gracePeriod,
    ttl: config.cluster.leaderElection.ttl,
    flap: flapSettingsOf(config),
  };
}

/** Flap damping settings; a config built in code by an embedder may predate them (then: off). */
export function flapSettingsOf(config: SdConfig): HealthCheckSettings['flap'] {
  const hc = config.cluster.healthCheck;
  return { threshold: hc.flapThreshold ?? 0, window: hc.flapWindow ?? 600, holdDown: hc.flapHoldDown ?? 300 };
}
