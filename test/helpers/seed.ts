/** The Prometheus metric names the user's design document (the seed) lists: every agent serves them. */
export const SEED_METRIC_NAMES = [
  'proxy_stone_services_total',
  'proxy_stone_health_check_duration_seconds',
  'proxy_stone_leader_elections_total',
  'proxy_stone_service_registrations_total',
  'proxy_stone_cluster_size',
] as const;
