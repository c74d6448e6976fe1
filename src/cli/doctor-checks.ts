/**
 * `doctor`'s checks as plain async functions over a shared context, so the command only decides how
 * to show them (listr2) and tests can run them without a terminal. Each failure says what to do.
 *
 * @module
 */
import type { FlagValue } from '../config/load.js';
import type { ClusterTarget } from './cluster-contract.js';
import { agentChecks } from './doctor-agent-checks.js';
import type { DoctorOptions, DoctorPlan } from './doctor-check.js';
import { registryChecks } from './doctor-registry-checks.js';

export type { DoctorCheck, DoctorCheckResult, DoctorOptions, DoctorPlan, DoctorResult } from './doctor-check.js';

/**
 * Builds the list of checks: through the agent's API for an agent target, else of this host's
 * configuration and registry. They share state, so run them in order.
 */
export function doctorChecks(options: DoctorOptions): DoctorPlan {
  const plan = options.target.kind === 'agent' ? agentChecks(options.target, options.configFlags) : registryChecks(options);
  const context = options.target.context;
  // Which context named the target, first: a person reading a failure must know where its values came from.
  if (context) plan.checks.unshift({ name: 'context', run: async () => ({ ok: true, detail: `${context.name} (${context.file})` }) });
  return plan;
}

/**
 * With no target named, the configuration (a --config file) may name the registry: a Redis one needs
 * Redis checks from the start, so it is resolved before the plan is made. An invalid configuration is
 * left to the configuration check to report.
 */
export async function resolveDoctorTarget(
  target: ClusterTarget,
  targetDefaulted: boolean,
  configFlags: Record<string, FlagValue>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClusterTarget> {
  if (!targetDefaulted || target.kind !== 'registry') return target;
  try {
    const { loadConfig } = await import('../config/load.js');
    const d = (await loadConfig({ flags: configFlags, env })).config.cluster.discovery;
    if (d.registry !== 'redis') return target;
    return {
      ...target,
      registry: 'redis',
      endpoints: d.endpoints,
      namespace: d.namespace,
      ...(d.username !== undefined ? { username: d.username } : {}),
      ...(d.password !== undefined ? { password: d.password } : {}),
      ...(d.tls ? { tls: d.tls } : {}),
    };
  } catch {
    return target;
  }
}
