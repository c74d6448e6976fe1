/**
 * Two helpers every part of the agent uses around registry calls: an error's message for a log line,
 * and a deadline on a call that must not hold up a stop or a start (the registry may be away).
 *
 * @module
 */

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `p`, or a rejection after `ms` milliseconds; the timer never outlives the race. */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
