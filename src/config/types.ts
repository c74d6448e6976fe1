/**
 * The resolved configuration: the seed's `serviceDiscoveryConfig` shape, plus the agent's own settings
 * (`api`, `log`). Durations are in seconds (fractions allowed).
 */
export interface SdConfig {
  enabled: boolean;
  cluster: {
    name: string;
    leaderElection: {
      enabled: boolean;
      /** Lease TTL in seconds; the agent's one lease carries its record and its election key. */
      ttl: number;
      /** Seconds between lease keep-alives. Must be below ttl. */
      renewInterval: number;
    };
    healthCheck: {
      interval: number;
      timeout: number;
      retries: number;
      gracePeriod: number;
      /** Path probed on SERVICE_HOST:SERVICE_PORT when `url` is not set. */
      path: string;
      url?: string;
      /** Seconds between refreshes of lastCheck/responseTime in the registry when nothing changed; 0 = never. */
      refreshInterval: number;
      /** Flap damping: changes within flapWindow that hold the instance unhealthy; 0 = off. */
      flapThreshold: number;
      flapWindow: number;
      /** Seconds without a change that release a flap hold. */
      flapHoldDown: number;
    };
    discovery: {
      registry: 'etcd' | 'redis' | 'memory';
      endpoints: string[];
      namespace: string;
      username?: string;
      password?: string;
      tls?: { ca?: string; cert?: string; key?: string };
      /** Seconds allowed for one registry call. */
      callTimeout: number;
    };
    /** Capacity guard: healthy enabled instances a disable must leave per region and zone (`1`, or `50%`). */
    minHealthyPerZone: string;
  };
  service: {
    id?: string;
    name: string;
    host: string;
    port: number;
    version: string;
    tags: string[];
    region: string;
    zone: string;
    metadata: Record<string, string>;
    /** Drive the instance's own maintenance switch from the operator's intent. */
    maintenanceHook: boolean;
    /** Base URL of the instance's maintenance API; derived from host and port when unset. */
    maintenanceUrl?: string;
    /** Register disabled (an intent written only when none exists), for a smoke test before traffic. */
    startDisabled: boolean;
    /** Polled by this agent while its instance drains: idle on 2xx with `{"idle": true}` or `{"inflight": 0}`. */
    drainProbeUrl?: string;
    /** Health check URLs (`--check`, src/agent/checks/check-spec.ts); none: the one HTTP check of `cluster.healthCheck`. */
    checks?: string[];
  };
  api: {
    enabled: boolean;
    host: string;
    port: number;
    /** Public URL of this agent's API written into the record; derived from host/port when unset. */
    advertiseUrl?: string;
    /**
     * An operator key (named `default` in the audit trail) for the management endpoints
     * (`SERVICE_DISCOVERY_API_KEY`, named in DESIGN.md). Secret: never logged or printed.
     */
    apiKey?: string;
    /** File of named keys with roles (`name:role:key` lines or JSON), read at startup. */
    keyFile?: string;
    /** `open`: reads need no key; `viewer`: reads need any valid key. Writes always need an operator key. */
    readAccess: 'open' | 'viewer';
    /** HTTPS for the API (PEM paths): `cert` and `key` together; `ca` adds client-certificate checks (mTLS). */
    tls?: { cert?: string; key?: string; ca?: string };
    /** Most event streams (SSE) served at once; unset: a quarter of the process's open-file limit, at most 1000. */
    maxStreams?: number;
    /** Most event streams one client address may hold open at once; unset: 20. */
    maxStreamsPerClient?: number;
    /** Origins allowed to read the API from a browser (CORS, WebSocket); empty: none; `*`: any. */
    corsOrigins?: string[];
  };
  log: {
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  };
}

/**
 * Where a setting's value came from, lowest precedence first. `override` is a value passed in code
 * (`loadConfig({ overrides })`, `configFromPartial()`), which wins over everything else.
 */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag' | 'override';
