import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { contextsPath, setContext, type ContextChanges, type ContextSetResult } from '../../cli/contexts.js';

export type { ContextSetResult };

// No env bindings: `context set` writes what was typed, never what the environment happens to hold.
const value = (summary: string, helpValue?: string) => Flags.string({ summary, ...(helpValue ? { helpValue } : {}) });

export default class ContextSet extends BaseCommand {
  static override summary = 'Create a context, or change the fields given of an existing one.';
  static override description = `A context names a target once: etcd endpoints (or one redis:// URL) and a namespace, or an agent's URL, with the files holding its credentials. Secrets are never written to the contexts file: give the files that hold them (a password, an API key), which are read when a command runs. Relative paths are stored as absolute ones. An empty value ("") removes a field.
The file is written whole and atomically (a temporary file renamed over it), with mode 0600. The first context of a file becomes the current one; --use makes any context current.`;

  static override examples = [
    '<%= config.bin %> context set prod --endpoints http://127.0.0.1:2379 --namespace proxy-stone',
    '<%= config.bin %> context set staging --agent http://127.0.0.1:8790 --use',
  ];

  static override args = {
    name: Args.string({ description: 'Context name: letters, digits, ".", "_" and "-".', required: true }),
  };

  static override flags = {
    endpoints: value('etcd endpoints, comma-separated, or one redis:// URL (a password in it is refused: use --password-file).', '<urls>'),
    namespace: value('Key prefix of the cluster in the registry.'),
    registry: value('Registry the endpoints are: etcd or redis (inferred from the endpoints when not given).', '<etcd|redis>'),
    agent: value("An agent's API URL, instead of endpoints.", '<url>'),
    'api-key-file': value('File holding the API key sent to the agent.', '<file>'),
    'agent-ca': value('PEM CA file for an https agent.', '<file>'),
    'agent-cert': value('PEM client certificate for an agent that asks for one.', '<file>'),
    'agent-key': value('PEM private key of --agent-cert.', '<file>'),
    'username-file': value('File holding the registry user name (etcd user or Redis ACL user).', '<file>'),
    'password-file': value('File holding the registry password.', '<file>'),
    'registry-ca': value('PEM CA file for https etcd endpoints or rediss://.', '<file>'),
    'registry-cert': value('PEM client certificate for the registry (mutual TLS).', '<file>'),
    'registry-key': value('PEM private key of --registry-cert.', '<file>'),
    use: Flags.boolean({ summary: 'Make it the current context too.' }),
  };

  async run(): Promise<ContextSetResult> {
    const { args, flags } = await this.parse(ContextSet);
    // "" removes a field; a flag not given leaves it as it is.
    const change = (v: string | undefined) => (v === undefined ? undefined : v.trim() === '' ? null : v.trim());
    const endpoints = change(flags.endpoints);
    const changes: ContextChanges = {
      endpoints: endpoints === undefined || endpoints === null ? endpoints : endpoints.split(',').map((e) => e.trim()).filter(Boolean),
      namespace: change(flags.namespace),
      registry: change(flags.registry) as ContextChanges['registry'],
      agent: change(flags.agent),
      apiKeyFile: change(flags['api-key-file']),
      agentTls: { caFile: change(flags['agent-ca']), certFile: change(flags['agent-cert']), keyFile: change(flags['agent-key']) },
      credentials: {
        usernameFile: change(flags['username-file']),
        passwordFile: change(flags['password-file']),
        caFile: change(flags['registry-ca']),
        certFile: change(flags['registry-cert']),
        keyFile: change(flags['registry-key']),
      },
    };
    const result = setContext(contextsPath(), args.name, changes, { use: flags.use });
    this.log(`${result.created ? 'Created' : 'Changed'} context ${result.context.name}${result.context.current ? ' (current)' : ''} in ${result.file}.`);
    return result;
  }
}
