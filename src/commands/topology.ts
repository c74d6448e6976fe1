import { ClusterCommand } from '../cli/cluster-command.js';
import { selectionFlags, selectionOf } from '../cli/selection-flags.js';
import type { ClusterTopology } from '../types.js';

/** The seed's `GET /service-discovery/topology` body (plus servicesByZone and disabledServices). */
export type TopologyResult = ClusterTopology;

export default class Topology extends ClusterCommand {
  static override summary = 'Show the cluster as a tree: region, zone, instance, with the leader marked.';
  static override description = `Each region and zone shows how many instances it holds and how many take traffic; each instance shows its status (coloured on a terminal), whether it is disabled, and ★ (leader) on the leader.
-l/--label and --tag narrow it to the services whose metadata and tags match (the leader shown is still the cluster's).
With --json the output is the agent API's GET /service-discovery/topology body.`;

  static override examples = [
    '<%= config.bin %> topology',
    '<%= config.bin %> topology --agent http://127.0.0.1:8790',
    '<%= config.bin %> topology --json',
    '<%= config.bin %> topology -l team=edge',
  ];

  static override flags = { ...selectionFlags() };

  async run(): Promise<TopologyResult> {
    const { flags } = await this.parse(Topology);
    const client = await this.connect(flags);
    const selection = selectionOf(flags);
    if (this.jsonEnabled()) return client.topology(selection);
    const [topology, list] = await Promise.all([client.topology(selection), client.listServices(selection)]);
    const { renderTopology } = await import('../cli/views.js');
    this.log(renderTopology(topology, list.services));
    return topology;
  }
}
