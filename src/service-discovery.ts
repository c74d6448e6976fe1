import { ServiceAgent, type AgentOptions } from './agent/agent.js';
import { configFromPartial, type DeepPartial } from './config/load.js';
import type { SdConfig } from './config/types.js';
import type { Registry } from './registry/types.js';
import type { Logger } from './util/logger.js';

/**
 * The seed's programmatic API for a Proxy-Stone process that embeds discovery:
 *
 * ```ts
 * const sd = new ProxyStoneServiceDiscovery(serviceDiscoveryConfig, logger);
 * await sd.start();
 * sd.on('serviceJoined', (service) => ...);
 * const healthy = await sd.getHealthyServices({ region: 'us-east-1' });
 * await sd.setServiceEnabled(id, false);
 * // With `service.checks: ['ttl://worker?ttl=30s']`: in-process work says it is alive.
 * sd.reportCheck('worker', true, 'queue drained');
 * await sd.stop();
 * ```
 *
 * The config is the seed's nested shape; missing settings take their defaults and the whole is
 * validated, so a bad value throws a ConfigError naming it.
 */
export class ProxyStoneServiceDiscovery extends ServiceAgent {
  constructor(config: DeepPartial<SdConfig> | SdConfig, logger?: Logger, options: Omit<AgentOptions, 'config' | 'logger'> & { registry?: Registry } = {}) {
    super({ ...options, config: configFromPartial(unwrap(config)), logger });
  }
}

/** Accepts the seed's `{ serviceDiscoveryConfig: {...} }` wrapper too. */
function unwrap(config: DeepPartial<SdConfig> | SdConfig | { serviceDiscoveryConfig: DeepPartial<SdConfig> }): DeepPartial<SdConfig> {
  return 'serviceDiscoveryConfig' in config ? config.serviceDiscoveryConfig : config;
}
