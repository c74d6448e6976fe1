/**
 * `proxy-stone-sd/traffic`: the registry as a load balancer needs it. A live feed of traffic
 * verdicts ({@link TrafficFeed}), HAProxy's Runtime API and the syncer that keeps a backend equal to
 * the registry, and the template renderer behind `render`. What `lb haproxy` and `render` run, for
 * embedding and benchmarks.
 */
export { TrafficFeed, type TrafficEntry, type TrafficSnapshot, type TrafficFeedEvents, type TrafficFeedOptions } from './feed.js';
export { trafficVerdict, hostPort, isRoutableHost, type TrafficState, type TrafficVerdict } from './verdict.js';
export {
  HaproxyRuntimeApi,
  HaproxyCommandError,
  HaproxyUnreachableError,
  type HaproxyInfo,
  type HaproxyServerState,
  type HaproxyRuntimeApiOptions,
} from './haproxy-runtime.js';
export { planBackend, serverName, DEFAULT_SERVER_OPTIONS, DEFAULT_SERVER_PREFIX, type DesiredServer, type PlanAction, type ServerState } from './haproxy-plan.js';
export {
  HaproxySyncer,
  HaproxyBackendMissingError,
  HaproxyPermissionError,
  type HaproxyChange,
  type HaproxySyncEvents,
  type HaproxySyncOptions,
  type HaproxySyncSummary,
} from './haproxy-sync.js';
export { compileTemplate, templateContext, TemplateError, type CompiledTemplate, type TemplateContext } from './template.js';
export { TemplateRenderer, writeIfChanged, ExecError, type RenderOutcome, type TemplateRendererOptions } from './template-renderer.js';
export { runHaproxyFeed, runRender, type RunHaproxyFeedOptions, type RunRenderOptions } from './run.js';
