import { LiveServiceError } from '../cluster/forget.js';
import { LeaderTermError, NoLeaderError } from '../cluster/leader.js';
import { ConcurrentChangeError, ServiceNotFoundError } from '../cluster/admin.js';
import { CapacityError, describeShortfall } from '../cluster/capacity.js';
import { RegistryAuthError, RegistryRequestError, RegistryUnavailableError } from '../registry/types.js';
import { AgentRequestError, AgentUnavailableError, NOT_AN_AGENT, TargetError } from './cluster-contract.js';

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  unreachable: 4,
  refused: 5,
} as const;

/** A user-facing error with its exit code and what to do next. */
export class UserError extends Error {
  override name = 'UserError';
  constructor(
    message: string,
    readonly exit: number = EXIT.failure,
    readonly suggestions: string[] = [],
  ) {
    super(message);
  }
}

/** Errors of src/traffic (`lb haproxy`, `render`): exit code and hint, by error name. */
const TRAFFIC_ERRORS: Record<string, { exit: number; suggestions: string[] }> = {
  TemplateError: { exit: EXIT.usage, suggestions: ['the template language is Handlebars: https://handlebarsjs.com/guide/'] },
  OutputPathError: { exit: EXIT.usage, suggestions: [] },
  HaproxyBackendMissingError: { exit: EXIT.usage, suggestions: ['list the backends with: echo "show backend" | socat stdio <socket>'] },
  HaproxyPermissionError: { exit: EXIT.refused, suggestions: [] },
  HaproxyUnreachableError: { exit: EXIT.unreachable, suggestions: ['check that HAProxy runs with a `stats socket` at this path'] },
  ExecError: { exit: EXIT.failure, suggestions: ['run the --exec command by hand to see why it fails'] },
};

/**
 * Maps library errors to one line and an exit code. Anything unknown is a bug and keeps its stack
 * (shown with DEBUG=*), everything a user can cause gets a sentence.
 */
export function describeError(err: unknown): { message: string; exit: number; suggestions: string[]; bug: boolean } {
  if (err instanceof UserError) return { message: err.message, exit: err.exit, suggestions: err.suggestions, bug: false };
  if (err instanceof Error && err.name === 'ConfigError') return { message: err.message, exit: EXIT.usage, suggestions: [], bug: false };
  // The load-balancer feed's errors, by name: importing src/traffic here would load it (and handlebars) for every command.
  if (err instanceof Error && TRAFFIC_ERRORS[err.name]) return { message: err.message, ...TRAFFIC_ERRORS[err.name]!, bug: false };
  if (err instanceof ServiceNotFoundError) {
    return { message: err.message, exit: EXIT.notFound, suggestions: ['list the ids with: proxy-stone-sd services list'], bug: false };
  }
  if (err instanceof RegistryUnavailableError) {
    return {
      message: err.message,
      exit: EXIT.unreachable,
      suggestions: [
        /^rediss?:\/\//.test(err.endpoint)
          ? `check that Redis answers: redis-cli -u ${err.endpoint} ping`
          : `check that etcd answers: etcdctl --endpoints=${err.endpoint} endpoint health`,
      ],
      bug: false,
    };
  }
  if (err instanceof RegistryAuthError) {
    const redis = /^registry rediss?:\/\//.test(err.message);
    return {
      message: err.message,
      exit: EXIT.refused,
      suggestions: [redis ? 'check the password in the URL (or SERVICE_DISCOVERY_PASSWORD) and the ACL rule in docs/redis.md' : 'check --etcd-username/--etcd-password or the TLS files'],
      bug: false,
    };
  }
  if (err instanceof RegistryRequestError) {
    return { message: err.message, exit: EXIT.failure, suggestions: ['the registry answered and refused the request itself: retrying will not help; raise the limit it names, or report it'], bug: false };
  }
  if (err instanceof CapacityError) {
    return { message: err.message, exit: EXIT.refused, suggestions: ['see the zone with: proxy-stone-sd topology'], bug: false };
  }
  if (err instanceof ConcurrentChangeError) {
    return { message: err.message, exit: EXIT.failure, suggestions: ['see what is changing with: proxy-stone-sd events'], bug: false };
  }
  if (err instanceof LiveServiceError) return { message: err.message, exit: EXIT.refused, suggestions: [], bug: false };
  if (err instanceof NoLeaderError) return { message: err.message, exit: EXIT.notFound, suggestions: ['see the agents with: proxy-stone-sd services list'], bug: false };
  if (err instanceof LeaderTermError) return { message: err.message, exit: EXIT.failure, suggestions: ['see who leads now with: proxy-stone-sd leader'], bug: false };
  if (err instanceof TargetError) return { message: err.message, exit: EXIT.usage, suggestions: [], bug: false };
  if (err instanceof AgentUnavailableError) {
    return {
      message: err.message,
      exit: EXIT.unreachable,
      suggestions: ['check the agent URL (--agent or PROXY_STONE_SD_AGENT) and that the agent runs'],
      bug: false,
    };
  }
  if (err instanceof AgentRequestError) return describeAgentError(err);
  const message = err instanceof Error ? err.message : String(err);
  return { message: message.split('\n')[0]!, exit: EXIT.failure, suggestions: [], bug: true };
}

/** An agent's error answer: refused keys are exit 5, a bad request 2, its registry being away 4. */
function describeAgentError(err: AgentRequestError): { message: string; exit: number; suggestions: string[]; bug: boolean } {
  if (err.statusCode === 401 || err.statusCode === 403) {
    return {
      message: err.message,
      exit: EXIT.refused,
      suggestions: ['pass a key with --api-key or SERVICE_DISCOVERY_API_KEY (enable/disable need an operator key)'],
      bug: false,
    };
  }
  if (err.statusCode === 400) return { message: err.message, exit: EXIT.usage, suggestions: [], bug: false };
  if (err.statusCode === 404 && err.code === 'no_leader') return { message: err.message, exit: EXIT.notFound, suggestions: [], bug: false };
  // Something answers at the URL, but not as an agent (a web server, another API): exit 1.
  if (err.code === NOT_AN_AGENT) {
    return { message: err.message, exit: EXIT.failure, suggestions: ["check the agent URL (--agent or PROXY_STONE_SD_AGENT): an agent's API, e.g. http://127.0.0.1:8790"], bug: false };
  }
  if (err.statusCode === 409 && err.code === 'refused') {
    return { message: err.message.replace('send "force": true', 'use --force'), exit: EXIT.refused, suggestions: [], bug: false };
  }
  if (err.code === 'registry_unavailable') {
    return { message: err.message, exit: EXIT.unreachable, suggestions: ['the agent answers but cannot reach etcd; run: proxy-stone-sd doctor'], bug: false };
  }
  return { message: err.message, exit: EXIT.failure, suggestions: [], bug: false };
}

/**
 * What the capacity guard protects, when `err` is its refusal of a disable (through etcd, or an
 * agent's 409 `refused`): `zone us-east-1a of region us-east-1 would have 0 healthy enabled
 * instances (minimum 1)`. Undefined for every other error.
 */
export function capacityRefusal(err: unknown): string | undefined {
  if (err instanceof CapacityError) return err.shortfalls.map(describeShortfall).join('; ');
  if (err instanceof AgentRequestError && err.statusCode === 409 && err.code === 'refused') {
    // The agent's sentence: `… answered HTTP 409: refusing to disable ID: <why>; send "force": true to override`.
    const m = /refusing to disable \S+: (.*?)(?:; (?:send "force": true|use --force) to override)?$/.exec(err.message);
    return m?.[1] ?? err.message;
  }
  return undefined;
}

/**
 * The exit code of a bulk enable/disable (`--all`). A real failure wins: its own code (what the
 * single-service command would exit with), or 1 when failures disagree. Only then do the capacity
 * guard's refusals count, as for one service: 5. A refusal is the guard doing its job, and scripts
 * may treat 5 as "kept on purpose" (docs/operations.md), so a real failure must never hide behind it.
 */
export function bulkExitCode(result: { failed: readonly { exit: number }[]; kept: readonly unknown[] }): number {
  const codes = new Set(result.failed.map((f) => f.exit));
  if (codes.size === 1) return [...codes][0]!;
  if (codes.size > 1) return EXIT.failure;
  return result.kept.length > 0 ? EXIT.refused : EXIT.ok;
}
