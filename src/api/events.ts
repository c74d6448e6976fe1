/**
 * Server-Sent Events for `GET /service-discovery/events`.
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
  frame: string;
}

interface Client {
  res: ServerResponse;
  types: ReadonlySet<ClusterEventType> | undefined;
  /** Id of the last event queued to this client. */
  lastQueuedId: string;
  closed: boolean;
  /** Address counted against the per-address cap. */
  address: string;
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
    const stored: StoredEvent = { seq, timestamp: event.timestamp, type: event.type, frame: `id: ${this.#id(seq)}\ndata: ${safeJsonText(JSON.stringify(event))}\n\n` };
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
    const client: Client = { res, types: subscription.types, lastQueuedId: this.lastEventId, closed: false, address };
    res.on('error', () => this.#drop(client));
    res.on('close', () => this.#drop(client));
    this.#clients.add(client);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    this.emit('clientConnected');
    this.#write(client, `retry: ${this.retryMs}\n: connected to stream ${this.streamId}\n\n`);

    const from = subscription.lastEventId?.trim();
    if (from) {
      const replay = this.#replayAfter(from);
      if (replay === undefined) {
        client.lastQueuedId = this.lastEventId;
        // The reset carries the current id, so once the client has re-listed it resumes from here.
        const body = JSON.stringify({
          type: 'reset',
          reason: 'the requested Last-Event-ID is not in this stream\'s history; list services again',
          lastEventId: this.lastEventId,
          timestamp: Date.now(),
        });
        this.#write(client, `id: ${this.lastEventId}\nevent: reset\ndata: ${body}\n\n`);
      } else {
        for (const stored of replay) this.#send(client, stored);
      }
    } else if (subscription.since !== undefined) {
      this.#replaySince(client, subscription.since);
    }
    this.#ensureHeartbeat();
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
          if (client.res.writableEnded || client.res.destroyed) return resolve();
          const timer = setTimeout(() => {
            client.res.destroy();
            resolve();
          }, this.overflowGraceMs);
          client.res.end(() => {
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
      const body = JSON.stringify({ type: 'truncated', reason: `the event history reaches back to ${new Date(reachesBack).toISOString()} only (${why})`, since: reachesBack, timestamp: Date.now() });
      this.#write(client, `event: truncated\ndata: ${body}\n\n`);
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
    if (client.types && !client.types.has(stored.type)) return;
    client.lastQueuedId = this.#id(stored.seq);
    this.#write(client, stored.frame);
  }

  #write(client: Client, chunk: string): void {
    if (client.closed) return;
    const res = client.res;
    if (res.destroyed || res.writableEnded) {
      this.#drop(client);
      return;
    }
    res.write(chunk);
    // writableLength is what the socket has not taken yet: the client's backlog in our memory.
    if (res.writableLength > this.maxBufferedBytes) this.#overflow(client);
  }

  #overflow(client: Client): void {
    this.#overflows += 1;
    this.#drop(client);
    const res = client.res;
    const body = JSON.stringify({
      type: 'overflow',
      reason: `client fell more than ${this.maxBufferedBytes} bytes behind; reconnect with Last-Event-ID to resume`,
      lastEventId: client.lastQueuedId,
      timestamp: Date.now(),
    });
    this.emit('overflow');
    // No `id:` here: the client has not seen the events before it, so its Last-Event-ID must not move.
    res.end(`event: overflow\ndata: ${body}\n\n`);
    const timer = setTimeout(() => res.destroy(), this.overflowGraceMs);
    timer.unref();
    res.once('close', () => clearTimeout(timer));
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
      for (const client of this.#clients) this.#write(client, ': ping\n\n');
    }, this.heartbeatMs);
    this.#heartbeat.unref();
  }

  #id(seq: number): string {
    return `${this.streamId}-${seq}`;
  }
}

/** An IPv4 client on a dual-stack socket is one client, whether seen as `::ffff:10.0.0.1` or `10.0.0.1`. */
function normalAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

function positiveInt(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number, got ${value}`);
  return Math.floor(value);
}
