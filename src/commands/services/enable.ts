import { ServiceToggleCommand, type ToggleResult } from '../../cli/service-toggle.js';

/** One service: the API's `{serviceId, enabled, changed, reasonUpdated?, previousReason?, service?}`; with --all: `{enabled, matched, changed, results, kept (always empty: enabling has no guard), failed}`. */
export type ServicesEnableResult = ToggleResult;

export default class ServicesEnable extends ServiceToggleCommand {
  static override summary = 'Put a disabled service back into traffic.';
  static override description = `Records "enabled" for the service in etcd and an audit entry; it takes traffic again as soon as its health checks pass.
Idempotent: enabling an enabled service changes nothing, says "already enabled (no change)" and exits 0 (or "already enabled; reason updated", --json reasonUpdated: true, when a new --reason replaces the reason of an enable recorded earlier). An unknown id exits 3.
With --all (narrowed by --region, --zone, --status) it asks for confirmation on a terminal; elsewhere it needs --yes, or exits 2.`;

  static override examples = [
    '<%= config.bin %> services enable proxy-stone-2',
    '<%= config.bin %> services enable proxy-stone-2 --reason "deploy done" --json',
    '<%= config.bin %> services enable --all --zone us-east-1b --yes',
  ];

  // Spelled out per command: oclif's parse copies only a command class's own static properties.
  static override args = ServiceToggleCommand.args;
  static override flags = ServiceToggleCommand.flags;

  protected readonly enabled = true;

  override async run(): Promise<ServicesEnableResult> {
    return super.run();
  }
}
