/**
 * One etcd per test process, started on first use and reaped when the process exits (the harness's
 * exit hook kills a local etcd; testcontainers' reaper removes a container). Test files share it and
 * keep apart with `uniqueNamespace()`. It cannot be killed or restarted: fault tests must call
 * `startEtcd()` for a server of their own.
 */
import { startEtcd, type EtcdServer } from './etcd.js';

let shared: Promise<EtcdServer> | undefined;

/** The process-wide etcd; every caller gets the same server. */
export function sharedEtcd(): Promise<EtcdServer> {
  shared ??= startEtcd().then(guard);
  return shared;
}

/** Wraps the server so one test cannot take it away from the others. */
function guard(server: EtcdServer): EtcdServer {
  const refuse = (what: string) => {
    throw new Error(`the shared etcd cannot be ${what}; use startEtcd() in fault tests`);
  };
  return {
    get kind() {
      return server.kind;
    },
    get endpoint() {
      return server.endpoint;
    },
    get endpoints() {
      return server.endpoints;
    },
    get metricsUrl() {
      return server.metricsUrl;
    },
    get dataDir() {
      return server.dataDir;
    },
    get pid() {
      return server.pid;
    },
    controllable: false,
    // Stopping is left to process exit, so later test files still find it running.
    stop: async () => undefined,
    kill: () => refuse('killed'),
    restart: async () => refuse('restarted'),
    waitHealthy: (timeoutMs) => server.waitHealthy(timeoutMs),
  };
}
