/**
 * proxy-stone-sd as a library: the embedded agent (`ProxyStoneServiceDiscovery`), the registries,
 * the cluster view and the configuration loader. The CLI is built on these same exports.
 *
 * The HTTP API (the Fastify plugin, metrics, Prometheus service discovery) is the separate entry
 * point `proxy-stone-sd/api` (src/api/index.ts), so importing this one loads no fastify or prom-client.
 * Load-balancer feeding (HAProxy, templates) is `proxy-stone-sd/traffic`, so embedding the agent never loads it.
 */
export { ProxyStoneServiceDiscovery } from './service-discovery.js';
export { ServiceAgent, NotLeaderError, defaultServiceId, type AgentEvents, type AgentOptions, type AgentStatusSnapshot } from './agent/agent.js';
export { HealthChecker } from './agent/health-checker.js';
export { CheckSet, UnknownCheckError } from './agent/checks/check-set.js';
export { parseCheckUrl, parseCheckUrls, CheckSpecError, type CheckSpec, type CheckKind } from './agent/checks/check-spec.js';
export { HealthStateMachine } from './agent/health-state.js';
export { ClusterView } from './cluster/view.js';
export { ClusterState, type ElectionCandidate } from './cluster/state.js';
export { keyLayout, type KeyLayout } from './cluster/keys.js';
export { computeTopology, filterServices, serviceList, type ServiceFilter, type ServiceList } from './cluster/topology.js';
export { setServiceEnabled, listAudit, ServiceNotFoundError, ConcurrentChangeError, type SetEnabledOptions, type SetEnabledResult } from './cluster/admin.js';
export { loadConfig, resolveConfig, configFromPartial, ConfigError, type LoadedConfig, type DeepPartial } from './config/load.js';
export { SETTINGS } from './config/settings.js';
export type { SdConfig } from './config/types.js';
export { openRegistry } from './registry/index.js';
export { MemoryRegistry } from './registry/memory.js';
export * from './registry/types.js';
export { createLogger, silentLogger, type Logger } from './util/logger.js';
export * from './types.js';
