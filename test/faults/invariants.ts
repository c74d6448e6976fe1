/**
 * The fault suite's invariant checker. Throughout a scenario it samples, every ~25 ms,
 *
 * - every agent's own answer to "am I the leader?" (`GET /service-discovery/status`: `isLeader` and
 *   its term), each agent on its own loop so a frozen one never delays the others;
 * - the namespace in etcd, in one consistent range read: the election keys (the leader is the
 *   candidate with the lowest create revision) and `<ns>/leader`.
 *
 * and then checks, from those samples alone:
 *
 * 1. **Never two leaders.** A run of consecutive `true` answers of one agent in one term proves it led
 *    throughout `[receipt of the first, sending of the last]` (its *sure interval*). No other agent may
 *    answer `true` inside that interval, nor have a sure interval overlapping it. The window allowed
 *    is zero: a leader demotes itself on its own lease deadline and before it resigns, so a correct
 *    agent never answers `true` while another one does.
 * 2. **Nobody claims a term etcd has ended.** An etcd sample read entirely inside an agent's sure
 *    interval names that agent (its key is the lowest).
 * 3. **`<ns>/leader` never lies.** Whenever it exists it names the election's leader and its term.
 *
 * Times are `performance.timeOrigin + performance.now()` of this process, so intervals compare
 * exactly; agents' clocks are never used.
 */
import { performance } from 'node:perf_hooks';
import { EtcdRegistry } from '../../src/registry/etcd.js';
import { RedisRegistry } from '../../src/registry/redis.js';
import type { Registry } from '../../src/registry/types.js';
import { keyLayout, type KeyLayout } from '../../src/cluster/keys.js';
import { parseLeaderRecord } from '../../src/cluster/state.js';

/** The checker's clock: compare its sample times with this, not Date.now(), which can differ by more than a fast handover. */
export const checkerNow = (): number => performance.timeOrigin + performance.now();
const now = checkerNow;

/** One answer (or its absence) of one agent process. */
export interface LeaderSample {
  sentAt: number;
  receivedAt: number;
  /** Undefined when the agent did not answer within the timeout (frozen, dead, starting). */
  isLeader?: boolean;
  term?: number | null;
  status?: string;
}

/** One consistent read of the election in etcd. */
export interface ElectionSample {
  sentAt: number;
  receivedAt: number;
  revision: number;
  /** Service id of the lowest live candidate, null when there is none. */
  leaderId: string | null;
  leaderTerm: number | null;
  candidates: number;
  /** `<ns>/leader` as stored, if present and parsable. */
  leaderRecord: { leaderId: string; term: number; since: number } | null;
}

/** A process the checker samples: an agent id and which incarnation of it (restarts count apart). */
export interface SampledAgent {
  /** Unique per process, e.g. `ps-1#2`. */
  key: string;
  serviceId: string;
  apiUrl: string;
}

export interface InvariantCheckerOptions {
  /** The registry's endpoint; comma-separated members of an etcd cluster. */
  endpoint: string;
  namespace: string;
  /** Milliseconds between samples of each source (default 25). */
  everyMs?: number;
  /** Milliseconds an agent gets to answer (default 250). */
  timeoutMs?: number;
}

interface SureInterval {
  agent: string;
  serviceId: string;
  term: number | null;
  from: number;
  to: number;
  samples: number;
}

/** Samples leadership from every side and reports violations of the invariants above. */
export class InvariantChecker {
  readonly samples = new Map<string, LeaderSample[]>();
  readonly election: ElectionSample[] = [];
  private readonly agents = new Map<string, SampledAgent>();
  private readonly stopped = new Set<string>();
  private readonly loops: Promise<void>[] = [];
  private running = false;
  private readonly registry: Registry;
  private readonly layout: KeyLayout;
  private readonly everyMs: number;
  private readonly timeoutMs: number;

  constructor(options: InvariantCheckerOptions) {
    // A Redis listing is one script, so it is as consistent a read as etcd's range.
    this.registry = /^rediss?:/.test(options.endpoint)
      ? new RedisRegistry({ endpoint: options.endpoint, callTimeoutMs: 500 })
      : new EtcdRegistry({ endpoints: options.endpoint.split(','), callTimeoutMs: 500, failoverAfterMs: 500 });
    this.layout = keyLayout(options.namespace);
    this.everyMs = options.everyMs ?? 25;
    this.timeoutMs = options.timeoutMs ?? 250;
  }

  start(): void {
    this.running = true;
    this.loops.push(this.sampleEtcd());
    for (const agent of this.agents.values()) this.loops.push(this.sampleAgent(agent));
  }

  /** Adds a process to sample (at start or later, after a restart). */
  watch(agent: SampledAgent): void {
    if (this.agents.has(agent.key)) return;
    this.agents.set(agent.key, agent);
    this.samples.set(agent.key, []);
    if (this.running) this.loops.push(this.sampleAgent(agent));
  }

  /** Stops sampling one process (it was killed for good). */
  forget(key: string): void {
    this.stopped.add(key);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await this.registry.close();
  }

  /** The latest answered samples of each process, for waits in scenarios. */
  latest(key: string): LeaderSample | undefined {
    const list = this.samples.get(key) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.isLeader !== undefined) return list[i];
    return undefined;
  }

  /** Keys of processes whose latest answer was `isLeader: true`. */
  currentLeaders(): string[] {
    return [...this.agents.keys()].filter((k) => !this.stopped.has(k) && this.latest(k)?.isLeader === true);
  }

  latestElection(): ElectionSample | undefined {
    return this.election[this.election.length - 1];
  }

  /** First time (receipt) after `since` at which `key` answered `isLeader: true`. */
  firstLeaderAnswer(key: string, since: number): number | undefined {
    return this.samples.get(key)?.find((s) => s.sentAt >= since && s.isLeader === true)?.receivedAt;
  }

  /** Every violation found in the samples so far; empty when all invariants held. */
  violations(): string[] {
    const out: string[] = [];
    const runs = this.sureIntervals();
    // 1. Never two leaders.
    for (const run of runs) {
      for (const [key, list] of this.samples) {
        if (key === run.agent) continue;
        for (const s of list) {
          if (s.isLeader === true && s.sentAt >= run.from && s.receivedAt <= run.to) {
            out.push(
              `two leaders: ${key} answered isLeader at ${fmt(s.sentAt)}..${fmt(s.receivedAt)} while ${run.agent} (term ${run.term}) ` +
                `led throughout ${fmt(run.from)}..${fmt(run.to)}`,
            );
            break;
          }
        }
      }
      for (const other of runs) {
        if (other.agent <= run.agent) continue;
        if (other.from < run.to && run.from < other.to) {
          out.push(`two leaders: ${run.agent} ${fmt(run.from)}..${fmt(run.to)} overlaps ${other.agent} ${fmt(other.from)}..${fmt(other.to)}`);
        }
      }
      // 2. Nobody claims a term etcd has ended.
      for (const e of this.election) {
        if (e.sentAt >= run.from && e.receivedAt <= run.to && (e.leaderId !== run.serviceId || (run.term !== null && e.leaderTerm !== run.term))) {
          out.push(
            `${run.agent} claimed term ${run.term} throughout ${fmt(run.from)}..${fmt(run.to)} but etcd at revision ${e.revision} ` +
              `(read ${fmt(e.sentAt)}..${fmt(e.receivedAt)}) named ${e.leaderId ?? 'nobody'} (term ${e.leaderTerm})`,
          );
          break;
        }
      }
    }
    // 3. The leader record names the election's leader, or is absent.
    for (const e of this.election) {
      if (e.leaderRecord && (e.leaderRecord.leaderId !== e.leaderId || e.leaderRecord.term !== e.leaderTerm)) {
        out.push(
          `<ns>/leader at revision ${e.revision} names ${e.leaderRecord.leaderId} (term ${e.leaderRecord.term}) ` +
            `but the election's leader is ${e.leaderId ?? 'nobody'} (term ${e.leaderTerm})`,
        );
      }
    }
    return out;
  }

  /** A one-line account of what was sampled, for test output. */
  summary(): string {
    const answered = [...this.samples.values()].reduce((n, l) => n + l.filter((s) => s.isLeader !== undefined).length, 0);
    const unanswered = [...this.samples.values()].reduce((n, l) => n + l.filter((s) => s.isLeader === undefined).length, 0);
    return `${answered} agent answers (${unanswered} unanswered), ${this.election.length} etcd reads, ${this.sureIntervals().length} leadership runs`;
  }

  /** Runs of consecutive `true` answers of one process in one term, as proven intervals. */
  sureIntervals(): SureInterval[] {
    const out: SureInterval[] = [];
    for (const [key, list] of this.samples) {
      const serviceId = this.agents.get(key)!.serviceId;
      let run: LeaderSample[] = [];
      const close = () => {
        if (run.length >= 2) {
          out.push({ agent: key, serviceId, term: run[0]!.term ?? null, from: run[0]!.receivedAt, to: run[run.length - 1]!.sentAt, samples: run.length });
        }
        run = [];
      };
      for (const s of list) {
        // An unanswered sample breaks continuity: we cannot tell what happened meanwhile.
        if (s.isLeader !== true || (run.length > 0 && s.term !== run[0]!.term)) close();
        if (s.isLeader === true) run.push(s);
      }
      close();
    }
    return out;
  }

  private async sampleAgent(agent: SampledAgent): Promise<void> {
    const list = this.samples.get(agent.key)!;
    while (this.running && !this.stopped.has(agent.key)) {
      const sentAt = now();
      const sample: LeaderSample = { sentAt, receivedAt: sentAt };
      try {
        const res = await fetch(`${agent.apiUrl}/service-discovery/status`, { signal: AbortSignal.timeout(this.timeoutMs) });
        const body = (await res.json()) as { isLeader: boolean; status: string; lease?: { term?: number | null } };
        sample.receivedAt = now();
        sample.isLeader = body.isLeader;
        sample.status = body.status;
        sample.term = body.lease?.term ?? null;
      } catch {
        sample.receivedAt = now();
      }
      if (!this.stopped.has(agent.key)) list.push(sample);
      await sleep(Math.max(0, this.everyMs - (now() - sentAt)));
    }
  }

  private async sampleEtcd(): Promise<void> {
    while (this.running) {
      const sentAt = now();
      try {
        const { kvs, revision } = await this.registry.list(this.layout.root);
        const receivedAt = now();
        let best: { id: string; rev: number } | undefined;
        let candidates = 0;
        let leaderRecord: ElectionSample['leaderRecord'] = null;
        for (const kv of kvs) {
          if (kv.key.startsWith(this.layout.election) && kv.lease !== '0' && kv.value.length > 0) {
            candidates += 1;
            if (!best || kv.createRevision < best.rev) best = { id: kv.value, rev: kv.createRevision };
          } else if (kv.key === this.layout.leader) {
            // Only a well-formed record is an agent's; anything else there is foreign garbage.
            leaderRecord = parseLeaderRecord(kv.value) ?? null;
          }
        }
        this.election.push({ sentAt, receivedAt, revision, leaderId: best?.id ?? null, leaderTerm: best?.rev ?? null, candidates, leaderRecord });
      } catch {
        // etcd down: nothing to compare against until it answers again.
      }
      await sleep(Math.max(0, this.everyMs - (now() - sentAt)));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Seconds within the minute with milliseconds: enough to read a scenario's timeline. */
function fmt(t: number): string {
  return new Date(t).toISOString().slice(17, 23);
}
