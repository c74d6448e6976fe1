/**
 * The event stream over WebSocket (`GET /service-discovery/ws`), and the browser-origin rules shared
 * with CORS. The stream itself (ids, resume, overflow, caps) is {@link EventStream}'s, the same as
 * SSE's; this module does what only a WebSocket needs: the upgrade (through `@fastify/websocket`, so
 * the route's hooks, auth and logging run as for any route), a key in the first message for browsers
 * (which cannot set headers on a WebSocket), and bounds on what a client may send.
 *
 * Protocol, client to server: nothing, or, when reads need a key and none came in a header, one
 * first message within {@link WS_AUTH_TIMEOUT_MS}: `{"type":"auth","key":"…","lastEventId"?:"…",
 * "types"?:"serviceJoined,…"}` (at most {@link WS_MAX_MESSAGE_BYTES} bytes). The key is never taken
 * from the URL, where logs and proxies would keep it. Any later message closes the socket (1008).
 * Server to client: the messages documented in ./events.ts.
 *
 * @module
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from '../util/logger.js';
import { AccessRefusedError, type ApiAuthenticator } from './auth.js';
import { WS_CLOSE, type EventStream, type EventSubscription, type StreamSocket } from './events.js';
import { EventIdSchema, parseEventTypes } from './schemas.js';

/** How long a socket that needs a key in its first message may take to send it. */
export const WS_AUTH_TIMEOUT_MS = 5000;

/** Largest message a client may send (the auth message); larger ones close the socket (1009). */
export const WS_MAX_MESSAGE_BYTES = 4096;

/** What the route decided before the upgrade. */
export interface SocketAdmission {
  /** True when reads need a key and the upgrade request carried none: the first message must. */
  keyInFirstMessage: boolean;
  /** From the query: used unless the auth message names its own. */
  lastEventId?: string;
  types?: EventSubscription['types'];
  /** From the query (`?since=`, epoch ms): replay the kept events from then, as on SSE. */
  since?: number;
}

/** A WebSocket as the `ws` package gives it, as far as this module uses it. */
export interface ServerSocket extends StreamSocket {
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'pong', listener: () => void): unknown;
  on(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
}

/**
 * Registers `@fastify/websocket` on the API's instance, unless the host already has it (a host that
 * serves its own WebSockets: registering it twice would upgrade each request twice). Loaded here,
 * when the API is mounted, not when this package is imported.
 */
export async function registerWebSocketSupport(instance: FastifyInstance): Promise<void> {
  if (instance.hasDecorator('websocketServer')) return;
  const { default: websocket } = await import('@fastify/websocket');
  await instance.register(websocket, {
    options: {
      maxPayload: WS_MAX_MESSAGE_BYTES,
      // Compression costs memory per socket and opens the door to zip bombs; events are small.
      perMessageDeflate: false,
    },
  });
}

/** Whether the request asks for a WebSocket upgrade. */
export function isUpgrade(request: FastifyRequest): boolean {
  const upgrade = request.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** Whether an upgrade request's headers carry credentials (a header key is checked as on any route). */
export function hasCredentialHeaders(request: FastifyRequest): boolean {
  return request.headers.authorization !== undefined || request.headers['x-api-key'] !== undefined;
}

/**
 * Whether a browser page of `origin` may use the API: listed, `*` listed, or the API's own origin
 * (same host as the request). A request without an Origin header is not from a browser page.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  if (allowed.includes('*') || allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * Serves one upgraded socket: counts it against the stream caps at once, then starts the stream, after
 * the first message's key when one is needed.
 */
export function serveSocket(
  socket: ServerSocket,
  request: FastifyRequest,
  admission: SocketAdmission,
  deps: { events: EventStream; auth: ApiAuthenticator; logger: Logger; onRefused(err: AccessRefusedError): void },
): void {
  const pending = deps.events.acceptSocket(socket, request.ip);
  if (!pending) return;
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  const start = (subscription: Omit<EventSubscription, 'address'>): void => {
    started = true;
    clearTimeout(timer);
    pending.start(subscription);
  };
  socket.on('close', () => clearTimeout(timer));
  let first = true;
  socket.on('message', (data, isBinary) => {
    const wasFirst = first;
    first = false;
    if (!wasFirst) {
      pending.refuse(WS_CLOSE.badMessage, 'this stream takes one message, the first (auth)');
      return;
    }
    const message = readAuthMessage(data, isBinary);
    if (typeof message === 'string') {
      pending.refuse(WS_CLOSE.badMessage, message);
      return;
    }
    if (started) return; // Authorised by header or open reads: a client that sends its key anyway is fine.
    try {
      deps.auth.authorize('read', { 'x-api-key': message.key });
    } catch (err) {
      if (err instanceof AccessRefusedError) {
        deps.onRefused(err);
        pending.refuse(err.statusCode === 403 ? WS_CLOSE.forbidden : WS_CLOSE.unauthorized, err.message);
        return;
      }
      throw err;
    }
    start({ lastEventId: message.lastEventId ?? admission.lastEventId, types: message.types ?? admission.types, since: admission.since });
  });
  if (admission.keyInFirstMessage) {
    timer = setTimeout(() => {
      pending.refuse(WS_CLOSE.unauthorized, `missing API key: send {"type":"auth","key":"…"} as the first message within ${WS_AUTH_TIMEOUT_MS / 1000}s`);
    }, WS_AUTH_TIMEOUT_MS);
    timer.unref();
  } else {
    start({ lastEventId: admission.lastEventId, types: admission.types, since: admission.since });
  }
}

interface AuthMessage {
  key: string;
  lastEventId?: string;
  types?: EventSubscription['types'];
}

const MAX_KEY_CHARS = 1024;

/** The first message as an auth message, or why it is not one (a one-line reason for the close frame). */
function readAuthMessage(data: unknown, isBinary: boolean): AuthMessage | string {
  if (isBinary) return 'expected a text message';
  const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data as Buffer[]).toString('utf8') : String(data);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'expected a JSON message {"type":"auth","key":"…"}';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'expected a JSON object {"type":"auth","key":"…"}';
  const m = parsed as Record<string, unknown>;
  if (m.type !== 'auth') return 'type: expected "auth"';
  if (typeof m.key !== 'string' || m.key.length === 0 || m.key.length > MAX_KEY_CHARS) return `key: expected a string of 1-${MAX_KEY_CHARS} characters`;
  let lastEventId: string | undefined;
  if (m.lastEventId !== undefined) {
    const id = EventIdSchema.safeParse(m.lastEventId);
    if (!id.success || typeof m.lastEventId !== 'string') return 'lastEventId: expected an event id string';
    lastEventId = id.data;
  }
  let types: EventSubscription['types'];
  if (m.types !== undefined) {
    types = typeof m.types === 'string' && m.types.length <= 512 ? parseEventTypes(m.types) : undefined;
    if (!types) return 'types: expected a comma-separated list of event types';
  }
  return { key: m.key, ...(lastEventId !== undefined ? { lastEventId } : {}), ...(types ? { types } : {}) };
}
