/**
 * What an agent says at start about the registry it runs on, so that an instance which shares nothing
 * with its peers, or looks for an etcd that is not there, says so in its first lines rather than
 * looking healthy while alone.
 */
import { DEFAULT_ETCD_ENDPOINT } from '../registry/endpoint.js';

/** One log line: its `event` field and its message. */
export interface RegistryNotice {
  event: string;
  message: string;
}

/**
 * A warning for an agent on the memory registry. `namedBy` says where `memory` came from
 * (`flag --registry`, `env SERVICE_DISCOVERY_REGISTRY`, `file /etc/sd.json`) when the caller knows.
 */
export function memoryRegistryNotice(namedBy?: string): RegistryNotice {
  return {
    event: 'registry.memory',
    message:
      `memory registry${namedBy ? ` (${namedBy})` : ''}: this instance shares nothing with its peers (none of them sees it, it sees none of them); ` +
      'to join a cluster, drop the memory registry and point it at etcd: --endpoints, SERVICE_DISCOVERY_ENDPOINTS or cluster.discovery.endpoints',
  };
}

/** Information for an agent that uses etcd at its default URL because no endpoint is configured. */
export function defaultEndpointNotice(): RegistryNotice {
  return {
    event: 'registry.default_endpoint',
    message: `no registry endpoints configured: using etcd at ${DEFAULT_ETCD_ENDPOINT}, the default`,
  };
}

/** A warning for an agent whose first registration found no etcd at the default URL. */
export function defaultEndpointUnreachableNotice(): RegistryNotice {
  return {
    event: 'registry.default_unreachable',
    message:
      `no etcd at ${DEFAULT_ETCD_ENDPOINT} (the default, as no endpoints are configured): start one there, ` +
      'set SERVICE_DISCOVERY_ENDPOINTS (--endpoints) to your etcd, or use --registry memory for a standalone instance; retrying meanwhile',
  };
}
