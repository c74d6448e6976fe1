/**
 * Who leads, read for operators (`leader`, `GET /service-discovery/leader`), and the request that the
 * leader hand over (`leader resign`, `POST /service-discovery/leader/resign`).
 *
 * A resign request is `<ns>/resign` = `{term, actor, at, reason?}`, where `term` is the fencing
 * revision (the create revision of the election key) of the leader asked. It is written in one
 * transaction with its audit entry, only while that election key still exists with that revision,
 * and under that leader's lease, so it goes with its leader. The leader's agent acts only on a
 * request for its own current term (src/agent/leadership.ts): it gives up the term through the same
 * fenced transaction its graceful stop uses (deleting its election key and `<ns>/leader`, and the
 * request), then campaigns again from the back of the line. A request for an older term, late or
 * forged, unseats nobody.
 *
 * @module
 */
import type { KeyValue, Registry } from '../registry/types.js';
import type { AuditEntry } from '../types.js';
import { auditId, MAX_REASON } from './admin.js';
import { RECORD_LIMITS } from '../types.js';
import type { KeyLayout } from './keys.js';
import { ClusterState, type ResignRequest } from './state.js';

/** What `leader --json` and `GET /service-discovery/leader` answer. */
export interface LeaderInfo {
  /** The leading service's id: the election candidate with the lowest create revision; null when nobody campaigns. */
  leaderId: string | null;
  /**
   * The create revision of the leader's election key: its fencing token, which every leader-only
   * write compares, and the number of its term. null without a leader.
   */
  fencingRevision: number | null;
  /**
   * The term the leader recorded at `<ns>/leader` when it took office (equal to `fencingRevision`);
   * null until that record is written, or when it names another leader (a record lagging a change).
   */
  term: number | null;
  /** Epoch ms since which it leads, from the same record; null when `term` is. */
  since: number | null;
  /** Every candidate in line, the leader first, with the fencing revision each would lead with. */
  candidates: { serviceId: string; fencingRevision: number }[];
  /** A resign request still stored (its leader has not acted on it yet), if any. */
  resignRequest: ResignRequest | null;
}

/** The leader as the election keys and the leader record say, from a state that holds `<ns>/election/` and `<ns>/leader`. */
export function leaderInfo(state: ClusterState): LeaderInfo {
  const leader = state.leaderCandidate();
  const record = state.leaderRecord();
  const current = leader !== null && record !== undefined && record.leaderId === leader.serviceId && record.term === leader.createRevision;
  return {
    leaderId: leader?.serviceId ?? null,
    fencingRevision: leader?.createRevision ?? null,
    term: current ? record.term : null,
    since: current ? record.since : null,
    candidates: state.electionCandidates().map((c) => ({ serviceId: c.serviceId, fencingRevision: c.createRevision })),
    resignRequest: state.resignRequest() ?? null,
  };
}

/** Reads the leader from the registry: the election keys, `<ns>/leader` and `<ns>/resign`. */
export async function readLeader(registry: Pick<Registry, 'list'>, layout: KeyLayout): Promise<LeaderInfo> {
  // `<ns>/leader` and `<ns>/resign` listed as prefixes: exact keys kept (no other key of ours starts so).
  const listings = await Promise.all([registry.list(layout.election), registry.list(layout.leader), registry.list(layout.resign)]);
  return leaderInfoFrom(layout, listings.flatMap((l) => l.kvs));
}

/** {@link leaderInfo} of any listing that holds the election keys, `<ns>/leader` and `<ns>/resign` (other keys are ignored). */
export function leaderInfoFrom(layout: KeyLayout, kvs: readonly KeyValue[]): LeaderInfo {
  const wanted = kvs.filter((kv) => kv.key.startsWith(layout.election) || kv.key === layout.leader || kv.key === layout.resign);
  return leaderInfo(ClusterState.fromList(layout, wanted));
}

/** Nobody campaigns, so nobody can be asked to resign. */
export class NoLeaderError extends Error {
  override name = 'NoLeaderError';
  constructor() {
    super('no leader: no agent campaigns in this namespace');
  }
}

/** The leader is not (or no longer) the one of the term asked: nothing was requested. */
export class LeaderTermError extends Error {
  override name = 'LeaderTermError';
  constructor(
    readonly asked: number,
    readonly current: { leaderId: string; term: number } | null,
  ) {
    super(
      current
        ? `the leader is ${current.leaderId} in term ${current.term}, not term ${asked}: nothing was asked (leadership moved already)`
        : `no leader holds term ${asked} any more: nothing was asked`,
    );
  }
}

export interface ResignOptions {
  /** Only ask the leader of this term (its fencing revision); default: whoever leads now. */
  term?: number;
  actor?: string;
  reason?: string;
  /** Where from, for the audit trail. */
  source?: string;
}

/** What a resign request asked of whom; the audit entry written with it. */
export interface ResignResult {
  leaderId: string;
  term: number;
  audit: AuditEntry;
}

/**
 * Asks the current leader (or the leader of `options.term`) to hand over: writes `<ns>/resign` and
 * its audit entry in one transaction that holds only while the leader's election key still has that
 * create revision. Resolves once the request is stored; the handover itself is the leader's
 * (watch `readLeader` for a new fencing revision).
 *
 * @throws NoLeaderError, LeaderTermError
 */
export async function requestResign(registry: Registry, layout: KeyLayout, options: ResignOptions = {}): Promise<ResignResult> {
  if (options.reason !== undefined && options.reason.length > MAX_REASON) throw new RangeError(`reason: expected at most ${MAX_REASON} characters`);
  if (options.term !== undefined && !(Number.isSafeInteger(options.term) && options.term > 0)) throw new RangeError('term: expected a positive integer');
  const { kvs } = await registry.list(layout.election);
  const leader = ClusterState.fromList(layout, kvs).leaderCandidate();
  if (!leader) {
    if (options.term !== undefined) throw new LeaderTermError(options.term, null);
    throw new NoLeaderError();
  }
  const term = leader.createRevision;
  if (options.term !== undefined && options.term !== term) throw new LeaderTermError(options.term, { leaderId: leader.serviceId, term });
  const now = Date.now();
  const actor = (options.actor ?? 'unknown').slice(0, RECORD_LIMITS.actor);
  const request: ResignRequest = { term, actor, at: now, ...(options.reason !== undefined ? { reason: options.reason } : {}) };
  const audit: AuditEntry = {
    id: auditId(now),
    at: now,
    actor,
    action: 'resign',
    serviceId: leader.serviceId,
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
    ...(options.source !== undefined ? { source: options.source.slice(0, RECORD_LIMITS.actor) } : {}),
    changed: true,
    term,
  };
  const res = await registry.txn(
    [{ key: leader.key, target: 'createRevision', equals: term }],
    [
      // Under the leader's lease: a request its leader never saw goes with it.
      { type: 'put', key: layout.resign, value: JSON.stringify(request), lease: leader.lease },
      { type: 'put', key: layout.audit + audit.id, value: JSON.stringify(audit) },
    ],
  );
  if (!res.succeeded) {
    // The key went between the read and the write: leadership moved by itself.
    const now2 = ClusterState.fromList(layout, (await registry.list(layout.election)).kvs).leaderCandidate();
    throw new LeaderTermError(term, now2 ? { leaderId: now2.serviceId, term: now2.createRevision } : null);
  }
  return { leaderId: leader.serviceId, term, audit };
}
