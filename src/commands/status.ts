import { ClusterCommand, clusterNameFlag, EXIT } from '../cli/cluster-command.js';
import type { StatusResult } from '../cli/cluster-contract.js';

export type { StatusResult };

export default class Status extends ClusterCommand {
  static override summary = 'Show the state of the cluster (or of one agent).';
  static override description = `One shape either way: the cluster's name and namespace, the registry (whether it answers, its version and revision), the leader and the service counts. Against the registry (--endpoints: etcd, the default, or one redis:// URL) from one consistent listing; through an agent (--agent) as that agent sees the cluster, plus the agent's own GET /service-discovery/status under "agent" (the instance it registers, whether it leads, its view and lease).
Exits 4 when the registry (or agent) does not answer within --timeout, or the agent cannot reach the registry.`;

  static override examples = [
    '<%= config.bin %> status --endpoints http://127.0.0.1:2379',
    '<%= config.bin %> status --agent http://127.0.0.1:8790 --json',
  ];

  static override flags = {
    'cluster-name': clusterNameFlag,
  };

  async run(): Promise<StatusResult> {
    const { flags } = await this.parse(Status);
    const client = await this.connect(flags);
    const result = await client.status();
    if (!result.registry.reachable) process.exitCode = EXIT.unreachable;
    if (!this.jsonEnabled()) {
      const { renderStatus } = await import('../cli/views.js');
      this.log(renderStatus(result));
    }
    return result;
  }
}
