import type { ClusterClient, ServiceDetails } from './cluster-contract.js';

export interface DescribeOptions {
  /** Newest audit entries about the service (default 20). */
  auditLimit?: number;
  /** Bound on following the service's own agent for its probe history (default 5000). */
  timeoutMs?: number;
  /** Told when the history could not be fetched. */
  onWarning?: (message: string) => void;
}

/**
 * Everything about one service. When the source has no probe history (etcd, or an agent asked about
 * another agent's service) and the service advertises its agent, the history is fetched from there,
 * best effort and without the API key.
 *
 * @throws ServiceNotFoundError when the id is not registered
 */
export async function describeService(client: ClusterClient, id: string, options: DescribeOptions = {}): Promise<ServiceDetails> {
  const service = await client.getService(id);
  const [health, intent, audit] = await Promise.all([
    client.getServiceHealth(id),
    client.getIntent(id),
    client.audit({ serviceId: id, limit: options.auditLimit ?? 20 }),
  ]);
  let historyUnavailable: string | undefined;
  if (health.history.length === 0 && health.historyUrl) {
    try {
      const { fetchServiceHealth } = await import('./agent-client.js');
      // Capped: the URL may name a host this machine cannot reach, and history is a nicety.
      const remote = await fetchServiceHealth(health.historyUrl, Math.min(options.timeoutMs ?? 5000, 2000));
      if (remote.serviceId === id) health.history = remote.history;
    } catch (err) {
      historyUnavailable = `probe history unavailable (agent API not reachable: ${(err as Error).message})`;
      options.onWarning?.(`no health history: ${health.historyUrl} did not answer (${(err as Error).message})`);
    }
  }
  const { detectionBudget } = await import('../cluster/detection-budget.js');
  const details: ServiceDetails = { service, health, intent, audit: audit.entries, budget: service.checks ? detectionBudget(service.checks, service.health.checks) : null };
  if (historyUnavailable) details.historyUnavailable = historyUnavailable;
  return details;
}
