#!/usr/bin/env node
// A stand-in for a Proxy-Stone instance, for trying the stack without a Proxy-Stone image. It answers
// what the agent and an operator touch, the way Proxy-Stone does:
//   GET  /health                       200 {status: "ok"} or 503 {status: "unhealthy"}
//   GET  /health/live, /health/ready   liveness (always 200) and readiness (as /health)
//   GET  /api/cluster/service-status   {status: {mode: "serving"|"maintenance", enabled}}
//   POST /api/cluster/disable-serving, /api/cluster/enable-serving
// plus, to watch the agent react (as `npm run demo`'s upstreams):
//   POST /admin/down, /admin/up, /admin/flap   make /health fail, pass, or alternate every 4 s
// Environment: PORT (default 3000), HOST (default 0.0.0.0). Replace it with your Proxy-Stone image.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '0.0.0.0';
const startedAt = Date.now();
let health = 'up';
let serving = true;

const healthy = () => (health === 'up' ? true : health === 'down' ? false : Math.floor((Date.now() - startedAt) / 4000) % 2 === 0);

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
};

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  const post = req.method === 'POST';
  if (!post && (path === '/health' || path === '/health/ready')) {
    const ok = healthy();
    return json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unhealthy', uptime: (Date.now() - startedAt) / 1000 });
  }
  if (!post && path === '/health/live') return json(res, 200, { status: 'ok' });
  if (!post && path === '/api/cluster/service-status') {
    return json(res, 200, { status: { mode: serving ? 'serving' : 'maintenance', enabled: serving } });
  }
  if (post && (path === '/api/cluster/disable-serving' || path === '/api/cluster/enable-serving')) {
    serving = path.endsWith('/enable-serving');
    return json(res, 200, { status: { mode: serving ? 'serving' : 'maintenance', enabled: serving } });
  }
  if (post && path.startsWith('/admin/')) {
    const next = { '/admin/up': 'up', '/admin/down': 'down', '/admin/flap': 'flapping' }[path];
    if (!next) return json(res, 404, { error: 'not_found', message: 'use /admin/up, /admin/down or /admin/flap' });
    health = next;
    return json(res, 200, { health });
  }
  // The port says which instance answered, for trying a load balancer in front (docs/load-balancers.md).
  if (!post && path === '/') return json(res, 200, { service: 'proxy-stone-standin', port, health, serving });
  return json(res, 404, { error: 'not_found' });
});

server.listen(port, host, () => {
  console.log(JSON.stringify({ level: 30, time: Date.now(), msg: `proxy-stone stand-in listening on ${host}:${port}` }));
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
