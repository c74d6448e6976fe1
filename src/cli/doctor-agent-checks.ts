/**
 * `doctor --agent`: the checks made through an agent's API instead of this host's configuration and
 * registry.
 *
 * @module
 */
import type { FlagValue } from '../config/load.js';
import type { AgentClient, AgentHealthResult, KeyAccess } from './agent-client.js';
import { NOT_AN_AGENT, type AgentStatus, type AgentTarget } from './cluster-contract.js';
import { probeInstance, type DoctorCheck, type DoctorPlan } from './doctor-check.js';

/** Detail of the checks that describe this host's configuration, which `--agent` does not use. */
const SKIPPED_FOR_AGENT = 'skipped (checking an agent)';

/**
 * Checks through an agent's API, in place of the local ones: is its API up, what does its own
 * `/health` say, does it reach its registry with a current view, is there a leader, and what may the
 * given API key do. The local configuration is not what the agent runs with, so it is not loaded.
 */
export function agentChecks(target: AgentTarget, configFlags: Record<string, FlagValue>): DoctorPlan {
  let client: AgentClient | undefined;
  let status: AgentStatus | undefined;
  let statusError: Error | undefined;
  const open = async (): Promise<AgentClient> => {
    if (!client) {
      const { AgentClient } = await import('./agent-client.js');
      client = new AgentClient(target);
    }
    return client;
  };
  const unreachable = () => ({
    ok: false,
    skipped: true,
    detail:
      (statusError as { code?: unknown } | undefined)?.code === NOT_AN_AGENT
        ? 'not checked: the URL answers, but not as a proxy-stone-sd agent (see agent API)'
        : statusError?.name === 'AgentRequestError'
          ? 'not checked: the agent refused GET /service-discovery/status (see agent API)'
          : 'not checked: the agent API does not answer',
  });
  const ignored = Object.keys(configFlags).filter((f) => f !== 'endpoints' && f !== 'health-url');
  const checks: DoctorCheck[] = [
    {
      name: 'configuration',
      async run() {
        const unused = ignored.length ? `; ${ignored.map((f) => `--${f}`).join(', ')} not used` : '';
        return { ok: true, skipped: true, detail: `${SKIPPED_FOR_AGENT}: the agent runs with its own; run doctor on its host without --agent to check that${unused}` };
      },
    },
    {
      name: 'agent API',
      async run() {
        const c = await open();
        try {
          status = await c.agentStatus();
        } catch (err) {
          statusError = err as Error;
          const refused = isRefusal(err);
          return {
            ok: false,
            detail: (err as Error).message,
            hint: refused
              ? target.apiKey
                ? 'the agent does not know this key: check --api-key/SERVICE_DISCOVERY_API_KEY against its SERVICE_DISCOVERY_API_KEY or key file'
                : 'the agent wants an API key for reads (SERVICE_DISCOVERY_API_READ_ACCESS=viewer): give one with --api-key or SERVICE_DISCOVERY_API_KEY'
              : 'check --agent/PROXY_STONE_SD_AGENT and that the agent runs (its API may be off: --no-api)',
          };
        }
        return { ok: true, detail: `${c.description}: agent of ${status.currentService.id} (${status.currentService.region}/${status.currentService.zone}), ${status.status}` };
      },
    },
    {
      name: 'agent health',
      async run() {
        if (statusError?.name === 'AgentUnavailableError') return unreachable();
        let health: AgentHealthResult;
        try {
          health = await (await open()).agentHealth();
        } catch (err) {
          return { ok: false, detail: (err as Error).message, hint: 'GET /health is how probes and load balancers see this agent; check that it is a proxy-stone-sd agent URL' };
        }
        const what = `${health.registered ? 'registered' : 'not registered'}, view ${health.view.stale ? 'stale' : 'current'}, registry ${health.registry.reachable ? 'reachable' : 'unreachable'}`;
        const instance = status ? `; its instance ${status.currentService.id} is ${status.currentService.status}${status.currentService.enabled ? '' : ' (disabled)'}` : '';
        if (health.httpStatus === 200) return { ok: true, detail: `/health ${health.httpStatus} ${health.status}: ${what}${instance}` };
        return {
          ok: false,
          detail: `/health ${health.httpStatus} ${health.status}: ${what}${instance}`,
          hint: health.registered
            ? 'the agent cannot keep its view current: run doctor with --endpoints on the agent host to check etcd'
            : 'the agent is not registered (starting, stopping, or etcd refuses its lease): read its logs, and run doctor with --endpoints on its host',
        };
      },
    },
    {
      name: 'agent registry',
      async run() {
        if (!status) return unreachable();
        const r = status.registry;
        const where = `${r.kind} ${r.endpoints}`.trim();
        if (!r.reachable || status.view.stale) {
          return {
            ok: false,
            detail: `${where}: ${r.reachable ? 'reachable' : 'unreachable'}, view ${status.view.stale ? 'stale' : 'current'}${r.lastContact ? `, last answer ${ago(r.lastContact)}` : ''}`,
            hint: 'the agent cannot reach etcd: run doctor with --endpoints on the agent host',
          };
        }
        if (r.kind === 'memory') {
          // The demo's and the tests' choice, named on purpose; a real cluster's agents use etcd.
          return { ok: true, detail: `${where}: in memory, shared only within the agent's process (--registry memory, or the demo), view current, ${status.view.services} services` };
        }
        return { ok: true, detail: `${where} reachable, view current at revision ${status.view.revision}, ${status.view.services} services` };
      },
    },
    {
      name: 'leader',
      async run() {
        if (!status) return unreachable();
        if (!status.leaderId) {
          if (status.view.services === 0) return { ok: true, detail: 'no agents registered, so no leader expected' };
          return { ok: false, detail: 'the agent knows no leader', hint: 'agents campaign unless started with --no-leader-election; check their logs for "leader"' };
        }
        return { ok: true, detail: `${status.leaderId}${status.isLeader ? ' (this agent)' : ''}` };
      },
    },
    {
      name: 'API key',
      async run() {
        if (statusError?.name === 'AgentUnavailableError') return unreachable();
        if (!target.apiKey) {
          if (isRefusal(statusError)) return { ok: false, skipped: true, detail: 'not checked: no --api-key given, and the agent wants one for reads' };
          if (statusError) return unreachable();
          return { ok: true, skipped: true, detail: 'skipped: no --api-key given (reads are open on this agent; enable/disable through it need an operator key)' };
        }
        let access: KeyAccess;
        try {
          access = await (await open()).keyAccess();
        } catch (err) {
          return { ok: false, detail: (err as Error).message };
        }
        const keyHint = 'check --api-key/SERVICE_DISCOVERY_API_KEY against the agent\'s SERVICE_DISCOVERY_API_KEY or key file';
        if (!access.read) return { ok: false, detail: `refused: ${access.message ?? 'unknown key'}`, hint: keyHint };
        switch (access.write) {
          case 'allowed':
            return { ok: true, detail: 'accepted, with management rights: reads, and services enable/disable' };
          case 'refused':
            return { ok: true, detail: `accepted for reads only (${access.message ?? 'not an operator key'}): services enable/disable through this agent need an operator key` };
          case 'disabled':
            return { ok: false, detail: `accepted for reads, but ${access.message ?? 'the agent takes no writes'}`, hint: 'configure an operator key on the agent (SERVICE_DISCOVERY_API_KEY or a key file)' };
          default:
            return { ok: false, detail: `accepted for reads; writes gave an unexpected answer: ${access.message ?? ''}`, hint: 'is this a proxy-stone-sd agent of the same version?' };
        }
      },
    },
    {
      name: 'instance health',
      async run() {
        const url = typeof configFlags['health-url'] === 'string' ? configFlags['health-url'] : undefined;
        if (!url) {
          const seen = status ? `: its agent reports ${status.currentService.id} ${status.currentService.status}` : '';
          return { ok: true, skipped: true, detail: `${SKIPPED_FOR_AGENT}; give --health-url to probe an instance from here${seen}` };
        }
        return probeInstance(url, target.timeoutMs);
      },
    },
  ];
  return { checks, close: async () => void (await client?.close()) };
}

/**
 * The agent refused the request for its key (401/403). By name, not instanceof: the client's module
 * is loaded on demand, and a second copy of the error classes must not change the verdict.
 */
function isRefusal(err: unknown): boolean {
  const e = err as { name?: string; statusCode?: number };
  return e?.name === 'AgentRequestError' && (e.statusCode === 401 || e.statusCode === 403);
}

/** "12s ago" for an epoch-ms time. */
function ago(at: number): string {
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}min ago`;
}
