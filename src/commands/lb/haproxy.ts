import { Flags } from '@oclif/core';
import { durationFlag, FeedCommand } from '../../cli/feed-command.js';
import { DEFAULT_SERVER_OPTIONS, DEFAULT_SERVER_PREFIX, validateBackend, validatePrefix, validateServerOptions } from '../../traffic/haproxy-plan.js';

/** A flag value the validator accepts, or the validator's sentence as a usage error. */
function checked(validate: (value: string) => string | undefined) {
  return async (input: string): Promise<string> => {
    const problem = validate(input);
    if (problem) throw new Error(problem);
    return input;
  };
}

export default class LbHaproxy extends FeedCommand {
  static override summary = 'Keep one HAProxy backend equal to the registry, over its Runtime API.';
  static override description = `Runs until Ctrl-C or SIGTERM. One dynamic server per instance, named <prefix><service id>: ready while it is healthy and enabled, drain while an operator drain runs (in-flight work finishes), maint while it is unhealthy, starting, stopped or disabled; deleted when it leaves the registry, after --remove-delay in maint and once its last connection ends. Servers without the prefix, such as those of haproxy.cfg, are never touched.
Changes are made as the registry's watch reports them; HAProxy's state is also re-read every --resync-interval, so a restarted or reloaded HAProxy (which starts from its config file) is filled again. While the registry is unreachable the servers stay as they are. Each change is one log line (JSON off a terminal). See docs/load-balancers.md.`;

  static override examples = [
    '<%= config.bin %> lb haproxy --socket /run/haproxy/admin.sock --backend proxy_stone',
    `<%= config.bin %> lb haproxy --socket /run/haproxy/admin.sock --backend proxy_stone --endpoints http://127.0.0.1:2379 --server-options "check inter 2s fall 3 rise 2"`,
  ];

  static override flags = {
    socket: Flags.string({
      summary: 'HAProxy admin socket: the path of `stats socket PATH mode 600 level admin` in haproxy.cfg.',
      env: 'PROXY_STONE_SD_HAPROXY_SOCKET',
      helpValue: '<path>',
      required: true,
    }),
    backend: Flags.custom<string>({
      summary: 'The backend to keep equal to the registry (a `backend` section of haproxy.cfg).',
      env: 'PROXY_STONE_SD_HAPROXY_BACKEND',
      helpValue: '<name>',
      required: true,
      parse: checked(validateBackend),
    })(),
    'server-prefix': Flags.custom<string>({
      summary: `Names of the servers this command owns start with it; no other server of the backend may (default ${DEFAULT_SERVER_PREFIX}).`,
      helpValue: '<prefix>',
      parse: checked(validatePrefix),
    })(),
    'server-options': Flags.custom<string>({
      summary: `Options of each \`add server\`, e.g. HAProxy's own health check (default "${DEFAULT_SERVER_OPTIONS}"; "" for none).`,
      helpValue: '<options>',
      parse: checked(validateServerOptions),
    })(),
    'resync-interval': durationFlag({ summary: 'How often HAProxy\'s state is re-read, to refill a restarted HAProxy and undo changes made by hand.', default: 1, min: 0.1 }),
    'remove-delay': durationFlag({
      summary: 'How long the server of an instance that left stays in maint before it is deleted: above retries × (timeout connect + 1s) of haproxy.cfg, so no request still retrying on it meets a deleted server (see docs/load-balancers.md).',
      default: 10,
      min: 0,
    }),
    'log-level': FeedCommand.logLevelFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(LbHaproxy);
    const target = this.registryTarget(flags);
    const logger = await this.logger(flags['log-level']);
    const { runHaproxyFeed } = await import('../../traffic/run.js');
    await runHaproxyFeed({
      target,
      logger,
      socket: flags.socket,
      backend: flags.backend,
      ...(flags['server-prefix'] !== undefined ? { prefix: flags['server-prefix'] } : {}),
      ...(flags['server-options'] !== undefined ? { serverOptions: flags['server-options'] } : {}),
      resyncIntervalMs: Math.round(flags['resync-interval'] * 1000),
      removeDelayMs: Math.round(flags['remove-delay'] * 1000),
      haproxyTimeoutMs: Math.round(flags.timeout * 1000),
    });
  }
}
