import { ClusterCommand, clusterNameFlag, EXIT } from '../cli/cluster-command.js';
import { UserError } from '../cli/errors.js';

export default class Dashboard extends ClusterCommand {
  static override summary = 'Watch the cluster live in the terminal and act on it: disable, enable, inspect.';
  static override description = `A full-screen view fed by the registry watch (--endpoints) or an agent's event stream (--agent): a header with the leader and totals, the services table (★ marks the leader), the topology by region and zone, and the latest events. Keys: ↑↓/jk move, Enter detail, d disable, e enable, f filter, / search, s sort, ? help, q quit.
It needs a terminal; for scripts use \`services list --json\` or \`events --json\`. See docs/dashboard.md.`;

  static override examples = [
    '<%= config.bin %> dashboard --endpoints http://127.0.0.1:2379',
    '<%= config.bin %> dashboard --agent http://127.0.0.1:8790 --api-key "$SERVICE_DISCOVERY_API_KEY"',
  ];

  static override enableJsonFlag = false;

  static override flags = {
    'cluster-name': clusterNameFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Dashboard);
    if (!process.stdout.isTTY || !process.stdin.isTTY) {
      throw new UserError(
        `the dashboard needs a terminal (${process.stdout.isTTY ? 'stdin' : 'stdout'} is not one); for scripts use \`proxy-stone-sd services list --json\` or \`proxy-stone-sd events --json\``,
        EXIT.usage,
      );
    }
    const target = this.target(flags);
    // ink reads CI at import and then prints only the last frame; on a terminal a person is watching.
    delete process.env.CI;
    delete process.env.CONTINUOUS_INTEGRATION;
    // React's development build costs several times the frame time (bench/dashboard-frame.ts --dev).
    process.env.NODE_ENV ??= 'production';
    const [{ runDashboard }, { colorLevel }, { cliActor }] = await Promise.all([
      import('../ui/run-dashboard.js'),
      import('../cli/render.js'),
      import('../cli/service-toggle.js'),
    ]);
    const { parseMinHealthy } = await import('../cluster/capacity.js');
    const minRaw = process.env.SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE;
    let minHealthy;
    try {
      minHealthy = minRaw !== undefined && minRaw !== '' ? parseMinHealthy(minRaw) : undefined;
    } catch (err) {
      throw new UserError(`SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE: ${(err as Error).message.replace(/^min-healthy-per-zone: /, '')}`, EXIT.usage);
    }
    await runDashboard({ target, actor: cliActor(), color: colorLevel() > 0, ...(minHealthy ? { minHealthy } : {}) });
  }
}
