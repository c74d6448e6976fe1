/**
 * How the `context` commands' results look to a person. Values come from a file anyone may have
 * edited: made terminal-safe first, and cut like registry data.
 *
 * @module
 */
import { terminalSafe } from '../util/text.js';
import type { ContextListResult, ContextShowResult, ContextView } from './contexts.js';
import { c, fields, table } from './render.js';

/** Where a context points: its endpoints, its agent, or the default etcd. */
function targetOf(context: ContextView): string {
  if (context.agent !== undefined) return `agent ${context.agent}`;
  if (context.endpoints !== undefined) return `${context.registry ?? (context.endpoints.some((e) => /^rediss?:/i.test(e)) ? 'redis' : 'etcd')} ${context.endpoints.join(',')}`;
  return '(default etcd)';
}

export function renderContextList(result: ContextListResult): string {
  result = terminalSafe(result);
  if (result.contexts.length === 0) return `No contexts in ${result.file}; add one with: proxy-stone-sd context set NAME --endpoints URLS`;
  return table(
    ['current', 'name', 'target', 'namespace'],
    result.contexts.map((ctx) => [ctx.current ? c.bold('*') : '', ctx.name, targetOf(ctx), ctx.namespace ?? '']),
  );
}

export function renderContext(result: ContextShowResult): string {
  const ctx = terminalSafe(result.context);
  const files = (group: object | undefined) =>
    group && Object.keys(group).length ? Object.entries(group).map(([k, v]) => `${k} ${v}`).join(', ') : null;
  return fields([
    ['context', `${ctx.name}${ctx.current ? ' (current)' : ''}`],
    ['file', terminalSafe(result.file)],
    ['target', targetOf(ctx)],
    ['namespace', ctx.namespace ?? null],
    ['api key file', ctx.apiKeyFile ?? null],
    ['agent TLS', files(ctx.agentTls)],
    ['credentials', files(ctx.credentials)],
  ]);
}
