/**
 * `doctor` against this host's configuration and its registry: the configuration the agent would
 * load, then etcd's endpoints, authentication and clock, or the Redis server and its persistence, and
 * the namespace, the leader and the local instance.
 *
 * @module
 */
import type { KeyKind } from '../cluster/keys.js';
import type { LoadedConfig, FlagValue } from '../config/load.js';
import { redactUrl as redact } from '../registry/endpoint.js';
import { RegistryAuthError, RegistryUnavailableError } from '../registry/types.js';
import { probeInstance, type DoctorCheck, type DoctorOptions, type DoctorPlan } from './doctor-check.js';
import type { EtcdHttpReader } from './etcd-http-reader.js';

const CONFIG_HINT = 'fix the setting named above; precedence is flag > environment variable > --config file > default';

/**
 * The checks of this host's configuration and of the registry it names (etcd or Redis). They share
 * state, so run them in order: later checks use what earlier ones found (the loaded config, whether
 * etcd answered).
 */
export function registryChecks(options: DoctorOptions): DoctorPlan {
  const env = options.env ?? process.env;
  const timeoutMs = options.target.timeoutMs;
  const maxSkewMs = options.maxSkewMs ?? 2000;
  let loaded: LoadedConfig | undefined;
  let target = options.target;
  let reader: EtcdHttpReader | undefined;
  let reachable: string[] = [];
  let authOk = false;
  let services = 0;
  let leaderId: string | null = null;
  let leaderRegistered = false;

  const config: DoctorCheck = {
    name: 'configuration',
    async run() {
      const { loadConfig } = await import('../config/load.js');
      try {
        loaded = await loadConfig({ flags: options.configFlags, env });
      } catch (err) {
        if ((err as Error).name !== 'ConfigError') throw err;
        return { ok: false, detail: (err as Error).message, hint: CONFIG_HINT };
      }
      const d = loaded.config.cluster.discovery;
      // With nothing named on the command line or in the environment, use what the config file says.
      if (options.targetDefaulted && target.kind === 'registry' && d.registry !== 'memory' && d.endpoints.length > 0) {
        target = { ...target, registry: d.registry, endpoints: d.endpoints, namespace: d.namespace };
      }
      const where =
        d.registry === 'memory'
          ? 'memory (named: the agent would share nothing with its peers)'
          : `${d.registry} ${d.endpoints.map(redact).join(',')}`;
      const warnings = loaded.warnings.length ? `; warnings: ${loaded.warnings.join('; ')}` : '';
      return { ok: true, detail: `valid: registry ${where}, namespace ${d.namespace}${loaded.configFile ? `, file ${loaded.configFile}` : ''}${warnings}` };
    },
  };

  /** Whatever answered the reachability checks, for the namespace listing. */
  let lister: { list(prefix: string): Promise<{ kvs: { key: string; value: string; createRevision: number; modRevision: number; lease: string }[]; revision: number }> } | undefined;
  let redisRegistry: import('../registry/redis.js').RedisRegistry | undefined;
  const close = async () => {
    await reader?.close();
    await redisRegistry?.close();
  };
  const endpoints: DoctorCheck = {
    name: 'etcd endpoints',
    async run() {
      if (target.kind !== 'registry') throw new Error('unreachable');
      const { EtcdHttpReader } = await import('./etcd-http-reader.js');
      reader = new EtcdHttpReader(target);
      const lines: string[] = [];
      const down: string[] = [];
      for (const endpoint of reader.endpointList) {
        try {
          const health = await reader.health(endpoint);
          const status = await reader.status(endpoint).catch((err: unknown) => err as Error);
          if (status instanceof RegistryAuthError) {
            lines.push(`${redact(endpoint)} ${health.healthy ? 'healthy' : 'unhealthy'} (status needs credentials)`);
          } else if (status instanceof Error) {
            throw status;
          } else {
            const leader = status.leaderId === status.memberId ? 'leader' : `follower of ${hex(status.leaderId)}`;
            lines.push(`${status.endpoint} ${health.healthy ? 'healthy' : `unhealthy (${health.reason ?? 'no leader?'})`}, etcd ${status.version}, ${leader}, db ${kib(status.dbSize)}, ${health.rttMs}ms`);
          }
          if (health.healthy) reachable.push(endpoint);
          else down.push(endpoint);
        } catch (err) {
          down.push(endpoint);
          lines.push(`${redact(endpoint)} ${err instanceof RegistryUnavailableError ? err.message.replace(/^registry \S+ /, '') : (err as Error).message}`);
        }
      }
      if (down.length === 0) return { ok: true, detail: lines.join('; ') };
      return {
        ok: false,
        detail: lines.join('; '),
        hint:
          reachable.length === 0
            ? `no endpoint answers: check that etcd runs and listens on ${down.map(redact).join(', ')} (etcdctl --endpoints=${down.map(redact).join(',')} endpoint health), and --endpoints/SERVICE_DISCOVERY_ENDPOINTS`
            : `${down.map(redact).join(', ')} down or unhealthy: the cluster works while a majority answers, but repair or remove the member`,
      };
    },
  };

  const auth: DoctorCheck = {
    name: 'authentication',
    async run() {
      if (!reader || reachable.length === 0) return { ok: false, skipped: true, detail: 'not checked: no etcd endpoint answers' };
      try {
        const how = await reader.checkAuth();
        authOk = true;
        lister = reader;
        return { ok: true, detail: how === 'authenticated' ? `accepted as user ${target.kind === 'registry' ? target.username : ''}` : 'no credentials given, reads allowed' };
      } catch (err) {
        if (err instanceof RegistryAuthError) {
          return { ok: false, detail: err.message, hint: 'check --etcd-username/--etcd-password (SERVICE_DISCOVERY_USERNAME/SERVICE_DISCOVERY_PASSWORD) and that the user has a role with read access to the namespace' };
        }
        return { ok: false, detail: (err as Error).message };
      }
    },
  };

  const namespace: DoctorCheck = {
    name: 'namespace',
    async run() {
      if (!lister || !authOk || target.kind !== 'registry') return { ok: false, skipped: true, detail: 'not checked: the registry is not readable' };
      const [{ keyLayout, classifyKey }, { ClusterState }] = await Promise.all([import('../cluster/keys.js'), import('../cluster/state.js')]);
      const layout = keyLayout(target.namespace);
      const listing = await lister.list(layout.root);
      const kinds: Record<KeyKind, number> = { service: 0, admin: 0, election: 0, audit: 0, leader: 0, resign: 0, foreign: 0, health: 0 };
      for (const kv of listing.kvs) kinds[classifyKey(layout, kv.key).kind]! += 1;
      const skipped: string[] = [];
      const state = ClusterState.fromList(layout, listing.kvs, (m) => skipped.push(m));
      services = state.size;
      leaderId = state.leaderId();
      leaderRegistered = leaderId !== null && state.service(leaderId) !== undefined;
      const counts = `${listing.kvs.length} keys under ${layout.root} (${kinds.service} services, ${kinds.admin} intents, ${kinds.election} election, ${kinds.leader} leader, ${kinds.audit} audit${kinds.health ? `, ${kinds.health} flap holds` : ''}${kinds.resign ? `, ${kinds.resign} resign request` : ''}${kinds.foreign ? `, ${kinds.foreign} foreign` : ''}) at revision ${listing.revision}`;
      if (skipped.length === 0) return { ok: true, detail: listing.kvs.length === 0 ? `${counts}: empty, no agent has registered here` : counts };
      return {
        ok: false,
        detail: `${counts}; ${skipped.length} entries skipped: ${skipped.slice(0, 3).join('; ')}${skipped.length > 3 ? '; …' : ''}`,
        hint: `agents skip these entries (a record without a lease was written by hand and would never expire; an unreadable intent counts as enabled: services enable|disable ID replaces it); remove them (etcdctl del KEY) or check what writes them (another version? a typo in --namespace?)`,
      };
    },
  };

  const leader: DoctorCheck = {
    name: 'leader',
    async run() {
      if (!authOk) return { ok: false, skipped: true, detail: 'not checked: the registry is not readable' };
      if (services === 0 && leaderId === null) return { ok: true, detail: 'no agents registered, so no leader expected' };
      if (leaderId === null) {
        return { ok: false, detail: `${services} services registered but no leader`, hint: 'agents campaign unless started with --no-leader-election; check their logs for "leader"' };
      }
      if (!leaderRegistered) {
        return { ok: false, detail: `leader ${leaderId} holds the election key but has no service record`, hint: 'its agent may be stuck; it loses leadership when its lease expires, or restart it' };
      }
      return { ok: true, detail: `${leaderId}` };
    },
  };

  const instance: DoctorCheck = {
    name: 'instance health',
    async run() {
      const url = instanceHealthUrl(loaded, options.configFlags);
      if (!url) {
        return { ok: true, skipped: true, detail: 'skipped: no SERVICE_HOST, SERVICE_PORT or --health-url set (no local instance to check)' };
      }
      return probeInstance(url, timeoutMs);
    },
  };

  const clock: DoctorCheck = {
    name: 'clock skew',
    async run() {
      if (!reader || reachable.length === 0) return { ok: false, skipped: true, detail: 'not checked: no etcd endpoint answers' };
      const h = await reader.health(reachable[0]!);
      if (h.serverDate === undefined) return { ok: true, skipped: true, detail: 'etcd sent no Date header' };
      // Date has whole seconds: the server's clock was somewhere in [date, date + 1 s) at the reply.
      const skew = h.localMid - (h.serverDate + 500);
      const margin = 500 + h.rttMs / 2;
      const text = `local clock ${skew >= 0 ? '+' : '-'}${(Math.abs(skew) / 1000).toFixed(1)}s vs etcd at ${redact(reachable[0]!)} (±${(margin / 1000).toFixed(1)}s)`;
      if (Math.abs(skew) - margin <= maxSkewMs) return { ok: true, detail: text };
      return {
        ok: false,
        detail: text,
        hint: 'synchronise this clock (chrony/NTP): lastCheck/updatedAt times and intent expiry are compared across hosts',
      };
    },
  };

  // Redis: the server, its persistence and its keyspace instead of etcd's endpoints, auth and clock.
  const redisServer: DoctorCheck = {
    name: 'redis server',
    async run() {
      if (target.kind !== 'registry') throw new Error('unreachable');
      const { RedisRegistry } = await import('../registry/redis.js');
      // Answered with the connection's handshake, so known by the time status() returns.
      let passwordUnneeded = false;
      redisRegistry = new RedisRegistry({
        endpoint: target.endpoints[0]!,
        callTimeoutMs: target.timeoutMs,
        ...(target.username !== undefined ? { username: target.username } : {}),
        ...(target.password !== undefined ? { password: target.password } : {}),
        ...(target.tls ? { tls: target.tls } : {}),
        onWarning: (w) => {
          if (w.event === 'registry.auth_unneeded') passwordUnneeded = true;
        },
      });
      try {
        const started = Date.now();
        const status = await redisRegistry.status();
        authOk = true;
        lister = redisRegistry;
        const major = Number(status.version.split('.')[0]);
        const role = /role:(\w+)/.exec(await redisRegistry.info('replication').catch(() => ''))?.[1] ?? 'unknown role';
        const unneeded = passwordUnneeded ? '; a password was given but the server requires none (check its requirepass if it should)' : '';
        const detail = `${status.endpoint} redis ${status.version}, ${role}, store revision ${status.revision}, ${Date.now() - started}ms${unneeded}`;
        if (!(major >= 7)) return { ok: false, detail, hint: 'the Redis registry needs Redis 7 or later (scripts replicated by effects, for TIME)' };
        if (role === 'slave') return { ok: false, detail, hint: 'this is a replica: point --endpoints at the primary (writes and scripts fail on a replica)' };
        return { ok: true, detail };
      } catch (err) {
        const auth = err instanceof RegistryAuthError;
        return {
          ok: false,
          detail: (err as Error).message,
          hint: auth
            ? 'check the password and user (in the URL, or SERVICE_DISCOVERY_PASSWORD/SERVICE_DISCOVERY_USERNAME) and the ACL rule in docs/redis.md'
            : `check that redis-server runs and listens on ${redact(target.endpoints[0]!)} (redis-cli -u URL ping)`,
        };
      }
    },
  };

  const redisPersistence: DoctorCheck = {
    name: 'redis persistence',
    async run() {
      if (!redisRegistry || !authOk) return { ok: false, skipped: true, detail: 'not checked: Redis not readable' };
      const info = await redisRegistry.info('persistence').catch(() => '');
      const aof = /aof_enabled:(\d)/.exec(info)?.[1];
      const save = await redisRegistry.configGet('save');
      const rdb = save !== undefined ? save.trim() !== '' : undefined;
      if (aof === undefined) return { ok: true, skipped: true, detail: 'cannot read INFO persistence (ACL)' };
      if (aof === '1') return { ok: true, detail: `AOF on${rdb ? ', RDB snapshots on' : ''}: operator intents and audit survive a restart` };
      return {
        ok: false,
        detail: `AOF off${rdb === true ? `, RDB snapshots only (save ${save})` : rdb === false ? ', no RDB snapshots' : ''}: a restart loses ${rdb ? 'the writes since the last snapshot, including ' : ''}operator intents and the audit trail`,
        hint: 'turn on appendonly yes (appendfsync everysec or always) on the Redis server; agents re-register by themselves, but intents are not recreated',
      };
    },
  };

  if (target.kind === 'registry' && target.registry === 'redis') {
    return { checks: [config, redisServer, redisPersistence, namespace, leader, instance], close };
  }
  return { checks: [config, endpoints, auth, namespace, leader, instance, clock], close };
}

/** The local instance's health URL when the configuration names one (not everything left at defaults). */
function instanceHealthUrl(loaded: LoadedConfig | undefined, flags: Record<string, FlagValue>): string | undefined {
  if (!loaded) return typeof flags['health-url'] === 'string' ? flags['health-url'] : undefined;
  const { config, sources } = loaded;
  const named = ['service.host', 'service.port', 'cluster.healthCheck.url'].some((p) => sources[p] !== undefined && sources[p] !== 'default');
  if (!named) return undefined;
  const hc = config.cluster.healthCheck;
  if (hc.url) return hc.url;
  const host = config.service.host.includes(':') ? `[${config.service.host}]` : config.service.host;
  return `http://${host}:${config.service.port}${hc.path}`;
}

function hex(decimalId: string): string {
  try {
    return BigInt(decimalId).toString(16);
  } catch {
    return decimalId;
  }
}

function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}
