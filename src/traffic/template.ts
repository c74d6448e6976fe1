/**
 * Config-file templates (Handlebars): compiled strictly, rendered from a {@link TrafficSnapshot}.
 *
 * - Strict: a field the template names that the data lacks is an error, not an empty string, and
 *   only the built-in helpers and `hostport` exist (`knownHelpersOnly`).
 * - No HTML escaping (`noEscape`): the output is a config file, not a web page.
 * - Registry data is hostile: every string in the context has its control characters removed, so no
 *   value can start a new line or directive; only instances with a valid address are `serving` or
 *   `draining` (see {@link isRoutableHost}). Other strings (names, tags, metadata) are text from the
 *   registry and should not be written where they would be syntax.
 *
 * @module
 */
import Handlebars from 'handlebars';
import type { ClusterTopology, ServiceRecord } from '../types.js';
import { escapeUnsafe, mapStrings, printable } from '../util/text.js';
import type { TrafficSnapshot } from './feed.js';
import { hostPort } from './verdict.js';

/** What a template sees. Records are the API's (`GET /service-discovery/services` items). */
export interface TemplateContext {
  /** Every record, sorted by id. */
  services: ServiceRecord[];
  /** Healthy and enabled: take new traffic. */
  serving: ServiceRecord[];
  /** An operator drain runs, or the instance is stopping: no new traffic, in-flight work finishes. */
  draining: ServiceRecord[];
  /** Unhealthy, starting, stopped, disabled or without a usable address. */
  out: ServiceRecord[];
  leader: ServiceRecord | null;
  topology: ClusterTopology;
  namespace: string;
}

/** A template that does not compile or render: one line naming the file and, when known, the line. */
export class TemplateError extends Error {
  override name = 'TemplateError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`template ${escapeUnsafe(file)}${line !== undefined ? ` line ${line}` : ''}: ${reason}`);
  }
}

export type CompiledTemplate = (context: TemplateContext) => string;

const OPTIONS = { strict: true, noEscape: true, knownHelpersOnly: true, knownHelpers: { hostport: true } } as const;

/** One Handlebars environment of our own: no helper or partial registered by anyone else leaks in. */
const env = Handlebars.create();
env.registerHelper('hostport', (record: unknown) => {
  const r = record as { host?: unknown; port?: unknown } | null;
  if (!r || typeof r.host !== 'string' || typeof r.port !== 'number') throw new Error('hostport expects a service record, e.g. {{hostport this}}');
  return hostPort(r.host, r.port);
});

/**
 * Compiles `source` (from `file`, for messages). Syntax errors, mismatched blocks and unknown
 * helpers are found here; a field missing from the data only when rendering.
 */
export function compileTemplate(source: string, file: string): CompiledTemplate {
  try {
    // precompile parses and compiles at once (compile() would wait for the first render).
    env.precompile(source, OPTIONS);
  } catch (err) {
    throw templateError(err, file);
  }
  const template = env.compile<TemplateContext>(source, OPTIONS);
  return (context) => {
    try {
      return template(context);
    } catch (err) {
      throw templateError(err, file);
    }
  };
}

/** The context of a snapshot, every string made printable. */
export function templateContext(snapshot: TrafficSnapshot, namespace: string): TemplateContext {
  const byId = new Map(snapshot.services.map((s) => [s.id, clean(s)]));
  const same = (list: readonly ServiceRecord[]) => list.map((r) => byId.get(r.id) ?? clean(r));
  return {
    services: same(snapshot.services),
    serving: same(snapshot.serving),
    draining: same(snapshot.draining),
    out: same(snapshot.out),
    leader: snapshot.leader ? (byId.get(snapshot.leader.id) ?? clean(snapshot.leader)) : null,
    topology: clean(snapshot.topology),
    namespace: printable(namespace),
  };
}

function clean<T>(value: T): T {
  return mapStrings(value, printable);
}

/** Handlebars' messages, on one line: `line 3: each doesn't match if`, `line 2: syntax error at "{{#each s}" (expecting …)`. */
function templateError(err: unknown, file: string): TemplateError {
  const e = err as { message?: unknown; lineNumber?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const parse = /^Parse error on line (\d+):\n(.*)\n.*\n(.*)$/s.exec(message);
  if (parse) {
    const expecting = /Expecting (.*), got (.*)$/.exec(parse[3]!);
    const wanted = expecting ? expecting[1]!.split(', ') : [];
    const detail = expecting ? ` (expecting ${wanted.slice(0, 4).join(', ')}${wanted.length > 4 ? ', …' : ''}; got ${expecting[2]})` : '';
    return new TemplateError(file, Number(parse[1]), `syntax error near ${JSON.stringify(printable(parse[2]!).slice(-40))}${detail}`);
  }
  // Handlebars appends " - LINE:COLUMN" to errors it can place.
  const placed = / - (\d+):(\d+)$/.exec(message);
  const line = typeof e?.lineNumber === 'number' ? e.lineNumber : placed ? Number(placed[1]) : undefined;
  const reason = message.replace(/ - \d+:\d+$/, '').replace(/ in \[object Object\]$/, '').split('\n')[0]!;
  return new TemplateError(file, line, reason);
}
