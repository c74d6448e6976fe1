/**
 * What an operator's intent for this very instance does to the instance itself, beyond its record:
 * `--start-disabled` (the intent written before the first record), the drain after a disable
 * (drain.ts) and, with `--instance-maintenance-hook`, the instance's own maintenance switch
 * (maintenance-hook.ts). The last two follow the intent as the cluster view shows it; the agent tells
 * this file when that intent may have changed.
 *
 * @module
 */
import { adminStateOf } from '../cluster/codec.js';
import { applyStartDisabled } from '../cluster/intent.js';
import type { KeyLayout } from '../cluster/keys.js';
import type { Registry } from '../registry/types.js';
import type { AdminIntent, InstanceMaintenanceInfo } from '../types.js';
import type { Logger } from '../util/logger.js';
import { DrainWatcher } from './drain.js';
import { InstanceMaintenanceHook } from './maintenance-hook.js';

export interface InstanceAdminOptions {
  serviceId: string;
  layout: KeyLayout;
  registry: () => Registry;
  /** This instance's intent in the cluster view; `listed` is false until the view has listed once (the intent is unknown). */
  intent: () => AdminIntent | undefined;
  listed: () => boolean;
  /** `--start-disabled`. */
  startDisabled: boolean;
  /** `--drain-probe-url`, if any. */
  drainProbeUrl?: string;
  /** The instance's base URL for the maintenance hook; undefined: no hook. */
  maintenanceUrl?: string;
  /** Milliseconds allowed for each call to the instance (the health check's timeout). */
  timeoutMs: number;
  /** Milliseconds between the hook's verifications (the health check's interval). */
  recheckMs: number;
  /** The hook's reported state changed (it is published in the record). */
  changed: () => void;
  logger: Logger;
}

export class InstanceAdmin {
  /** Watches this instance's own drain after a disable (see drain.ts). */
  private drain: DrainWatcher | undefined;
  private hook: InstanceMaintenanceHook | undefined;
  /** `--start-disabled` was settled (written, or an intent already existed) by this process. */
  private startDisabledDone = false;

  constructor(private readonly o: InstanceAdminOptions) {}

  /** Runs before each lease grant: `--start-disabled` writes its intent once, before any record of ours exists. */
  async settleStartDisabled(): Promise<void> {
    if (!this.o.startDisabled || this.startDisabledDone) return;
    const { serviceId: id, logger } = this.o;
    // Before the first record exists, so the instance is never routable for a moment.
    const wrote = await applyStartDisabled(this.o.registry(), this.o.layout, id, `agent:${id}`);
    this.startDisabledDone = true;
    logger.info(
      { event: wrote ? 'start_disabled.applied' : 'start_disabled.skipped', serviceId: id },
      wrote ? `started disabled (reason start-disabled); enable with: services enable ${id}` : 'start-disabled: an operator intent already exists for this id; it stands',
    );
  }

  /** Ready to follow drains (before registration: an intent seen meanwhile is followed at once). */
  startDrain(): void {
    const { serviceId, layout, registry, drainProbeUrl: probeUrl, timeoutMs: probeTimeoutMs, logger } = this.o;
    this.drain = new DrainWatcher({ serviceId, layout, registry, actor: `agent:${serviceId}`, probeUrl, probeTimeoutMs, logger });
  }

  /** Starts the maintenance hook, when configured. */
  startHook(): void {
    if (this.o.maintenanceUrl === undefined) return;
    const hook = new InstanceMaintenanceHook({
      baseUrl: this.o.maintenanceUrl,
      // Anything but enabled (disabled, draining, a timed disable) keeps the instance out of service.
      // Until the view has listed once the intent is unknown, and the hook waits.
      // Maintenance once the drain is over: while draining, routers stop sending, the instance finishes its work.
      desired: () => {
        if (!this.o.listed()) return undefined;
        return adminStateOf(this.o.intent()) === 'disabled' ? 'maintenance' : 'serving';
      },
      timeoutMs: this.o.timeoutMs,
      recheckMs: this.o.recheckMs,
      logger: this.o.logger,
    });
    hook.on('change', () => this.o.changed());
    this.hook = hook;
    hook.start();
  }

  /** The view listed afresh (or registration is done): a drain in progress is resumed. */
  resync(): void {
    this.drain?.update(this.o.intent());
  }

  /** This instance's intent or record changed: the drain and the hook look again. */
  intentChanged(): void {
    this.drain?.update(this.o.intent());
    this.hook?.poke();
  }

  stopDrain(): void {
    this.drain?.stop();
  }

  /** The instance keeps whatever mode it is in: stopping the agent is not an operator's intent. */
  stopHook(): Promise<void> | undefined {
    return this.hook?.stop();
  }

  /** The maintenance hook's state, when it is on. */
  info(): InstanceMaintenanceInfo | undefined {
    return this.hook?.info();
  }
}
