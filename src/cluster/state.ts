import type { KeyValue } from '../registry/types.js';
import type { AdminIntent, ClusterEvent, ServiceRecord } from '../types.js';
import { adminStateOf, parseAdminIntent, parseHealthState, parseServiceRecord, withIntent } from './codec.js';
import { classifyKey, type KeyLayout } from './keys.js';
import { isoTime } from '../util/time.js';

export interface ElectionCandidate {
  key: string;
  serviceId: string;
  createRevision: number;
  lease: string;
}

/**
 * `<ns>/leader`, written by each leader when it takes office: who, since when (epoch ms) and the term
 * (the create revision of its election key, which is also its fencing token). Under the leader's
 * lease, so it goes with its leader; readers still trust the election keys, this is for people.
 */
export interface LeaderRecord {
  leaderId: string;
  since: number;
  term: number;
}

/** A registry value that is a JSON object, or undefined. */
function jsonObject(raw: string): Record<string, unknown> | undefined {
  try {
    const data: unknown = JSON.parse(raw);
    return typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Parses a `<ns>/leader` value; undefined when it is not one. */
export function parseLeaderRecord(raw: string): LeaderRecord | undefined {
  const data = jsonObject(raw);
  if (!data) return undefined;
  const { leaderId, since, term } = data;
  if (typeof leaderId !== 'string' || leaderId.length === 0 || typeof since !== 'number' || typeof term !== 'number') return undefined;
  return { leaderId, since, term };
}

/**
 * `<ns>/resign`: an operator asks the leader of `term` (its election key's create revision, its
 * fencing token) to hand over. Only that term's leader acts on it, so a request that arrives late
 * cannot unseat a newer leader (src/cluster/leader.ts).
 */
export interface ResignRequest {
  term: number;
  actor: string;
  at: number;
  reason?: string;
}

/** Parses a `<ns>/resign` value; undefined when it is not one. */
export function parseResignRequest(raw: string): ResignRequest | undefined {
  const data = jsonObject(raw);
  if (!data) return undefined;
  const { term, actor, at, reason } = data;
  if (typeof term !== 'number' || !Number.isSafeInteger(term) || term <= 0) return undefined;
  if (typeof actor !== 'string' || actor.length > 256 || typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1024)) return undefined;
  return { term, actor, at, ...(reason !== undefined ? { reason } : {}) };
}

/** Why a service record without a lease is skipped (doctor reports it with this text). */
export const NO_LEASE = 'record has no lease (written by hand?): it would never expire, so it is not served';

/** Whether operator intent enables the service at `now`: a lapsed intent counts as no intent. */
function effectiveEnabled(intent: AdminIntent | undefined, now: number): boolean {
  if (!intent || (intent.expiresAt !== undefined && intent.expiresAt <= now)) return true;
  return intent.enabled;
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
  /**
   * The `enabled` last announced per id with an intent (absent: true). Events come from comparing
   * against it, so a disable that lapses is announced once, at expiry ({@link expireIntents}), and
   * the leader's later delete of the lapsed key announces nothing again.
   */
  private readonly announced = new Map<string, boolean>();
  /** The lowest election candidate, cached: `service()` needs it per record, so lists stay linear. */
  private leaderCache: ElectionCandidate | null | undefined;
  private leaderRecordValue: LeaderRecord | undefined;
  private resignValue: ResignRequest | undefined;
  /** Keys already warned about, by key and mod revision, so one bad value warns once. */
  private readonly warned = new Set<string>();

  constructor(
    readonly layout: KeyLayout,
    private readonly onWarning: (message: string) => void = () => undefined,
  ) {}

  /** Builds a state from a full listing of the namespace. */
  static fromList(layout: KeyLayout, kvs: KeyValue[], onWarning?: (message: string) => void, now = Date.now()): ClusterState {
    const state = new ClusterState(layout, onWarning);
    for (const kv of kvs) state.put(kv, now);
    return state;
  }

  /** Applies a put and returns the events it causes. */
  put(kv: KeyValue, now = Date.now()): ClusterEvent[] {
    const { kind, id } = classifyKey(this.layout, kv.key);
    switch (kind) {
      case 'service': {
        const parsed = parseServiceRecord(kv.value, id);
        // An agent registers under its lease, which ends with it; a record without one (written by
        // hand, or by a broken writer) would be served as live and routable forever.
        const why = !parsed.ok ? parsed.error : kv.lease === '0' || !kv.lease ? NO_LEASE : undefined;
        if (why !== undefined || !parsed.ok) {
          this.warn(kv, why ?? NO_LEASE);
          // A record that turned to garbage is no longer a usable instance.
          return this.records.has(id) ? this.changeService(id, () => this.records.delete(id), now) : [];
        }
        return this.changeService(id, () => this.records.set(id, parsed.value), now);
      }
      case 'admin': {
        const parsed = parseAdminIntent(kv.value);
        if (!parsed.ok) {
          // One reading on every path: an intent that cannot be read is no intent (the default,
          // enabled), for an agent that had read the good one before as for a CLI reading it now.
          // Keeping the last good one would make the answer depend on who read when. Doctor reports
          // the key; an enable or disable overwrites it.
          this.warn(kv, `${parsed.error} (read as no intent: enabled)`);
          return this.changeIntent(id, undefined, now);
        }
        return this.changeIntent(id, parsed.value, now);
      }
      case 'election': {
        const leaderBefore = this.leaderId();
        // A campaign lives under its agent's lease; a key without one would never go away and, once
        // the lowest, would block every election for good.
        const why = kv.value.length === 0 || kv.value.length > 256 ? 'election value is not a service id' : kv.lease === '0' ? 'election key has no lease' : undefined;
        if (why) {
          this.warn(kv, why);
          // A candidate overwritten with garbage no longer campaigns.
          if (!this.candidates.delete(kv.key)) return [];
        } else {
          this.candidates.set(kv.key, {
            key: kv.key,
            serviceId: kv.value,
            createRevision: kv.createRevision,
            lease: kv.lease,
          });
        }
        this.leaderCache = undefined;
        return this.leaderEvents(leaderBefore, now);
      }
      case 'leader': {
        const parsed = parseLeaderRecord(kv.value);
        if (!parsed) this.warn(kv, 'not a leader record {leaderId, since, term}');
        this.leaderRecordValue = parsed;
        return [];
      }
      case 'resign': {
        const parsed = parseResignRequest(kv.value);
        if (!parsed) this.warn(kv, 'not a resign request {term, actor, at, reason?}');
        this.resignValue = parsed;
        return [];
      }
      case 'audit':
        return [];
      case 'health': {
        // Read by the instance's own agent when it restarts; checked here so garbage is reported once.
        const parsed = parseHealthState(kv.value, id);
        if (!parsed.ok) this.warn(kv, parsed.error);
        return [];
      }
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
        if (!this.candidates.delete(key)) return [];
        this.leaderCache = undefined;
        return this.leaderEvents(leaderBefore, now);
      }
      case 'leader':
        this.leaderRecordValue = undefined;
        return [];
      case 'resign':
        this.resignValue = undefined;
        return [];
      default:
        return [];
    }
  }

  /**
   * Replaces the whole state with a fresh listing (after a compaction or a lost watch) and returns
   * the events that make a follower of the old state equal to the new one: nothing missed or doubled.
   */
  replaceWith(kvs: KeyValue[], now = Date.now()): ClusterEvent[] {
    // Warnings are per key revision: what this state already reported stays reported.
    const next = new ClusterState(this.layout, this.onWarning);
    for (const key of this.warned) next.warned.add(key);
    for (const kv of kvs) next.put(kv, now);
    const events: ClusterEvent[] = [];
    const leaderBefore = this.leaderId();
    const ids = new Set([...this.records.keys(), ...next.records.keys(), ...this.intents.keys(), ...next.intents.keys()]);
    for (const id of ids) {
      const before = this.service(id, now);
      const after = next.service(id, now);
      events.push(...this.announce(id, next.intents.get(id), now));
      events.push(...serviceEvents(id, before, after, now));
    }
    this.records.clear();
    this.intents.clear();
    this.candidates.clear();
    for (const [k, v] of next.records) this.records.set(k, v);
    for (const [k, v] of next.intents) this.intents.set(k, v);
    for (const [k, v] of next.candidates) this.candidates.set(k, v);
    for (const id of [...this.announced.keys()]) if (!this.intents.has(id)) this.announced.delete(id);
    this.leaderCache = undefined;
    this.leaderRecordValue = next.leaderRecordValue;
    this.resignValue = next.resignValue;
    for (const key of next.warned) this.warned.add(key);
    events.push(...this.leaderEvents(leaderBefore, now));
    return events;
  }

  /**
   * Announces intents that lapsed by `now`: a disable whose `expiresAt` passed is a `serviceEnabled`
   * at that moment, not when someone deletes the key. Call it at {@link nextIntentExpiry}.
   */
  expireIntents(now = Date.now()): ClusterEvent[] {
    const events: ClusterEvent[] = [];
    for (const [id, intent] of this.intents) {
      if (intent.expiresAt !== undefined && intent.expiresAt <= now) events.push(...this.announce(id, intent, now, 'expired'));
    }
    return events;
  }

  /** The earliest `expiresAt` after `now` among stored intents (epoch ms), if any. */
  nextIntentExpiry(now = Date.now()): number | undefined {
    let next: number | undefined;
    for (const intent of this.intents.values()) {
      if (intent.expiresAt !== undefined && intent.expiresAt > now && (next === undefined || intent.expiresAt < next)) next = intent.expiresAt;
    }
    return next;
  }

  /** `<ns>/leader` as last read, if it parsed. */
  leaderRecord(): LeaderRecord | undefined {
    return this.leaderRecordValue;
  }

  /** `<ns>/resign` as last read, if it parsed. */
  resignRequest(): ResignRequest | undefined {
    return this.resignValue;
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
    if (this.leaderCache !== undefined) return this.leaderCache;
    let best: ElectionCandidate | null = null;
    for (const c of this.candidates.values()) if (!best || c.createRevision < best.createRevision) best = c;
    this.leaderCache = best;
    return best;
  }

  /** The candidate stored under `key`, if it campaigns. */
  candidate(key: string): ElectionCandidate | undefined {
    return this.candidates.get(key);
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
    const stateBefore = adminStateOf(this.intents.get(id), now);
    if (intent) this.intents.set(id, intent);
    else this.intents.delete(id);
    const events = this.announce(id, intent, now);
    // A drain that ended (draining -> disabled) changes no `enabled`: it is an update of the service.
    const service = events.length === 0 && adminStateOf(intent, now) !== stateBefore ? this.service(id, now) : undefined;
    if (service) events.push({ type: 'serviceUpdated', serviceId: id, service, timestamp: now });
    return events;
  }

  /** Compares what `intent` means at `now` with what was last announced for `id`; records the new state. */
  private announce(id: string, intent: AdminIntent | undefined, now: number, lapsed?: 'expired'): ClusterEvent[] {
    const was = this.announced.get(id) ?? true;
    const is = effectiveEnabled(intent, now);
    if (intent) this.announced.set(id, is);
    else this.announced.delete(id);
    if (was === is) return [];
    const event: Extract<ClusterEvent, { type: 'serviceEnabled' | 'serviceDisabled' }> = {
      type: is ? 'serviceEnabled' : 'serviceDisabled',
      serviceId: id,
      timestamp: now,
    };
    if (lapsed) event.reason = `disable expired at ${isoTime(intent?.expiresAt ?? now)}`;
    else if (intent && is === intent.enabled) {
      if (intent.reason !== undefined) event.reason = intent.reason;
      event.actor = intent.actor;
      if (!is && intent.expiresAt !== undefined) event.expiresAt = intent.expiresAt;
      if (!is && intent.drainUntil !== undefined && intent.drainedAt === undefined) event.drainUntil = intent.drainUntil;
    }
    return [event];
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
  if (UPDATE_FIELDS.some((f) => JSON.stringify(before[f]) !== JSON.stringify(after[f])) || explanationChanged(before, after)) {
    events.push({ type: 'serviceUpdated', serviceId: id, service: after, timestamp: now });
  }
  return events;
}

/**
 * A flap hold, the instance's maintenance state or one of its checks' status (`--check`: a
 * non-critical check failing leaves the instance's status as it was) changed: watchers hear of it
 * (as a `serviceUpdated`).
 */
function explanationChanged(before: ServiceRecord, after: ServiceRecord): boolean {
  const checks = (r: ServiceRecord) => JSON.stringify(r.health.checks?.map((c) => [c.name, c.status, c.critical]));
  return (
    JSON.stringify(before.health.flapping) !== JSON.stringify(after.health.flapping) ||
    JSON.stringify(before.instanceMaintenance) !== JSON.stringify(after.instanceMaintenance) ||
    checks(before) !== checks(after)
  );
}
