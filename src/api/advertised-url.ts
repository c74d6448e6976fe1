/**
 * The API URL peers and the CLI should use. An API bound to every interface (0.0.0.0, ::) listens on
 * no address of its own (the server reports loopback), so the instance's host (SERVICE_HOST) stands
 * in for it.
 */
export function advertisedApiUrl(listening: string, apiHost: string, serviceHost: string): string {
  if (!['0.0.0.0', '::', '[::]', ''].includes(apiHost)) return listening;
  const url = new URL(listening);
  url.hostname = serviceHost.includes(':') && !serviceHost.startsWith('[') ? `[${serviceHost}]` : serviceHost;
  return url.href.replace(/\/$/, '');
}
