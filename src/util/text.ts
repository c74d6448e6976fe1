/**
 * Text from outside (the registry, a request, a keypress) on its way to a terminal, a log line or a
 * generated file. Control characters can move the cursor, clear the screen or end a line early, and
 * bidirectional overrides can make text read differently from what it is (Trojan Source).
 *
 * @module
 */

/** The Unicode bidirectional marks, embeddings, overrides and isolates (as a character-class body). */
const BIDI_CONTROLS = '\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

/**
 * One character a terminal (or a UI showing the text) could act on: C0 controls, DEL, C1 controls
 * and the bidirectional controls. A regular-expression source, for the places that add to it.
 */
export const UNSAFE_CHARACTER = `[\\u0000-\\u001f\\u007f-\\u009f${BIDI_CONTROLS}]`;

const UNSAFE = new RegExp(UNSAFE_CHARACTER, 'g');
const UNSAFE_ONE = new RegExp(UNSAFE_CHARACTER);
const BIDI_ONE = new RegExp(`[${BIDI_CONTROLS}]`);

/**
 * The first character of `text` a terminal could act on, as `U+001B`, and whether it is a
 * bidirectional control; undefined when there is none. For messages that say what was refused.
 */
export function unsafeCharacterIn(text: string): { codePoint: string; bidi: boolean } | undefined {
  const bad = UNSAFE_ONE.exec(text);
  if (!bad) return undefined;
  return { codePoint: `U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`, bidi: BIDI_ONE.test(bad[0]) };
}

/** The text without control or bidirectional-control characters (a keypress, a paste, a value for a config file). */
export function printable(input: string): string {
  return input.replace(UNSAFE, '');
}

/** `\u001b` for ESC: the JSON and JavaScript spelling of one UTF-16 code unit. */
function unicodeEscape(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * The text with every control or bidirectional-control character shown as an escape (`\u001b`), so
 * what a hostile value tried to do stays visible on a terminal without being done.
 */
export function escapeUnsafe(input: string): string {
  return input.replace(UNSAFE, unicodeEscape);
}

/**
 * `value` with every string in it (object keys too) passed through {@link escapeUnsafe}: registry
 * data on its way to a terminal, made safe once where it enters the view rather than at every place
 * that prints a field.
 */
export function terminalSafe<T>(value: T): T {
  return mapStrings(value, escapeUnsafe);
}

/**
 * `value` with `map` applied to every string in it, object keys included. Plain data only (parsed
 * JSON): class instances (a Date, an Error) are passed through as they are. Objects and arrays are
 * copied only where something changed.
 */
export function mapStrings<T>(value: T, map: (text: string) => string): T {
  return mapped(value, map, 0) as T;
}

function mapped(value: unknown, map: (text: string) => string, depth: number): unknown {
  if (typeof value === 'string') return map(value);
  // Registry data is parsed JSON (a tree); the depth bound only guards against a cycle by mistake.
  if (typeof value !== 'object' || value === null || depth > 64) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((item) => {
      const next = mapped(item, map, depth + 1);
      if (next !== item) changed = true;
      return next;
    });
    return changed ? out : value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = map(k);
    const next = mapped(v, map, depth + 1);
    if (key !== k || next !== v) changed = true;
    // Defined, not assigned: a key named __proto__ (registry data) stays a key instead of a prototype.
    Object.defineProperty(out, key, { value: next, enumerable: true, writable: true, configurable: true });
  }
  return changed ? out : value;
}

/** What JSON.stringify leaves raw of {@link UNSAFE_CHARACTER}: DEL, C1 and the bidirectional controls. */
const JSON_UNSAFE = new RegExp(`[\\u007f-\\u009f${BIDI_CONTROLS}]`, 'g');

/**
 * JSON text for a terminal or a pipe: `JSON.stringify` escapes C0 controls but writes DEL, C1
 * controls and bidirectional marks as they are; here they are `\uXXXX` escapes too, which any JSON
 * parser reads back as the same characters.
 */
export function safeJsonText(json: string): string {
  // C0 controls are left alone: inside strings JSON.stringify escaped them already, and outside
  // them they are the pretty-printer's newlines and the colouring's SGR sequences.
  return json.replace(JSON_UNSAFE, unicodeEscape);
}
