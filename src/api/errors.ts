/**
 * Every error the API sends is `{error: "<code>", message: "<one line>"}`, whatever failed: a bad
 * request, a refused key, the registry being away or a bug. Stack traces go to the log, never out.
 *
 * @module
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ConcurrentChangeError, ServiceNotFoundError } from '../cluster/admin.js';
import { CapacityError } from '../cluster/capacity.js';
import { RegistryRequestError, RegistryUnavailableError } from '../registry/types.js';
import type { Logger } from '../util/logger.js';

/** Machine-readable error codes of the API. */
export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'writes_disabled'
  | 'not_found'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'not_started'
  | 'registry_unavailable'
  | 'internal'
  | 'refused'
  | 'conflict';

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
  }
  // Other client errors fastify raises itself (malformed JSON from the parser, proto poisoning, …)
  // carry safe one-line messages of their own.
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) return new ApiError(413, 'payload_too_large', `body: larger than ${MAX_BODY_BYTES} bytes`);
  if (status === 415) return new ApiError(415, 'unsupported_media_type', 'body: expected Content-Type application/json');
  if (status >= 400 && status < 500) {
    const message = err instanceof SyntaxError ? 'body: malformed JSON' : `request: ${fe?.message ?? 'invalid'}`;
    return new ApiError(400, 'bad_request', message);
  }
  return new ApiError(500, 'internal', 'internal error; see the agent log');
}

/** Sends an error as JSON. */
export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
  return reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toBody());
}

/** A fastify error handler that answers in the API's error shape and logs server errors. */
export function errorHandler(logger: Logger) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    const apiError = toApiError(err);
    if (apiError.statusCode >= 500) {
      const e = err instanceof Error ? err : new Error(String(err));
      logger.error(
        { event: 'api.error', method: request.method, url: request.url, err: { name: e.name, message: e.message, stack: e.stack } },
        `${request.method} ${request.url} failed: ${e.message}`,
      );
    }
    void sendError(reply, apiError);
  };
}

/** A fastify not-found handler in the API's error shape. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0] ?? request.url;
  void sendError(reply, new ApiError(404, 'not_found', `no route ${request.method} ${truncate(path, 200)}`));
}

function oneLine(text: string): string {
  return truncate(text.replace(/\s*\n\s*/g, ' ').trim(), 500);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
