import { expect } from 'chai';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { dockerConfigured, startEtcd, uniqueNamespace, type EtcdServer } from '../helpers/etcd.js';

/**
 * The path for developers with Docker and no etcd binary: testcontainers starts etcd in a container
 * (test/helpers/etcd.ts, docs/decisions/0015-testcontainers.md). Defined only where a Docker engine
 * is configured; elsewhere (CI, these machines) it is not a test at all rather than a skipped one.
 */
if (dockerConfigured()) {
  describe('etcd in Docker through testcontainers', function () {
    this.timeout(180_000);
    let etcd: EtcdServer;
    let registry: EtcdRegistry;

    before(async () => {
      etcd = await startEtcd({ docker: true });
      registry = new EtcdRegistry({ endpoints: [etcd.endpoint], callTimeoutMs: 5000 });
    });

    after(async () => {
      await registry?.close();
      await etcd?.stop();
    });

    it('serves the registry: a record under a lease, read back, gone with its lease', async () => {
      expect(etcd.kind).to.equal('docker');
      const key = `${uniqueNamespace('docker')}/services/a`;
      const lease = await registry.grantLease(5);
      await registry.put(key, '{}', { lease: lease.id });
      expect((await registry.get(key))?.lease).to.equal(lease.id);
      await lease.revoke();
      expect(await registry.get(key)).to.equal(null);
    });
  });
} else {
  console.log('  (etcd in Docker through testcontainers: not defined, no Docker engine configured here)');
}
