import { z } from 'zod';
import { SERVICE_STATUSES, type AdminIntent, type AuditEntry, type ServiceRecord } from '../types.js';

/**
 * Registry data is input like any other: another version, a person with etcdctl or a broken writer
 * can put anything under the namespace. Every value is parsed here; a bad one is reported and skipped.
 */

const status = z.enum(SERVICE_STATUSES);

const storedRecord = z.object({
  id: z.string().min(1),
  name: z.string(),
  host: z.string(),
  port: z.number().int().min(0).max(65535),
  version: z.string().default(''),
  tags: z.array(z.string()).default([]),
  region: z.string().default(''),
  zone: z.string().default(''),
  status,
  role: z.enum(['leader', 'follower']).default('follower'),
  enabled: z.boolean().default(true),
  health: z
    .object({
      status,
      responseTime: z.number().nullable().default(null),
      lastCheck: z.number().nullable().default(null),
      consecutiveFailures: z.number().int().default(0),
      consecutiveSuccesses: z.number().int().default(0),
      message: z.string().optional(),
    })
    .optional(),
  registeredAt: z.number().default(0),
  updatedAt: z.number().default(0),
  healthUrl: z.string().default(''),
  apiUrl: z.string().optional(),
  metadata: z.record(z.string(), z.string()).default({}),
});

const adminIntent = z.object({
  enabled: z.boolean(),
  reason: z.string().optional(),
  actor: z.string().default('unknown'),
  at: z.number(),
  expiresAt: z.number().optional(),
});

const auditEntry = z.object({
  id: z.string(),
  at: z.number(),
  actor: z.string(),
  action: z.enum(['enable', 'disable']),
  serviceId: z.string(),
  reason: z.string().optional(),
  source: z.string().optional(),
  changed: z.boolean(),
});

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

function parseJson<T>(schema: z.ZodType<T>, raw: string): ParseResult<T> {
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  const parsed = schema.safeParse(data);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, error: `${issue.path.join('.') || 'value'}: ${issue.message}` };
}

/**
 * Parses a stored service record. `enabled` and `isHealthy` are recomputed by the view from the
 * admin intent, so a record written before a disable cannot override it.
 */
export function parseServiceRecord(raw: string, keyId: string): ParseResult<ServiceRecord> {
  const parsed = parseJson(storedRecord, raw);
  if (!parsed.ok) return parsed;
  const r = parsed.value;
  if (r.id !== keyId) return { ok: false, error: `id "${r.id}" does not match its key "${keyId}"` };
  const health = r.health ?? {
    status: r.status,
    responseTime: null,
    lastCheck: null,
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
  };
  return {
    ok: true,
    value: { ...r, health, isHealthy: r.status === 'healthy' && r.enabled },
  };
}

export function parseAdminIntent(raw: string): ParseResult<AdminIntent> {
  return parseJson(adminIntent, raw);
}

export function parseAuditEntry(raw: string): ParseResult<AuditEntry> {
  return parseJson(auditEntry, raw);
}

/** What the agent writes: the record without the derived `isHealthy`. */
export function encodeServiceRecord(record: ServiceRecord): string {
  const { isHealthy: _derived, ...stored } = record;
  return JSON.stringify(stored);
}

/** Applies operator intent to a record: disabled means not healthy for routing. */
export function withIntent(record: ServiceRecord, intent: AdminIntent | undefined, now = Date.now()): ServiceRecord {
  const active = intent && (intent.expiresAt === undefined || intent.expiresAt > now) ? intent : undefined;
  const enabled = active ? active.enabled : true;
  const out: ServiceRecord = { ...record, enabled, isHealthy: record.status === 'healthy' && enabled };
  if (!enabled && active?.reason) out.disabledReason = active.reason;
  else delete out.disabledReason;
  return out;
}
