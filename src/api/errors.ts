/**
 * Every error the API sends is `{error: "<code>", message: "<one line>"}`, whatever failed: a bad
 * request, a refused key, the registry being away or a bug. Stack traces go to the log, never out.
 *
 * @module
 */
import { LiveServiceError } from '../cluster/forget.js';
import { LeaderTermError, NoLeaderError } from '../cluster/leader.js';
import { STATUS_CODES, maxHeaderSize } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ConcurrentChangeError, ServiceNotFoundError } from '../cluster/admin.js';
import { CapacityError } from '../cluster/capacity.js';
import { RegistryRequestError, RegistryUnavailableError } from '../registry/types.js';
import type { Logger } from '../util/logger.js';
import { escapeUnsafe, safeJsonText } from '../util/text.js';
import { redactUrl } from './redact.js';

/** Machine-readable error codes of the API. */
export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'writes_disabled'
  | 'not_found'
  | 'no_leader'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'not_started'
  | 'registry_unavailable'
  | 'internal'
  | 'refused'
  | 'conflict'
  | 'uri_too_long'
  | 'headers_too_large'
  | 'request_timeout'
  | 'too_many_streams'
  | 'upgrade_required'
  | 'forbidden_origin';

/** Body of every error response. */
export interface ApiErrorBody {
  error: ApiErrorCode;
  message: string;
}

/** An error that maps to one HTTP response. `message` is shown to the client: keep it one safe line. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly statusCode: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(oneLine(message));
  }

  toBody(): ApiErrorBody {
    return { error: this.code, message: this.message };
  }
}

/** Largest request body accepted (enable/disable bodies are a reason and a time). */
export const MAX_BODY_BYTES = 16 * 1024;

/** Turns zod issues into one 400 naming the first offending field: `reason: expected a string of at most 500 characters`. */
export function validationError(where: 'query' | 'body' | 'path', error: z.ZodError): ApiError {
  const issue = error.issues[0];
  if (!issue) return new ApiError(400, 'bad_request', `${where}: invalid`);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map(String);
    return new ApiError(400, 'bad_request', `${keys[0]}: unknown field${keys.length > 1 ? ` (also ${keys.slice(1).join(', ')})` : ''}`);
  }
  const field = issue.path.map(String).join('.') || where;
  return new ApiError(400, 'bad_request', `${field}: ${issue.message}`);
}

/** Maps anything thrown during a request to an {@link ApiError}; unknown errors become a bare 500. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ServiceNotFoundError) return new ApiError(404, 'not_found', `service ${err.serviceId} not found`);
  if (err instanceof CapacityError) return new ApiError(409, 'refused', err.message.replace('use --force', 'send "force": true'));
  if (err instanceof ConcurrentChangeError) return new ApiError(409, 'conflict', err.message);
  if (err instanceof LiveServiceError) return new ApiError(409, 'refused', err.message.replace('use --force', 'send "force": true'));
  if (err instanceof NoLeaderError) return new ApiError(404, 'no_leader', err.message);
  if (err instanceof LeaderTermError) return new ApiError(409, 'conflict', err.message);
  // Said as it is: an operator can act on etcd's limit, not on a bare 500.
  if (err instanceof RegistryRequestError) return new ApiError(500, 'internal', err.message);
  if (err instanceof RegistryUnavailableError) {
    return new ApiError(503, 'registry_unavailable', 'the registry is unreachable; try again shortly');
  }
  const fe = err as Partial<FastifyError> | undefined;
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'payload_too_large', `body: larger than ${MAX_BODY_BYTES} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'body: expected Content-Type application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'bad_request', 'body: expected a JSON object, got an empty body');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'bad_request', 'body: malformed JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'bad_request', 'body: Content-Length does not match the body');
    // Raised by the router (the server's frameworkErrors): Fastify's own answers echo the whole path.
    case 'FST_ERR_BAD_URL':
      return new ApiError(400, 'bad_request', 'path: invalid percent-encoding');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new ApiError(414, 'uri_too_long', 'path: a path segment is longer than any service id can be');
  }
  // Other client errors Fastify raises itself: their messages may quote the request, so none is echoed.
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) return new ApiError(413, 'payload_too_large', `body: larger than ${MAX_BODY_BYTES} bytes`);
  if (status === 415) return new ApiError(415, 'unsupported_media_type', 'body: expected Content-Type application/json');
  if (status >= 400 && status < 500) {
    return new ApiError(400, 'bad_request', err instanceof SyntaxError ? 'body: malformed JSON' : 'request: invalid request');
  }
  return new ApiError(500, 'internal', 'internal error; see the agent log');
}

/**
 * The error as the bytes of a JSON body. Serialised here rather than by the instance's serializer so
 * that every path (routes, router, 404) sends the same text: what `JSON.stringify` leaves raw of the
 * control and bidirectional characters is escaped too.
 */
function errorJson(error: ApiError): string {
  return safeJsonText(JSON.stringify(error.toBody()));
}

/** Sends an error as JSON. */
export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
  return reply.code(error.statusCode).type('application/json; charset=utf-8').send(errorJson(error));
}

/** A fastify error handler that answers in the API's error shape and logs server errors. */
export function errorHandler(logger: Logger) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    const apiError = toApiError(err);
    if (apiError.statusCode >= 500) {
      const e = err instanceof Error ? err : new Error(String(err));
      const url = logUrl(request.url);
      logger.error(
        { event: 'api.error', method: request.method, url, err: { name: e.name, message: e.message, stack: e.stack } },
        `${request.method} ${url} failed: ${e.message}`,
      );
    }
    void sendError(reply, apiError);
  };
}

/**
 * The server's `frameworkErrors` option: what the router refuses before any route or hook runs (a
 * bad percent-encoding, a path segment over `maxParamLength`), in the API's error shape.
 */
export function frameworkErrorHandler(err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, toApiError(err));
}

/**
 * The server's `clientErrorHandler` option: what Node's HTTP parser refuses before Fastify sees a
 * request (headers over the size limit, a malformed request line or header, a request not received
 * in time), answered in the API's error shape on the raw socket, which is then closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection, or one already answered: nothing to say to it.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let error: ApiError;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    error = new ApiError(431, 'headers_too_large', `request: the request line and headers are larger than ${maxHeaderSize} bytes`);
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    error = new ApiError(408, 'request_timeout', 'request: not received in time');
  } else {
    error = new ApiError(400, 'bad_request', 'request: malformed HTTP request');
  }
  if (socket.writable) {
    const body = errorJson(error);
    socket.write(
      `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode] ?? ''}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }
  // As Node's own handler does: the parser cannot go on with this connection.
  socket.destroy();
}

/** A fastify not-found handler in the API's error shape: the path shown escaped and cut short, never the query. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  const path = redactUrl(request.url.split('?')[0] ?? request.url);
  void sendError(reply, new ApiError(404, 'not_found', `no route ${escapeUnsafe(request.method)} ${truncate(path, 200)}`));
}

/** A request URL as it may be logged: credentials redacted, control characters escaped, cut short. */
export function logUrl(url: string): string {
  return truncate(escapeUnsafe(redactUrl(url)), 2048);
}

/** One line of at most 500 characters, control characters shown as escapes. */
function oneLine(text: string): string {
  return truncate(escapeUnsafe(text.replace(/\s*\n\s*/g, ' ').trim()), 500);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
