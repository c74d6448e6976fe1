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

/**
 * `value` with every string in it (object keys too) passed through {@link escapeUnsafe}: registry
 * data on its way to a terminal, made safe once where it enters the view rather than at every place
 * that prints a field. Objects and arrays are copied only where something changed.
 */
export function terminalSafe<T>(value: T): T {
  return safeCopy(value, 0) as T;
}

function safeCopy(value: unknown, depth: number): unknown {
  if (typeof value === 'string') {
    UNSAFE.lastIndex = 0;
    return UNSAFE.test(value) ? escapeUnsafe(value) : value;
  }
  // Registry data is parsed JSON (a tree); the depth bound only guards against a cycle by mistake.
  if (typeof value !== 'object' || value === null || depth > 64) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const safe = safeCopy(item, depth + 1);
      if (safe !== item) changed = true;
      return safe;
    });
    return changed ? out : value;
  }
  // Plain data only (parsed JSON); class instances (a Date, an Error) are passed through as they are.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = safeCopy(k, depth) as string;
    const safe = safeCopy(v, depth + 1);
    if (key !== k || safe !== v) changed = true;
    out[key] = safe;
  }
  return changed ? out : value;
}

/**
 * JSON text for a terminal or a pipe: `JSON.stringify` escapes C0 controls but writes DEL, C1
 * controls and bidirectional marks as they are; here they are `\uXXXX` escapes too, which any JSON
 * parser reads back as the same characters.
 */
export function safeJsonText(json: string): string {
  // C0 controls are left alone: inside strings JSON.stringify escaped them already, and outside
  // them they are the pretty-printer's newlines and the colouring's SGR sequences.
  return json.replace(JSON_UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
