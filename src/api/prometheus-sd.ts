/**
 * Prometheus HTTP service discovery (`http_sd_configs`): the cluster view as a list of target
 * groups, one per instance, so one scrape config follows the fleet as instances join and leave.
 *
 * Which address is the target:
 * - `agent` (default): the instance's agent API (`apiUrl` of the record), where `/metrics` serves the
 *   proxy-stone-sd metrics. Instances whose agent publishes no API URL have nothing to scrape and are
 *   left out.
 * - `instance`: the Proxy-Stone instance itself (`host:port` of the record), for scraping its own metrics.
 *
 * Labels are a handful of stable fields as plain labels, and the rest as `__meta_proxy_stone_*`
 * labels, which Prometheus offers to relabelling and then drops: `role` or `enabled` as plain labels
 * would start a new series for every target at each leader change or disable.
 *
 * Every value comes from the registry: it is bounded and stripped of control characters here, so a
 * hostile record cannot put megabytes or terminal escapes into Prometheus's labels and alerts.
 *
 * @module
 */
import type { ServiceRecord } from '../types.js';
import { UNSAFE_CHARACTER } from '../util/text.js';

/** Which address of an instance Prometheus should scrape. */
export const PROMETHEUS_TARGET_KINDS = ['agent', 'instance'] as const;
export type PrometheusTargetKind = (typeof PROMETHEUS_TARGET_KINDS)[number];

/** One entry of the http_sd answer: `{"targets": ["host:port"], "labels": {...}}`. */
export interface PrometheusTargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** Longest label value sent, in characters; longer registry values are cut (ending in `…`). */
export const MAX_LABEL_VALUE_CHARS = 256;

/** Prefix of the labels offered to relabelling only. */
export const META_LABEL_PREFIX = '__meta_proxy_stone_';

/**
 * The http_sd answer for these services, sorted by service id.
 *
 * Plain labels: `service_id`, `service_name`, `region`, `zone`, `version`, `status`. Relabelling
 * labels (`__meta_proxy_stone_…`): `role`, `enabled`, `healthy` (healthy and enabled), `tags`
 * (`,a,b,`: match one with `.*,a,.*`), `instance` (host:port of the instance), `agent` (host:port of
 * its agent API, when it has one). An agent target served over HTTPS or under a path prefix also
 * gets `__scheme__` / `__metrics_path__`, so Prometheus scrapes where the agent really serves.
 */
export function prometheusTargets(services: readonly ServiceRecord[], target: PrometheusTargetKind = 'agent'): PrometheusTargetGroup[] {
  const groups: PrometheusTargetGroup[] = [];
  for (const service of [...services].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const instance = instanceAddress(service);
    const agent = agentEndpoint(service.apiUrl);
    const address = target === 'agent' ? agent?.address : instance;
    if (address === undefined) continue;
    const labels: Record<string, string> = {
      service_id: service.id,
      service_name: service.name,
      region: service.region,
      zone: service.zone,
      version: service.version,
      status: service.status,
      [`${META_LABEL_PREFIX}role`]: service.role,
      [`${META_LABEL_PREFIX}enabled`]: String(service.enabled),
      [`${META_LABEL_PREFIX}healthy`]: String(service.isHealthy),
      [`${META_LABEL_PREFIX}tags`]: service.tags.length > 0 ? `,${service.tags.join(',')},` : '',
    };
    if (instance !== undefined) labels[`${META_LABEL_PREFIX}instance`] = instance;
    if (agent !== undefined) labels[`${META_LABEL_PREFIX}agent`] = agent.address;
    if (target === 'agent' && agent !== undefined) {
      if (agent.scheme === 'https') labels.__scheme__ = 'https';
      if (agent.metricsPath !== '/metrics') labels.__metrics_path__ = agent.metricsPath;
    }
    for (const [name, value] of Object.entries(labels)) labels[name] = labelValue(value);
    groups.push({ targets: [address], labels });
  }
  return groups;
}

/** A host name, IPv4 address or bracketed IPv6 address: nothing else makes a scrape target. */
const HOST_RE = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,240}[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]{2,45}\])$/;

/** `host:port` of the instance, or undefined when the record's host is not a host name or address. */
function instanceAddress(service: ServiceRecord): string | undefined {
  const host = service.host.includes(':') && !service.host.startsWith('[') ? `[${service.host}]` : service.host;
  return service.port >= 1 && HOST_RE.test(host) ? `${host}:${service.port}` : undefined;
}

/** Where the agent's API answers: `host:port`, scheme and the path of its `/metrics`. */
function agentEndpoint(apiUrl: string | undefined): { address: string; scheme: 'http' | 'https'; metricsPath: string } | undefined {
  if (!apiUrl) return undefined;
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    return undefined;
  }
  // apiUrl comes from the registry: only plain http(s) URLs are followed, as everywhere else.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || url.search || url.hash || !HOST_RE.test(url.hostname)) return undefined;
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  // An explicit port: Prometheus 2 adds the scheme's default itself, Prometheus 3 no longer does.
  const address = `${url.hostname}:${url.port || (scheme === 'https' ? '443' : '80')}`;
  return { address, scheme, metricsPath: `${url.pathname.replace(/\/+$/, '')}/metrics` };
}

/**
 * Control and bidirectional-override characters, which would reach Prometheus's UI, logs and alert
 * notifications, and lone surrogates, which are not text at all.
 */
const UNSAFE_CHARS = new RegExp(`${UNSAFE_CHARACTER}|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]`, 'g');

/** A registry value made safe as a label value: no control characters, well-formed, bounded. */
function labelValue(value: string): string {
  const clean = value.replace(UNSAFE_CHARS, '\ufffd');
  if (clean.length <= MAX_LABEL_VALUE_CHARS) return clean;
  const chars = Array.from(clean);
  return chars.length <= MAX_LABEL_VALUE_CHARS ? clean : `${chars.slice(0, MAX_LABEL_VALUE_CHARS - 1).join('')}…`;
}
