/**
 * What the traffic tests share: instances that count the requests reaching them, records written
 * straight into the registry (no agents: each test sets the exact state it needs), and requests sent
 * through a load balancer.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { encodeServiceRecord } from '../../src/cluster/codec.js';
import type { KeyLayout } from '../../src/cluster/keys.js';
import type { Registry } from '../../src/registry/types.js';
import type { ServiceRecord } from '../../src/types.js';
import { listenOnLoopback, type LoopbackServer } from '../helpers/loopback.js';
import { putUnderLease, sampleRecord } from '../helpers/records.js';
import { ROOT } from '../cli/fixtures.js';

/** An instance: `GET /health` 200, anything else answers `<name>` and counts; `/slow` waits for {@link release}. */
export interface CountingInstance extends LoopbackServer {
  name: string;
  /** Requests other than health checks that reached it. */
  hits(): number;
  /** Ends every `/slow` request held so far. */
  release(): void;
  /** `/slow` requests being held. */
  held(): number;
}

export async function startInstance(name: string): Promise<CountingInstance> {
  let hits = 0;
  const waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/health') return void res.end('ok');
    hits++;
    if (req.url === '/slow') {
      waiting.push(() => res.end(name));
      return;
    }
    res.end(name);
  });
  const loopback = await listenOnLoopback(server);
  return {
    ...loopback,
    name,
    hits: () => hits,
    release: () => {
      for (const done of waiting.splice(0)) done();
    },
    held: () => waiting.length,
  };
}

/** Writes an instance's record as its agent would (under a long lease: the test deletes it to make it leave). */
export async function putRecord(registry: Registry, layout: KeyLayout, id: string, port: number, overrides: Partial<ServiceRecord> = {}): Promise<void> {
  await putUnderLease(registry, layout.service(id), encodeServiceRecord(sampleRecord(id, { host: '127.0.0.1', port, updatedAt: Date.now(), ...overrides })));
}

/** Sends `count` GETs to `url` one after the other; returns how many answers each body (instance name) gave. */
export async function requests(url: string, count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = (await res.text()).trim();
    const key = res.ok ? body : `HTTP ${res.status}`;
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

/** Polls until `check` is truthy; throws after `timeoutMs` naming what it waited for. */
export { waitFor } from '../helpers/agent-cluster.js';

/** The walk-through's directory in docs/load-balancers.md, which tests replace with a temp dir. */
export const DOCS_DIR = '/tmp/sd-getting-started';

/**
 * docs/load-balancers.md as tests use it: the files its `cat > FILE <<'EOF'` blocks write (by path),
 * and the command lines of its `sh` blocks.
 */
export function loadBalancersDoc(): { files: Map<string, string>; commands: string[] } {
  const text = readFileSync(path.join(ROOT, 'docs/load-balancers.md'), 'utf8');
  const files = new Map<string, string>();
  const commands: string[] = [];
  for (const block of text.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
    const body = block[1]!;
    for (const m of body.matchAll(/^cat > (\S+) <<'EOF'\n([\s\S]*?)^EOF$/gm)) files.set(m[1]!, `${m[2]}`);
    const withoutHeredocs = body.replace(/^cat > \S+ <<'EOF'\n[\s\S]*?^EOF$/gm, '');
    for (const line of withoutHeredocs.split('\n')) if (line.trim() !== '' && !line.startsWith('#')) commands.push(line.trim());
  }
  return { files, commands };
}

/**
 * A command line of docs/load-balancers.md as run here: `npx proxy-stone-sd` and `./bin/run.js` become
 * `proxy-stone-sd` (the built CLI on PATH: binOnPath in test/cli/fixtures.ts), the docs' etcd and directory this
 * run's, after `swaps` (socket paths, ports) are applied.
 */
export function localDocsCommand(line: string, where: { endpoint: string; dir: string; swaps?: [string, string][] }): string {
  let out = line;
  for (const [from, to] of where.swaps ?? []) out = out.replaceAll(from, to);
  return out
    .replace(/^(npx proxy-stone-sd|\.\/bin\/run\.js) /, 'proxy-stone-sd ')
    .replaceAll('http://127.0.0.1:2379', where.endpoint)
    .replaceAll(DOCS_DIR, where.dir);
}

/** A command the docs run in the background (`… > log &`), without the redirection and the `&`. */
export function foreground(line: string): string {
  return line.replace(/\s*>\s*\S+\s*&$/, '');
}

/** The one command line of the doc that starts with `prefix` and contains every one of `parts`. */
export function docsCommand(commands: readonly string[], prefix: string, ...parts: string[]): string {
  const found = commands.filter((c) => c.startsWith(prefix) && parts.every((p) => c.includes(p)));
  if (found.length !== 1) throw new Error(`docs/load-balancers.md: expected one command starting "${prefix}" with ${parts.join(', ')}, found ${found.length}`);
  return found[0]!;
}
