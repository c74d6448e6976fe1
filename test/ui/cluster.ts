/**
 * A small real cluster for the dashboard's tests (test/helpers/agent-cluster.ts): in-process agents on
 * the shared etcd, each beside a sample upstream that can be told to fail, each serving the agent API
 * (so the detail view has a probe history to fetch). Checks every 250 ms, one failure is unhealthy, so
 * a change reaches the screen quickly.
 */
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import { startAgentCluster, type AgentCluster, type AgentNode } from '../helpers/agent-cluster.js';

export { waitFor } from '../helpers/agent-cluster.js';

export const OPERATOR_KEY = 'ui-test-operator-key';

export type UiNode = AgentNode<SampleUpstream>;
export type UiCluster = AgentCluster<SampleUpstream>;

/** Starts `count` agents (`ui-node-1`, …) in a fresh namespace and waits until every one sees all healthy with a leader. */
export function startUiCluster(count = 3, options: { etcd?: { endpoint: string; endpoints: string[] }; namespace?: string } = {}): Promise<UiCluster> {
  return startAgentCluster(count, {
    idPrefix: 'ui-node',
    upstream: startSampleUpstream,
    apiKey: OPERATOR_KEY,
    namespaceTag: 'ui',
    healthCheck: { interval: 0.25, retries: 1 },
    version: '1.4.2',
    ...options,
  });
}
