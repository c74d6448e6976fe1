import { matchesSelection, type Selection } from './selector.js';
import { SERVICE_STATUSES, type ClusterTopology, type ServiceRecord, type ServiceStatus } from '../types.js';

/**
 * The seed's topology maths, shared by the API, the CLI and the dashboard. `all` is where the
 * leader's record is looked up when `services` is a selection that may leave it out.
 */
export function computeTopology(services: ServiceRecord[], leaderId: string | null, all: readonly ServiceRecord[] = services): ClusterTopology {
  const servicesByStatus = Object.fromEntries(SERVICE_STATUSES.map((s) => [s, 0])) as Record<ServiceStatus, number>;
  // Counted in Maps: regions and zones are registry data, and one named `__proto__` used as an object
  // key would write into Object.prototype. Object.fromEntries defines own properties, whatever the name.
  const byRegion = new Map<string, number>();
  const byZone = new Map<string, Map<string, number>>();
  let healthy = 0;
  let disabled = 0;
  for (const s of services) {
    servicesByStatus[s.status] += 1;
    byRegion.set(s.region, (byRegion.get(s.region) ?? 0) + 1);
    let zones = byZone.get(s.region);
    if (!zones) byZone.set(s.region, (zones = new Map()));
    zones.set(s.zone, (zones.get(s.zone) ?? 0) + 1);
    if (s.isHealthy) healthy += 1;
    if (!s.enabled) disabled += 1;
  }
  const servicesByRegion: Record<string, number> = Object.fromEntries(byRegion);
  const servicesByZone: Record<string, Record<string, number>> = Object.fromEntries([...byZone].map(([region, zones]) => [region, Object.fromEntries(zones)]));
  const leader = leaderId ? all.find((s) => s.id === leaderId) : undefined;
  return {
    totalServices: services.length,
    healthyServices: healthy,
    unhealthyServices: services.length - healthy,
    servicesByRegion,
    servicesByZone,
    servicesByStatus,
    disabledServices: disabled,
    leader: leader
      ? { id: leader.id, name: leader.name, role: 'leader', host: leader.host, port: leader.port }
      : leaderId
        ? { id: leaderId, name: '', role: 'leader' }
        : null,
  };
}

/** Narrows a service listing; `tags` and `labels` select by tags and metadata (src/cluster/selector.ts). */
export interface ServiceFilter extends Selection {
  status?: ServiceStatus;
  region?: string;
  zone?: string;
  /** Only services that take traffic: healthy and enabled. */
  healthy?: boolean;
}

export function filterServices(services: ServiceRecord[], filter: ServiceFilter): ServiceRecord[] {
  return services.filter(
    (s) =>
      (filter.status === undefined || s.status === filter.status) &&
      (filter.region === undefined || s.region === filter.region) &&
      (filter.zone === undefined || s.zone === filter.zone) &&
      (!filter.healthy || s.isHealthy) &&
      matchesSelection(s, filter),
  );
}

/** The seed's `GET /service-discovery/services` body. */
export interface ServiceList {
  services: ServiceRecord[];
  total: number;
  healthy: number;
  unhealthy: number;
}

export function serviceList(services: ServiceRecord[]): ServiceList {
  const healthy = services.filter((s) => s.isHealthy).length;
  return { services, total: services.length, healthy, unhealthy: services.length - healthy };
}
