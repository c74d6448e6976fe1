/**
 * Just enough PromQL to find the metric names an expression reads, and the expressions of a Grafana
 * dashboard and of a Prometheus rule file.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/** Grafana's built-in interval variables, and a value that keeps an expression valid PromQL. */
export const GRAFANA_VARIABLES: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
};

/** Replaces Grafana variables (`$__rate_interval`, `${job}`, `$instance`) with PromQL-valid values. */
export function substituteGrafanaVariables(expr: string, values: Readonly<Record<string, string>> = {}): string {
  const all = { ...GRAFANA_VARIABLES, ...values };
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    return all[name] ?? '.*';
  });
}

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless',
  'inf', 'nan', 'start', 'end',
]);

/** Metric names an expression selects (not functions, aggregations, labels or keywords). */
export function metricNames(expr: string): string[] {
  // Grafana's label_values(metric, label) names its metric as the first argument.
  const labelValues = /^\s*label_values\(\s*([A-Za-z_:][\w:]*)/.exec(expr);
  if (labelValues) return [labelValues[1]!];
  let s = substituteGrafanaVariables(expr);
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const name = m[1]!;
    if (!KEYWORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names];
}

/** One PromQL expression of a dashboard, with where it is. */
export interface DashboardExpr {
  where: string;
  expr: string;
}

export interface GrafanaPanel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Array<{ expr?: string; refId?: string; datasource?: { uid?: string } }>;
  panels?: GrafanaPanel[];
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  panels: GrafanaPanel[];
  templating?: { list: Array<{ name: string; type: string; query?: string | { query?: string }; definition?: string }> };
}

export function readDashboard(file: string): GrafanaDashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as GrafanaDashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression: panel targets and query variables. */
export function dashboardExprs(dashboard: GrafanaDashboard): DashboardExpr[] {
  const out: DashboardExpr[] = [];
  for (const p of allPanels(dashboard)) {
    for (const t of p.targets ?? []) {
      if (t.expr) out.push({ where: `panel "${p.title ?? p.id}" ${t.refId ?? ''}`.trim(), expr: t.expr });
    }
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q) out.push({ where: `variable $${v.name}`, expr: q });
  }
  return out;
}

/** Expressions of a Prometheus rule file. */
export function ruleExprs(file: string): DashboardExpr[] {
  const doc = parseYaml(readFileSync(file, 'utf8')) as { groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

/** Metric families of a Prometheus text exposition, by name, with their type. */
export function exposedFamilies(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1]!, m[2]!);
  return families;
}

/** Whether `name` is a series of one of `families` (histogram/summary `_bucket`/`_sum`/`_count` included). */
export function isExposed(name: string, families: ReadonlyMap<string, string>): boolean {
  if (families.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!m) return false;
  const kind = families.get(m[1]!);
  return kind === 'histogram' || (kind === 'summary' && m[2] !== 'bucket');
}
