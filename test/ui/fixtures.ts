/** Records, events and fakes for the dashboard tests that need no cluster. */
import type { ClusterClient, ServiceDetails, SetEnabledRequest, SetEnabledSummary } from '../../src/cli/cluster-contract.js';
import type { ClusterEvent, ServiceRecord, ServiceStatus } from '../../src/types.js';
import { DashboardState, type ConnectionState } from '../../src/ui/dashboard-state.js';
import type { LiveSink, LiveSource } from '../../src/ui/live-source.js';
import { sampleRecord } from '../helpers/records.js';

export const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);

export function record(id: string, overrides: Partial<ServiceRecord> = {}): ServiceRecord {
  const status: ServiceStatus = overrides.status ?? 'healthy';
  return sampleRecord(id, {
    version: '1.4.2',
    tags: ['edge'],
    health: { status, responseTime: 12, lastCheck: T0 - 5_000, consecutiveFailures: 0, consecutiveSuccesses: 3 },
    registeredAt: T0 - 60_000,
    updatedAt: T0 - 5_000,
    ...overrides,
    // Derived even when `overrides` is a whole record with another status (see healthChanged).
    isHealthy: status === 'healthy' && (overrides.enabled ?? true),
  });
}

export function connection(overrides: Partial<ConnectionState> = {}): ConnectionState {
  return { source: 'registry', target: 'http://127.0.0.1:2379', cluster: 'proxy-stone', connected: true, synced: true, ...overrides };
}

/** Three services in two regions, node-1 leading. */
export function threeServices(): ServiceRecord[] {
  return [
    record('node-1', { region: 'us-east-1', zone: 'us-east-1a', role: 'leader' }),
    record('node-2', { region: 'us-east-1', zone: 'us-east-1b' }),
    record('node-3', { region: 'eu-west-1', zone: 'eu-west-1a' }),
  ];
}

export function stateWith(services: ServiceRecord[] = threeServices(), leader: string | null = 'node-1'): DashboardState {
  const state = new DashboardState({ connection: connection() });
  state.replaceAll(services, leader, T0);
  return state;
}

export function healthChanged(service: ServiceRecord, status: ServiceStatus, at = T0): ClusterEvent {
  return {
    type: 'serviceHealthChanged',
    serviceId: service.id,
    previousStatus: service.status,
    status,
    service: record(service.id, { ...service, status }),
    timestamp: at,
  };
}

/** A source the test drives by hand through `sink`. */
export class ManualSource implements LiveSource {
  sink: LiveSink | undefined;
  closed = false;
  start(sink: LiveSink): void {
    this.sink = sink;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A client whose answers the test decides; it records enable/disable calls. */
export class FakeClient implements ClusterClient {
  readonly kind = 'registry' as const;
  readonly description = 'http://fake:2379';
  calls: { id: string; enabled: boolean; request: SetEnabledRequest | undefined }[] = [];
  refuse: Error | undefined;
  /** Overrides fields of the enable/disable answer (default: changed). */
  answer: Partial<SetEnabledSummary> | undefined;
  constructor(private readonly services: () => ServiceRecord[]) {}
  async status(): Promise<never> {
    throw new Error('not used');
  }
  async listServices() {
    const services = this.services();
    return { services, total: services.length, healthy: services.filter((s) => s.isHealthy).length, unhealthy: 0 };
  }
  async getService(id: string): Promise<ServiceRecord> {
    const s = this.services().find((x) => x.id === id);
    if (!s) throw new Error(`no ${id}`);
    return s;
  }
  async getServiceHealth(id: string): Promise<ServiceDetails['health']> {
    const s = await this.getService(id);
    return {
      serviceId: id,
      status: s.status,
      health: s.health,
      history: [
        { at: T0 - 2000, latencyMs: 3, ok: true, httpStatus: 200 },
        { at: T0 - 1000, latencyMs: 4, ok: false, httpStatus: 503, change: { from: 'healthy', to: 'unhealthy', reason: 'HTTP 503' } },
      ],
    };
  }
  async getIntent(): Promise<null> {
    return null;
  }
  async topology(): Promise<never> {
    throw new Error('not used');
  }
  async setEnabled(id: string, enabled: boolean, request?: SetEnabledRequest): Promise<SetEnabledSummary> {
    this.calls.push({ id, enabled, request });
    if (this.refuse) throw this.refuse;
    return { serviceId: id, enabled, changed: true, ...this.answer };
  }
  async audit() {
    return { entries: [{ id: 'a1', at: T0 - 500, actor: 'cli:alice', action: 'disable' as const, serviceId: 'node-2', reason: 'deploy', changed: true }] };
  }
  async leader(): Promise<never> {
    throw new Error('not used');
  }
  async resignLeader(): Promise<never> {
    throw new Error('not used');
  }
  async forget(): Promise<never> {
    throw new Error('not used');
  }
  async events(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Removes ANSI escapes (colours, cursor moves) so frames compare as plain text. */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001B\[[0-9;?]*[ -/]*[@-~]|\u001B\][^\u0007]*\u0007|\u001B[@-_]/g, '');
}
