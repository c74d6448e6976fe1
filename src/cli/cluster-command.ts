import { Flags, type Interfaces } from '@oclif/core';
import { describeExpectation, quoteValue, settingByPath, textProblem } from '../config/settings.js';
import { DEFAULT_ETCD_ENDPOINT, isHttpUrl, isRedisUrl, isRegistryUrl, redactUserinfo } from '../registry/endpoint.js';
import { parseDuration } from '../util/duration.js';
import { escapeUnsafe, unsafeCharacterIn } from '../util/text.js';
import { BaseCommand } from './base-command.js';
import { openClusterClient } from './cluster-client.js';
import { TargetError, type AgentTarget, type ClusterClient, type ClusterTarget } from './cluster-contract.js';
import { CONTEXT_ENV, contextsPath, readContexts, readSecretFile, selectContext, type Context, type TlsFiles } from './contexts.js';
import { EXIT } from './errors.js';

const DEFAULT_TIMEOUT_SECONDS = 5;
const DEFAULT_NAMESPACE = 'proxy-stone';
const TARGET = 'TARGET';

const timeoutFlag = Flags.custom<number>({
  summary: 'Seconds allowed for each network call (e.g. 5, 500ms, 2s); an unreachable etcd or agent fails after this.',
  helpValue: '<seconds>',
  helpGroup: TARGET,
  // A parser's error is a usage error (exit 2) through oclif's exitCodes.failedFlagParsing in package.json.
  async parse(input) {
    const seconds = parseDuration(input);
    // Below a millisecond every call would time out at once ("no answer within 0ms").
    if (seconds < 0.001) throw new Error('expected a duration of at least 1ms (e.g. 5, 500ms, 2s)');
    return seconds;
  },
});

/**
 * `--cluster-name` for the commands that show the cluster's name (`status`, `dashboard`): the registry
 * stores none, so reading it directly shows the name this setting gives, as the agents are given it.
 */
export const clusterNameFlag = Flags.string({
  summary: "The cluster's name to show when reading the registry, which stores none (through --agent, the agent's own).",
  env: 'SERVICE_DISCOVERY_CLUSTER_NAME',
  default: String(settingByPath('cluster.name')!.default),
  helpGroup: TARGET,
});

/**
 * Base of every command that talks to a cluster: one set of target flags (etcd directly, or an
 * agent's API), each bound to its environment variable, a client opened on demand and always closed,
 * and errors as one line on stderr with the documented exit code.
 */
export abstract class ClusterCommand extends BaseCommand {
  static override baseFlags = {
    context: Flags.string({
      summary: 'Use this context of the contexts file (see `context list`) instead of the current one; typed here, it comes before SERVICE_DISCOVERY_* variables.',
      env: CONTEXT_ENV,
      helpValue: '<name>',
      helpGroup: TARGET,
    }),
    endpoints: Flags.string({
      summary: `etcd endpoints, comma-separated, or one redis:// URL (default ${DEFAULT_ETCD_ENDPOINT} when --agent is not given either).`,
      env: 'SERVICE_DISCOVERY_ENDPOINTS',
      helpValue: '<urls>',
      helpGroup: TARGET,
    }),
    // No default here: a context's namespace comes between the environment and the default.
    namespace: Flags.string({
      summary: `Key prefix of the cluster in etcd (default ${DEFAULT_NAMESPACE}).`,
      env: 'SERVICE_DISCOVERY_NAMESPACE',
      helpGroup: TARGET,
    }),
    registry: Flags.string({
      summary: 'Registry the endpoints are, as for the agent: etcd, or redis (one redis:// URL). Inferred from --endpoints when not given.',
      env: 'SERVICE_DISCOVERY_REGISTRY',
      helpValue: '<etcd|redis>',
      // Checked by target(), not by oclif's `options`: an agent's environment may name memory, which
      // matters only when the registry is read directly (and then gets a sentence, not a list).
      helpGroup: TARGET,
    }),
    agent: Flags.string({
      summary: "Talk to this agent's HTTP API instead of etcd, e.g. http://127.0.0.1:8790.",
      env: 'PROXY_STONE_SD_AGENT',
      helpValue: '<url>',
      helpGroup: TARGET,
    }),
    'api-key': Flags.string({
      summary: 'API key for --agent (sent as a Bearer token); enable/disable need an operator key.',
      env: 'SERVICE_DISCOVERY_API_KEY',
      helpGroup: TARGET,
    }),
    'agent-ca': Flags.string({ summary: 'PEM CA file for an https --agent (its --api-tls-cert was signed by a private CA).', env: 'PROXY_STONE_SD_AGENT_CA_FILE', helpGroup: TARGET }),
    'agent-cert': Flags.string({ summary: 'PEM client certificate for an --agent that asks for one (its --api-tls-ca); needs --agent-key.', env: 'PROXY_STONE_SD_AGENT_CERT_FILE', helpGroup: TARGET }),
    'agent-key': Flags.string({ summary: 'PEM private key of --agent-cert.', env: 'PROXY_STONE_SD_AGENT_KEY_FILE', helpGroup: TARGET }),
    timeout: timeoutFlag({ default: DEFAULT_TIMEOUT_SECONDS }),
    'etcd-username': Flags.string({ summary: 'etcd user name, or Redis ACL user (also --registry-username).', env: 'SERVICE_DISCOVERY_USERNAME', helpGroup: TARGET }),
    'etcd-password': Flags.string({ summary: 'etcd or Redis password (prefer the env var; also --registry-password).', env: 'SERVICE_DISCOVERY_PASSWORD', helpGroup: TARGET }),
    'etcd-ca': Flags.string({ summary: 'PEM CA file for https etcd endpoints or rediss:// (also --registry-ca).', env: 'SERVICE_DISCOVERY_CA_FILE', helpGroup: TARGET }),
    'etcd-cert': Flags.string({ summary: 'PEM client certificate for mutual TLS (also --registry-cert).', env: 'SERVICE_DISCOVERY_CERT_FILE', helpGroup: TARGET }),
    'etcd-key': Flags.string({ summary: 'PEM client key for mutual TLS (also --registry-key).', env: 'SERVICE_DISCOVERY_KEY_FILE', helpGroup: TARGET }),
    // Registry-neutral names of the five above, for Redis. No env binding of their own: the env vars
    // (SERVICE_DISCOVERY_PASSWORD, ...) already name no registry and stay bound to the etcd names.
    // Hidden, so help lists each setting once (the etcd name's summary names them); they parse as ever.
    'registry-username': Flags.string({ summary: 'Registry user name: etcd user or Redis ACL user (same as --etcd-username).', helpGroup: TARGET, hidden: true }),
    'registry-password': Flags.string({ summary: 'Registry password: etcd or Redis (same as --etcd-password; prefer SERVICE_DISCOVERY_PASSWORD).', helpGroup: TARGET, hidden: true }),
    'registry-ca': Flags.string({ summary: 'PEM CA file for https etcd endpoints or rediss:// (same as --etcd-ca).', helpGroup: TARGET, hidden: true }),
    'registry-cert': Flags.string({ summary: 'PEM client certificate for mutual TLS (same as --etcd-cert).', helpGroup: TARGET, hidden: true }),
    'registry-key': Flags.string({ summary: 'PEM client key for mutual TLS (same as --etcd-key).', helpGroup: TARGET, hidden: true }),
  };

  private client: ClusterClient | undefined;

  /** Opens the client the flags name. Closed by `finally()`, whatever happens. */
  protected async connect(flags: ClusterFlags): Promise<ClusterClient> {
    this.client = await openClusterClient(this.target(flags));
    return this.client;
  }

  /**
   * Resolves the target: flags > environment > context > defaults, except that a context named by
   * `--context` on the command line comes before the environment. A flag on the command line beats
   * an environment variable, so `--agent URL` works on a host whose environment names etcd; both
   * given the same way is an error. A context's endpoints or agent are used only when neither flags
   * nor environment name a target, and its credentials go only to that target, never to another.
   */
  protected target(given: ClusterFlags, options: { quiet?: boolean } = {}): ClusterTarget {
    const timeoutMs = Math.round(given.timeout * 1000);
    const onWarning = (message: string) => this.warnLine(message);
    const chosen = this.chosenContext(given);
    const flags = chosen && this.onCommandLine('context') ? this.contextOverEnvironment(given, chosen.context) : given;
    // An empty environment variable counts as unset.
    let agent = flags.agent?.trim() || undefined;
    let endpointList = flags.endpoints?.trim() || undefined;
    let useAgent = agent !== undefined;
    if (agent !== undefined && endpointList !== undefined) {
      const agentArg = this.onCommandLine('agent');
      const endpointsArg = this.onCommandLine('endpoints');
      if (agentArg === endpointsArg) {
        throw new TargetError(
          `--endpoints and --agent both given${agentArg ? '' : ' (SERVICE_DISCOVERY_ENDPOINTS and PROXY_STONE_SD_AGENT)'}: use one, etcd directly or an agent's API`,
        );
      }
      useAgent = agentArg;
    }
    const ctx = agent === undefined && endpointList === undefined ? chosen?.context : undefined;
    const context = chosen ? { context: { name: chosen.name, file: chosen.file } } : {};
    if (ctx?.agent !== undefined) {
      agent = ctx.agent;
      useAgent = true;
    } else if (ctx?.endpoints !== undefined) {
      endpointList = ctx.endpoints.join(',');
    }
    const registry = flags.registry?.trim() || ctx?.registry;
    if (useAgent) {
      if (!isHttpUrl(agent!)) {
        throw new TargetError(`${this.givenAs('agent', 'PROXY_STONE_SD_AGENT')} ${shown(agent!)}: expected an http(s) URL such as http://127.0.0.1:8790`);
      }
      if (this.onCommandLine('registry')) {
        throw new TargetError("--registry names the registry read directly, and --agent reads through an agent, which has its own: give one of them");
      }
      // Sent in a header: one token, as the agent takes it (surrounding whitespace is a paste accident).
      let apiKey = flags['api-key']?.trim() || undefined;
      let keyName = this.givenAs('api-key', 'SERVICE_DISCOVERY_API_KEY');
      if (apiKey === undefined && ctx?.apiKeyFile !== undefined) {
        apiKey = readSecretFile(ctx.apiKeyFile, 'API key', chosen!.name).trim();
        keyName = `apiKeyFile ${ctx.apiKeyFile} (context ${chosen!.name})`;
      }
      const keySetting = settingByPath('api.apiKey')!;
      if (apiKey !== undefined && !keySetting.pattern!.test(apiKey)) {
        throw new TargetError(`${keyName}: expected ${keySetting.patternHint}`);
      }
      const tls = this.agentTls(flags, ctx?.agentTls);
      return { kind: 'agent', url: agent!, apiKey, timeoutMs, onWarning, ...(tls ? { tls } : {}), ...context };
    }
    if (registry === 'memory') {
      throw new TargetError(`${this.givenAs('registry', 'SERVICE_DISCOVERY_REGISTRY')} memory: the memory registry lives inside one agent's process; reach it through that agent with --agent URL`);
    }
    if (registry !== undefined && registry !== 'etcd' && registry !== 'redis') {
      throw new TargetError(`${this.givenAs('registry', 'SERVICE_DISCOVERY_REGISTRY')} ${quoteValue(registry)}: expected etcd or redis`);
    }
    let endpoints = (endpointList ?? '').split(',').map((e) => e.trim()).filter(Boolean);
    if (endpoints.length === 0) {
      if (registry === 'redis') throw new TargetError(`${this.givenAs('registry', 'SERVICE_DISCOVERY_REGISTRY')} redis requires --endpoints with one redis:// URL`);
      endpoints = [DEFAULT_ETCD_ENDPOINT];
      if (process.stderr.isTTY && !options.quiet) this.warnLine(`no --endpoints or --agent given: using etcd at ${DEFAULT_ETCD_ENDPOINT}`, 'Note');
    }
    // The agent's own rules (src/registry/endpoint.ts): a URL that could not be connected to is a usage error.
    const endpointsName = ctx?.endpoints !== undefined ? `endpoints of context ${chosen!.name}` : this.givenAs('endpoints', 'SERVICE_DISCOVERY_ENDPOINTS');
    const redis = endpoints.some(isRedisUrl);
    if (redis && registry === 'etcd') {
      throw new TargetError(`${endpointsName} ${shown(endpoints.join(','))} is a Redis URL, but ${this.registryName(flags, chosen?.name)} is etcd: give http(s) etcd URLs, or the registry redis`);
    }
    if (!redis && registry === 'redis') {
      throw new TargetError(`${endpointsName} ${shown(endpoints.join(','))}: expected one redis:// URL, as ${this.registryName(flags, chosen?.name)} is redis`);
    }
    if (redis) {
      if (endpoints.length !== 1 || !isRegistryUrl(endpoints[0]!)) {
        throw new TargetError(`${endpointsName} ${shown(endpoints.join(','))}: expected one Redis URL such as redis://127.0.0.1:6379`);
      }
    } else {
      for (const e of endpoints) {
        if (!isHttpUrl(e)) throw new TargetError(`${endpointsName} ${shown(e)}: expected http(s) URLs such as http://127.0.0.1:2379, or one redis:// URL`);
      }
    }
    const namespace = flags.namespace ?? chosen?.context.namespace ?? DEFAULT_NAMESPACE;
    if (flags.namespace !== undefined) this.checkSetting('cluster.discovery.namespace', flags.namespace, this.givenAs('namespace', 'SERVICE_DISCOVERY_NAMESPACE'));
    // Only commands that declare clusterNameFlag have it.
    const clusterName = (flags as { 'cluster-name'?: string })['cluster-name'];
    this.checkSetting('cluster.name', clusterName, this.givenAs('cluster-name', 'SERVICE_DISCOVERY_CLUSTER_NAME'));
    const files = ctx?.credentials;
    const tls = {
      ca: this.credential(flags, 'ca') ?? files?.caFile,
      cert: this.credential(flags, 'cert') ?? files?.certFile,
      key: this.credential(flags, 'key') ?? files?.keyFile,
    };
    let username = this.credential(flags, 'username');
    let password = this.credential(flags, 'password');
    // A context's user name and password go together: one typed on the command line replaces both.
    if (username === undefined && password === undefined && files?.passwordFile !== undefined) {
      password = this.contextSecret(files.passwordFile, 'password', chosen!.name);
      if (files.usernameFile !== undefined) username = this.contextSecret(files.usernameFile, 'username', chosen!.name);
    }
    return {
      kind: 'registry',
      ...(redis ? { registry: 'redis' as const } : {}),
      endpoints,
      namespace,
      ...(clusterName !== undefined ? { clusterName } : {}),
      timeoutMs,
      ...(username !== undefined ? { username, password: password ?? '' } : {}),
      // Redis's requirepass is a password without a user.
      ...(redis && username === undefined && password !== undefined ? { password } : {}),
      ...(tls.ca || tls.cert || tls.key ? { tls } : {}),
      onWarning,
      ...context,
    };
  }

  /**
   * A context named on the command line beats the environment: the flags without the values that
   * came from environment variables where the context sets its own. Otherwise `--context staging`
   * inside an agent's container, whose SERVICE_DISCOVERY_ENDPOINTS names the local cluster, would act
   * on the local cluster. A context that names a target (endpoints or an agent) replaces the
   * environment's target with all its credentials, which belong to that target and are not sent to
   * the context's. Values typed on the command line still win.
   */
  private contextOverEnvironment(flags: ClusterFlags, context: Context): ClusterFlags {
    const target = context.agent !== undefined || context.endpoints !== undefined;
    const shadowed: (keyof ClusterFlags & string)[] = [
      ...(target ? TARGET_FLAGS : []),
      ...(context.namespace !== undefined ? (['namespace'] as const) : []),
      ...(context.registry !== undefined ? (['registry'] as const) : []),
    ];
    const result = { ...flags };
    for (const flag of shadowed) {
      if (result[flag] !== undefined && !this.onCommandLine(flag)) delete result[flag];
    }
    return result;
  }

  /**
   * The context in use: `--context` (or PROXY_STONE_SD_CONTEXT), else the contexts file's current one;
   * none when neither names one. Read on every call: a command resolves its target once.
   */
  protected chosenContext(flags: ClusterFlags): { name: string; file: string; context: Context } | undefined {
    const file = readContexts(contextsPath());
    const chosen = selectContext(file, flags.context, this.givenAs('context', CONTEXT_ENV));
    return chosen && { ...chosen, file: file.path };
  }

  /** `--agent-ca|cert|key` (or their env vars) over the context's agentTls, field by field; both halves of a client pair or neither. */
  private agentTls(flags: ClusterFlags, files: TlsFiles | undefined): AgentTarget['tls'] {
    const pick = (flag: 'agent-ca' | 'agent-cert' | 'agent-key', env: string, fromContext: string | undefined) => {
      const value = flags[flag]?.trim() || undefined;
      if (value === undefined) return fromContext;
      const bad = unsafeCharacterIn(value);
      if (bad || value.length > 4096) throw new TargetError(`${this.givenAs(flag, env)}: expected a file path${bad ? `; contains a control character (${bad.codePoint})` : ' of at most 4096 characters'}`);
      return value;
    };
    const ca = pick('agent-ca', 'PROXY_STONE_SD_AGENT_CA_FILE', files?.caFile);
    const cert = pick('agent-cert', 'PROXY_STONE_SD_AGENT_CERT_FILE', files?.certFile);
    const key = pick('agent-key', 'PROXY_STONE_SD_AGENT_KEY_FILE', files?.keyFile);
    if ((cert === undefined) !== (key === undefined)) {
      throw new TargetError(cert === undefined ? '--agent-key requires --agent-cert (a client certificate and its key)' : '--agent-cert requires --agent-key (a client certificate and its key)');
    }
    return ca || cert ? { ...(ca ? { ca } : {}), ...(cert ? { cert, key: key! } : {}) } : undefined;
  }

  /** A user name or password from a file a context names, checked as the setting it stands for. */
  private contextSecret(path: string, name: 'username' | 'password', context: string): string {
    const value = readSecretFile(path, name, context);
    this.checkSetting(`cluster.discovery.${name}`, value, `${name} file ${path} (context ${context})`);
    return value;
  }

  /** How the registry was named, for a message: the flag, its env var, or the context. */
  private registryName(flags: ClusterFlags, context: string | undefined): string {
    return flags.registry !== undefined || context === undefined ? this.givenAs('registry', 'SERVICE_DISCOVERY_REGISTRY') : `the registry of context ${context}`;
  }

  /**
   * `--registry-<name>` or `--etcd-<name>`: one setting under two flag names (as for the agent, see
   * the settings table). The registry name typed on the command line beats the env var bound to the
   * etcd name; both typed with different values is an error naming both.
   */
  private credential(flags: ClusterFlags, name: 'username' | 'password' | 'ca' | 'cert' | 'key'): string | undefined {
    const etcd = `etcd-${name}` as const;
    const neutral = `registry-${name}` as const;
    const value = flags[neutral];
    const path = name === 'username' || name === 'password' ? `cluster.discovery.${name}` : `cluster.discovery.tls.${name}`;
    if (value === undefined) {
      this.checkSetting(path, flags[etcd], this.givenAs(etcd, CREDENTIAL_ENV[name]));
      return flags[etcd];
    }
    if (this.onCommandLine(etcd) && flags[etcd] !== value) {
      throw new TargetError(`--${etcd} and --${neutral} both given, with different values: they are the same setting, give one of them`);
    }
    this.checkSetting(path, value, `--${neutral}`);
    return value;
  }

  /**
   * A target flag that is also an agent setting takes what the agent's setting takes: no control
   * characters, no more characters than it holds, its pattern. `name` is the flag or env var as given.
   */
  private checkSetting(path: string, value: string | undefined, name: string): void {
    const setting = settingByPath(path);
    if (value === undefined || !setting) return;
    const problem = textProblem(setting, value) ?? (setting.pattern && !setting.pattern.test(value.trim()) ? {} : undefined);
    if (!problem) return;
    const expected = problem.expected ?? describeExpectation(setting, { range: false });
    throw new TargetError(`${name}${setting.secret ? '' : ` ${quoteValue(value)}`}: expected ${expected}${problem.reason ? `; ${problem.reason}` : ''}`);
  }

  /** One line on stderr, under --json too: stdout stays clean for the result. */
  protected warnLine(message: string, label = 'Warning'): void {
    // Warnings quote registry data ("skipping <key>: …"): escaped like every other line on a terminal.
    process.stderr.write(`${label}: ${escapeUnsafe(message)}\n`);
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    await this.client?.close().catch(() => undefined);
    return super.finally(err);
  }

  /** How the user gave a flag bound to an environment variable: `--flag` when typed, else the variable's name. */
  protected givenAs(flag: string, env: string): string {
    return this.onCommandLine(flag) || process.env[env] === undefined ? `--${flag}` : env;
  }

  /** Whether `--flag` was typed on the command line (not taken from the environment or a default). */
  protected onCommandLine(flag: string): boolean {
    const end = this.argv.indexOf('--');
    const args = end === -1 ? this.argv : this.argv.slice(0, end);
    return args.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
  }
}

/** The flags that name a target or carry its credentials (each also read from an environment variable). */
const TARGET_FLAGS = [
  'agent',
  'endpoints',
  'registry',
  'api-key',
  'agent-ca',
  'agent-cert',
  'agent-key',
  'etcd-ca',
  'etcd-cert',
  'etcd-key',
  'etcd-username',
  'etcd-password',
] as const satisfies readonly (keyof ClusterFlags & string)[];

/** The environment variable of each registry credential, bound to its etcd-named flag. */
const CREDENTIAL_ENV = {
  username: 'SERVICE_DISCOVERY_USERNAME',
  password: 'SERVICE_DISCOVERY_PASSWORD',
  ca: 'SERVICE_DISCOVERY_CA_FILE',
  cert: 'SERVICE_DISCOVERY_CERT_FILE',
  key: 'SERVICE_DISCOVERY_KEY_FILE',
} as const;

/** A typed value for a one-line message: credentials removed, at most 120 characters (escaped where printed). */
function shown(text: string): string {
  const redacted = redactUserinfo(text);
  return redacted.length > 120 ? `${redacted.slice(0, 117)}...` : redacted;
}

export type ClusterFlags = Interfaces.InferredFlags<typeof ClusterCommand.baseFlags>;

export { EXIT };
