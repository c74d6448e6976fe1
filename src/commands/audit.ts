import { Flags } from '@oclif/core';
import { ClusterCommand } from '../cli/cluster-command.js';
import type { AuditResult } from '../cli/cluster-contract.js';

/** The agent API's `GET /service-discovery/audit` body: `{entries}`, newest first. */
export type AuditCommandResult = AuditResult;

export default class Audit extends ClusterCommand {
  static override summary = 'Show the management trail: who enabled or disabled what, when and why.';
  static override description = `Newest first. Every enable and disable is recorded, including the ones that changed nothing ("changed: no"), and so are services forget (action forget) and leader resign (action resign, NOTE "term N"). The agents keep the newest 1000 entries for at most 30 days.`;

  static override examples = [
    '<%= config.bin %> audit',
    '<%= config.bin %> audit --service proxy-stone-2 --limit 5',
    '<%= config.bin %> audit --agent http://127.0.0.1:8790 --json',
  ];

  static override flags = {
    service: Flags.string({ summary: 'Only entries about this service id.' }),
    limit: Flags.integer({ summary: 'Newest entries to show.', default: 50, min: 1, max: 1000 }),
  };

  async run(): Promise<AuditCommandResult> {
    const { flags } = await this.parse(Audit);
    const client = await this.connect(flags);
    const result = await client.audit({ ...(flags.service ? { serviceId: flags.service } : {}), limit: flags.limit });
    if (!this.jsonEnabled()) {
      const { renderAuditTable } = await import('../cli/views.js');
      this.log(renderAuditTable(result.entries));
    }
    return result;
  }
}
