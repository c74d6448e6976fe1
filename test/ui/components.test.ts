/**
 * The components, drawn by ink into ink-testing-library's fake terminal (100 columns), read back as
 * plain text after each keypress.
 */
import { expect } from 'chai';
import { Box } from 'ink';
import { render } from 'ink-testing-library';
import { createElement, type ReactElement } from 'react';
import { DashboardApp } from '../../src/ui/components/dashboard-app.js';
import { EventLog } from '../../src/ui/components/event-log.js';
import { bannerText, Header } from '../../src/ui/components/header.js';
import { ServicesTable } from '../../src/ui/components/services-table.js';
import { DetailPane } from '../../src/ui/components/detail-pane.js';
import { ColorScope } from '../../src/ui/components/theme.js';
import { TopologyPane } from '../../src/ui/components/topology-pane.js';
import { DashboardController } from '../../src/ui/controller.js';
import { DashboardState } from '../../src/ui/dashboard-state.js';
import { AgentRequestError } from '../../src/cli/cluster-contract.js';
import { rawIn } from '../helpers/terminal.js';
import { connection, FakeClient, healthChanged, ManualSource, record, stateWith, stripAnsi, T0, threeServices } from './fixtures.js';

const COLUMNS = 100;
const ROWS = 30;
const NOW = T0 + 10_000;

type Instance = ReturnType<typeof render>;

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

function frame(app: Pick<Instance, 'lastFrame'>): string {
  return stripAnsi(app.lastFrame() ?? '');
}

/** Draws one component for a given state, in colourless mode. */
function draw(element: ReactElement): Instance {
  return render(createElement(ColorScope, { enabled: false, children: createElement(Box, { flexDirection: 'column' }, element) }));
}

describe('dashboard components', () => {
  describe('panes', () => {
    let app: Instance | undefined;
    afterEach(() => app?.unmount());

    it('the table marks the leader and the selection, colours aside', () => {
      const state = stateWith();
      state.select('node-2');
      state.setViewport(5);
      app = draw(createElement(ServicesTable, { state, width: COLUMNS, rows: 5, now: NOW }));
      const lines = frame(app).split('\n');
      expect(lines[0]).to.match(/Services 1-3 of 3 · sort id ▲ · filter none · search —/);
      expect(lines[1]).to.match(/ID▲\s+REGION\/ZONE\s+STATUS\s+ROLE\s+ENABLED\s+LATENCY\s+UPDATED\s+VERSION/);
      expect(lines[2]).to.match(/^│  ★ node-1 +us-east-1\/us-east-1a +healthy +leader ★ yes +12ms +15s 1\.4\.2/);
      expect(lines[3]).to.match(/^│ › {2}node-2 /);
      expect(lines[4]).to.match(/node-3 +eu-west-1\/eu-west-1a/);
    });

    it('a service held down as flapping is marked in the table and explained in the detail', () => {
      const flapping = { since: T0 - 20_000, until: T0 + 25_000, lastChange: T0 - 5000, transitions: 5, window: 600, holdDown: 30, threshold: 4 };
      const held = record('node-4', {
        status: 'unhealthy',
        health: { status: 'unhealthy', responseTime: 3, lastCheck: T0, consecutiveFailures: 0, consecutiveSuccesses: 4, flapping },
        checks: { interval: 5, timeout: 2, retries: 3, gracePeriod: 0, ttl: 10, flap: { threshold: 4, window: 600, holdDown: 30 } },
        instanceMaintenance: { desired: 'maintenance', actual: 'serving', inSync: false, lastError: 'HTTP 500', since: T0 },
      });
      const state = stateWith([...threeServices(), held]);
      state.setViewport(5);
      app = draw(createElement(ServicesTable, { state, width: COLUMNS, rows: 5, now: NOW }));
      expect(frame(app)).to.match(/node-4 +us-east-1\/us-east-1a +flapping /);
      app.unmount();
      state.select('node-4');
      state.press('', { return: true }, NOW);
      app = draw(createElement(DetailPane, { state, width: COLUMNS, rows: 20, now: NOW }));
      const text = frame(app);
      expect(text).to.match(/flapping +held down: 5 changes in 10m, stable for 15s of 30s/);
      expect(text).to.match(/instance +mismatch: asked maintenance, instance serving \(HTTP 500\); retrying/);
      expect(text).to.match(/budget +agent death noticed within 10s \(lease TTL\); sick upstream noticed within 17s/);
    });

    it('the detail pane has a line per check, naming the one that takes the instance out', () => {
      const check = { interval: 1, timeout: 1, retries: 2, lastCheck: T0 };
      const sick = record('node-5', {
        status: 'unhealthy',
        health: {
          status: 'unhealthy',
          responseTime: 3,
          lastCheck: T0,
          consecutiveFailures: 2,
          consecutiveSuccesses: 0,
          message: 'grpc 127.0.0.1:50051: 2 consecutive failures (NOT_SERVING)',
          checks: [
            { ...check, name: 'ready', kind: 'http', target: 'http://127.0.0.1:3000/health/ready', critical: true, status: 'healthy', output: 'HTTP 200' },
            { ...check, name: 'grpc 127.0.0.1:50051', kind: 'grpc', target: '127.0.0.1:50051', critical: true, status: 'unhealthy', output: 'NOT_SERVING' },
            { ...check, name: 'side', kind: 'tcp', target: '127.0.0.1:9', critical: false, status: 'unhealthy', output: 'ECONNREFUSED 127.0.0.1:9' },
          ],
        },
        checks: { interval: 1, timeout: 1, retries: 2, gracePeriod: 0, ttl: 10, flap: { threshold: 0, window: 600, holdDown: 30 } },
      });
      const state = stateWith([...threeServices(), sick]);
      state.select('node-5');
      state.press('', { return: true }, NOW);
      app = draw(createElement(DetailPane, { state, width: COLUMNS, rows: 24, now: NOW }));
      const text = frame(app);
      // The health line is cut at the pane's width; the check lines say the rest.
      expect(text, text).to.match(/health .*; grpc 127\.0\.0\.1:50051: 2/);
      expect(text).to.match(/checks +healthy +ready: HTTP 200/);
      expect(text).to.match(/ +unhealthy +grpc 127\.0\.0\.1:50051: NOT_SERVING/);
      expect(text).to.match(/ +unhealthy +side \(non-critical\): ECONNREFUSED 127\.0\.0\.1:9/);
      expect(text).to.match(/budget +agent death noticed within 10s \(lease TTL\); sick upstream noticed within 3s/);
    });

    it('the table shows only the rows that fit (1,000 services, 10 rows)', () => {
      const services = Array.from({ length: 1000 }, (_, i) => record(`svc-${String(i).padStart(4, '0')}`));
      const state = stateWith(services, null);
      state.setViewport(10);
      state.select('svc-0500');
      app = draw(createElement(ServicesTable, { state, width: COLUMNS, rows: 10, now: NOW }));
      const text = frame(app);
      expect(text).to.match(/Services 492-501 of 1000/);
      expect(text.match(/svc-\d{4}/g)).to.have.length(10);
      expect(text).to.match(/› {2}svc-0500/);
    });

    it('the table drops columns on a narrow terminal instead of wrapping', () => {
      const state = stateWith();
      app = draw(createElement(ServicesTable, { state, width: 64, rows: 3, now: NOW }));
      const lines = frame(app).split('\n');
      expect(lines[1]).to.not.match(/VERSION|UPDATED/);
      expect(lines[1]).to.match(/STATUS/);
      for (const l of lines) expect(l.length).to.be.at.most(64);
    });

    it('the topology pane counts region → zone with the leader on top', () => {
      const state = stateWith([
        record('a', { region: 'us-east-1', zone: 'us-east-1a' }),
        record('b', { region: 'us-east-1', zone: 'us-east-1b', status: 'unhealthy' }),
        record('c', { region: 'eu-west-1', zone: 'eu-west-1a' }),
      ], 'a');
      app = draw(createElement(TopologyPane, { state, width: 44, rows: 8 }));
      const text = frame(app);
      expect(text).to.match(/leader a ★/);
      expect(text).to.match(/eu-west-1 +1 all serving/);
      expect(text).to.match(/us-east-1 +2 1 not serving/);
      expect(text).to.match(/ {2}us-east-1a +1 all serving/);
      expect(text).to.match(/ {2}us-east-1b +1 1 not serving/);
      expect(text.indexOf('eu-west-1')).to.be.below(text.indexOf('us-east-1'));
    });

    it('the event log shows the newest event first', () => {
      const state = stateWith();
      state.applyEvent(healthChanged(record('node-2'), 'unhealthy', T0 + 1000), T0 + 1000);
      state.applyEvent({ type: 'serviceDisabled', serviceId: 'node-2', reason: 'deploy', actor: 'cli:alice', timestamp: T0 + 2000 }, T0 + 2000);
      app = draw(createElement(EventLog, { state, width: COLUMNS, rows: 4 }));
      const lines = frame(app).split('\n');
      expect(lines[0]).to.match(/Events \(2 received, newest first\)/);
      expect(lines[1]).to.match(/serviceDisabled +node-2 +disabled by cli:alice reason: deploy/);
      expect(lines[2]).to.match(/serviceHealthChanged +node-2 +healthy → unhealthy/);
    });

    it('registry strings are drawn escaped: a control or bidi character cannot move the cursor or reorder text', () => {
      const hostile = record('evil-1', {
        name: 'evil\u001b[2Jname',
        region: 'eu\u202elave',
        zone: 'z\u0007',
        version: '1\u009b2J',
        health: { status: 'unhealthy', responseTime: 3, lastCheck: T0, consecutiveFailures: 2, consecutiveSuccesses: 0, message: 'down\u001b]0;title\u0007' },
        status: 'unhealthy',
      });
      const state = stateWith([...threeServices(), hostile]);
      state.applyEvent({ type: 'serviceDisabled', serviceId: 'evil-1', reason: 'x\u001b[31mred', actor: 'ops\u2066', timestamp: T0 + 1000 }, T0 + 1000);
      state.setViewport(6);
      // What ink itself writes (bold, inverse) is SGR; anything else raw came from the registry.
      app = draw(createElement(ServicesTable, { state, width: COLUMNS, rows: 6, now: NOW }));
      expect(rawIn(app.lastFrame() ?? '')).to.equal(null);
      expect(frame(app)).to.include('eu\\u202elave/z\\u0007');
      app.unmount();
      app = draw(createElement(EventLog, { state, width: COLUMNS, rows: 4 }));
      expect(rawIn(app.lastFrame() ?? '')).to.equal(null);
      expect(frame(app)).to.include('x\\u001b[31mred');
      app.unmount();
      state.select('evil-1');
      state.press('', { return: true }, NOW);
      app = draw(createElement(DetailPane, { state, width: COLUMNS, rows: 20, now: NOW }));
      expect(rawIn(app.lastFrame() ?? '')).to.equal(null);
      expect(frame(app)).to.include('evil\\u001b[2Jname');
      expect(frame(app)).to.include('down\\u001b]0;title\\u0007');
    });

    it('the banner tells starting up from a lost link', () => {
      const state = new DashboardState({ connection: connection({ connected: false, synced: false }) });
      expect(bannerText(state, NOW)).to.match(/connecting to registry http:\/\/127\.0\.0\.1:2379…/);
      state.replaceAll(threeServices(), 'node-1', NOW);
      expect(bannerText(state, NOW)).to.match(/connecting the live watch to .*one-off listing/);
      state.setConnection({ connected: true }, NOW);
      expect(bannerText(state, NOW)).to.equal(undefined);
      state.setConnection({ connected: false }, NOW);
      expect(bannerText(state, NOW)).to.match(/^ ! STALE: registry .* unreachable since/);
      state.setConnection({ connected: true, registry: { description: 'etcd http://e:2379', reachable: false, stale: true } }, NOW);
      expect(bannerText(state, NOW)).to.match(/the agent cannot reach its registry \(etcd http:\/\/e:2379\)/);
    });

    it('the header gives leader, link and totals, health and admin state apart', () => {
      const state = stateWith(
        [
          record('a'),
          record('b', { status: 'unhealthy' }),
          record('c', { enabled: false, adminState: 'disabled' }),
          record('d', { status: 'draining' }),
          record('e', { enabled: false, adminState: 'draining', drainUntil: NOW + 20_000 }),
        ],
        'a',
      );
      app = draw(createElement(Header, { state, now: NOW, width: 140 }));
      const text = frame(app);
      expect(text).to.match(/cluster proxy-stone │ leader a ★ │ etcd http:\/\/127\.0\.0\.1:2379 ● live │ last change 10s ago/);
      // d's health is draining (its agent is stopping); e is the operator's drain, healthy all the same.
      expect(text).to.match(/^5 services │ health: 3 healthy {2}1 unhealthy {2}1 draining │ admin: 2 disabled \(1 draining\) │ 1 taking traffic$/m);
    });

    it('the header counts a drain from the admin state and leaves quiet groups short', () => {
      const state = stateWith([record('a'), record('b', { enabled: false, adminState: 'draining', drainUntil: NOW + 20_000 })], 'a');
      app = draw(createElement(Header, { state, now: NOW, width: 140 }));
      expect(frame(app)).to.match(/^2 services │ health: 2 healthy {2}0 unhealthy │ admin: 1 disabled \(1 draining\) │ 1 taking traffic$/m);
      app.unmount();
      // Past the drain's deadline: disabled, no longer draining.
      app = draw(createElement(Header, { state, now: NOW + 20_000, width: 140 }));
      expect(frame(app)).to.match(/│ admin: 1 disabled │ 1 taking traffic$/m);
    });
  });

  describe('the app, key by key', () => {
    let app: Instance | undefined;
    let controller: DashboardController | undefined;
    let state: DashboardState;
    let source: ManualSource;
    let client: FakeClient;

    beforeEach(() => {
      state = stateWith();
      source = new ManualSource();
      client = new FakeClient(() => state.allServices());
      controller = new DashboardController({ state, source, client, actor: 'cli:test', fps: 50, now: () => NOW });
      controller.start();
      app = render(createElement(DashboardApp, { controller, color: false, columns: COLUMNS, rows: ROWS, now: () => NOW }));
    });
    afterEach(async () => {
      app?.unmount();
      await controller?.close();
    });

    async function press(input: string): Promise<string> {
      app!.stdin.write(input);
      await tick(5);
      return frame(app!);
    }

    it('draws every pane within the terminal size', () => {
      const lines = frame(app!).split('\n');
      expect(lines.length).to.equal(ROWS - 1);
      for (const l of lines) expect(l.length, l).to.be.at.most(COLUMNS);
      const text = lines.join('\n');
      expect(text).to.match(/cluster proxy-stone │ leader node-1 ★/);
      expect(text).to.match(/3 services │ health: 3 healthy {2}0 unhealthy/);
      expect(text).to.match(/›★ node-1/);
      expect(text).to.match(/Events \(0 received/);
      expect(lines.at(-1)).to.match(/↑↓\/jk move · Enter detail · d disable/);
    });

    it('moves the selection with j and the arrow keys', async () => {
      expect(await press('j')).to.match(/›\s+node-2/);
      expect(await press('\u001B[B')).to.match(/›\s+node-3/);
      expect(await press('k')).to.match(/›\s+node-2/);
    });

    it('shows a change from the live source within a frame', async () => {
      source.sink!.event(healthChanged(state.service('node-2')!, 'unhealthy', NOW));
      await tick(60);
      const text = frame(app!);
      expect(text).to.match(/node-2 +us-east-1\/us-east-1b +unhealthy/);
      expect(text).to.match(/2 healthy {2}1 unhealthy/);
      expect(text).to.match(/serviceHealthChanged +node-2 +healthy → unhealthy/);
    });

    it('disables with d, a reason and y, through the client', async () => {
      await press('j');
      expect((await press('d')).split('\n').at(-1)).to.match(/Disable node-2 — reason: {2}/);
      expect((await press('deploy 1.4.3')).split('\n').at(-1)).to.match(/Disable node-2 — reason: deploy 1\.4\.3/);
      expect((await press('\r')).split('\n').at(-1)).to.match(/Disable node-2 \(reason: deploy 1\.4\.3\)\? y\/N/);
      const after = await press('y');
      expect(client.calls).to.deep.equal([{ id: 'node-2', enabled: false, request: { reason: 'deploy 1.4.3', actor: 'cli:test' } }]);
      await tick(5);
      expect(frame(app!).split('\n').at(-1)).to.match(/node-2 disabled \(reason: deploy 1\.4\.3\)/);
      void after;
    });

    it('shows the refusal when the change is refused', async () => {
      client.refuse = new AgentRequestError('http://a:8790', 403, 'forbidden', 'agent http://a:8790 refused the request: this key may only read');
      await press('d');
      await press('why');
      await press('\r');
      await press('y');
      await tick(5);
      expect(frame(app!).split('\n').at(-1)).to.match(/could not disable node-1: agent http:\/\/a:8790 refused the request: this key may only read/);
      // it stays until the next key
      await tick(50);
      expect(frame(app!)).to.match(/could not disable node-1/);
      expect(await press('j')).to.not.match(/could not disable/);
    });

    it('opens the detail with Enter: record, health history, audit', async () => {
      await press('j');
      await press('\r');
      await tick(10);
      const text = frame(app!);
      expect(text).to.match(/ node-2 /);
      expect(text).to.match(/status +healthy \(taking traffic\)/);
      expect(text).to.match(/Health checks \(newest last\)/);
      expect(text).to.match(/fail +4ms 503 +healthy → unhealthy/);
      expect(text).to.match(/Audit \(newest first\)/);
      expect(text).to.match(/disable +cli:alice +deploy/);
      expect(text.split('\n').at(-1)).to.match(/Esc back/);
      expect(await press('\u001B')).to.match(/Services 1-3 of 3/);
    });

    it('filters with f, searches with /, sorts with s, helps with ?', async () => {
      source.sink!.event(healthChanged(state.service('node-3')!, 'unhealthy', NOW));
      await tick(60);
      expect(await press('f')).to.match(/Filter[\s\S]*status: unhealthy +1/);
      let text = await press('jj\r');
      expect(text).to.match(/Services 1-1 of 1 \(3 in all\) · sort id ▲ · filter status=unhealthy/);
      expect(text).to.match(/node-3/);
      expect(text).to.not.match(/node-1 +us-east/);
      await press('\u001B');
      text = await press('/');
      expect(text.split('\n').at(-1)).to.match(/^\/ /);
      text = await press('1b');
      expect(text).to.match(/Services 1-1 of 1 \(3 in all\).*search “1b”/);
      await press('\r');
      await press('\u001B');
      text = await press('s');
      expect(text).to.match(/sort status ▲/);
      const table = text.slice(text.indexOf('Services'));
      expect(table.indexOf('node-3')).to.be.below(table.indexOf('node-1'));
      text = await press('?');
      expect(text).to.match(/Keys[\s\S]*disable the selected service/);
      expect(await press(' ')).to.match(/Services 1-3 of 3/);
    });

    it('shows a stale banner while the link is down and keeps the last view', async () => {
      source.sink!.connection({ connected: false, error: 'no answer within 5000ms' });
      await tick(60);
      let text = frame(app!);
      expect(text).to.match(/! STALE: registry http:\/\/127\.0\.0\.1:2379 unreachable since \d\d:\d\d:\d\d \(just now\) — showing the last/);
      expect(text).to.match(/● stale/);
      expect(text).to.match(/node-3/);
      expect(text.split('\n').length).to.equal(ROWS - 1);
      source.sink!.connection({ connected: true });
      await tick(60);
      text = frame(app!);
      expect(text).to.not.match(/STALE/);
      expect(text).to.match(/● live/);
    });

    it('quits with q', async () => {
      let quit = false;
      void controller!.finished.then(() => (quit = true));
      await press('q');
      await tick();
      expect(quit).to.equal(true);
    });
  });
});
