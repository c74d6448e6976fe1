/**
 * Runs the dashboard on a terminal until the user quits: opens the CLI's client for the target and a
 * live source, draws with ink on the alternate screen, and on the way out restores the terminal and
 * closes every connection, so the process ends by itself with exit code 0.
 *
 * @module
 */
import { render } from 'ink';
import { openClusterClient } from '../cli/cluster-client.js';
import type { ClusterClient, ClusterTarget } from '../cli/cluster-contract.js';
import { DashboardApp } from './components/dashboard-app.js';
import type { MinHealthy } from '../cluster/capacity.js';
import { DashboardController } from './controller.js';
import { DashboardState } from './dashboard-state.js';
import { AgentSource, clusterLabel, RegistrySource, type LiveSource } from './live-source.js';

export interface RunDashboardOptions {
  target: ClusterTarget;
  /** Who the audit trail names for enable/disable. */
  actor?: string;
  /** The capacity guard's minimum for disables through etcd (an agent applies its own). */
  minHealthy?: MinHealthy;
  /** Colour on (the caller applies NO_COLOR / FORCE_COLOR). */
  color: boolean;
  /** Most data-driven frames per second (default 8). */
  fps?: number;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
}

// The alternate screen: the dashboard takes the whole terminal and gives the scrollback back untouched.
const ENTER_ALT_SCREEN = '\u001B[?1049h\u001B[H';
const LEAVE_ALT_SCREEN = '\u001B[?25h\u001B[?1049l';

/** Resolves when the user quits (q, Ctrl-C, SIGINT, SIGTERM, SIGHUP); rejects on a rendering bug. */
export async function runDashboard(options: RunDashboardOptions): Promise<void> {
  const stdout = options.stdout ?? process.stdout;
  const stdin = options.stdin ?? process.stdin;
  let controller: DashboardController | undefined;
  // Anything written to stderr would tear through the frame: warnings go to the event log.
  const onWarning = (m: string) => controller?.sink.notice(m, 'warn');
  const target = options.target;
  let client: ClusterClient;
  let source: LiveSource;
  if (target.kind === 'registry') {
    // One registry client for the watch, the detail reads and the actions: one connection to etcd
    // (or Redis), as an agent holds. Only the first paint reads through etcd's HTTP gateway, which
    // answers before gRPC has loaded, on a client of its own that is closed once it has answered.
    const { RegistryClient } = await import('../cli/registry-client.js');
    const registry = new RegistryClient({ ...target, onWarning }, { reads: 'registry' });
    client = registry;
    source = new RegistrySource(target, {
      registry: () => registry.registry(),
      quickList: async () => {
        const once = target.registry === 'redis' ? registry : new RegistryClient({ ...target, onWarning });
        try {
          const { services } = await once.listServices();
          return { services, leaderId: services.find((s) => s.role === 'leader')?.id ?? null };
        } finally {
          if (once !== registry) await once.close();
        }
      },
    });
  } else {
    client = await openClusterClient({ ...target, onWarning });
    source = new AgentSource(client);
  }
  const state = new DashboardState({
    connection: {
      source: target.kind,
      target: client.description,
      cluster: target.kind === 'registry' ? clusterLabel(target.clusterName, target.namespace) : '…',
      connected: false,
      synced: false,
    },
  });
  controller = new DashboardController({
    state,
    source,
    client,
    ...(options.actor !== undefined ? { actor: options.actor } : {}),
    ...(options.minHealthy !== undefined ? { minHealthy: options.minHealthy } : {}),
    ...(options.fps !== undefined ? { fps: options.fps } : {}),
    timeoutMs: target.timeoutMs,
  });
  const quit = () => controller!.quit();
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, quit);

  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    stdout.write(LEAVE_ALT_SCREEN);
  };
  // A crash must not leave the terminal on the alternate screen (ink restores raw mode itself).
  process.once('exit', restore);
  stdout.write(ENTER_ALT_SCREEN);
  const app = render(<DashboardApp controller={controller} color={options.color} />, {
    stdout,
    stdin,
    exitOnCtrlC: false,
    patchConsole: true,
    // Not ink's incrementalRendering: in ink 6.8 it starts each frame one line too low when the frame
    // ends with a newline (any frame shorter than the terminal), leaving the old top line behind.
  });
  controller.start();
  let failure: unknown;
  try {
    await Promise.race([controller.finished, app.waitUntilExit()]);
  } catch (err) {
    failure = err;
  } finally {
    app.unmount();
    await app.waitUntilExit().catch(() => undefined);
    restore();
    process.off('exit', restore);
    for (const s of signals) process.off(s, quit);
    await controller.close();
    await client.close().catch(() => undefined);
  }
  if (failure) throw failure;
}
