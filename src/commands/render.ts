import { Flags } from '@oclif/core';
import { durationFlag, FeedCommand } from '../cli/feed-command.js';

export default class Render extends FeedCommand {
  static override summary = 'Render a config file from the registry (an nginx upstream), again on every change.';
  static override description = `Renders the Handlebars template to --out, then runs --exec (e.g. an nginx reload); again after every change of the registry, once --debounce has passed without another. The file is written through a temporary file and a rename, and only when its bytes change. A failing --exec is logged and run again after the next change; it never stops the command.
The template sees services (every record, as the API returns it), serving (healthy and enabled), draining (an operator drain runs, or the instance is stopping), out, leader, topology and namespace; {{hostport this}} writes a record's address ([::1]:3001 for IPv6). Strict: a field the data lacks is an error.
--once renders, runs --exec if the file changed, and exits: 0, 4 when the registry does not answer within --timeout, 2 for a template error, 1 when --exec fails. See docs/load-balancers.md.`;

  static override examples = [
    '<%= config.bin %> render --template upstream.conf.hbs --out /etc/nginx/conf.d/proxy-stone-upstream.conf --once',
    `<%= config.bin %> render --template upstream.conf.hbs --out /etc/nginx/conf.d/proxy-stone-upstream.conf --exec "nginx -s reload"`,
  ];

  static override flags = {
    template: Flags.string({ summary: 'Handlebars template file.', helpValue: '<file>', required: true }),
    out: Flags.string({ summary: 'Output file; its directory must exist and be writable (the temporary file goes there).', helpValue: '<file>', required: true }),
    exec: Flags.string({ summary: 'Shell command to run after each write (e.g. "nginx -s reload"); its failure is logged and retried after the next change.', helpValue: '<command>' }),
    'exec-timeout': durationFlag({ summary: 'Time --exec may run before it is killed.', default: 60, min: 0.001 }),
    debounce: durationFlag({ summary: 'Quiet time after a change before rendering, so a burst is one write and one reload (0: every change; a steady stream still renders at least every 10x this, or 1s).', default: 0.2 }),
    once: Flags.boolean({ summary: 'Render once (and run --exec if the file changed), then exit.' }),
    'log-level': FeedCommand.logLevelFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Render);
    const target = this.registryTarget(flags);
    const logger = await this.logger(flags['log-level']);
    const { runRender } = await import('../traffic/run.js');
    await runRender({
      target,
      logger,
      templateFile: flags.template,
      out: flags.out,
      ...(flags.exec ? { exec: flags.exec } : {}),
      execTimeoutMs: Math.round(flags['exec-timeout'] * 1000),
      debounceMs: Math.round(flags.debounce * 1000),
      once: flags.once,
    });
  }
}
