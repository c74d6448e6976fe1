import { Flags } from '@oclif/core';
import { ClusterCommand } from '../../cli/cluster-command.js';
import type { ServiceList } from '../../cli/cluster-contract.js';
import { selectionFlags, selectionOf } from '../../cli/selection-flags.js';
import { SERVICE_STATUSES } from '../../types.js';

/** The seed's `GET /service-discovery/services` body. */
export type ServicesListResult = ServiceList;

export default class ServicesList extends ClusterCommand {
  static override summary = 'List registered services.';
  static override description = `One row per registered instance: address, region/zone, health status, role, whether an operator disabled it, and its last health check.
With --json the output is the agent API's GET /service-discovery/services body: {services, total, healthy, unhealthy}; "healthy" counts services that take traffic (healthy and enabled).`;

  static override examples = [
    '<%= config.bin %> services list --endpoints http://127.0.0.1:2379',
    '<%= config.bin %> services list --region us-east-1 --healthy',
    '<%= config.bin %> services list --status unhealthy --json',
    '<%= config.bin %> services list -l team=edge,env!=staging --tag canary --json',
    '<%= config.bin %> services list --agent http://127.0.0.1:8790',
  ];

  static override flags = {
    status: Flags.string({ summary: 'Only services with this status.', options: [...SERVICE_STATUSES] }),
    region: Flags.string({ summary: 'Only services in this region.' }),
    zone: Flags.string({ summary: 'Only services in this zone.' }),
    healthy: Flags.boolean({ summary: 'Only services taking traffic (healthy and enabled).' }),
    ...selectionFlags(),
  };

  async run(): Promise<ServicesListResult> {
    const { flags } = await this.parse(ServicesList);
    const client = await this.connect(flags);
    const result = await client.listServices({
      status: flags.status as (typeof SERVICE_STATUSES)[number] | undefined,
      region: flags.region,
      zone: flags.zone,
      healthy: flags.healthy,
      ...selectionOf(flags),
    });
    if (!this.jsonEnabled()) {
      const { renderServiceList } = await import('../../cli/views.js');
      this.log(renderServiceList(result));
    }
    return result;
  }
}
