/**
 * The one table of every configuration setting. The loader (`load.ts`), the `agent` command's flags
 * and the generated reference (`reference.ts`) are all derived from it, so a setting added here gets
 * an env var, a flag, validation and documentation at once.
 *
 * Why this file is long: it is one table, a row per setting (about 560 of its lines), followed by the
 * lookups and wording derived from it; the rows read best side by side, and the cluster commands load
 * the whole table at start-up anyway (their flags and value checks come from it).
 */
import { DURATION_EXPECTATION, formatDuration } from '../util/duration.js';
import { UNSAFE_CHARACTER, unsafeCharacterIn } from '../util/text.js';
import { RECORD_LIMITS } from '../types.js';
import type { SdConfig } from './types.js';

/** Environment variable naming the config file when neither `configFile` nor a `config` flag is given. */
export const CONFIG_FILE_ENV = 'SERVICE_DISCOVERY_CONFIG';
/** Flag naming the config file. */
export const CONFIG_FILE_FLAG = 'config';

/** How a setting's string form (env var, flag) is read, and what the validator accepts. */
export type SettingKind =
  | 'boolean'
  | 'integer'
  | 'number'
  | 'duration'
  | 'string'
  | 'list'
  | 'url'
  | 'host'
  | 'port'
  | 'enum'
  | 'keyvalue';

/** Section of the reference and oclif help group a setting belongs to. */
export type SettingGroup = 'General' | 'Leader election' | 'Health check' | 'Registry' | 'Service' | 'API' | 'Logging';

/** Most items a list or key=value setting takes (tags, endpoints, metadata pairs): what a record holds. */
export const MAX_ITEMS = Math.min(RECORD_LIMITS.tags, RECORD_LIMITS.metadataEntries);
/** Longest key of a key=value setting (metadata). */
export const MAX_KEY_LENGTH = RECORD_LIMITS.metadataKey;

/** Paths to leaves of `T`; arrays and string-keyed records (`metadata`) are leaves. */
type LeafPaths<T, P extends string = ''> = {
  [K in keyof T & string]-?: NonNullable<T[K]> extends readonly unknown[] | string | number | boolean
    ? `${P}${K}`
    : string extends keyof NonNullable<T[K]>
      ? `${P}${K}`
      : LeafPaths<NonNullable<T[K]>, `${P}${K}.`>;
}[keyof T & string];

/** Dot path of one leaf of {@link SdConfig}, e.g. `cluster.healthCheck.interval`. */
export type ConfigPath = LeafPaths<SdConfig>;

/** One configuration setting. */
export interface Setting {
  /** Dot path into {@link SdConfig}. */
  path: ConfigPath;
  /** Environment variable name, or names with the canonical one first (the first one set wins). */
  env: string | readonly string[];
  /** Flag name without the leading `--` (kebab-case); the canonical one, used in messages. */
  flag: string;
  /**
   * Further flag names of the same setting (`registry-password` beside `etcd-password`). One setting,
   * so the names cannot drift apart: each sets the same value at flag precedence, and two of them given
   * with different values are an error naming both.
   */
  flagAliases?: readonly string[];
  kind: SettingKind;
  /** Allowed values of an `enum` setting. */
  enumValues?: readonly string[];
  /** Smallest allowed value (numbers, durations, ports); inclusive unless `minExclusive`. */
  min?: number;
  minExclusive?: boolean;
  /** Largest allowed value, inclusive. Durations are bounded by MAX_DURATION_SECONDS in any case. */
  max?: number;
  /**
   * Longest value in characters (`string`, `url`), of each item (`list`) or each value (`keyvalue`);
   * see {@link maxLengthOf} for the default of each kind.
   */
  maxLength?: number;
  /** `duration` only: whole seconds (etcd lease TTLs are integers). */
  wholeSeconds?: boolean;
  /**
   * `list` only: each item must be an http(s) URL (`url`), an http(s) or redis(s) URL (`registryUrl`),
   * a web origin or `*` (`origin`), or a health check URL (`check`: items separated by whitespace, not
   * commas, and a repeatable flag).
   */
  itemKind?: 'url' | 'registryUrl' | 'origin' | 'check';
  /** `string` only: the value must match, described by `patternHint` in errors. */
  pattern?: RegExp;
  patternHint?: string;
  /** `string` only: the value is a path to a file that must be readable. */
  file?: boolean;
  /** `boolean` only: the flag also exists as `--no-<flag>`. */
  allowNo?: boolean;
  /** Default value, or `undefined` when unset by default (optional setting, or derived: see description). */
  default: unknown;
  description: string;
  /** Never printed: errors and redacted output show `***`. */
  secret?: boolean;
  group: SettingGroup;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

// `as const satisfies` keeps the literal paths for the completeness check below.
const TABLE = [
  // --- General ---
  {
    path: 'enabled',
    env: 'SERVICE_DISCOVERY_ENABLED',
    flag: 'enabled',
    kind: 'boolean',
    allowNo: true,
    default: true,
    description:
      'Turn service discovery on. When false the agent registers nothing, runs no health checks and does not campaign for leadership.',
    group: 'General',
  },
  {
    path: 'cluster.name',
    env: 'SERVICE_DISCOVERY_CLUSTER_NAME',
    flag: 'cluster-name',
    kind: 'string',
    default: 'proxy-stone-cluster',
    description: 'Human-readable cluster name, shown in status output.',
    group: 'General',
  },
  // --- Leader election ---
  {
    path: 'cluster.leaderElection.enabled',
    env: 'SERVICE_DISCOVERY_LEADER_ELECTION',
    flag: 'leader-election',
    kind: 'boolean',
    allowNo: true,
    default: true,
    description: 'Campaign for cluster leadership. With `--no-leader-election` the agent is always a follower.',
    group: 'Leader election',
  },
  {
    path: 'cluster.leaderElection.ttl',
    env: 'SERVICE_DISCOVERY_LEADER_TTL',
    flag: 'leader-ttl',
    kind: 'duration',
    wholeSeconds: true,
    min: 1,
    default: 30,
    description:
      "TTL of the agent's lease, in whole seconds. The lease carries the service record and the election key, so a dead agent disappears and loses leadership after at most this long. etcd 3.4 raises TTLs below 2 s to 2 s.",
    group: 'Leader election',
  },
  {
    path: 'cluster.leaderElection.renewInterval',
    env: 'SERVICE_DISCOVERY_RENEW_INTERVAL',
    flag: 'renew-interval',
    kind: 'duration',
    min: 0.001,
    default: 10,
    description: 'Time between lease keep-alives. Must be less than the lease TTL; a third of it leaves room for two missed renewals.',
    group: 'Leader election',
  },
  // --- Health check ---
  {
    path: 'cluster.healthCheck.interval',
    env: 'SERVICE_DISCOVERY_HEALTH_INTERVAL',
    flag: 'health-interval',
    kind: 'duration',
    min: 0.001,
    default: 30,
    description: 'Time between HTTP health checks of the local instance.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.timeout',
    env: 'SERVICE_DISCOVERY_HEALTH_TIMEOUT',
    flag: 'health-timeout',
    kind: 'duration',
    min: 0.001,
    default: 5,
    description: 'Timeout of one health check; a check that takes longer is a failure.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.retries',
    env: 'SERVICE_DISCOVERY_HEALTH_RETRIES',
    flag: 'health-retries',
    kind: 'integer',
    min: 1,
    max: 1000,
    default: 3,
    description: 'Consecutive failed checks that turn a healthy instance unhealthy.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.gracePeriod',
    env: 'SERVICE_DISCOVERY_GRACE_PERIOD',
    flag: 'grace-period',
    kind: 'duration',
    min: 0,
    default: 60,
    description: 'Time after start during which failed checks keep the instance `starting` instead of `unhealthy`.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.path',
    env: 'SERVICE_DISCOVERY_HEALTH_PATH',
    flag: 'health-path',
    kind: 'string',
    pattern: /^\/\S*$/,
    patternHint: 'a URL path starting with / (e.g. /health)',
    maxLength: 2048,
    default: '/health',
    description: 'Path probed at `http://<service host>:<service port>` when no health URL is set.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.url',
    env: 'SERVICE_DISCOVERY_HEALTH_URL',
    flag: 'health-url',
    kind: 'url',
    default: undefined,
    description: 'Full health check URL; overrides the service host, port and health path for probing.',
    group: 'Health check',
  },
  {
    path: 'service.checks',
    env: 'SERVICE_CHECKS',
    flag: 'check',
    kind: 'list',
    itemKind: 'check',
    // Unset, not empty: a config without checks is the one it was before they existed.
    default: undefined,
    description:
      'Health checks of the instance, replacing the one HTTP check of `--health-path`/`--health-url`: a repeatable flag, whitespace-separated in the env var, an array in the file. Each a URL: `http(s)://host:port/path`, `tcp://host:port`, `grpc(s)://host:port[/service]` (grpc.health.v1), `ttl://NAME` (the instance reports alive through the API or the library), with options as query parameters: `critical=false`, `interval=`, `timeout=`, `retries=`, `name=`; http: `method=`, `expect=200-204`, `body=TEXT`, `json=path=value`, `header=Name:Value`; https/grpcs: `ca=FILE`, `insecure=true`; ttl: `ttl=30s`. The instance is healthy when every critical check passes. See docs/checks.md.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.refreshInterval',
    env: 'SERVICE_DISCOVERY_HEALTH_REFRESH_INTERVAL',
    flag: 'health-refresh-interval',
    kind: 'duration',
    min: 0,
    default: 60,
    description:
      'Time between refreshes of `lastCheck`/`responseTime` in the registry while the health status is unchanged (status changes are published at once); 0 = never.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.flapThreshold',
    env: 'SERVICE_DISCOVERY_FLAP_THRESHOLD',
    flag: 'flap-threshold',
    kind: 'integer',
    min: 0,
    max: 1000,
    default: 0,
    description:
      'Flap damping: this many healthy/unhealthy changes within the flap window hold the instance `unhealthy` until it has gone the hold-down time without a change; 0 = off (the default: a fleet-wide flaky dependency would otherwise hold every instance down at once). 4 is a good start.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.flapWindow',
    env: 'SERVICE_DISCOVERY_FLAP_WINDOW',
    flag: 'flap-window',
    kind: 'duration',
    min: 0.001,
    default: 600,
    description: 'Flap damping: the window the flap threshold counts changes in.',
    group: 'Health check',
  },
  {
    path: 'cluster.healthCheck.flapHoldDown',
    env: 'SERVICE_DISCOVERY_FLAP_HOLD_DOWN',
    flag: 'flap-hold-down',
    kind: 'duration',
    min: 0.001,
    default: 300,
    description: 'Flap damping: time without a health change that releases an instance held down as flapping.',
    group: 'Health check',
  },
  // --- Registry ---
  {
    path: 'cluster.discovery.registry',
    env: 'SERVICE_DISCOVERY_REGISTRY',
    flag: 'registry',
    kind: 'enum',
    enumValues: ['etcd', 'redis', 'memory'],
    default: undefined,
    description:
      'Registry backend: `etcd`, `redis` (one Redis 7 server; see docs/redis.md for what it guarantees less than etcd), or `memory` (in-process, for a standalone instance or a test; nothing is shared between agents, and the agent says so in a `registry.memory` warning at start). When no source sets it, it is `redis` if the endpoint is a redis:// or rediss:// URL, else `etcd`; `memory` only when named.',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.endpoints',
    env: 'SERVICE_DISCOVERY_ENDPOINTS',
    flag: 'endpoints',
    kind: 'list',
    itemKind: 'registryUrl',
    default: [],
    description:
      'etcd endpoints, comma-separated http(s) URLs (e.g. `http://etcd1:2379,http://etcd2:2379`); with `etcd` and none set, etcd on this host at `http://127.0.0.1:2379`, where the CLI looks too. Or one Redis URL `redis://[user:password@]host:port[/db]` (`rediss://` for TLS), required with `redis`.',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.namespace',
    env: 'SERVICE_DISCOVERY_NAMESPACE',
    flag: 'namespace',
    kind: 'string',
    pattern: /^[^\s/][^\s]*$/,
    patternHint: 'a key prefix without spaces, not starting with / (e.g. proxy-stone)',
    default: 'proxy-stone',
    description: 'Key prefix in the registry: records live at `<namespace>/services/<id>`.',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.username',
    env: 'SERVICE_DISCOVERY_USERNAME',
    flag: 'etcd-username',
    flagAliases: ['registry-username'],
    kind: 'string',
    default: undefined,
    description: 'etcd user name (etcd authentication; requires the password), or the Redis ACL user when not in the URL.',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.password',
    env: 'SERVICE_DISCOVERY_PASSWORD',
    flag: 'etcd-password',
    flagAliases: ['registry-password'],
    kind: 'string',
    secret: true,
    default: undefined,
    description: 'etcd password (requires the user name), or the Redis password when not in the URL (alone for `requirepass`, with the user name for an ACL user). Never printed.',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.tls.ca',
    env: 'SERVICE_DISCOVERY_CA_FILE',
    flag: 'etcd-ca',
    flagAliases: ['registry-ca'],
    kind: 'string',
    file: true,
    default: undefined,
    description: 'PEM file of the CA that signed the etcd server certificates (https endpoints) or the Redis server certificate (rediss://).',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.tls.cert',
    env: 'SERVICE_DISCOVERY_CERT_FILE',
    flag: 'etcd-cert',
    flagAliases: ['registry-cert'],
    kind: 'string',
    file: true,
    default: undefined,
    description: 'PEM client certificate for mutual TLS with etcd (https endpoints) or Redis (rediss://); requires the key file.',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.tls.key',
    env: 'SERVICE_DISCOVERY_KEY_FILE',
    flag: 'etcd-key',
    flagAliases: ['registry-key'],
    kind: 'string',
    file: true,
    default: undefined,
    description: 'PEM private key of the client certificate; requires the certificate file.',
    group: 'Registry',
  },
  {
    path: 'cluster.discovery.callTimeout',
    env: 'SERVICE_DISCOVERY_CALL_TIMEOUT',
    flag: 'call-timeout',
    kind: 'duration',
    min: 0.001,
    default: 5,
    description: 'Time allowed for one registry call before it fails.',
    group: 'Registry',
  },
  // --- Service (the instance this agent sits beside) ---
  // Fields of the record are bounded by RECORD_LIMITS, what every reader of a record takes
  // (src/cluster/codec.ts): an agent must never register a record its peers would skip.
  {
    path: 'service.id',
    env: 'SERVICE_ID',
    flag: 'service-id',
    kind: 'string',
    pattern: /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/,
    patternHint: 'an id of letters, digits and . _ : @ - (no / or spaces)',
    default: undefined,
    description:
      'Stable service id. When unset it is derived from the service name, host and port, so it survives restarts.',
    maxLength: RECORD_LIMITS.id,
    group: 'Service',
  },
  {
    path: 'service.name',
    env: 'SERVICE_NAME',
    flag: 'service-name',
    kind: 'string',
    default: 'proxy-stone',
    description: 'Service name in the record.',
    maxLength: RECORD_LIMITS.name,
    group: 'Service',
  },
  {
    path: 'service.host',
    env: 'SERVICE_HOST',
    flag: 'service-host',
    kind: 'host',
    default: 'localhost',
    description: 'Host other instances and the health check use to reach this Proxy-Stone instance.',
    group: 'Service',
  },
  {
    path: 'service.port',
    env: 'SERVICE_PORT',
    flag: 'service-port',
    kind: 'port',
    min: 1,
    max: 65535,
    default: 3000,
    description: 'Port of this Proxy-Stone instance.',
    group: 'Service',
  },
  {
    path: 'service.maintenanceHook',
    env: 'SERVICE_DISCOVERY_INSTANCE_MAINTENANCE_HOOK',
    flag: 'instance-maintenance-hook',
    kind: 'boolean',
    allowNo: true,
    default: false,
    description:
      "Apply the operator's intent to the instance itself: while the service is not enabled, put Proxy-Stone in its own maintenance mode (`POST /api/cluster/disable-serving`), and back (`/enable-serving`) when enabled; verified with `GET /api/cluster/service-status`, retried until it sticks, re-checked periodically.",
    group: 'Service',
  },
  {
    path: 'service.maintenanceUrl',
    env: 'SERVICE_DISCOVERY_INSTANCE_MAINTENANCE_URL',
    flag: 'instance-maintenance-url',
    kind: 'url',
    default: undefined,
    description: 'Base URL of the instance\'s maintenance API for the maintenance hook; `http://<service host>:<service port>` when unset.',
    group: 'Service',
  },
  {
    path: 'service.version',
    env: 'SERVICE_VERSION',
    flag: 'service-version',
    kind: 'string',
    default: '1.0.0',
    description: 'Version in the record.',
    maxLength: RECORD_LIMITS.version,
    group: 'Service',
  },
  {
    path: 'service.tags',
    env: 'SERVICE_TAGS',
    flag: 'service-tags',
    kind: 'list',
    default: ['proxy-stone', 'backend'],
    description: 'Tags in the record, comma-separated.',
    maxLength: RECORD_LIMITS.tag,
    group: 'Service',
  },
  {
    path: 'service.region',
    env: 'SERVICE_REGION',
    flag: 'service-region',
    kind: 'string',
    default: 'us-east-1',
    description: 'Region, used by the topology breakdown.',
    maxLength: RECORD_LIMITS.location,
    group: 'Service',
  },
  {
    path: 'service.zone',
    env: 'SERVICE_ZONE',
    flag: 'service-zone',
    kind: 'string',
    default: 'us-east-1a',
    description: 'Availability zone, used by the topology breakdown.',
    maxLength: RECORD_LIMITS.location,
    group: 'Service',
  },
  {
    path: 'service.metadata',
    env: 'SERVICE_METADATA',
    flag: 'service-metadata',
    kind: 'keyvalue',
    default: {},
    description: 'Extra metadata in the record, comma-separated `key=value` pairs (an object in the config file).',
    maxLength: RECORD_LIMITS.metadataValue,
    group: 'Service',
  },
  // --- API ---
  {
    path: 'api.enabled',
    env: 'SERVICE_DISCOVERY_API_ENABLED',
    flag: 'api',
    kind: 'boolean',
    allowNo: true,
    default: true,
    description: "Serve the agent's HTTP API (`/service-discovery/...`). `--no-api` turns it off.",
    group: 'API',
  },
  {
    path: 'api.host',
    env: 'SERVICE_DISCOVERY_API_HOST',
    flag: 'api-host',
    kind: 'host',
    default: '127.0.0.1',
    description: 'Address the API listens on. Use 0.0.0.0 to expose it beyond the host or container.',
    group: 'API',
  },
  {
    path: 'api.port',
    env: 'SERVICE_DISCOVERY_API_PORT',
    flag: 'api-port',
    kind: 'port',
    min: 0,
    max: 65535,
    default: 8790,
    description: 'Port the API listens on; 0 picks a free port.',
    group: 'API',
  },
  {
    path: 'api.advertiseUrl',
    env: 'SERVICE_DISCOVERY_ADVERTISE_URL',
    flag: 'advertise-url',
    kind: 'url',
    default: undefined,
    description: "Public URL of this agent's API, written into the record. Derived from the API host and port when unset; an API on every interface (0.0.0.0, ::) is advertised at the service host (SERVICE_HOST) instead.",
    group: 'API',
  },
  {
    path: 'api.apiKey',
    env: 'SERVICE_DISCOVERY_API_KEY',
    flag: 'api-key',
    kind: 'string',
    // A key travels in an HTTP header (`Authorization: Bearer KEY`): one token. Surrounding
    // whitespace is a paste accident, trimmed where the key is used.
    pattern: /^\s*[^\s\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+\s*$/,
    patternHint: 'a key without spaces or control characters',
    secret: true,
    default: undefined,
    description:
      'API key with role `operator`, named `default` in the audit trail: management endpoints (enable/disable) require an operator key once any key is set. Never printed.',
    group: 'API',
  },
  {
    path: 'api.keyFile',
    env: 'SERVICE_DISCOVERY_API_KEY_FILE',
    flag: 'api-key-file',
    kind: 'string',
    file: true,
    default: undefined,
    description:
      'File of named API keys with roles, in addition to the API key: lines `name:role:key` (role `viewer` or `operator`; `#` comments) or JSON `[{name, role, key}]`. The key name is the actor in the audit trail.',
    group: 'API',
  },
  {
    path: 'api.readAccess',
    env: 'SERVICE_DISCOVERY_API_READ_ACCESS',
    flag: 'api-read-access',
    kind: 'enum',
    enumValues: ['open', 'viewer'],
    default: 'open',
    description:
      '`open`: read endpoints need no key; `viewer`: they need any valid key (needs an API key or key file). Writes always need an operator key.',
    group: 'API',
  },
  {
    path: 'api.tls.cert',
    env: 'SERVICE_DISCOVERY_API_TLS_CERT',
    flag: 'api-tls-cert',
    kind: 'string',
    file: true,
    default: undefined,
    description: 'PEM certificate (chain) to serve the API over HTTPS; requires the TLS key file.',
    group: 'API',
  },
  {
    path: 'api.tls.key',
    env: 'SERVICE_DISCOVERY_API_TLS_KEY',
    flag: 'api-tls-key',
    kind: 'string',
    file: true,
    default: undefined,
    description: 'PEM private key of the API certificate; requires the TLS certificate file.',
    group: 'API',
  },
  {
    path: 'api.tls.ca',
    env: 'SERVICE_DISCOVERY_API_TLS_CA',
    flag: 'api-tls-ca',
    kind: 'string',
    file: true,
    default: undefined,
    description:
      'PEM CA file for mutual TLS on the API: when set, clients must present a certificate it signed (the API key checks still apply). Requires the TLS certificate and key.',
    group: 'API',
  },
  {
    path: 'api.maxStreams',
    env: 'SERVICE_DISCOVERY_API_MAX_STREAMS',
    flag: 'api-max-streams',
    kind: 'integer',
    min: 1,
    max: 100000,
    default: undefined,
    description:
      "Most event streams (`GET /service-discovery/events`) the API serves at once; past it a new one gets 503 `too_many_streams` with Retry-After. Each stream holds a file descriptor for as long as its client likes, so the cap keeps readers from taking the descriptors the agent's health probe and registry connections need. Unset: a quarter of the process's open-file limit (`ulimit -n`), at most 1000.",
    group: 'API',
  },
  {
    path: 'api.maxStreamsPerClient',
    env: 'SERVICE_DISCOVERY_API_MAX_STREAMS_PER_CLIENT',
    flag: 'api-max-streams-per-client',
    kind: 'integer',
    min: 1,
    max: 100000,
    default: undefined,
    description:
      'Most event streams one client address may hold open at once; past it a new one gets 429 `too_many_streams` with Retry-After. Unset: 20.',
    group: 'API',
  },
  {
    path: 'api.corsOrigins',
    env: 'SERVICE_DISCOVERY_API_CORS_ORIGINS',
    flag: 'api-cors-origins',
    kind: 'list',
    itemKind: 'origin',
    default: [],
    description:
      'Web origins whose pages may read the API and follow the event streams (SSE and WebSocket) from a browser, comma-separated (e.g. `https://ops.example.com`); `*` for any. Empty (the default): no CORS headers, and a WebSocket from another origin is refused. Writes (enable, disable) are never allowed cross-origin. A key is still needed where reads need one.',
    group: 'API',
  },
  // --- Logging ---
  {
    path: 'log.level',
    env: 'LOG_LEVEL',
    flag: 'log-level',
    kind: 'enum',
    enumValues: LOG_LEVELS,
    default: 'info',
    description: 'Log level.',
    group: 'Logging',
  },
  // --- Draining, start-disabled, capacity guard ---
  {
    path: 'service.startDisabled',
    env: 'SERVICE_START_DISABLED',
    flag: 'start-disabled',
    kind: 'boolean',
    allowNo: true,
    default: false,
    description:
      'Register the instance disabled (reason `start-disabled`), so a deploy can smoke-test it before it takes traffic; `services enable <id>` promotes it. Written only when no operator intent exists for the id: once enabled, a restart with this flag keeps it enabled.',
    group: 'Service',
  },
  {
    path: 'service.drainProbeUrl',
    env: 'SERVICE_DRAIN_PROBE_URL',
    flag: 'drain-probe-url',
    kind: 'url',
    default: undefined,
    description:
      'Polled every second while this instance drains after a disable: a 2xx answer with JSON `{"idle": true}` or `{"inflight": 0}` ends the drain early. Without it (or while it says busy or fails) the drain ends at its deadline (`services disable --drain-timeout`).',
    group: 'Service',
  },
  {
    path: 'cluster.minHealthyPerZone',
    env: 'SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE',
    flag: 'min-healthy-per-zone',
    kind: 'string',
    pattern: /^(\d{1,9}|(100|\d{1,2})%)$/,
    patternHint: 'a whole number (e.g. 1) or a percentage 0-100 (e.g. 50%)',
    default: '1',
    description:
      'Capacity guard of disables made through this agent\'s API: refuse a disable that would leave a region or zone with fewer healthy enabled instances than this (a count, or a percentage of the instances there, rounded up). `0` turns the guard off; `force: true` overrides it, audited as forced.',
    group: 'General',
  },
] as const satisfies readonly Setting[];

// Compile-time check that every leaf of SdConfig has a row: a missing path makes this `false`.
type MissingPaths = Exclude<ConfigPath, (typeof TABLE)[number]['path']>;
const everyPathHasASetting: [MissingPaths] extends [never] ? true : MissingPaths = true;
void everyPathHasASetting;

/** Every setting, in documentation order. */
export const SETTINGS: readonly Setting[] = TABLE;

const byPath = new Map<string, Setting>(SETTINGS.map((s) => [s.path, s]));
const byFlag = new Map<string, Setting>(SETTINGS.flatMap((s) => flagNames(s).map((name) => [name, s] as const)));
const byEnv = new Map<string, Setting>(SETTINGS.flatMap((s) => envNames(s).map((name) => [name, s] as const)));

/** Flag names of a setting without `--`, the canonical one first. */
export function flagNames(setting: Setting): readonly string[] {
  return setting.flagAliases ? [setting.flag, ...setting.flagAliases] : [setting.flag];
}

/** Environment variable names of a setting, the canonical one first. */
export function envNames(setting: Setting): readonly string[] {
  return typeof setting.env === 'string' ? [setting.env] : setting.env;
}

/**
 * Longest value of a setting in characters (each item of a list, each value of a key=value list), or
 * undefined when its kind has no length (numbers, booleans, enums). A record carries these strings to
 * every reader (and etcd takes requests up to 1.5 MiB), a key travels in an HTTP header, a path is a
 * path: 256 for names and the like, 1024 for secrets and metadata values, 2048 for URLs, 4096 for
 * file paths. (A host name's 253 characters are part of what a host name is.)
 */
export function maxLengthOf(setting: Setting): number | undefined {
  if (setting.maxLength !== undefined) return setting.maxLength;
  switch (setting.kind) {
    case 'string':
      return setting.file ? 4096 : setting.secret ? 1024 : 256;
    case 'url':
      return 2048;
    case 'list':
      return setting.itemKind ? 2048 : 256;
    case 'keyvalue':
      return 1024;
    default:
      return undefined;
  }
}

const UNSAFE = new RegExp(UNSAFE_CHARACTER);

/** What is wrong with a value, for the tail of a message: `expected <expected>; <reason>`. */
export interface TextProblem {
  /** Replaces the setting's usual expectation ({@link describeExpectation}), e.g. `at most 256 characters (got 300)`. */
  expected?: string;
  /** Said after the expectation, e.g. `contains a control character (U+0007)`. */
  reason?: string;
}

/**
 * Why one string of a setting cannot be used, or undefined: a control or bidirectional-control
 * character (past surrounding whitespace, which a secret keeps and everything else trims), or more
 * characters than the setting takes ({@link maxLengthOf}). `part` says which string of a list or
 * key=value setting it is. The loader and the CLI's own target flags both ask this, so both refuse the same values.
 */
export function textProblem(setting: Setting, text: string, part: 'value' | 'item' | 'key' | 'pair value' = 'value'): TextProblem | undefined {
  const bad = unsafeCharacterIn(text.trim());
  if (bad) return { reason: `contains a ${bad.bidi ? 'bidirectional ' : ''}control character (${bad.codePoint})` };
  const max = part === 'key' ? MAX_KEY_LENGTH : maxLengthOf(setting);
  if (max !== undefined && text.length > max) {
    const each = part === 'item' ? ' in each item' : part === 'key' ? ' in each key' : part === 'pair value' ? ' in each value' : '';
    return { expected: `at most ${max} characters${each} (got ${text.length})` };
  }
  return undefined;
}

/**
 * A typed value for a one-line message: as typed, or quoted (JSON) when it would otherwise be
 * invisible or act on a terminal; at most 120 characters. The caller escapes what JSON leaves raw.
 */
export function quoteValue(text: string): string {
  const quoted = text === '' || UNSAFE.test(text) || /[\u2028\u2029]/.test(text) || text.trim() !== text ? JSON.stringify(text) : text;
  return quoted.length > 120 ? `${quoted.slice(0, 117)}...` : quoted;
}

/** The canonical (documented first) environment variable of a setting. */
export function canonicalEnv(setting: Setting): string {
  return envNames(setting)[0]!;
}

/** The setting at a dot path (`cluster.healthCheck.interval`), if any. */
export function settingByPath(path: string): Setting | undefined {
  return byPath.get(path);
}

/** The setting of a flag, canonical name or alias, given with or without the leading `--` (`health-interval`). */
export function settingByFlag(flag: string): Setting | undefined {
  return byFlag.get(flag.replace(/^--/, ''));
}

/** The setting read from an environment variable, canonical name or alias. */
export function settingByEnv(name: string): Setting | undefined {
  return byEnv.get(name);
}

/** Dot paths of the objects that hold settings (`cluster`, `cluster.healthCheck`, …). */
export const SETTING_GROUP_PATHS: ReadonlySet<string> = new Set(
  SETTINGS.flatMap((s) => {
    const parts = s.path.split('.');
    return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('.'));
  }),
);

function rangeText(setting: Setting): string {
  const { min, max } = setting;
  if (min !== undefined && max !== undefined) return `${min}-${max}`;
  if (min !== undefined) return `${setting.minExclusive ? '>' : '>='} ${min}`;
  if (max !== undefined) return `<= ${max}`;
  return '';
}

/**
 * What a setting accepts, as the tail of an error message after "expected ": e.g. `an integer 1-65535`.
 * With `range: false` (the value was not even of the right form) a duration is described by its syntax
 * alone; integers and ports always state their range since that is part of what "an integer" means here.
 */
export function describeExpectation(setting: Setting, options: { range?: boolean } = {}): string {
  const range = options.range ?? true;
  const r = rangeText(setting);
  switch (setting.kind) {
    case 'boolean':
      return 'a boolean (true/false, 1/0, yes/no, on/off)';
    case 'integer':
    case 'port':
      return r ? `an integer ${r}` : 'an integer';
    case 'number':
      return r ? `a number ${r}` : 'a number';
    case 'duration': {
      if (!range) return DURATION_EXPECTATION;
      if (setting.wholeSeconds) return `a whole number of seconds${r ? ` ${r}` : ''} (e.g. 30, 1m)`;
      // ">= 0" is implied for durations, so only a stricter minimum is worth stating.
      if (setting.min === undefined || (setting.min === 0 && !setting.minExclusive)) return DURATION_EXPECTATION;
      if (!setting.minExclusive) return `a duration of at least ${formatDuration(setting.min)} (e.g. 30, 500ms, 2s)`;
      return `a duration in seconds ${r} (e.g. 30, 500ms, 2s)`;
    }
    case 'string':
      if (setting.patternHint) return setting.patternHint;
      return setting.file ? 'a path to a readable file' : 'a non-empty string';
    case 'url':
      return 'an http(s) URL (e.g. http://host:3000/path)';
    case 'host':
      return 'a host name or an IP address without brackets (e.g. proxy-stone-1.internal, 10.0.0.7, fd00::7)';
    case 'list':
      return setting.itemKind === 'url'
        ? 'a comma-separated list of http(s) URLs (e.g. http://etcd1:2379,http://etcd2:2379)'
        : setting.itemKind === 'registryUrl'
        ? 'comma-separated http(s) URLs (e.g. http://etcd1:2379,http://etcd2:2379) or one redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379)'
        : setting.itemKind === 'origin'
        ? 'comma-separated web origins, scheme://host[:port] with nothing after it (e.g. https://ops.example.com,http://127.0.0.1:8080), or *'
        : setting.itemKind === 'check'
        ? 'whitespace-separated check URLs (e.g. http://127.0.0.1:3000/health/ready tcp://127.0.0.1:3000 ttl://worker)'
        : 'a comma-separated list of non-empty values';
    case 'enum':
      return `one of ${(setting.enumValues ?? []).join(', ')}`;
    case 'keyvalue':
      return 'comma-separated key=value pairs (e.g. team=edge,tier=1)';
  }
}

/** A short name for a setting's type, for help and docs: `duration`, `integer 1-65535`, `etcd|redis|memory`. */
export function describeKind(setting: Setting): string {
  switch (setting.kind) {
    case 'enum':
      return (setting.enumValues ?? []).join('|');
    case 'duration':
      return setting.wholeSeconds ? 'duration (whole s)' : 'duration';
    case 'integer':
    case 'port': {
      const r = rangeText(setting);
      return r ? `integer ${r}` : 'integer';
    }
    case 'list':
      return setting.itemKind === 'origin' ? 'origin list' : setting.itemKind === 'check' ? 'check URL list' : setting.itemKind ? 'URL list' : 'list';
    case 'keyvalue':
      return 'key=value list';
    case 'string':
      return setting.file ? 'file path' : 'string';
    case 'url':
      return 'http(s) URL';
    case 'host':
      return 'host name or IP';
    default:
      return setting.kind;
  }
}

/** A setting's default in the form you would type it (`30s`, `proxy-stone,backend`), or `undefined`. */
export function formatDefault(setting: Setting): string | undefined {
  const d = setting.default;
  if (d === undefined) return undefined;
  // Whole seconds as the seed writes them (`60s`, not `1m`); sub-second values in ms.
  if (setting.kind === 'duration' && typeof d === 'number') return d >= 1 || d === 0 ? `${d}s` : formatDuration(d);
  if (Array.isArray(d)) return d.join(',');
  if (d !== null && typeof d === 'object') {
    return Object.entries(d as Record<string, unknown>)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',');
  }
  return String(d);
}
