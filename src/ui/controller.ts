/**
 * Wires a live source and a cluster client to a {@link DashboardState}: events change the state at
 * once but reach the screen in batched frames (a few per second, so a burst of a thousand events is
 * one redraw), keys redraw at once, and actions (detail, enable/disable) go through the CLI's own
 * library calls.
 *
 * @module
 */
import type { MinHealthy } from '../cluster/capacity.js';
import type { ClusterClient } from '../cli/cluster-contract.js';
import { capacityRefusal, describeError } from '../cli/errors.js';
import { describeService } from '../cli/service-details.js';
import type { DashboardAction, DashboardState, KeyPress } from './dashboard-state.js';
import type { LiveSink, LiveSource } from './live-source.js';

export interface DashboardControllerOptions {
  state: DashboardState;
  source: LiveSource;
  /** For actions: detail, enable/disable. Not closed by the controller. */
  client: ClusterClient;
  /** Who the audit trail names for enable/disable (the CLI's `cli:<user>`). */
  actor?: string;
  /** The capacity guard's minimum for disables through etcd (an agent applies its own). */
  minHealthy?: MinHealthy;
  /** Most frames per second for data-driven redraws (default 8). Keys redraw at once. */
  fps?: number;
  /** Milliseconds allowed for following a service's own agent for its history (default 2000). */
  timeoutMs?: number;
  now?: () => number;
}

/** The glue between data, keys and the screen. The screen subscribes; everything else is pushed in. */
export class DashboardController {
  readonly state: DashboardState;
  /** Resolves when the user quits (q, Ctrl-C) or {@link quit} is called. */
  readonly finished: Promise<void>;
  private resolveFinished!: () => void;
  private frame = 0;
  private readonly listeners = new Set<() => void>();
  private frameTimer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private lastFrameAt = 0;
  private readonly frameMs: number;
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private started = false;
  private closed = false;

  constructor(private readonly options: DashboardControllerOptions) {
    this.state = options.state;
    this.frameMs = Math.round(1000 / Math.max(1, Math.min(60, options.fps ?? 8)));
    this.now = options.now ?? Date.now;
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  /** For `useSyncExternalStore`: called after every frame. */
  readonly subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** For `useSyncExternalStore`: the frame number, which changes when there is something new to draw. */
  readonly getFrame = (): number => this.frame;

  /** What a source reports into. */
  readonly sink: LiveSink = {
    snapshot: (services, leaderId) => {
      this.state.replaceAll(services, leaderId, this.now());
      this.invalidate();
    },
    event: (e) => {
      this.state.applyEvent(e, this.now());
      this.invalidate();
    },
    connection: (update) => {
      this.state.setConnection(update, this.now());
      this.invalidate();
    },
    notice: (message, tone) => {
      this.state.notice(message, tone, this.now());
      this.invalidate();
    },
  };

  /** Starts the live source and the once-a-second tick that keeps the ages current. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.options.source.start(this.sink, this.abort.signal);
    this.ticker = setInterval(() => this.invalidate(), 1000);
  }

  /** Handles keys: the state decides, the screen redraws now, the actions (if any) run after. */
  async press(input: string, key: KeyPress = {}): Promise<void> {
    const actions = this.state.pressKeys(input, key, this.now());
    this.flush();
    for (const action of actions) await this.perform(action);
  }

  /** Asks for a redraw at the next frame (at most `fps` a second). */
  invalidate(): void {
    if (this.frameTimer || this.closed) return;
    const wait = Math.max(0, this.lastFrameAt + this.frameMs - Date.now());
    this.frameTimer = setTimeout(() => this.flush(), wait);
  }

  /** Redraws now. */
  flush(): void {
    clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
    if (this.closed) return;
    this.lastFrameAt = Date.now();
    this.frame += 1;
    for (const l of this.listeners) l();
  }

  quit(): void {
    this.resolveFinished();
  }

  /** Stops the source and the timers. The client is the caller's to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.frameTimer);
    clearInterval(this.ticker);
    this.abort.abort();
    await this.options.source.close();
    this.resolveFinished();
  }

  private async perform(action: DashboardAction): Promise<void> {
    switch (action.type) {
      case 'quit':
        this.quit();
        return;
      case 'loadDetail':
        return this.loadDetail(action.serviceId);
      case 'setEnabled':
        return this.setEnabled(action.serviceId, action.enabled, action.reason, action.force);
    }
  }

  private async loadDetail(id: string): Promise<void> {
    try {
      const details = await describeService(this.options.client, id, {
        auditLimit: 20,
        timeoutMs: this.options.timeoutMs ?? 2000,
        onWarning: (m) => this.sink.notice(m, 'warn'),
      });
      this.state.detailLoaded(id, details);
    } catch (err) {
      this.state.detailFailed(id, oneLine(err));
    }
    this.flush();
  }

  private async setEnabled(id: string, enabled: boolean, reason: string | undefined, force?: boolean): Promise<void> {
    const verb = enabled ? 'enable' : 'disable';
    try {
      const result = await this.options.client.setEnabled(id, enabled, {
        ...(reason !== undefined ? { reason } : {}),
        ...(this.options.actor !== undefined ? { actor: this.options.actor } : {}),
        ...(force ? { force: true } : {}),
        ...(this.options.minHealthy !== undefined ? { minHealthy: this.options.minHealthy } : {}),
      });
      const done = enabled ? 'enabled' : 'disabled';
      const said = result.changed
        ? `${id} ${done}${reason ? ` (reason: ${reason})` : ''}`
        : result.reasonUpdated
          ? `${id} already ${done}; reason updated (reason: ${reason ?? ''})`
          : `${id} already ${done} (no change)`;
      this.state.say(said, 'good', this.now());
      if (this.state.detail?.serviceId === id) void this.loadDetail(id);
    } catch (err) {
      // The capacity guard said no: show why and offer to force it (its own y/N).
      const guarded = !enabled && !force ? capacityRefusal(err) : undefined;
      if (guarded !== undefined) this.state.refused(id, reason, guarded, this.now());
      else this.state.say(`could not ${verb} ${id}: ${oneLine(err)}`, 'bad', this.now());
    } finally {
      this.state.busy = undefined;
      this.flush();
    }
  }
}

/** The CLI's one-line wording of an error, with its hint. */
function oneLine(err: unknown): string {
  const d = describeError(err);
  const hint = d.suggestions[0];
  return `${d.message.split('\n')[0]}${hint ? ` (${hint})` : ''}`;
}
