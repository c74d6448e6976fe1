/**
 * A real N-member etcd cluster on loopback, as production runs it: each member its own `etcd` process
 * with its own data dir and client and peer ports, etcd's default raft timers (heartbeat 100 ms,
 * election 1 s). Fault tests and benchmarks kill, freeze (SIGSTOP, as a hung disk or a partition looks
 * to a client) and thaw members, restart them on their data, find the raft leader, and lose and
 * restore quorum.
 *
 * Needs the `etcd` binary (Debian's etcd-server, ETCD_BIN or PATH); Docker is not tried here, since a
 * cluster of containers needs a network of its own.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findEtcdBinary, freePorts, untilStopped, waitForHealth } from './etcd.js';
import { ServerProcess } from './server-process.js';

const HEALTH_TIMEOUT_MS = 20_000;

/** One member of an {@link EtcdCluster}. */
export class EtcdMember extends ServerProcess {
  readonly endpoint: string;
  readonly peerUrl: string;
  /** Set while the member is SIGSTOPped. */
  frozen = false;

  constructor(
    binary: string,
    /** `m1`, `m2`, …: etcd's member name. */
    readonly memberName: string,
    readonly dataDir: string,
    clientPort: number,
    peerPort: number,
    private readonly initialCluster: string,
    private readonly flags: string[],
  ) {
    super(`etcd ${memberName}`, binary, dataDir, true);
    this.endpoint = `http://127.0.0.1:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
  }

  /** The last lines etcd wrote (warnings and errors only, at --log-level=warn). */
  outputTail(chars = 2000): string {
    return this.output.slice(-chars);
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Resolves when this member reports healthy, which needs a raft leader, so a quorum of members. */
  async waitHealthy(timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> {
    await waitForHealth(this.endpoint, timeoutMs, () => (this.exitInfo ? `${this.exitInfo}\n${this.output.slice(-2000)}` : undefined));
  }

  /** SIGSTOP, resolving once the process is actually stopped. */
  async freeze(): Promise<void> {
    this.kill('SIGSTOP');
    this.frozen = true;
    await untilStopped(this.pid);
  }

  thaw(): void {
    this.kill('SIGCONT');
    this.frozen = false;
  }

  /** SIGKILL (a crash), resolving once the process is gone. */
  async crash(): Promise<void> {
    this.kill('SIGKILL');
    this.frozen = false;
    await this.waitForExit();
  }

  /** Starts a stopped or crashed member again on its data dir, without waiting for it to be healthy. */
  async relaunch(): Promise<void> {
    if (this.running) throw new Error(`${this.memberName} is still running`);
    await this.launch();
  }

  protected async launch(): Promise<void> {
    this.frozen = false;
    this.spawnServer([
      `--name=${this.memberName}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.endpoint}`,
      `--advertise-client-urls=${this.endpoint}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${this.initialCluster}`,
      // Ignored once the data dir holds a member, so a restart rejoins the same cluster.
      '--initial-cluster-state=new',
      '--initial-cluster-token=proxy-stone-sd-test',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
      ...this.flags,
    ]);
  }
}

/** Options of {@link EtcdCluster.start}. */
export interface EtcdClusterOptions {
  /** Members (default 3). */
  size?: number;
  /** Extra flags for every member. */
  flags?: string[];
}

/** What `/v3/maintenance/status` says of one member. */
interface MemberStatus {
  memberId: string;
  leaderId: string;
  raftTerm: number;
}

export class EtcdCluster {
  private constructor(readonly members: EtcdMember[]) {}

  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const size = options.size ?? 3;
    const binary = findEtcdBinary();
    if (!binary) {
      throw new Error('a multi-member etcd cluster needs the etcd binary: apt-get install etcd-server, or set ETCD_BIN');
    }
    const ports = await freePorts(size * 2);
    const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
    const initialCluster = names.map((name, i) => `${name}=http://127.0.0.1:${ports[size + i]}`).join(',');
    const members: EtcdMember[] = [];
    for (const [i, name] of names.entries()) {
      const dir = await mkdtemp(join(tmpdir(), `proxy-stone-sd-etcd-${name}-`));
      members.push(new EtcdMember(binary, name, dir, ports[i]!, ports[size + i]!, initialCluster, options.flags ?? []));
    }
    const cluster = new EtcdCluster(members);
    try {
      // Every member must be up before any reports healthy: health needs a leader, a leader a quorum.
      await Promise.all(members.map((m) => m.start()));
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Every member's client URL, in member order. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  member(index: number): EtcdMember {
    const m = this.members[index];
    if (!m) throw new Error(`no member ${index} (the cluster has ${this.members.length})`);
    return m;
  }

  /** Resolves when every running, unfrozen member reports healthy. */
  async waitHealthy(timeoutMs = HEALTH_TIMEOUT_MS): Promise<void> {
    await Promise.all(this.members.filter((m) => m.running && !m.frozen).map((m) => m.waitHealthy(timeoutMs)));
  }

  /**
   * The index of the raft leader, as a majority of the members names it and it answers itself (a
   * member that is down or frozen does not). Waits up to `timeoutMs` for one.
   */
  async leader(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const majority = Math.floor(this.members.length / 2) + 1;
    let last = 'no member answered';
    for (;;) {
      const statuses = await Promise.all(this.members.map((m) => (m.running && !m.frozen ? memberStatus(m.endpoint) : undefined)));
      const votes = new Map<string, number>();
      for (const [i, s] of statuses.entries()) {
        if (!s) continue;
        this.memberIds[i] = s.memberId;
        if (s.leaderId !== '0') votes.set(s.leaderId, (votes.get(s.leaderId) ?? 0) + 1);
      }
      for (const [leaderId, count] of votes) {
        const index = this.memberIds.indexOf(leaderId);
        // Followers name a leader that was just killed or frozen until they notice: only one that answers counts.
        if (count >= majority && index >= 0 && statuses[index] !== undefined) return index;
      }
      if (statuses.some(Boolean)) last = `members name ${[...votes.entries()].map(([id, n]) => `${id} x${n}`).join(', ') || 'no leader'}`;
      if (Date.now() > deadline) throw new Error(`no raft leader within ${timeoutMs} ms (${last})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Kills (SIGKILL) the members at `indices`: with two of three, quorum is lost. */
  async crash(...indices: number[]): Promise<void> {
    await Promise.all(indices.map((i) => this.member(i).crash()));
  }

  /**
   * Starts the crashed members at `indices` again on their data and waits until the cluster is
   * healthy (quorum back, a leader elected).
   */
  async restart(...indices: number[]): Promise<void> {
    await Promise.all(indices.map((i) => this.member(i).relaunch()));
    await this.waitHealthy();
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** What a failed test should print: each member's state and output tail. */
  dump(): string {
    return this.members
      .map((m) => `--- ${m.memberName} ${m.endpoint} ${m.running ? (m.frozen ? 'frozen' : 'running') : 'down'}\n${m.outputTail()}`)
      .join('\n');
  }

  /** Raft member ids by member index, learnt from the members' own answers (a frozen leader answers nothing). */
  private readonly memberIds: string[] = [];
}

/** One member's own view of the cluster, through etcd's JSON gateway; undefined when it does not answer in 1 s. */
async function memberStatus(endpoint: string): Promise<MemberStatus | undefined> {
  try {
    const res = await fetch(`${endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { header?: { member_id?: string; raft_term?: string }; leader?: string };
    return { memberId: String(body.header?.member_id ?? ''), leaderId: String(body.leader ?? '0'), raftTerm: Number(body.header?.raft_term ?? 0) };
  } catch {
    return undefined;
  }
}
