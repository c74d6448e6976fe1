/**
 * The local instance's health as this agent publishes it: the health checker's results passed
 * through the flap damper (flap-damper.ts), so a flapping instance is held `unhealthy` with an
 * explanation. A hold outlives the lease and the process: it is persisted, without a lease, at
 * `<ns>/health/<id>` whenever it starts, changes or ends, and resumed by a restarted agent.
 *
 * @module
 */
import { parseHealthState } from '../cluster/codec.js';
import type { Registry } from '../registry/types.js';
import type { HealthCheckSettings, HealthInfo } from '../types.js';
import type { Logger } from '../util/logger.js';
import { errMessage, withDeadline } from './calls.js';
import { FlapDamper, flapReason } from './flap-damper.js';
import type { HealthCheckResultEvent } from './health-checker.js';

export interface PublishedHealthOptions {
  serviceId: string;
  /** Where the hold is persisted, `<ns>/health/<id>`. */
  holdKey: string;
  registry: () => Registry;
  /** Flap damping settings, in seconds; threshold 0 turns damping off. */
  flap: HealthCheckSettings['flap'];
  logger: Logger;
}

export class PublishedHealth {
  private health: HealthInfo = {
    status: 'starting',
    responseTime: null,
    lastCheck: null,
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
  };
  /** Flap damping of the local instance's health (a no-op with threshold 0). */
  private readonly damper: FlapDamper;
  /** Writes of the flap hold, serialised; `flapDirty` when the last one failed. */
  private flapPersisting: Promise<void> = Promise.resolve();
  private flapDirty = false;

  constructor(private readonly o: PublishedHealthOptions) {
    this.damper = new FlapDamper({ threshold: o.flap.threshold, windowMs: o.flap.window * 1000, holdDownMs: o.flap.holdDown * 1000 });
  }

  get current(): HealthInfo {
    return this.health;
  }

  /** Overrides fields of the published health (the agent's stop: draining, then stopped). */
  patch(change: Partial<HealthInfo>): void {
    this.health = { ...this.health, ...change };
  }

  /**
   * Takes a probe result: the damper counts its change, may hold the instance down or release it,
   * and the hold is persisted when it changed. Returns whether it changed (entered, updated or released).
   */
  take(r: HealthCheckResultEvent): boolean {
    const { logger, serviceId } = this.o;
    const t = r.transition;
    let flapChanged = false;
    if (t.changed) {
      const o = this.damper.change(t.previous, t.status, t.at);
      if (o.entered) {
        logger.warn(
          { event: 'health.flapping', serviceId, flapping: this.damper.info() },
          `health ${flapReason(this.damper.info()!)}`,
        );
      }
      flapChanged = o.entered || o.updated;
    }
    if (!t.ignored && this.damper.evaluate(t.at).released) {
      flapChanged = true;
      logger.info({ event: 'health.flap_released', serviceId, status: r.health.status }, `flap hold released: stable for ${this.damper.holdDownMs / 1000}s`);
    }
    this.health = this.damped(r.health);
    if (flapChanged || this.flapDirty) this.persistFlapHold();
    return flapChanged;
  }

  /** Resumes a flap hold persisted by a previous run of this agent (it outlives the lease). */
  async restore(): Promise<void> {
    if (!this.damper.enabled) return;
    const { holdKey: key, logger, serviceId } = this.o;
    try {
      const kv = await withDeadline(this.o.registry().get(key), 2000);
      if (!kv) return;
      const parsed = parseHealthState(kv.value, serviceId);
      if (!parsed.ok) {
        logger.warn({ event: 'registry.skipped' }, `skipping ${key}: ${parsed.error}`);
        return;
      }
      if (this.damper.restore(parsed.value.flapping, Date.now())) {
        this.health = this.damped(this.health);
        logger.warn({ event: 'health.flapping', serviceId, flapping: this.damper.info(), restored: true }, `health ${flapReason(this.damper.info()!)} (resumed after restart)`);
      } else {
        // The hold ran out while we were away: forget it.
        await withDeadline(this.o.registry().delete(key), 2000).catch(() => undefined);
      }
    } catch (err) {
      logger.warn({ event: 'health.flap_restore_failed', err: errMessage(err) }, `cannot read a persisted flap hold: ${errMessage(err)}`);
    }
  }

  /** The probe-level health as published: held `unhealthy` with an explanation while flapping. */
  private damped(raw: HealthInfo): HealthInfo {
    const info = this.damper.info();
    const health: HealthInfo = { ...raw, status: this.damper.apply(raw.status) };
    delete health.flapping;
    if (info) {
      health.flapping = info;
      health.message = `${flapReason(info)}; checks now ${raw.status === 'healthy' ? 'pass' : raw.status}${raw.message ? ` (${raw.message})` : ''}`;
    }
    return health;
  }

  /** Writes the hold (or its end), without a lease, so it survives a restart. */
  private persistFlapHold(): void {
    this.flapDirty = false;
    this.flapPersisting = this.flapPersisting.then(async () => {
      const { holdKey: key, serviceId } = this.o;
      const info = this.damper.info();
      try {
        if (info) await this.o.registry().put(key, JSON.stringify({ serviceId, flapping: info }));
        else await this.o.registry().delete(key);
      } catch (err) {
        this.flapDirty = true;
        this.o.logger.warn({ event: 'health.flap_persist_failed', err: errMessage(err) }, `flap hold not saved yet: ${errMessage(err)}; will retry`);
      }
    });
  }
}
