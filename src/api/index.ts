/**
 * The agent's HTTP API: standalone server, Fastify plugin and plain request handler, plus the pieces
 * they are made of (auth, SSE stream, metrics, Prometheus service discovery, OpenAPI document).
 *
 * Published as `proxy-stone-sd/api`, apart from the main entry, so that `import ... from
 * 'proxy-stone-sd'` loads neither fastify nor prom-client for a process that only runs the agent.
 *
 * @module
 */
export {
  startApiServer,
  serviceDiscoveryPlugin,
  createRequestHandler,
  apiServerOptions,
  type ApiOptions,
  type ApiServerOptions,
  type ApiTlsOptions,
  type ApiHandlerOptions,
  type ServiceDiscoveryPluginOptions,
  type ApiServer,
  type ApiRequestHandler,
} from './server.js';
export {
  ApiAuthenticator,
  ApiAuthConfigError,
  loadApiAuth,
  parseKeyFile,
  API_ROLES,
  type ApiAuthOptions,
  type ApiKey,
  type ApiRole,
  type LoadApiAuthOptions,
  type ApiAuthSettings,
  type Principal,
  type RouteAccess,
} from './auth.js';
export {
  EventStream,
  defaultMaxStreams,
  type EventStreamOptions,
  type EventSubscription,
  type StreamRefusal,
} from './events.js';
export { AgentMetrics, processMetricsRegistry, type AgentMetricsOptions, type RegistryOperation } from './metrics.js';
export { openApiDocument } from './openapi.js';
export {
  prometheusTargets,
  PROMETHEUS_TARGET_KINDS,
  MAX_LABEL_VALUE_CHARS,
  type PrometheusTargetGroup,
  type PrometheusTargetKind,
} from './prometheus-sd.js';
export { ApiError, MAX_BODY_BYTES, type ApiErrorBody, type ApiErrorCode } from './errors.js';
export { ROUTES, SD_PREFIX } from './routes.js';
