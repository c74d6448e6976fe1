import type { ServiceRecord } from '../../src/types.js';
import type { Registry } from '../../src/registry/types.js';

/**
 * A complete service record with plain defaults, for the tests and benchmarks that need records
 * without running agents (fake registrations, rendering, capacity maths). `isHealthy` follows
 * `status` and `enabled` unless given; `health.status` follows `status`.
 */
export function sampleRecord(id: string, overrides: Partial<ServiceRecord> = {}): ServiceRecord {
  const status = overrides.status ?? 'healthy';
  const enabled = overrides.enabled ?? true;
  const host = overrides.host ?? '10.0.0.1';
  const port = overrides.port ?? 3000;
  return {
    id,
    name: 'proxy-stone',
    host,
    port,
    version: '1.0.0',
    tags: [],
    region: 'us-east-1',
    zone: 'us-east-1a',
    role: 'follower',
    health: { status, responseTime: 3, lastCheck: 1, consecutiveFailures: 0, consecutiveSuccesses: 1 },
    registeredAt: 1,
    updatedAt: 1,
    healthUrl: `http://${host}:${port}/health`,
    metadata: {},
    ...overrides,
    status,
    enabled,
    isHealthy: overrides.isHealthy ?? (status === 'healthy' && enabled),
  };
}

const leases = new WeakMap<Registry, Promise<string>>();

/**
 * Writes a service record as an agent would: under a lease (one long one per registry, shared by
 * the test's fake records), since readers skip a record without one as written by hand.
 */
export async function putUnderLease(registry: Registry, key: string, value: string): Promise<number> {
  let lease = leases.get(registry);
  if (!lease) {
    lease = registry.grantLease(600).then((l) => l.id);
    leases.set(registry, lease);
  }
  return registry.put(key, value, { lease: await lease });
}
