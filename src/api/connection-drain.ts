/**
 * Bounds on the API server's connections, so that no client can hold the agent's stop or tie up a
 * socket for long: Node's `server.close()` waits for every open connection, and a connection is
 * closed by it only if it is idle at that moment. Left alone, these each held a SIGTERM'd agent:
 *
 * - a client that sent half a request (headers without their end) kept it until Node's headers
 *   timeout, checked every 30 s (Fastify leaves the request timeout off);
 * - a keep-alive connection whose request was in flight when the stop began stayed open afterwards,
 *   until Fastify's keep-alive timeout (72 s) or the client's next request;
 * - a TLS client that never finished its handshake is not an HTTP connection yet (120 s handshake timeout).
 *
 * @module
 */
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';

/** How long a client has to send a request's headers, and the whole request (bodies are small). */
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
/** How long a TLS client has to finish its handshake. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often Node looks for requests past those timeouts (its default is 30 s). */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 2_000;
/** How long a stop lets in-flight requests finish before it closes their connections. */
export const CLOSE_GRACE_MS = 4_000;

/** Options for `http.createServer` / `https.createServer` carrying the bounds above. */
export const serverTimeouts = {
  headersTimeout: HEADERS_TIMEOUT_MS,
  requestTimeout: REQUEST_TIMEOUT_MS,
  connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
} as const;

/**
 * Tracks every socket the server accepts (raw TCP, so TLS handshakes and upgraded WebSocket sockets
 * too) and returns `closeWithin(close, graceMs)`: runs `close` (the app's close, which stops listening
 * and ends the event streams) while closing each connection as soon as it is idle, and destroys the
 * ones still open after `graceMs`.
 */
export function trackConnections(server: HttpServer): { closeWithin(close: () => Promise<void>, graceMs?: number): Promise<void> } {
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  // `connection` carries the raw TCP socket (before any TLS handshake); over TLS the HTTP connection
  // is the TLS socket wrapped around it (`secureConnection`), which destroying the raw one may not end.
  server.on('connection', track);
  server.on('secureConnection', track);
  return {
    async closeWithin(close, graceMs = CLOSE_GRACE_MS) {
      // A request in flight when the stop began leaves a keep-alive connection: close it once idle.
      const reaper = setInterval(() => server.closeIdleConnections(), 50);
      const force = setTimeout(() => {
        for (const socket of sockets) socket.destroy();
      }, graceMs);
      try {
        await close();
      } finally {
        clearInterval(reaper);
        clearTimeout(force);
      }
    },
  };
}
