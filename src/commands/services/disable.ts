import { Flags } from '@oclif/core';
import { parseMinHealthy } from '../../cluster/capacity.js';
import type { SetEnabledRequest } from '../../cli/cluster-contract.js';
import { EXIT, UserError } from '../../cli/errors.js';
import { ServiceToggleCommand, type ToggleResult } from '../../cli/service-toggle.js';
import { parseDuration } from '../../util/duration.js';

/** One service: the API's `{serviceId, enabled, changed, reasonUpdated?, previousReason?, service?}`; with --all: `{enabled, matched, changed, results, kept, failed}`. */
export type ServicesDisableResult = ToggleResult;

export default class ServicesDisable extends ServiceToggleCommand {
  static override summary = 'Take a service out of traffic (operator intent, kept across restarts).';
  static override description = `Records "disabled" for the service in etcd (<namespace>/admin/<id>, no lease: it survives agent and etcd restarts) and an audit entry. Routing by healthy services skips it from then on: isHealthy becomes false at once while its health checks go on.
The instance first drains (adminState "draining") until its agent's drain probe says idle or --drain-timeout passes, then counts as "disabled". --for makes the disable temporary: at its end the leader re-enables the service and audits it (readers treat it as enabled from that moment even if no leader is up).
Capacity guard: a disable that would leave the service's region or zone with fewer healthy enabled instances than --min-healthy-per-zone (default 1) is refused with exit 5; --force overrides it and is audited as forced. Disabling an instance that takes no traffic (unhealthy, already disabled) is always allowed.
Idempotent: disabling a disabled service changes nothing, says "already disabled (no change)" and exits 0; with a new --reason it keeps the state but stores that reason, says "already disabled; reason updated" (--json: reasonUpdated: true, previousReason) and exits 0. An unknown id exits 3.
With --all (narrowed by --region, --zone, --status) it asks for confirmation on a terminal; elsewhere it needs --yes, or exits 2. The guard judges one service at a time: those it refuses are kept ("kept by the capacity guard", --json: kept), and the command exits 5 if nothing else failed; any other failure decides the exit code instead.`;

  static override examples = [
    '<%= config.bin %> services disable proxy-stone-2 --reason "deploy 1.4.2"',
    '<%= config.bin %> services disable proxy-stone-2 --reason "kernel patch" --for 30m --drain-timeout 1m',
    '<%= config.bin %> services disable proxy-stone-2 --reason "last one in the zone, on purpose" --force',
    '<%= config.bin %> services disable proxy-stone-2 --agent http://127.0.0.1:8790 --api-key "$SERVICE_DISCOVERY_API_KEY" --json',
    '<%= config.bin %> services disable --all --zone us-east-1b --reason "zone maintenance" --yes --force',
  ];

  // Spelled out per command: oclif's parse copies only a command class's own static properties.
  static override args = ServiceToggleCommand.args;
  static override flags = {
    ...ServiceToggleCommand.flags,
    for: Flags.string({ summary: 'Re-enable automatically after this long (e.g. 30m, 2h); the leader does it and audits it.' }),
    'drain-timeout': Flags.string({
      summary: 'How long the instance may drain before it counts as disabled (default 30s; 0 = no drain phase).',
    }),
    force: Flags.boolean({ summary: 'Disable even if the capacity guard refuses it (audited as forced).' }),
    'min-healthy-per-zone': Flags.string({
      summary: 'Capacity guard: healthy enabled instances to leave per region and zone, a count or a percentage (default 1; 0 = off).',
      env: 'SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE',
    }),
  };

  protected readonly enabled = false;

  override async run(): Promise<ServicesDisableResult> {
    return super.run();
  }

  protected override requestOptions(flags: Record<string, unknown>): Omit<SetEnabledRequest, 'reason' | 'actor'> {
    const out: Omit<SetEnabledRequest, 'reason' | 'actor'> = {};
    const duration = (flag: string): number | undefined => {
      const raw = flags[flag];
      if (typeof raw !== 'string') return undefined;
      try {
        return parseDuration(raw);
      } catch (err) {
        throw new UserError(`--${flag}: ${(err as Error).message}`, EXIT.usage);
      }
    };
    const forSeconds = duration('for');
    if (forSeconds !== undefined) {
      if (forSeconds < 1) throw new UserError('--for: expected a duration of at least 1s (e.g. 30m)', EXIT.usage);
      out.expiresAt = Date.now() + Math.round(forSeconds * 1000);
    }
    const drain = duration('drain-timeout');
    if (drain !== undefined) {
      if (drain > 86400) throw new UserError('--drain-timeout: expected at most 24h', EXIT.usage);
      out.drainTimeout = drain;
    }
    if (flags.force === true) out.force = true;
    if (typeof flags['min-healthy-per-zone'] === 'string') {
      try {
        out.minHealthy = parseMinHealthy(flags['min-healthy-per-zone']);
      } catch (err) {
        throw new UserError(`--${(err as Error).message}`, EXIT.usage);
      }
    }
    return out;
  }
}
