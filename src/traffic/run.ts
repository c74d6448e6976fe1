/**
 * The long-running `lb haproxy` and `render` commands as library functions: open the registry the
 * target names, run a {@link TrafficFeed}, hand its snapshots to a {@link HaproxySyncer} or a
 * {@link TemplateRenderer}, log, and stop cleanly on a signal. Errors that retrying cannot fix are
 * thrown (the CLI maps them to one line and an exit code); everything else is logged and retried.
 *
 * @module
 */
import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { RegistryTarget } from '../cli/cluster-contract.js';
import { RegistryClient } from '../cli/registry-client.js';
import { RegistryAuthError, RegistryUnavailableError, type Registry } from '../registry/types.js';
import type { Logger } from '../util/logger.js';
import { waitForSignal } from '../util/signals.js';
import { TrafficFeed, type TrafficSnapshot } from './feed.js';
import { HaproxyRuntimeApi } from './haproxy-runtime.js';
import { HaproxySyncer } from './haproxy-sync.js';
import { compileTemplate, TemplateError } from './template.js';
import { ExecError, TemplateRenderer, type RenderOutcome } from './template-renderer.js';

/** A path flag that cannot work (`--out` in a directory that does not exist). */
export class OutputPathError extends Error {
  override name = 'OutputPathError';
}

interface FeedRun {
  target: RegistryTarget;
  logger: Logger;
  /** Resolves when the command should stop (default: the first SIGTERM or SIGINT). */
  until?: Promise<unknown>;
}

export interface RunHaproxyFeedOptions extends FeedRun {
  socket: string;
  backend: string;
  prefix?: string;
  serverOptions?: string;
  /** Milliseconds between full re-reads of HAProxy's state (default 1000). */
  resyncIntervalMs?: number;
  /** Milliseconds a server whose instance left stays in maint before it is deleted (default 10 000). */
  removeDelayMs?: number;
  /** Milliseconds allowed for each Runtime API command (default 2000). */
  haproxyTimeoutMs?: number;
  /** Called with the syncer once it runs (tests and benchmarks time it). */
  onStarted?: (parts: { feed: TrafficFeed; syncer: HaproxySyncer }) => void;
}

/** `proxy-stone-sd lb haproxy`: keeps one HAProxy backend equal to the registry until stopped. */
export async function runHaproxyFeed(options: RunHaproxyFeedOptions): Promise<void> {
  const { logger } = options;
  const api = new HaproxyRuntimeApi(options.socket, { timeoutMs: options.haproxyTimeoutMs ?? 2000 });
  const syncer = new HaproxySyncer({
    api,
    backend: options.backend,
    logger,
    ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
    ...(options.serverOptions !== undefined ? { serverOptions: options.serverOptions } : {}),
    ...(options.resyncIntervalMs !== undefined ? { resyncIntervalMs: options.resyncIntervalMs } : {}),
    ...(options.removeDelayMs !== undefined ? { removeDelayMs: options.removeDelayMs } : {}),
  });
  await withFeed(options, 'HAProxy', async (feed, stopped) => {
    const fatal = new Promise<Error>((resolve) => syncer.once('fatal', resolve));
    feed.on('snapshot', (s) => syncer.update(s));
    logger.info(
      { event: 'lb.started', socket: options.socket, backend: options.backend, prefix: syncer.prefix, serverOptions: syncer.serverOptions },
      `keeping backend ${options.backend} of the HAProxy at ${options.socket} equal to the registry (servers named ${syncer.prefix}*)`,
    );
    syncer.start();
    options.onStarted?.({ feed, syncer });
    const first = await Promise.race([firstSnapshot(feed, logger, stopped), fatal]);
    if (first instanceof Error) throw first;
    if (first) {
      syncer.update(first);
      const ended = await Promise.race([stopped, fatal]);
      if (ended instanceof Error) throw ended;
    }
  }).finally(() => syncer.stop());
}

export interface RunRenderOptions extends FeedRun {
  templateFile: string;
  out: string;
  exec?: string;
  execTimeoutMs?: number;
  debounceMs?: number;
  /** Render once and return (exec included); the registry must answer within the target's timeout. */
  once?: boolean;
  onStarted?: (parts: { feed: TrafficFeed; renderer: TemplateRenderer }) => void;
}

/** Largest template read: a config template is a few KB. */
const MAX_TEMPLATE_BYTES = 1024 * 1024;

/**
 * `proxy-stone-sd render`: the template, rendered to `out` on every change until stopped, or once.
 * Returns the outcome of the last render (for `--once`).
 */
export async function runRender(options: RunRenderOptions): Promise<RenderOutcome | undefined> {
  const { logger } = options;
  const template = compileTemplate(await readTemplate(options.templateFile), options.templateFile);
  await checkOutput(options.out);
  const renderer = new TemplateRenderer({
    template,
    out: options.out,
    namespace: options.target.namespace,
    logger,
    ...(options.exec ? { exec: options.exec } : {}),
    ...(options.execTimeoutMs !== undefined ? { execTimeoutMs: options.execTimeoutMs } : {}),
    ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
  });
  let last: RenderOutcome | undefined;
  await withFeed(options, 'the output', async (feed, stopped) => {
    options.onStarted?.({ feed, renderer });
    if (options.once) {
      // No retries: a script wants the registry's answer, or its error, within --timeout.
      last = await renderer.renderNow(await feed.start());
      if (last.exec && !last.exec.ok) throw new ExecError(options.exec!, last.exec.reason ?? 'failed', last.exec.output ?? '');
      return;
    }
    logger.info(
      { event: 'render.started', template: options.templateFile, file: options.out, exec: options.exec },
      `rendering ${options.templateFile} to ${options.out} on every change${options.exec ? `, then running: ${options.exec}` : ''}`,
    );
    const first = await firstSnapshot(feed, logger, stopped);
    if (!first) return;
    // The first render's errors are the template's or the path's: fatal. Later ones are logged and retried.
    last = await renderer.renderNow(first);
    feed.on('snapshot', (s) => renderer.update(s));
    const latest = feed.current();
    if (latest && latest !== first) renderer.update(latest);
    renderer.on('rendered', (outcome) => (last = outcome));
    await stopped;
  }).finally(() => renderer.stop());
  return last;
}

/**
 * Opens the registry and a feed, runs `body`, and always closes both. `body` gets the feed (not yet
 * started unless it starts it) and a promise of the stop signal. The feed's stale and live moments
 * are logged here, for both commands alike.
 */
async function withFeed(options: FeedRun & { once?: boolean }, keeps: string, body: (feed: TrafficFeed, stopped: Promise<unknown>) => Promise<void>): Promise<void> {
  const { logger, target } = options;
  const client = new RegistryClient(target, { reads: 'registry' });
  // While the registry is away nothing else may hold the event loop (the view's timers are unref'd).
  const hold = setInterval(() => undefined, 60_000);
  let feed: TrafficFeed | undefined;
  try {
    const registry: Registry = await client.registry();
    feed = new TrafficFeed(registry, target.namespace);
    feed.on('warning', (m) => logger.warn({ event: 'registry.skipped' }, m));
    feed.on('stale', (stale) => {
      if (stale) logger.warn({ event: 'feed.stale', registry: client.description }, `lost the watch on ${client.description}: keeping ${keeps} as it is until the registry answers`);
      else logger.info({ event: 'feed.live', registry: client.description }, `watching ${client.description} again (re-listed)`);
    });
    const stopped = options.once ? new Promise<never>(() => undefined) : (options.until ?? waitForSignal(logger));
    await body(feed, stopped);
  } finally {
    clearInterval(hold);
    await feed?.stop().catch(() => undefined);
    await client.close().catch(() => undefined);
  }
}

/**
 * The first listing: resolves with it, or with undefined when stopped before the registry answered.
 * An unreachable registry is logged (once) and retried by the feed; refused credentials are thrown.
 */
async function firstSnapshot(feed: TrafficFeed, logger: Logger, stopped: Promise<unknown>): Promise<TrafficSnapshot | undefined> {
  const later = new Promise<TrafficSnapshot>((resolve) => feed.once('snapshot', resolve));
  let first: TrafficSnapshot;
  try {
    first = await feed.start();
  } catch (err) {
    if (err instanceof RegistryAuthError || !(err instanceof RegistryUnavailableError)) throw err;
    logger.warn({ event: 'feed.unreachable', err: err.message }, `${err.message}; retrying until it answers`);
    const got = await Promise.race([later, stopped.then(() => undefined)]);
    if (!got) return undefined;
    first = got;
  }
  const { serving, draining, out, services, revision } = first;
  logger.info(
    { event: 'feed.listed', services: services.length, serving: serving.length, draining: draining.length, outOfTraffic: out.length, revision },
    `listed ${services.length} service${services.length === 1 ? '' : 's'}: ${serving.length} serving, ${draining.length} draining, ${out.length} out`,
  );
  return first;
}

async function readTemplate(file: string): Promise<string> {
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new TemplateError(file, undefined, 'not a file');
    size = info.size;
  } catch (err) {
    if (err instanceof TemplateError) throw err;
    throw new TemplateError(file, undefined, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `cannot read (${(err as Error).message})`);
  }
  if (size > MAX_TEMPLATE_BYTES) throw new TemplateError(file, undefined, `larger than ${MAX_TEMPLATE_BYTES / 1024} KiB`);
  const text = await readFile(file, 'utf8');
  if (text.includes('\u0000')) throw new TemplateError(file, undefined, 'not a text file');
  return text;
}

/** `--out` must be a file in a directory this process can write to (the temporary file goes there). */
async function checkOutput(out: string): Promise<void> {
  const dir = path.dirname(path.resolve(out));
  try {
    const info = await stat(out);
    if (info.isDirectory()) throw new OutputPathError(`--out ${out}: is a directory, expected a file path`);
  } catch (err) {
    if (err instanceof OutputPathError) throw err;
  }
  try {
    await access(dir, fsConstants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OutputPathError(`--out ${out}: ${code === 'ENOENT' ? `directory ${dir} does not exist` : `cannot write in ${dir} (${code})`}`);
  }
}
