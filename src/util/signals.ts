import type { Logger } from './logger.js';

/**
 * Resolves with the first SIGTERM or SIGINT (logged), then stops listening: a second signal is the
 * caller's to handle (the agent takes it as "stop now").
 */
export function waitForSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      logger.info({ event: 'signal', signal }, `received ${signal}`);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}
