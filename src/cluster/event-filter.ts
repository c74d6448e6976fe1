/**
 * Which cluster events concern the services an operator selected (`events --service`, `--region`,
 * `-l/--label`, `--tag`), and where `events --since` starts.
 *
 * An event concerns one service: its `serviceId`, or for `leaderElected` the new leader (and, for
 * `--service`, the previous one too). Selecting by region, tags or metadata needs that service's
 * record, and `serviceEnabled`/`serviceDisabled` (and a `serviceLeft` without one) carry none: the
 * filter remembers the records it has seen (a listing first, then every event that carries one),
 * so the same question gets the same answer whatever the event type.
 *
 * @module
 */
import type { ClusterEvent, ServiceRecord } from '../types.js';
import { parseDuration } from '../util/duration.js';
import { MAX_EPOCH_MS } from '../util/time.js';
import { matchesSelection, type Selection } from './selector.js';

export interface EventSelection extends Selection {
  /** Only events about this service id. */
  serviceId?: string;
  /** Only events about services in this region. */
  region?: string;
}

/** Whether {@link EventFilter} needs the services' records (a region, tag or label to match). */
export function needsRecords(selection: EventSelection): boolean {
  return selection.region !== undefined || (selection.tags?.length ?? 0) > 0 || (selection.labels?.length ?? 0) > 0;
}

/** Filters a stream of events by the service each one concerns (see the module). */
export class EventFilter {
  /** Last known record per id, for events that carry none. Bounded by the cluster's size. */
  private readonly records = new Map<string, ServiceRecord>();

  constructor(private readonly selection: EventSelection) {}

  /** Records known before the stream starts (a listing), so that the first enable of a service is judged too. */
  remember(records: readonly ServiceRecord[]): void {
    for (const r of records) this.records.set(r.id, r);
  }

  /** Whether the event concerns a selected service. Call it for every event, in order: it learns records from them. */
  matches(event: ClusterEvent): boolean {
    if ('service' in event && event.service) this.records.set(event.service.id, event.service);
    const s = this.selection;
    if (event.type === 'leaderElected') {
      if (s.serviceId !== undefined && event.leaderId !== s.serviceId && event.previousLeaderId !== s.serviceId) return false;
      return !needsRecords(s) || (event.leaderId !== null && this.recordMatches(event.leaderId));
    }
    if (s.serviceId !== undefined && event.serviceId !== s.serviceId) return false;
    const matched = !needsRecords(s) || this.recordMatches(event.serviceId);
    // A service that left is no longer there to ask about; its last record answers the event above.
    if (event.type === 'serviceLeft') this.records.delete(event.serviceId);
    return matched;
  }

  private recordMatches(id: string): boolean {
    const record = this.records.get(id);
    if (!record) return false;
    if (this.selection.region !== undefined && record.region !== this.selection.region) return false;
    return matchesSelection(record, this.selection);
  }
}

/** What `--since` takes, for error messages. */
export const SINCE_EXPECTATION = 'a duration back from now (e.g. 10m, 2h) or an ISO time (e.g. 2026-12-04T12:00:00Z)';

/**
 * `--since`: a duration back from `now` (`10m`, `90`, as durations are read everywhere) or an ISO
 * 8601 time with a date (`2026-12-04T12:00:00Z`). Returns epoch ms. @throws Error saying what was expected
 */
export function parseSince(input: string, now = Date.now()): number {
  const text = input.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const at = Date.parse(text);
    if (!Number.isFinite(at) || at < 0 || at > MAX_EPOCH_MS) throw new Error(`expected ${SINCE_EXPECTATION}`);
    if (at > now) throw new Error(`expected a time in the past; ${text} is ahead of this machine's clock`);
    return at;
  }
  let seconds: number;
  try {
    seconds = parseDuration(text);
  } catch {
    throw new Error(`expected ${SINCE_EXPECTATION}`);
  }
  return Math.max(0, now - Math.round(seconds * 1000));
}
