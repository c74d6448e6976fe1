/**
 * The API's request and response shapes as zod schemas: one source for request validation, for the
 * OpenAPI document (through `z.toJSONSchema`) and for the contract tests. Field names follow the seed.
 *
 * Response objects are "loose" (extra fields allowed): clients must ignore fields they do not know,
 * so the API can grow without breaking them.
 *
 * @module
 */
import { z } from 'zod';
import { MAX_EPOCH_MS } from '../util/time.js';
import { MAX_DRAIN_TIMEOUT, MAX_INTENT_HORIZON_MS, MAX_REASON } from '../cluster/admin.js';
import { LABEL_EXPECTATION, MAX_SELECTOR_LENGTH, parseLabelSelector, parseTagList, TAG_EXPECTATION } from '../cluster/selector.js';
import { CLUSTER_EVENT_TYPES, SERVICE_STATUSES, type ClusterEventType } from '../types.js';
import { PROMETHEUS_TARGET_KINDS } from './prometheus-sd.js';

/** Registry of the named schemas that become `#/components/schemas/<id>`. */
export const schemaRegistry = z.registry<{ id: string; description?: string }>();

function named<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  schemaRegistry.add(schema, description ? { id, description } : { id });
  return schema;
}

const statusList = SERVICE_STATUSES.join(', ');
const HORIZON_DAYS = MAX_INTENT_HORIZON_MS / (24 * 60 * 60 * 1000);
const eventTypeList = CLUSTER_EVENT_TYPES.join(', ');

export const ServiceStatusSchema = named(
  'ServiceStatus',
  z.enum(SERVICE_STATUSES),
  'The seed\'s five statuses.',
);

export const FlapInfoSchema = named(
  'FlapInfo',
  z.looseObject({
    since: z.number().describe('Epoch ms the hold started.'),
    until: z.number().describe('Epoch ms the hold ends if no further change happens.'),
    lastChange: z.number().describe('Epoch ms of the last raw health change (the stability clock starts there).'),
    transitions: z.number().int().describe('Status changes counted: those that triggered the hold plus any during it.'),
    window: z.number().describe('Seconds the threshold counts changes in.'),
    holdDown: z.number().describe('Seconds without a change that release the hold.'),
    threshold: z.number().int(),
  }),
  'A flap-damping hold: the instance changed health too often and is kept unhealthy until stable.',
);

export const HealthCheckSettingsSchema = named(
  'HealthCheckSettings',
  z.looseObject({
    interval: z.number(),
    timeout: z.number(),
    retries: z.number().int(),
    gracePeriod: z.number(),
    ttl: z.number().describe('Lease TTL (s).'),
    flap: z.looseObject({ threshold: z.number().int(), window: z.number(), holdDown: z.number() }).describe('Flap damping; threshold 0 = off.'),
  }),
  "The instance's health-check settings in seconds, as its agent publishes them.",
);

export const InstanceMaintenanceSchema = named(
  'InstanceMaintenance',
  z.looseObject({
    desired: z.enum(['serving', 'maintenance']),
    actual: z.enum(['serving', 'maintenance', 'unknown']),
    inSync: z.boolean(),
    lastError: z.string().optional(),
    since: z.number(),
  }),
  "The instance's own maintenance switch as the agent drives it (--instance-maintenance-hook).",
);

export const DetectionBudgetSchema = named(
  'DetectionBudget',
  z.looseObject({
    death: z.number().describe('Seconds until a dead agent\'s record disappears (lease TTL).'),
    sick: z.number().describe('Seconds until a sick upstream is marked unhealthy: interval x retries + timeout.'),
    recovery: z.number().describe('Seconds until a recovered upstream is marked healthy: interval + timeout.'),
    gracePeriod: z.number(),
    holdDown: z.number().nullable().describe('Seconds of stability that release a flap hold; null when damping is off.'),
    checks: z
      .array(z.looseObject({ name: z.string(), critical: z.boolean(), sick: z.number(), recovery: z.number() }))
      .optional()
      .describe('With several checks: each one\'s times; sick and recovery are then the worst of the critical ones.'),
  }),
  'Worst-case detection times of an instance.',
);

export const CheckStateSchema = named(
  'CheckState',
  z.looseObject({
    name: z.string(),
    kind: z.enum(['http', 'tcp', 'grpc', 'ttl']),
    target: z.string().describe('What is checked: a URL, host:port[/service], or the ttl check\'s name.'),
    critical: z.boolean().describe('A failing critical check takes the instance out; a non-critical one is only reported.'),
    status: ServiceStatusSchema,
    output: z.string().optional().describe('What the last probe said (at most 256 characters), as of the last write of the record.'),
    lastCheck: z.number().nullable(),
    interval: z.number(),
    timeout: z.number(),
    retries: z.number().int(),
    ttl: z.number().optional().describe('ttl checks: seconds an "alive" report counts for.'),
  }),
  'One of the checks of an instance configured with --check.',
);

export const HealthInfoSchema = named(
  'HealthInfo',
  z.looseObject({
    status: ServiceStatusSchema,
    responseTime: z.number().nullable().describe('Milliseconds the last check took; null before the first check.'),
    lastCheck: z.number().nullable().describe('Epoch ms of the last check; null before the first check.'),
    consecutiveFailures: z.number().int(),
    consecutiveSuccesses: z.number().int(),
    message: z.string().optional().describe('Why the last check failed, or why the status last changed.'),
    flapping: FlapInfoSchema.optional().describe('Present while the instance is held down as flapping (status is then unhealthy).'),
    checks: z.array(CheckStateSchema).optional().describe('Each check, when the instance has its own list (--check); absent with the one default HTTP check.'),
  }),
  'Last known result of the health checks of an instance.',
);

export const ServiceRecordSchema = named(
  'ServiceRecord',
  z.looseObject({
    id: z.string(),
    name: z.string(),
    host: z.string(),
    port: z.number().int().min(0).max(65535),
    version: z.string(),
    tags: z.array(z.string()),
    region: z.string(),
    zone: z.string(),
    status: ServiceStatusSchema,
    role: z.enum(['leader', 'follower']),
    enabled: z.boolean().describe('Operator intent (enable/disable).'),
    health: HealthInfoSchema,
    isHealthy: z.boolean().describe('status is healthy and the service is enabled: whether it should take traffic.'),
    registeredAt: z.number(),
    updatedAt: z.number(),
    healthUrl: z.string(),
    apiUrl: z.string().optional().describe("URL of the agent's HTTP API beside this instance."),
    metadata: z.record(z.string(), z.string()),
    disabledReason: z.string().optional(),
    checks: HealthCheckSettingsSchema.optional(),
    instanceMaintenance: InstanceMaintenanceSchema.optional(),
    adminState: z
      .enum(['enabled', 'draining', 'disabled'])
      .optional()
      .describe('Operator state: enabled; draining (disabled, finishing in-flight work until drainUntil); disabled.'),
    drainUntil: z.number().optional().describe('While draining: epoch ms by which the drain ends at the latest.'),
    disabledUntil: z.number().optional().describe('A timed disable: epoch ms at which it lapses (the leader then re-enables it).'),
  }),
  'One Proxy-Stone instance as every agent sees it.',
);

export const StatusResponseSchema = named(
  'StatusResponse',
  z.looseObject({
    enabled: z.boolean(),
    currentService: z.looseObject({
      id: z.string(),
      name: z.string(),
      host: z.string(),
      port: z.number().int(),
      status: ServiceStatusSchema,
      role: z.enum(['leader', 'follower']),
      region: z.string(),
      zone: z.string(),
      version: z.string(),
      enabled: z.boolean(),
    }),
    isLeader: z.boolean(),
    status: z.enum(['registered', 'registering', 'stopping', 'stopped']),
    leaderId: z.string().nullable(),
    cluster: z
      .looseObject({ name: z.string(), namespace: z.string() })
      // Optional in the schema, so that a newer CLI reads an older agent's answer; this agent always sends it.
      .optional()
      .describe('SERVICE_DISCOVERY_CLUSTER_NAME and the key namespace this agent registers under (absent from older agents).'),
    registry: z.looseObject({ kind: z.string(), endpoints: z.string(), reachable: z.boolean() }),
    view: z.looseObject({ stale: z.boolean(), lastUpdate: z.number(), services: z.number().int(), revision: z.number().int() }),
    lease: z.looseObject({ id: z.string().nullable(), ttl: z.number(), renewedAt: z.number().nullable() }),
  }),
  "This agent and the instance it registers (the seed's fields plus details).",
);

export const ServiceListSchema = named(
  'ServiceList',
  z.looseObject({
    services: z.array(ServiceRecordSchema),
    total: z.number().int(),
    healthy: z.number().int(),
    unhealthy: z.number().int(),
  }),
);

export const TopologySchema = named(
  'ClusterTopology',
  z.looseObject({
    totalServices: z.number().int(),
    healthyServices: z.number().int(),
    unhealthyServices: z.number().int(),
    servicesByRegion: z.record(z.string(), z.number().int()),
    servicesByZone: z.record(z.string(), z.record(z.string(), z.number().int())).describe('region -> zone -> count'),
    servicesByStatus: z.looseObject(Object.fromEntries(SERVICE_STATUSES.map((s) => [s, z.number().int()]))),
    disabledServices: z.number().int(),
    leader: z
      .looseObject({
        id: z.string(),
        name: z.string(),
        role: z.literal('leader'),
        host: z.string().optional(),
        port: z.number().int().optional(),
      })
      .nullable(),
  }),
);

export const HealthHistoryEntrySchema = named(
  'HealthHistoryEntry',
  z.looseObject({
    at: z.number().describe('Epoch ms the probe started.'),
    latencyMs: z.number(),
    ok: z.boolean(),
    httpStatus: z.number().int().optional(),
    error: z.string().optional(),
    output: z.string().optional().describe('What a passing check said ("SERVING", "connected"), with --check.'),
    change: z.looseObject({ from: ServiceStatusSchema, to: ServiceStatusSchema, reason: z.string() }).optional(),
    check: z.string().optional().describe("With --check: the check whose result this is; `change` is then that check's."),
  }),
);

export const ServiceHealthSchema = named(
  'ServiceHealth',
  z.looseObject({
    serviceId: z.string(),
    status: ServiceStatusSchema,
    health: HealthInfoSchema,
    history: z.array(HealthHistoryEntrySchema).describe("Probe history, oldest first; only the agent of that service has it (empty elsewhere)."),
    historyUrl: z.string().optional().describe("Where the service's own agent serves its history, when it advertises an API."),
    budget: DetectionBudgetSchema.optional().describe('Worst-case detection times from the check settings the service publishes.'),
  }),
);

/** Longest note a ttl check report carries (the check's output in the record). */
export const MAX_CHECK_NOTE = 256;

export const CheckNameParamsSchema = z.object({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'expected the name of a ttl check (letters, digits, ".", "_", "-")' }),
  verdict: z.enum(['pass', 'fail'], { error: 'expected pass or fail' }),
});

export const CheckReportBodySchema = named(
  'CheckReportRequest',
  z.strictObject({
    note: z
      .string({ error: `expected a string of at most ${MAX_CHECK_NOTE} characters` })
      .max(MAX_CHECK_NOTE, { error: `expected a string of at most ${MAX_CHECK_NOTE} characters` })
      .optional(),
  }),
  'An optional note, shown as the check\'s output.',
);

export const CheckReportResponseSchema = named(
  'CheckReportResponse',
  z.looseObject({
    check: z.string(),
    ok: z.boolean(),
    at: z.number().describe('Epoch ms of the report; the check counts it until at + its ttl.'),
    note: z.string().optional(),
  }),
  'The report as the agent took it.',
);

export const SetEnabledBodySchema = named(
  'SetEnabledRequest',
  z.strictObject(
    {
      reason: z
        .string({ error: `expected a string of at most ${MAX_REASON} characters` })
        .max(MAX_REASON, { error: `expected a string of at most ${MAX_REASON} characters` })
        .optional(),
      expiresAt: z
        .number({ error: 'expected a time in epoch milliseconds' })
        .int({ error: 'expected a time in epoch milliseconds' })
        .positive({ error: 'expected a time in epoch milliseconds' })
        // Against the clock at each request: the JSON Schema of the document states it in words.
        .refine((at) => at > Date.now(), { error: 'expected a time in the future (epoch milliseconds)' })
        .refine((at) => at <= Date.now() + MAX_INTENT_HORIZON_MS, {
          error: `expected a time in epoch milliseconds at most ${HORIZON_DAYS} days ahead`,
        })
        .optional()
        .describe(
          `Epoch ms after which the intent lapses and the service counts as enabled again: an integer, in the future, at most ${HORIZON_DAYS} days ahead.`,
        ),
      drainTimeout: z
        .number({ error: 'expected seconds (0 or more)' })
        .min(0, { error: 'expected seconds (0 or more)' })
        .max(MAX_DRAIN_TIMEOUT, { error: `expected seconds, at most ${MAX_DRAIN_TIMEOUT}` })
        .optional()
        .describe('Disable only: seconds the instance drains before it counts as disabled (default 30; 0 = none; capped by expiresAt).'),
      force: z
        .boolean({ error: 'expected a boolean' })
        .optional()
        .describe("Disable only: override the capacity guard (the agent's --min-healthy-per-zone); audited as forced."),
    },
    { error: 'expected a JSON object' },
  ),
);

const REASON_ERROR = `expected a string of at most ${MAX_REASON} characters`;

export const LeaderSchema = named(
  'Leader',
  z.looseObject({
    leaderId: z.string().nullable().describe('The leading service: the election candidate with the lowest create revision; null when nobody campaigns.'),
    fencingRevision: z.number().nullable().describe("The create revision of the leader's election key: its fencing token and term number."),
    term: z.number().nullable().describe('The term the leader recorded at <ns>/leader (equal to fencingRevision); null until written.'),
    since: z.number().nullable().describe('Epoch ms since which it leads (from the same record).'),
    candidates: z.array(z.looseObject({ serviceId: z.string(), fencingRevision: z.number() })).describe('Every candidate in line, the leader first.'),
    resignRequest: z
      .looseObject({ term: z.number(), actor: z.string(), at: z.number(), reason: z.string().optional() })
      .nullable()
      .describe('A resign request its leader has not acted on yet.'),
  }),
);

export const ResignBodySchema = named(
  'LeaderResignRequest',
  z.strictObject(
    {
      term: z
        .number({ error: 'expected a term (a positive integer)' })
        .int({ error: 'expected a term (a positive integer)' })
        .positive({ error: 'expected a term (a positive integer)' })
        .optional()
        .describe('Only ask the leader of this term (its fencingRevision); 409 when another term leads.'),
      reason: z.string({ error: REASON_ERROR }).max(MAX_REASON, { error: REASON_ERROR }).optional(),
    },
    { error: 'expected a JSON object' },
  ),
);

export const ResignResponseSchema = named(
  'LeaderResignResponse',
  z.looseObject({
    leaderId: z.string().describe('The leader asked to hand over.'),
    term: z.number().describe('Its term (fencing revision): only that term acts on the request.'),
    requested: z.literal(true),
  }),
);

export const ForgetBodySchema = named(
  'ForgetRequest',
  z.strictObject(
    {
      force: z.boolean({ error: 'expected a boolean' }).optional().describe('Forget an id that is still registered (audited as forced).'),
      reason: z.string({ error: REASON_ERROR }).max(MAX_REASON, { error: REASON_ERROR }).optional(),
    },
    { error: 'expected a JSON object' },
  ),
);

export const ForgetResponseSchema = named(
  'ForgetResponse',
  z.looseObject({
    serviceId: z.string(),
    removed: z.looseObject({ intent: z.boolean(), healthHold: z.boolean() }).describe('What was removed: the operator intent, the flap-damping hold.'),
    live: z.boolean().describe('Whether the id was registered (then only with force).'),
  }),
);

export const SetEnabledResponseSchema = named(
  'SetEnabledResponse',
  z.looseObject({
    serviceId: z.string(),
    enabled: z.boolean(),
    changed: z.boolean().describe('False when the service already was in the asked state.'),
    reasonUpdated: z
      .boolean()
      .optional()
      .describe('True (else absent) when the service already was in the asked state but the given reason replaced the stored one.'),
    previousReason: z.string().optional().describe('The reason replaced, when reasonUpdated and there was one.'),
    repaired: z
      .string()
      .optional()
      .describe('The stored intent could not be read (why): this request replaced it (an enable removes it), even with changed false.'),
    service: ServiceRecordSchema.optional().describe('The record with the new intent applied, when the service is registered.'),
  }),
);

export const AuditEntrySchema = named(
  'AuditEntry',
  z.looseObject({
    id: z.string(),
    at: z.number(),
    actor: z.string().describe('The API key name (or cli:<user>, …) that acted.'),
    action: z.enum(['enable', 'disable', 'forget', 'resign']).describe('forget: a retired id\'s intent and history removed; resign: the leader (serviceId) asked to hand over.'),
    serviceId: z.string(),
    term: z.number().optional().describe('resign: the term (fencing revision) the request was for.'),
    reason: z.string().optional(),
    source: z.string().optional().describe('Remote address of the request.'),
    changed: z.boolean().describe('Whether the state changed (false when it already was as asked).'),
    reasonUpdated: z
      .boolean()
      .optional()
      .describe('True when the state was already as asked but this entry replaced the stored reason.'),
    previousReason: z.string().optional().describe('The reason replaced, when reasonUpdated.'),
    forced: z.boolean().optional().describe('A disable that overrode the capacity guard.'),
    capacity: z.string().optional().describe('When forced past a refusal: what the capacity guard would have refused.'),
    repaired: z.string().optional().describe('The stored intent this action replaced could not be read: why.'),
    automatic: z.boolean().optional().describe('Written by the system: an expiry, the end of a drain, a start-disabled agent.'),
    expired: z.boolean().optional().describe('An enable by the leader because a timed disable expired.'),
    expiresAt: z.number().optional().describe('A timed disable: when it lapses.'),
    drainUntil: z.number().optional().describe('A disable with a drain phase: its deadline.'),
    drained: z.enum(['idle', 'deadline']).optional().describe("The end of a drain, by the instance's agent: its probe said idle, or the deadline passed."),
    startDisabled: z.boolean().optional().describe('The disable an agent started with --start-disabled wrote for itself.'),
  }),
);

export const AuditResponseSchema = named('AuditResponse', z.looseObject({ entries: z.array(AuditEntrySchema) }));

export const AgentHealthSchema = named(
  'AgentHealth',
  z.looseObject({
    status: z.enum(['ok', 'degraded']),
    registry: z.looseObject({ reachable: z.boolean() }),
    view: z.looseObject({ stale: z.boolean(), lastUpdate: z.number() }),
    registered: z.boolean(),
    isLeader: z.boolean(),
  }),
  "The agent's own readiness: ok (200) when registered and its view is current, else degraded (503).",
);

export const LivenessSchema = named('Liveness', z.looseObject({ status: z.literal('ok') }));

/** Only the top of the document is described; it is what this endpoint serves. */
export const OpenApiDocumentSchema = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });

export const PrometheusTargetGroupSchema = named(
  'PrometheusTargetGroup',
  z.looseObject({
    targets: z.array(z.string()).describe('One `host:port`: the agent API (`?target=agent`) or the instance (`?target=instance`).'),
    labels: z
      .record(z.string(), z.string())
      .describe(
        'service_id, service_name, region, zone, version, status; for relabelling only, __meta_proxy_stone_role, ' +
          '_enabled, _healthy, _tags (`,a,b,`), _instance, _agent; on agent targets over HTTPS or under a path prefix, ' +
          '__scheme__ / __metrics_path__. Values are registry data, at most 256 characters, control characters replaced.',
      ),
  }),
  "One instance as a Prometheus http_sd target group.",
);

export const PrometheusTargetsSchema = named(
  'PrometheusTargets',
  z.array(PrometheusTargetGroupSchema),
  "Prometheus HTTP service discovery answer (http_sd_configs): one target group per instance, sorted by service id.",
);

export const ErrorResponseSchema = named(
  'Error',
  z.looseObject({
    error: z.string().describe('Machine-readable code: bad_request, unauthorized, forbidden, writes_disabled, not_found, no_leader (404: leader resign with nobody campaigning), payload_too_large, unsupported_media_type, uri_too_long (414), headers_too_large (431), request_timeout (408), too_many_streams (429/503: an event-stream cap; see Retry-After), not_started, registry_unavailable, internal, refused (409: the capacity guard refused a disable, or a forget of a registered id), conflict (409: what the write depended on kept changing; nothing was written, retry).'),
    message: z.string().describe('One line for humans, naming the offending field for validation errors.'),
  }),
);

const base = { timestamp: z.number() };
export const ClusterEventSchema = named(
  'ClusterEvent',
  z.discriminatedUnion('type', [
    z.looseObject({ type: z.literal('serviceJoined'), serviceId: z.string(), service: ServiceRecordSchema, ...base }),
    z.looseObject({ type: z.literal('serviceLeft'), serviceId: z.string(), service: ServiceRecordSchema.optional(), ...base }),
    z.looseObject({
      type: z.literal('serviceHealthChanged'),
      serviceId: z.string(),
      previousStatus: ServiceStatusSchema,
      status: ServiceStatusSchema,
      service: ServiceRecordSchema,
      ...base,
    }),
    z.looseObject({
      type: z.enum(['serviceEnabled', 'serviceDisabled']),
      serviceId: z.string(),
      reason: z.string().optional(),
      actor: z.string().optional(),
      expiresAt: z.number().optional().describe('serviceDisabled of a timed disable: when it lapses.'),
      drainUntil: z.number().optional().describe('serviceDisabled with a drain phase: its deadline.'),
      ...base,
    }),
    z.looseObject({ type: z.literal('serviceUpdated'), serviceId: z.string(), service: ServiceRecordSchema, ...base }),
    z.looseObject({ type: z.literal('leaderElected'), leaderId: z.string().nullable(), previousLeaderId: z.string().nullable(), ...base }),
  ]),
  'The JSON of one `data:` line of the event stream.',
);

// ---- inputs (query strings and path parameters are strings) ----

/** Longest service id the API takes, in characters (UTF-16 code units, as JavaScript counts them). */
export const MAX_ID_LENGTH = 256;

/**
 * Longest path segment that can still be an id of {@link MAX_ID_LENGTH} characters once
 * percent-encoded: a character of the Basic Multilingual Plane is up to three UTF-8 bytes of three
 * characters each (`%E2%82%AC`). The router's `maxParamLength`, so that every id that could be valid
 * reaches the route, whose schema answers 400 for one too long; longer segments get 414.
 */
export const MAX_ENCODED_ID_LENGTH = 9 * MAX_ID_LENGTH;

export const IdParamsSchema = z.object({
  id: z
    .string()
    .min(1, { error: 'expected a service id' })
    .max(MAX_ID_LENGTH, { error: `expected a service id of at most ${MAX_ID_LENGTH} characters` }),
});

/** Longest region, zone or other free-text filter a query string may carry. */
export const MAX_FILTER_LENGTH = 256;

/** A free-text filter: one value (not repeated), at most {@link MAX_FILTER_LENGTH} characters. */
function filter(what: string) {
  const error = `expected one ${what} of at most ${MAX_FILTER_LENGTH} characters`;
  return z.string({ error }).max(MAX_FILTER_LENGTH, { error });
}

/** `?tag=a,b`: one value, every tag of which a service must carry (src/cluster/selector.ts). */
const TagQuerySchema = z
  .string({ error: `expected ${TAG_EXPECTATION}, given once` })
  .max(MAX_SELECTOR_LENGTH, { error: `expected ${TAG_EXPECTATION}, at most ${MAX_SELECTOR_LENGTH} characters` })
  .refine((v) => parses(() => parseTagList(v)), { error: `expected ${TAG_EXPECTATION}` })
  .optional()
  .describe('Only services carrying every one of these tags, comma-separated.');

/** `?label=team=edge,env!=staging`: requirements on a service's metadata (src/cluster/selector.ts). */
const LabelQuerySchema = z
  .string({ error: `expected ${LABEL_EXPECTATION}, given once` })
  .max(MAX_SELECTOR_LENGTH, { error: `expected ${LABEL_EXPECTATION}, at most ${MAX_SELECTOR_LENGTH} characters` })
  .refine((v) => parses(() => parseLabelSelector(v)), { error: `expected ${LABEL_EXPECTATION}` })
  .optional()
  .describe('Only services whose metadata meets every requirement: key=value, key==value or key!=value, comma-separated.');

function parses(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch {
    return false;
  }
}

/** `?tag=` and `?label=` of the topology. */
export const TopologyQuerySchema = z.object({ tag: TagQuerySchema, label: LabelQuerySchema });

export const ServicesQuerySchema = z.object({
  tag: TagQuerySchema,
  label: LabelQuerySchema,
  status: z.enum(SERVICE_STATUSES, { error: `expected one of ${statusList}` }).optional().describe('Only services with this status.'),
  region: filter('region').optional().describe('Only services in this region.'),
  zone: filter('zone').optional().describe('Only services in this zone.'),
  healthy: z
    .enum(['true', 'false'], { error: 'expected true or false' })
    .optional()
    .describe('true: only services taking traffic (healthy and enabled); false: only the others.'),
});

const LIMIT_ERROR = 'expected an integer from 1 to 1000';

export const AuditQuerySchema = z.object({
  serviceId: z
    .string({ error: `expected one service id of at most ${MAX_ID_LENGTH} characters` })
    .max(MAX_ID_LENGTH, { error: `expected one service id of at most ${MAX_ID_LENGTH} characters` })
    .optional()
    .describe('Only entries about this service.'),
  // Decimal digits only: a plain number coercion would also take "0x10", "1e2" and " 5".
  limit: z
    .string({ error: LIMIT_ERROR })
    .refine((v) => /^[0-9]{1,4}$/.test(v), { error: LIMIT_ERROR })
    .transform(Number)
    .pipe(z.number().int().min(1, { error: LIMIT_ERROR }).max(1000, { error: LIMIT_ERROR }))
    // Documented as what it is on the wire's other side: an integer in range.
    .meta({ type: 'integer', minimum: 1, maximum: 1000 })
    .optional()
    .describe('Newest entries to return (default 100).'),
});

/** Longest event id a client may resume from; ours are `<8 hex>-<seq>`, at most 24 characters. */
export const MAX_EVENT_ID_LENGTH = 64;

/** What a `Last-Event-ID` (header or `?lastEventId=`) must look like; empty means "no resume". */
export const EVENT_ID_EXPECTATION = `expected an event id of at most ${MAX_EVENT_ID_LENGTH} printable ASCII characters`;

/**
 * An event id to resume after. Bounded in length and to printable ASCII; within that, an id that is
 * not from this stream's history is not an error but a `reset` (documented).
 */
export const EventIdSchema = z
  .string({ error: EVENT_ID_EXPECTATION })
  .max(MAX_EVENT_ID_LENGTH, { error: EVENT_ID_EXPECTATION })
  .regex(/^[\x21-\x7e]*$/, { error: EVENT_ID_EXPECTATION });

/** Longest `?types=` list: every type once is about 120 characters. */
const MAX_TYPES_LENGTH = 512;

const SINCE_ERROR = `expected epoch milliseconds from 0 to ${MAX_EPOCH_MS}`;

export const EventsQuerySchema = z.object({
  types: z
    .string({ error: `expected a comma-separated list of ${eventTypeList}` })
    .max(MAX_TYPES_LENGTH, { error: `expected a comma-separated list of ${eventTypeList}` })
    .refine((v) => parseEventTypes(v) !== undefined, { error: `expected a comma-separated list of ${eventTypeList}` })
    .optional()
    .describe(`Only these event types, comma-separated (${eventTypeList}).`),
  lastEventId: EventIdSchema.optional().describe(
    'Resume after this event id, for clients that cannot send the Last-Event-ID header.',
  ),
  since: z
    .string({ error: SINCE_ERROR })
    .refine((v) => /^[0-9]{1,15}$/.test(v) && Number(v) <= MAX_EPOCH_MS, { error: SINCE_ERROR })
    .transform(Number)
    .meta({ type: 'integer', minimum: 0, maximum: MAX_EPOCH_MS })
    .optional()
    .describe(
      'Without a Last-Event-ID: first replay the kept events at or after this time (epoch ms). When the history does not reach back ' +
        'that far, an `event: truncated` frame (`{type, reason, since}`) says from when it does.',
    ),
});

export const PrometheusTargetsQuerySchema = z.object({
  target: z
    .enum(PROMETHEUS_TARGET_KINDS, { error: `expected one of ${PROMETHEUS_TARGET_KINDS.join(', ')}` })
    .optional()
    .describe("What to scrape: `agent` (default), each instance's agent API and its /metrics; `instance`, the Proxy-Stone instance itself (host:port)."),
});

/** Parses `serviceJoined,serviceLeft` into a set, or undefined when an item is not an event type. */
export function parseEventTypes(value: string): Set<ClusterEventType> | undefined {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) return undefined;
  const known = new Set<string>(CLUSTER_EVENT_TYPES);
  if (!items.every((i) => known.has(i))) return undefined;
  return new Set(items as ClusterEventType[]);
}
