import { ServiceToggleCommand, type ToggleResult } from '../../cli/service-toggle.js';

/** One service: the API's `{serviceId, enabled, changed, reasonUpdated?, previousReason?, service?}`; with --all: `{enabled, matched, changed, results, failed}`. */
export type ServicesDisableResult = ToggleResult;

export default class ServicesDisable extends ServiceToggleCommand {
  static override summary = 'Take a service out of traffic (operator intent, kept across restarts).';
  static override description = `Records "disabled" for the service in etcd (<namespace>/admin/<id>, no lease: it survives agent and etcd restarts) and an audit entry. Routing by healthy services skips it from then on: isHealthy becomes false while its health checks go on.
Idempotent: disabling a disabled service changes nothing, says "already disabled (no change)" and exits 0; with a new --reason it keeps the state but stores that reason, says "already disabled; reason updated" (--json: reasonUpdated: true, previousReason) and exits 0. An unknown id exits 3.
With --all (narrowed by --region, --zone, --status) it asks for confirmation on a terminal; elsewhere it needs --yes, or exits 2.`;

  static override examples = [
    '<%= config.bin %> services disable proxy-stone-2 --reason "deploy 1.4.2"',
    '<%= config.bin %> services disable proxy-stone-2 --agent http://127.0.0.1:8790 --api-key "$SERVICE_DISCOVERY_API_KEY" --json',
    '<%= config.bin %> services disable --all --zone us-east-1b --reason "zone maintenance" --yes',
  ];

  // Spelled out per command: oclif's parse copies only a command class's own static properties.
  static override args = ServiceToggleCommand.args;
  static override flags = ServiceToggleCommand.flags;

  protected readonly enabled = false;

  override async run(): Promise<ServicesDisableResult> {
    return super.run();
  }
}
