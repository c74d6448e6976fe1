/** Converting raw values (env and flag strings, file JSON) to what each kind of setting holds. */
import { accessSync, constants as fsConstants } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { DURATION_MAX_EXPECTATION, DurationTooLongError, parseDuration } from '../util/duration.js';
import { CHECK_URL_EXPECTATION, CheckSpecError, parseCheckUrls } from '../agent/checks/check-spec.js';
import { shortSafe, type Candidate } from './errors.js';
import { isPlainObject } from './object-path.js';
import { MAX_ITEMS, textProblem, type Setting } from './settings.js';

/** A failed conversion says why in `text`, or replaces the setting's usual expectation with `expected`. */
export type Conversion = { ok: true; value: unknown } | { ok: false; text?: string; expected?: string };

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

function splitList(raw: unknown, separator: RegExp | string = ','): string[] | undefined {
  if (typeof raw === 'string') return raw.split(separator).map((s) => s.trim()).filter((s) => s !== '');
  // In a file an array is taken item by item; an empty item is reported by the schema, not dropped.
  if (Array.isArray(raw) && raw.every((item): item is string => typeof item === 'string')) return raw.map((s) => s.trim());
  return undefined;
}

export function convert(c: Candidate): Conversion {
  const { setting, origin } = c;
  // Repeated flags (`multiple: true`) arrive as arrays: read them like one comma-separated value.
  // Check URLs may hold commas (`expect=200,204`): they are separated by whitespace instead.
  const checks = setting.kind === 'list' && setting.itemKind === 'check';
  const raw = Array.isArray(c.raw) && (origin.source === 'env' || origin.source === 'flag') ? c.raw.join(checks ? ' ' : ',') : c.raw;
  const fail: Conversion = { ok: false };
  switch (setting.kind) {
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (typeof raw !== 'string') return fail;
      const word = raw.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return { ok: true, value: true };
      if (FALSE_WORDS.has(word)) return { ok: true, value: false };
      return fail;
    }
    case 'integer':
    case 'port':
    case 'number': {
      if (typeof raw === 'number') return { ok: true, value: raw };
      if (typeof raw !== 'string') return fail;
      const text = raw.trim();
      const re = setting.kind === 'number' ? /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/ : /^[+-]?\d+$/;
      return re.test(text) ? { ok: true, value: Number(text) } : fail;
    }
    case 'duration': {
      if (typeof raw !== 'number' && typeof raw !== 'string') return fail;
      try {
        return { ok: true, value: parseDuration(raw) };
      } catch (err) {
        return err instanceof DurationTooLongError ? { ok: false, expected: DURATION_MAX_EXPECTATION } : fail;
      }
    }
    case 'string':
    case 'url':
    case 'host':
    case 'enum': {
      if (typeof raw !== 'string') return fail;
      // Secrets are taken verbatim; a trailing space may be part of a password.
      let value = setting.secret ? raw : raw.trim();
      const unusable = unusableText(setting, value, 'value');
      if (unusable) return unusable;
      if (setting.kind === 'enum') value = value.toLowerCase();
      // Paths in a config file are relative to the file, as in kubeconfig.
      if (setting.file && origin.source === 'file' && origin.file && value !== '') {
        value = resolvePath(dirname(origin.file), value);
      }
      return { ok: true, value };
    }
    case 'list': {
      const items = splitList(raw, checks ? /\s+/ : ',');
      if (!items) return fail;
      if (items.length > MAX_ITEMS) return { ok: false, expected: `at most ${MAX_ITEMS} items (got ${items.length})` };
      for (const item of items) {
        const unusable = unusableText(setting, item, 'item');
        if (unusable) return unusable;
      }
      if (checks) {
        try {
          // A CA file that cannot be read is the operator's mistake, told before anything starts.
          for (const spec of parseCheckUrls(items)) {
            const ca = spec.http?.ca ?? spec.grpc?.ca;
            if (ca !== undefined) {
              try {
                accessSync(ca, fsConstants.R_OK);
              } catch (e) {
                throw new CheckSpecError(`${spec.name}: ca=${ca}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
              }
            }
          }
        } catch (err) {
          if (err instanceof CheckSpecError) return { ok: false, expected: CHECK_URL_EXPECTATION, text: err.message };
          throw err;
        }
      }
      return { ok: true, value: items };
    }
    case 'keyvalue': {
      let pairs: [string, string][];
      if (isPlainObject(raw)) {
        pairs = [];
        for (const [k, v] of Object.entries(raw)) {
          if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return fail;
          pairs.push([k.trim(), String(v)]);
        }
      } else {
        const items = splitList(raw);
        if (!items) return fail;
        pairs = [];
        for (const item of items) {
          if (item === '') continue;
          const eq = item.indexOf('=');
          if (eq <= 0) return { ok: false, text: `"${shortSafe(item)}" is not key=value` };
          pairs.push([item.slice(0, eq).trim(), item.slice(eq + 1).trim()]);
        }
      }
      if (pairs.length > MAX_ITEMS) return { ok: false, expected: `at most ${MAX_ITEMS} key=value pairs (got ${pairs.length})` };
      // A null-prototype object: `__proto__` would otherwise be silently dropped; it is refused instead.
      const out: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [k, v] of pairs) {
        if (k === '__proto__') return { ok: false, text: '"__proto__" is not a usable key' };
        const unusable = unusableText(setting, k, 'key') ?? unusableText(setting, v, 'pair value');
        if (unusable) return unusable;
        out[k] = v;
      }
      return { ok: true, value: { ...out } };
    }
  }
}

/** {@link textProblem} as a failed conversion. */
function unusableText(setting: Setting, text: string, part: 'value' | 'item' | 'key' | 'pair value'): Conversion | undefined {
  const problem = textProblem(setting, text, part);
  if (!problem) return undefined;
  return { ok: false, ...(problem.reason !== undefined ? { text: problem.reason } : {}), ...(problem.expected !== undefined ? { expected: problem.expected } : {}) };
}
