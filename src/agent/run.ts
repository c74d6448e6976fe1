import { apiKeys, apiListenError, checkApiHost } from '../config/api-settings.js';
import { describeSource, loadConfig, type FlagValue } from '../config/load.js';
import { openRegistry, RegistryUnavailableError } from '../registry/index.js';
import { createLogger, type Logger } from '../util/logger.js';
import { waitForSignal } from '../util/signals.js';
import { ServiceAgent, agentRegistryOptions } from './agent.js';
import { defaultEndpointNotice, defaultEndpointUnreachableNotice, memoryRegistryNotice } from './registry-notices.js';
import { advertisedApiUrl } from '../api/advertised-url.js';
import { errMessage, settleWithin, withDeadline } from './calls.js';

/**
 * The longest a graceful stop may take before the process exits anyway (exit 1): under `docker
 * stop`'s 10 s before SIGKILL. Every step has its own, shorter bound (the hand-over and the lease
 * revoke 1 s each, the API's connections 4 s); this catches what none of them foresaw.
 */
export const STOP_DEADLINE_MS = 8000;

export { advertisedApiUrl };

export interface RunAgentOptions {
  flags?: Readonly<Record<string, FlagValue>>;
  env?: NodeJS.ProcessEnv;
  /** Resolves when the agent should stop; defaults to the first SIGTERM or SIGINT. */
  until?: Promise<unknown>;
  logger?: Logger;
  /** Called once the agent is registered and its API is serving: the end of start-up. */
  onStarted?: () => void;
}

/**
 * The long-running `proxy-stone-sd agent`: load and validate the config (a bad value throws a
 * ConfigError before anything starts), start the agent and its API, and stop cleanly on a signal.
 * Returns the process exit code.
 */
export async function runAgent(options: RunAgentOptions = {}): Promise<number> {
  const loaded = await loadConfig({ flags: options.flags, env: options.env ?? process.env });
  // A host that does not resolve is a bad value like a malformed one: refused before anything starts.
  await checkApiHost(loaded);
  const { config } = loaded;
  const logger = options.logger ?? createLogger({ level: config.log.level, destination: process.stdout });
  for (const warning of loaded.warnings) logger.warn({ event: 'config.warning' }, warning);
  if (!config.enabled) {
    logger.info({ event: 'disabled' }, 'service discovery is disabled (SERVICE_DISCOVERY_ENABLED=false); nothing to do');
    return 0;
  }
  // The API's keys too (its key file is read here): keys that cannot be used are refused before anything starts.
  const authModule = config.api.enabled ? await import('../api/auth.js') : undefined;
  const apiAuth = authModule && apiKeys(() => authModule.loadApiAuth(config.api), loaded);

  const discovery = config.cluster.discovery;
  // Where the registry came from, said first: an agent alone on the memory registry, or looking for
  // an etcd on this host because nothing named one, must not look like a healthy cluster member.
  const defaultEndpoint = discovery.registry === 'etcd' && loaded.origins['cluster.discovery.endpoints']?.source === 'default';
  if (discovery.registry === 'memory') {
    const notice = memoryRegistryNotice(describeSource('cluster.discovery.registry', loaded));
    logger.warn({ event: notice.event }, notice.message);
  } else if (defaultEndpoint) {
    const notice = defaultEndpointNotice();
    logger.info({ event: notice.event, endpoints: discovery.endpoints }, notice.message);
  }

  // The API module (fastify, prom-client) loads only when the API is on.
  const api$ = config.api.enabled ? import('../api/index.js') : undefined;
  const metrics = api$ ? new (await api$).AgentMetrics() : undefined;
  // Registry calls go through the metrics decorator so round-trip latency is measured per call.
  const rawRegistry = await openRegistry(config.cluster.discovery, agentRegistryOptions(config, logger));
  const registry = metrics ? metrics.instrumentRegistry(rawRegistry) : rawRegistry;
  const agent = new ServiceAgent({ config, logger, registry });
  if (defaultEndpoint) {
    agent.once('registrationFailed', (err) => {
      if (!(err instanceof RegistryUnavailableError)) return;
      const notice = defaultEndpointUnreachableNotice();
      logger.warn({ event: notice.event, endpoints: discovery.endpoints }, notice.message);
    });
  }
  metrics?.observe(agent);
  const stopSignal = options.until ?? waitForSignal(logger);
  let stopCode = 0;
  let api: { url: string; close(): Promise<void> } | undefined;
  try {
    if (api$ && apiAuth) {
      // The API serves before the agent starts, so the URL is known when the first registration is
      // written: a start is then one serviceJoined for watchers, not a join and a serviceUpdated.
      // Until it has registered, /health and /health/ready answer 503 (registered: false) and the
      // cluster routes 503 not_started, as for a host that mounts the plugin before starting its agent.
      // Not "bind now, serve later": a listening Node server accepts at once, so requests would hang
      // meanwhile, and binding, closing and binding again to learn the port races others for it.
      const { startApiServer } = await api$;
      const server = await startApiServer(agent, {
        host: config.api.host,
        port: config.api.port,
        // Key, key file, read access and TLS are settings: flag > env > config file > default, as every setting.
        auth: apiAuth,
        tls: config.api.tls,
        logger,
        metrics,
        // Caps on event streams (unset: the stream's defaults, sized from the open-file limit).
        events: { maxClients: config.api.maxStreams, maxClientsPerAddress: config.api.maxStreamsPerClient },
        corsOrigins: config.api.corsOrigins,
      }).catch((err: unknown) => {
        // An address or port this machine will not listen on names its setting (exit 2).
        throw apiListenError(err, loaded) ?? err;
      });
      api = server;
      agent.setApiUrl(config.api.advertiseUrl ?? advertisedApiUrl(server.url, config.api.host, config.service.host));
    }
    await agent.start();
    logger.info(
      {
        event: 'agent.started',
        serviceId: agent.id,
        registry: agent.registry.description,
        ...(rawRegistry.activeEndpoint !== undefined ? { member: rawRegistry.activeEndpoint } : {}),
        namespace: config.cluster.discovery.namespace,
      },
      `agent ${agent.id} started (registry ${agent.registry.kind === agent.registry.description ? agent.registry.kind : `${agent.registry.kind} ${agent.registry.description}`}, namespace ${config.cluster.discovery.namespace})`,
    );
    options.onStarted?.();
    await stopSignal;
  } finally {
    logger.info({ event: 'agent.stopping', serviceId: agent.id }, 'stopping: draining, resigning, revoking the lease');
    // A second signal while stopping means "now": the lease then expires by its TTL.
    const force = waitForSignal(logger).then(() => {
      process.exit(130);
    });
    void force;
    // Resign first: stop() hands leadership over in its first round trip, so the next leader does
    // not wait for the API's connections to close. Meanwhile the API answers `stopping` (503 on
    // /health), then closes. Every step is bounded; the deadline is for what nobody foresaw.
    const { pending, failed } = await settleWithin(
      { 'the agent (hand-over, lease, checks, watch)': agent.stop(), 'the API (its connections)': api?.close() ?? Promise.resolve() },
      STOP_DEADLINE_MS,
    );
    for (const [step, err] of failed) logger.warn({ event: 'agent.stop_failed', step, err: errMessage(err) }, `stopping ${step} failed: ${errMessage(err)}`);
    if (pending.length > 0) {
      logger.error(
        { event: 'agent.stop_timeout', serviceId: agent.id, pending, deadlineMs: STOP_DEADLINE_MS },
        `stop did not finish within ${STOP_DEADLINE_MS / 1000} s (still waiting for ${pending.join(' and ')}); exiting: a lease not revoked expires by its TTL`,
      );
      stopCode = 1;
    } else {
      // The agent does not close a registry it was given.
      await withDeadline(registry.close(), 1000).catch(() => undefined);
      logger.info({ event: 'agent.stopped', serviceId: agent.id }, 'stopped');
    }
  }
  return stopCode;
}
