/**
 * The agent's HTTP API on Fastify. Fastify, because Proxy-Stone is a Fastify application: the same
 * routes mount on its server as a plugin, with its logger, hooks and lifecycle, and run standalone
 * beside it with the same code.
 *
 * Three ways to serve it:
 * - {@link startApiServer}: a server of its own (the `agent` command), optionally TLS;
 * - {@link serviceDiscoveryPlugin}: routes on a Proxy-Stone (or any Fastify) host;
 * - {@link createRequestHandler}: a plain `(req, res)` handler for non-Fastify hosts.
 *
 * Why this file is long: the three forms share one set of server options, hooks and error answers
 * (every framework and parser error in the documented shape), and they must not drift apart.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, {
  type FastifyBodyParser,
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { ServiceAgent } from '../agent/agent.js';
import { advertisedApiUrl } from './advertised-url.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { escapeUnsafe, safeJsonText } from '../util/text.js';
import { AccessRefusedError, ApiAuthenticator, type ApiAuthOptions, type Principal } from './auth.js';
import {
  ApiError,
  MAX_BODY_BYTES,
  clientErrorHandler,
  errorHandler,
  frameworkErrorHandler,
  logUrl,
  notFoundHandler,
  validationError,
} from './errors.js';
import { EventStream, type EventStreamOptions } from './events.js';
import { AgentMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { ROUTES, SD_PREFIX, type RouteContext, type RouteSpec } from './routes.js';
import { hasCredentialHeaders, isUpgrade, originAllowed, registerWebSocketSupport, serveSocket, type ServerSocket } from './websocket.js';
import { MAX_ENCODED_ID_LENGTH, MAX_ID_LENGTH } from './schemas.js';
import { REQUEST_TIMEOUT_MS, TLS_HANDSHAKE_TIMEOUT_MS, serverTimeouts, trackConnections } from './connection-drain.js';

/** Options shared by every way of serving the API. */
export interface ApiOptions {
  auth: ApiAuthOptions;
  /** Request and error log (pino-style). Secrets are never passed to it. */
  logger?: Logger;
  /** Metrics to serve; created (and made to observe the agent) when absent. */
  metrics?: AgentMetrics;
  /** Tuning of the event stream, SSE and WebSocket (heartbeat, history, per-client buffer, caps). */
  events?: EventStreamOptions;
  /**
   * Web origins whose pages may read the API and follow the streams (CORS headers on reads, WebSocket
   * upgrades from those origins); `*` for any. Empty or absent: none (same-origin pages only).
   */
  corsOrigins?: readonly string[];
}

/** Options of {@link serviceDiscoveryPlugin}. */
export interface ServiceDiscoveryPluginOptions extends ApiOptions {
  agent: ServiceAgent;
  /**
   * Serve `GET /health`, `/health/live` and `/health/ready` for the agent (default false: a Proxy-Stone
   * host answers those paths for itself).
   */
  healthRoutes?: boolean;
  /** Serve `GET /metrics` (default true; turn off when the host serves its own and merges `metrics.registry`). */
  metricsRoute?: boolean;
  /**
   * When the host starts listening and the agent has no API URL yet (`api.advertiseUrl`), write the
   * host's address (and the plugin's prefix) into the record as the agent's API URL, as a standalone
   * agent does, so the CLI, peers and Prometheus service discovery find this API (default true). A host
   * bound to every interface is advertised at the service host (`service.host`).
   */
  advertise?: boolean;
}

/** Options of {@link startApiServer}. */
export interface ApiServerOptions extends ApiOptions {
  host: string;
  /** 0 picks a free port; the chosen one is in the returned `url`. */
  port: number;
  /**
   * Serve HTTPS with this certificate and key (PEM file paths; both or neither, so the `api.tls`
   * setting fits as is). With `ca`, clients must also present a certificate that CA signed (mTLS).
   */
  tls?: ApiTlsOptions;
  /** Trust X-Forwarded-For from these proxies when recording the source address (fastify's trustProxy). */
  trustProxy?: boolean | string | string[];
}

/** TLS files of the standalone server (PEM paths). An object with none of them set means plain HTTP. */
export interface ApiTlsOptions {
  cert?: string;
  key?: string;
  /** CA of the client certificates to require (mutual TLS). */
  ca?: string;
}

/** Options of {@link createRequestHandler}. */
export interface ApiHandlerOptions extends ApiOptions {
  /** Serve `/health*` (default true). */
  healthRoutes?: boolean;
  /** Serve `/metrics` (default true). */
  metricsRoute?: boolean;
  trustProxy?: boolean | string | string[];
}

/** A running standalone API server. */
export interface ApiServer {
  /** Base URL, e.g. `http://127.0.0.1:8790` (a wildcard host is reported as loopback). */
  url: string;
  /** Ends event streams, stops listening and waits for requests in flight. */
  close(): Promise<void>;
  readonly metrics: AgentMetrics;
  readonly events: EventStream;
}

/** A Node request handler serving the API, with its lifecycle. */
export interface ApiRequestHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Resolves once routes are registered (requests before that wait for it). */
  ready(): Promise<void>;
  /** Ends event streams and releases the agent's listeners. */
  close(): Promise<void>;
  readonly metrics: AgentMetrics;
  readonly events: EventStream;
}

/** What mounting the API created. */
interface MountedApi {
  metrics: AgentMetrics;
  events: EventStream;
  auth: ApiAuthenticator;
}

/**
 * The API as a Fastify plugin, for a Proxy-Stone host:
 *
 * ```ts
 * await app.register(serviceDiscoveryPlugin, { agent, auth: loadApiAuth() });
 * ```
 *
 * It is encapsulated: its error handler, its JSON-only body parsing and its 404 handler (for
 * `/service-discovery/*` only) do not touch the host's other routes. Closing the host ends the
 * event streams. Registering it on a Fastify other than 5.x fails at once with Fastify's
 * FST_ERR_PLUGIN_VERSION_MISMATCH rather than misbehaving later.
 */
export const serviceDiscoveryPlugin: FastifyPluginAsync<ServiceDiscoveryPluginOptions> = fastifyPlugin(
  async (instance: FastifyInstance, options: ServiceDiscoveryPluginOptions) => {
    const maxParamLength = instance.initialConfig.routerOptions?.maxParamLength ?? instance.initialConfig.maxParamLength;
    if (maxParamLength !== undefined && maxParamLength < MAX_ENCODED_ID_LENGTH) {
      (options.logger ?? silentLogger).warn(
        { event: 'api.max_param_length', maxParamLength, wanted: MAX_ENCODED_ID_LENGTH },
        `the host's maxParamLength (${maxParamLength}) answers 414 for longer service ids in paths; ` +
          `pass routerOptions: { maxParamLength: ${MAX_ENCODED_ID_LENGTH} } (or apiServerOptions()) to Fastify()`,
      );
    }
    await mountApi(instance, options.agent, {
      ...options,
      healthRoutes: options.healthRoutes ?? false,
      metricsRoute: options.metricsRoute ?? true,
    });
    if (options.advertise ?? true) {
      const { agent } = options;
      instance.addHook('onListen', async () => advertiseHost(instance, agent));
    }
  },
  // encapsulate: fastify-plugin only for its metadata (name, Fastify version check), not to share our hooks with the host.
  { name: 'proxy-stone-sd', fastify: '5.x', encapsulate: true },
);

/**
 * Server options the API needs from the Fastify instance it runs on, which a plugin cannot set for
 * its host: a `maxParamLength` that lets every valid service id (up to 256 characters, however it is
 * percent-encoded) reach the routes, and error handlers that answer what the router and Node's HTTP
 * parser refuse (a bad percent-encoding, an over-long path segment, oversized headers, a malformed
 * request) in the API's `{error, message}` shape without echoing the request. The standalone server
 * and the request handler use them; a host mounting {@link serviceDiscoveryPlugin} may pass them to
 * `Fastify()` (they then apply to its own routes too):
 *
 * ```ts
 * const app = Fastify({ logger: true, ...apiServerOptions() });
 * ```
 */
export function apiServerOptions(): {
  routerOptions: { maxParamLength: number };
  frameworkErrors: typeof frameworkErrorHandler;
  clientErrorHandler: typeof clientErrorHandler;
} {
  return { routerOptions: { maxParamLength: MAX_ENCODED_ID_LENGTH }, frameworkErrors: frameworkErrorHandler, clientErrorHandler };
}

/** Advertises the address the host listens on as the agent's API URL, unless it has one. */
function advertiseHost(instance: FastifyInstance, agent: ServiceAgent): void {
  if (agent.advertisedApiUrl !== undefined) return;
  const address = instance.server.address();
  // A unix socket has no URL another machine could use.
  if (address === null || typeof address === 'string') return;
  const tls = typeof (instance.server as { setSecureContext?: unknown }).setSecureContext === 'function';
  const listening = `${tls ? 'https' : 'http'}://${urlHost(address.address)}:${address.port}`;
  agent.setApiUrl(`${advertisedApiUrl(listening, address.address, agent.config.service.host)}${instance.prefix}`);
}

/** Starts a standalone API server for an agent (all routes, health and metrics included). */
export async function startApiServer(agent: ServiceAgent, options: ApiServerOptions): Promise<ApiServer> {
  const logger = options.logger ?? silentLogger;
  const https = await loadTls(options.tls);
  const { app, mounted } = await buildApp(agent, { ...options, healthRoutes: true, metricsRoute: true }, https);
  // Before listening, so that every socket is seen: a stop must not wait on any client (connection-drain.ts).
  const connections = trackConnections(app.server);
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw err;
  }
  const address = app.server.address() as AddressInfo;
  const url = `${https ? 'https' : 'http'}://${urlHost(options.host)}:${address.port}`;
  const { auth } = mounted;
  logger.info(
    {
      event: 'api.listening',
      url,
      tls: https !== null,
      clientCerts: https?.requestCert === true,
      keys: auth.keyCount,
      readAccess: auth.readAccess,
      maxStreams: mounted.events.maxClients,
      maxStreamsPerClient: mounted.events.maxClientsPerAddress,
    },
    `API listening on ${url}`,
  );
  if (auth.keyCount === 0) {
    logger.warn(
      { event: 'api.no_keys' },
      auth.allowUnauthenticatedWrites
        ? 'no API key configured and unauthenticated writes allowed: anyone who reaches the API can disable services'
        : 'no API key configured: enable/disable endpoints are refused until SERVICE_DISCOVERY_API_KEY (--api-key) or a key file (--api-key-file) is set',
    );
  }
  return {
    url,
    close: () => connections.closeWithin(() => app.close()),
    metrics: mounted.metrics,
    events: mounted.events,
  };
}

/**
 * A plain Node `(req, res)` handler serving the API, for hosts that are not Fastify apps:
 *
 * ```ts
 * const handler = createRequestHandler(agent, { auth });
 * http.createServer(handler).listen(8790);
 * ```
 *
 * It routes through a Fastify instance that never listens itself (`fastify.routing`).
 */
export function createRequestHandler(agent: ServiceAgent, options: ApiHandlerOptions): ApiRequestHandler {
  // Validate the key configuration now, so a mistake fails at setup, not at the first request.
  new ApiAuthenticator(options.auth);
  let built: { app: FastifyInstance; mounted: MountedApi } | undefined;
  const ready = buildApp(
    agent,
    { ...options, healthRoutes: options.healthRoutes ?? true, metricsRoute: options.metricsRoute ?? true },
    null,
  ).then(async (b) => {
    built = b;
    await b.app.ready();
  });
  // A setup failure is reported by ready(), the log and every request; never an unhandled rejection.
  ready.catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    (options.logger ?? silentLogger).error({ event: 'api.setup_failed', err: message }, `API handler setup failed: ${message}`);
  });
  const mountedOrThrow = (): MountedApi => {
    if (!built) throw new Error('the API handler is not ready yet; await handler.ready()');
    return built.mounted;
  };
  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    ready.then(
      () => built!.app.routing(req, res),
      () => {
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error: 'internal', message: 'the API failed to start; see the agent log' }));
      },
    );
  }) as ApiRequestHandler;
  Object.defineProperties(handler, {
    ready: { value: () => ready },
    close: {
      value: async () => {
        await ready.catch(() => undefined);
        await built?.app.close();
      },
    },
    metrics: { get: () => mountedOrThrow().metrics },
    events: { get: () => mountedOrThrow().events },
  });
  return handler;
}

interface MountOptions extends ApiOptions {
  healthRoutes: boolean;
  metricsRoute: boolean;
}

/** A root Fastify instance serving the API, with JSON 404s and errors for every path. */
async function buildApp(
  agent: ServiceAgent,
  options: MountOptions & { trustProxy?: boolean | string | string[] },
  https: HttpsOptions | null,
): Promise<{ app: FastifyInstance; mounted: MountedApi }> {
  const logger = options.logger ?? silentLogger;
  const serverOptions = {
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    trustProxy: options.trustProxy ?? false,
    // Fastify's own 503-while-closing body is not in the API's error shape; close() ends streams first anyway.
    return503OnClosing: false,
    // A client gets so long to send its request; Fastify's default is never (connection-drain.ts).
    requestTimeout: REQUEST_TIMEOUT_MS,
    ...apiServerOptions(),
  } satisfies FastifyServerOptions;
  // The https variant changes fastify's server type parameter only; routes and plugins are the same.
  const app = (
    https ? Fastify({ ...serverOptions, https: { ...https, ...serverTimeouts, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS } }) : Fastify({ ...serverOptions, http: serverTimeouts })
  ) as unknown as FastifyInstance;
  app.setErrorHandler(errorHandler(logger));
  app.setNotFoundHandler(notFoundHandler);
  let mounted: MountedApi | undefined;
  await app.register(async (instance) => {
    mounted = await mountApi(instance, agent, options);
  });
  await app.ready();
  return { app, mounted: mounted! };
}

/** Registers the routes on an (encapsulated) instance; everything the plugin and the servers share. */
async function mountApi(instance: FastifyInstance, agent: ServiceAgent, options: MountOptions): Promise<MountedApi> {
  const logger = options.logger ?? silentLogger;
  const auth = new ApiAuthenticator(options.auth);
  const metrics = options.metrics ?? new AgentMetrics();
  const stopObserving = metrics.observe(agent);
  const ownsMetrics = options.metrics === undefined;
  const events = new EventStream(options.events);
  const untrack = metrics.trackEventStream(events);
  const publish = (e: Parameters<EventStream['publish']>[0]): void => events.publish(e);
  agent.on('event', publish);

  const corsOrigins = [...(options.corsOrigins ?? [])];
  const ctx: RouteContext = {
    agent,
    auth,
    events,
    metrics,
    logger,
    openapi: openApiDocument,
    serveSocket: (socket, request, admission) =>
      serveSocket(socket, request, admission, {
        events,
        auth,
        logger,
        onRefused: (err) => logRefusal(logger, WS_ROUTE, request, err),
      }),
  };

  instance.setErrorHandler(errorHandler(logger));
  // Answers carry registry data (reasons, ids): JSON.stringify leaves C1 and bidirectional controls raw,
  // which a terminal running curl would act on; escaped, any JSON parser reads the same strings back.
  instance.setReplySerializer((payload) => safeJsonText(JSON.stringify(payload)));
  // JSON only: fastify also parses text/plain by default, which no endpoint takes (415 instead).
  instance.removeContentTypeParser('text/plain');
  instance.removeContentTypeParser('application/json');
  instance.addContentTypeParser('application/json', { parseAs: 'string' }, jsonBodyParser(instance));
  // Streams never end by themselves: end them before the server waits for open connections.
  instance.addHook('preClose', async () => {
    agent.off('event', publish);
    await events.close();
  });
  instance.addHook('onClose', async () => {
    untrack();
    if (ownsMetrics) stopObserving();
  });

  // CORS for reads only: a page of a listed origin may read and stream, never enable or disable.
  if (corsOrigins.length > 0) {
    const { default: cors } = await import('@fastify/cors');
    await instance.register(cors, {
      origin: corsOrigins.includes('*') ? '*' : corsOrigins,
      methods: ['GET', 'HEAD'],
      allowedHeaders: ['Authorization', 'X-API-Key', 'Last-Event-ID'],
      exposedHeaders: ['Retry-After', 'WWW-Authenticate'],
      maxAge: 600,
    });
  }
  await registerWebSocketSupport(instance);
  const wsOrigins = corsOrigins;

  const wanted = ROUTES.filter(
    (r) => (r.group !== 'health' || options.healthRoutes) && (r.group !== 'metrics' || options.metricsRoute),
  );
  for (const spec of wanted.filter((r) => r.group !== 'service-discovery')) addRoute(instance, spec, ctx, '', wsOrigins);
  await instance.register(
    async (sd) => {
      // Unknown paths under the prefix answer in the API's shape; the host keeps its own 404s elsewhere.
      sd.setNotFoundHandler(notFoundHandler);
      for (const spec of wanted.filter((r) => r.group === 'service-discovery')) addRoute(sd, spec, ctx, SD_PREFIX, wsOrigins);
    },
    { prefix: SD_PREFIX },
  );
  return { metrics, events, auth };
}

/** The WebSocket route, for logging refusals of keys sent in a first message. */
const WS_ROUTE = ROUTES.find((r) => r.websocket !== undefined)!;

function addRoute(instance: FastifyInstance, spec: RouteSpec, ctx: RouteContext, prefix: string, wsOrigins: readonly string[]): void {
  const principals = new WeakMap<FastifyRequest, Principal>();
  // Who a refused request came as: a key's name (a viewer key on a write), or null.
  const refused = new WeakMap<FastifyRequest, string | null>();
  // WebSocket upgrades without a key header, where reads need one: the key must come in the first message.
  const keyInFirstMessage = new WeakSet<FastifyRequest>();
  const parseInput = (request: FastifyRequest, reply: FastifyReply) => {
    const principal = principals.get(request);
    if (!principal) throw new ApiError(500, 'internal', 'internal error; see the agent log');
    return {
      query: parse(spec.query, request.query, 'query'),
      params: parse(spec.params, request.params, 'path'),
      // No body at all is an empty request (the seed's `curl -X POST`); a JSON `null` is not an object.
      body: parse(spec.body, request.body === undefined ? {} : request.body, 'body'),
      principal,
      request,
      reply,
    };
  };
  const websocket = spec.websocket;
  instance.route({
    method: spec.method,
    url: spec.path.slice(prefix.length),
    exposeHeadRoute: !spec.streaming,
    bodyLimit: MAX_BODY_BYTES,
    // Authorisation runs before the body is read, so a refused caller cannot make us parse anything.
    onRequest: async (request: FastifyRequest) => {
      if (websocket && isUpgrade(request) && !originAllowed(request.headers.origin, request.headers.host, wsOrigins)) {
        // Browsers apply no CORS to WebSockets: the server must refuse other origins' pages itself.
        throw new ApiError(403, 'forbidden_origin', 'this origin may not open the event stream; see SERVICE_DISCOVERY_API_CORS_ORIGINS');
      }
      try {
        principals.set(request, ctx.auth.authorize(spec.access, request.headers));
      } catch (err) {
        if (
          websocket &&
          err instanceof AccessRefusedError &&
          err.statusCode === 401 &&
          isUpgrade(request) &&
          !hasCredentialHeaders(request)
        ) {
          keyInFirstMessage.add(request);
          principals.set(request, { name: 'pending', role: 'anonymous' });
          return;
        }
        if (err instanceof AccessRefusedError) {
          refused.set(request, err.actor);
          logRefusal(ctx.logger, spec, request, err);
        }
        throw err;
      }
    },
    onResponse: async (request: FastifyRequest, reply: FastifyReply) => {
      const url = logUrl(request.url);
      const fields = {
        event: 'api.request',
        method: request.method,
        url,
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        actor: principals.get(request)?.name ?? refused.get(request) ?? null,
        remote: request.ip,
      };
      const line = `${request.method} ${url} ${reply.statusCode}`;
      if (spec.access === 'write') ctx.logger.info(fields, line);
      else ctx.logger.debug(fields, line);
    },
    // A WebSocket route checks its query and the stream's caps before the upgrade, so a refusal is an
    // ordinary HTTP answer in the API's shape rather than a socket closed without a word.
    preHandler: websocket
      ? async (request: FastifyRequest, reply: FastifyReply) => {
          if (!isUpgrade(request)) return;
          parseInput(request, reply);
          const refusal = ctx.events.admit(request.ip);
          if (refusal) {
            throw new ApiError(refusal.statusCode, 'too_many_streams', refusal.message, { 'retry-after': String(refusal.retryAfter) });
          }
        }
      : undefined,
    handler: async (request: FastifyRequest, reply: FastifyReply) => spec.handle(ctx, parseInput(request, reply)),
    ...(websocket
      ? {
          wsHandler: (socket: ServerSocket, request: FastifyRequest) => {
            ctx.logger.debug({ event: 'api.websocket', url: logUrl(request.url), remote: request.ip }, `websocket ${logUrl(request.url)}`);
            // @fastify/websocket hands the socket to this handler with no reply: one that is never used.
            websocket(ctx, socket, { ...parseInput(request, undefined as unknown as FastifyReply), keyInFirstMessage: keyInFirstMessage.has(request) });
          },
        }
      : {}),
  });
}

/**
 * A refused request, in the log: who (the key's name, never its secret; null without a valid key),
 * what it tried (method, route, service id) and why. Not in the registry's audit trail: anyone who
 * can reach the API could fill it. Refused writes at warn, refused reads at info.
 */
function logRefusal(logger: Logger, spec: RouteSpec, request: FastifyRequest, err: AccessRefusedError): void {
  const params = request.params as Record<string, unknown> | undefined;
  const id = typeof params?.id === 'string' ? escapeUnsafe(params.id.slice(0, MAX_ID_LENGTH)) : undefined;
  const fields = {
    event: 'api.refused',
    actor: err.actor,
    method: request.method,
    route: spec.path,
    ...(id !== undefined ? { id } : {}),
    statusCode: err.statusCode,
    error: err.code,
    remote: request.ip,
  };
  const who = err.actor === null ? 'a request without a valid API key' : `API key "${err.actor}"`;
  const line = `refused ${request.method} ${spec.path}${id !== undefined ? ` (${id})` : ''} from ${who}: ${err.statusCode} ${err.code}`;
  if (spec.access === 'write') logger.warn(fields, line);
  else logger.info(fields, line);
}

/**
 * Fastify's own JSON parser (secure-json-parse, refusing `__proto__` and `constructor.prototype`
 * keys), whose one error for both malformed JSON and such keys is told apart here: a body that is
 * valid JSON but was refused is refused for its keys, and says so.
 */
function jsonBodyParser(instance: FastifyInstance): FastifyBodyParser<string> {
  const secure = instance.getDefaultJsonParser('error', 'error');
  return (request, body, done) => {
    void secure(request, body, (err, value) => {
      if (err && (err as Partial<FastifyError>).code === 'FST_ERR_CTP_INVALID_JSON_BODY' && isJson(body)) {
        done(new ApiError(400, 'bad_request', 'body: "__proto__" and "constructor.prototype" keys are not allowed'), undefined);
        return;
      }
      done(err, value);
    });
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function parse(schema: RouteSpec['query'], value: unknown, where: 'query' | 'path' | 'body'): unknown {
  if (!schema) return undefined;
  const result = schema.safeParse(value);
  if (!result.success) throw validationError(where, result.error);
  return result.data;
}

/** What node's https server gets. */
interface HttpsOptions {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
}

/** Reads the TLS files, or returns null for plain HTTP. Errors name the file, never its content. */
async function loadTls(tls: ApiTlsOptions | undefined): Promise<HttpsOptions | null> {
  if (!tls || (tls.cert === undefined && tls.key === undefined && tls.ca === undefined)) return null;
  if (tls.cert === undefined || tls.key === undefined) {
    const missing = [tls.cert === undefined ? 'the certificate' : '', tls.key === undefined ? 'the key' : ''].filter(Boolean);
    throw new Error(`API TLS needs a certificate and a key file (--api-tls-cert, --api-tls-key); missing: ${missing.join(' and ')}`);
  }
  const [cert, key, ca] = await Promise.all([
    readPem(tls.cert, 'TLS certificate'),
    readPem(tls.key, 'TLS key'),
    tls.ca === undefined ? undefined : readPem(tls.ca, 'TLS client CA'),
  ]);
  // Without a CA, any client may connect (API keys still apply); with one, the handshake itself
  // refuses a client without a certificate that CA signed, before a request is even read.
  return ca ? { cert, key, ca, requestCert: true, rejectUnauthorized: true } : { cert, key };
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read the ${what} ${path}: ${code}`);
  }
}

/** A host to put in a URL: wildcards become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
