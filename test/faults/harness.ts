/**
 * A cluster for fault scenarios: its own etcd (killable, restartable on the same data dir), real
 * `proxy-stone-sd agent` processes (the built CLI, through `spawnAgent`) each beside a sample upstream
 * and serving its API on a free port, and an {@link InvariantChecker} sampling all of them.
 *
 * Agents run with the timings of `spawnAgent`: lease TTL 3 s, renew 1 s, health interval 1 s,
 * timeout 1 s, retries 2, grace 5 s.
 */
import { get as httpGet, type ClientRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { RedisRegistry } from '../../src/registry/redis.js';
import type { Registry } from '../../src/registry/types.js';
import { keyLayout, type KeyLayout } from '../../src/cluster/keys.js';
import { ClusterState } from '../../src/cluster/state.js';
import { startEtcd, uniqueNamespace } from '../helpers/etcd.js';
import { EtcdCluster } from '../helpers/etcd-cluster.js';
import { startRedis } from '../helpers/redis.js';
import { assertBuilt, spawnAgent, waitFor, type AgentProcess } from '../helpers/cluster.js';
import { InvariantChecker } from './invariants.js';

/** The lease TTL and renew interval agents run with (spawnAgent's). */

/**
 * Registers, in the calling describe, the afterEach that prints a failed test's cluster (logs,
 * checker samples) and stops it. Each test hands its cluster over: `const c = track(await FaultCluster.start())`.
 */
export function stopClusterAfterEach(): (cluster: FaultCluster) => FaultCluster {
  let current: FaultCluster | undefined;
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && current) console.error(current.dump());
    await current?.stop();
    current = undefined;
  });
  return (cluster) => (current = cluster);
}

export const TTL_MS = 3000;
export const RENEW_MS = 1000;

/** One agent process of the cluster. */
export interface FaultAgent {
  id: string;
  /** `ps-1#1`, `ps-1#2` after a restart, … */
  key: string;
  proc: AgentProcess;
  apiUrl: string;
  upstream: SampleUpstream;
}

/** A parsed JSON log line of an agent. */
export interface LogLine {
  event?: string;
  time?: number;
  msg?: string;
  [field: string]: unknown;
}

/** The registry server of a fault cluster: etcd or redis-server, killable and restartable in place. */
export interface FaultServer {
  readonly endpoint: string;
  /** etcd's Prometheus metrics (benchmarks); Redis has none. */
  readonly metricsUrl?: string;
  kill(signal?: NodeJS.Signals): void;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface FaultClusterOptions {
  /** Which registry the agents share (default etcd). */
  backend?: 'etcd' | 'redis';
  agents?: number;
  /** Sample every agent and etcd with the invariant checker (default true; benchmarks turn it off). */
  checker?: boolean;
  /** Extra flags for every agent. */
  flags?: string[];
  /** Options of each agent's sample upstream. */
  upstream?: { flapMs?: number };
  /**
   * etcd only: run a cluster of this many members (test/helpers/etcd-cluster.ts) instead of one, and
   * give agents, the reader and the checker every member's endpoint. The cluster is in `etcd`.
   */
  etcdMembers?: number;
}

/** The comma-separated endpoints of a fault server, as the agents' SERVICE_DISCOVERY_ENDPOINTS takes them. */
function endpointList(endpoint: string): string[] {
  return endpoint.split(',');
}

export class FaultCluster {
  readonly agents = new Map<string, FaultAgent>();
  readonly retired: FaultAgent[] = [];
  readonly checker: InvariantChecker;
  readonly reader: Registry;
  readonly layout: KeyLayout;
  private readonly incarnations = new Map<string, number>();

  private constructor(
    /** The registry server (etcd or redis-server); for a multi-member etcd, the whole cluster. */
    readonly server: FaultServer,
    readonly namespace: string,
    private readonly options: FaultClusterOptions,
    /** The members, with `etcdMembers`. */
    readonly etcd?: EtcdCluster,
  ) {
    this.checker = new InvariantChecker({ endpoint: server.endpoint, namespace });
    this.reader =
      options.backend === 'redis'
        ? new RedisRegistry({ endpoint: server.endpoint, callTimeoutMs: 1000 })
        : new EtcdRegistry({ endpoints: endpointList(server.endpoint), callTimeoutMs: 1000 });
    this.layout = keyLayout(namespace);
  }

  /** Starts the registry, `agents` agents (ps-1, ps-2, …) and the checker; resolves when all serve their API. */
  static async start(options: FaultClusterOptions = {}): Promise<FaultCluster> {
    assertBuilt();
    let etcd: EtcdCluster | undefined;
    let server: FaultServer;
    if (options.backend === 'redis') server = await startRedis();
    else if ((options.etcdMembers ?? 1) > 1) {
      const members = (etcd = await EtcdCluster.start({ size: options.etcdMembers }));
      server = {
        endpoint: members.endpoints.join(','),
        metricsUrl: `${members.endpoints[0]}/metrics`,
        kill: () => {
          throw new Error('a fault test on an etcd cluster kills members through cluster.etcd');
        },
        restart: () => members.waitHealthy(),
        stop: () => members.stop(),
      };
    } else server = await startEtcd({ own: true });
    const cluster = new FaultCluster(server, uniqueNamespace('faults'), options, etcd);
    if (options.checker !== false) cluster.checker.start();
    try {
      await Promise.all(Array.from({ length: options.agents ?? 3 }, (_, i) => cluster.spawn(`ps-${i + 1}`)));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Starts (or restarts) agent `id`, beside its upstream (created on first start). */
  async spawn(id: string): Promise<FaultAgent> {
    const upstream = this.agents.get(id)?.upstream ?? this.retired.find((a) => a.id === id)?.upstream ?? (await startSampleUpstream(this.options.upstream));
    const n = (this.incarnations.get(id) ?? 0) + 1;
    this.incarnations.set(id, n);
    const proc = spawnAgent({
      endpoint: this.server.endpoint,
      namespace: this.namespace,
      id,
      servicePort: upstream.port,
      flags: ['--api', '--api-port', '0', ...(this.options.flags ?? [])],
    });
    const apiUrl = await waitFor(
      `${id} serving its API`,
      () => {
        if (proc.proc.exitCode !== null || proc.proc.signalCode !== null) throw new Error(`${id} exited:\n${proc.output().slice(-2000)}`);
        // The API listens before the agent registers (so the first record carries its URL): wait for both.
        const lines = logLines(proc);
        if (!lines.some((l) => l.event === 'agent.started')) return undefined;
        return lines.find((l) => l.event === 'api.listening')?.url as string | undefined;
      },
      15_000,
      20,
    );
    const agent: FaultAgent = { id, key: `${id}#${n}`, proc, apiUrl, upstream };
    this.agents.set(id, agent);
    this.checker.watch({ key: agent.key, serviceId: id, apiUrl });
    return agent;
  }

  get(id: string): FaultAgent {
    const agent = this.agents.get(id);
    if (!agent) throw new Error(`no agent ${id}`);
    return agent;
  }

  /** Sends a signal; SIGKILL and SIGTERM retire the process (a later spawn() starts a new one). */
  async signal(id: string, sig: NodeJS.Signals): Promise<void> {
    const agent = this.get(id);
    agent.proc.signal(sig);
    if (sig === 'SIGKILL' || sig === 'SIGTERM') {
      // A graceful stop is bounded by the agent itself (8 s, src/agent/run.ts): a longer wait is a
      // failure to report with the agent's words, not a test that hangs until mocha's timeout.
      await waitFor(`${agent.key} exiting on ${sig}`, () => agent.proc.proc.exitCode !== null || agent.proc.proc.signalCode !== null, 15_000, 20);
      await agent.proc.exited;
      this.checker.forget(agent.key);
      this.agents.delete(id);
      this.retired.push(agent);
    }
  }

  /** `GET` on an agent's API; the parsed body and status, or undefined when it does not answer. */
  async api<T = Record<string, unknown>>(id: string, path: string, timeoutMs = 1000): Promise<{ status: number; body: T } | undefined> {
    try {
      const res = await fetch(`${this.get(id).apiUrl}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.status, body: (await res.json()) as T };
    } catch {
      return undefined;
    }
  }

  /** The namespace as a watcher would read it now. */
  async read(): Promise<ClusterState> {
    const { kvs } = await this.reader.list(this.layout.root);
    return ClusterState.fromList(this.layout, kvs);
  }

  /**
   * Waits until exactly one agent answers `isLeader` and etcd's election names it, with every agent
   * in `expectedIds` registered; returns the leader's id.
   */
  async settled(expectedIds: string[] = [...this.agents.keys()], timeoutMs = 15_000): Promise<string> {
    return waitFor(
      `one leader among ${expectedIds.join(', ')}`,
      async () => {
        const state = await this.read();
        const ids = state.services().map((s) => s.id);
        if (!expectedIds.every((id) => ids.includes(id)) || state.electionCandidates().length !== expectedIds.length) return undefined;
        const answers = await Promise.all([...this.agents.keys()].map(async (id) => [id, await this.api<{ isLeader: boolean }>(id, '/service-discovery/status', 500)] as const));
        const leaders = answers.filter(([, a]) => a?.body.isLeader === true).map(([id]) => id);
        return leaders.length === 1 && leaders[0] === state.leaderId() ? leaders[0] : undefined;
      },
      timeoutMs,
      50,
    );
  }

  /** How many leases the registry holds in total. */
  leaseCount(): Promise<number> {
    return this.reader.leaseCount();
  }

  /** Every log line of an agent process (all incarnations when `all`). */
  logs(id: string, all = false): LogLine[] {
    const procs = [...(all ? this.retired.filter((a) => a.id === id) : []), ...(this.agents.has(id) ? [this.get(id)] : [])];
    return procs.flatMap((a) => logLines(a.proc));
  }

  /** Output of every process, for a failed test's report. */
  dump(): string {
    const agents = [...this.retired, ...this.agents.values()].map((a) => `--- ${a.key} ---\n${a.proc.output().slice(-4000)}`).join('\n');
    return this.etcd ? `${agents}\n${this.etcd.dump()}` : agents;
  }

  /** Fails with the list of violations, if any. */
  assertInvariants(): void {
    const violations = this.checker.violations();
    if (violations.length > 0) throw new Error(`invariants violated (${this.checker.summary()}):\n${violations.slice(0, 10).join('\n')}`);
  }

  async stop(): Promise<void> {
    await this.checker.stop();
    for (const a of this.agents.values()) a.proc.signal('SIGCONT');
    for (const a of this.agents.values()) a.proc.signal('SIGKILL');
    await Promise.all([...this.agents.values()].map((a) => a.proc.exited));
    const upstreams = new Set([...this.agents.values(), ...this.retired].map((a) => a.upstream));
    await Promise.all([...upstreams].map((u) => u.close()));
    await this.reader.close();
    await this.server.stop();
  }
}

/** Parses an agent's JSON log lines (non-JSON lines are skipped). */
export function logLines(proc: AgentProcess): LogLine[] {
  const out: LogLine[] = [];
  for (const line of proc.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // a line cut by the end of the buffer, or not ours
    }
  }
  return out;
}

/** One SSE event as received. */
export interface ReceivedEvent {
  type: string;
  serviceId?: string;
  /** Epoch ms with sub-millisecond precision (`performance.timeOrigin + performance.now()`). */
  receivedAt: number;
  data: Record<string, unknown>;
}

/** A long-lived SSE subscription to an agent's `GET /service-discovery/events`, parsed as it arrives. */
export class SseClient {
  readonly events: ReceivedEvent[] = [];
  /** Called for each event as it is parsed (benchmarks time receipt here). */
  onEvent: ((event: ReceivedEvent) => void) | undefined;
  private request: ClientRequest | undefined;

  private constructor(readonly url: string) {}

  /** Connects and resolves once the stream's first frame arrived (it is subscribed). */
  static connect(apiUrl: string): Promise<SseClient> {
    const client = new SseClient(`${apiUrl}/service-discovery/events`);
    return new Promise((resolve, reject) => {
      const req = httpGet(client.url, { headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`SSE ${client.url}: HTTP ${res.statusCode}`));
          res.destroy();
          return;
        }
        res.socket.setNoDelay(true);
        res.setEncoding('utf8');
        let buffer = '';
        let first = true;
        res.on('data', (chunk: string) => {
          const receivedAt = performance.timeOrigin + performance.now();
          if (first) {
            first = false;
            resolve(client);
          }
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = frame
              .split('\n')
              .filter((l) => l.startsWith('data: '))
              .map((l) => l.slice(6))
              .join('\n');
            if (!data) continue;
            const parsed = JSON.parse(data) as Record<string, unknown>;
            const event: ReceivedEvent = {
              type: String(parsed.type),
              serviceId: typeof parsed.serviceId === 'string' ? parsed.serviceId : undefined,
              receivedAt,
              data: parsed,
            };
            client.events.push(event);
            client.onEvent?.(event);
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', reject);
      client.request = req;
    });
  }

  count(type: string, serviceId?: (id: string) => boolean): number {
    return this.events.filter((e) => e.type === type && (!serviceId || (e.serviceId !== undefined && serviceId(e.serviceId)))).length;
  }

  async close(): Promise<void> {
    this.request?.destroy();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
