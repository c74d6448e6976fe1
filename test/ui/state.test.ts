import { expect } from 'chai';
import type { ClusterEvent } from '../../src/types.js';
import { DashboardState } from '../../src/ui/dashboard-state.js';
import { connection, healthChanged, record, stateWith, T0, threeServices } from './fixtures.js';

const down = { downArrow: true };
const up = { upArrow: true };
const enter = { return: true };
const esc = { escape: true };

function type(state: DashboardState, text: string): void {
  for (const ch of text) state.press(ch, {}, T0);
}

describe('dashboard state', () => {
  describe('live map and event reducer', () => {
    it('lists the snapshot sorted by id, with the election deciding the roles', () => {
      const state = stateWith([record('b'), record('a', { role: 'leader' }), record('c')], 'c');
      expect(state.rows().map((s) => s.id)).to.deep.equal(['a', 'b', 'c']);
      expect(state.service('c')!.role).to.equal('leader');
      // The record said leader, the election says otherwise.
      expect(state.service('a')!.role).to.equal('follower');
      expect(state.connection.synced).to.equal(true);
      expect(state.lastUpdate).to.equal(T0);
    });

    it('joins, updates, health changes and leaves', () => {
      const state = stateWith();
      state.applyEvent({ type: 'serviceJoined', serviceId: 'node-4', service: record('node-4', { region: 'ap-south-1' }), timestamp: T0 + 1 });
      expect(state.size).to.equal(4);
      state.applyEvent(healthChanged(state.service('node-2')!, 'unhealthy', T0 + 2));
      expect(state.service('node-2')!.status).to.equal('unhealthy');
      expect(state.service('node-2')!.isHealthy).to.equal(false);
      state.applyEvent({ type: 'serviceUpdated', serviceId: 'node-3', service: record('node-3', { region: 'eu-west-1', version: '2.0.0' }), timestamp: T0 + 3 });
      expect(state.service('node-3')!.version).to.equal('2.0.0');
      state.applyEvent({ type: 'serviceLeft', serviceId: 'node-1', timestamp: T0 + 4 }, T0 + 4);
      expect(state.service('node-1')).to.equal(undefined);
      expect(state.size).to.equal(3);
      expect(state.eventCount).to.equal(4);
      expect(state.lastUpdate).to.equal(T0 + 4);
    });

    it('applies enable and disable to the record: enabled, isHealthy, reason', () => {
      const state = stateWith();
      state.applyEvent({ type: 'serviceDisabled', serviceId: 'node-2', reason: 'deploy', actor: 'cli:alice', timestamp: T0 + 1 });
      const off = state.service('node-2')!;
      expect([off.enabled, off.isHealthy, off.disabledReason]).to.deep.equal([false, false, 'deploy']);
      state.applyEvent({ type: 'serviceEnabled', serviceId: 'node-2', actor: 'cli:alice', timestamp: T0 + 2 });
      const on = state.service('node-2')!;
      expect([on.enabled, on.isHealthy, on.disabledReason]).to.deep.equal([true, true, undefined]);
    });

    it('moves the leader mark on leaderElected', () => {
      const state = stateWith();
      state.applyEvent({ type: 'leaderElected', leaderId: 'node-3', previousLeaderId: 'node-1', timestamp: T0 + 1 });
      expect(state.leaderId).to.equal('node-3');
      expect(state.service('node-3')!.role).to.equal('leader');
      expect(state.service('node-1')!.role).to.equal('follower');
      expect(state.topology().leader?.id).to.equal('node-3');
    });

    it('logs events newest first and keeps only the newest', () => {
      const state = new DashboardState({ connection: connection(), logSize: 5 });
      state.replaceAll(threeServices(), 'node-1', T0);
      for (let i = 0; i < 20; i++) {
        const before = record('node-2', { status: i % 2 ? 'unhealthy' : 'healthy' });
        state.applyEvent(healthChanged(before, i % 2 ? 'healthy' : 'unhealthy', T0 + i));
      }
      state.notice('lost the watch', 'bad', T0 + 100);
      const log = state.events();
      expect(log.length).to.be.at.most(6);
      expect(log[0]!.kind).to.equal('notice');
      expect(log[1]!.at).to.equal(T0 + 19);
      expect(log[1]!.text).to.equal('unhealthy → healthy');
      expect(state.eventCount).to.equal(20);
    });

    it('counts totals and the topology tree with computeTopology', () => {
      const state = stateWith([
        record('a', { region: 'us', zone: 'us-a' }),
        record('b', { region: 'us', zone: 'us-a', status: 'unhealthy' }),
        record('c', { region: 'us', zone: 'us-b', enabled: false }),
        record('d', { region: 'eu', zone: 'eu-a', status: 'starting' }),
        record('e', { region: 'eu', zone: 'eu-a', status: 'draining' }),
      ]);
      const t = state.totals(T0);
      expect(t.total).to.equal(5);
      expect(t.byStatus).to.deep.equal({ healthy: 2, unhealthy: 1, starting: 1, draining: 1, stopped: 0 });
      expect(t.disabled).to.equal(1);
      // e's health says draining (its agent is stopping); no operator drain runs anywhere.
      expect(t.draining).to.equal(0);
      expect(t.takingTraffic).to.equal(1);
      expect(state.topologyTree()).to.deep.equal([
        { name: 'eu', total: 2, healthy: 0, zones: [{ name: 'eu-a', total: 2, healthy: 0 }] },
        {
          name: 'us',
          total: 3,
          healthy: 1,
          zones: [
            { name: 'us-a', total: 2, healthy: 1 },
            { name: 'us-b', total: 1, healthy: 0 },
          ],
        },
      ]);
    });

    it('counts draining from the admin state, not from health: disabled with the drain still running', () => {
      const state = stateWith([
        record('a', { enabled: false, adminState: 'draining', drainUntil: T0 + 30_000 }),
        record('b', { enabled: false, adminState: 'draining', drainUntil: T0 + 5_000, status: 'unhealthy' }),
        record('c', { enabled: false, adminState: 'disabled' }),
        record('d', { status: 'draining' }), // an agent stopping: health, not operator state
        record('e'),
      ]);
      const t = state.totals(T0);
      expect(t.draining).to.equal(2);
      expect(t.disabled).to.equal(3);
      expect(t.byStatus.draining).to.equal(1);
      // b's deadline passes: it counts as disabled before the event saying so arrives, as its countdown does.
      expect(state.totals(T0 + 5_000).draining).to.equal(1);
      // A disable with a drain, by event; then the enable ends it.
      state.applyEvent({ type: 'serviceDisabled', serviceId: 'e', actor: 'cli:x', drainUntil: T0 + 10_000, timestamp: T0 }, T0);
      expect(state.totals(T0).draining).to.equal(3);
      state.applyEvent({ type: 'serviceEnabled', serviceId: 'a', actor: 'cli:x', timestamp: T0 }, T0);
      expect(state.totals(T0).draining).to.equal(2);
    });

    it('marks the view stale while the link is down, and live again after', () => {
      const state = stateWith();
      state.setConnection({ connected: false, error: 'no answer within 5000ms' }, T0 + 10);
      expect(state.stale).to.equal(true);
      expect(state.connection.lostAt).to.equal(T0 + 10);
      expect(state.size).to.equal(3); // the last view is kept
      state.setConnection({ connected: true }, T0 + 20);
      expect(state.stale).to.equal(false);
      expect(state.connection.lostAt).to.equal(undefined);
      expect(state.connection.error).to.equal(undefined);
    });
  });

  describe('selection and windowing', () => {
    it('moves with arrows and j/k, clamped to the list', () => {
      const state = stateWith();
      expect(state.selected()!.id).to.equal('node-1');
      state.press('', down, T0);
      state.press('j', {}, T0);
      expect(state.selected()!.id).to.equal('node-3');
      state.press('j', {}, T0);
      expect(state.selected()!.id).to.equal('node-3');
      state.press('', up, T0);
      state.press('k', {}, T0);
      state.press('k', {}, T0);
      expect(state.selected()!.id).to.equal('node-1');
      state.press('G', {}, T0);
      expect(state.selected()!.id).to.equal('node-3');
      state.press('g', {}, T0);
      expect(state.selected()!.id).to.equal('node-1');
    });

    it('keeps the selection on the same service when the order changes, and hands it on when it leaves', () => {
      const state = stateWith();
      state.select('node-2');
      state.applyEvent(healthChanged(state.service('node-2')!, 'unhealthy'));
      state.press('s', {}, T0); // sort by status: unhealthy first
      expect(state.rows()[0]!.id).to.equal('node-2');
      expect(state.selected()!.id).to.equal('node-2');
      state.press('j', {}, T0);
      expect(state.selected()!.id).to.equal('node-1');
      state.applyEvent({ type: 'serviceLeft', serviceId: 'node-1', timestamp: T0 });
      expect(state.selected()!.id).to.equal('node-3');
    });

    it('draws only the rows that fit and scrolls to keep the selection visible', () => {
      const services = Array.from({ length: 1000 }, (_, i) => record(`svc-${String(i).padStart(4, '0')}`));
      const state = stateWith(services, 'svc-0000');
      state.setViewport(20);
      let win = state.window();
      expect(win.rows.length).to.equal(20);
      expect(win.start).to.equal(0);
      state.press('', { pageDown: true }, T0);
      state.press('', { pageDown: true }, T0);
      win = state.window();
      expect(win.selected).to.equal(38);
      expect(win.selected).to.be.within(win.start, win.start + 19);
      state.press('G', {}, T0);
      win = state.window();
      expect(win.start).to.equal(980);
      expect(win.rows.at(-1)!.id).to.equal('svc-0999');
      expect(win.total).to.equal(1000);
    });
  });

  describe('filters, search and sort', () => {
    it('filters by status, disabled and region from the f menu; Esc clears', () => {
      const state = stateWith([
        record('a', { region: 'us' }),
        record('b', { region: 'us', status: 'unhealthy' }),
        record('c', { region: 'eu', enabled: false }),
      ]);
      state.press('f', {}, T0);
      expect(state.mode).to.equal('filter');
      const labels = state.filterMenu!.options.map((o) => `${o.label}=${o.count}`);
      expect(labels).to.include.members(['status: unhealthy=1', 'status: disabled=1', 'region: eu=1', 'region: us=2']);
      // down to "status: unhealthy" (clear, healthy, unhealthy)
      state.press('j', {}, T0);
      state.press('j', {}, T0);
      state.press('', enter, T0);
      expect(state.mode).to.equal('table');
      expect(state.rows().map((s) => s.id)).to.deep.equal(['b']);
      state.setFilters({ status: 'disabled' });
      expect(state.rows().map((s) => s.id)).to.deep.equal(['c']);
      state.setFilters({ region: 'us' });
      expect(state.rows().map((s) => s.id)).to.deep.equal(['a', 'b']);
      state.press('', esc, T0);
      expect(state.rows()).to.have.length(3);
      expect(state.filters).to.deep.equal({});
    });

    it('searches as you type; Enter keeps the search, Esc restores the previous one', () => {
      const state = stateWith();
      state.press('/', {}, T0);
      expect(state.mode).to.equal('search');
      type(state, 'eu-west');
      expect(state.rows().map((s) => s.id)).to.deep.equal(['node-3']);
      state.press('', { backspace: true }, T0);
      expect(state.search).to.equal('eu-wes');
      state.press('', enter, T0);
      expect(state.mode).to.equal('table');
      expect(state.search).to.equal('eu-wes');
      state.press('/', {}, T0);
      type(state, 'xyz');
      expect(state.rows()).to.have.length(0);
      state.press('', esc, T0);
      expect(state.search).to.equal('eu-wes');
      // q while typing is a letter, not quit
      state.press('/', {}, T0);
      expect(state.press('q', {}, T0)).to.equal(undefined);
      expect(state.search).to.equal('eu-wesq');
    });

    it('a search that reads as a label selector selects by metadata, as -l does', () => {
      const state = stateWith([
        record('a', { metadata: { team: 'edge', env: 'prod' } }),
        record('b', { metadata: { team: 'edge', env: 'staging' } }),
        record('c', { metadata: { team: 'core' } }),
      ]);
      state.press('/', {}, T0);
      type(state, 'team=edge,env!=staging');
      expect(state.rows().map((s) => s.id)).to.deep.equal(['a']);
      state.press('', esc, T0);
      state.press('/', {}, T0);
      type(state, 'team!=edge');
      expect(state.rows().map((s) => s.id)).to.deep.equal(['c']);
      // Without a `=` it is the plain search (id, name, address, place, version, tags): no metadata.
      state.press('', esc, T0);
      state.press('/', {}, T0);
      type(state, 'core');
      expect(state.rows().map((s) => s.id)).to.deep.equal([]);
    });

    it('cycles the sort with s and reverses it with S', () => {
      const state = stateWith([
        record('a', { health: { status: 'healthy', responseTime: 5, lastCheck: T0, consecutiveFailures: 0, consecutiveSuccesses: 1 } }),
        record('b', { status: 'unhealthy', health: { status: 'unhealthy', responseTime: 50, lastCheck: T0, consecutiveFailures: 3, consecutiveSuccesses: 0 } }),
        record('c', { status: 'starting', health: { status: 'starting', responseTime: 20, lastCheck: T0, consecutiveFailures: 0, consecutiveSuccesses: 0 } }),
      ]);
      expect(state.sort).to.deep.equal({ key: 'id', descending: false });
      state.press('s', {}, T0);
      expect(state.sort.key).to.equal('status');
      expect(state.rows().map((s) => s.id)).to.deep.equal(['b', 'c', 'a']);
      state.press('S', {}, T0);
      expect(state.rows().map((s) => s.id)).to.deep.equal(['a', 'c', 'b']);
      while (state.sort.key !== 'latency') state.press('s', {}, T0);
      expect(state.sort.descending).to.equal(true);
      expect(state.rows().map((s) => s.id)).to.deep.equal(['b', 'c', 'a']);
    });
  });

  describe('disable / enable', () => {
    it('asks for a reason (required to disable), then confirmation, then asks the controller', () => {
      const state = stateWith();
      state.select('node-2');
      expect(state.press('d', {}, T0)).to.equal(undefined);
      expect(state.mode).to.equal('reason');
      expect(state.toggle).to.deep.include({ serviceId: 'node-2', enabled: false });
      state.press('', enter, T0);
      expect(state.mode).to.equal('reason');
      expect(state.visibleFlash(T0)!.text).to.match(/reason is required/);
      type(state, 'deploy 1.4.3');
      state.press('', enter, T0);
      expect(state.mode).to.equal('confirm');
      expect(state.press('y', {}, T0)).to.deep.equal({ type: 'setEnabled', serviceId: 'node-2', enabled: false, reason: 'deploy 1.4.3' });
      expect(state.mode).to.equal('table');
      expect(state.busy).to.match(/disabling node-2/);
    });

    it('anything but y cancels; Esc cancels the reason', () => {
      const state = stateWith();
      state.press('d', {}, T0);
      type(state, 'x');
      state.press('', enter, T0);
      expect(state.press('n', {}, T0)).to.equal(undefined);
      expect(state.mode).to.equal('table');
      expect(state.visibleFlash(T0)!.text).to.match(/cancelled/);
      state.press('d', {}, T0);
      state.press('', esc, T0);
      expect(state.mode).to.equal('table');
      expect(state.toggle).to.equal(undefined);
    });

    it('enables with an optional reason, and says so when there is nothing to change', () => {
      const state = stateWith([record('a', { enabled: false, disabledReason: 'deploy' }), record('b')]);
      expect(state.press('d', {}, T0)).to.equal(undefined); // a is already disabled
      expect(state.mode).to.equal('table');
      expect(state.visibleFlash(T0)!.text).to.equal('a is already disabled');
      state.press('e', {}, T0);
      state.press('', enter, T0);
      expect(state.press('y', {}, T0)).to.deep.equal({ type: 'setEnabled', serviceId: 'a', enabled: true });
    });

    it('acts on the service of the detail pane', () => {
      const state = stateWith();
      state.select('node-3');
      expect(state.press('', enter, T0)).to.deep.equal({ type: 'loadDetail', serviceId: 'node-3' });
      expect(state.mode).to.equal('detail');
      state.press('d', {}, T0);
      type(state, 'disk');
      state.press('', enter, T0);
      expect(state.press('y', {}, T0)).to.deep.include({ serviceId: 'node-3', enabled: false });
      expect(state.mode).to.equal('detail');
      state.press('', esc, T0);
      expect(state.mode).to.equal('table');
    });
  });

  describe('keys', () => {
    it('quits with q and Ctrl-C, Ctrl-C even while typing', () => {
      const state = stateWith();
      expect(state.press('q', {}, T0)).to.deep.equal({ type: 'quit' });
      state.press('/', {}, T0);
      expect(state.press('c', { ctrl: true }, T0)).to.deep.equal({ type: 'quit' });
    });

    it('handles keys that arrived together one by one', () => {
      const state = stateWith();
      state.press('f', {}, T0);
      // ink hands "jj\r" over as one input when the keys come faster than it reads
      expect(state.pressKeys('jj\r', {}, T0)).to.deep.equal([]);
      expect(state.filters).to.deep.equal({ status: 'unhealthy' });
      expect(state.pressKeys('jq', {}, T0)).to.deep.equal([{ type: 'quit' }]);
    });

    it('opens help with ? and closes it with any key', () => {
      const state = stateWith();
      state.press('?', {}, T0);
      expect(state.mode).to.equal('help');
      state.press('x', {}, T0);
      expect(state.mode).to.equal('table');
    });

    it('loads the detail of the selected service and keeps its result', () => {
      const state = stateWith();
      state.press('j', {}, T0);
      expect(state.press('', enter, T0)).to.deep.equal({ type: 'loadDetail', serviceId: 'node-2' });
      expect(state.detail).to.deep.equal({ serviceId: 'node-2', loading: true });
      state.detailFailed('node-2', 'no answer');
      expect(state.detail).to.deep.equal({ serviceId: 'node-2', loading: false, error: 'no answer' });
      // a late answer for another service is ignored
      state.detailFailed('node-1', 'late');
      expect(state.detail!.error).to.equal('no answer');
    });
  });

  it('absorbs a burst of 1,000 events in a few milliseconds', () => {
    const services = Array.from({ length: 1000 }, (_, i) => record(`svc-${i}`));
    const state = stateWith(services, 'svc-0');
    const events: ClusterEvent[] = services.map((s, i) => healthChanged(s, i % 3 ? 'healthy' : 'unhealthy'));
    const started = performance.now();
    for (const e of events) state.applyEvent(e);
    state.rows();
    state.totals();
    const ms = performance.now() - started;
    expect(state.totals().byStatus.unhealthy).to.equal(334);
    expect(ms).to.be.below(250);
  });
});
