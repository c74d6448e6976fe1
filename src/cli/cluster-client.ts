/**
 * Opens the CLI's {@link ClusterClient} for a target. The implementations are imported here only, on
 * demand, so a command loads the one it uses (and `--help` neither); the contract they share is in
 * cluster-contract.ts, which they import, so no import runs back from them to this module.
 *
 * @module
 */
import type { ClusterClient, ClusterTarget } from './cluster-contract.js';

/** Opens the client for a target, loading only that implementation's modules. */
export async function openClusterClient(target: ClusterTarget): Promise<ClusterClient> {
  if (target.kind === 'agent') {
    const { AgentClient } = await import('./agent-client.js');
    return new AgentClient(target);
  }
  const { RegistryClient } = await import('./registry-client.js');
  return new RegistryClient(target);
}
