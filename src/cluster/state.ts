import type { KeyValue } from '../registry/types.js';
import type { AdminIntent, ClusterEvent, ServiceRecord } from '../types.js';
import { parseAdminIntent, parseServiceRecord, withIntent } from './codec.js';
import { classifyKey, type KeyLayout } from './keys.js';

export interface ElectionCandidate {
  key: string;
  serviceId: string;
  createRevision: number;
  lease: string;
}

/** Fields whose change is a `serviceUpdated` (status, role and health have their own events or none). */
const UPDATE_FIELDS = ['name', 'host', 'port', 'version', 'tags', 'region', 'zone', 'metadata', 'apiUrl', 'healthUrl'] as const;

/**
 * The cluster as read from the registry: service records, operator intent and election candidates,
 * kept as plain maps and updated key by key. Pure (no I/O), so the same code serves the agent's live
 * view, one-shot CLI reads and the dashboard, and can be tested without a registry.
 */
export class ClusterState {
  private readonly records = new Map<string, ServiceRecord>();
  private readonly intents = new Map<string, AdminIntent>();
  private readonly candidates = new Map<string, ElectionCandidate>();
  /** Keys already warned about, by key and mod revision, so one bad value warns once. */
  private readonly warned = new Set<string>();

  constructor(
    readonly layout: KeyLayout,
    private readonly onWarning: (message: string) => void = () => undefined,
  ) {}

  /** Builds a state from a full listing of the namespace. */
  static fromList(layout: KeyLayout, kvs: KeyValue[], onWarning?: (message: string) => void): ClusterState {
    const state = new ClusterState(layout, onWarning);
    for (const kv of kvs) state.put(kv);
    return state;
  }

  /** Applies a put and returns the events it causes. */
  put(kv: KeyValue, now = Date.now()): ClusterEvent[] {
    const { kind, id } = classifyKey(this.layout, kv.key);
    switch (kind) {
      case 'service': {
        const parsed = parseServiceRecord(kv.value, id);
        if (!parsed.ok) {
          this.warn(kv, parsed.error);
          // A record that turned to garbage is no longer a usable instance.
          return this.records.has(id) ? this.changeService(id, () => this.records.delete(id), now) : [];
        }
        return this.changeService(id, () => this.records.set(id, parsed.value), now);
      }
      case 'admin': {
        const parsed = parseAdminIntent(kv.value);
        if (!parsed.ok) {
          this.warn(kv, parsed.error);
          return [];
        }
        return this.changeIntent(id, parsed.value, now);
      }
      case 'election': {
        const leaderBefore = this.leaderId();
        if (kv.value.length === 0 || kv.value.length > 256) {
          this.warn(kv, 'election value is not a service id');
          return [];
        }
        this.candidates.set(kv.key, {
          key: kv.key,
          serviceId: kv.value,
          createRevision: kv.createRevision,
          lease: kv.lease,
        });
        return this.leaderEvents(leaderBefore, now);
      }
      case 'audit':
        return [];
      case 'foreign':
        this.warn(kv, 'not a proxy-stone-sd key');
        return [];
    }
  }

  /** Applies a delete and returns the events it causes. */
  delete(key: string, now = Date.now()): ClusterEvent[] {
    const { kind, id } = classifyKey(this.layout, key);
    switch (kind) {
      case 'service':
        return this.records.has(id) ? this.changeService(id, () => this.records.delete(id), now) : [];
      case 'admin':
        return this.changeIntent(id, undefined, now);
      case 'election': {
        const leaderBefore = this.leaderId();
        this.candidates.delete(key);
        return this.leaderEvents(leaderBefore, now);
      }
      default:
        return [];
    }
  }

  /**
   * Replaces the whole state with a fresh listing (after a compaction or a lost watch) and returns
   * the events that make a follower of the old state equal to the new one: nothing missed or doubled.
   */
  replaceWith(kvs: KeyValue[], now = Date.now()): ClusterEvent[] {
    const next = ClusterState.fromList(this.layout, kvs, this.onWarning);
    for (const key of this.warned) next.warned.add(key);
    const events: ClusterEvent[] = [];
    const leaderBefore = this.leaderId();
    const ids = new Set([...this.records.keys(), ...next.records.keys(), ...this.intents.keys(), ...next.intents.keys()]);
    for (const id of ids) {
      const before = this.service(id);
      const intentBefore = this.intents.get(id);
      const intentAfter = next.intents.get(id);
      const after = next.service(id);
      events.push(...intentEvents(id, intentBefore, intentAfter, now));
      events.push(...serviceEvents(id, before, after, now));
    }
    this.records.clear();
    this.intents.clear();
    this.candidates.clear();
    for (const [k, v] of next.records) this.records.set(k, v);
    for (const [k, v] of next.intents) this.intents.set(k, v);
    for (const [k, v] of next.candidates) this.candidates.set(k, v);
    events.push(...this.leaderEvents(leaderBefore, now));
    return events;
  }

  /** Every service as readers see it: intent applied, role from the election. */
  services(now = Date.now()): ServiceRecord[] {
    const out: ServiceRecord[] = [];
    for (const id of this.records.keys()) out.push(this.service(id, now)!);
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  service(id: string, now = Date.now()): ServiceRecord | undefined {
    const record = this.records.get(id);
    if (!record) return undefined;
    const merged = withIntent(record, this.intents.get(id), now);
    const leader = this.leaderId();
    // The election keys are the truth about leadership; the record's own `role` can lag a write behind.
    if (this.candidates.size > 0) merged.role = leader === id ? 'leader' : 'follower';
    return merged;
  }

  intent(id: string): AdminIntent | undefined {
    return this.intents.get(id);
  }

  intentEntries(): [string, AdminIntent][] {
    return [...this.intents.entries()];
  }

  /** The leader is the candidate with the lowest create revision (etcd's election recipe). */
  leaderId(): string | null {
    return this.leaderCandidate()?.serviceId ?? null;
  }

  leaderCandidate(): ElectionCandidate | null {
    let best: ElectionCandidate | null = null;
    for (const c of this.candidates.values()) if (!best || c.createRevision < best.createRevision) best = c;
    return best;
  }

  electionCandidates(): ElectionCandidate[] {
    return [...this.candidates.values()].sort((a, b) => a.createRevision - b.createRevision);
  }

  get size(): number {
    return this.records.size;
  }

  private changeService(id: string, mutate: () => void, now: number): ClusterEvent[] {
    const before = this.service(id, now);
    mutate();
    return serviceEvents(id, before, this.service(id, now), now);
  }

  private changeIntent(id: string, intent: AdminIntent | undefined, now: number): ClusterEvent[] {
    const before = this.intents.get(id);
    if (intent) this.intents.set(id, intent);
    else this.intents.delete(id);
    return intentEvents(id, before, intent, now);
  }

  private leaderEvents(before: string | null, now: number): ClusterEvent[] {
    const after = this.leaderId();
    if (after === before) return [];
    return [{ type: 'leaderElected', leaderId: after, previousLeaderId: before, timestamp: now }];
  }

  private warn(kv: KeyValue, why: string): void {
    const tag = `${kv.key}@${kv.modRevision}`;
    if (this.warned.has(tag)) return;
    this.warned.add(tag);
    if (this.warned.size > 10_000) this.warned.clear();
    this.onWarning(`skipping ${kv.key}: ${why}`);
  }
}

function serviceEvents(
  id: string,
  before: ServiceRecord | undefined,
  after: ServiceRecord | undefined,
  now: number,
): ClusterEvent[] {
  if (!before && after) return [{ type: 'serviceJoined', serviceId: id, service: after, timestamp: now }];
  if (before && !after) return [{ type: 'serviceLeft', serviceId: id, service: before, timestamp: now }];
  if (!before || !after) return [];
  const events: ClusterEvent[] = [];
  // A new registration (new lease) of the same id is a leave and a join for watchers.
  if (before.registeredAt !== after.registeredAt) {
    return [
      { type: 'serviceLeft', serviceId: id, service: before, timestamp: now },
      { type: 'serviceJoined', serviceId: id, service: after, timestamp: now },
    ];
  }
  if (before.status !== after.status) {
    events.push({
      type: 'serviceHealthChanged',
      serviceId: id,
      previousStatus: before.status,
      status: after.status,
      service: after,
      timestamp: now,
    });
  }
  if (UPDATE_FIELDS.some((f) => JSON.stringify(before[f]) !== JSON.stringify(after[f]))) {
    events.push({ type: 'serviceUpdated', serviceId: id, service: after, timestamp: now });
  }
  return events;
}

function intentEvents(
  id: string,
  before: AdminIntent | undefined,
  after: AdminIntent | undefined,
  now: number,
): ClusterEvent[] {
  const wasEnabled = before ? before.enabled : true;
  const isEnabled = after ? after.enabled : true;
  if (wasEnabled === isEnabled) return [];
  return [
    {
      type: isEnabled ? 'serviceEnabled' : 'serviceDisabled',
      serviceId: id,
      reason: after?.reason,
      actor: after?.actor,
      timestamp: now,
    },
  ];
}
