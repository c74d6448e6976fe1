import { expect } from 'chai';
import { ServiceNotFoundError } from '../../src/cluster/admin.js';
import { DashboardController } from '../../src/ui/controller.js';
import { FakeClient, healthChanged, ManualSource, record, stateWith } from './fixtures.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(fps = 8) {
  const services = Array.from({ length: 1000 }, (_, i) => record(`svc-${String(i).padStart(4, '0')}`));
  const state = stateWith(services, 'svc-0000');
  const source = new ManualSource();
  const client = new FakeClient(() => state.allServices());
  const controller = new DashboardController({ state, source, client, actor: 'cli:test', fps });
  let frames = 0;
  controller.subscribe(() => frames++);
  controller.start();
  return { state, source, client, controller, frames: () => frames, services };
}

describe('dashboard controller', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('turns a burst of 1,000 events into one or two frames', async () => {
    const t = setup(8);
    close = () => t.controller.close();
    await sleep(150);
    const before = t.frames();
    for (const s of t.services) t.source.sink!.event(healthChanged(s, 'unhealthy'));
    expect(t.frames()).to.equal(before); // nothing drawn synchronously
    await sleep(300);
    expect(t.frames() - before).to.be.within(1, 2);
    expect(t.state.totals().byStatus.unhealthy).to.equal(1000);
    expect(t.state.eventCount).to.equal(1000);
  });

  it('draws a key at once, even in the middle of a burst', async () => {
    const t = setup(4);
    close = () => t.controller.close();
    for (const s of t.services.slice(0, 500)) t.source.sink!.event(healthChanged(s, 'unhealthy'));
    const before = t.frames();
    await t.controller.press('j');
    expect(t.frames()).to.equal(before + 1);
    expect(t.state.selected()!.id).to.equal('svc-0001');
  });

  it('disables through the client with the reason and actor, and reports the outcome', async () => {
    const t = setup();
    close = () => t.controller.close();
    t.state.select('svc-0002');
    await t.controller.press('d');
    await t.controller.press('maintenance');
    await t.controller.press('', { return: true });
    await t.controller.press('y');
    expect(t.client.calls).to.deep.equal([{ id: 'svc-0002', enabled: false, request: { reason: 'maintenance', actor: 'cli:test' } }]);
    expect(t.state.busy).to.equal(undefined);
    expect(t.state.visibleFlash()!.text).to.equal('svc-0002 disabled (reason: maintenance)');
    t.client.refuse = new ServiceNotFoundError('svc-0002');
    await t.controller.press('d');
    await t.controller.press('again\r');
    await t.controller.press('y');
    expect(t.state.visibleFlash()!).to.deep.include({ tone: 'bad', sticky: true });
    expect(t.state.visibleFlash()!.text).to.match(/^could not disable svc-0002: service svc-0002 not found \(list the ids with: proxy-stone-sd services list\)$/);
  });

  it('says "reason updated" when the service turned out to be disabled already (another operator was first)', async () => {
    const t = setup();
    close = () => t.controller.close();
    t.state.select('svc-0003');
    t.client.answer = { changed: false, reasonUpdated: true, previousReason: 'their reason' };
    await t.controller.press('d');
    await t.controller.press('my reason\r');
    await t.controller.press('y');
    expect(t.state.visibleFlash()!.text).to.equal('svc-0003 already disabled; reason updated (reason: my reason)');
    t.client.answer = { changed: false };
    t.state.select('svc-0004');
    await t.controller.press('d');
    await t.controller.press('mine\r');
    await t.controller.press('y');
    expect(t.state.visibleFlash()!.text).to.equal('svc-0004 already disabled (no change)');
  });

  it('stops the source when closed and resolves finished', async () => {
    const t = setup();
    await t.controller.close();
    expect(t.source.closed).to.equal(true);
    await t.controller.finished;
  });
});
