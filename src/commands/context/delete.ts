import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { contextsPath, deleteContext, type ContextChangeResult } from '../../cli/contexts.js';

export type ContextDeleteResult = ContextChangeResult;

export default class ContextDelete extends BaseCommand {
  static override summary = 'Remove a context from the contexts file.';
  static override description = `The credential files it names are left alone. When it was the current context, no context is current afterwards. Exits 2 for an unknown name, listing the known ones.`;

  static override examples = ['<%= config.bin %> context delete staging'];

  static override args = {
    name: Args.string({ description: 'Context name (see context list).', required: true }),
  };

  async run(): Promise<ContextDeleteResult> {
    const { args } = await this.parse(ContextDelete);
    const result = deleteContext(contextsPath(), args.name);
    this.log(`Deleted context ${result.name}${result.current === null ? '; no context is current now' : ''}.`);
    return result;
  }
}
