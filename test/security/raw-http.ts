/**
 * HTTP/1.1 over a plain socket, byte for byte as given: for requests an HTTP client library refuses
 * to send (raw control bytes in the path, malformed request lines, oversized headers, bad
 * percent-encodings) and for answers Node's HTTP parser writes before any framework sees the request.
 */
import { connect } from 'node:net';

/** One answer, read whole (or only its head, for an event stream). */
export interface RawResponse {
  status: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
  /** The body as UTF-8 (empty for an event stream, whose body never ends). */
  text: string;
  /** The body parsed as JSON, or undefined. */
  json: unknown;
}

/** A request as bytes: `head` is the request line and headers without the blank line; `body` follows it. */
export interface RawRequest {
  head: string | Buffer;
  body?: string | Buffer;
}

/**
 * Sends `request` to the server at `base` (`http://127.0.0.1:PORT`) on a connection of its own and
 * reads the answer. An event stream resolves once its head arrived, and the connection is dropped.
 */
export function rawRequest(base: string, request: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  return new Promise<RawResponse>((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      const parsed = parse(Buffer.concat(chunks));
      if (parsed === undefined) {
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err ?? new Error(`no complete HTTP answer from ${base} (${Buffer.concat(chunks).length} bytes)`));
        return;
      }
      if (parsed.complete || err !== undefined || socket.readableEnded) {
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(parsed.response);
      }
    };
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${base}`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const parsed = parse(Buffer.concat(chunks));
      if (parsed?.complete) finish();
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // The server may answer and reset before it read everything we sent (431): what it said still counts.
    socket.on('error', (err) => finish(err));
    socket.write(Buffer.concat([toBuffer(request.head), Buffer.from('\r\n\r\n'), toBuffer(request.body ?? '')]));
  });
}

/** Builds a request from parts; `target` and header values are written as given (latin1 bytes). */
export function buildRequest(
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]> = [],
  body?: string | Buffer,
): RawRequest {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  const bytes = body === undefined ? undefined : toBuffer(body);
  if (bytes !== undefined && !headers.some(([n]) => n.toLowerCase() === 'content-length')) lines.push(`Content-Length: ${bytes.length}`);
  return { head: Buffer.from(lines.join('\r\n'), 'latin1'), body: bytes };
}

/** Shorthand: one request from parts, sent. */
export function raw(
  base: string,
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]> = [],
  body?: string | Buffer,
): Promise<RawResponse> {
  return rawRequest(base, buildRequest(method, target, headers, body));
}

function toBuffer(data: string | Buffer): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** The answer so far, and whether it is complete; undefined before its head is complete. */
function parse(data: Buffer): { response: RawResponse; complete: boolean } | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...headerLines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(m[1]);
  let body = data.subarray(end + 4);
  let complete: boolean;
  if ((headers['content-type'] ?? '').startsWith('text/event-stream')) {
    body = Buffer.alloc(0);
    complete = true;
  } else if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    complete = body.length >= length;
    body = body.subarray(0, length);
  } else if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') {
    const decoded = dechunk(body);
    complete = decoded !== undefined;
    body = decoded ?? body;
  } else {
    // No length: the body ends with the connection (the caller resolves on close).
    complete = status === 204 || status === 304;
  }
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { response: { status, headers, text, json }, complete };
}

/** A chunked body decoded, or undefined while its last chunk has not arrived. */
function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) return undefined;
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (data.length < start + size + 2) return undefined;
    parts.push(data.subarray(start, start + size));
    at = start + size + 2;
  }
}
