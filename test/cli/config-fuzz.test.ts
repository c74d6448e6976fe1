import { expect } from 'chai';
import fc from 'fast-check';
import { ConfigError, resolveConfig } from '../../src/config/load.js';
import { SETTINGS, canonicalEnv, envNames, flagNames } from '../../src/config/settings.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ContextsError, parseContexts, selectContext } from '../../src/cli/contexts.js';
import { ensureBuilt, runCli, type CliResult } from './fixtures.js';

/**
 * Property-based hostile input (issue 16): random values (any Unicode, control and bidirectional
 * characters, huge and negative numbers, empty and very long strings) for every environment variable
 * and flag of the settings table. The loader either loads, or throws its ConfigError: one line, naming
 * the variable (or flag) as given, with no raw control character and no secret in it. Never a
 * TypeError or a RangeError from somewhere inside.
 */

/** A character a terminal could act on, raw: C0 and C1 controls, DEL, bidirectional controls. */
const RAW_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
/** What would end a line: in a terminal, a log viewer or a JSON-lines reader. */
const LINE_BREAK = /[\n\r\u2028\u2029]/;

const HOSTILE_CHARS = ['\u0000', '\u0001', '\u0007', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009b', '\u00a0', '\u2028', '\u202e', '\u2066', '\u200f', '\ufeff', ' ', '=', ',', '/', ':', '%', '\\', '"', '[', ']', '@', '-'];
/** Values that are nearly right, for a hostile character or a number to be added to. */
const PLAUSIBLE = ['1', '0', '30', '30s', '500ms', '1.5m', '576h', 'true', 'off', '127.0.0.1', 'localhost', '::1', 'http://127.0.0.1:2379', 'redis://127.0.0.1:6379', '/health', 'a=b,c=d', 'proxy-stone', 'etcd', 'viewer', '50%', '/etc/hosts'];

const hostileChar = fc.constantFrom(...HOSTILE_CHARS);
const hugeNumber = fc.oneof(
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc.double().map(String),
  fc.integer().map(String),
  fc.integer({ min: 20, max: 400 }).map((n) => '9'.repeat(n)),
  fc.constantFrom('-1', '-0', '1e400', 'NaN', 'Infinity', '0x10', '1_000', '65536', '2147483648', '600h', '99999999999999999999ms'),
);
const value = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 3 },
  { arbitrary: fc.string({ unit: hostileChar, maxLength: 12 }), weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom(...PLAUSIBLE), fc.string({ unit: hostileChar, minLength: 1, maxLength: 3 }), fc.constantFrom('', ...PLAUSIBLE)).map((p) => p.join('')), weight: 3 },
  { arbitrary: hugeNumber, weight: 2 },
  { arbitrary: fc.constantFrom('', ' ', '\t\n'), weight: 1 },
  { arbitrary: fc.tuple(fc.integer({ min: 300, max: 20_000 }), fc.constantFrom('a', '9', '\u202e', 'é', ',')).map(([n, c]) => c.repeat(n)), weight: 1 },
);

const ENV_NAMES = SETTINGS.flatMap((s) => envNames(s));
const FLAG_NAMES = SETTINGS.filter((s) => s.kind !== 'boolean').flatMap((s) => flagNames(s));
const SECRET_ENV = new Set(SETTINGS.filter((s) => s.secret).flatMap((s) => envNames(s)));
const SECRET_FLAGS = new Set(SETTINGS.filter((s) => s.secret).flatMap((s) => flagNames(s).map((f) => `--${f}`)));

/** The loader's answer to `given`: nothing (it loaded), or what was wrong with its error. */
function check(load: () => unknown, given: Record<string, string>, label: (name: string) => string, secrets: ReadonlySet<string>): void {
  let err: unknown;
  try {
    load();
    return;
  } catch (e) {
    err = e;
  }
  const problem = problemWith(err, given, label, secrets);
  // Built only on failure: the inputs can be hundreds of kilobytes.
  if (problem) expect.fail(`${problem}\ngiven: ${JSON.stringify(given).slice(0, 2000)}\nthrown: ${String(err).slice(0, 2000)}`);
}

function problemWith(err: unknown, given: Record<string, string>, label: (name: string) => string, secrets: ReadonlySet<string>): string | undefined {
  if (!(err instanceof ConfigError)) return 'not a ConfigError';
  const { message } = err;
  if (LINE_BREAK.test(message)) return 'more than one line';
  if (RAW_UNSAFE.test(message)) return 'a raw control character';
  if (message.length >= 1000) return `${message.length} characters long`;
  // Names one of the variables (flags) that were given, as given: `SERVICE_PORT=… (env)`.
  if (!Object.keys(given).some((name) => message.includes(label(name)))) return 'names none of the variables given';
  const shown = Object.entries(given).filter(([name]) => !secrets.has(name)).map(([, v]) => v);
  for (const [name, v] of Object.entries(given)) {
    const secret = v.trim();
    // (Unless another variable, shown as it should be, holds the same text.)
    if (secrets.has(name) && secret.length >= 8 && message.includes(secret) && !shown.some((o) => o.includes(secret))) return `shows the secret ${name}`;
  }
  return undefined;
}

describe('config fuzz: hostile values for every setting', function () {
  this.timeout(120_000);

  it('every environment variable: loads, or one clean line naming the variable (in-process)', () => {
    const env = fc.record(Object.fromEntries(ENV_NAMES.map((name) => [name, value])), { requiredKeys: [] });
    fc.assert(
      fc.property(env, (given) => {
        const set = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined && v.trim() !== '')) as Record<string, string>;
        check(() => resolveConfig({ env: given }), set, (name) => `${name}=`, SECRET_ENV);
      }),
      { numRuns: 300 },
    );
  });

  it('one variable at a time, each variable many times: loads, or names exactly that variable', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ENV_NAMES), value, (name, v) => {
        if (v.trim() === '') return;
        check(() => resolveConfig({ env: { [name]: v } }), { [name]: v }, (n) => `${n}=`, SECRET_ENV);
      }),
      { numRuns: 1500 },
    );
  });

  it('every flag of the agent: loads, or one clean line naming the flag', () => {
    fc.assert(
      fc.property(fc.constantFrom(...FLAG_NAMES), value, (flag, v) => {
        check(() => resolveConfig({ env: {}, flags: { [flag]: v } }), { [`--${flag}`]: v }, (n) => `${n}=`, SECRET_FLAGS);
      }),
      { numRuns: 800 },
    );
  });

  describe('through the real CLI process', () => {
    before(function () {
      this.timeout(180_000);
      ensureBuilt();
    });

    /** A value that is wrong for every setting and every endpoint: a control or bidi character inside it (no NUL: argv and env cannot hold one). */
    const broken = fc
      .tuple(
        fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }).filter((s) => s.trim() !== '' && !s.startsWith('-')),
        fc.constantFrom('\u0001', '\u0007', '\u001b', '\u007f', '\u0085', '\u009b', '\u202e', '\u2066'),
        fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replace(/\u0000/g, '')),
      )
      .map((parts) => parts.join(''));

    function expectOneLineUsageError(res: CliResult, what: string): void {
      const all = `${what} → exit ${res.code}\nstdout: ${res.stdout}\nstderr: ${JSON.stringify(res.stderr)}`;
      expect(res.code, all).to.equal(2);
      expect(res.stderr.trimEnd().split('\n'), all).to.have.length(1);
      expect(res.stderr, all).to.match(/^Error: /);
      expect(res.stderr.trimEnd(), all).not.to.match(RAW_UNSAFE);
      expect(res.stderr, all).not.to.match(/\n\s+at |TypeError|RangeError/);
    }

    it('agent with one bad environment variable: exit 2, one line naming it', async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...SETTINGS.map(canonicalEnv)), broken, async (name, v) => {
          const res = await runCli(['agent'], { env: { [name]: v }, timeoutMs: 15_000 });
          expectOneLineUsageError(res, `${name}=${JSON.stringify(v)} agent`);
          expect(res.stderr, res.stderr).to.include(`${name}=`);
        }),
        // A hung run costs its whole timeout: stop at the first failure rather than shrink through more.
        { numRuns: 6, endOnFailure: true },
      );
    });

    it('status --endpoints <random>: exit 2, one line naming --endpoints', async () => {
      await fc.assert(
        fc.asyncProperty(broken, async (v) => {
          const res = await runCli(['status', `--endpoints=${v}`, '--timeout', '2'], { timeoutMs: 15_000 });
          expectOneLineUsageError(res, `status --endpoints=${JSON.stringify(v)}`);
          expect(res.stderr).to.match(/^Error: --endpoints /);
        }),
        { numRuns: 6, endOnFailure: true },
      );
    });
  });
});

describe('config fuzz: hostile contexts files', function () {
  this.timeout(120_000);
  const FILE = '/home/op/.config/proxy-stone-sd/contexts.yaml';
  const FIELDS = ['endpoints', 'namespace', 'registry', 'agent', 'apiKeyFile', 'agentTls', 'credentials', 'caFile', 'passwordFile', 'current'];
  const name = fc.oneof(fc.constantFrom('prod', 'staging', 'a.b-c_1', '__proto__', 'constructor', ''), value);
  const leaf = fc.oneof({ arbitrary: value, weight: 5 }, fc.integer(), fc.boolean(), fc.constant(null), fc.array(value, { maxLength: 3 }));
  const fields = fc.dictionary(fc.oneof({ arbitrary: fc.constantFrom(...FIELDS), weight: 5 }, value), fc.oneof({ arbitrary: leaf, weight: 4 }, fc.dictionary(fc.constantFrom('caFile', 'certFile', 'keyFile', 'usernameFile', 'passwordFile', 'x'), leaf)), { maxKeys: 5 });
  const document = fc.record({ current: fc.oneof(name, fc.integer()), contexts: fc.oneof({ arbitrary: fc.dictionary(name, fields, { maxKeys: 3 }), weight: 4 }, leaf) }, { requiredKeys: [] });
  /** A document as we write it (JSON under comments), as a person might (YAML), or bytes that are neither. */
  const text = fc.oneof(
    document.map((d) => `# comment\n${JSON.stringify(d, null, 2)}`),
    document.map((d) => toYaml(d)),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.tuple(document.map((d) => toYaml(d)), fc.integer({ min: 0, max: 200 }), fc.string({ unit: hostileChar, minLength: 1, maxLength: 4 })).map(([t, at, junk]) => t.slice(0, at) + junk + t.slice(at)),
  );

  /** What is wrong with how the file was refused, if anything. */
  function problem(err: unknown): string | undefined {
    if (!(err instanceof ContextsError)) return `not a ContextsError: ${String(err).slice(0, 300)}`;
    if (LINE_BREAK.test(err.message)) return 'more than one line';
    if (RAW_UNSAFE.test(err.message)) return 'a raw control character';
    if (err.message.length >= 1000) return `${err.message.length} characters long`;
    if (!err.message.includes(FILE)) return 'does not name the file';
    return undefined;
  }

  it('in-process: reads, or one clean line naming the file (and the context and field)', () => {
    fc.assert(
      fc.property(text, (t) => {
        let err: unknown;
        try {
          const file = parseContexts(t, FILE);
          // What a command does next: pick the current context, or an unknown one.
          selectContext(file, undefined);
          for (const ctx of file.contexts.values()) expect(ctx).to.be.an('object');
          try {
            selectContext(file, 'no-such-context');
          } catch (e) {
            err = e;
          }
          expect(err, 'an unknown --context is refused').to.be.instanceOf(ContextsError);
          return;
        } catch (e) {
          err = e;
        }
        const p = problem(err);
        if (p) expect.fail(`${p}\ngiven: ${JSON.stringify(t).slice(0, 1500)}\nthrown: ${String(err).slice(0, 1500)}`);
      }),
      { numRuns: 1500 },
    );
  });

  it('through the real CLI: a broken contexts file is exit 2 and one line naming it, never a stack', async function () {
    this.timeout(180_000);
    ensureBuilt();
    const dir = mkdtempSync(path.join(tmpdir(), 'sd-contexts-fuzz-'));
    const file = path.join(dir, 'contexts.yaml');
    try {
      await fc.assert(
        fc.asyncProperty(text, async (t) => {
          try {
            parseContexts(t, file);
            return; // a valid file: not this test's business
          } catch {
            // refused in-process: the CLI must refuse it the same way
          }
          writeFileSync(file, t);
          const res = await runCli(['status', '--timeout', '1'], { env: { PROXY_STONE_SD_CONTEXTS_FILE: file }, timeoutMs: 15_000 });
          const all = `exit ${res.code}\nstderr: ${JSON.stringify(res.stderr)}\ngiven: ${JSON.stringify(t).slice(0, 500)}`;
          expect(res.code, all).to.equal(2);
          expect(res.stderr.trimEnd().split('\n'), all).to.have.length(1);
          expect(res.stderr, all).to.match(/^Error: /).and.include(file);
          expect(res.stderr.trimEnd(), all).not.to.match(RAW_UNSAFE);
        }),
        { numRuns: 8, endOnFailure: true },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
