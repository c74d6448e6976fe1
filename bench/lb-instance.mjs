#!/usr/bin/env node
// The instance behind the load balancer in bench/traffic.ts: a plain HTTP server standing in for a
// Proxy-Stone instance that does real work. Plain JavaScript so it starts in a bare `node`, as fast
// as a restarted instance would, without a TypeScript loader.
//   GET /health   200 {status: "ok"} (the agent's and HAProxy's checks)
//   anything else holds the request HOLD_MIN_MS..HOLD_MAX_MS (uniform), then answers 200
//                 {instance, port} with an `x-instance` header: which instance answered
// Every request other than /health is written to stdout as it arrives, `A <epoch ms>` (fractional,
// performance.timeOrigin + now(), comparable across processes), so the bench sees arrivals at the
// instance itself. SIGTERM closes it as a Fastify server does: no new connections, in-flight requests
// finish, idle keep-alive connections are closed, then exit 0.
// Environment: PORT, INSTANCE_ID, HOLD_MIN_MS (default 5), HOLD_MAX_MS (default 20).
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

const port = Number(process.env.PORT);
const id = process.env.INSTANCE_ID ?? `instance-${port}`;
const holdMin = Number(process.env.HOLD_MIN_MS ?? 5);
const holdMax = Number(process.env.HOLD_MAX_MS ?? 20);
let inflight = 0;

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  process.stdout.write(`A ${performance.timeOrigin + performance.now()}\n`);
  inflight++;
  setTimeout(() => {
    inflight--;
    res.writeHead(200, { 'content-type': 'application/json', 'x-instance': id });
    res.end(JSON.stringify({ instance: id, port }));
  }, holdMin + Math.random() * (holdMax - holdMin));
});
server.keepAliveTimeout = 30_000;

server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));

process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  // Idle keep-alive connections would hold close() open; busy ones are closed once they answer.
  const idle = setInterval(() => server.closeIdleConnections(), 20);
  idle.unref();
  setTimeout(() => {
    process.stderr.write(`still ${inflight} in flight after 5 s; exiting\n`);
    process.exit(1);
  }, 5000).unref();
});
