import http from 'node:http';
import { expect } from 'chai';
import { AgentClient } from '../../src/cli/agent-client.js';
import { sseReader, type SseFrame } from '../../src/cli/sse-reader.js';
import { bulkExitCode, capacityRefusal } from '../../src/cli/errors.js';
import { CapacityError } from '../../src/cluster/capacity.js';
import { oneLine } from '../../src/cli/base-command.js';
import { doctorChecks } from '../../src/cli/doctor-checks.js';
import { AgentRequestError, intentFromAudit, setEnabledSummary } from '../../src/cli/cluster-contract.js';
import { prefixEnd } from '../../src/registry/endpoint.js';
import { Chalk } from 'chalk';
import { ago, c, clip, clipField, colorLevel, columnWidths, fields, table, timeLeft, visibleLength } from '../../src/cli/render.js';
import * as dashboard from '../../src/ui/format.js';
import { renderEvent, renderKept, renderServiceList, renderToggle, renderTopology } from '../../src/cli/views.js';
import { computeTopology } from '../../src/cluster/topology.js';
import type { AuditEntry, ClusterEvent, ServiceRecord } from '../../src/types.js';
import { sampleRecord } from '../helpers/records.js';
import { listenOnLoopback } from '../helpers/loopback.js';

function record(id: string, over: Partial<ServiceRecord> = {}): ServiceRecord {
  // Rendering tests set isHealthy themselves where it matters.
  return sampleRecord(id, { host: '127.0.0.1', isHealthy: true, ...over });
}

describe('CLI units', () => {
  // Views are compared as plain text, whatever terminal runs the tests.
  before(() => {
    c.level = 0;
  });

  describe('sseReader (eventsource-parser)', () => {
    function parse(...chunks: (string | Buffer)[]): { frames: SseFrame[]; retries: number[] } {
      const frames: SseFrame[] = [];
      const retries: number[] = [];
      const reader = sseReader({ onFrame: (f) => frames.push(f), onRetry: (ms) => retries.push(ms) });
      for (const c of chunks) reader.push(typeof c === 'string' ? Buffer.from(c) : c);
      return { frames, retries };
    }

    it('parses ids, data, named events and retry, and ignores comments, across chunk boundaries', () => {
      const { frames, retries } = parse('retry: 2000\n: connected\n\nid: ab-1\nda', 'ta: {"type":"x"}\n\n: ping\n\nevent: reset\nid: ab-2\ndata: {}\r\n\r\n');
      expect(frames).to.deep.equal([
        { id: 'ab-1', event: 'message', data: '{"type":"x"}' },
        { id: 'ab-2', event: 'reset', data: '{}' },
      ]);
      expect(retries).to.deep.equal([2000]);
    });

    it('joins multi-line data and waits for a split \\r\\n', () => {
      expect(parse('data: a\ndata: b\r', '\n\r\n').frames).to.deep.equal([{ event: 'message', data: 'a\nb' }]);
    });

    it('decodes a character split between chunks', () => {
      const bytes = Buffer.from('data: {"reason":"café"}\n\n');
      const cut = bytes.indexOf(0xc3) + 1;
      expect(parse(bytes.subarray(0, cut), bytes.subarray(cut)).frames).to.deep.equal([{ event: 'message', data: '{"reason":"café"}' }]);
    });
  });

  // One spanText words both; each keeps its own rounding and wording.
  describe('ages and time left: the CLI and the dashboard', () => {
    const now = 1_000_000_000;
    it('CLI: ago to the nearest second, time left with two units', () => {
      expect([0, 400, 600, 59_400, 3_599_499, 3_599_500, 86_400_000].map((d) => ago(now - d, now))).to.deep.equal(['0s ago', '0s ago', '1s ago', '59s ago', '59m ago', '1h ago', '1d ago']);
      expect(ago(null, now)).to.equal('never');
      expect([1, 59_000, 61_000, 3_660_000, 7_200_000, 90_000_000, 86_400_000].map((d) => timeLeft(now + d, now))).to.deep.equal(['1s', '59s', '1m 1s', '1h 1m', '2h', '1d 1h', '1d 0h']);
    });
    it('dashboard: age rounded down, `just now`, time left with one unit', () => {
      expect([999, 1000, 61_000, 7_300_000, 90_000_000].map((d) => dashboard.age(now - d, now))).to.deep.equal(['now', '1s', '1m', '2h', '1d']);
      expect([undefined, 999, 61_000].map((d) => dashboard.ago(d === undefined ? d : now - d, now))).to.deep.equal(['never', 'just now', '1m ago']);
      expect([-5, 1, 61_000, 3_660_000, 90_000_000].map((d) => dashboard.left(now + d, now))).to.deep.equal(['0s', '1s', '1m', '1h', '1d']);
    });
  });

  describe('colorLevel', () => {
    it('is off without a TTY, off with NO_COLOR, on when forced', () => {
      expect(colorLevel({}, false)).to.equal(0);
      expect(colorLevel({}, true)).to.equal(1);
      expect(colorLevel({ NO_COLOR: '1' }, true)).to.equal(0);
      expect(colorLevel({ NO_COLOR: '1', FORCE_COLOR: '1' }, true)).to.equal(0);
      expect(colorLevel({ FORCE_COLOR: '1' }, false)).to.equal(1);
      expect(colorLevel({ FORCE_COLOR: '0' }, true)).to.equal(0);
    });
  });

  it('prefixEnd is the first key after every key with the prefix', () => {
    expect(prefixEnd('ns/services/').toString()).to.equal('ns/services0');
  });

  describe('intentFromAudit', () => {
    const entry = (action: 'enable' | 'disable', changed: boolean, at: number): AuditEntry => ({
      id: String(at),
      at,
      actor: 'ops',
      action,
      serviceId: 's1',
      changed,
      reason: `r${at}`,
    });

    it('takes the newest entry that changed the state, when it agrees with the record', () => {
      const service = record('s1', { enabled: false, disabledReason: 'r2' });
      expect(intentFromAudit(service, [entry('disable', false, 3), entry('disable', true, 2), entry('enable', true, 1)])).to.deep.equal({
        enabled: false,
        reason: 'r2',
        actor: 'ops',
        at: 2,
      });
    });

    it('is null for an enabled service with no trail, and trusts the record over a stale trail', () => {
      expect(intentFromAudit(record('s1'), [])).to.equal(null);
      expect(intentFromAudit(record('s1'), [entry('disable', true, 5)])).to.equal(null);
    });
  });

  describe('oneLine (usage errors on one line)', () => {
    it("turns oclif's parse errors into one line without the help pointer", () => {
      expect(oneLine('Parsing --timeout \n\tinvalid duration "soon": expected seconds\nSee more help with --help')).to.equal(
        '--timeout: invalid duration "soon": expected seconds',
      );
      expect(oneLine('Missing 1 required arg:\nid  Service id, as shown by services list.\nSee more help with --help')).to.equal(
        'Missing 1 required arg: ID (Service id, as shown by services list)',
      );
      expect(oneLine('The following error occurred:\n  All of the following must be provided when using --zone: --all\nSee more help with --help')).to.equal(
        'All of the following must be provided when using --zone: --all',
      );
      expect(oneLine('Nonexistent flag: --bogus\nSee more help with --help')).to.equal('Nonexistent flag: --bogus');
    });
  });

  describe('bulk enable/disable outcome', () => {
    const kept = [{ serviceId: 'b' }];
    it('exits 5 when the capacity guard kept services and nothing failed, 0 when neither', () => {
      expect(bulkExitCode({ failed: [], kept: [] })).to.equal(0);
      expect(bulkExitCode({ failed: [], kept })).to.equal(5);
    });
    it("exits with a real failure's own code over the guard's refusals; 1 when real failures disagree", () => {
      expect(bulkExitCode({ failed: [{ exit: 4 }], kept })).to.equal(4);
      expect(bulkExitCode({ failed: [{ exit: 3 }, { exit: 3 }], kept: [] })).to.equal(3);
      expect(bulkExitCode({ failed: [{ exit: 3 }, { exit: 4 }], kept })).to.equal(1);
    });
    it('tells the capacity guard\'s refusal, through etcd or an agent, from other errors', () => {
      const shortfall = { scope: 'zone' as const, name: 'z1', region: 'r1', after: 0, minimum: 1, total: 1 };
      const why = 'zone z1 of region r1 would have 0 healthy enabled instances (minimum 1)';
      expect(capacityRefusal(new CapacityError('a', [shortfall]))).to.equal(why);
      const viaAgent = new AgentRequestError('http://a:8790', 409, 'refused', `agent http://a:8790 answered HTTP 409: refusing to disable a: ${why}; send "force": true to override`);
      expect(capacityRefusal(viaAgent)).to.equal(why);
      expect(capacityRefusal(new AgentRequestError('http://a:8790', 403, 'forbidden', 'agent http://a:8790 refused the request'))).to.equal(undefined);
      expect(capacityRefusal(new Error('refusing to disable a: something else'))).to.equal(undefined);
    });
  });

  describe('oversized values in human output (issue 16)', () => {
    const huge = 'x'.repeat(1_000_000);

    it('clip cuts to a visible width with an ellipsis, keeping colour codes whole and closed', () => {
      expect(clip('short', 10)).to.equal('short');
      expect(clip('abcdefghij', 5)).to.equal('abcd…');
      expect(clip(huge, 48)).to.have.length(48);
      const red = new Chalk({ level: 1 }).red(`ab${'c'.repeat(20)}`);
      const cut = clip(red, 6);
      expect(visibleLength(cut)).to.equal(6);
      expect(cut).to.match(/^\u001b\[31mabccc…$|^\u001b\[31mabccc\u001b\[0m…$/);
      expect(cut.endsWith('…')).to.equal(true);
      // A surrogate pair is one character, never split.
      expect(clip('😀'.repeat(10), 4)).to.equal('😀😀😀…');
    });

    it('clipField keeps 1000 characters and says how many more there are', () => {
      const shown = clipField(huge);
      expect(visibleLength(shown)).to.be.at.most(1000);
      const more = Number(/… \((\d+) more characters\)$/.exec(shown)![1]);
      expect(shown.length - `… (${more} more characters)`.length + more).to.equal(huge.length);
      expect(fields([['message', huge]])).to.have.length.below(1100);
    });

    it('table: each column at most 48 wide, so a huge cell neither floods the output nor pads the other rows', () => {
      const text = table(['ID', 'PLACE'], [['a', huge], ['b', 'eu/z']]);
      expect(text.length).to.be.below(1000);
      for (const line of text.split('\n')) expect(visibleLength(line)).to.be.at.most(2 + 48 + 2 + 3 + 3);
      expect(text).to.include(`${'x'.repeat(47)}…`);
    });

    it('columnWidths caps each column, and on a narrow terminal narrows the widest first, keeping short columns whole', () => {
      expect(columnWidths([5, 500, 10])).to.deep.equal([5, 48, 10]);
      expect(columnWidths([5, 500, 30], 60)).to.deep.equal([5, 22, 23]);
      // Never below 12, even if the table then stays wider than the terminal.
      expect(columnWidths([10, 60, 48, 9, 9, 20, 7, 10], 80)).to.deep.equal([10, 12, 12, 9, 9, 12, 7, 10]);
    });

    it('services list, topology and event lines stay short with a megabyte in a record', () => {
      const big = record('big', { region: `eu-${huge}`, host: `h${huge}`, enabled: false, disabledReason: huge });
      const list = renderServiceList({ services: [record('a'), big], total: 2, healthy: 1, unhealthy: 1 });
      expect(list.length).to.be.below(2000);
      const topology = renderTopology(computeTopology([record('a'), big], 'a'), [record('a'), big]);
      for (const line of topology.split('\n')) expect(line.length, line.slice(0, 80)).to.be.below(300);
      const event = renderEvent({ type: 'serviceJoined', serviceId: 'big', service: big, timestamp: 0 });
      expect(event.length).to.be.below(300);
      expect(renderToggle({ serviceId: huge, enabled: true, changed: false, reasonUpdated: true, previousReason: huge }).length).to.be.below(200);
    });
  });

  describe('views', () => {
    it('renderKept says the capacity guard kept the service, why, and how to override', () => {
      expect(renderKept({ serviceId: 'a', reason: 'zone z1 would have 0 healthy enabled instances (minimum 1)', override: '--force' })).to.equal(
        'a kept by the capacity guard: zone z1 would have 0 healthy enabled instances (minimum 1); --force disables it anyway',
      );
    });

    it('renderToggle says when nothing changed', () => {
      expect(renderToggle({ serviceId: 'a', enabled: false, changed: true })).to.equal('a disabled');
      expect(renderToggle({ serviceId: 'a', enabled: false, changed: false })).to.equal('a already disabled (no change)');
    });

    it('renderToggle says when only the reason changed', () => {
      expect(renderToggle({ serviceId: 'a', enabled: false, changed: false, reasonUpdated: true, previousReason: 'deploy 1.4' })).to.equal(
        'a already disabled; reason updated (was: deploy 1.4)',
      );
      expect(renderToggle({ serviceId: 'a', enabled: true, changed: false, reasonUpdated: true })).to.equal('a already enabled; reason updated');
    });

    it('setEnabledSummary keeps reasonUpdated only when true, and previousReason only with it', () => {
      expect(setEnabledSummary({ serviceId: 'a', enabled: false, changed: false, reasonUpdated: true, previousReason: 'x' })).to.deep.equal({
        serviceId: 'a',
        enabled: false,
        changed: false,
        reasonUpdated: true,
        previousReason: 'x',
      });
      expect(setEnabledSummary({ serviceId: 'a', enabled: false, changed: true, reasonUpdated: false, previousReason: 'x' })).to.deep.equal({
        serviceId: 'a',
        enabled: false,
        changed: true,
      });
    });

    it('renderTopology nests region, zone and instance with counts and the leader', () => {
      const services = [
        record('a', { role: 'leader' }),
        record('b', { zone: 'us-east-1b', status: 'unhealthy', isHealthy: false }),
        record('c', { region: 'eu-west-1', zone: 'eu-west-1a', enabled: false, isHealthy: false, disabledReason: 'deploy' }),
      ];
      const text = renderTopology(computeTopology(services, 'a'), services);
      expect(text.split('\n')).to.deep.equal([
        'Cluster: 3 services, 1 healthy, 2 not taking traffic, 1 disabled; leader a ★',
        '├─ eu-west-1 (1, 0 healthy)',
        '│  └─ eu-west-1a (1, 0 healthy)',
        '│     └─ c 127.0.0.1:3000 healthy disabled (deploy)',
        '└─ us-east-1 (2, 1 healthy)',
        '   ├─ us-east-1a (1, 1 healthy)',
        '   │  └─ a 127.0.0.1:3000 healthy ★ (leader)',
        '   └─ us-east-1b (1, 0 healthy)',
        '      └─ b 127.0.0.1:3000 unhealthy',
      ]);
    });

    it('renderEvent is one line: time, type, id, detail', () => {
      const line = renderEvent({
        type: 'serviceHealthChanged',
        serviceId: 'a',
        previousStatus: 'healthy',
        status: 'unhealthy',
        service: record('a', { status: 'unhealthy', health: { ...record('a').health, status: 'unhealthy', message: 'HTTP 503' } }),
        timestamp: Date.UTC(2025, 0, 2, 3, 4, 5, 6),
      });
      expect(line).to.equal('2025-01-02T03:04:05.006Z  serviceHealthChanged  a  healthy → unhealthy (HTTP 503)');
    });
  });

  describe('doctor --agent checks (a stand-in agent)', () => {
    /** An HTTP server answering like an agent: `status` and `health` are what it says; writes are 400 for `op`, 403 for `viewer`. */
    async function fakeAgent(answer: { status: Record<string, unknown>; health: [number, Record<string, unknown>] }) {
      const requests: string[] = [];
      const keys: Record<string, 'operator' | 'viewer'> = { op: 'operator', viewer: 'viewer' };
      const server = http.createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        const send = (code: number, body: unknown) => {
          res.writeHead(code, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
        if (req.url === '/health') return send(answer.health[0], answer.health[1]);
        if (key !== undefined && !keys[key]) return send(401, { error: 'unauthorized', message: 'invalid API key' });
        if (req.method === 'POST') {
          if (key === undefined) return send(401, { error: 'unauthorized', message: 'missing API key' });
          if (keys[key] !== 'operator') return send(403, { error: 'forbidden', message: `API key "${key}" has role viewer; this action needs role operator` });
          return send(400, { error: 'bad_request', message: 'body: unrecognized key "keyProbe"' });
        }
        if (req.url === '/service-discovery/status') return send(200, answer.status);
        if (req.url?.startsWith('/service-discovery/audit')) return send(200, { entries: [] });
        return send(404, { error: 'not_found', message: 'no route' });
      });
      const { url, close } = await listenOnLoopback(server);
      return { url, requests, close };
    }

    const status = (over: { reachable?: boolean; stale?: boolean; leaderId?: string | null; kind?: string } = {}) => ({
      enabled: true,
      currentService: { id: 'ps-1', name: 'proxy-stone', host: '127.0.0.1', port: 3001, status: 'healthy', role: 'leader', region: 'us-east-1', zone: 'us-east-1a', version: '1', enabled: true },
      isLeader: true,
      status: 'registered',
      leaderId: over.leaderId === undefined ? 'ps-1' : over.leaderId,
      registry: { kind: over.kind ?? 'etcd', endpoints: 'http://etcd:2379', reachable: over.reachable ?? true, lastContact: Date.now() - 30_000 },
      view: { stale: over.stale ?? false, lastUpdate: Date.now(), services: 3, revision: 42 },
      lease: { id: '1', ttl: 3, renewedAt: Date.now(), term: 7 },
    });
    const health = (ok: boolean): [number, Record<string, unknown>] => [
      ok ? 200 : 503,
      { status: ok ? 'ok' : 'degraded', registry: { reachable: ok }, view: { stale: !ok, lastUpdate: 0 }, registered: true, isLeader: true },
    ];

    async function run(url: string, apiKey?: string, configFlags: Record<string, string> = {}) {
      const plan = doctorChecks({ target: { kind: 'agent', url, timeoutMs: 1000, ...(apiKey ? { apiKey } : {}) }, targetDefaulted: false, configFlags });
      try {
        const results = [];
        for (const check of plan.checks) results.push({ name: check.name, ...(await check.run()) });
        return Object.fromEntries(results.map((r) => [r.name, r]));
      } finally {
        await plan.close();
      }
    }

    it('a healthy agent and an operator key pass; the local configuration is skipped, not loaded', async () => {
      const agent = await fakeAgent({ status: status(), health: health(true) });
      try {
        // SERVICE_PORT=abc would fail the local configuration check: with --agent it is not read.
        const env = process.env.SERVICE_PORT;
        process.env.SERVICE_PORT = 'abc';
        const checks = await run(agent.url, 'op', { config: '/nonexistent.yaml' }).finally(() => {
          if (env === undefined) delete process.env.SERVICE_PORT;
          else process.env.SERVICE_PORT = env;
        });
        expect(Object.keys(checks)).to.deep.equal(['configuration', 'agent API', 'agent health', 'agent registry', 'leader', 'API key', 'instance health']);
        for (const c of Object.values(checks)) expect(c.ok, `${c.name}: ${c.detail}`).to.equal(true);
        expect(checks.configuration).to.include({ skipped: true });
        expect(checks.configuration!.detail).to.match(/^skipped \(checking an agent\)/).and.match(/--config not used/);
        expect(checks['instance health']).to.include({ skipped: true });
        expect(checks['instance health']!.detail).to.match(/^skipped \(checking an agent\).*ps-1 healthy/);
        expect(checks['agent health']!.detail).to.match(/^\/health 200 ok: registered, view current, registry reachable; its instance ps-1 is healthy/);
        expect(checks['agent registry']!.detail).to.equal('etcd http://etcd:2379 reachable, view current at revision 42, 3 services');
        expect(checks.leader!.detail).to.equal('ps-1 (this agent)');
        expect(checks['API key']!.detail).to.match(/management rights/);
        // The write probe names no real service and carries a body the API rejects.
        expect(agent.requests).to.include('POST /service-discovery/services/proxy-stone-sd-key-probe/disable');
      } finally {
        await agent.close();
      }
    });

    it('a viewer key passes for reads only; an unknown key fails with what to check', async () => {
      const agent = await fakeAgent({ status: status(), health: health(true) });
      try {
        const viewer = await run(agent.url, 'viewer');
        expect(viewer['API key']).to.include({ ok: true });
        expect(viewer['API key']!.detail).to.match(/reads only.*operator key/);
        const wrong = await run(agent.url, 'nope');
        expect(wrong['agent API']).to.include({ ok: false });
        expect(wrong['agent API']!.hint).to.match(/does not know this key/);
        expect(wrong['API key']).to.include({ ok: false });
        expect(wrong['API key']!.detail).to.match(/refused: invalid API key/);
        expect(wrong['agent registry']).to.include({ skipped: true });
        const none = await run(agent.url);
        expect(none['API key']).to.include({ ok: true, skipped: true });
        expect(none['API key']!.detail).to.match(/no --api-key given/);
      } finally {
        await agent.close();
      }
    });

    it('a stale view, an unreachable registry, a 503 /health and no leader each fail with a hint', async () => {
      const agent = await fakeAgent({ status: status({ reachable: false, stale: true, leaderId: null }), health: health(false) });
      try {
        const checks = await run(agent.url, 'op');
        expect(checks['agent API']).to.include({ ok: true });
        expect(checks['agent health']).to.include({ ok: false });
        expect(checks['agent health']!.detail).to.match(/^\/health 503 degraded: registered, view stale, registry unreachable/);
        expect(checks['agent health']!.hint).to.match(/--endpoints on the agent host/);
        expect(checks['agent registry']).to.include({ ok: false });
        expect(checks['agent registry']!.detail).to.match(/^etcd http:\/\/etcd:2379: unreachable, view stale, last answer 30s ago$/);
        expect(checks.leader).to.include({ ok: false });
        expect(checks.leader!.detail).to.equal('the agent knows no leader');
      } finally {
        await agent.close();
      }
    });

    it('an agent that does not answer fails the API check; the others are not checked', async () => {
      const checks = await run('http://127.0.0.1:1');
      expect(checks['agent API']).to.include({ ok: false });
      expect(checks['agent API']!.detail).to.match(/unreachable/);
      for (const name of ['agent health', 'agent registry', 'leader', 'API key']) {
        expect(checks[name], name).to.include({ ok: false, skipped: true });
        expect(checks[name]!.detail, name).to.equal('not checked: the agent API does not answer');
      }
      expect(JSON.stringify(checks)).to.not.match(/memory/);
    });
  });

  describe('AgentClient.events', () => {
    it('reconnects after the stream ends and resumes with Last-Event-ID', async () => {
      const events: ClusterEvent[] = [
        { type: 'serviceDisabled', serviceId: 'a', timestamp: 1 },
        { type: 'serviceEnabled', serviceId: 'a', timestamp: 2 },
      ];
      const lastIds: (string | undefined)[] = [];
      const server = http.createServer((req, res) => {
        lastIds.push(req.headers['last-event-id'] as string | undefined);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // The first connection delivers one event and drops; the second carries on from there.
        if (lastIds.length === 1) res.end(`retry: 10\nid: s-1\ndata: ${JSON.stringify(events[0])}\n\n`);
        else res.write(`: ping\n\nid: s-2\ndata: ${JSON.stringify(events[1])}\n\n`);
      });
      const listening = await listenOnLoopback(server);
      const client = new AgentClient({ kind: 'agent', url: listening.url, timeoutMs: 2000 });
      const seen: ClusterEvent[] = [];
      const notices: string[] = [];
      const stop = new AbortController();
      try {
        await client.events(
          (e) => {
            seen.push(e);
            if (seen.length === 2) stop.abort();
          },
          stop.signal,
          { onNotice: (m) => notices.push(m) },
        );
      } finally {
        await client.close();
        await listening.close();
      }
      expect(seen).to.deep.equal(events);
      expect(lastIds).to.deep.equal([undefined, 's-1']);
      expect(notices.join('\n')).to.match(/ended; reconnecting/);
    });

    it('rejects when the stream cannot be opened at all', async () => {
      const client = new AgentClient({ kind: 'agent', url: 'http://127.0.0.1:1', timeoutMs: 1000 });
      try {
        const err = await client.events(() => undefined, new AbortController().signal).then(
          () => undefined,
          (e: unknown) => e as Error,
        );
        expect(err?.name).to.equal('AgentUnavailableError');
      } finally {
        await client.close();
      }
    });
  });
});
