/**
 * How an agent opens its registry; used by the agent and by runAgent (for the registry it shares).
 *
 * @module
 */
import type { SdConfig } from '../config/types.js';
import { memberFailoverMs, type openRegistry } from '../registry/index.js';
import type { Logger } from '../util/logger.js';
import { KEEPALIVE_LOG_EVERY_MS } from './lease-session.js';

/**
 * How an agent opens its registry: warnings logged once, and with several etcd members, a member that
 * leaves a call unanswered for two renew intervals is left for another (each move logged).
 */
export function agentRegistryOptions(config: SdConfig, logger: Logger): NonNullable<Parameters<typeof openRegistry>[1]> {
  // While the whole cluster is away the registry goes round the members every few seconds: those
  // moves are logged once per KEEPALIVE_LOG_EVERY_MS, with the count of those not logged (the
  // keep-alive outage has its own lines). A move off one failed member is always logged.
  let outage: { at: number; quiet: number } | undefined;
  return {
    onWarning: (w) => logger.warn({ event: w.event }, w.message),
    failoverAfterMs: memberFailoverMs(config),
    onMemberChange: (c) => {
      const now = Date.now();
      if (!c.allFailing) outage = undefined;
      else if (outage && now - outage.at < KEEPALIVE_LOG_EVERY_MS) {
        outage.quiet++;
        return;
      }
      const quiet = outage?.quiet ?? 0;
      if (c.allFailing) outage = { at: now, quiet: 0 };
      logger.warn(
        { event: 'registry.member_changed', from: c.from, to: c.to, reason: c.reason, allFailing: c.allFailing, ...(quiet ? { notLogged: quiet } : {}) },
        `etcd member ${c.from} left (${c.reason}); now using ${c.to}${c.allFailing ? ', though every member failed recently' : ''}${quiet ? ` (${quiet} such moves not logged)` : ''}`,
      );
    },
  };
}
