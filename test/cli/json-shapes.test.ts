import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { API_KEY, BIN, ROOT, cliEnv, ensureBuilt, json, runCli, startCluster, type TestCluster } from './fixtures.js';

/**
 * `--json` output is a contract (scripts parse it), so the shape of every result type is checked in
 * as test/cli/json-shapes.json and each run is compared with it: a renamed, removed or retyped key
 * fails here and shows up in review as a change to that file.
 *
 * The file's notation: an object lists its keys (`key?` when it may be absent); `{"*": …}` is a map
 * whose keys are data (regions, zones, metadata); `[item]` an array of items of one shape; a string
 * names JSON types, `|`-separated (`"number|null"`); `"object"`/`"array"` accept any of that type;
 * `{"$or": [a, b]}` either shape (`["null", {…}]` for a nullable object).
 *
 * After an intended change, `UPDATE_JSON_SHAPES=1 npx mocha test/cli/json-shapes.test.ts` rewrites
 * the entries that no longer match (new keys arrive marked optional, vanished ones become optional):
 * review the diff and tighten it by hand.
 */

type Shape = string | Shape[] | { [key: string]: Shape };

const SHAPES_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'json-shapes.json');
/** Keys whose value is a map keyed by data, with how many levels of such keys. */
const MAP_KEYS: Record<string, number> = { servicesByRegion: 1, servicesByZone: 2, metadata: 1 };

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

function isObject(shape: Shape): shape is { [key: string]: Shape } {
  return typeof shape === 'object' && !Array.isArray(shape);
}

function alternatives(shape: Shape): Shape[] {
  return isObject(shape) && Array.isArray(shape.$or) ? shape.$or : [shape];
}

function kindOf(shape: Shape): string {
  return typeof shape === 'string' ? 'scalar' : Array.isArray(shape) ? 'array' : 'object';
}

/** The shape of a JSON value; array items are merged into one shape. */
export function shapeOf(value: unknown, mapDepth = 0): Shape {
  if (Array.isArray(value)) return value.length ? [value.map((v) => shapeOf(v)).reduce(mergeShapes)] : [];
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (mapDepth > 0) {
      return { '*': entries.length ? entries.map(([, v]) => shapeOf(v, mapDepth - 1)).reduce(mergeShapes) : 'any' };
    }
    return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, shapeOf(v, MAP_KEYS[k] ?? 0)]));
  }
  return typeName(value);
}

function unionOf(a: string, b: string): string {
  const types = new Set([...a.split('|'), ...b.split('|')]);
  return types.has('any') ? 'any' : [...types].sort().join('|');
}

/** A shape both values fit: types joined, keys missing on one side marked optional. */
export function mergeShapes(a: Shape, b: Shape): Shape {
  if (alternatives(a).length > 1 || alternatives(b).length > 1 || kindOf(a) !== kindOf(b)) {
    // One alternative per kind (scalars, arrays, objects), each merged.
    const byKind = new Map<string, Shape>();
    for (const alt of [...alternatives(a), ...alternatives(b)]) {
      const seen = byKind.get(kindOf(alt));
      byKind.set(kindOf(alt), seen === undefined ? alt : mergeShapes(seen, alt));
    }
    const alts = [...byKind.values()];
    return alts.length === 1 ? alts[0]! : { $or: alts };
  }
  if (typeof a === 'string' && typeof b === 'string') return unionOf(a, b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length && b.length ? [mergeShapes(a[0]!, b[0]!)] : a.length ? a : b;
  if (isObject(a) && isObject(b)) {
    if ('*' in a || '*' in b) return { '*': mergeShapes(a['*'] ?? b['*']!, b['*'] ?? a['*']!) };
    const keyed = (o: Record<string, Shape>) => new Map(Object.entries(o).map(([k, v]) => [k.replace(/\?$/, ''), { v, optional: k.endsWith('?') }]));
    const x = keyed(a);
    const y = keyed(b);
    const out: Record<string, Shape> = {};
    for (const k of [...new Set([...x.keys(), ...y.keys()])].sort()) {
      const p = x.get(k);
      const q = y.get(k);
      out[!p || !q || p.optional || q.optional ? `${k}?` : k] = p && q ? mergeShapes(p.v, q.v) : (p ?? q)!.v;
    }
    return out;
  }
  throw new Error('unreachable: shapes of one kind');
}

/** Where `value` departs from `shape`, one line each. */
export function shapeErrors(value: unknown, shape: Shape, at = '$'): string[] {
  if (typeof shape === 'string') {
    const allowed = shape.split('|');
    return allowed.includes('any') || allowed.includes(typeName(value)) ? [] : [`${at}: expected ${shape}, got ${typeName(value)}`];
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return [`${at}: expected an array, got ${typeName(value)}`];
    return shape.length ? value.flatMap((v, i) => shapeErrors(v, shape[0]!, `${at}[${i}]`)) : [];
  }
  if (Array.isArray(shape.$or)) {
    const tries = shape.$or.map((alt) => shapeErrors(value, alt, at));
    if (tries.some((t) => t.length === 0)) return [];
    // Report against the alternative of the value's own kind, if any.
    const same = shape.$or.findIndex((alt) => kindOf(alt) === (typeName(value) === 'object' ? 'object' : typeName(value) === 'array' ? 'array' : 'scalar'));
    return same === -1 ? [`${at}: expected one of ${JSON.stringify(shape.$or).slice(0, 80)}, got ${typeName(value)}`] : tries[same]!;
  }
  if (typeName(value) !== 'object') return [`${at}: expected an object, got ${typeName(value)}`];
  const object = value as Record<string, unknown>;
  if ('*' in shape) return Object.entries(object).flatMap(([k, v]) => shapeErrors(v, shape['*']!, `${at}.${k}`));
  const errors: string[] = [];
  const known = new Set<string>();
  for (const [key, sub] of Object.entries(shape)) {
    const name = key.replace(/\?$/, '');
    known.add(name);
    if (!(name in object)) {
      if (!key.endsWith('?')) errors.push(`${at}.${name}: missing`);
      continue;
    }
    errors.push(...shapeErrors(object[name], sub, `${at}.${name}`));
  }
  for (const name of Object.keys(object)) if (!known.has(name)) errors.push(`${at}.${name}: not in json-shapes.json`);
  return errors;
}

describe('--json output shapes (test/cli/json-shapes.json)', function () {
  this.timeout(60_000);
  let cluster: TestCluster;
  const observed = new Map<string, unknown[]>();
  const observe = (name: string, value: unknown) => observed.set(name, [...(observed.get(name) ?? []), value]);
  const expected = JSON.parse(readFileSync(SHAPES_FILE, 'utf8')) as Record<string, Shape>;
  const update = Boolean(process.env.UPDATE_JSON_SHAPES);

  before(async function () {
    this.timeout(180_000);
    ensureBuilt();
    cluster = await startCluster(3, { idPrefix: 'proxy-stone' });
  });
  after(async () => {
    await cluster?.stop();
    if (!update) return;
    const next: Record<string, Shape> = { ...expected };
    for (const [name, values] of observed) {
      const old = expected[name];
      if (old !== undefined && values.every((v) => shapeErrors(v, old).length === 0)) continue;
      const shapes = values.map((v) => shapeOf(v));
      next[name] = (old === undefined ? shapes : [old, ...shapes]).reduce(mergeShapes);
    }
    writeFileSync(SHAPES_FILE, `${JSON.stringify(next, null, 2)}\n`);
  });

  /** Runs the command, which must exit `exit`, and compares its JSON with the shape named `name`. */
  async function matches(name: string, args: string[], exit = 0, env: NodeJS.ProcessEnv = {}): Promise<unknown> {
    const res = await runCli(args, { env });
    expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.equal(exit);
    const value = json(res);
    observe(name, value);
    const shape = expected[name];
    if (update) return value;
    expect(shape, `no entry "${name}" in json-shapes.json (run with UPDATE_JSON_SHAPES=1)`).to.not.equal(undefined);
    expect(shapeErrors(value, shape!), `${name}: ${JSON.stringify(value).slice(0, 400)}`).to.deep.equal([]);
    return value;
  }

  it('status, through etcd, through an agent, and unreachable', async () => {
    await matches('status', ['status', '--json', ...cluster.registryArgs]);
    await matches('status', ['status', '--json', ...cluster.agentArgs]);
    await matches('status', ['status', '--json', '--endpoints', 'http://127.0.0.1:1', '--timeout', '1'], 4);
  });

  it('services list and topology, alike both ways', async () => {
    await matches('services list', ['services', 'list', '--json', ...cluster.registryArgs]);
    await matches('services list', ['services', 'list', '--json', ...cluster.agentArgs]);
    await matches('topology', ['topology', '--json', ...cluster.registryArgs]);
    await matches('topology', ['topology', '--json', ...cluster.agentArgs]);
  });

  it('services disable/enable, one service and --all', async () => {
    await matches('services disable', ['services', 'disable', 'proxy-stone-2', '--reason', 'shapes', '--json', ...cluster.registryArgs]);
    await matches('services disable', ['services', 'disable', 'proxy-stone-2', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
    // Same state, new reason: reasonUpdated and previousReason, both ways.
    await matches('services disable', ['services', 'disable', 'proxy-stone-2', '--reason', 'shapes, again', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
    await matches('services disable', ['services', 'disable', 'proxy-stone-2', '--reason', 'shapes, once more', '--json', ...cluster.registryArgs]);
    await matches('services enable --all', ['services', 'enable', '--all', '--yes', '--json', ...cluster.registryArgs]);
    // The zone's only instance, kept by the capacity guard (exit 5): listed under kept.
    await matches('services disable --all', ['services', 'disable', '--all', '--zone', 'us-east-1a', '--min-healthy-per-zone', '1', '--yes', '--json', ...cluster.registryArgs], 5);
  });

  it('services show (a disabled service: intent and audit filled), alike both ways', async () => {
    await runCli(['services', 'disable', 'proxy-stone-3', '--reason', 'shapes', ...cluster.registryArgs]);
    await matches('services show', ['services', 'show', 'proxy-stone-3', '--json', ...cluster.registryArgs]);
    await matches('services show', ['services', 'show', 'proxy-stone-3', '--json', ...cluster.agentArgs]);
    await matches('services show', ['services', 'show', 'proxy-stone-1', '--json', ...cluster.agentArgs]);
    await runCli(['services', 'enable', 'proxy-stone-3', ...cluster.registryArgs]);
  });

  it('audit and doctor', async () => {
    await matches('audit', ['audit', '--json', ...cluster.registryArgs]);
    await matches('audit', ['audit', '--json', ...cluster.agentArgs]);
    await matches('doctor', ['doctor', '--json', '--health-url', `${cluster.nodes[0]!.upstream.url}/health`, ...cluster.registryArgs]);
    await matches('doctor', ['doctor', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
  });

  it('leader, leader resign and services forget, alike both ways', async () => {
    await matches('leader', ['leader', '--json', ...cluster.registryArgs]);
    await matches('leader', ['leader', '--json', ...cluster.agentArgs]);
    await matches('leader resign', ['leader', 'resign', '--json', ...cluster.registryArgs]);
    await matches('leader resign', ['leader', 'resign', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
    await matches('services forget', ['services', 'forget', 'proxy-stone-3', '--force', '--json', ...cluster.registryArgs]);
    await matches('services forget', ['services', 'forget', 'proxy-stone-3', '--force', '--json', '--api-key', API_KEY, ...cluster.agentArgs]);
    await matches('error', ['services', 'forget', 'proxy-stone-3', '--json', ...cluster.registryArgs], 5);
  });

  it('errors under --json', async () => {
    await matches('error', ['services', 'show', 'no-such-id', '--json', ...cluster.registryArgs], 3);
    await matches('error', ['services', 'list', '--json', '--bogus'], 2);
    await matches('error', ['topology', '--json', '--agent', 'http://127.0.0.1:1', '--timeout', '1'], 4);
  });

  it('context list, show, set, use and delete', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sd-shapes-contexts-'));
    const env = { PROXY_STONE_SD_CONTEXTS_FILE: path.join(dir, 'contexts.yaml') };
    const keyFile = path.join(dir, 'api-key');
    try {
      await matches('context list', ['context', 'list', '--json'], 0, env);
      await matches('context set', ['context', 'set', 'etcd', '--json', ...cluster.registryArgs, '--registry', 'etcd', '--password-file', keyFile, '--username-file', keyFile, '--registry-ca', keyFile], 0, env);
      await matches('context set', ['context', 'set', 'agent', '--json', ...cluster.agentArgs, '--api-key-file', keyFile, '--agent-ca', keyFile, '--agent-cert', keyFile, '--agent-key', keyFile], 0, env);
      await matches('context list', ['context', 'list', '--json'], 0, env);
      await matches('context show', ['context', 'show', 'agent', '--json'], 0, env);
      await matches('context show', ['context', 'show', '--json'], 0, env);
      await matches('context use|delete', ['context', 'use', 'agent', '--json'], 0, env);
      await matches('context use|delete', ['context', 'delete', 'agent', '--json'], 0, env);
      await matches('error', ['context', 'show', '--json'], 2, env);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('events --json lines (serviceDisabled, serviceEnabled)', async () => {
    for (const [type, enabled] of [['serviceDisabled', false], ['serviceEnabled', true]] as const) {
      const child = spawn(process.execPath, [BIN, 'events', '--json', '--count', '1', '--types', type, '--duration', '20', ...cluster.registryArgs], {
        cwd: ROOT,
        env: cliEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      let done = false;
      void exited.then(() => (done = true));
      // The watch starts some time after spawn: flip the state until the line arrives.
      const agent = cluster.nodes[0]!.agent;
      for (let i = 0; !done && i < 60; i++) {
        await agent.setServiceEnabled('proxy-stone-2', !enabled, { actor: 'test' });
        await agent.setServiceEnabled('proxy-stone-2', enabled, { reason: 'shapes', actor: 'test' });
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(await exited).to.equal(0);
      const line = JSON.parse(stdout.trim().split('\n')[0]!) as unknown;
      const name = `events line (${type})`;
      observe(name, line);
      if (!update) expect(shapeErrors(line, expected[name]!), name).to.deep.equal([]);
    }
    await cluster.nodes[0]!.agent.setServiceEnabled('proxy-stone-2', true, { actor: 'test' });
  });

  it('the shape checker itself: catches a missing, an extra and a retyped key', () => {
    const shape: Shape = { a: 'number', 'b?': 'string', c: [{ d: 'string|null' }], m: { '*': 'number' } };
    expect(shapeErrors({ a: 1, c: [{ d: null }], m: { x: 1 } }, shape)).to.deep.equal([]);
    expect(shapeErrors({ a: '1', c: [], m: {}, e: 1 }, shape)).to.deep.equal(['$.a: expected number, got string', '$.e: not in json-shapes.json']);
    expect(shapeErrors({ c: [{ d: 1 }], m: { x: 'y' } }, shape)).to.deep.equal([
      '$.a: missing',
      '$.c[0].d: expected string|null, got number',
      '$.m.x: expected number, got string',
    ]);
    expect(mergeShapes({ a: 'number', b: 'string' }, { a: 'null', c: 'number' })).to.deep.equal({ a: 'null|number', 'b?': 'string', 'c?': 'number' });
    const nullable = mergeShapes('null', { id: 'string' });
    expect(nullable).to.deep.equal({ $or: ['null', { id: 'string' }] });
    expect(shapeErrors(null, nullable)).to.deep.equal([]);
    expect(shapeErrors({ id: 1 }, nullable)).to.deep.equal(['$.id: expected string, got number']);
  });
});
