/**
 * Text from outside (the registry, a request, a keypress) on its way to a terminal, a log line or a
 * generated file. Control characters can move the cursor, clear the screen or end a line early, and
 * bidirectional overrides can make text read differently from what it is (Trojan Source).
 *
 * @module
 */

/** C0 controls, DEL, C1 controls, and the Unicode bidirectional marks, embeddings, overrides and isolates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** The text without control or bidirectional-control characters (a keypress, a paste, a value for a config file). */
export function printable(input: string): string {
  return input.replace(UNSAFE, '');
}

/**
 * The text with every control or bidirectional-control character shown as an escape (`\u001b`), so
 * what a hostile value tried to do stays visible on a terminal without being done.
 */
export function escapeUnsafe(input: string): string {
  return input.replace(UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
