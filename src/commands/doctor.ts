import { Flags } from '@oclif/core';
import { ClusterCommand, EXIT } from '../cli/cluster-command.js';
import type { DoctorResult } from '../cli/doctor-checks.js';
import { configFlag } from '../cli/setting-flags.js';

export type { DoctorResult };

/** Flags that are also agent settings, validated by the agent's own configuration loader. */
const CONFIG_FLAGS = [
  'endpoints',
  'namespace',
  'registry',
  'etcd-username',
  'etcd-password',
  'etcd-ca',
  'etcd-cert',
  'etcd-key',
  'registry-username',
  'registry-password',
  'registry-ca',
  'registry-cert',
  'registry-key',
  'health-url',
  'config',
] as const;

export default class Doctor extends ClusterCommand {
  static override summary = 'Check the setup: configuration, etcd, credentials, namespace, leader, local instance, clock.';
  static override description = `Runs each check in order and says what to do about each failure. The configuration is validated exactly as the agent would (flags, environment, --config file). Exits 1 when any check fails.
With --agent it checks that agent instead of this host's setup: its API, its /health, whether it reaches its registry with a current view, the leader, and what --api-key may do there (a read, and whether enable/disable would be allowed, without changing anything). The local configuration is then not loaded: that check says "skipped (checking an agent)".
Progress goes to stderr; --json prints {checks: [{name, ok, detail, hint?, skipped?}]} on stdout.`;

  static override examples = [
    '<%= config.bin %> doctor',
    'SERVICE_HOST=127.0.0.1 SERVICE_PORT=3001 <%= config.bin %> doctor --endpoints http://127.0.0.1:2379',
    '<%= config.bin %> doctor --health-url http://127.0.0.1:3001/health --json',
    '<%= config.bin %> doctor --agent http://127.0.0.1:8790 --api-key "$SERVICE_DISCOVERY_API_KEY"',
  ];

  static override flags = {
    'health-url': Flags.string({ summary: 'Health URL of the local Proxy-Stone instance to probe.', env: 'SERVICE_DISCOVERY_HEALTH_URL' }),
    config: configFlag,
  };

  async run(): Promise<DoctorResult> {
    const { flags } = await this.parse(Doctor);
    const configFlags = Object.fromEntries(CONFIG_FLAGS.filter((f) => this.onCommandLine(f)).map((f) => [f, flags[f]]));
    const { doctorChecks, resolveDoctorTarget } = await import('../cli/doctor-checks.js');
    const { runDoctorTasks } = await import('../cli/doctor-tasks.js');
    // A context's endpoints or agent name the target as much as the flags do.
    const context = this.chosenContext(flags)?.context;
    const targetDefaulted = !flags.endpoints?.trim() && !flags.agent?.trim() && context?.endpoints === undefined && context?.agent === undefined;
    const target = await resolveDoctorTarget(this.target(flags, { quiet: true }), targetDefaulted, configFlags);
    const plan = doctorChecks({ target, targetDefaulted, configFlags });
    try {
      const checks = await runDoctorTasks(plan.checks, { fancy: Boolean(process.stderr.isTTY) && !this.jsonEnabled() });
      if (checks.some((c) => !c.ok)) process.exitCode = EXIT.failure;
      return { checks };
    } finally {
      await plan.close();
    }
  }
}
