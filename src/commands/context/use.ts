import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { contextsPath, useContext, type ContextChangeResult } from '../../cli/contexts.js';

export type ContextUseResult = ContextChangeResult;

export default class ContextUse extends BaseCommand {
  static override summary = 'Make a context the current one, used by every later command.';
  static override description = `Writes "current: NAME" to the contexts file. Flags and environment variables still beat it (--endpoints, --agent, --namespace, SERVICE_DISCOVERY_ENDPOINTS, ...). Exits 2 for an unknown name, listing the known ones.`;

  static override examples = ['<%= config.bin %> context use prod'];

  static override args = {
    name: Args.string({ description: 'Context name (see context list).', required: true }),
  };

  async run(): Promise<ContextUseResult> {
    const { args } = await this.parse(ContextUse);
    const result = useContext(contextsPath(), args.name);
    this.log(`Now using context ${result.name} (${result.file}).`);
    return result;
  }
}
