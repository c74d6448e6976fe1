/**
 * Selecting services by their tags and metadata: one parser and one matcher for the CLI's `--tag`
 * and `-l/--label`, the API's `?tag=` and `?label=`, and the dashboard.
 *
 * - A label selector is requirements separated by commas, all of which must hold, on the record's
 *   `metadata`: `key=value` and `key==value` (the key is present with that value), `key!=value` (the
 *   key is absent or has another value), as kubectl's equality-based selectors. Set-based forms
 *   (`in`, `notin`, `!key`) are not taken: nobody asked, and each one is more syntax to explain.
 * - A tag list is tags separated by commas; a service must carry every one.
 *
 * Values cannot contain a comma (the separator); spaces around keys, values and commas are dropped.
 * Bounds are the record's (RECORD_LIMITS), so a selector can only name what a record can hold.
 *
 * @module
 */
import { RECORD_LIMITS, type ServiceRecord } from '../types.js';
import { unsafeCharacterIn } from '../util/text.js';

/** One requirement of a label selector. */
export interface LabelRequirement {
  key: string;
  op: '=' | '!=';
  value: string;
}

/** What a selection asks of a service's tags and metadata; absent parts select everything. */
export interface Selection {
  /** Tags the service must all carry. */
  tags?: readonly string[];
  /** Requirements on the service's metadata, all of which must hold. */
  labels?: readonly LabelRequirement[];
}

/** Longest selector or tag list taken, in characters: the API's query parameters and the flags alike. */
export const MAX_SELECTOR_LENGTH = 4096;

/** What a label selector must look like, for error messages. */
export const LABEL_EXPECTATION = 'key=value, key==value or key!=value, comma-separated (e.g. team=edge,env!=staging)';

/** What a tag list must look like, for error messages. */
export const TAG_EXPECTATION = 'one or more tags, comma-separated (e.g. edge,canary)';

/** A selector or tag list that cannot be read; the message says what was expected (the caller names the flag or parameter). */
export class SelectorError extends Error {
  override name = 'SelectorError';
}

/** Parses a label selector (see the module). @throws SelectorError */
export function parseLabelSelector(text: string): LabelRequirement[] {
  checkText(text, LABEL_EXPECTATION);
  const out: LabelRequirement[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item.length === 0) throw new SelectorError(`expected ${LABEL_EXPECTATION}; got an empty requirement`);
    const m = /^([^=!]+?)\s*(==|!=|=)\s*([^=!]*)$/.exec(item);
    if (!m) throw new SelectorError(`expected ${LABEL_EXPECTATION}; got "${item.length > 60 ? `${item.slice(0, 57)}...` : item}"`);
    const key = m[1]!.trim();
    const value = m[3]!.trim();
    if (key.length > RECORD_LIMITS.metadataKey) throw new SelectorError(`expected a key of at most ${RECORD_LIMITS.metadataKey} characters`);
    if (value.length > RECORD_LIMITS.metadataValue) throw new SelectorError(`expected a value of at most ${RECORD_LIMITS.metadataValue} characters`);
    out.push({ key, op: m[2] === '!=' ? '!=' : '=', value });
  }
  return out;
}

/** Parses a tag list (see the module). @throws SelectorError */
export function parseTagList(text: string): string[] {
  checkText(text, TAG_EXPECTATION);
  const tags = text.split(',').map((t) => t.trim());
  if (tags.some((t) => t.length === 0)) throw new SelectorError(`expected ${TAG_EXPECTATION}; got an empty tag`);
  const long = tags.find((t) => t.length > RECORD_LIMITS.tag);
  if (long !== undefined) throw new SelectorError(`expected tags of at most ${RECORD_LIMITS.tag} characters`);
  return [...new Set(tags)];
}

function checkText(text: string, expectation: string): void {
  if (text.length > MAX_SELECTOR_LENGTH) throw new SelectorError(`expected ${expectation}, at most ${MAX_SELECTOR_LENGTH} characters`);
  const bad = unsafeCharacterIn(text);
  if (bad) throw new SelectorError(`expected ${expectation}, without control characters; contains ${bad.codePoint}`);
  if (text.trim().length === 0) throw new SelectorError(`expected ${expectation}`);
}

/** Whether a service carries every tag and meets every label requirement of `selection`. */
export function matchesSelection(service: Pick<ServiceRecord, 'tags' | 'metadata'>, selection: Selection): boolean {
  if (selection.tags?.some((t) => !service.tags.includes(t))) return false;
  for (const r of selection.labels ?? []) {
    // Own properties only: a key named `__proto__` or `toString` is data, not a lookup on Object.prototype.
    const has = Object.hasOwn(service.metadata, r.key);
    const equal = has && service.metadata[r.key] === r.value;
    if (r.op === '=' ? !equal : equal) return false;
  }
  return true;
}

/** The selector as typed back (`team=edge,env!=staging`), for messages and the API's query string. */
export function formatLabelSelector(labels: readonly LabelRequirement[]): string {
  return labels.map((r) => `${r.key}${r.op}${r.value}`).join(',');
}

/** Whether `selection` asks anything at all. */
export function isEmptySelection(selection: Selection): boolean {
  return (selection.tags?.length ?? 0) === 0 && (selection.labels?.length ?? 0) === 0;
}
