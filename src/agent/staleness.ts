/**
 * Whether this agent's view of the cluster can be trusted: it is stale when the view's watch is down
 * or the registry does not answer the agent's own calls (registration, keep-alives, record writes).
 * An answer is also proof that the view, watching on the same connection, is current. Each change is
 * logged once and reported (the agent emits `stale`).
 *
 * @module
 */
import type { ClusterView } from '../cluster/view.js';
import type { Logger } from '../util/logger.js';

export interface StalenessOptions {
  /** The cluster view, once the agent has one. */
  view: () => ClusterView | undefined;
  changed: (stale: boolean) => void;
  logger: Logger;
}

export class Staleness {
  private answering = false;
  private contactAt: number | null = null;
  private lastStale = true;
  private everCurrent = false;

  constructor(private readonly o: StalenessOptions) {}

  /** The registry answers our own calls. */
  get reachable(): boolean {
    return this.answering;
  }

  /** Epoch ms of the registry's last answer to this agent (registration or keep-alive), null before the first. */
  get lastContact(): number | null {
    return this.contactAt;
  }

  /** The view is stale when the watch is down or our own keep-alives are not getting through. */
  get stale(): boolean {
    const view = this.o.view();
    return !view || view.stale || !this.answering;
  }

  /** The registry answered: proof that our view (watching on the same connection) is current. */
  contact(): void {
    this.contactAt = Date.now();
    this.o.view()?.noteContact(this.contactAt);
  }

  setReachable(reachable: boolean): void {
    if (reachable === this.answering) return;
    this.answering = reachable;
    this.check();
  }

  /** Logs and reports a change (the view's watch went down or came back, or reachability changed). */
  check(): void {
    const stale = this.stale;
    if (stale === this.lastStale) return;
    this.lastStale = stale;
    this.o.logger[stale ? 'warn' : 'info'](
      { event: stale ? 'view.stale' : 'view.current' },
      stale ? 'cluster view is stale: the registry is not answering' : `cluster view is current${this.everCurrent ? ' again' : ''}`,
    );
    if (!stale) this.everCurrent = true;
    this.o.changed(stale);
  }
}
