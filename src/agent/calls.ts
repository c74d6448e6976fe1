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

/**
 * Waits for every named step, at most `ms` milliseconds; returns the names of those still running
 * then, and each failed step's error. A step's failure does not end the wait for the others.
 */
export async function settleWithin(steps: Readonly<Record<string, Promise<unknown>>>, ms: number): Promise<{ pending: string[]; failed: [string, unknown][] }> {
  const pending = new Set(Object.keys(steps));
  const failed: [string, unknown][] = [];
  const all = Promise.all(
    Object.entries(steps).map(([name, step]) =>
      step.then(
        () => pending.delete(name),
        (err: unknown) => {
          pending.delete(name);
          failed.push([name, err]);
        },
      ),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
  return { pending: [...pending], failed };
}
