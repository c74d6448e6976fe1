/**
 * Publish-on-change of this instance's record at `<ns>/services/<id>`, under the session's lease.
 * Anything that may change the record (a health result, leadership, an operator's intent, the
 * maintenance hook, the API's address) calls {@link RecordPublisher.publish}; a write happens only
 * when what readers care about changed (status, role, enabled, identity: not timestamps or probe
 * figures), or when the periodic refresh is due, and writes are serialised. A write that fails is
 * kept pending and retried after the next keep-alive.
 *
 * @module
 */
import { encodeServiceRecord } from '../cluster/codec.js';
import { LeaseLostError, type Registry, type TxnOp } from '../registry/types.js';
import type { ServiceRecord, ServiceStatus } from '../types.js';
import type { Logger } from '../util/logger.js';
import { errMessage } from './calls.js';
import type { Session } from './lease-session.js';

export interface RecordPublisherOptions {
  /** The record's key, `<ns>/services/<id>`. */
  key: string;
  registry: () => Registry;
  /** The record as it would be published now under `session` (with `status`, when given, instead of the health's). */
  record: (session: Session, status?: ServiceStatus) => ServiceRecord;
  /** The live session, if registered: nothing is published without one. */
  session: () => Session | undefined;
  /** The agent is running (not idle, stopping or stopped). */
  running: () => boolean;
  /** Seconds after which an unchanged record is written again (fresh probe figures); 0 = never. */
  refreshInterval: number;
  /** A write failed while the lease lives: the registry is not answering. */
  unreachable: () => void;
  logger: Logger;
}

/** A record encoded for a write the caller makes (in a transaction of its own). */
export interface PreparedRecord {
  op: Extract<TxnOp, { type: 'put' }>;
  /** The write went through: it is what readers now see. */
  written(): void;
}

export class RecordPublisher {
  private publishing: Promise<void> = Promise.resolve();
  private lastPublished = '';
  private lastPublishAt = 0;
  private pending = false;

  constructor(private readonly o: RecordPublisherOptions) {}

  /** A change is waiting to be published (it came without a session, or its write failed). */
  get dirty(): boolean {
    return this.pending;
  }

  /** The periodic refresh of an unchanged record is due. */
  refreshDue(): boolean {
    const every = this.o.refreshInterval;
    return every > 0 && Date.now() - this.lastPublishAt >= every * 1000;
  }

  /** Publishes the record if it changed in a way readers care about; writes are serialised. */
  publish(): void {
    this.pending = true;
    this.publishing = this.publishing.then(async () => {
      const session = this.o.session();
      if (!session || !this.o.running() || !this.pending) return;
      this.pending = false;
      const record = this.o.record(session);
      if (!this.refreshDue() && stableForm(record) === stableForm(this.lastPublishedRecord())) return;
      try {
        await this.put(session);
      } catch (err) {
        if (err instanceof LeaseLostError) {
          // Lease gone: the next renew tick finds out and re-registers with the current record.
          this.pending = true;
          return;
        }
        this.pending = true;
        this.o.unreachable();
        this.o.logger.warn({ event: 'publish.failed', err: errMessage(err) }, `record update failed: ${errMessage(err)}; will retry`);
      }
    });
  }

  /** After a keep-alive got through: what is pending, or a refresh that is due, is published now. */
  publishIfDue(): void {
    if (this.pending || this.refreshDue()) this.publish();
  }

  /** Writes the record under the session's lease now, changed or not. */
  put(session: Session, status?: ServiceStatus): Promise<void> {
    const prepared = this.prepare(session, status);
    return this.o.registry().put(prepared.op.key, prepared.op.value, { lease: session.lease.id }).then(() => prepared.written());
  }

  /** The record's put for a transaction of the caller's (registration's campaign, the stop's hand-over). */
  prepare(session: Session, status?: ServiceStatus): PreparedRecord {
    const encoded = encodeServiceRecord(this.o.record(session, status));
    return {
      op: { type: 'put', key: this.o.key, value: encoded, lease: session.lease.id },
      written: () => {
        this.lastPublished = encoded;
        this.lastPublishAt = Date.now();
      },
    };
  }

  private lastPublishedRecord(): Partial<ServiceRecord> {
    try {
      return JSON.parse(this.lastPublished) as Partial<ServiceRecord>;
    } catch {
      return {};
    }
  }
}

/** What decides whether a record needs a write: everything but timestamps and probe figures. */
function stableForm(r: Partial<ServiceRecord>): string {
  const { updatedAt: _u, health, ...rest } = r;
  return JSON.stringify({ ...rest, health: health ? { status: health.status, flapping: health.flapping } : undefined });
}
