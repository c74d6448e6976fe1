import type { SdConfig } from '../config/types.js';
import { MemoryRegistry } from './memory.js';
import type { MemberChange, Registry, RegistryWarning } from './types.js';

export * from './types.js';

/**
 * Opens the registry the configuration names; `onWarning` hears what the operator should be told once
 * (see {@link RegistryWarning}). etcd3 (and gRPC) and ioredis load only here, on demand,
 * so commands that never touch them (`--help`, `--version`, the memory registry) start fast.
 */
export async function openRegistry(
  discovery: SdConfig['cluster']['discovery'],
  options: {
    onWarning?: (warning: RegistryWarning) => void;
    /** etcd with several endpoints: how long the member in use may leave a call unanswered (see EtcdRegistryOptions). */
    failoverAfterMs?: number;
    /** etcd with several endpoints: hears each move to another member. */
    onMemberChange?: (change: MemberChange) => void;
  } = {},
): Promise<Registry> {
  if (discovery.registry === 'memory') return new MemoryRegistry();
  if (discovery.registry === 'redis') {
    const { RedisRegistry } = await import('./redis.js');
    const endpoint = discovery.endpoints[0];
    if (endpoint === undefined || discovery.endpoints.length !== 1) throw new Error('the redis registry needs exactly one redis:// endpoint');
    return new RedisRegistry({
      endpoint,
      callTimeoutMs: Math.round(discovery.callTimeout * 1000),
      ...(discovery.username !== undefined ? { username: discovery.username } : {}),
      ...(discovery.password !== undefined ? { password: discovery.password } : {}),
      ...(discovery.tls ? { tls: discovery.tls } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    });
  }
  const { EtcdRegistry } = await import('./etcd.js');
  return new EtcdRegistry({
    endpoints: discovery.endpoints,
    callTimeoutMs: Math.round(discovery.callTimeout * 1000),
    username: discovery.username,
    password: discovery.password,
    tls: discovery.tls,
    ...(options.failoverAfterMs !== undefined ? { failoverAfterMs: options.failoverAfterMs } : {}),
    ...(options.onMemberChange ? { onMemberChange: options.onMemberChange } : {}),
  });
}

/**
 * How long an agent lets one etcd member leave a keep-alive (or any call) unanswered before it moves
 * to another: two renew intervals, so a lease renewed every interval survives a hung member with most
 * of its TTL to spare, and never more than the call timeout.
 */
export function memberFailoverMs(config: Pick<SdConfig, 'cluster'>): number {
  return Math.min(2 * config.cluster.leaderElection.renewInterval, config.cluster.discovery.callTimeout) * 1000;
}
