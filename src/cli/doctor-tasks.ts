import { Listr, ListrLogger, ProcessOutput } from 'listr2';
import { escapeUnsafe } from '../util/text.js';
import type { DoctorCheck, DoctorCheckResult } from './doctor-checks.js';

/**
 * Runs the checks in order as listr2 tasks on stderr: the animated renderer for a person at a
 * terminal, the simple line renderer otherwise (CI, pipes, --json). Every check runs even when an
 * earlier one failed; the verdicts come back in order.
 */
export async function runDoctorTasks(checks: DoctorCheck[], options: { fancy: boolean }): Promise<DoctorCheckResult[]> {
  const results: DoctorCheckResult[] = [];
  const logger = new ListrLogger({ useIcons: true, toStderr: [], processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const tasks = new Listr(
    checks.map((check) => ({
      title: check.name,
      task: async (_ctx: unknown, task: { title: string; skip(message?: string): void }) => {
        let result: DoctorCheckResult;
        try {
          result = { name: check.name, ...(await check.run()) };
        } catch (err) {
          result = { name: check.name, ok: false, detail: `check failed unexpectedly: ${(err as Error).message}` };
        }
        results.push(result);
        // Details quote what the checks met (registry records, an agent's answers): shown, never obeyed.
        const detail = escapeUnsafe(result.detail);
        const hint = result.hint === undefined ? undefined : escapeUnsafe(result.hint);
        // listr2 prints a failure or skip as `<title> [FAILED: <message>]`: the detail goes in the message only.
        if (!result.ok) throw new Error(`${detail}${hint ? `\n  → ${hint}` : ''}`);
        if (result.skipped) {
          // The animated renderer shows the skip message instead of the title; the simple one after it.
          const reason = detail.replace(/^skipped: /, '');
          task.skip(options.fancy ? `${check.name}: skipped, ${reason}` : reason);
        } else {
          task.title = `${check.name}: ${detail}`;
        }
      },
    })),
    {
      concurrent: false,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: options.fancy ? 'default' : 'simple',
      fallbackRenderer: 'simple',
      fallbackRendererCondition: !options.fancy,
      rendererOptions: { logger, collapseErrors: false, showErrorMessage: true },
      fallbackRendererOptions: { logger },
    },
  );
  await tasks.run().catch(() => undefined);
  return results;
}
