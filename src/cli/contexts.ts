/**
 * Contexts: named targets in one file, as kubeconfig has them, so an operator names the cluster once
 * (`context set prod --endpoints ... --namespace ...`, `context use prod`) instead of retyping
 * `--endpoints --namespace` on every command. The file names credential *files*, never secrets.
 *
 * ```yaml
 * current: prod
 * contexts:
 *   prod:
 *     endpoints: [https://etcd1:2379, https://etcd2:2379]
 *     namespace: proxy-stone
 *     credentials: { usernameFile: /etc/sd/user, passwordFile: /etc/sd/password, caFile: /etc/sd/ca.pem }
 *   staging-agent:
 *     agent: https://10.0.0.5:8790
 *     apiKeyFile: ~/.config/proxy-stone-sd/staging.key
 *     agentTls: { caFile: ca.pem, certFile: me.pem, keyFile: me-key.pem }
 * ```
 *
 * Everything read is hostile: the file is bounded in size, every value is checked as the flag it
 * stands for would be, and an error is one line naming the file, the context and the field. Nothing
 * here imports oclif; `yaml` is loaded only for a file a person wrote in YAML (the commands write JSON).
 *
 * @module
 */
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { describeExpectation, quoteValue, settingByPath, textProblem } from '../config/settings.js';
import { isHttpUrl, isRedisUrl, isRegistryUrl, redactUserinfo } from '../registry/endpoint.js';
import { escapeUnsafe, unsafeCharacterIn } from '../util/text.js';
import { TargetError } from './cluster-contract.js';

/** Environment variable naming the contexts file (default {@link defaultContextsPath}). */
export const CONTEXTS_FILE_ENV = 'PROXY_STONE_SD_CONTEXTS_FILE';
/** Environment variable naming the context to use, as `--context` does. */
export const CONTEXT_ENV = 'PROXY_STONE_SD_CONTEXT';

/** A contexts file larger than this is refused unread: a few hundred contexts fit in a few KiB. */
export const MAX_CONTEXTS_FILE_BYTES = 256 * 1024;
/** A secret file (password, user name, API key) larger than this is not a secret but a mistake. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;
/** A context name: a word a shell and a YAML key take as typed. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NAME_HINT = 'letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63 characters';
const MAX_PATH = 4096;

/** PEM file paths for TLS: `caFile` alone trusts a private CA, with `certFile` and `keyFile` mutual TLS. */
export interface TlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** One named target. Paths are absolute once read (relative ones are relative to the file). */
export interface Context {
  /** etcd client URLs, or one redis:// URL. */
  endpoints?: string[];
  namespace?: string;
  registry?: 'etcd' | 'redis';
  /** An agent's API URL, instead of endpoints. */
  agent?: string;
  /** A file holding the API key sent to the agent. */
  apiKeyFile?: string;
  /** TLS files for an https agent (the agent's `--api-tls-ca` asks for a client certificate). */
  agentTls?: TlsFiles;
  /** The registry's credentials, as files. */
  credentials?: TlsFiles & { usernameFile?: string; passwordFile?: string };
}

/** A contexts file as read: `exists` false when there is none yet (then nothing else is set). */
export interface ContextsFile {
  path: string;
  exists: boolean;
  current?: string;
  contexts: Map<string, Context>;
}

/** A mistake in the contexts file, `--context` or a `context` command: exit 2 (a {@link TargetError}). */
export class ContextsError extends TargetError {
  override name = 'ContextsError';
  constructor(message: string) {
    // It quotes a file anyone may have edited: a control or bidi character is shown, never obeyed,
    // and a line or paragraph separator does not break the line (as config/errors.ts shortSafe does).
    super(escapeUnsafe(message).replace(/[\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16)}`));
  }
}

/** `$XDG_CONFIG_HOME/proxy-stone-sd/contexts.yaml`, `~/.config/...` without it. */
export function defaultContextsPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME?.trim();
  // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME?.trim() || homedir(), '.config');
  return join(base, 'proxy-stone-sd', 'contexts.yaml');
}

/** The contexts file in use: {@link CONTEXTS_FILE_ENV} when set (and not empty), else the default. */
export function contextsPath(env: NodeJS.ProcessEnv = process.env): string {
  const named = env[CONTEXTS_FILE_ENV]?.trim();
  if (!named) return defaultContextsPath(env);
  const bad = unsafeCharacterIn(named);
  if (bad || named.length > MAX_PATH) throw new ContextsError(`${CONTEXTS_FILE_ENV}: expected a file path${bad ? ` (it contains ${bad.codePoint})` : ` of at most ${MAX_PATH} characters`}`);
  return resolve(named);
}

const require = createRequire(import.meta.url);

/**
 * Reads and checks a contexts file. A missing file is an empty one (`exists: false`); anything else
 * wrong is a {@link ContextsError} naming the file, the context and the field.
 */
export function readContexts(path: string): ContextsFile {
  let size: number;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw fileError(path, 'is a directory, expected a YAML file');
    // A device or a pipe has no size to check and may never end (/dev/zero): never read one.
    if (!stat.isFile()) throw fileError(path, 'is not a regular file, expected a YAML file');
    size = stat.size;
  } catch (err) {
    if (err instanceof ContextsError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { path, exists: false, contexts: new Map() };
    throw fileError(path, `cannot be read (${code ?? 'error'})`);
  }
  if (size > MAX_CONTEXTS_FILE_BYTES) throw fileError(path, `is ${size} bytes, expected at most ${MAX_CONTEXTS_FILE_BYTES}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw fileError(path, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // The size may have changed between stat and read (a file being written).
  if (text.length > MAX_CONTEXTS_FILE_BYTES) throw fileError(path, `is over ${MAX_CONTEXTS_FILE_BYTES} bytes`);
  return parseContexts(text.replace(/^\uFEFF/, ''), path);
}

/** Parses a contexts file's text (YAML, so JSON too); `path` names it in errors and anchors relative paths. */
export function parseContexts(text: string, path: string): ContextsFile {
  const data = writtenByUs(text) ?? parseYaml(text, path);
  const file: ContextsFile = { path, exists: true, contexts: new Map() };
  if (data === null || data === undefined) return file;
  const top = record(data, path, undefined, '');
  for (const key of Object.keys(top)) {
    if (key !== 'current' && key !== 'contexts') throw fieldError(path, undefined, quoteValue(key), 'unknown field: expected current or contexts');
  }
  if (top.contexts !== undefined && top.contexts !== null) {
    const contexts = record(top.contexts, path, undefined, 'contexts');
    for (const [name, value] of Object.entries(contexts)) {
      checkName(name, `${path}: contexts`);
      file.contexts.set(name, readContext(value ?? {}, path, name));
    }
  }
  if (top.current !== undefined && top.current !== null) {
    if (typeof top.current !== 'string') throw fieldError(path, undefined, 'current', 'expected the name of a context');
    checkName(top.current, `${path}: current`);
    if (!file.contexts.has(top.current)) {
      throw fieldError(path, undefined, 'current', `names ${quoteValue(top.current)}, which is not a context here (${known(file)})`);
    }
    file.current = top.current;
  }
  return file;
}

/**
 * The file as `context set|use|delete` write it: comment lines, then JSON, which is YAML too. Read
 * with JSON.parse, without loading the YAML parser (70-200 ms of a command's start-up on a loaded
 * machine, docs/decisions/0016-yaml.md); anything else, a file a person rewrote in YAML included,
 * goes to the YAML parser.
 */
function writtenByUs(text: string): unknown {
  const body = text.replace(/^(?:#[^\n]*\n)*/, '');
  if (!body.startsWith('{')) return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

function parseYaml(text: string, path: string): unknown {
  const { parseDocument } = require('yaml') as typeof import('yaml');
  // YAML's own limits: keys unique, aliases expanded at most 100 times (a "billion laughs" file stays small).
  const doc = parseDocument(text, { uniqueKeys: true });
  const problem = doc.errors[0];
  if (problem) {
    // Never the message itself: it quotes the file, and the file is hostile bytes.
    const at = problem.linePos?.[0];
    throw fileError(path, `invalid YAML${at ? ` at line ${at.line} column ${at.col}` : ''} (${problem.code})`);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    const message = (err as Error).message;
    throw fileError(path, `invalid YAML (${/alias count/i.test(message) ? 'too many aliases' : /alias/i.test(message) ? 'an alias to an unknown anchor' : (err as Error).name})`);
  }
}

const CONTEXT_FIELDS = ['endpoints', 'namespace', 'registry', 'agent', 'apiKeyFile', 'agentTls', 'credentials'] as const;
const TLS_FIELDS = ['caFile', 'certFile', 'keyFile'] as const;
const CREDENTIAL_FIELDS = ['usernameFile', 'passwordFile', ...TLS_FIELDS] as const;

function readContext(value: unknown, path: string, name: string): Context {
  const raw = record(value, path, name, '');
  for (const key of Object.keys(raw)) {
    if (!(CONTEXT_FIELDS as readonly string[]).includes(key)) throw fieldError(path, name, quoteValue(key), `unknown field: expected one of ${CONTEXT_FIELDS.join(', ')}`);
  }
  const base = dirname(path);
  const context: Context = {};
  if (raw.endpoints !== undefined && raw.endpoints !== null) {
    const list = typeof raw.endpoints === 'string' ? raw.endpoints.split(',') : raw.endpoints;
    if (!Array.isArray(list) || list.some((e) => typeof e !== 'string')) throw fieldError(path, name, 'endpoints', 'expected a list of URLs, or one comma-separated string');
    context.endpoints = (list as string[]).map((e) => e.trim()).filter(Boolean);
  }
  if (raw.registry !== undefined && raw.registry !== null) {
    if (raw.registry !== 'etcd' && raw.registry !== 'redis') throw fieldError(path, name, 'registry', 'expected etcd or redis');
    context.registry = raw.registry;
  }
  for (const key of ['namespace', 'agent'] as const) {
    if (raw[key] === undefined || raw[key] === null) continue;
    if (typeof raw[key] !== 'string') throw fieldError(path, name, key, 'expected a string');
    context[key] = raw[key];
  }
  if (raw.apiKeyFile !== undefined && raw.apiKeyFile !== null) context.apiKeyFile = filePath(raw.apiKeyFile, path, name, 'apiKeyFile', base);
  for (const [key, fields] of [['agentTls', TLS_FIELDS], ['credentials', CREDENTIAL_FIELDS]] as const) {
    if (raw[key] === undefined || raw[key] === null) continue;
    const group = record(raw[key], path, name, key);
    const files: Record<string, string> = {};
    for (const [field, v] of Object.entries(group)) {
      if (!(fields as readonly string[]).includes(field)) throw fieldError(path, name, `${key}.${quoteValue(field)}`, `unknown field: expected one of ${fields.join(', ')}`);
      if (v !== undefined && v !== null) files[field] = filePath(v, path, name, `${key}.${field}`, base);
    }
    if (Object.keys(files).length > 0) context[key] = files;
  }
  const problem = contextProblem(context);
  if (problem) throw fieldError(path, name, problem.field, problem.message);
  return context;
}

/**
 * What is wrong with a context's values, by the rules the flags they stand for follow (the agent's
 * rules for endpoints and namespace); undefined when nothing is. Shared by reading and `context set`.
 */
export function contextProblem(context: Context): { field: string; message: string } | undefined {
  if (context.registry !== undefined && context.registry !== 'etcd' && context.registry !== 'redis') {
    return { field: 'registry', message: `${quoteValue(String(context.registry))}: expected etcd or redis` };
  }
  if (context.endpoints !== undefined && context.agent !== undefined) {
    return { field: 'agent', message: 'a context names endpoints or an agent, not both' };
  }
  if (context.endpoints !== undefined) {
    const endpoints = context.endpoints;
    if (endpoints.length === 0) return { field: 'endpoints', message: 'expected at least one URL' };
    for (const e of endpoints) {
      if (e.length > 2048 || !isRegistryUrl(e)) return { field: 'endpoints', message: `${quoteValue(redactUserinfo(e))}: expected http(s) etcd URLs, or one redis:// URL` };
      // The file names secrets by file only (it is read by every command, and shown by context show).
      if (new URL(e).password !== '') return { field: 'endpoints', message: `${quoteValue(redactUserinfo(e))} holds a password: name a file holding it with credentials.passwordFile instead` };
    }
    const redis = endpoints.some(isRedisUrl);
    if (redis && endpoints.length !== 1) return { field: 'endpoints', message: 'expected one Redis URL such as redis://127.0.0.1:6379' };
    if (redis && context.registry === 'etcd') return { field: 'endpoints', message: 'holds a redis:// URL but registry is etcd' };
    if (!redis && context.registry === 'redis') return { field: 'endpoints', message: 'expected one redis:// URL with registry redis' };
  } else if (context.registry === 'redis' && context.agent === undefined) {
    return { field: 'registry', message: 'redis requires endpoints: one redis:// URL' };
  }
  if (context.agent !== undefined && (context.agent.length > 2048 || !isHttpUrl(context.agent))) {
    return { field: 'agent', message: `${quoteValue(redactUserinfo(context.agent))}: expected an http(s) URL such as http://127.0.0.1:8790` };
  }
  if (context.agent !== undefined && context.credentials !== undefined) {
    return { field: 'credentials', message: 'are the registry\'s, and this context names an agent: use apiKeyFile and agentTls' };
  }
  if (context.endpoints !== undefined && (context.apiKeyFile !== undefined || context.agentTls !== undefined)) {
    return { field: context.apiKeyFile !== undefined ? 'apiKeyFile' : 'agentTls', message: 'is for an agent, and this context names endpoints: use credentials' };
  }
  if (context.namespace !== undefined) {
    const setting = settingByPath('cluster.discovery.namespace')!;
    const problem = textProblem(setting, context.namespace);
    if (problem || !setting.pattern!.test(context.namespace)) {
      return { field: 'namespace', message: `${quoteValue(context.namespace)}: expected ${problem?.expected ?? describeExpectation(setting, { range: false })}${problem?.reason ? `; ${problem.reason}` : ''}` };
    }
  }
  for (const [group, files] of [['agentTls', context.agentTls], ['credentials', context.credentials]] as const) {
    if (files?.certFile !== undefined && files.keyFile === undefined) return { field: `${group}.certFile`, message: `requires ${group}.keyFile` };
    if (files?.keyFile !== undefined && files.certFile === undefined) return { field: `${group}.keyFile`, message: `requires ${group}.certFile` };
  }
  if (context.credentials?.passwordFile === undefined && context.credentials?.usernameFile !== undefined) {
    return { field: 'credentials.usernameFile', message: 'requires credentials.passwordFile' };
  }
  return undefined;
}

/**
 * The context to use: `name` (from `--context` or {@link CONTEXT_ENV}) when given, else the file's
 * current one; undefined when neither names one. An unknown name is a usage error listing the known.
 */
export function selectContext(file: ContextsFile, name: string | undefined, givenAs = '--context'): { name: string; context: Context } | undefined {
  const wanted = name?.trim() || undefined;
  if (wanted === undefined) {
    if (file.current === undefined) return undefined;
    return { name: file.current, context: file.contexts.get(file.current)! };
  }
  const context = file.contexts.get(wanted);
  if (!context) throw new ContextsError(`${givenAs} ${quoteValue(wanted)}: no such context in ${file.path} (${known(file)})`);
  return { name: wanted, context };
}

/**
 * Reads a secret a context names by file (a password, a user name, an API key): one line, its final
 * newline dropped. The error names the file and the context, never the content.
 */
export function readSecretFile(path: string, what: string, contextName: string): string {
  let text: string;
  try {
    const stat = statSync(path);
    // A device or a pipe has no size to check and may never end (/dev/zero): never read one.
    if (!stat.isFile()) throw new ContextsError(`${what} file ${path} (context ${quoteValue(contextName)}): expected a regular file`);
    if (stat.size > MAX_SECRET_FILE_BYTES) throw new ContextsError(`${what} file ${path} (context ${quoteValue(contextName)}): expected at most ${MAX_SECRET_FILE_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof ContextsError) throw err;
    throw new ContextsError(`cannot read ${what} file ${path} (context ${quoteValue(contextName)}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value.trim() === '') throw new ContextsError(`${what} file ${path} (context ${quoteValue(contextName)}) is empty`);
  if (/[\r\n]/.test(value)) throw new ContextsError(`${what} file ${path} (context ${quoteValue(contextName)}): expected one line`);
  return value;
}

/** Checks a context name typed on the command line (`context set NAME`). */
export function checkContextName(name: string, givenAs = 'NAME'): void {
  checkName(name, givenAs);
}

/**
 * Writes the file atomically: a temp file beside it, mode 0600 (it names credential files), flushed,
 * then renamed over the old one, so a crash leaves the old file or the new one, never half of one.
 * The directory is created (0700) when missing.
 */
export function writeContexts(file: ContextsFile): void {
  const data: Record<string, unknown> = {};
  if (file.current !== undefined) data.current = file.current;
  data.contexts = Object.fromEntries([...file.contexts].map(([name, c]) => [name, plainContext(c)]));
  // JSON, which is YAML: a command reads it back without the YAML parser (see writtenByUs).
  const text = [
    '# proxy-stone-sd contexts (YAML; written as JSON by `proxy-stone-sd context set|use|delete`, which keep no comments).',
    '# Credentials are named by file, never stored here.',
    JSON.stringify(data, null, 2),
    '',
  ].join('\n');
  if (Buffer.byteLength(text) > MAX_CONTEXTS_FILE_BYTES) throw fileError(file.path, `would be over ${MAX_CONTEXTS_FILE_BYTES} bytes`);
  const dir = dirname(file.path);
  const temp = join(dir, `.contexts-${process.pid}-${Date.now()}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // openSync's mode is masked by the umask; 0600 whatever the umask.
    chmodSync(temp, 0o600);
    renameSync(temp, file.path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw fileError(file.path, `cannot be written (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** A context as the file holds it: its fields in a fixed order, none undefined. */
export function plainContext(context: Context): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of CONTEXT_FIELDS) if (context[key] !== undefined) out[key] = context[key];
  return out;
}

function record(value: unknown, path: string, context: string | undefined, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    if (field === '') throw context === undefined ? fileError(path, 'expected a mapping with current and contexts') : fieldError(path, context, '', 'expected a mapping of fields');
    throw fieldError(path, context, field, 'expected a mapping');
  }
  return value as Record<string, unknown>;
}

function filePath(value: unknown, path: string, context: string, field: string, base: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw fieldError(path, context, field, 'expected a file path');
  const bad = unsafeCharacterIn(value);
  if (bad) throw fieldError(path, context, field, `expected a file path; contains a control character (${bad.codePoint})`);
  if (value.length > MAX_PATH) throw fieldError(path, context, field, `expected a file path of at most ${MAX_PATH} characters`);
  // `~/` as a shell would expand it; a relative path is relative to the contexts file, as in kubeconfig.
  if (value.startsWith('~/')) return join(homedir(), value.slice(2));
  return resolve(base, value);
}

function checkName(name: string, where: string): void {
  if (!NAME_RE.test(name)) throw new ContextsError(`${where}: ${quoteValue(name)} is not a context name: expected ${NAME_HINT}`);
}

function known(file: ContextsFile): string {
  const names = [...file.contexts.keys()];
  return names.length ? `known: ${names.join(', ')}` : 'it has none; add one with: proxy-stone-sd context set NAME --endpoints URLS';
}

function fileError(path: string, message: string): ContextsError {
  return new ContextsError(`contexts file ${path} ${message}`);
}

function fieldError(path: string, context: string | undefined, field: string, message: string): ContextsError {
  const where = context === undefined ? field : `contexts.${context}${field ? `.${field}` : ''}`;
  return new ContextsError(`${path}: ${where}: ${message}`);
}

/** One context as `context list` and `context show` give it: its fields as the file holds them. */
export interface ContextView {
  name: string;
  /** Whether it is the file's current context. */
  current: boolean;
  endpoints?: string[];
  namespace?: string;
  registry?: 'etcd' | 'redis';
  agent?: string;
  apiKeyFile?: string;
  agentTls?: TlsFiles;
  credentials?: TlsFiles & { usernameFile?: string; passwordFile?: string };
}

/** `context list --json`. */
export interface ContextListResult {
  file: string;
  current: string | null;
  contexts: ContextView[];
}

/** `context show --json`, `context set --json`. */
export interface ContextShowResult {
  file: string;
  context: ContextView;
}

/** `context set --json`: the context as written, and whether it was new. */
export interface ContextSetResult extends ContextShowResult {
  created: boolean;
}

/** `context use --json`, `context delete --json`: the file's current context after the change. */
export interface ContextChangeResult {
  file: string;
  name: string;
  current: string | null;
}

/** The values `context set` changes: a field set to `null` is removed, one left undefined is kept. */
export type ContextChanges = {
  [K in 'endpoints' | 'namespace' | 'registry' | 'agent' | 'apiKeyFile']?: Context[K] | null;
} & {
  agentTls?: { [K in keyof TlsFiles]?: string | null };
  credentials?: { [K in keyof NonNullable<Context['credentials']>]?: string | null };
};

function view(file: ContextsFile, name: string): ContextView {
  return { name, current: file.current === name, ...(plainContext(file.contexts.get(name)!) as Omit<ContextView, 'name' | 'current'>) };
}

/** Every context of the file at `path` (none when it does not exist). */
export function listContexts(path: string): ContextListResult {
  const file = readContexts(path);
  return { file: path, current: file.current ?? null, contexts: [...file.contexts.keys()].sort().map((name) => view(file, name)) };
}

/** One context: `name`, or the current one. */
export function showContext(path: string, name: string | undefined): ContextShowResult {
  const file = readContexts(path);
  const chosen = selectContext(file, name, 'context');
  if (!chosen) throw new ContextsError(`no current context in ${path}: name one, or choose one with: proxy-stone-sd context use NAME (${known(file)})`);
  return { file: path, context: view(file, chosen.name) };
}

/** Makes `name` the current context. */
export function useContext(path: string, name: string): ContextChangeResult {
  const file = readContexts(path);
  selectContext(file, name, 'context');
  file.current = name;
  writeContexts(file);
  return { file: path, name, current: name };
}

/** Removes `name`; when it was the current one, no context is current any more. */
export function deleteContext(path: string, name: string): ContextChangeResult {
  const file = readContexts(path);
  selectContext(file, name, 'context');
  file.contexts.delete(name);
  if (file.current === name) delete file.current;
  writeContexts(file);
  return { file: path, name, current: file.current ?? null };
}

/**
 * Creates `name` or changes the fields given (file paths made absolute against `cwd`), checks the
 * result as a read would, and writes the file. `use` makes it the current context; so does creating
 * the file's first one.
 */
export function setContext(path: string, name: string, changes: ContextChanges, options: { use?: boolean; cwd?: string } = {}): ContextSetResult {
  checkName(name, 'NAME');
  const file = readContexts(path);
  const before = file.contexts.get(name);
  const next: Context = structuredClone(before ?? {});
  const cwd = options.cwd ?? process.cwd();
  const absolute = (p: string) => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : resolve(cwd, p));
  for (const key of ['endpoints', 'namespace', 'registry', 'agent', 'apiKeyFile'] as const) {
    const value = changes[key];
    if (value === undefined) continue;
    if (value === null) delete next[key];
    else (next as Record<string, unknown>)[key] = key === 'apiKeyFile' ? absolute(value as string) : value;
  }
  for (const group of ['agentTls', 'credentials'] as const) {
    const fields = changes[group];
    if (!fields) continue;
    const files: Record<string, string> = { ...next[group] };
    for (const [field, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      if (value === null) delete files[field];
      else files[field] = absolute(value);
    }
    if (Object.keys(files).length > 0) next[group] = files;
    else delete next[group];
  }
  // Switching a context between endpoints and an agent drops what only the other one used.
  if (changes.agent) {
    if (changes.endpoints === undefined) delete next.endpoints;
    if (changes.registry === undefined) delete next.registry;
    if (changes.credentials === undefined) delete next.credentials;
  } else if (changes.endpoints) {
    if (changes.agent === undefined) delete next.agent;
    if (changes.apiKeyFile === undefined) delete next.apiKeyFile;
    if (changes.agentTls === undefined) delete next.agentTls;
  }
  for (const [field, path2] of filePaths(next)) {
    const bad = unsafeCharacterIn(path2);
    if (bad || path2.length > MAX_PATH) throw new ContextsError(`${field}: expected a file path${bad ? `; contains a control character (${bad.codePoint})` : ` of at most ${MAX_PATH} characters`}`);
  }
  const problem = contextProblem(next);
  if (problem) throw new ContextsError(`context ${name}: ${problem.field}: ${problem.message}`);
  file.contexts.set(name, next);
  if (options.use || file.current === undefined) file.current = name;
  writeContexts(file);
  return { file: path, created: before === undefined, context: view(file, name) };
}

function filePaths(context: Context): [string, string][] {
  const out: [string, string][] = [];
  if (context.apiKeyFile !== undefined) out.push(['apiKeyFile', context.apiKeyFile]);
  for (const group of ['agentTls', 'credentials'] as const) {
    for (const [field, value] of Object.entries(context[group] ?? {})) out.push([`${group}.${field}`, value as string]);
  }
  return out;
}
