import { ClusterCommand } from '../../cli/cluster-command.js';
import type { LeaderInfo } from '../../cluster/leader.js';

/** `{leaderId, fencingRevision, term, since, candidates, resignRequest}`: the API's GET /service-discovery/leader body. */
export type LeaderResult = LeaderInfo;

export default class Leader extends ClusterCommand {
  static override summary = 'Show the leader, its term and fencing revision, and who is next in line.';
  static override description = `The leader is the election candidate with the lowest create revision; that revision is its fencing revision (every leader-only write compares it) and numbers its term. "term" and "since" come from <namespace>/leader, which the leader writes when it takes office (shown as not recorded until then).
With --json the output is the agent API's GET /service-discovery/leader body. To move leadership: leader resign.`;

  static override examples = ['<%= config.bin %> leader', '<%= config.bin %> leader --json', '<%= config.bin %> leader --agent http://127.0.0.1:8790'];

  async run(): Promise<LeaderResult> {
    const { flags } = await this.parse(Leader);
    const client = await this.connect(flags);
    const info = await client.leader();
    if (!this.jsonEnabled()) {
      const { renderLeader } = await import('../../cli/views.js');
      this.log(renderLeader(info));
    }
    return info;
  }
}
