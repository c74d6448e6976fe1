import { Args, Flags } from '@oclif/core';
import { ClusterCommand } from '../../cli/cluster-command.js';
import type { ServiceDetails } from '../../cli/cluster-contract.js';

/** The record, its health (with the probe history when its agent serves it), the operator intent and its audit trail. */
export type ServicesShowResult = ServiceDetails;

export default class ServicesShow extends ClusterCommand {
  static override summary = 'Show one service: record, health history, operator intent and audit trail.';
  static override description = `The probe history lives in the memory of the service's own agent: through --agent it comes from that agent's API; through etcd the CLI asks the agent URL the service advertises (without your API key) and shows none when it does not answer.
Exits 3 when no service has this id.`;

  static override examples = [
    '<%= config.bin %> services show proxy-stone-1',
    '<%= config.bin %> services show proxy-stone-1 --agent http://127.0.0.1:8790 --json',
  ];

  static override args = { id: Args.string({ description: 'Service id, as shown by services list.', required: true }) };
  static override flags = {
    'audit-limit': Flags.integer({ summary: 'Newest audit entries to show.', default: 20, min: 1, max: 1000 }),
  };

  async run(): Promise<ServicesShowResult> {
    const { args, flags } = await this.parse(ServicesShow);
    const client = await this.connect(flags);
    const { describeService } = await import('../../cli/service-details.js');
    const result = await describeService(client, args.id, {
      auditLimit: flags['audit-limit'],
      timeoutMs: Math.round(flags.timeout * 1000),
      onWarning: (m) => this.warnLine(m),
    });
    if (!this.jsonEnabled()) {
      const { renderServiceDetails } = await import('../../cli/views.js');
      this.log(renderServiceDetails(result));
    }
    return result;
  }
}
