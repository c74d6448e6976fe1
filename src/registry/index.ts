import type { SdConfig } from '../config/types.js';
import { MemoryRegistry } from './memory.js';
import type { Registry } from './types.js';

export * from './types.js';

/**
 * Opens the registry the configuration names. etcd3 (and gRPC) load only here, on demand, so commands
 * that never touch etcd (`--help`, `--version`, the memory registry) start fast.
 */
export async function openRegistry(discovery: SdConfig['cluster']['discovery']): Promise<Registry> {
  if (discovery.registry === 'memory') return new MemoryRegistry();
  const { EtcdRegistry } = await import('./etcd.js');
  return new EtcdRegistry({
    endpoints: discovery.endpoints,
    callTimeoutMs: Math.round(discovery.callTimeout * 1000),
    username: discovery.username,
    password: discovery.password,
    tls: discovery.tls,
  });
}
