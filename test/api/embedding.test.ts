import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentMetrics } from '../../src/api/metrics.js';
import { ProxyStoneServiceDiscovery } from '../../src/service-discovery.js';
import { createRequestHandler, serviceDiscoveryPlugin } from '../../src/api/server.js';
import { ServiceListSchema, StatusResponseSchema } from '../../src/api/schemas.js';
import { SseClient, TestCluster, eventually, http, postJson } from './fixtures.js';
import { listenOnLoopback } from '../helpers/loopback.js';

const KEY = 'embed-operator-key-42';

describe('API embedded in a host', function () {
  let cluster: TestCluster;

  before(async function () {
    cluster = await TestCluster.memory();
    await cluster.addAgent({ id: 'host-a' });
    await cluster.addAgent({ id: 'host-b' });
    await cluster.settled(2);
  });

  after(async function () {
    await cluster?.stop();
  });

  describe('as a Fastify plugin on a Proxy-Stone-like host', function () {
    let app: FastifyInstance;
    let base: string;

    before(async function () {
      app = Fastify();
      // The host's own routes, as Proxy-Stone has them.
      app.get('/health', async () => ({ status: 'ok', from: 'proxy-stone' }));
      app.post('/api/echo', async (req) => ({ got: req.body }));
      await app.register(serviceDiscoveryPlugin, {
        agent: cluster.agents[0]!,
        auth: { keys: [{ name: 'ops', role: 'operator', key: KEY }], readAccess: 'open' },
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    });

    after(async function () {
      await app?.close();
    });

    it('serves the routes under /service-discovery and /metrics', async function () {
      const status = await http(`${base}/service-discovery/status`);
      expect(StatusResponseSchema.parse(status.json).currentService.id).to.equal('host-a');
      expect(ServiceListSchema.parse((await http(`${base}/service-discovery/services`)).json).total).to.equal(2);
      expect((await http(`${base}/metrics`)).text).to.include('proxy_stone_cluster_size 2');
      const disable = await postJson(`${base}/service-discovery/services/host-b/disable`, { reason: 'x' }, { 'X-API-Key': KEY });
      expect(disable.status, disable.text).to.equal(200);
      expect((await postJson(`${base}/service-discovery/services/host-b/enable`, {}, { 'X-API-Key': KEY })).status).to.equal(200);
    });

    it("leaves the host's routes, parsers and 404s alone", async function () {
      expect((await http(`${base}/health`)).json).to.deep.equal({ status: 'ok', from: 'proxy-stone' });
      // The host still parses text/plain, which the plugin refuses for its own routes.
      const echo = await http(`${base}/api/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
      expect(echo.json).to.deep.equal({ got: 'hi' });
      const hostMiss = await http(`${base}/nope`);
      expect(hostMiss.status).to.equal(404);
      expect(hostMiss.json).to.have.property('statusCode', 404); // fastify's own 404 shape
      const sdMiss = await http(`${base}/service-discovery/nope`);
      expect(sdMiss.json).to.deep.equal({ error: 'not_found', message: 'no route GET /service-discovery/nope' });
    });

    it('ends event streams when the host closes', async function () {
      const host = Fastify();
      await host.register(serviceDiscoveryPlugin, { agent: cluster.agents[0]!, auth: { keys: [], readAccess: 'open' } });
      await host.listen({ host: '127.0.0.1', port: 0 });
      const sse = new SseClient(`http://127.0.0.1:${(host.server.address() as AddressInfo).port}/service-discovery/events`);
      await sse.opened;
      const t0 = Date.now();
      await host.close();
      expect(Date.now() - t0).to.be.lessThan(2000);
      await sse.waitFor('the stream ended', (c) => c.ended);
    });
  });

  describe("advertising the host's address as the agent's API URL", function () {
    const hosts: FastifyInstance[] = [];
    afterEach(async function () {
      await Promise.all(hosts.splice(0).map((h) => h.close()));
    });

    /** A fresh agent (not started: the URL is only remembered until it registers) on a host listening on loopback. */
    async function mount(options: { prefix?: string; advertise?: boolean; advertiseUrl?: string } = {}) {
      const agent = await cluster.addAgent({ id: `adv-${hosts.length}-${Date.now()}` }, { start: false });
      if (options.advertiseUrl) agent.setApiUrl(options.advertiseUrl);
      const host = Fastify();
      hosts.push(host);
      await host.register(serviceDiscoveryPlugin, {
        agent,
        auth: { keys: [], readAccess: 'open' },
        ...(options.advertise === undefined ? {} : { advertise: options.advertise }),
        ...(options.prefix ? { prefix: options.prefix } : {}),
      });
      expect(agent.advertisedApiUrl, 'nothing advertised before the host listens').to.equal(options.advertiseUrl);
      await host.listen({ host: '127.0.0.1', port: 0 });
      return { agent, port: (host.server.address() as AddressInfo).port };
    }

    it('advertises where the host listens once it does, with the prefix the plugin is mounted under', async function () {
      const plain = await mount();
      expect(plain.agent.advertisedApiUrl).to.equal(`http://127.0.0.1:${plain.port}`);
      const prefixed = await mount({ prefix: '/sd' });
      expect(prefixed.agent.advertisedApiUrl).to.equal(`http://127.0.0.1:${prefixed.port}/sd`);
    });

    it('keeps a URL the agent already has (api.advertiseUrl), and advertises nothing with advertise: false', async function () {
      const configured = await mount({ advertiseUrl: 'https://ps-1.example:8443' });
      expect(configured.agent.advertisedApiUrl).to.equal('https://ps-1.example:8443');
      const off = await mount({ advertise: false });
      expect(off.agent.advertisedApiUrl).to.equal(undefined);
      // The setting, as the seed's config object carries it.
      const sd = new ProxyStoneServiceDiscovery({ cluster: { discovery: { registry: 'memory' } }, api: { advertiseUrl: 'http://ps-2.example:3001' } });
      expect(sd.advertisedApiUrl).to.equal('http://ps-2.example:3001');
    });

    it('the advertised URL reaches the record, so peers and Prometheus service discovery find this API', async function () {
      const { agent, port } = await mount();
      await agent.start();
      try {
        const record = await eventually('the record with apiUrl', () => cluster.agents[0]!.view.service(agent.id));
        expect(record.apiUrl).to.equal(`http://127.0.0.1:${port}`);
      } finally {
        await agent.stop();
      }
    });

    it('declares itself a Fastify 5 plugin (fastify refuses it on another major) that keeps its own encapsulation', function () {
      const plugin = serviceDiscoveryPlugin as unknown as Record<symbol, unknown>;
      expect(plugin[Symbol.for('plugin-meta')]).to.include({ name: 'proxy-stone-sd', fastify: '5.x' });
      expect(plugin[Symbol.for('skip-override')]).to.equal(false);
    });
  });

  describe('as a Fastify plugin beside a host with its own health, cluster API and metrics', function () {
    let app: FastifyInstance;
    let base: string;
    let hostHits = 0;

    before(async function () {
      app = Fastify();
      // What Proxy-Stone itself serves (DESIGN.md): its health, its maintenance switch, its own metrics.
      let serving = true;
      app.addHook('onRequest', async () => {
        hostHits++;
      });
      app.get('/health', async () => ({ status: 'ok', uptime: 1 }));
      app.get('/health/live', async () => ({ status: 'ok' }));
      app.get('/api/cluster/service-status', async () => ({ status: { mode: serving ? 'serving' : 'maintenance', enabled: serving } }));
      app.post('/api/cluster/disable-serving', async () => {
        serving = false;
        return { ok: true };
      });
      // The host owns /metrics and appends the agent's text to its own.
      const metrics = new AgentMetrics({ processMetrics: false });
      app.get('/metrics', async (_req, reply) => {
        void reply.type(metrics.contentType);
        return `# HELP proxy_stone_requests_total Host requests.\n# TYPE proxy_stone_requests_total counter\nproxy_stone_requests_total ${hostHits}\n${await metrics.render()}`;
      });
      await app.register(serviceDiscoveryPlugin, {
        agent: cluster.agents[0]!,
        auth: { keys: [{ name: 'ops', role: 'operator', key: KEY }], readAccess: 'open' },
        metrics,
        metricsRoute: false,
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    });

    after(async function () {
      await app?.close();
    });

    it('serves both route sets side by side, each with its own answers', async function () {
      expect((await http(`${base}/health`)).json).to.deep.equal({ status: 'ok', uptime: 1 });
      expect((await http(`${base}/health/live`)).json).to.deep.equal({ status: 'ok' });
      expect((await http(`${base}/api/cluster/service-status`)).json).to.deep.equal({ status: { mode: 'serving', enabled: true } });
      expect((await http(`${base}/service-discovery/topology`)).status).to.equal(200);
      const services = ServiceListSchema.parse((await http(`${base}/service-discovery/services`)).json);
      expect(services.services.map((x) => x.id)).to.deep.equal(['host-a', 'host-b']);
      // The host's switch and the plugin's management endpoint do not interfere.
      expect((await http(`${base}/api/cluster/disable-serving`, { method: 'POST' })).json).to.deep.equal({ ok: true });
      expect((await http(`${base}/api/cluster/service-status`)).json).to.deep.equal({ status: { mode: 'maintenance', enabled: false } });
      expect((await postJson(`${base}/service-discovery/services/host-a/disable`, {}, {})).status).to.equal(401);
      expect((await http(`${base}/service-discovery/services/host-a`)).json).to.include({ enabled: true });
      // The host's hooks see the plugin's requests too (fastify encapsulation: parent hooks apply).
      expect(hostHits).to.be.greaterThan(6);
    });

    it("merges the agent's metrics into the host's /metrics when the plugin does not serve its own", async function () {
      const text = (await http(`${base}/metrics`)).text;
      expect(text).to.match(/^proxy_stone_requests_total \d+$/m);
      expect(text).to.match(/^proxy_stone_cluster_size 2$/m);
      expect(text).to.not.include('process_cpu');
    });
  });

  describe('as a plain Node request handler', function () {
    it('serves its routes inside a node:http server that routes its own paths first', async function () {
      const handler = createRequestHandler(cluster.agents[0]!, {
        auth: { keys: [{ name: 'ops', role: 'operator', key: KEY }], readAccess: 'open' },
        // The host answers /health itself.
        healthRoutes: false,
      });
      const server: Server = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (path === '/health') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'ok', from: 'host' }));
        } else if (path === '/api/cluster/service-status') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: { mode: 'serving', enabled: true } }));
        } else if (path?.startsWith('/service-discovery/') || path === '/metrics') {
          handler(req, res);
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('host: not found');
        }
      });
      const { url: base, close } = await listenOnLoopback(server);
      try {
        expect((await http(`${base}/health`)).json).to.deep.equal({ status: 'ok', from: 'host' });
        expect((await http(`${base}/api/cluster/service-status`)).json).to.deep.equal({ status: { mode: 'serving', enabled: true } });
        expect((await http(`${base}/elsewhere`)).text).to.equal('host: not found');
        const status = await http(`${base}/service-discovery/status`);
        expect(StatusResponseSchema.parse(status.json).currentService.id).to.equal('host-a');
        expect((await http(`${base}/metrics`)).text).to.include('proxy_stone_cluster_size 2');
        const disable = await postJson(`${base}/service-discovery/services/host-b/disable`, { reason: 'handler' }, { 'X-API-Key': KEY });
        expect(disable.status, disable.text).to.equal(200);
        const enable = await postJson(`${base}/service-discovery/services/host-b/enable`, {}, { 'X-API-Key': KEY });
        expect(enable.status, enable.text).to.equal(200);
        // The handler answers its own unknown paths in the API's shape.
        expect((await http(`${base}/service-discovery/nope`)).json).to.deep.equal({ error: 'not_found', message: 'no route GET /service-discovery/nope' });
      } finally {
        await handler.close();
        await close();
      }
    });


    it('serves every route on a node:http server', async function () {
      const handler = createRequestHandler(cluster.agents[1]!, {
        auth: { keys: [{ name: 'ops', role: 'operator', key: KEY }], readAccess: 'viewer' },
      });
      const server: Server = createServer(handler);
      const { url: base, close } = await listenOnLoopback(server);
      try {
        const h = { Authorization: `Bearer ${KEY}` };
        expect((await http(`${base}/service-discovery/status`)).status).to.equal(401);
        const status = await http(`${base}/service-discovery/status`, { headers: h });
        expect(StatusResponseSchema.parse(status.json).currentService.id).to.equal('host-b');
        expect((await http(`${base}/health`)).status).to.equal(200);
        expect((await http(`${base}/metrics`, { headers: h })).text).to.include('# TYPE proxy_stone_is_leader gauge');
        expect((await http(`${base}/nowhere`)).json).to.deep.equal({ error: 'not_found', message: 'no route GET /nowhere' });
        const sse = new SseClient(`${base}/service-discovery/events`, h);
        await sse.opened;
        expect(sse.status).to.equal(200);
        await handler.ready();
        expect(handler.events.clientCount).to.equal(1);
        await handler.close();
        await sse.waitFor('the stream ended', (c) => c.ended);
      } finally {
        await close();
      }
    });
  });
});
