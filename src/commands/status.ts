import { ClusterCommand, EXIT } from '../cli/cluster-command.js';
import { isRegistrySummary, type StatusResult } from '../cli/cluster-contract.js';

export type { StatusResult };

export default class Status extends ClusterCommand {
  static override summary = 'Show the state of the cluster (or of one agent).';
  static override description = `Against the registry (--endpoints: etcd, the default, or one redis:// URL): whether the registry answers, its version and revision, the leader and the service counts, from one consistent listing.
Against an agent (--agent): the agent's own GET /service-discovery/status, that is the instance it registers, whether it leads, and its view of the registry.
Exits 4 when the registry (or agent) does not answer within --timeout.`;

  static override examples = [
    '<%= config.bin %> status --endpoints http://127.0.0.1:2379',
    '<%= config.bin %> status --agent http://127.0.0.1:8790 --json',
  ];

  async run(): Promise<StatusResult> {
    const { flags } = await this.parse(Status);
    const client = await this.connect(flags);
    const result = await client.status();
    if (isRegistrySummary(result) && !result.registry.reachable) process.exitCode = EXIT.unreachable;
    if (!this.jsonEnabled()) {
      const { renderStatus } = await import('../cli/views.js');
      this.log(renderStatus(result));
    }
    return result;
  }
}
