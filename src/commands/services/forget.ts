import { Args, Flags } from '@oclif/core';
import { ClusterCommand } from '../../cli/cluster-command.js';
import type { ForgetSummary } from '../../cli/cluster-contract.js';
import { EXIT, UserError } from '../../cli/errors.js';
import { cliActor, reasonProblem } from '../../cli/service-toggle.js';

/** The API's forget answer: `{serviceId, removed: {intent, healthHold}, live}`. */
export type ServicesForgetResult = ForgetSummary;

export default class ServicesForget extends ClusterCommand {
  static override summary = 'Forget a retired service id: remove its operator intent and flap-damping hold (audited).';
  static override description = `An instance's record goes with its lease, but its operator intent (<namespace>/admin/<id>) and flap-damping hold (<namespace>/health/<id>) are kept without one, so that they survive restarts; once the id is retired for good they stay forever, and a new instance reusing the id would inherit them. This removes both in one transaction with an audit entry (the audit trail itself is kept).
A registered id (its record under a live lease) is refused with exit 5 unless --force: its intent is then removed all the same, which enables it. An id the registry holds nothing about exits 3.`;

  static override examples = [
    { description: 'Once its instance is gone for good (refused with exit 5 while it still runs):', command: '<%= config.bin %> services forget proxy-stone-3 --reason "host decommissioned"' },
    { description: 'Reset a running instance to no intent (enabled), audited as forced:', command: '<%= config.bin %> services forget proxy-stone-2 --force --json' },
  ];

  static override args = { id: Args.string({ description: 'Service id, as shown by services list or audit.', required: true }) };

  static override flags = {
    force: Flags.boolean({ summary: 'Forget the id even though it is registered (audited as forced).' }),
    reason: Flags.string({ summary: 'Why, recorded in the audit trail.' }),
  };

  async run(): Promise<ServicesForgetResult> {
    const { args, flags } = await this.parse(ServicesForget);
    const reasonError = flags.reason === undefined ? undefined : reasonProblem(flags.reason);
    if (reasonError) throw new UserError(`--reason: ${reasonError}`, EXIT.usage);
    const client = await this.connect(flags);
    const result = await client.forget(args.id, {
      ...(flags.force ? { force: true } : {}),
      ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
      actor: cliActor(),
    });
    if (!this.jsonEnabled()) {
      const { renderForget } = await import('../../cli/views.js');
      this.log(renderForget(result));
    }
    return result;
  }
}
