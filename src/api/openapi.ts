/**
 * The OpenAPI 3.1 document of the API, generated from the route table ({@link ROUTES}) and the zod
 * schemas. `GET /service-discovery/openapi.json` serves it and `docs/openapi.json` is a copy written by
 * `npx tsx src/api/write-openapi.ts`; a test fails when the copy is out of date.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { MAX_BODY_BYTES } from './errors.js';
import { ROUTES, type ResponseSpec, type RouteSpec } from './routes.js';
import { ErrorResponseSchema, EventIdSchema, schemaRegistry } from './schemas.js';

/** A JSON value, as the document is plain data. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

const REF_PREFIX = '#/components/schemas/';

let cached: JsonObject | undefined;

/** The OpenAPI document (built once, then shared; treat it as read-only). */
export function openApiDocument(): JsonObject {
  cached ??= buildOpenApiDocument(ROUTES);
  return cached;
}

/** Builds the document for a route table. */
export function buildOpenApiDocument(routes: readonly RouteSpec[]): JsonObject {
  const { schemas } = z.toJSONSchema(schemaRegistry, { uri: (id) => `${REF_PREFIX}${id}` }) as { schemas: Record<string, JsonObject> };
  const components: JsonObject = {};
  for (const id of Object.keys(schemas).sort()) components[id] = clean(schemas[id]!);

  const paths: Record<string, JsonObject> = {};
  for (const spec of routes) {
    const path = spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const item = (paths[path] ??= {});
    item[spec.method.toLowerCase()] = operation(spec);
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'proxy-stone-sd agent API',
      version: packageVersion(),
      description:
        'The HTTP API of a proxy-stone-sd agent: service discovery for fleets of Proxy-Stone instances. ' +
        'Every error is `{error, message}`. Reads may be open (by configuration); enabling and disabling ' +
        'services needs an API key with role `operator`, sent as `Authorization: Bearer <key>` or `X-API-Key`.',
    },
    tags: [
      { name: 'discovery', description: 'Services, topology and events' },
      { name: 'management', description: 'Enable/disable and the audit trail' },
      { name: 'probes', description: 'Health probes and metrics of the agent itself' },
      { name: 'meta', description: 'This document' },
    ],
    paths: paths as JsonObject,
    components: {
      schemas: components,
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key as a bearer token.' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
  };
}

function operation(spec: RouteSpec): JsonObject {
  const op: JsonObject = { operationId: spec.operationId, summary: spec.summary, tags: [spec.tag] };
  if (spec.description) op.description = spec.description;
  const parameters: JsonValue[] = [];
  if (spec.params) parameters.push(...parametersOf(spec.params, 'path'));
  if (spec.query) parameters.push(...parametersOf(spec.query, 'query'));
  if (spec.streaming) {
    parameters.push({
      name: 'Last-Event-ID',
      in: 'header',
      required: false,
      description: 'Resume after this event id (sent by EventSource on reconnect).',
      schema: inputSchema(EventIdSchema),
    });
  }
  if (parameters.length > 0) op.parameters = parameters;
  if (spec.body) {
    op.requestBody = {
      required: false,
      description: `Optional JSON body of at most ${MAX_BODY_BYTES} bytes.`,
      content: { 'application/json': { schema: inputSchema(spec.body) } },
    };
  }
  if (spec.access === 'read') op.security = [{}, { bearerAuth: [] }, { apiKeyHeader: [] }];
  else if (spec.access === 'write') op.security = [{ bearerAuth: [] }, { apiKeyHeader: [] }];
  else op.security = [{}];

  const responses: Record<string, JsonValue> = {};
  for (const [code, r] of Object.entries(spec.responses)) responses[code] = response(r);
  const error = (description: string): JsonValue => response({ description, schema: ErrorResponseSchema });
  if (spec.params || spec.query || spec.body) responses['400'] ??= error('A parameter or the body is invalid; the message names the field.');
  if (spec.access !== 'public') responses['401'] ??= error('Missing or invalid API key (reads need one when configured so).');
  if (spec.access === 'write') responses['403'] ??= error('The key may not act (role viewer), or no key is configured at all.');
  if (spec.body) {
    responses['413'] ??= error(`Body larger than ${MAX_BODY_BYTES} bytes.`);
    responses['415'] ??= error('Body is not application/json.');
  }
  for (const [code, r] of Object.entries(responses)) {
    // Route-specific error entries without a schema get the error shape.
    const entry = r as JsonObject;
    if (Number(code) >= 400 && entry.content === undefined) responses[code] = error(String(entry.description));
  }
  responses.default = error('Unexpected error.');
  op.responses = responses;
  return op;
}

function response(r: ResponseSpec): JsonValue {
  const out: JsonObject = { description: r.description };
  const type = r.contentType ?? 'application/json';
  if (type === 'text/event-stream') {
    // OpenAPI 3.1 cannot type the frames of a stream; the extension names the schema of each data line.
    out.content = {
      'text/event-stream': {
        schema: { type: 'string', description: 'SSE frames; the JSON of each `data:` line is a ClusterEvent.' },
        'x-data-schema': refOrInline(r.schema),
      },
    };
  } else if (type === 'text/plain') {
    out.content = { 'text/plain': { schema: { type: 'string' } } };
  } else if (r.schema) {
    out.content = { 'application/json': { schema: refOrInline(r.schema) } };
  }
  return out;
}

function refOrInline(schema: z.ZodType | undefined): JsonValue {
  if (!schema) return { type: 'object' };
  const meta = schemaRegistry.get(schema);
  if (meta) return { $ref: `${REF_PREFIX}${meta.id}` };
  return inputSchema(schema);
}

function inputSchema(schema: z.ZodType): JsonObject {
  const meta = schemaRegistry.get(schema);
  if (meta) return { $ref: `${REF_PREFIX}${meta.id}` };
  return clean(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonObject);
}

function parametersOf(schema: z.ZodType, where: 'path' | 'query'): JsonValue[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonObject>;
    required?: string[];
  };
  const required = new Set(json.required ?? []);
  return Object.entries(json.properties ?? {}).map(([name, prop]) => {
    const { description, ...rest } = clean(prop);
    const p: JsonObject = { name, in: where, required: where === 'path' || required.has(name), schema: rest };
    if (typeof description === 'string') p.description = description;
    return p;
  });
}

/** Drops the JSON Schema document keywords that do not belong inside an OpenAPI document. */
function clean(schema: JsonObject): JsonObject {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

function packageVersion(): string {
  try {
    // src/api and dist/api both sit two levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
