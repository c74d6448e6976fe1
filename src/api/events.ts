/**
 * The live event stream: Server-Sent Events for `GET /service-discovery/events`, and the same stream
 * over WebSocket for `GET /service-discovery/ws` (one history, one id sequence, one set of caps: the two
 * are transports of one stream, so their semantics cannot drift).
 *
 * Wire format, per cluster event (the seed's `data:` line of the event JSON; no `event:` field, so
 * a browser's `EventSource.onmessage` sees every event):
 *
 * ```
 * id: 3f9a0c1e-42
 * data: {"type":"serviceJoined","serviceId":"…","service":{…},"timestamp":1640995200000}
 *
 * ```
 *
 * - Ids are `<stream>-<seq>`: `seq` increases by one per event of this agent; `stream` is random per
 *   stream instance. A `Last-Event-ID` (header or `?lastEventId=`) from this instance whose next event
 *   is still in the bounded history resumes with no gap and no duplicate. Anything else (too old, from
 *   an agent that restarted, from another agent behind the same load balancer, garbage) gets
 *   `event: reset`, meaning "re-list, then carry on": plain sequence numbers would silently resume
 *   at the wrong place after a restart.
 * - `: ping` comments every `heartbeatMs` keep proxies from cutting idle streams.
 * - A client whose unsent data exceeds `maxBufferedBytes` gets `event: overflow` and is disconnected,
 *   so one stalled reader costs bounded memory and never slows the agent or the other clients. The
 *   overflow frame names the last event queued to it; it may resume from what it actually processed.
 * - Streams are capped, in total (`maxClients`) and per client address (`maxClientsPerAddress`): each
 *   holds a socket, a file descriptor, for as long as the client likes, and readers may be anonymous.
 *   Without a cap they could take every descriptor the process may open, and the agent's own health
 *   probe would then fail with EMFILE. Past a cap a client gets 503 (total) or 429 (its address) in
 *   the API's error shape, with Retry-After; the default total stays far below the process's limit.
 *   SSE and WebSocket clients count against the same caps: each holds a descriptor alike.
 *
 * WebSocket wire format: one JSON text message per frame, the SSE fields as an object, so one reader
 * serves both: `{"id":"3f9a0c1e-42","data":{…event…}}` per event, `{"event":"hello","data":{"stream",
 * "lastEventId"}}` first, `{"id":…,"event":"reset","data":{…}}` and `{"event":"overflow","data":{…}}` as
 * on SSE (an overflow then closes the socket with code 4008), and `{"event":"truncated","data":{…}}` as on SSE. Heartbeats are WebSocket pings; a peer that
 * has not answered the previous ping when the next is due is dropped.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClusterEvent, ClusterEventType } from '../types.js';
import { safeJsonText } from '../util/text.js';

/** Tuning of an {@link EventStream}. */
export interface EventStreamOptions {
  /** Events kept for `Last-Event-ID` resume (default 1000). */
  historySize?: number;
  /** Milliseconds between `: ping` comments (default 15000). */
  heartbeatMs?: number;
  /** Reconnect delay suggested to clients with `retry:` (default 2000 ms). */
  retryMs?: number;
  /** Unsent bytes a client may accumulate before it is cut off (default 1 MiB). */
  maxBufferedBytes?: number;
  /** How long a cut-off client gets to take its last bytes before its socket is destroyed (default 1000 ms). */
  overflowGraceMs?: number;
  /**
   * Most streams open at once (default {@link defaultMaxStreams} of the process's file-descriptor
   * limit: a quarter of it, at most 1000). Past it a new client gets 503 with Retry-After.
   */
  maxClients?: number;
  /** Most streams open at once from one client address (default 20). Past it: 429 with Retry-After. */
  maxClientsPerAddress?: number;
}

/** Default of {@link EventStreamOptions.maxClientsPerAddress}. */
export const DEFAULT_MAX_STREAMS_PER_ADDRESS = 20;

/** Seconds a refused client is told to wait (Retry-After) before it tries again. */
export const STREAM_RETRY_AFTER_SECONDS = 5;

/** Why a new client was not served: which cap it hit, and the answer it gets. */
export interface StreamRefusal {
  limit: 'total' | 'client';
  /** The cap that was reached. */
  max: number;
  statusCode: 503 | 429;
  /** One line for the client (the `message` of the API's error shape). */
  message: string;
  /** Seconds to wait before trying again (the Retry-After header). */
  retryAfter: number;
}

/**
 * The default cap on streams for a process that may open `fdLimit` files: a quarter of them, so
 * the registry connections, the health probe, the API's other requests and the host application
 * keep the rest, and at most 1000. Without a known limit (not Linux): 1000.
 */
export function defaultMaxStreams(fdLimit: number | undefined): number {
  if (fdLimit === undefined || !Number.isFinite(fdLimit) || fdLimit <= 0) return 1000;
  return Math.max(1, Math.min(1000, Math.floor(fdLimit / 4)));
}

/**
 * The soft limit on open files of this process (`ulimit -n`), from /proc/self/limits, or undefined
 * where that cannot be read or says unlimited. Node has no call for getrlimit; Node itself raises
 * the soft limit to the hard one at startup, so this is the limit that holds.
 */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/** How one client wants its stream. */
export interface EventSubscription {
  /** The `Last-Event-ID` to resume after, if any. */
  lastEventId?: string;
  /**
   * The client's address, for the per-address cap (the API passes the request's `ip`, which honours
   * trustProxy); the socket's remote address when absent.
   */
  address?: string;
  /** Only these event types (all when absent). */
  types?: ReadonlySet<ClusterEventType>;
  /**
   * Without `lastEventId`: replay the stored events whose timestamp is at or after this epoch ms
   * first. When the history does not reach back that far (it holds `historySize` events, since the
   * stream started), an `event: truncated` frame says from when it does, before the replay.
   */
  since?: number;
}

/** Events of an {@link EventStream}, for metrics. */
export interface EventStreamEvents {
  clientConnected: [];
  clientDisconnected: [];
  /** A client was cut off for falling too far behind. */
  overflow: [];
  /** A new client was refused: it would have passed this cap. */
  refused: [limit: StreamRefusal['limit']];
}

interface StoredEvent {
  seq: number;
  timestamp: number;
  type: ClusterEventType;
  /** The event's JSON, escaped as the API's answers are. */
  json: string;
  /** The SSE frame, built once for every SSE client. */
  frame: string;
  /** The WebSocket message, built once for every WebSocket client. */
  message: string;
}

/**
 * What the stream needs of a WebSocket (the `ws` package's server-side socket fits), so this module
 * does not load `ws` for agents that never see a WebSocket client.
 */
export interface StreamSocket {
  readonly readyState: number;
  /** Bytes queued in user space, not yet handed to the kernel: the client's backlog. */
  readonly bufferedAmount: number;
  send(data: string): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'pong', listener: () => void): unknown;
}

/** WebSocket close codes of the stream (4000-4999 are the application's). */
export const WS_CLOSE = {
  /** The agent is shutting down (reconnect to another agent, or later). */
  goingAway: 1001,
  /** A message from the client that is not one the stream takes. */
  badMessage: 1008,
  /** No valid key (in a header or the first message), or not in time. */
  unauthorized: 4001,
  /** A valid key whose role may not read. */
  forbidden: 4003,
  /** The client fell behind (see the overflow message before it); reconnect with lastEventId. */
  overflow: 4008,
} as const;

/** One connected client, over either transport. */
interface Client {
  transport: 'sse' | 'ws';
  types: ReadonlySet<ClusterEventType> | undefined;
  /** Id of the last event queued to this client. */
  lastQueuedId: string;
  closed: boolean;
  /** Receives events only once started (a WebSocket waits for its first-message key). */
  started: boolean;
  /** Address counted against the per-address cap. */
  address: string;
  /** Queues text to the client. */
  write(chunk: string): void;
  /** Bytes queued for the client and not yet taken by the socket. */
  backlog(): number;
  /** Whether the underlying connection is gone. */
  gone(): boolean;
  /** SSE: the SSE text of a control event; WS: its message. */
  control(name: 'reset' | 'overflow' | 'hello' | 'truncated', body: object, id?: string): string;
  /** Sends a last chunk and ends the connection (overflow: with its close code). */
  end(last: string | undefined, reason: 'overflow' | 'closing', done?: () => void): void;
  destroy(): void;
  /** One heartbeat; returns false when the client is dead (a WebSocket that missed its pong). */
  heartbeat(): boolean;
  onGone(listener: () => void): void;
}

/** A WebSocket client accepted (counted against the caps) but not streaming yet. */
export interface PendingSocketClient {
  /** Starts the stream: hello, then the replay or reset that `lastEventId` asks for, then live events. */
  start(subscription: Omit<EventSubscription, 'address'>): void;
  /** Closes the socket without streaming (a refused key), with a WebSocket close code and reason. */
  refuse(code: number, reason: string): void;
}

const ID_RE = /^([0-9a-f]{8})-(\d{1,15})$/;

/**
 * Fans cluster events out to SSE clients. Feed it with {@link EventStream.publish} (the server wires
 * `agent.on('event', …)`); serve clients with {@link EventStream.serve}.
 */
export class EventStream extends EventEmitter<EventStreamEvents> {
  /** Random tag of this stream instance, the first part of every id. */
  readonly streamId = randomBytes(4).toString('hex');
  readonly historySize: number;
  readonly heartbeatMs: number;
  readonly retryMs: number;
  readonly maxBufferedBytes: number;
  readonly overflowGraceMs: number;
  readonly maxClients: number;
  readonly maxClientsPerAddress: number;
  #seq = 0;
  #history: StoredEvent[] = [];
  /** When this stream began keeping history, and the timestamp of the newest event it dropped since. */
  readonly #startedAt = Date.now();
  #droppedUpTo: number | undefined;
  readonly #clients = new Set<Client>();
  /** Open streams per client address. */
  readonly #perAddress = new Map<string, number>();
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;
  #overflows = 0;

  constructor(options: EventStreamOptions = {}) {
    super();
    this.historySize = positiveInt(options.historySize ?? 1000, 'historySize');
    this.heartbeatMs = positiveInt(options.heartbeatMs ?? 15_000, 'heartbeatMs');
    this.retryMs = positiveInt(options.retryMs ?? 2000, 'retryMs');
    this.maxBufferedBytes = positiveInt(options.maxBufferedBytes ?? 1024 * 1024, 'maxBufferedBytes');
    this.overflowGraceMs = Math.max(0, options.overflowGraceMs ?? 1000);
    this.maxClients = positiveInt(options.maxClients ?? defaultMaxStreams(openFileLimit()), 'maxClients');
    this.maxClientsPerAddress = positiveInt(options.maxClientsPerAddress ?? DEFAULT_MAX_STREAMS_PER_ADDRESS, 'maxClientsPerAddress');
  }

  /** Connected clients. */
  get clientCount(): number {
    return this.#clients.size;
  }

  /**
   * Whether a new client from `address` may be served now: undefined when it may, else which cap it
   * would pass and what to answer (counted as `refused`). Check before answering the request, so the
   * refusal is an ordinary error response; {@link serve} checks again.
   */
  admit(address: string): StreamRefusal | undefined {
    const refusal = this.#refusal(normalAddress(address));
    if (refusal) this.emit('refused', refusal.limit);
    return refusal;
  }

  /** Clients cut off for falling behind, since start. */
  get overflowCount(): number {
    return this.#overflows;
  }

  /** Id of the newest event (`<stream>-0` before the first). */
  get lastEventId(): string {
    return this.#id(this.#seq);
  }

  /** Appends an event to the history and sends it to every interested client. */
  publish(event: ClusterEvent): void {
    if (this.#closed) return;
    const seq = ++this.#seq;
    // Escaped as the API's JSON answers are (registry data: reasons, ids); the data line parses the same.
    const json = safeJsonText(JSON.stringify(event));
    const id = this.#id(seq);
    const stored: StoredEvent = { seq, timestamp: event.timestamp, type: event.type, json, frame: `id: ${id}\ndata: ${json}\n\n`, message: `{"id":"${id}","data":${json}}` };
    this.#history.push(stored);
    if (this.#history.length > this.historySize) this.#droppedUpTo = this.#history.shift()!.timestamp;
    for (const client of this.#clients) this.#send(client, stored);
  }

  /**
   * Serves one client on a raw response: writes the SSE headers, replays or resets as its
   * `lastEventId` asks, then streams until the client leaves or the stream closes.
   */
  serve(req: IncomingMessage, res: ServerResponse, subscription: EventSubscription = {}): void {
    if (this.#closed) {
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: 'not_started', message: 'the event stream is closed' }));
      return;
    }
    const address = normalAddress(subscription.address ?? req.socket.remoteAddress ?? 'unknown');
    const refusal = this.admit(address);
    if (refusal) {
      res.writeHead(refusal.statusCode, { 'content-type': 'application/json; charset=utf-8', 'retry-after': String(refusal.retryAfter) });
      res.end(JSON.stringify({ error: 'too_many_streams', message: refusal.message }));
      return;
    }
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx buffers responses unless told otherwise.
      'x-accel-buffering': 'no',
    });
    const client = this.#attach(sseClient(res, this.overflowGraceMs), address);
    client.write(`retry: ${this.retryMs}\n: connected to stream ${this.streamId}\n\n`);
    this.#start(client, subscription);
  }

  /**
   * Takes a WebSocket client: counted against the caps at once (refused with a close code past them,
   * as `admit` would have refused its upgrade), streaming only once {@link PendingSocketClient.start}
   * is called, so the API can wait for a key in its first message. A socket never started is the
   * caller's to refuse or let time out.
   */
  acceptSocket(socket: StreamSocket, address: string): PendingSocketClient | undefined {
    const addr = normalAddress(address);
    if (this.#closed) {
      socket.close(WS_CLOSE.goingAway, 'the event stream is closed');
      return undefined;
    }
    const refusal = this.admit(addr);
    if (refusal) {
      // 1013: Try Again Later; the upgrade was admitted a moment ago, so this is a race lost.
      socket.close(1013, refusal.message.slice(0, 120));
      return undefined;
    }
    const client = this.#attach(wsClient(socket, this.overflowGraceMs), addr);
    return {
      start: (subscription) => {
        if (client.closed) return;
        client.write(client.control('hello', { stream: this.streamId, lastEventId: this.lastEventId }));
        this.#start(client, subscription);
      },
      refuse: (code, reason) => {
        this.#drop(client);
        socket.close(code, reason.slice(0, 120));
      },
    };
  }

  #attach(client: Client, address: string): Client {
    client.address = address;
    client.lastQueuedId = this.lastEventId;
    client.onGone(() => this.#drop(client));
    this.#clients.add(client);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.emit('clientConnected');
    this.#ensureHeartbeat();
    return client;
  }

  /** Replays or resets as the subscription's `lastEventId` asks, then lets live events through. */
  #start(client: Client, subscription: Omit<EventSubscription, 'address'>): void {
    client.types = subscription.types;
    client.lastQueuedId = this.lastEventId;
    client.started = true;
    const from = subscription.lastEventId?.trim();
    if (from) {
      const replay = this.#replayAfter(from);
      if (replay === undefined) {
        client.lastQueuedId = this.lastEventId;
        // The reset carries the current id, so once the client has re-listed it resumes from here.
        const body = {
          type: 'reset',
          reason: 'the requested Last-Event-ID is not in this stream\'s history; list services again',
          lastEventId: this.lastEventId,
          timestamp: Date.now(),
        };
        this.#write(client, client.control('reset', body, this.lastEventId));
      } else {
        for (const stored of replay) this.#send(client, stored);
      }
    } else if (subscription.since !== undefined) {
      this.#replaySince(client, subscription.since);
    }
  }

  /** Ends every stream and stops the heartbeat. Later publishes are ignored. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    const ends = [...this.#clients].map(
      (client) =>
        new Promise<void>((resolve) => {
          this.#drop(client);
          if (client.gone()) return resolve();
          const timer = setTimeout(() => {
            client.destroy();
            resolve();
          }, this.overflowGraceMs);
          client.end(undefined, 'closing', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    );
    await Promise.all(ends);
  }

  #refusal(address: string): StreamRefusal | undefined {
    if (this.#clients.size >= this.maxClients) {
      return {
        limit: 'total',
        max: this.maxClients,
        statusCode: 503,
        message: `the agent serves its maximum of ${this.maxClients} event streams; retry later`,
        retryAfter: STREAM_RETRY_AFTER_SECONDS,
      };
    }
    if ((this.#perAddress.get(address) ?? 0) >= this.maxClientsPerAddress) {
      return {
        limit: 'client',
        max: this.maxClientsPerAddress,
        statusCode: 429,
        message: `this client already has ${this.maxClientsPerAddress} event streams open (the most per client); close one or retry later`,
        retryAfter: STREAM_RETRY_AFTER_SECONDS,
      };
    }
    return undefined;
  }

  /** `since`: what the history holds from then on, after a `truncated` frame when it does not reach back that far. */
  #replaySince(client: Client, since: number): void {
    const reachesBack = Math.max(this.#startedAt, this.#droppedUpTo === undefined ? 0 : this.#droppedUpTo + 1);
    if (since < reachesBack) {
      const why = this.#droppedUpTo === undefined ? 'the agent started then' : `it keeps the last ${this.historySize} events`;
      const body = { type: 'truncated', reason: `the event history reaches back to ${new Date(reachesBack).toISOString()} only (${why})`, since: reachesBack, timestamp: Date.now() };
      this.#write(client, client.control('truncated', body));
    }
    for (const stored of this.#history) if (stored.timestamp >= since) this.#send(client, stored);
  }

  /** The stored events after `lastEventId`, or undefined when that id cannot be resumed from. */
  #replayAfter(lastEventId: string): StoredEvent[] | undefined {
    const m = ID_RE.exec(lastEventId);
    if (!m || m[1] !== this.streamId) return undefined;
    const seq = Number(m[2]);
    if (seq > this.#seq) return undefined;
    const oldest = this.#history[0]?.seq ?? this.#seq + 1;
    // The event right after `seq` must still be stored (or not exist yet).
    if (seq + 1 < oldest) return undefined;
    return this.#history.filter((e) => e.seq > seq);
  }

  #send(client: Client, stored: StoredEvent): void {
    if (!client.started || (client.types && !client.types.has(stored.type))) return;
    client.lastQueuedId = this.#id(stored.seq);
    this.#write(client, client.transport === 'sse' ? stored.frame : stored.message);
  }

  #write(client: Client, chunk: string): void {
    if (client.closed) return;
    if (client.gone()) {
      this.#drop(client);
      return;
    }
    client.write(chunk);
    // What the socket has not taken yet: the client's backlog, in our memory.
    if (client.backlog() > this.maxBufferedBytes) this.#overflow(client);
  }

  #overflow(client: Client): void {
    this.#overflows += 1;
    this.#drop(client);
    const body = {
      type: 'overflow',
      reason: `client fell more than ${this.maxBufferedBytes} bytes behind; reconnect with Last-Event-ID to resume`,
      lastEventId: client.lastQueuedId,
      timestamp: Date.now(),
    };
    this.emit('overflow');
    // No id here: the client has not seen the events before it, so its Last-Event-ID must not move.
    client.end(client.control('overflow', body), 'overflow');
  }

  #drop(client: Client): void {
    if (client.closed) return;
    client.closed = true;
    this.#clients.delete(client);
    const open = (this.#perAddress.get(client.address) ?? 1) - 1;
    if (open > 0) this.#perAddress.set(client.address, open);
    else this.#perAddress.delete(client.address);
    this.emit('clientDisconnected');
    if (this.#clients.size === 0) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }

  #ensureHeartbeat(): void {
    if (this.#heartbeat || this.#clients.size === 0) return;
    this.#heartbeat = setInterval(() => {
      for (const client of this.#clients) {
        if (client.closed) continue;
        if (!client.heartbeat()) {
          // A WebSocket that did not answer the last ping: gone without a close (a cut cable).
          this.#drop(client);
          client.destroy();
        } else if (client.backlog() > this.maxBufferedBytes) this.#overflow(client);
      }
    }, this.heartbeatMs);
    this.#heartbeat.unref();
  }

  #id(seq: number): string {
    return `${this.streamId}-${seq}`;
  }
}

/** An SSE client on a raw response. */
function sseClient(res: ServerResponse, graceMs: number): Client {
  const client: Client = {
    transport: 'sse',
    types: undefined,
    lastQueuedId: '',
    closed: false,
    started: false,
    address: '',
    write: (chunk) => void res.write(chunk),
    backlog: () => res.writableLength,
    gone: () => res.destroyed || res.writableEnded,
    control: (name, body, id) => `${id !== undefined ? `id: ${id}\n` : ''}event: ${name}\ndata: ${JSON.stringify(body)}\n\n`,
    end(last, reason, done) {
      if (reason === 'closing') {
        res.end(done);
        return;
      }
      res.end(last);
      const timer = setTimeout(() => res.destroy(), graceMs);
      timer.unref();
      res.once('close', () => clearTimeout(timer));
    },
    destroy: () => void res.destroy(),
    heartbeat() {
      client.write(': ping\n\n');
      return true;
    },
    onGone(listener) {
      res.on('error', listener);
      res.on('close', listener);
    },
  };
  return client;
}

const WS_OPEN = 1;

/** A WebSocket client. */
function wsClient(socket: StreamSocket, graceMs: number): Client {
  // Whether the peer answered the last ping: a peer that vanished without a close never does.
  let answered = true;
  socket.on('pong', () => {
    answered = true;
  });
  const client: Client = {
    transport: 'ws',
    types: undefined,
    lastQueuedId: '',
    closed: false,
    started: false,
    address: '',
    write: (chunk) => socket.send(chunk),
    backlog: () => socket.bufferedAmount,
    gone: () => socket.readyState !== WS_OPEN,
    control: (name, body, id) => JSON.stringify({ ...(id !== undefined ? { id } : {}), event: name, data: body }),
    end(last, reason, done) {
      if (last !== undefined && socket.readyState === WS_OPEN) socket.send(last);
      if (done) socket.on('close', done);
      if (reason === 'closing') socket.close(WS_CLOSE.goingAway, 'the agent is shutting down');
      else socket.close(WS_CLOSE.overflow, 'client fell behind; reconnect with lastEventId');
      // The closing handshake needs the peer; one that does not answer is cut after the grace.
      const timer = setTimeout(() => socket.terminate(), graceMs);
      timer.unref();
      socket.on('close', () => clearTimeout(timer));
    },
    destroy: () => socket.terminate(),
    heartbeat() {
      if (!answered) return false;
      answered = false;
      if (socket.readyState === WS_OPEN) socket.ping();
      return true;
    },
    onGone(listener) {
      socket.on('close', listener);
      socket.on('error', listener);
    },
  };
  return client;
}

/** An IPv4 client on a dual-stack socket is one client, whether seen as `::ffff:10.0.0.1` or `10.0.0.1`. */
function normalAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return Math.floor(value);
}
