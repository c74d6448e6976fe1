/**
 * The capacity guard: a disable must not leave a region or a zone with fewer healthy enabled
 * instances than a minimum (by default one, so a zone is never emptied by accident). Pure maths on
 * records as readers see them (intent applied); the registry side is in `admin.ts`.
 *
 * @module
 */
import type { ServiceRecord } from '../types.js';

/** A minimum of healthy enabled instances per region and per zone: a count, or a percentage of the instances there. */
export type MinHealthy = { count: number } | { percent: number };

/** The default: at least one healthy enabled instance left in every region and zone. */
export const DEFAULT_MIN_HEALTHY: MinHealthy = { count: 1 };

/** What {@link parseMinHealthy} accepts, for error messages. */
export const MIN_HEALTHY_EXPECTATION = 'a whole number (e.g. 1) or a percentage 0-100 (e.g. 50%)';

/** Parses `2` or `50%`. @throws RangeError naming what was expected. */
export function parseMinHealthy(raw: string | number): MinHealthy {
  const text = String(raw).trim();
  const m = /^(\d{1,9})(%?)$/.exec(text);
  if (!m) throw new RangeError(`min-healthy-per-zone: expected ${MIN_HEALTHY_EXPECTATION}, got ${JSON.stringify(text)}`);
  const n = Number(m[1]);
  if (m[2]) {
    if (n > 100) throw new RangeError(`min-healthy-per-zone: expected ${MIN_HEALTHY_EXPECTATION}, got ${JSON.stringify(text)}`);
    return { percent: n };
  }
  return { count: n };
}

export function formatMinHealthy(min: MinHealthy): string {
  return 'percent' in min ? `${min.percent}%` : String(min.count);
}

/** The minimum for a group of `total` instances: a percentage rounds up (50% of 3 is 2). */
export function requiredHealthy(min: MinHealthy, total: number): number {
  return 'percent' in min ? Math.ceil((min.percent * total) / 100 - 1e-9) : min.count;
}

/** One group (a region, or a zone of a region) the disable would leave below its minimum. */
export interface CapacityShortfall {
  scope: 'region' | 'zone';
  /** The region's name, or the zone's. */
  name: string;
  region: string;
  /** Healthy enabled instances there after the disable. */
  after: number;
  /** The minimum that applies there. */
  minimum: number;
  /** Instances registered there (any status). */
  total: number;
}

export interface CapacityVerdict {
  ok: boolean;
  /** False when the target is not counted as capacity (unhealthy, starting, already disabled or draining, not registered). */
  reducesCapacity: boolean;
  shortfalls: CapacityShortfall[];
  /** The healthy enabled instances the verdict counted on (their intents are what a transaction can guard). */
  counted: string[];
}

/**
 * Would disabling `targetId` leave its region or zone below `min` healthy enabled instances?
 * A target that is not healthy and enabled now carries no traffic, so disabling it is always allowed.
 * Zones are per region (`us-east/a` and `eu-west/a` are different zones); an empty region or zone
 * name is a group like any other.
 */
export function checkCapacity(services: readonly ServiceRecord[], targetId: string, min: MinHealthy): CapacityVerdict {
  const target = services.find((s) => s.id === targetId);
  if (!target || !target.isHealthy) return { ok: true, reducesCapacity: false, shortfalls: [], counted: [] };
  const inRegion = services.filter((s) => s.region === target.region);
  const inZone = inRegion.filter((s) => s.zone === target.zone);
  const shortfalls: CapacityShortfall[] = [];
  const groups = [
    { scope: 'zone' as const, name: target.zone, members: inZone },
    { scope: 'region' as const, name: target.region, members: inRegion },
  ];
  for (const g of groups) {
    const healthy = g.members.filter((s) => s.isHealthy).length;
    const after = healthy - 1;
    const minimum = requiredHealthy(min, g.members.length);
    // A region short in the same way as its zone (a count minimum, one zone) adds nothing to say.
    const same = shortfalls.some((s) => s.after === after && s.minimum === minimum);
    if (after < minimum && !same) shortfalls.push({ scope: g.scope, name: g.name, region: target.region, after, minimum, total: g.members.length });
  }
  return { ok: shortfalls.length === 0, reducesCapacity: true, shortfalls, counted: inRegion.filter((s) => s.isHealthy).map((s) => s.id) };
}

/** One line: `zone us-east-1a would have 0 healthy enabled instances (minimum 1)`. */
export function describeShortfall(s: CapacityShortfall): string {
  const where = s.scope === 'zone' ? `zone ${s.name || '(none)'}${s.region ? ` of region ${s.region}` : ''}` : `region ${s.name || '(none)'}`;
  return `${where} would have ${s.after} healthy enabled instance${s.after === 1 ? '' : 's'} (minimum ${s.minimum})`;
}

/** The capacity guard refused a disable. CLI exit 5, API 409. */
export class CapacityError extends Error {
  override name = 'CapacityError';
  constructor(
    readonly serviceId: string,
    readonly shortfalls: CapacityShortfall[],
  ) {
    super(`refusing to disable ${serviceId}: ${shortfalls.map(describeShortfall).join('; ')}; use --force to override`);
  }
}
