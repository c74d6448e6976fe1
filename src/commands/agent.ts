import { BaseCommand } from '../cli/base-command.js';
import { configFlag, settingFlags } from '../cli/setting-flags.js';

export default class Agent extends BaseCommand {
  static override summary = 'Run the service-discovery agent beside one Proxy-Stone instance.';
  static override description = `Registers the local instance in the registry under a lease, health-checks it over HTTP, contends for leadership, keeps a live view of the cluster and serves the HTTP API, SSE events and Prometheus metrics, until SIGTERM or SIGINT.

On SIGTERM it drains, resigns leadership and revokes its lease, so its entry leaves the registry at once.
Configuration: flag > environment variable > --config file > default; every setting has both a flag and an env var.
With no endpoints set, the registry is etcd at http://127.0.0.1:2379; the in-memory registry only with --registry memory.`;

  static override examples = [
    {
      description: 'Against etcd on this host (http://127.0.0.1:2379, the default when no endpoints are set)',
      command: '<%= config.bin %> agent --service-port 3001',
    },
    {
      description: 'Standalone, on an in-memory registry that shares nothing with other agents (it logs a registry.memory warning)',
      command: '<%= config.bin %> agent --registry memory --service-port 3001',
    },
    {
      description: 'Against etcd, with the seed\'s environment variables',
      command:
        'SERVICE_DISCOVERY_ENDPOINTS=http://127.0.0.1:2379 SERVICE_HOST=127.0.0.1 SERVICE_PORT=3001 <%= config.bin %> agent --api-port 8791',
    },
    {
      description: 'Fast detection for a test cluster',
      command:
        '<%= config.bin %> agent --endpoints http://127.0.0.1:2379 --service-port 3001 --health-interval 1 --health-timeout 1 --health-retries 2 --grace-period 5 --leader-ttl 3 --renew-interval 1',
    },
  ];

  static override enableJsonFlag = false;
  static override flags = { config: configFlag, ...settingFlags() };

  async run(): Promise<void> {
    const { flags } = await this.parse(Agent);
    const { runAgent } = await import('../agent/run.js');
    const code = await runAgent({ flags });
    this.exit(code);
  }
}
