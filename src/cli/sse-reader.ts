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

/** A reader to push the body's chunks into as they arrive; lines and characters may be split anywhere. */
export function sseReader(handlers: SseHandlers): { push(chunk: Uint8Array): void } {
  const decoder = new TextDecoder();
  const parser = createParser({
    onEvent: (message) =>
      handlers.onFrame({ ...(message.id !== undefined ? { id: message.id } : {}), event: message.event ?? 'message', data: message.data }),
    onRetry: (ms) => handlers.onRetry(ms),
  });
  return { push: (chunk) => parser.feed(decoder.decode(chunk, { stream: true })) };
}
