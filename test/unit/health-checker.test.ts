import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  HealthChecker,
  describeNetworkError,
  type HealthCheckResultEvent,
  type HealthCheckerEvents,
  type HealthCheckerOptions,
  type HealthStatusChangeEvent,
} from '../../src/agent/health-checker.js';

type Mode = 200 | 503 | 'hang' | 'closed' | 'slow' | 'big';

/** A local health endpoint whose behaviour the test switches at will. */
class SwitchableServer {
  mode: Mode;
  /** Requests received, with their arrival times (performance.now()). */
  arrivals: number[] = [];
  /** Distinct TCP connections accepted. */
  connections = 0;
  inFlight = 0;
  maxInFlight = 0;
  slowMs = 150;
  #server: Server;
  #sockets = new Set<Socket>();
  #port = 0;

  private constructor(mode: Mode) {
    this.mode = mode;
    this.#server = this.#create();
  }

  static async start(mode: Mode): Promise<SwitchableServer> {
    const s = new SwitchableServer(mode === 'closed' ? 200 : mode);
    await s.#listen(0);
    if (mode === 'closed') await s.setMode('closed');
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/health`;
  }

  get port(): number {
    return this.#port;
  }

  async setMode(mode: Mode): Promise<void> {
    const wasClosed = this.mode === 'closed';
    this.mode = mode;
    if (mode === 'closed' && !wasClosed) await this.#shutdown();
    if (mode !== 'closed' && wasClosed) {
      this.#server = this.#create();
      await this.#listen(this.#port);
    }
  }

  async close(): Promise<void> {
    if (this.mode !== 'closed') await this.#shutdown();
  }

  #create(): Server {
    const server = createServer((req, res) => this.#handle(req, res));
    server.on('connection', (socket: Socket) => {
      this.connections += 1;
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    return server;
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  async #shutdown(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    // Hung requests and idle keep-alive sockets would keep close() waiting.
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #handle(_req: IncomingMessage, res: ServerResponse): void {
    this.arrivals.push(performance.now());
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => {
      this.inFlight -= 1;
    });
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    switch (this.mode) {
      case 200:
        return json(200, { status: 'ok' });
      case 503:
        return json(503, { status: 'degraded' });
      case 'slow': {
        const timer = setTimeout(() => json(200, { status: 'ok' }), this.slowMs);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case 'big':
        // Larger than the checker's read limit: still a success.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('x'.repeat(256 * 1024));
        return;
      case 'hang':
      case 'closed':
        return; // never answer
    }
  }
}

const checkers: HealthChecker[] = [];
const servers: SwitchableServer[] = [];

async function server(mode: Mode): Promise<SwitchableServer> {
  const s = await SwitchableServer.start(mode);
  servers.push(s);
  return s;
}

function checker(url: string, options: Partial<HealthCheckerOptions> = {}): HealthChecker {
  const c = new HealthChecker({ url, intervalMs: 50, timeoutMs: 200, retries: 3, gracePeriodMs: 0, ...options });
  checkers.push(c);
  return c;
}

/** Resolves with the first event payload matching `predicate`; rejects after `timeoutMs`. */
function waitFor<K extends keyof HealthCheckerEvents>(
  c: HealthChecker,
  event: K,
  predicate: (payload: HealthCheckerEvents[K][0]) => boolean,
  timeoutMs = 3000,
): Promise<HealthCheckerEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const listener = (payload: HealthCheckerEvents[K][0]): void => {
      if (!predicate(payload)) return;
      cleanup();
      resolve(payload);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs}ms waiting for ${event}`));
    }, timeoutMs);
    const on = c.on.bind(c) as (e: K, l: typeof listener) => HealthChecker;
    const off = c.off.bind(c) as (e: K, l: typeof listener) => HealthChecker;
    const cleanup = (): void => {
      clearTimeout(timer);
      off(event, listener);
    };
    on(event, listener);
  });
}

function collect(c: HealthChecker): { results: HealthCheckResultEvent[]; changes: HealthStatusChangeEvent[] } {
  const results: HealthCheckResultEvent[] = [];
  const changes: HealthStatusChangeEvent[] = [];
  c.on('result', (e) => results.push(e));
  c.on('statusChange', (e) => changes.push(e));
  return { results, changes };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('HealthChecker', function () {
  this.timeout(10_000);

  afterEach(async () => {
    await Promise.all(checkers.splice(0).map((c) => c.stop()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it('validates its options', () => {
    const url = 'http://127.0.0.1:1/health';
    expect(() => checker('not a url')).to.throw(TypeError);
    expect(() => checker('ftp://127.0.0.1/health')).to.throw(TypeError, /http/);
    expect(() => checker(url, { intervalMs: 0 })).to.throw(RangeError, /intervalMs/);
    expect(() => checker(url, { timeoutMs: -1 })).to.throw(RangeError, /timeoutMs/);
    expect(() => checker(url, { retries: 0 })).to.throw(RangeError, /retries/);
    expect(() => checker(url, { gracePeriodMs: -1 })).to.throw(RangeError, /gracePeriodMs/);
    expect(() => checker(url, { maxBodyBytes: -1 })).to.throw(RangeError, /maxBodyBytes/);
  });

  it('probes immediately on start() and becomes healthy on a 2xx', async () => {
    const s = await server(200);
    // A long interval proves the first probe does not wait for it.
    const c = checker(s.url, { intervalMs: 60_000 });
    expect(c.status).to.equal('starting');
    const { results } = collect(c);
    c.start();
    // Generous: the first request also loads undici's HTTP parser.
    const change = await waitFor(c, 'statusChange', () => true, 5000);
    expect(change).to.include({ previous: 'starting', status: 'healthy', reason: 'first check succeeded' });
    expect(change.health).to.include({ status: 'healthy', consecutiveSuccesses: 1, consecutiveFailures: 0 });
    expect(results).to.have.length(1);
    expect(results[0]?.result).to.include({ ok: true, httpStatus: 200 });
    expect(results[0]?.result.latencyMs).to.be.a('number').and.at.least(0);
    expect(results[0]?.transition).to.include({ changed: true, status: 'healthy', ignored: false });
    expect(c.snapshot().lastCheck).to.be.a('number');
    expect(() => c.start()).to.throw(/cannot start/);
  });

  it('detects a 503 within interval × retries + timeout, with exactly `retries` failures', async () => {
    const s = await server(200);
    const intervalMs = 100;
    const timeoutMs = 100;
    const retries = 3;
    const c = checker(s.url, { intervalMs, timeoutMs, retries });
    const { results, changes } = collect(c);
    c.start();
    await waitFor(c, 'statusChange', (e) => e.status === 'healthy');

    await s.setMode(503);
    const brokeAt = performance.now();
    const change = await waitFor(c, 'statusChange', (e) => e.status === 'unhealthy');
    const detectedMs = performance.now() - brokeAt;

    // Generous margin for loaded CI machines; the bound itself is 400 ms here.
    expect(detectedMs).to.be.below(intervalMs * retries + timeoutMs + 600);
    expect(change.previous).to.equal('healthy');
    expect(change.reason).to.equal('3 consecutive HTTP 503 answers (degraded)');
    expect(change.health.consecutiveFailures).to.equal(retries);
    const failures = results.filter((r) => !r.result.ok);
    expect(failures).to.have.length(retries);
    expect(failures[0]?.result).to.include({ httpStatus: 503, error: 'HTTP 503 (degraded)' });
    expect(failures.slice(0, -1).every((r) => r.transition.status === 'healthy')).to.equal(true);
    expect(changes.map((e) => e.status)).to.deep.equal(['healthy', 'unhealthy']);
  });

  it('recovers from unhealthy on the first 2xx', async () => {
    const s = await server(503);
    const c = checker(s.url, { retries: 2 });
    c.start();
    await waitFor(c, 'statusChange', (e) => e.status === 'unhealthy');
    await s.setMode(200);
    const change = await waitFor(c, 'statusChange', (e) => e.status === 'healthy');
    expect(change.previous).to.equal('unhealthy');
    expect(change.reason).to.match(/^check succeeded after \d+ failures$/);
    expect(c.snapshot()).to.include({ status: 'healthy', consecutiveFailures: 0, consecutiveSuccesses: 1 });
    const history = c.history();
    expect(history.at(-1)?.change).to.include({ from: 'unhealthy', to: 'healthy' });
  });

  it('fails a probe that hangs with "timeout after <timeout>ms", never overlapping probes', async () => {
    const s = await server('hang');
    // timeout > interval: the next probe must wait for the hung one to be aborted.
    const c = checker(s.url, { intervalMs: 50, timeoutMs: 150, retries: 2 });
    const { results } = collect(c);
    c.start();
    const change = await waitFor(c, 'statusChange', (e) => e.status === 'unhealthy');
    expect(change.previous).to.equal('starting');
    expect(change.reason).to.equal('2 consecutive timeouts after 150 ms');
    expect(results).to.have.length(2);
    for (const { result } of results) {
      expect(result).to.include({ ok: false, error: 'timeout after 150ms' });
      expect(result).to.not.have.property('httpStatus');
      expect(result.latencyMs).to.be.at.least(140).and.below(1500);
    }
    expect(s.maxInFlight).to.equal(1);
  });

  it('reports a refused connection as "ECONNREFUSED host:port" and recovers when the instance returns', async () => {
    const s = await server('closed');
    const c = checker(s.url, { retries: 2 });
    const { results } = collect(c);
    c.start();
    const change = await waitFor(c, 'statusChange', (e) => e.status === 'unhealthy');
    expect(change.reason).to.equal(`2 consecutive refused connections (127.0.0.1:${s.port})`);
    expect(results[0]?.result).to.include({ ok: false, error: `ECONNREFUSED 127.0.0.1:${s.port}` });

    await s.setMode(200);
    const recovered = await waitFor(c, 'statusChange', (e) => e.status === 'healthy');
    expect(recovered.previous).to.equal('unhealthy');
  });

  it('detects an instance that goes away while healthy (keep-alive socket closed under it)', async () => {
    const s = await server(200);
    const c = checker(s.url, { intervalMs: 50, timeoutMs: 200, retries: 2 });
    c.start();
    await waitFor(c, 'statusChange', (e) => e.status === 'healthy');
    await s.setMode('closed');
    const change = await waitFor(c, 'statusChange', (e) => e.status === 'unhealthy');
    expect(change.health.consecutiveFailures).to.equal(2);
  });

  it('schedules probes from the previous probe start, not its end', async () => {
    const s = await server('slow');
    s.slowMs = 150;
    const intervalMs = 200;
    const c = checker(s.url, { intervalMs, timeoutMs: 1000 });
    const { results } = collect(c);
    c.start();
    while (results.length < 6) await sleep(20);
    // Probe start times as the checker recorded them (a server-side view would add request jitter).
    const starts = results.map((r) => r.result.at);
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] ?? 0));
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    expect(results.every((r) => r.result.ok && r.result.latencyMs >= s.slowMs - 5)).to.equal(true);
    // From-start cadence gives ~200 ms; from-end would give ~350 ms.
    expect(mean).to.be.below(intervalMs + s.slowMs / 2);
    // Never faster than the interval (2 ms allowance: Date.now truncation vs the monotonic scheduling clock).
    for (const gap of gaps) expect(gap).to.be.at.least(intervalMs - 2);
  });

  it('reuses one keep-alive connection and reads bodies larger than its limit without failing', async () => {
    const s = await server(200);
    const c = checker(s.url, { intervalMs: 30 });
    const { results } = collect(c);
    c.start();
    while (results.length < 6) await sleep(10);
    expect(s.connections).to.equal(1);
    expect(results.every((r) => r.result.ok)).to.equal(true);

    await s.setMode('big');
    const before = results.length;
    while (results.length < before + 3) await sleep(10);
    expect(results.slice(before).every((r) => r.result.ok && r.result.httpStatus === 200)).to.equal(true);
    expect(c.status).to.equal('healthy');
  });

  it('retries once when the server closed the kept-alive connection as the probe was sent', async () => {
    // Every request that arrives on a reused connection is met by the server closing it, as when an
    // upstream's keep-alive timeout fires just as the next probe goes out.
    let connections = 0;
    const raw = createServer((req, res) => {
      const socket = req.socket as Socket & { served?: boolean };
      if (socket.served) {
        socket.destroy();
        return;
      }
      socket.served = true;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    raw.on('connection', () => (connections += 1));
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    try {
      const c = checker(`http://127.0.0.1:${(raw.address() as AddressInfo).port}/health`, { intervalMs: 30, retries: 1 });
      const { results } = collect(c);
      c.start();
      while (results.length < 5) await sleep(10);
      await c.stop();
      expect(results.map((r) => r.result.ok)).to.deep.equal([true, true, true, true, true]);
      // Each probe after the first met a closed reused socket, then succeeded on a new connection.
      expect(connections).to.equal(5);
    } finally {
      raw.closeAllConnections();
      await new Promise((resolve) => raw.close(resolve));
    }
  });

  it('keeps `starting` during the grace period, then flips on the next failure', async () => {
    const s = await server(503);
    let clock = 1_000_000;
    const c = checker(s.url, { retries: 2, gracePeriodMs: 60_000, now: () => clock });
    const { results, changes } = collect(c);
    c.start();
    while (results.length < 4) await sleep(10);
    expect(changes).to.deep.equal([]);
    for (const r of results) {
      expect(r.transition.status).to.equal('starting');
      expect(r.transition.reason).to.match(/^within grace period \(60s left\): \d+ consecutive HTTP 503 answers? \(degraded\)$/);
    }
    clock += 60_000;
    const change = await waitFor(c, 'statusChange', () => true);
    expect(change).to.include({ previous: 'starting', status: 'unhealthy', at: clock });
    expect(change.health.consecutiveFailures).to.be.greaterThan(4);
  });

  it('stop() while a probe hangs returns promptly, discards the probe and emits `stopped`', async () => {
    const s = await server('hang');
    const c = checker(s.url, { intervalMs: 50, timeoutMs: 30_000 });
    const { results, changes } = collect(c);
    c.start();
    while (s.inFlight === 0) await sleep(5);
    const t0 = performance.now();
    const stopping = c.stop('shutdown');
    // Reported at once, before the pool is closed.
    expect(c.status).to.equal('stopped');
    await stopping;
    expect(performance.now() - t0).to.be.below(1000);
    expect(results).to.deep.equal([]);
    expect(changes.map((e) => [e.previous, e.status, e.reason])).to.deep.equal([['starting', 'stopped', 'shutdown']]);
    expect(c.status).to.equal('stopped');
    // The aborted request was torn down and nothing else is sent.
    await sleep(150);
    expect(s.inFlight).to.equal(0);
    expect(s.arrivals).to.have.length(1);
    // Idempotent.
    await c.stop();
    expect(changes).to.have.length(1);
  });

  it('stop() between probes cancels the next one', async () => {
    const s = await server(200);
    const c = checker(s.url, { intervalMs: 100 });
    c.start();
    await waitFor(c, 'statusChange', (e) => e.status === 'healthy');
    await c.stop();
    const count = s.arrivals.length;
    await sleep(300);
    expect(s.arrivals.length).to.equal(count);
    expect(c.snapshot().status).to.equal('stopped');
  });

  it('drain() stops probing, ignores the probe in flight and reports `draining`', async () => {
    const s = await server('hang');
    const c = checker(s.url, { intervalMs: 50, timeoutMs: 150 });
    const { changes } = collect(c);
    c.start();
    while (s.inFlight === 0) await sleep(5);
    const t = c.drain('SIGTERM');
    expect(t).to.include({ changed: true, previous: 'starting', status: 'draining', reason: 'SIGTERM' });
    const late = await waitFor(c, 'result', () => true, 2000);
    expect(late.transition).to.include({ ignored: true, status: 'draining' });
    expect(late.health.consecutiveFailures).to.equal(0);
    await sleep(200);
    expect(s.arrivals).to.have.length(1);
    expect(changes.map((e) => e.status)).to.deep.equal(['draining']);
    expect(c.drain().changed).to.equal(false);
    await c.stop();
    expect(changes.map((e) => e.status)).to.deep.equal(['draining', 'stopped']);
  });

  it('keeps probing when a listener throws', async () => {
    const s = await server(200);
    const c = checker(s.url, { intervalMs: 30 });
    const uncaught: unknown[] = [];
    const mochaHandlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      let calls = 0;
      c.on('result', () => {
        calls += 1;
        if (calls === 1) throw new Error('listener bug');
      });
      c.start();
      while (calls < 3) await sleep(10);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const h of mochaHandlers) process.on('uncaughtException', h);
    }
    expect(uncaught).to.have.length(1);
    expect((uncaught[0] as Error).message).to.equal('listener bug');
  });

  it('does not keep the process alive after stop()', async function () {
    this.timeout(20_000);
    const s = await server('hang');
    const modulePath = fileURLToPath(new URL('../../src/agent/health-checker.ts', import.meta.url));
    const script = `
      import { HealthChecker } from ${JSON.stringify(modulePath)};
      const c = new HealthChecker({ url: ${JSON.stringify(s.url)}, intervalMs: 50, timeoutMs: 60000, retries: 3, gracePeriodMs: 0 });
      c.start();
      setTimeout(() => { void c.stop().then(() => console.log('stopped')); }, 200);
    `;
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(out.trim(), out).to.equal('stopped');
    expect(code).to.equal(0);
    // tsx start-up dominates; a leaked timer or socket would keep it alive for the 60 s timeout.
    expect(performance.now() - started).to.be.below(15_000);
  });
});

describe('describeNetworkError', () => {
  it('formats errno errors, wrapped causes and plain errors', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3001'), {
      code: 'ECONNREFUSED',
      address: '127.0.0.1',
      port: 3001,
    });
    expect(describeNetworkError(refused)).to.equal('ECONNREFUSED 127.0.0.1:3001');
    expect(describeNetworkError(new Error('fetch failed', { cause: refused }))).to.equal('ECONNREFUSED 127.0.0.1:3001');
    expect(describeNetworkError(new AggregateError([refused], 'all failed'))).to.equal('ECONNREFUSED 127.0.0.1:3001');
    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND nope.invalid'), { code: 'ENOTFOUND', hostname: 'nope.invalid' });
    expect(describeNetworkError(notFound)).to.equal('ENOTFOUND nope.invalid');
    const socket = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
    expect(describeNetworkError(socket)).to.equal('UND_ERR_SOCKET: other side closed');
    expect(describeNetworkError(new Error('x'.repeat(500)))).to.have.length(200);
    expect(describeNetworkError('boom')).to.equal('boom');
  });
});
