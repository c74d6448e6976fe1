import { BaseCommand } from '../../cli/base-command.js';
import { contextsPath, listContexts, type ContextListResult } from '../../cli/contexts.js';

/** `{file, current, contexts: [{name, current, endpoints?, namespace?, registry?, agent?, apiKeyFile?, agentTls?, credentials?}]}` */
export type ContextListResultJson = ContextListResult;

export default class ContextList extends BaseCommand {
  static override summary = 'List the contexts: named targets (endpoints or an agent, namespace, credential files).';
  static override description = `The contexts file is $XDG_CONFIG_HOME/proxy-stone-sd/contexts.yaml (~/.config/... without XDG_CONFIG_HOME), or the file PROXY_STONE_SD_CONTEXTS_FILE names. The current context, marked *, is what every cluster command uses when neither flags nor environment name a target; --context NAME (PROXY_STONE_SD_CONTEXT) picks another.`;

  static override examples = ['<%= config.bin %> context list', '<%= config.bin %> context list --json'];

  async run(): Promise<ContextListResult> {
    await this.parse(ContextList);
    const result = listContexts(contextsPath());
    if (!this.jsonEnabled()) {
      const { renderContextList } = await import('../../cli/context-views.js');
      this.log(renderContextList(result));
    }
    return result;
  }
}
