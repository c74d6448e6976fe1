import { expect } from 'chai';
import Fastify from 'fastify';
import { readFile } from 'node:fs/promises';
import { openApiDocument } from '../../src/api/openapi.js';
import { startApiServer } from '../../src/api/server.js';
import { serviceDiscoveryPlugin } from '../../src/api/server.js';
import { OPENAPI_DOC_PATH, renderOpenApiDocument } from '../../src/api/write-openapi.js';
import { TestCluster, http } from './fixtures.js';

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown> };
};

describe('API: OpenAPI document', function () {
  let cluster: TestCluster;
  before(async function () {
    cluster = await TestCluster.memory();
    await cluster.addAgent({ id: 'doc-a' });
  });
  after(async function () {
    await cluster?.stop();
  });

  it('docs/openapi.json is exactly what the server serves (run `npx tsx src/api/write-openapi.ts` to update)', async function () {
    const api = await startApiServer(cluster.agents[0]!, { host: '127.0.0.1', port: 0, auth: { keys: [], readAccess: 'open' } });
    try {
      const served = await http(`${api.url}/service-discovery/openapi.json`);
      expect(served.status).to.equal(200);
      const committed = await readFile(OPENAPI_DOC_PATH, 'utf8');
      expect(committed, 'docs/openapi.json is out of date: run npx tsx src/api/write-openapi.ts').to.equal(renderOpenApiDocument());
      expect(JSON.parse(committed)).to.deep.equal(served.json);
    } finally {
      await api.close();
    }
  });

  it('documents every route the plugin registers, and no other', async function () {
    const app = Fastify();
    const registered: string[] = [];
    app.addHook('onRoute', (r) => {
      const methods = Array.isArray(r.method) ? r.method : [r.method];
      for (const m of methods) if (m !== 'HEAD') registered.push(`${m} ${r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    });
    await app.register(serviceDiscoveryPlugin, {
      agent: cluster.agents[0]!,
      auth: { keys: [], readAccess: 'open' },
      healthRoutes: true,
      metricsRoute: true,
    });
    await app.ready();
    await app.close();
    const doc = openApiDocument() as unknown as Doc;
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect([...registered].sort()).to.deep.equal([...documented].sort());
  });

  it('is a consistent OpenAPI 3.1 document', function () {
    const doc = openApiDocument() as unknown as Doc;
    expect(doc.openapi).to.equal('3.1.0');
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(new Set(ids).size).to.equal(ids.length);
    const text = JSON.stringify(doc);
    for (const [, name] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      expect(doc.components.schemas, `$ref ${name}`).to.have.property(name!);
    }
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) expect(op.responses).to.have.property('default');
    }
    // The seed's field names are in the schemas.
    const record = JSON.stringify(doc.components.schemas.ServiceRecord);
    for (const f of ['id', 'name', 'host', 'port', 'status', 'role', 'health', 'isHealthy']) expect(record).to.include(`"${f}"`);
  });
});
