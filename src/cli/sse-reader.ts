/**
 * Reads a `text/event-stream` body (an agent's `/events`): the bytes decoded as one UTF-8 stream and fed
 * to eventsource-parser, which keeps the WHATWG event-stream rules so this project does not have to.
 * Loaded on demand by the one place that reads events (`AgentClient.events`): no other command pays for it.
 *
 * @module
 */
import { createParser } from 'eventsource-parser';

/** One dispatched SSE event. `event` is `message` unless the server named it. */
export interface SseFrame {
  id?: string;
  event: string;
  data: string;
}

export interface SseHandlers {
  /** An event, once its blank line is read; blocks without a `data:` line dispatch nothing (WHATWG). */
  onFrame(frame: SseFrame): void;
  /** A `retry:` field, as soon as it is read: the reconnection delay the server asks for, in ms. */
  onRetry(ms: number): void;
}

/**
 * Most bytes one event may take before its blank line: the agent's largest event (a record of at most
 * 128 KiB, escaped) is far below it; a server that never ends an event is cut off instead of filling
 * memory.
 */
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;

/** A server sent an event larger than {@link MAX_EVENT_BYTES}. */
export class SseEventTooLargeError extends Error {
  override name = 'SseEventTooLargeError';
  constructor() {
    super(`an event larger than ${MAX_EVENT_BYTES} bytes`);
  }
}

/**
 * A reader to push the body's chunks into as they arrive; lines and characters may be split anywhere.
 * `push` throws {@link SseEventTooLargeError} once an event outgrows its bound.
 */
export function sseReader(handlers: SseHandlers): { push(chunk: Uint8Array): void } {
  const decoder = new TextDecoder();
  // Bytes since the last dispatched event (or retry); reset by the parser's callbacks.
  let pending = 0;
  const parser = createParser({
    onEvent: (message) => {
      pending = 0;
      handlers.onFrame({ ...(message.id !== undefined ? { id: message.id } : {}), event: message.event ?? 'message', data: message.data });
    },
    onRetry: (ms) => handlers.onRetry(ms),
  });
  return {
    push: (chunk) => {
      pending += chunk.byteLength;
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (pending > MAX_EVENT_BYTES) throw new SseEventTooLargeError();
    },
  };
}
