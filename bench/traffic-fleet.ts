/**
 * What the traffic benchmark (bench/traffic.ts) runs behind and through a load balancer:
 *
 * - {@link FleetInstance}: one instance, `bench/lb-instance.mjs` (an HTTP server that holds each
 *   request 5-20 ms and says which instance answered) beside its `proxy-stone-sd agent` process (the
 *   built CLI), restartable on the same id and port, and killable (kill -9 of both);
 * - {@link SteadyLoad}: requests at a fixed rate over keep-alive connections, each recorded with
 *   when it was sent and finished, its status or error, and the instance that answered.
 *
 * Times are epoch milliseconds with sub-millisecond precision (`now()` of bench/lib.ts), taken the
 * same way in the instance processes, so arrivals there and sends here share one clock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnAgent, type AgentProcess } from '../test/helpers/cluster.js';
import { now } from './lib.js';

const INSTANCE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'lb-instance.mjs');
/** Longest wait for an instance's HTTP server to listen, or for a stopped process to exit. */
const PROCESS_TIMEOUT_MS = 10_000;

/** Where the agents register. */
export interface FleetRegistry {
  endpoint: string;
  namespace: string;
}

/** One instance: the HTTP server that takes the traffic, and its agent. */
export class FleetInstance {
  /** When each request other than a health check reached the instance, over every incarnation. */
  readonly arrivals: number[] = [];
  /** The agents' output of earlier incarnations, for a failure's report. */
  private readonly pastOutput: string[] = [];
  private server: ChildProcess | undefined;
  private serverExited: Promise<void> = Promise.resolve();
  private agent: AgentProcess | undefined;

  constructor(
    readonly id: string,
    readonly port: number,
    private readonly registry: FleetRegistry,
  ) {}

  /** Starts the HTTP server, then its agent; resolves once the server listens (the agent registers by itself). */
  async start(): Promise<void> {
    if (this.server || this.agent) throw new Error(`${this.id} is already running`);
    const server = spawn(process.execPath, [INSTANCE_SCRIPT], {
      env: { ...process.env, PORT: String(this.port), INSTANCE_ID: this.id },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.server = server;
    this.serverExited = new Promise((resolve) => server.once('exit', () => resolve()));
    let errors = '';
    server.stderr!.on('data', (d: Buffer) => (errors = (errors + d.toString()).slice(-2000)));
    const listening = new Promise<void>((resolve, reject) => {
      let buffer = '';
      server.stdout!.setEncoding('utf8');
      server.stdout!.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 1);
          if (line.startsWith('A ')) this.arrivals.push(Number(line.slice(2)));
          else if (line.startsWith('listening')) resolve();
        }
      });
      server.once('exit', (code, signal) => reject(new Error(`${this.id}'s server exited (${signal ?? code}) before listening: ${errors}`)));
      setTimeout(() => reject(new Error(`${this.id}'s server not listening on ${this.port} after ${PROCESS_TIMEOUT_MS} ms: ${errors}`)), PROCESS_TIMEOUT_MS);
    });
    await listening;
    this.agent = spawnAgent({ endpoint: this.registry.endpoint, namespace: this.registry.namespace, id: this.id, servicePort: this.port });
  }

  /** A graceful stop, as an orchestrator stops an instance: the agent (SIGTERM: it deregisters), then the server after its in-flight requests. */
  async stop(): Promise<void> {
    await this.signalAgent('SIGTERM');
    await this.signalServer('SIGTERM');
  }

  /** A crash: kill -9 of the server and its agent at once. */
  async crash(): Promise<void> {
    await Promise.all([this.signalServer('SIGKILL'), this.signalAgent('SIGKILL')]);
  }

  /** Arrivals in [from, to). */
  arrivalsBetween(from: number, to = Infinity): number[] {
    return this.arrivals.filter((t) => t >= from && t < to);
  }

  /** The agent's output (every incarnation), for a failure's report. */
  agentOutput(): string {
    return [...this.pastOutput, this.agent?.output() ?? ''].join('\n--- restarted ---\n');
  }

  private async signalAgent(signal: NodeJS.Signals): Promise<void> {
    const agent = this.agent;
    if (!agent) return;
    agent.signal(signal);
    await withTimeout(agent.exited, `${this.id}'s agent to exit`);
    this.pastOutput.push(agent.output().slice(-4000));
    this.agent = undefined;
  }

  private async signalServer(signal: NodeJS.Signals): Promise<void> {
    const server = this.server;
    if (!server) return;
    if (server.exitCode === null && server.signalCode === null) server.kill(signal);
    await withTimeout(this.serverExited, `${this.id}'s server to exit`);
    this.server = undefined;
  }
}

/** One request of the load. */
export interface RequestSample {
  /** When it was handed to the HTTP client. */
  sent: number;
  /** When its answer was read completely, or it failed. */
  done: number;
  /** HTTP status; 0 when there was none (a transport error). */
  status: number;
  /** The `x-instance` header of the answer. */
  instance?: string;
  /** The transport error, `ECONNRESET`, `timeout`, … */
  error?: string;
}

/** A failed request: any answer but 2xx, or a transport error. */
export function failed(s: RequestSample): boolean {
  return s.error !== undefined || s.status < 200 || s.status > 299;
}

/**
 * GET requests to `url` at a fixed rate (open loop: a slow answer does not delay the next send),
 * over keep-alive connections, each bounded by a timeout.
 */
export class SteadyLoad {
  readonly samples: RequestSample[] = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly pending = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private sentCount = 0;

  constructor(
    readonly url: string,
    readonly ratePerSec: number,
    private readonly timeoutMs = 5000,
  ) {}

  start(): void {
    this.startedAt = now();
    this.sentCount = 0;
    // A tick every few ms sends whatever the rate says is due by now: steady even when a tick is late.
    this.timer = setInterval(() => {
      const due = Math.floor(((now() - this.startedAt) * this.ratePerSec) / 1000);
      while (this.sentCount < due) {
        this.sentCount++;
        const p = this.send().finally(() => this.pending.delete(p));
        this.pending.add(p);
      }
    }, 4);
  }

  /** Stops sending, waits for the requests in flight, closes the connections. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.pending]);
    this.agent.destroy();
  }

  /** Waits until every request sent before `to` has its outcome (each is bounded by the timeout). */
  async settle(to: number): Promise<void> {
    const deadline = Date.now() + this.timeoutMs + 1000;
    while (this.samples.some((s) => s.sent < to && s.done === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Requests sent in [from, to). */
  between(from: number, to = Infinity): RequestSample[] {
    return this.samples.filter((s) => s.sent >= from && s.sent < to);
  }

  private send(): Promise<void> {
    const sample: RequestSample = { sent: now(), done: 0, status: 0 };
    this.samples.push(sample);
    return new Promise((resolve) => {
      const finish = (error?: string) => {
        if (sample.done !== 0) return;
        sample.done = now();
        if (error !== undefined) sample.error = error;
        resolve();
      };
      const req = http.get(this.url, { agent: this.agent }, (res) => {
        sample.status = res.statusCode ?? 0;
        const instance = res.headers['x-instance'];
        if (typeof instance === 'string') sample.instance = instance;
        res.resume();
        res.on('end', () => finish());
        res.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    });
  }
}

async function withTimeout<T>(p: Promise<T>, what: string, ms = PROCESS_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
