/**
 * Issue 9 in the dashboard: a drain's countdown and a timed disable's time left in the table and the
 * event reducer, and the capacity guard's refusal shown with an explicit, separate offer to force.
 */
import { expect } from 'chai';
import { Box } from 'ink';
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { CapacityError } from '../../src/cluster/capacity.js';
import { Footer } from '../../src/ui/components/footer.js';
import { ServicesTable } from '../../src/ui/components/services-table.js';
import { ColorScope } from '../../src/ui/components/theme.js';
import { DashboardController } from '../../src/ui/controller.js';
import { enabledCell } from '../../src/ui/format.js';
import { FakeClient, ManualSource, record, stateWith, stripAnsi, T0 } from './fixtures.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enter = { return: true };

describe('dashboard: draining, timed disables and the capacity guard', () => {
  it('the ENABLED cell counts a drain down to disabled, and a timed disable down to its end', () => {
    expect(enabledCell({ enabled: true }, T0)).to.equal('yes');
    expect(enabledCell({ enabled: false, drainUntil: T0 + 25_000 }, T0)).to.equal('drn 25s');
    // The drain's deadline passed with no event (its agent died): the cell moves on by itself.
    expect(enabledCell({ enabled: false, drainUntil: T0 - 1 }, T0)).to.equal('no');
    expect(enabledCell({ enabled: false, disabledUntil: T0 + 29 * 60_000 }, T0)).to.equal('no 29m');
    expect(enabledCell({ enabled: false }, T0)).to.equal('no');
  });

  it('serviceDisabled with drainUntil/expiresAt, then serviceEnabled, update the row', () => {
    const state = stateWith();
    state.applyEvent({ type: 'serviceDisabled', serviceId: 'node-2', reason: 'deploy', drainUntil: T0 + 30_000, expiresAt: T0 + 3_600_000, timestamp: T0 });
    expect(state.service('node-2')).to.include({ enabled: false, adminState: 'draining', drainUntil: T0 + 30_000, disabledUntil: T0 + 3_600_000 });
    const app = render(
      createElement(ColorScope, { enabled: false, children: createElement(Box, { flexDirection: 'column' }, createElement(ServicesTable, { state, width: 110, rows: 5, now: T0 + 5000 })) }),
    );
    try {
      const row = stripAnsi(app.lastFrame() ?? '').split('\n').find((l) => l.includes('node-2'))!;
      expect(row).to.match(/ drn 25s /);
    } finally {
      app.unmount();
    }
    state.applyEvent({ type: 'serviceEnabled', serviceId: 'node-2', timestamp: T0 + 10 });
    const s = state.service('node-2')!;
    expect(s).to.include({ enabled: true, adminState: 'enabled' });
    expect(s).to.not.have.property('drainUntil');
    expect(s).to.not.have.property('disabledUntil');
  });

  it('a refusal is shown, and forcing needs its own y (the retry carries force); anything else cancels', async () => {
    const state = stateWith([record('a', { zone: 'z1' }), record('b', { zone: 'z2' })], 'a');
    const source = new ManualSource();
    const client = new FakeClient(() => state.allServices());
    client.refuse = new CapacityError('a', [{ scope: 'zone', name: 'z1', region: 'us-east-1', after: 0, minimum: 1, total: 1 }]);
    const controller = new DashboardController({ state, source, client, actor: 'cli:test' });
    controller.start();
    const disableA = async () => {
      await controller.press('d');
      for (const ch of 'maint') await controller.press(ch);
      await controller.press('', enter);
      await controller.press('y');
    };
    try {
      state.select('a');
      await disableA();
      expect(client.calls).to.have.length(1);
      expect(client.calls[0]!.request).to.not.have.property('force');
      expect(state.mode).to.equal('confirm');
      expect(state.toggle).to.deep.include({ serviceId: 'a', force: true, reason: 'maint' });
      const footer = render(createElement(ColorScope, { enabled: false, children: createElement(Footer, { state, now: Date.now() }) }));
      try {
        const text = stripAnsi(footer.lastFrame() ?? '');
        expect(text, text).to.match(
          /^Force the disable of a \(audited as forced\)\? y\/N {2}refused: zone z1 of region us-east-1 would have 0/,
        );
      } finally {
        footer.unmount();
      }
      // n: nothing forced.
      await controller.press('n');
      expect(state.mode).to.equal('table');
      expect(client.calls).to.have.length(1);

      // Again, and this time y: the retry carries force, and only it.
      await disableA();
      expect(client.calls).to.have.length(2);
      client.refuse = undefined;
      await controller.press('y');
      expect(client.calls).to.have.length(3);
      expect(client.calls[2]!.request).to.deep.include({ force: true, reason: 'maint' });
      expect(state.visibleFlash(Date.now())!.text).to.match(/a disabled/);
    } finally {
      await controller.close();
    }
  });
});
