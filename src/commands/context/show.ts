import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { contextsPath, showContext, type ContextShowResult } from '../../cli/contexts.js';

export type { ContextShowResult };

export default class ContextShow extends BaseCommand {
  static override summary = 'Show one context (the current one by default): its target, namespace and credential files.';
  static override description = `Prints what the file says; credentials are files, and only their paths are shown. Exits 2 for an unknown name, listing the known ones.`;

  static override examples = ['<%= config.bin %> context show', '<%= config.bin %> context show prod --json'];

  static override args = {
    name: Args.string({ description: 'Context name (default: the current context).' }),
  };

  async run(): Promise<ContextShowResult> {
    const { args } = await this.parse(ContextShow);
    const result = showContext(contextsPath(), args.name);
    if (!this.jsonEnabled()) {
      const { renderContext } = await import('../../cli/context-views.js');
      this.log(renderContext(result));
    }
    return result;
  }
}
