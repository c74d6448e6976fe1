/**
 * Frame cost of the dashboard with 1,000 services, drawn by ink into a fake 160x45 terminal (no etcd,
 * no network: a hand-driven source feeds the real state, controller and components).
 *
 *   node --import tsx bench/dashboard-frame.ts [--frames 200] [--dev]
 *
 * Cases:
 * - key frame: a keypress (j) to the frame it draws: React render + commit + ink layout and output;
 * - sort frame: `s` re-sorts the 1,000 rows, then draws;
 * - burst apply: 1,000 health changes applied to the state (no drawing: that is the next frame);
 * - burst frame: the one frame that shows a whole burst;
 * - key during burst: a keypress while 1,000 events arrive in chunks of 50, to its frame.
 *
 * "ink output" is ink's own onRender metric (layout to string) for the same frames. Goal: p99 of every
 * frame well under the 125 ms budget of 8 fps, and a key during a burst drawn within 50 ms.
 */
import { EventEmitter } from 'node:events';
import Table from 'cli-table3';
import type { ClusterEvent, ServiceRecord, ServiceStatus } from '../src/types.js';
import type { DashboardController as Controller } from '../src/ui/controller.js';
import type { LiveSink, LiveSource } from '../src/ui/live-source.js';

// As the command does: React's development build is several times slower. `--dev` measures it anyway.
if (!process.argv.includes('--dev')) process.env.NODE_ENV ??= 'production';
const { render } = await import('ink');
const { createElement } = await import('react');
const { DashboardApp } = await import('../src/ui/components/dashboard-app.js');
const { DashboardController } = await import('../src/ui/controller.js');
const { DashboardState } = await import('../src/ui/dashboard-state.js');

const framesIndex = process.argv.indexOf('--frames');
const FRAMES = framesIndex === -1 ? 200 : Number(process.argv[framesIndex + 1]);
const SERVICES = 1000;
const COLUMNS = 160;
const ROWS = 45;

class FakeStdout extends EventEmitter {
  columns = COLUMNS;
  rows = ROWS;
  isTTY = false;
  bytes = 0;
  writes = 0;
  write(chunk: string, cb?: () => void): boolean {
    this.bytes += chunk.length;
    this.writes += 1;
    cb?.();
    return true;
  }
}

class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  send(data: string): void {
    this.data = data;
    this.emit('readable');
  }
  read(): string | null {
    const d = this.data;
    this.data = null;
    return d;
  }
  setEncoding(): void {}
  setRawMode(): void {}
  resume(): void {}
  pause(): void {}
  ref(): void {}
  unref(): void {}
}

class HandSource implements LiveSource {
  sink!: LiveSink;
  start(sink: LiveSink): void {
    this.sink = sink;
  }
  async close(): Promise<void> {}
}

function service(i: number): ServiceRecord {
  const region = `region-${i % 10}`;
  const now = Date.now();
  return {
    id: `proxy-stone-${String(i).padStart(4, '0')}`,
    name: 'proxy-stone',
    host: `10.0.${Math.floor(i / 250)}.${i % 250}`,
    port: 3000,
    version: i % 7 ? '1.4.2' : '1.5.0',
    tags: ['edge'],
    region,
    zone: `${region}${'abc'[i % 3]}`,
    status: 'healthy',
    role: i === 0 ? 'leader' : 'follower',
    enabled: true,
    health: { status: 'healthy', responseTime: 3 + (i % 40), lastCheck: now - (i % 30) * 1000, consecutiveFailures: 0, consecutiveSuccesses: 5 },
    isHealthy: true,
    registeredAt: now - 3_600_000,
    updatedAt: now,
    healthUrl: 'http://10.0.0.1:3000/health',
    metadata: {},
  };
}

function flip(s: ServiceRecord, status: ServiceStatus): ClusterEvent {
  const next: ServiceRecord = { ...s, status, isHealthy: status === 'healthy', health: { ...s.health, status } };
  return { type: 'serviceHealthChanged', serviceId: s.id, previousStatus: s.status, status, service: next, timestamp: Date.now() };
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

const services = Array.from({ length: SERVICES }, (_, i) => service(i));
const state = new DashboardState({ connection: { source: 'registry', target: 'http://127.0.0.1:2379', cluster: 'proxy-stone', connected: true, synced: true } });
const source = new HandSource();
const client = { setEnabled: async () => ({ serviceId: '', enabled: true, changed: false }) } as unknown as ConstructorParameters<typeof Controller>[0]['client'];
const controller = new DashboardController({ state, source, client, fps: 8 });
controller.start();
source.sink.snapshot(services, services[0]!.id);

const stdout = new FakeStdout();
const stdin = new FakeStdin();
const inkTimes: number[] = [];
let frameDone = 0;
const app = render(createElement(DashboardApp, { controller, color: true }), {
  stdout: stdout as unknown as NodeJS.WriteStream,
  stdin: stdin as unknown as NodeJS.ReadStream,
  exitOnCtrlC: false,
  patchConsole: false,
  // Unthrottled, so that each frame is written (and timed) when it is committed.
  maxFps: 1000,
  onRender: ({ renderTime }) => {
    inkTimes.push(renderTime);
    frameDone = performance.now();
  },
});
await tick();

/** Time from an action to the frame that draws it. */
async function timeFrame(action: () => void): Promise<number> {
  const before = frameDone;
  const t0 = performance.now();
  action();
  while (frameDone === before) await tick();
  return frameDone - t0;
}

const rows: (string | number)[][] = [];
function report(name: string, values: number[], unit = 'ms'): void {
  rows.push([name, values.length, `${pct(values, 50).toFixed(2)} ${unit}`, `${pct(values, 99).toFixed(2)} ${unit}`, `${Math.max(...values).toFixed(2)} ${unit}`]);
}

// Warm-up: JIT, first layouts.
for (let i = 0; i < 20; i++) await timeFrame(() => stdin.send(i % 2 ? 'j' : 'k'));

inkTimes.length = 0;
const keyFrames: number[] = [];
for (let i = 0; i < FRAMES; i++) keyFrames.push(await timeFrame(() => stdin.send(i % 40 < 20 ? 'j' : 'k')));
report('key frame (j/k)', keyFrames);
report('  of which ink output', inkTimes.splice(0));

const sortFrames: number[] = [];
for (let i = 0; i < Math.min(FRAMES, 80); i++) sortFrames.push(await timeFrame(() => stdin.send('s')));
report('sort frame (s, 1,000 rows)', sortFrames);
inkTimes.length = 0;

const applyTimes: number[] = [];
const burstFrames: number[] = [];
for (let round = 0; round < Math.min(FRAMES, 50); round++) {
  const status: ServiceStatus = round % 2 ? 'healthy' : 'unhealthy';
  const events = services.map((s) => flip(s, status));
  const t0 = performance.now();
  for (const e of events) state.applyEvent(e);
  applyTimes.push(performance.now() - t0);
  burstFrames.push(await timeFrame(() => controller.flush()));
}
report('burst apply (1,000 events)', applyTimes);
report('burst frame (draws 1,000 changes)', burstFrames);

// Keys while a burst streams in: 1,000 events per round in chunks of 50 through the sink, as a watch
// or an SSE stream would deliver them, with batched (8 fps) frames.
const keyInBurst: number[] = [];
for (let round = 0; round < 20; round++) {
  const status: ServiceStatus = round % 2 ? 'healthy' : 'unhealthy';
  let sent = 0;
  let streaming = true;
  const stream = (async () => {
    while (sent < SERVICES) {
      for (let i = 0; i < 50 && sent < SERVICES; i++, sent++) source.sink.event(flip(services[sent]!, status));
      await tick();
    }
    streaming = false;
  })();
  await tick();
  await tick();
  if (streaming) keyInBurst.push(await timeFrame(() => stdin.send('j')));
  await stream;
}
report('key during a 1,000-event burst', keyInBurst);

app.unmount();
await controller.close();

const table = new Table({ head: ['case', 'n', 'p50', 'p99', 'max'], style: { head: [], border: [] } });
for (const r of rows) table.push(r.map(String));
console.log(`dashboard frames: ${SERVICES} services, ${COLUMNS}x${ROWS}, node ${process.version}, React ${process.env.NODE_ENV === 'production' ? 'production' : 'development'} build`);
console.log(table.toString());
console.log(`ink wrote ${(stdout.bytes / stdout.writes / 1024).toFixed(1)} KiB per write on average (${stdout.writes} writes)`);
