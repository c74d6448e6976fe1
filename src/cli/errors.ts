import { ServiceNotFoundError } from '../cluster/admin.js';
import { RegistryAuthError, RegistryUnavailableError } from '../registry/types.js';

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

/**
 * Maps library errors to one line and an exit code. Anything unknown is a bug and keeps its stack
 * (shown with DEBUG=*), everything a user can cause gets a sentence.
 */
export function describeError(err: unknown): { message: string; exit: number; suggestions: string[]; bug: boolean } {
  if (err instanceof UserError) return { message: err.message, exit: err.exit, suggestions: err.suggestions, bug: false };
  if (err instanceof Error && err.name === 'ConfigError') return { message: err.message, exit: EXIT.usage, suggestions: [], bug: false };
  if (err instanceof ServiceNotFoundError) {
    return { message: err.message, exit: EXIT.notFound, suggestions: ['list the ids with: proxy-stone-sd services list'], bug: false };
  }
  if (err instanceof RegistryUnavailableError) {
    return {
      message: err.message,
      exit: EXIT.unreachable,
      suggestions: [`check that etcd answers: etcdctl --endpoints=${err.endpoint} endpoint health`],
      bug: false,
    };
  }
  if (err instanceof RegistryAuthError) {
    return { message: err.message, exit: EXIT.refused, suggestions: ['check --etcd-username/--etcd-password or the TLS files'], bug: false };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { message: message.split('\n')[0]!, exit: EXIT.failure, suggestions: [], bug: true };
}
