import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { ServiceDetails, ServiceList } from '../../src/cli/cluster-contract.js';
import type { DoctorResult } from '../../src/cli/doctor-checks.js';
import type { AuditEntry, ClusterEvent, ClusterTopology } from '../../src/types.js';
import { API_KEY, BIN, ROOT, binOnPath, cliEnv, ensureBuilt, followProbe, json, runCli, runShell, shapeOf, startCluster, waitFor, type TestCluster } from './fixtures.js';

/** Fields that move between two reads of a live cluster (probe figures, write times). */
function stable(list: ServiceList) {
  return list.services.map(({ health, updatedAt: _u, ...rest }) => ({ ...rest, health: { status: health.status } }));
}

describe('CLI commands (built binary, real etcd, in-process agents)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;

  before(async function () {
    this.timeout(180_000);
    ensureBuilt();
    cluster = await startCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });

  describe('read commands give the same JSON through etcd and through an agent', () => {
    it('services list --json', async () => {
      const [viaEtcd, viaAgent] = await Promise.all([
        runCli(['services', 'list', '--json', ...cluster.registryArgs]),
        runCli(['services', 'list', '--json', ...cluster.agentArgs]),
      ]);
      expect(viaEtcd.code, viaEtcd.stderr).to.equal(0);
      expect(viaAgent.code, viaAgent.stderr).to.equal(0);
      const a = json<ServiceList>(viaEtcd);
      const b = json<ServiceList>(viaAgent);
      expect(shapeOf(a)).to.deep.equal(shapeOf(b));
      expect(Object.keys(a).sort()).to.deep.equal(['healthy', 'services', 'total', 'unhealthy']);
      expect(a.total).to.equal(3);
      expect(a.healthy).to.equal(3);
      expect(stable(a)).to.deep.equal(stable(b));
      expect(a.services.filter((s) => s.role === 'leader')).to.have.length(1);
    });

    it('services list filters (--region, --zone, --status, --healthy) agree', async () => {
      for (const filter of [['--region', 'us-east-1'], ['--zone', 'eu-west-1a'], ['--status', 'unhealthy'], ['--healthy']]) {
        const [viaEtcd, viaAgent] = await Promise.all([
          runCli(['services', 'list', '--json', ...filter, ...cluster.registryArgs]),
          runCli(['services', 'list', '--json', ...filter, ...cluster.agentArgs]),
        ]);
        const ids = (r: typeof viaEtcd) => json<ServiceList>(r).services.map((s) => s.id);
        expect(ids(viaEtcd), filter.join(' ')).to.deep.equal(ids(viaAgent));
      }
      const east = json<ServiceList>(await runCli(['services', 'list', '--json', '--region', 'us-east-1', ...cluster.registryArgs]));
      expect(east.services.map((s) => s.id)).to.deep.equal(['cli-node-1', 'cli-node-2']);
    });

    it('topology --json is the seed shape and equal both ways', async () => {
      const [viaEtcd, viaAgent] = await Promise.all([
        runCli(['topology', '--json', ...cluster.registryArgs]),
        runCli(['topology', '--json', ...cluster.agentArgs]),
      ]);
      const a = json<ClusterTopology>(viaEtcd);
      expect(a).to.deep.equal(json<ClusterTopology>(viaAgent));
      expect(a).to.include.keys('totalServices', 'healthyServices', 'unhealthyServices', 'servicesByRegion', 'servicesByStatus', 'leader');
      expect(a.servicesByRegion).to.deep.equal({ 'us-east-1': 2, 'eu-west-1': 1 });
      expect(a.leader?.role).to.equal('leader');
    });

    it('services show --json has the record, health history, intent and audit, alike both ways', async () => {
      const id = 'cli-node-1';
      const [viaEtcd, viaAgent] = await Promise.all([
        runCli(['services', 'show', id, '--json', ...cluster.registryArgs]),
        runCli(['services', 'show', id, '--json', ...cluster.agentArgs]),
      ]);
      expect(viaEtcd.code, viaEtcd.stderr).to.equal(0);
      const a = json<ServiceDetails>(viaEtcd);
      const b = json<ServiceDetails>(viaAgent);
      expect(Object.keys(a).sort()).to.deep.equal(['audit', 'budget', 'health', 'intent', 'service']);
      // The detection budget, from the check settings the record carries (spawned with the defaults).
      expect(a.budget).to.deep.equal({ death: a.service.checks!.ttl, sick: a.service.checks!.interval * a.service.checks!.retries + a.service.checks!.timeout, recovery: a.service.checks!.interval + a.service.checks!.timeout, gracePeriod: a.service.checks!.gracePeriod, holdDown: null });
      expect(a.service.id).to.equal(id);
      // Through etcd the history comes from the URL the service's agent advertises.
      expect(a.health.history.length).to.be.greaterThan(0);
      expect(b.health.history.length).to.be.greaterThan(0);
      expect(shapeOf(a.health.history[0])).to.deep.equal(shapeOf(b.health.history[0]));
      expect(shapeOf(a.service)).to.deep.equal(shapeOf(b.service));
      expect(a.intent).to.equal(null);
      expect(b.intent).to.equal(null);
    });

    it('status --json: one shape through etcd and through an agent, the agent\'s own status under "agent"', async () => {
      const viaEtcd = json<Record<string, unknown>>(await runCli(['status', '--json', ...cluster.registryArgs]));
      expect(viaEtcd).to.deep.include({ namespace: cluster.namespace, clusterName: 'proxy-stone-cluster', agent: null });
      expect(viaEtcd.registry).to.include({ kind: 'etcd', reachable: true, endpoints: cluster.endpoint });
      expect(viaEtcd.counts).to.deep.equal({ total: 3, healthy: 3, unhealthy: 0, disabled: 0 });
      const viaAgent = json<Record<string, unknown>>(await runCli(['status', '--json', ...cluster.agentArgs]));
      // The same keys and types, but for the agent section, which only an agent has.
      const { agent, ...rest } = viaAgent;
      const { agent: none, ...restEtcd } = viaEtcd;
      expect(none).to.equal(null);
      // Through an agent, registry.version is null (the agent does not ask etcd for it): the same type
      // as an unreachable etcd's, so json-shapes.json has one entry; every other type is equal.
      const noVersion = (v: Record<string, unknown>) => ({ ...v, registry: { ...(v.registry as object), version: 'a string or null' } });
      expect(shapeOf(noVersion(rest))).to.deep.equal(shapeOf(noVersion(restEtcd)));
      // The same cluster both ways (the registry's version only etcd itself can tell).
      for (const key of ['clusterName', 'namespace', 'counts', 'leader']) expect(rest[key], key).to.deep.equal(restEtcd[key]);
      expect(rest.registry).to.include({ kind: 'etcd', reachable: true, version: null });
      // The seed's GET /service-discovery/status fields, as the agent answers them.
      expect(agent).to.include.keys('enabled', 'currentService', 'isLeader', 'status', 'cluster');
      expect((agent as { currentService: { id: string } }).currentService.id).to.equal('cli-node-1');
      expect((agent as { cluster: unknown }).cluster).to.deep.equal({ name: 'proxy-stone-cluster', namespace: cluster.namespace });
    });

    it('status shows SERVICE_DISCOVERY_CLUSTER_NAME, and refuses a name with a control character', async () => {
      const named = json<{ clusterName: string }>(await runCli(['status', '--json', ...cluster.registryArgs], { env: { SERVICE_DISCOVERY_CLUSTER_NAME: 'edge-eu' } }));
      expect(named.clusterName).to.equal('edge-eu');
      const text = await runCli(['status', ...cluster.registryArgs, '--cluster-name', 'edge-eu']);
      expect(text.stdout).to.match(/cluster:\s+edge-eu, namespace /);
      const bad = await runCli(['status', ...cluster.registryArgs, '--cluster-name', 'a\u001bb']);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/--cluster-name .*expected/);
      expect(bad.stderr).to.not.include('\u001b');
    });
  });

  describe('what the human output says about health', () => {
    it('services list says when the record was UPDATED, services show adds the last probe from the service\'s agent', async () => {
      const list = await runCli(['services', 'list', ...cluster.registryArgs]);
      expect(list.code, list.stderr).to.equal(0);
      expect(list.stdout).to.match(/LATENCY\s*│\s*UPDATED/);
      expect(list.stdout).to.not.include('CHECKED');
      for (const args of [cluster.registryArgs, cluster.agentArgs]) {
        const show = await runCli(['services', 'show', 'cli-node-2', ...args]);
        expect(show.code, show.stderr).to.equal(0);
        expect(show.stdout).to.match(/successes in a row, record updated (\d+[smhd]|never) ago/);
        expect(show.stdout).to.match(/last probe:\s+\d+s ago, ok \(\d+ms\), from its agent/);
      }
    });
  });

  describe('enable / disable', () => {
    it('disable is idempotent through etcd: twice exits 0, the second time "already disabled"', async () => {
      const id = 'cli-node-3';
      const first = await runCli(['services', 'disable', id, '--reason', 'deploy 1.4.2', '--json', ...cluster.registryArgs]);
      expect(first.code, first.stderr).to.equal(0);
      expect(json(first)).to.deep.include({ serviceId: id, enabled: false, changed: true });
      const second = await runCli(['services', 'disable', id, '--reason', 'deploy 1.4.2', ...cluster.registryArgs]);
      expect(second.code, second.stderr).to.equal(0);
      expect(second.stdout.trim()).to.equal(`${id} already disabled (no change)`);

      const list = json<ServiceList>(await runCli(['services', 'list', '--json', ...cluster.registryArgs]));
      expect(list.services.find((s) => s.id === id)).to.include({ enabled: false, isHealthy: false, disabledReason: 'deploy 1.4.2' });
      expect(list.healthy).to.equal(2);

      const show = json<ServiceDetails>(await runCli(['services', 'show', id, '--json', ...cluster.agentArgs]));
      expect(show.intent).to.include({ enabled: false, reason: 'deploy 1.4.2', actor: `cli:${userInfo().username}` });
    });

    it('enable through an agent needs its API key (exit 5 without), then is idempotent too', async () => {
      const id = 'cli-node-3';
      await waitFor('the agent to see the disable', () => cluster.nodes[0]!.agent.view.service(id)?.enabled === false);
      const refused = await runCli(['services', 'enable', id, ...cluster.agentArgs]);
      expect(refused.code).to.equal(5);
      expect(refused.stderr).to.match(/^Error: agent .* refused/);
      const first = await runCli(['services', 'enable', id, '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
      expect(first.code, first.stderr).to.equal(0);
      expect(json(first)).to.deep.include({ serviceId: id, enabled: true, changed: true });
      const second = await runCli(['services', 'enable', id, '--api-key', API_KEY, ...cluster.agentArgs]);
      expect(second.code).to.equal(0);
      expect(second.stdout.trim()).to.equal(`${id} already enabled (no change)`);
    });

    it('audit --json lists the actions newest first, with actors from the CLI and the API key', async () => {
      const res = await runCli(['audit', '--json', '--service', 'cli-node-3', ...cluster.registryArgs]);
      const { entries } = json<{ entries: AuditEntry[] }>(res);
      // The repeats changed nothing: they left no entries.
      expect(entries.map((e) => [e.action, e.changed, e.actor])).to.deep.equal([
        ['enable', true, 'ops'],
        ['disable', true, `cli:${userInfo().username}`],
      ]);
      const viaAgent = json<{ entries: AuditEntry[] }>(await runCli(['audit', '--json', '--service', 'cli-node-3', ...cluster.agentArgs]));
      expect(viaAgent.entries).to.deep.equal(entries);
    });

    it('a repeated disable with a new reason says "reason updated", both ways, and --json says reasonUpdated', async () => {
      const id = 'cli-node-1';
      try {
        const first = await runCli(['services', 'disable', id, '--reason', 'kernel patch', ...cluster.registryArgs]);
        // A registered instance drains first (30 s by default): the line says until when.
        expect(first.stdout.trim(), first.stderr).to.match(new RegExp(`^${id} disabled \\(draining until \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\)$`));
        const viaEtcd = await runCli(['services', 'disable', id, '--reason', 'kernel patch, then reboot', ...cluster.registryArgs]);
        expect(viaEtcd.code, viaEtcd.stderr).to.equal(0);
        expect(viaEtcd.stdout.trim()).to.equal(`${id} already disabled; reason updated (was: kernel patch)`);

        const viaAgent = await runCli(['services', 'disable', id, '--reason', 'reboot tonight', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
        expect(viaAgent.code, viaAgent.stderr).to.equal(0);
        expect(json(viaAgent)).to.deep.include({ serviceId: id, enabled: false, changed: false, reasonUpdated: true, previousReason: 'kernel patch, then reboot' });
        const etcdJson = json(await runCli(['services', 'disable', id, '--reason', 'reboot at 22:00', '--json', ...cluster.registryArgs]));
        expect(etcdJson).to.deep.include({ changed: false, reasonUpdated: true, previousReason: 'reboot tonight' });

        // The same reason again: no change at all, and --json has no reasonUpdated.
        const same = await runCli(['services', 'disable', id, '--reason', 'reboot at 22:00', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
        expect(json(same)).to.include({ changed: false }).and.not.have.property('reasonUpdated');
        const sameText = await runCli(['services', 'disable', id, '--reason', 'reboot at 22:00', ...cluster.registryArgs]);
        expect(sameText.stdout.trim()).to.equal(`${id} already disabled (no change)`);

        const show = json<ServiceDetails>(await runCli(['services', 'show', id, '--json', ...cluster.registryArgs]));
        expect(show.intent).to.include({ enabled: false, reason: 'reboot at 22:00' });
        expect(show.service).to.include({ disabledReason: 'reboot at 22:00' });
      } finally {
        await runCli(['services', 'enable', id, ...cluster.registryArgs]);
      }
    });

    it('an unknown id exits 3 with one line on stderr, both ways', async () => {
      for (const target of [cluster.registryArgs, [...cluster.agentArgs, '--api-key', API_KEY]]) {
        for (const args of [['services', 'disable', 'no-such-id'], ['services', 'show', 'no-such-id']]) {
          const res = await runCli([...args, ...target]);
          expect(res.code, `${args.join(' ')} ${target[0]}`).to.equal(3);
          expect(res.stderr.trim().split('\n')).to.have.length(1);
          expect(res.stderr).to.match(/^Error: service no-such-id not found/);
          expect(res.stdout).to.equal('');
        }
      }
    });

    it('--all needs --yes off a terminal (exit 2), and with it changes every matching service', async () => {
      const refused = await runCli(['services', 'disable', '--all', '--zone', 'us-east-1b', ...cluster.registryArgs]);
      expect(refused.code).to.equal(2);
      expect(refused.stderr).to.match(/without confirmation: add --yes/);
      const done = await runCli(['services', 'disable', '--all', '--zone', 'us-east-1b', '--yes', '--json', ...cluster.registryArgs]);
      expect(done.code, done.stderr).to.equal(0);
      expect(json(done)).to.deep.include({ enabled: false, matched: 1, changed: 1 });
      const back = await runCli(['services', 'enable', '--all', '--zone', 'us-east-1b', '--yes', '--json', ...cluster.registryArgs]);
      expect(json(back)).to.deep.include({ enabled: true, matched: 1, changed: 1 });
      const none = await runCli(['services', 'enable', '--all', '--zone', 'nowhere-1z', '--yes', ...cluster.registryArgs]);
      expect(none.code).to.equal(3);
    });
  });

  describe('a script drives several agents', () => {
    it('disable through etcd and enable through another agent round-trip, and every agent sees each step', async function () {
      this.timeout(90_000);
      const bin = binOnPath();
      const script = String.raw`
        set -euo pipefail
        id=cli-node-2
        # Exit 0 when the agent at $1 lists $id with enabled == $2.
        sees() {
          proxy-stone-sd services list --agent "$1" --json |
            node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
              const svc = JSON.parse(s).services.find((x) => x.id === process.argv[1]);
              process.exit(svc && String(svc.enabled) === process.argv[2] ? 0 : 1);
            })' "$id" "$2"
        }
        every_agent_sees() {
          for url in $AGENTS; do
            for i in $(seq 1 60); do
              if sees "$url" "$1"; then break; fi
              if [ "$i" = 60 ]; then echo "$url never saw $id enabled=$1" >&2; exit 1; fi
              sleep 0.2
            done
          done
        }
        proxy-stone-sd services disable "$id" --reason "script round trip" --endpoints "$ETCD" --namespace "$NS"
        every_agent_sees false
        proxy-stone-sd services disable "$id" --endpoints "$ETCD" --namespace "$NS"
        proxy-stone-sd services enable "$id" --agent "$AGENT3" --api-key "$KEY" --json > enable.json
        every_agent_sees true
        echo round-trip-ok
      `;
      try {
        const run = runShell(script, {
          cwd: bin.dir,
          env: {
            PATH: bin.path,
            ETCD: cluster.endpoint,
            NS: cluster.namespace,
            AGENTS: cluster.nodes.map((n) => n.api.url).join(' '),
            AGENT3: cluster.nodes[2]!.api.url,
            KEY: API_KEY,
          },
        });
        const res = await run.done;
        expect(res.code, `${res.stdout}\n${res.stderr}`).to.equal(0);
        expect(res.stdout).to.match(/cli-node-2 disabled \(draining until \S+\)\ncli-node-2 already disabled \(no change\)\nround-trip-ok/);
        expect(JSON.parse(readFileSync(path.join(bin.dir, 'enable.json'), 'utf8'))).to.deep.include({ serviceId: 'cli-node-2', enabled: true, changed: true });
      } finally {
        bin.remove();
      }
      // Every agent and etcd now describe the same cluster.
      const viaEtcd = json<ClusterTopology>(await runCli(['topology', '--json', ...cluster.registryArgs]));
      const viaEtcdList = json<ServiceList>(await runCli(['services', 'list', '--json', ...cluster.registryArgs]));
      for (const node of cluster.nodes) {
        await waitFor(`${node.id} to agree with etcd`, async () => {
          const [topology, list] = await Promise.all([
            runCli(['topology', '--json', '--agent', node.api.url]),
            runCli(['services', 'list', '--json', '--agent', node.api.url]),
          ]);
          return JSON.stringify(json(topology)) === JSON.stringify(viaEtcd) && JSON.stringify(stable(json<ServiceList>(list))) === JSON.stringify(stable(viaEtcdList));
        });
      }
    });
  });

  describe('events', () => {
    it('events --json --count prints NDJSON through etcd and through an agent, then exits 0', async function () {
      this.timeout(40_000);
      const id = 'cli-node-2';
      const types = 'serviceDisabled,serviceEnabled';
      const procs = [cluster.registryArgs, cluster.agentArgs].map((target) => {
        const child = spawn(process.execPath, [BIN, 'events', '--json', '--count', '2', '--types', types, '--duration', '30', ...target], {
          cwd: ROOT,
          env: cliEnv(),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
        return { child, exited, out: () => stdout, err: () => stderr };
      });
      let done = false;
      void Promise.all(procs.map((p) => p.exited)).then(() => (done = true));
      // The streams start listening at some point after spawn: toggle until both have seen two events.
      let enabled = true;
      const deadline = Date.now() + 30_000;
      while (!done && Date.now() < deadline) {
        enabled = !enabled;
        await cluster.nodes[0]!.agent.setServiceEnabled(id, enabled, { reason: 'events test', actor: 'test' });
        await new Promise((r) => setTimeout(r, 400));
      }
      if (!enabled) await cluster.nodes[0]!.agent.setServiceEnabled(id, true, { actor: 'test' });
      for (const p of procs) {
        expect(await p.exited, p.err()).to.equal(0);
        const lines = p.out().trim().split('\n');
        expect(lines, p.out()).to.have.length(2);
        for (const line of lines) {
          const event = JSON.parse(line) as ClusterEvent;
          expect(['serviceDisabled', 'serviceEnabled']).to.include(event.type);
          expect(event).to.include({ serviceId: id });
          expect(event.timestamp).to.be.a('number');
        }
      }
    });

    it('events exits 0 on Ctrl-C (SIGINT)', async () => {
      const probe = followProbe({ etcd: cluster.endpoint });
      await probe.before();
      const child = spawn(process.execPath, [BIN, 'events', ...cluster.registryArgs], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      // Ctrl-C while still loading would end it the default way (by the signal): wait until it follows.
      await waitFor('events to watch etcd', () => probe.following());
      const started = Date.now();
      child.kill('SIGINT');
      expect(await exited).to.equal(0);
      expect(Date.now() - started).to.be.below(3000);
    });
  });

  describe('doctor', () => {
    it('doctor --json passes every check against a healthy etcd and instance', async () => {
      const upstream = cluster.nodes[0]!.upstream;
      const res = await runCli(['doctor', '--json', '--health-url', `${upstream.url}/health`, ...cluster.registryArgs]);
      const { checks } = json<DoctorResult>(res);
      expect(res.code, JSON.stringify(checks, null, 2)).to.equal(0);
      expect(checks.map((c) => c.name)).to.deep.equal([
        'configuration',
        'etcd endpoints',
        'authentication',
        'namespace',
        'leader',
        'instance health',
        'clock skew',
      ]);
      for (const c of checks) expect(c, c.name).to.include({ ok: true });
      expect(checks.find((c) => c.name === 'namespace')!.detail).to.match(/3 services/);
      // listr2 reports on stderr, never on stdout.
      expect(res.stderr).to.match(/etcd endpoints/);
    });

    it('doctor --agent checks the agent, not the local configuration, and probes the key without writing', async () => {
      const before = (await cluster.nodes[0]!.agent.getAudit({ limit: 1000 })).length;
      // A local setting that would fail the configuration check: with --agent it is not loaded.
      const res = await runCli(['doctor', '--json', '--api-key', API_KEY, ...cluster.agentArgs], { env: { SERVICE_PORT: 'not-a-port' } });
      const { checks } = json<DoctorResult>(res);
      expect(res.code, JSON.stringify(checks, null, 2)).to.equal(0);
      expect(checks.map((c) => c.name)).to.deep.equal(['configuration', 'agent API', 'agent health', 'agent registry', 'leader', 'API key', 'instance health']);
      for (const c of checks) expect(c, c.name).to.include({ ok: true });
      const by = Object.fromEntries(checks.map((c) => [c.name, c]));
      expect(by.configuration).to.include({ skipped: true });
      expect(by.configuration!.detail).to.match(/^skipped \(checking an agent\)/);
      expect(by['agent health']!.detail).to.match(/^\/health 200 ok: registered, view current, registry reachable; its instance cli-node-1 is healthy/);
      expect(by['agent registry']!.detail).to.match(/^etcd \S+ reachable, view current at revision \d+, 3 services$/);
      expect(by.leader!.detail).to.match(/^cli-node-\d/);
      expect(by['API key']!.detail).to.match(/management rights/);
      expect(res.stdout + res.stderr).to.not.match(/memory|not-a-port/);
      // The write probe changed nothing and left no audit entry.
      expect((await cluster.nodes[0]!.agent.getAudit({ limit: 1000 })).length).to.equal(before);
    });

    it('doctor --agent: reads that need a key, a viewer key, and an unknown key', async () => {
      const { startApiServer } = await import('../../src/api/server.js');
      const api = await startApiServer(cluster.nodes[0]!.agent, {
        host: '127.0.0.1',
        port: 0,
        auth: { keys: [{ name: 'ops', role: 'operator', key: API_KEY }, { name: 'grafana', role: 'viewer', key: 'cli-test-viewer-key' }], readAccess: 'viewer' },
      });
      try {
        const none = await runCli(['doctor', '--json', '--agent', api.url]);
        expect(none.code).to.equal(1);
        const noKey = Object.fromEntries(json<DoctorResult>(none).checks.map((c) => [c.name, c]));
        expect(noKey['agent API']).to.include({ ok: false });
        expect(noKey['agent API']!.hint).to.match(/wants an API key for reads/);
        expect(noKey['agent health'], 'public /health still answers').to.include({ ok: true });
        expect(noKey['API key']!.detail).to.match(/no --api-key given/);

        const viewer = await runCli(['doctor', '--json', '--agent', api.url, '--api-key', 'cli-test-viewer-key']);
        const viewerChecks = json<DoctorResult>(viewer).checks;
        expect(viewer.code, JSON.stringify(viewerChecks, null, 2)).to.equal(0);
        expect(viewerChecks.find((c) => c.name === 'API key')!.detail).to.match(/reads only.*"grafana" has role viewer.*operator key/);

        const wrong = await runCli(['doctor', '--agent', api.url, '--api-key', 'not-a-key']);
        expect(wrong.code).to.equal(1);
        expect(wrong.stderr).to.match(/does not know this key/);
        expect(wrong.stderr).to.not.include('not-a-key');
      } finally {
        await api.close();
      }
    });

    it('doctor exits 1 with a hint when etcd does not answer', async () => {
      const res = await runCli(['doctor', '--json', '--timeout', '1', '--endpoints', 'http://127.0.0.1:1']);
      expect(res.code).to.equal(1);
      const failed = json<DoctorResult>(res).checks.find((c) => c.name === 'etcd endpoints')!;
      expect(failed.ok).to.equal(false);
      expect(failed.hint).to.match(/etcd runs/);
    });
  });

  describe('people output', () => {
    it('topology draws region, zone and instances with the leader marked', async () => {
      const res = await runCli(['topology', ...cluster.registryArgs]);
      expect(res.code).to.equal(0);
      expect(res.stdout).to.match(/^Cluster: 3 services, 3 healthy/);
      expect(res.stdout).to.match(/├─ eu-west-1 \(1, 1 healthy\)/);
      expect(res.stdout).to.match(/│ {2}└─ eu-west-1a \(1, 1 healthy\)/);
      expect(res.stdout.match(/★ \(leader\)/g)).to.have.length(1);
      expect(res.stdout).not.to.match(/\u001b\[/); // NO_COLOR
    });

    it('services list prints a table', async () => {
      const res = await runCli(['services', 'list', ...cluster.registryArgs]);
      expect(res.stdout).to.match(/ID +│ ADDRESS/);
      expect(res.stdout).to.match(/3 services: 3 healthy/);
    });
  });
});

describe('CLI failures', function () {
  this.timeout(30_000);
  before(function () {
    this.timeout(180_000);
    ensureBuilt();
  });

  it('an unreachable etcd exits 4 within the timeout, one line on stderr, no stack', async () => {
    const res = await runCli(['services', 'list', '--endpoints', 'http://127.0.0.1:1', '--timeout', '2']);
    expect(res.code).to.equal(4);
    expect(res.ms).to.be.below(8000);
    expect(res.stderr.trim().split('\n')).to.have.length(1);
    expect(res.stderr).to.match(/^Error: registry http:\/\/127\.0\.0\.1:1 unreachable: connection refused/);
    expect(res.stderr).not.to.match(/\n\s+at /);
  });

  it('a server that accepts but never answers fails with exit 4 after --timeout, not a hang', async () => {
    const sockets = new Set<net.Socket>();
    const blackhole = net.createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(blackhole.address() as net.AddressInfo).port}`;
    try {
      const results = await Promise.all([
        runCli(['services', 'list', '--json', '--endpoints', url, '--timeout', '1.5']),
        runCli(['topology', '--agent', url, '--timeout', '1.5']),
        runCli(['services', 'disable', 'x', '--endpoints', url, '--timeout', '1.5']),
      ]);
      for (const res of results) {
        expect(res.code, res.stderr + res.stdout).to.equal(4);
        expect(res.ms, 'bounded by --timeout plus start-up').to.be.below(9000);
      }
      expect(json<{ error: { code: string; exit: number } }>(results[0]!).error).to.include({ code: 'unreachable', exit: 4 });
      expect(results[1]!.stderr).to.match(/^Error: agent http:\/\/127\.0\.0\.1:\d+ unreachable: no answer within 1500ms/);
      expect(results[2]!.stderr).to.match(/unreachable: no answer within 1500ms/);
    } finally {
      for (const s of sockets) s.destroy();
      blackhole.close();
    }
  });

  it('status reports an unreachable registry and exits 4', async () => {
    const res = await runCli(['status', '--json', '--endpoints', 'http://127.0.0.1:1', '--timeout', '1']);
    expect(res.code).to.equal(4);
    expect(json<{ registry: { reachable: boolean } }>(res).registry.reachable).to.equal(false);
  });

  it('usage errors exit 2', async () => {
    const cases = [
      ['services', 'list', '--bogus'],
      ['services', 'list', '--status', 'sleepy'],
      ['services', 'list', '--timeout', 'soon'],
      ['services', 'list', '--endpoints', 'http://127.0.0.1:1', '--agent', 'http://127.0.0.1:2'],
      ['services', 'list', '--endpoints', 'not-a-url'],
      ['services', 'disable'],
      ['services', 'disable', 'x', '--all', '--yes'],
      ['services', 'disable', '--zone', 'z'],
      ['events', '--types', 'serviceExploded'],
      ['services', 'list', '--agent', 'ftp://127.0.0.1'],
    ];
    const results = await Promise.all(cases.map((args) => runCli(args)));
    results.forEach((res, i) => expect(res.code, `${cases[i]!.join(' ')}: ${res.stderr}`).to.equal(2));
  });

  it('a flag on the command line beats the environment: --agent with SERVICE_DISCOVERY_ENDPOINTS set is no conflict', async () => {
    const res = await runCli(['services', 'list', '--agent', 'http://127.0.0.1:1', '--timeout', '1'], {
      env: { SERVICE_DISCOVERY_ENDPOINTS: 'http://127.0.0.1:2' },
    });
    expect(res.code).to.equal(4);
    expect(res.stderr).to.match(/^Error: agent http:\/\/127\.0\.0\.1:1 unreachable/);
  });
});
