/**
 * HAProxy's Runtime API over its admin socket (`stats socket PATH mode 600 level admin`), as HAProxy
 * 2.6 speaks it: one command per connection, newline-terminated; HAProxy answers and closes.
 * Every call has a timeout and a bound on the answer's size.
 *
 * @module
 */
import { connect } from 'node:net';

/** The socket cannot be reached: HAProxy stopped or restarting, a wrong path, no permission. */
export class HaproxyUnreachableError extends Error {
  override name = 'HaproxyUnreachableError';
  constructor(
    readonly socketPath: string,
    readonly reason: string,
    /** The errno code (`ENOENT`, `ECONNREFUSED`, `EACCES`) or `timeout`. */
    readonly code: string,
  ) {
    super(`HAProxy socket ${socketPath} unreachable: ${reason}`);
  }
}

/** HAProxy answered and refused: the first line of its answer says why. */
export class HaproxyCommandError extends Error {
  override name = 'HaproxyCommandError';
  constructor(
    readonly command: string,
    readonly answer: string,
  ) {
    super(`HAProxy refused "${command}": ${firstLine(answer) || 'empty answer'}`);
  }

  /** The socket is below `level admin`, so no server can be added or changed. */
  get permissionDenied(): boolean {
    return /permission denied/i.test(this.answer);
  }
}

/** One line of `show servers state BACKEND`. */
export interface HaproxyServerState {
  /** srv_id */
  id: number;
  name: string;
  /** srv_addr: the IP address (`-` when the server has none, e.g. an unresolved host name). */
  addr: string;
  port: number;
  /** srv_op_state: 0 stopped (down), 1 starting, 2 running, 3 stopping. */
  opState: number;
  /** srv_admin_state bits: 0x01 forced maint, 0x02 inherited maint, 0x04 config maint, 0x08 forced drain, 0x10 inherited drain, 0x20 resolution maint. */
  adminState: number;
  weight: number;
  /** srv_fqdn, when the server was given a host name. */
  fqdn?: string;
}

/** `show info` fields that tell one HAProxy process from the next. */
export interface HaproxyInfo {
  pid: number;
  uptimeSec: number;
  version: string;
}

export interface HaproxyRuntimeApiOptions {
  /** Milliseconds allowed for each command, connecting included (default 2000). */
  timeoutMs?: number;
  /** Largest answer read (default 4 MiB); a longer one is an error. */
  maxAnswerBytes?: number;
}

/** admin_state bits the syncer sets and reads back. */
export const ADMIN_FORCED_MAINT = 0x01;
export const ADMIN_FORCED_DRAIN = 0x08;

/** A client of one HAProxy admin socket. Holds no connection between calls. */
export class HaproxyRuntimeApi {
  private readonly timeoutMs: number;
  private readonly maxAnswerBytes: number;

  constructor(
    readonly socketPath: string,
    options: HaproxyRuntimeApiOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxAnswerBytes = options.maxAnswerBytes ?? 4 * 1024 * 1024;
  }

  /** Sends one command and returns HAProxy's whole answer. */
  command(command: string): Promise<string> {
    if (/[\r\n]/.test(command)) return Promise.reject(new Error('a Runtime API command is one line'));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const socket = connect(this.socketPath);
      const finish = (err: Error | undefined, answer?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(answer!);
      };
      const timer = setTimeout(
        () => finish(new HaproxyUnreachableError(this.socketPath, `no answer to "${command.split(' ').slice(0, 2).join(' ')}" within ${this.timeoutMs}ms`, 'timeout')),
        this.timeoutMs,
      );
      socket.on('connect', () => socket.write(`${command}\n`));
      socket.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxAnswerBytes) return finish(new Error(`HAProxy's answer to "${command}" exceeds ${this.maxAnswerBytes} bytes`));
        chunks.push(chunk);
      });
      socket.on('end', () => finish(undefined, Buffer.concat(chunks).toString('utf8')));
      socket.on('error', (err: NodeJS.ErrnoException) => {
        // A reset after HAProxy answered (it closes as soon as it has written) still delivered the answer.
        if (chunks.length > 0 && err.code === 'ECONNRESET') return finish(undefined, Buffer.concat(chunks).toString('utf8'));
        finish(new HaproxyUnreachableError(this.socketPath, describeSocketError(err), err.code ?? 'error'));
      });
    });
  }

  async info(): Promise<HaproxyInfo> {
    const answer = await this.command('show info');
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(answer)?.[1]?.trim();
    const pid = Number(field('Pid'));
    const uptimeSec = Number(field('Uptime_sec'));
    if (!Number.isInteger(pid) || !Number.isFinite(uptimeSec)) throw new HaproxyCommandError('show info', answer);
    return { pid, uptimeSec, version: field('Version') ?? 'unknown' };
  }

  /** The servers of `backend`, config-file and dynamic alike. */
  async serversState(backend: string): Promise<HaproxyServerState[]> {
    const answer = await this.command(`show servers state ${backend}`);
    const lines = answer.split('\n');
    // Version line ("1"), then the "# be_id be_name srv_id srv_name …" header, then one line per server.
    if (lines[0]?.trim() !== '1') throw new HaproxyCommandError(`show servers state ${backend}`, answer);
    const servers: HaproxyServerState[] = [];
    for (const line of lines.slice(1)) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const f = line.trim().split(/\s+/);
      // 1-based: srv_id 3, srv_name 4, srv_addr 5, srv_op_state 6, srv_admin_state 7, srv_uweight 8, srv_fqdn 18, srv_port 19.
      if (f.length < 19 || f[1] !== backend) continue;
      servers.push({
        id: Number(f[2]),
        name: f[3]!,
        addr: f[4]!,
        opState: Number(f[5]),
        adminState: Number(f[6]),
        weight: Number(f[7]),
        ...(f[17] && f[17] !== '-' ? { fqdn: f[17] } : {}),
        port: Number(f[18]),
      });
    }
    return servers;
  }

  /** `add server BACKEND/NAME ADDRESS OPTIONS`: the new server starts in maintenance. */
  async addServer(backend: string, name: string, address: string, options = ''): Promise<void> {
    await this.expect(`add server ${backend}/${name} ${address}${options ? ` ${options}` : ''}`, /New server registered/);
  }

  async setState(backend: string, name: string, state: 'ready' | 'drain' | 'maint'): Promise<void> {
    await this.expect(`set server ${backend}/${name} state ${state}`, /^\s*$/);
  }

  async setAddress(backend: string, name: string, addr: string, port: number): Promise<void> {
    await this.expect(`set server ${backend}/${name} addr ${addr} port ${port}`, /changed from|no need to change/);
  }

  /** Starts the server's health checks (a dynamic server's are off until enabled). */
  async enableHealth(backend: string, name: string): Promise<void> {
    await this.expect(`enable health ${backend}/${name}`, /^\s*$/);
  }

  /** `del server`: only from maintenance, and (2.6) once no connection uses it; see {@link isBusyAnswer}. */
  async deleteServer(backend: string, name: string): Promise<void> {
    await this.expect(`del server ${backend}/${name}`, /Server deleted/);
  }

  private async expect(command: string, success: RegExp): Promise<string> {
    const answer = await this.command(command);
    if (!success.test(answer)) throw new HaproxyCommandError(command, answer);
    return answer;
  }
}

/** HAProxy refused `del server` because connections still use the server: wait and try again. */
export function isBusyAnswer(err: unknown): boolean {
  return err instanceof HaproxyCommandError && /still has connections/i.test(err.answer);
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim().slice(0, 300);
}

function describeSocketError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such socket (is HAProxy running, with `stats socket` at this path?)';
    case 'ECONNREFUSED':
      return 'connection refused (HAProxy is not listening on it: stopped or restarting)';
    case 'EACCES':
      return 'permission denied (run as a user who may open the socket, see its `mode`/`user`)';
    case 'ENOTSOCK':
      return 'not a socket';
    default:
      return err.message;
  }
}
