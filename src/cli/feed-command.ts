import { Flags } from '@oclif/core';
import { formatDuration, parseDuration } from '../util/duration.js';
import type { Logger, LogLevel } from '../util/logger.js';
import type { RegistryTarget } from './cluster-contract.js';
import { ClusterCommand, EXIT, type ClusterFlags } from './cluster-command.js';
import { UserError } from './errors.js';

const LOG_LEVELS: LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** A duration flag in seconds (`30`, `500ms`, `2s`); `min` is the smallest value allowed. */
export function durationFlag(options: { summary: string; default: number; min?: number }) {
  return Flags.custom<number>({
    summary: options.summary,
    helpValue: '<duration>',
    async parse(input) {
      const seconds = parseDuration(input);
      if (seconds < (options.min ?? 0)) throw new Error(`expected a duration of at least ${options.min}s`);
      return seconds;
    },
  })({ default: options.default, defaultHelp: async () => formatDuration(options.default) });
}

/**
 * Base of the long-running commands that feed a load balancer from the registry (`lb haproxy`,
 * `render`): the target flags, a log level, and JSON log lines on stdout off a terminal (as the
 * agent's), readable lines on one. No --json: their output is the log.
 */
export abstract class FeedCommand extends ClusterCommand {
  static override enableJsonFlag = false;

  static logLevelFlag = Flags.string({
    summary: 'Log threshold; DEBUG=proxy-stone:service-discovery lowers it to debug.',
    options: LOG_LEVELS,
    env: 'LOG_LEVEL',
    default: 'info',
  });

  /** The registry the feed watches. An agent's API has no watch a feed could trust to be complete. */
  protected registryTarget(flags: ClusterFlags): RegistryTarget {
    const target = this.target(flags);
    if (target.kind !== 'registry') {
      throw new UserError(`${this.id?.replaceAll(':', ' ')} reads the registry itself: give --endpoints (etcd URLs or one redis:// URL) instead of --agent`, EXIT.usage);
    }
    return target;
  }

  protected async logger(level: string): Promise<Logger> {
    const { createLogger } = await import('../util/logger.js');
    return createLogger({ level: level as LogLevel, destination: process.stdout });
  }
}
