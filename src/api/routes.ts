/**
 * The route table: one entry per endpoint, with its access level, inputs, documented responses and
 * handler. The plugin registers it with fastify and the OpenAPI document is generated from it, so the
 * two cannot drift.
 *
 * @module
 */
import { detectionBudget } from '../cluster/detection-budget.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ServiceAgent } from '../agent/agent.js';
import { parseLabelSelector, parseTagList, type Selection } from '../cluster/selector.js';
import { computeTopology, filterServices, serviceList } from '../cluster/topology.js';
import type { ClusterView } from '../cluster/view.js';
import type { ServiceRecord } from '../types.js';
import type { Logger } from '../util/logger.js';
import type { ApiAuthenticator, Principal, RouteAccess } from './auth.js';
import { ApiError } from './errors.js';
import { UnknownCheckError } from '../agent/checks/check-set.js';
import type { EventStream } from './events.js';
import type { ServerSocket, SocketAdmission } from './websocket.js';
import type { AgentMetrics } from './metrics.js';
import { prometheusTargets } from './prometheus-sd.js';
import {
  AgentHealthSchema,
  AuditQuerySchema,
  AuditResponseSchema,
  CheckNameParamsSchema,
  CheckReportBodySchema,
  CheckReportResponseSchema,
  ClusterEventSchema,
  EVENT_ID_EXPECTATION,
  EventIdSchema,
  EventsQuerySchema,
  IdParamsSchema,
  LivenessSchema,
  OpenApiDocumentSchema,
  PrometheusTargetsQuerySchema,
  PrometheusTargetsSchema,
  ServiceHealthSchema,
  ServiceListSchema,
  ServiceRecordSchema,
  ServicesQuerySchema,
  ForgetBodySchema,
  ForgetResponseSchema,
  LeaderSchema,
  ResignBodySchema,
  ResignResponseSchema,
  SetEnabledBodySchema,
  SetEnabledResponseSchema,
  StatusResponseSchema,
  TopologyQuerySchema,
  TopologySchema,
  parseEventTypes,
} from './schemas.js';

/** Path prefix of the seed's endpoints. */
export const SD_PREFIX = '/service-discovery';

/** What handlers work with. */
export interface RouteContext {
  agent: ServiceAgent;
  auth: ApiAuthenticator;
  events: EventStream;
  metrics: AgentMetrics;
  logger: Logger;
  /** The OpenAPI document, served as is. */
  openapi: () => unknown;
  /** Serves an upgraded WebSocket (./websocket.ts serveSocket, bound to this API's stream and auth). */
  serveSocket(socket: ServerSocket, request: FastifyRequest, admission: SocketAdmission): void;
}

/** One documented response. */
export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  contentType?: 'application/json' | 'text/event-stream' | 'text/plain';
}

/** Which optional part of the API a route belongs to (hosts can leave out `health` and `metrics`). */
export type RouteGroup = 'service-discovery' | 'health' | 'metrics';

/** Parsed inputs of one request. */
export interface RouteInput<Q, P, B> {
  query: Q;
  params: P;
  body: B;
  principal: Principal;
  request: FastifyRequest;
  reply: FastifyReply;
}

/** One endpoint. `path` is the full path, fastify style (`/service-discovery/services/:id`). */
export interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  group: RouteGroup;
  access: RouteAccess;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  query?: z.ZodType;
  params?: z.ZodType;
  body?: z.ZodType;
  /** Responses specific to this route; the common errors are added to the document for every route. */
  responses: Record<number, ResponseSpec>;
  /** True when the handler takes over the raw response (SSE), or the connection (WebSocket). */
  streaming?: boolean;
  /** Plain HTTP requests (for a WebSocket route: the answer to a GET without an Upgrade). */
  handle(ctx: RouteContext, input: RouteInput<unknown, unknown, unknown>): unknown;
  /**
   * Present on a WebSocket route: serves the upgraded socket. `keyInFirstMessage` is true when reads
   * need a key and the upgrade request had none (a browser cannot set headers on a WebSocket).
   */
  websocket?(ctx: RouteContext, socket: ServerSocket, input: RouteInput<unknown, unknown, unknown> & { keyInFirstMessage: boolean }): void;
}

interface TypedRouteSpec<Q, P, B> extends Omit<RouteSpec, 'query' | 'params' | 'body' | 'handle' | 'websocket'> {
  query?: z.ZodType<Q>;
  params?: z.ZodType<P>;
  body?: z.ZodType<B>;
  handle(ctx: RouteContext, input: RouteInput<Q, P, B>): unknown;
  websocket?(ctx: RouteContext, socket: ServerSocket, input: RouteInput<Q, P, B> & { keyInFirstMessage: boolean }): void;
}

/** Keeps each handler typed by its own schemas; the plugin only calls it with parsed inputs. */
function route<Q = undefined, P = undefined, B = undefined>(spec: TypedRouteSpec<Q, P, B>): RouteSpec {
  return spec as unknown as RouteSpec;
}

function viewOf(agent: ServiceAgent): ClusterView {
  try {
    return agent.view;
  } catch {
    throw new ApiError(503, 'not_started', 'the agent has not started yet; try again shortly');
  }
}

function notFound(id: string): ApiError {
  return new ApiError(404, 'not_found', `service ${id} not found`);
}

/** `apiUrl` comes from another agent's record: only echo it when it is a plain http(s) URL. */
function historyUrlOf(record: ServiceRecord): string | undefined {
  if (!record.apiUrl) return undefined;
  try {
    const base = new URL(record.apiUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') return undefined;
    const prefix = base.pathname.replace(/\/+$/, '');
    return `${base.origin}${prefix}${SD_PREFIX}/services/${encodeURIComponent(record.id)}/health`;
  } catch {
    return undefined;
  }
}

function agentHealth(ctx: RouteContext, reply: FastifyReply) {
  const st = ctx.agent.status();
  const registered = st.status === 'registered';
  const ok = registered && !st.view.stale;
  void reply.code(ok ? 200 : 503);
  return {
    status: ok ? ('ok' as const) : ('degraded' as const),
    registry: { reachable: st.registry.reachable },
    view: { stale: st.view.stale, lastUpdate: st.view.lastUpdate },
    registered,
    isLeader: st.isLeader,
  };
}

/** The `?tag=` and `?label=` of a query, parsed (the schema has checked that they parse). */
function selectionOf(query: { tag?: string; label?: string }): Selection {
  return {
    ...(query.tag !== undefined ? { tags: parseTagList(query.tag) } : {}),
    ...(query.label !== undefined ? { labels: parseLabelSelector(query.label) } : {}),
  };
}

const NOT_FOUND: ResponseSpec = { description: 'No service with this id.' };
const NOT_STARTED: ResponseSpec = { description: 'The agent has not started yet, or the registry is unreachable.' };

function setEnabledRoute(enabled: boolean): RouteSpec {
  const verb = enabled ? 'enable' : 'disable';
  return route<undefined, z.infer<typeof IdParamsSchema>, z.infer<typeof SetEnabledBodySchema>>({
    method: 'POST',
    path: `${SD_PREFIX}/services/:id/${verb}`,
    group: 'service-discovery',
    access: 'write',
    operationId: `${verb}Service`,
    summary: enabled ? 'Enable a service (take traffic again)' : 'Disable a service (stop routing traffic to it)',
    description:
      'Records operator intent in the registry (it survives agent and registry restarts) and an audit entry. ' +
      'Idempotent: repeating it answers `changed: false` (a new `reason` still replaces the stored one: the answer and ' +
      'the audit entry then say so with `reasonUpdated: true` and `previousReason`). Needs an operator API key; the key ' +
      'name is the audit actor. A disable drains first (`drainTimeout`, default 30 s; see docs/operations.md) and is refused ' +
      "with 409 when it would leave the service's region or zone below the agent's --min-healthy-per-zone healthy enabled " +
      'instances, unless `force: true` (audited as forced).',
    tag: 'management',
    params: IdParamsSchema,
    body: SetEnabledBodySchema,
    responses: {
      200: { description: 'The intent is recorded.', schema: SetEnabledResponseSchema },
      404: NOT_FOUND,
      409: { description: "Refused by the capacity guard (the agent's --min-healthy-per-zone); `force: true` overrides it." },
      503: NOT_STARTED,
    },
    async handle(ctx, { params, body, principal, request }) {
      viewOf(ctx.agent);
      const result = await ctx.agent.setServiceEnabled(params.id, enabled, {
        reason: body.reason,
        expiresAt: body.expiresAt,
        ...(body.drainTimeout !== undefined ? { drainTimeout: body.drainTimeout } : {}),
        ...(body.force !== undefined ? { force: body.force } : {}),
        actor: principal.name,
        source: request.ip,
      });
      const out: { serviceId: string; enabled: boolean; changed: boolean; reasonUpdated?: true; previousReason?: string; repaired?: string; service?: ServiceRecord } = {
        serviceId: result.serviceId,
        enabled: result.enabled,
        changed: result.changed,
      };
      // Same state, new reason: say so, as the audit entry does, so a client need not read the trail.
      if (result.audit.reasonUpdated) {
        out.reasonUpdated = true;
        if (result.audit.previousReason !== undefined) out.previousReason = result.audit.previousReason;
      }
      if (result.audit.repaired !== undefined) out.repaired = result.audit.repaired;
      if (result.service) out.service = result.service;
      return out;
    },
  });
}

/** `POST /checks/:name/pass|fail`: the instance reports to its ttl check (`--check ttl://NAME`). */
function checkReportRoute(): RouteSpec {
  return route<undefined, z.infer<typeof CheckNameParamsSchema>, z.infer<typeof CheckReportBodySchema>>({
    method: 'POST',
    path: `${SD_PREFIX}/checks/:name/:verdict`,
    group: 'service-discovery',
    access: 'write',
    operationId: 'reportCheck',
    summary: 'Report to a ttl check of this agent\'s instance: alive (pass) or failing (fail)',
    description:
      'For work that cannot be probed from outside (Consul\'s TTL check): the instance, or whatever watches it, calls ' +
      '`pass` at least once per the check\'s `ttl`; the check fails when no pass came in time, or at once on `fail`. ' +
      'The report is evaluated at once. `note` becomes the check\'s output. ' +
      'Needs an operator API key, like the other writes.',
    tag: 'management',
    params: CheckNameParamsSchema,
    body: CheckReportBodySchema,
    responses: {
      200: { description: 'The report is taken.', schema: CheckReportResponseSchema },
      404: { description: 'This agent has no ttl check of that name.' },
      503: NOT_STARTED,
    },
    handle(ctx, { params, body }) {
      try {
        const report = ctx.agent.reportCheck(params.name, params.verdict === 'pass', body.note);
        return { check: params.name, ...report };
      } catch (err) {
        if (err instanceof UnknownCheckError) throw new ApiError(404, 'not_found', err.message);
        throw err;
      }
    },
  });
}

/** Every endpoint of the API. */
export const ROUTES: readonly RouteSpec[] = [
  route({
    method: 'GET',
    path: `${SD_PREFIX}/status`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'getStatus',
    summary: 'This agent and the instance it registers',
    tag: 'discovery',
    responses: { 200: { description: 'Status of this agent.', schema: StatusResponseSchema } },
    handle: (ctx) => ctx.agent.status(),
  }),
  route<z.infer<typeof ServicesQuerySchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/services`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'listServices',
    summary: 'List the services of the cluster',
    tag: 'discovery',
    query: ServicesQuerySchema,
    responses: { 200: { description: 'The services matching the filters.', schema: ServiceListSchema }, 503: NOT_STARTED },
    handle(ctx, { query }) {
      let services = filterServices(viewOf(ctx.agent).services(), {
        status: query.status,
        region: query.region,
        zone: query.zone,
        healthy: query.healthy === 'true',
        ...selectionOf(query),
      });
      if (query.healthy === 'false') services = services.filter((s) => !s.isHealthy);
      return serviceList(services);
    },
  }),
  route<undefined, z.infer<typeof IdParamsSchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/services/:id`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'getService',
    summary: 'One service',
    tag: 'discovery',
    params: IdParamsSchema,
    responses: { 200: { description: 'The service record.', schema: ServiceRecordSchema }, 404: NOT_FOUND, 503: NOT_STARTED },
    handle(ctx, { params }) {
      const record = viewOf(ctx.agent).service(params.id);
      if (!record) throw notFound(params.id);
      return record;
    },
  }),
  checkReportRoute(),
  route<undefined, z.infer<typeof IdParamsSchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/services/:id/health`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'getServiceHealth',
    summary: 'Health of one service, with the probe history when it is this agent\'s own',
    description:
      "An agent keeps the probe history of its own instance only. For another service the answer has the " +
      'health published in its record, an empty history and `historyUrl`, where that service\'s agent serves it. ' +
      '`budget` gives the worst-case detection times computed from the service\'s published check settings.',
    tag: 'discovery',
    params: IdParamsSchema,
    responses: { 200: { description: 'Health of the service.', schema: ServiceHealthSchema }, 404: NOT_FOUND, 503: NOT_STARTED },
    handle(ctx, { params }) {
      if (params.id === ctx.agent.id) {
        const health = ctx.agent.healthSnapshot();
        return { serviceId: params.id, status: health.status, health, history: ctx.agent.healthHistory(), budget: detectionBudget(ctx.agent.checkSettings(), health.checks) };
      }
      const record = viewOf(ctx.agent).service(params.id);
      if (!record) throw notFound(params.id);
      const body: Record<string, unknown> = { serviceId: record.id, status: record.status, health: record.health, history: [] };
      if (record.checks) body.budget = detectionBudget(record.checks, record.health.checks);
      const historyUrl = historyUrlOf(record);
      if (historyUrl) body.historyUrl = historyUrl;
      return body;
    },
  }),
  route<z.infer<typeof TopologyQuerySchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/topology`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'getTopology',
    summary: 'Cluster topology: counts by status, region and zone, and the leader',
    tag: 'discovery',
    query: TopologyQuerySchema,
    responses: { 200: { description: 'The topology (of the services matching `tag` and `label`, when given).', schema: TopologySchema }, 503: NOT_STARTED },
    handle(ctx, { query }) {
      const view = viewOf(ctx.agent);
      if (query.tag === undefined && query.label === undefined) return view.topology();
      const all = view.services();
      return computeTopology(filterServices(all, selectionOf(query)), view.leaderId(), all);
    },
  }),
  setEnabledRoute(true),
  setEnabledRoute(false),
  route<undefined, z.infer<typeof IdParamsSchema>, z.infer<typeof ForgetBodySchema>>({
    method: 'POST',
    path: `${SD_PREFIX}/services/:id/forget`,
    group: 'service-discovery',
    access: 'write',
    operationId: 'forgetService',
    summary: 'Forget a retired service id: remove its operator intent and flap-damping hold',
    description:
      'Removes `<ns>/admin/<id>` and `<ns>/health/<id>`, which outlive the instance, in one transaction with an audit entry ' +
      '(`action: forget`); the audit trail itself is kept. Refused with 409 while the id is registered (its record is under a ' +
      'live lease), unless `force: true` (audited as forced; the instance then counts as enabled). 404 when the registry holds ' +
      'nothing about the id. Needs an operator API key.',
    tag: 'management',
    params: IdParamsSchema,
    body: ForgetBodySchema,
    responses: {
      200: { description: 'What was removed.', schema: ForgetResponseSchema },
      404: NOT_FOUND,
      409: { description: 'The id is registered; `force: true` forgets it anyway.' },
      503: NOT_STARTED,
    },
    async handle(ctx, { params, body, principal, request }) {
      viewOf(ctx.agent);
      const result = await ctx.agent.forgetService(params.id, {
        ...(body.force !== undefined ? { force: body.force } : {}),
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
        actor: principal.name,
        source: request.ip,
      });
      return { serviceId: result.serviceId, removed: result.removed, live: result.live };
    },
  }),
  route({
    method: 'GET',
    path: `${SD_PREFIX}/leader`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'getLeader',
    summary: 'The leader, its term and fencing revision, and the candidates in line',
    tag: 'discovery',
    responses: { 200: { description: "The leader as this agent's view has it.", schema: LeaderSchema }, 503: NOT_STARTED },
    handle(ctx) {
      viewOf(ctx.agent);
      return ctx.agent.leaderInfo();
    },
  }),
  route<undefined, undefined, z.infer<typeof ResignBodySchema>>({
    method: 'POST',
    path: `${SD_PREFIX}/leader/resign`,
    group: 'service-discovery',
    access: 'write',
    operationId: 'resignLeader',
    summary: 'Ask the leader to hand over (fenced by its term)',
    description:
      'Stores a resign request for the current leader\'s term (or `term`, when given) at `<ns>/resign`, with an audit entry ' +
      '(`action: resign`). Only the leader of exactly that term acts on it: it gives up the term through the same fenced ' +
      'transaction its graceful stop uses and campaigns again from the back of the line, so the next candidate leads. ' +
      'The answer comes once the request is stored; read GET /leader for the new term. Needs an operator API key.',
    tag: 'management',
    body: ResignBodySchema,
    responses: {
      200: { description: 'The request is stored.', schema: ResignResponseSchema },
      404: { description: 'No agent campaigns: there is no leader to ask (`no_leader`).' },
      409: { description: '`term` is not the current leader\'s term (leadership moved already).' },
      503: NOT_STARTED,
    },
    async handle(ctx, { body, principal, request }) {
      viewOf(ctx.agent);
      const result = await ctx.agent.requestLeaderResign({
        ...(body.term !== undefined ? { term: body.term } : {}),
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
        actor: principal.name,
        source: request.ip,
      });
      return { leaderId: result.leaderId, term: result.term, requested: true };
    },
  }),
  route<z.infer<typeof AuditQuerySchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/audit`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'listAudit',
    summary: 'The audit trail of enable/disable actions, newest first',
    tag: 'management',
    query: AuditQuerySchema,
    responses: { 200: { description: 'Audit entries.', schema: AuditResponseSchema }, 503: NOT_STARTED },
    async handle(ctx, { query }) {
      viewOf(ctx.agent);
      return { entries: await ctx.agent.getAudit({ serviceId: query.serviceId, limit: query.limit ?? 100 }) };
    },
  }),
  route<z.infer<typeof EventsQuerySchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/events`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'streamEvents',
    summary: 'Live cluster events (Server-Sent Events)',
    description:
      'Each event is a `data:` line with the JSON of a ClusterEvent and an `id:` line. Reconnect with ' +
      '`Last-Event-ID` (or `?lastEventId=`) to resume without gaps or duplicates; when that is no longer ' +
      'possible the stream sends `event: reset` (list the services again). `?since=` replays the kept events from a time ' +
      '(with `event: truncated` when the history does not reach back that far). `: ping` comments are heartbeats. ' +
      'A client that falls too far behind gets `event: overflow` and is disconnected. Streams are capped in total ' +
      '(503) and per client address (429), both with Retry-After (SERVICE_DISCOVERY_API_MAX_STREAMS, ' +
      'SERVICE_DISCOVERY_API_MAX_STREAMS_PER_CLIENT).',
    tag: 'discovery',
    query: EventsQuerySchema,
    streaming: true,
    responses: {
      200: { description: 'An endless event stream; each data line is a ClusterEvent.', schema: ClusterEventSchema, contentType: 'text/event-stream' },
      429: { description: 'This client address has the most streams it may open (`too_many_streams`); see Retry-After.' },
      503: { description: 'The agent serves the most streams it may (`too_many_streams`); see Retry-After.' },
    },
    handle(ctx, { query, request, reply }) {
      const header = request.headers['last-event-id'];
      const fromHeader = Array.isArray(header) ? header.join(', ') : header?.trim();
      if (fromHeader !== undefined && !EventIdSchema.safeParse(fromHeader).success) {
        throw new ApiError(400, 'bad_request', `Last-Event-ID: ${EVENT_ID_EXPECTATION}`);
      }
      const lastEventId = fromHeader ?? query.lastEventId;
      const types = query.types === undefined ? undefined : parseEventTypes(query.types);
      // Refused here, past a cap, as an ordinary error response; serve() would refuse too.
      const refusal = ctx.events.admit(request.ip);
      if (refusal) {
        throw new ApiError(refusal.statusCode, 'too_many_streams', refusal.message, { 'retry-after': String(refusal.retryAfter) });
      }
      // Headers set by hooks (CORS) are reply's, which a hijacked response no longer sends itself.
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
      void reply.hijack();
      ctx.events.serve(request.raw, reply.raw, { lastEventId, types, address: request.ip, ...(query.since !== undefined ? { since: query.since } : {}) });
    },
  }),
  route<z.infer<typeof EventsQuerySchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/ws`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'streamEventsWebSocket',
    summary: 'Live cluster events over WebSocket',
    description:
      'The stream of `GET /service-discovery/events` over a WebSocket: the same events, ids, resume and caps. ' +
      'Each text message is a JSON object with the SSE fields: `{"id","data"}` per event (data is a ClusterEvent), ' +
      '`{"event":"hello","data":{"stream","lastEventId"}}` first, `{"id","event":"reset","data"}` when a resume is not ' +
      'possible, `{"event":"overflow","data"}` before a close with code 4008. Resume with `?lastEventId=`. The key goes ' +
      'in a header, or, where a client cannot set headers (browsers), in the first message ' +
      '`{"type":"auth","key":"…","lastEventId"?,"types"?}` within 5 s (close codes 4001 no or bad key, 4003 role may not ' +
      'read, 1008 an unexpected message); never in the URL. A page of another origin needs its origin in ' +
      'SERVICE_DISCOVERY_API_CORS_ORIGINS (else 403 before the upgrade). Without an Upgrade header: 426.',
    tag: 'discovery',
    query: EventsQuerySchema,
    streaming: true,
    responses: {
      101: { description: 'Switching Protocols: the socket carries the event stream.' },
      403: { description: 'A browser page of an origin not in SERVICE_DISCOVERY_API_CORS_ORIGINS (`forbidden_origin`).' },
      426: { description: 'A request without `Upgrade: websocket` (`upgrade_required`).' },
      429: { description: 'This client address has the most streams it may open (`too_many_streams`); see Retry-After.' },
      503: { description: 'The agent serves the most streams it may (`too_many_streams`); see Retry-After.' },
    },
    handle() {
      throw new ApiError(426, 'upgrade_required', 'this endpoint is a WebSocket: connect with a WebSocket client, or read GET /service-discovery/events (SSE)', {
        upgrade: 'websocket',
        connection: 'Upgrade',
      });
    },
    websocket(ctx, socket, { query, request, keyInFirstMessage }) {
      const types = query.types === undefined ? undefined : parseEventTypes(query.types);
      ctx.serveSocket(socket, request, { keyInFirstMessage, lastEventId: query.lastEventId, types, ...(query.since !== undefined ? { since: query.since } : {}) });
    },
  }),
  route<z.infer<typeof PrometheusTargetsQuerySchema>>({
    method: 'GET',
    path: `${SD_PREFIX}/prometheus/targets`,
    group: 'service-discovery',
    access: 'read',
    operationId: 'getPrometheusTargets',
    summary: 'Scrape targets for Prometheus HTTP service discovery (http_sd_configs)',
    description:
      "One target group per instance in the cluster view, in Prometheus's http_sd format, so one scrape config " +
      'follows the fleet as it changes. `?target=agent` (default) lists each instance\'s agent API, where /metrics ' +
      'is served (instances whose agent publishes no API URL are left out); `?target=instance` lists the ' +
      'Proxy-Stone instances themselves. Labels and a scrape config: "Prometheus service discovery" in the docs.',
    tag: 'discovery',
    query: PrometheusTargetsQuerySchema,
    responses: { 200: { description: 'The target groups, sorted by service id.', schema: PrometheusTargetsSchema }, 503: NOT_STARTED },
    handle: (ctx, { query }) => prometheusTargets(viewOf(ctx.agent).services(), query.target ?? 'agent'),
  }),
  route({
    method: 'GET',
    path: `${SD_PREFIX}/openapi.json`,
    group: 'service-discovery',
    access: 'public',
    operationId: 'getOpenApi',
    summary: 'This document',
    tag: 'meta',
    responses: { 200: { description: 'The OpenAPI document of this API.', schema: OpenApiDocumentSchema } },
    handle: (ctx) => ctx.openapi(),
  }),
  route({
    method: 'GET',
    path: '/health',
    group: 'health',
    access: 'public',
    operationId: 'getAgentHealth',
    summary: "The agent's own health: 200 when registered and its view is current, else 503",
    tag: 'probes',
    responses: {
      200: { description: 'Registered, view current.', schema: AgentHealthSchema },
      503: { description: 'Not registered or the view is stale.', schema: AgentHealthSchema },
    },
    handle: (ctx, { reply }) => agentHealth(ctx, reply),
  }),
  route({
    method: 'GET',
    path: '/health/live',
    group: 'health',
    access: 'public',
    operationId: 'getLiveness',
    summary: 'Liveness: 200 while the process serves requests',
    tag: 'probes',
    responses: { 200: { description: 'Alive.', schema: LivenessSchema } },
    handle: () => ({ status: 'ok' }),
  }),
  route({
    method: 'GET',
    path: '/health/ready',
    group: 'health',
    access: 'public',
    operationId: 'getReadiness',
    summary: 'Readiness: same verdict as /health',
    tag: 'probes',
    responses: {
      200: { description: 'Registered, view current.', schema: AgentHealthSchema },
      503: { description: 'Not registered or the view is stale.', schema: AgentHealthSchema },
    },
    handle: (ctx, { reply }) => agentHealth(ctx, reply),
  }),
  route({
    method: 'GET',
    path: '/metrics',
    group: 'metrics',
    access: 'read',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics of this agent',
    tag: 'probes',
    responses: { 200: { description: 'Prometheus text exposition format 0.0.4.', contentType: 'text/plain' } },
    async handle(ctx, { reply }) {
      const text = await ctx.metrics.render();
      void reply.type(ctx.metrics.contentType);
      return text;
    },
  }),
];
