/**
 * Reading the JSON config file. Its errors never echo its content: a JSON.parse message can quote the
 * file, which may hold a password, so a syntax error is located here and told by line and column.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { fileIssue } from './errors.js';

/** Already-read config file content for `resolveConfig` (load.ts). */
export interface ConfigFileContent {
  /** Path used in messages and to resolve relative file paths; made absolute. */
  path: string;
  /** The parsed JSON. */
  data: unknown;
}

/**
 * Reads and parses a JSON config file. Errors are one-line `ConfigError`s naming the absolute path;
 * a JSON syntax error gives line and column but never echoes file content (it may hold a password).
 */
export async function readConfigFile(file: string): Promise<ConfigFileContent> {
  const path = resolvePath(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw fileIssue(path, 'not found');
    if (code === 'EISDIR') throw fileIssue(path, 'is a directory, expected a JSON file');
    throw fileIssue(path, `cannot be read (${code ?? String(err)})`);
  }
  text = text.replace(/^\uFEFF/, '');
  try {
    return { path, data: JSON.parse(text) as unknown };
  } catch {
    const where = locateJsonError(text);
    throw fileIssue(path, where ? `invalid JSON at line ${where.line} column ${where.column}: ${where.reason}` : 'invalid JSON');
  }
}


interface JsonErrorLocation {
  line: number;
  column: number;
  reason: string;
}

/** Finds the first syntax error in `text`, or undefined if it finds none. */
function locateJsonError(text: string): JsonErrorLocation | undefined {
  let i = 0;
  class Stop {
    constructor(readonly reason: string) {}
  }
  const stop = (reason: string): never => {
    throw new Stop(reason);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const describeChar = (): string => (i >= text.length ? 'unexpected end of file' : `unexpected character ${JSON.stringify(text[i])}`);
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) stop('unterminated string');
      const ch = text.charCodeAt(i);
      if (ch === 0x22) {
        i++;
        return;
      }
      if (ch < 0x20) stop('control character in string');
      i += ch === 0x5c ? 2 : 1;
    }
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      // Objects and arrays share one loop (no helper call: each nesting level costs one stack frame).
      const close = ch === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (close === '}') {
          ws();
          if (text[i] !== '"') stop(`expected a double-quoted property name, ${describeChar()}`);
          str();
          ws();
          if (text[i] !== ':') stop(`expected ':', ${describeChar()}`);
          i++;
        }
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return;
        }
        stop(`expected ',' or '${close}', ${describeChar()}`);
      }
    }
    if (ch === '"') return str();
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) {
      i = NUMBER.lastIndex;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    stop(i >= text.length ? 'unexpected end of file' : describeChar());
  };
  try {
    value();
    ws();
    if (i < text.length) stop('unexpected content after the JSON value');
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) return undefined; // e.g. stack overflow on absurd nesting
    const before = text.slice(0, Math.min(i, text.length));
    const line = before.split('\n').length;
    const column = i - (before.lastIndexOf('\n') + 1) + 1;
    return { line, column, reason: err.reason };
  }
}
