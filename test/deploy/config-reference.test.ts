/**
 * The docs cannot drift from the code: every setting is in the configuration reference and every
 * row there is a setting; every environment variable and flag that the docs, the Compose file and the
 * deployment files name exists; relative links and anchors resolve; alert runbooks point at real
 * sections.
 */
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SETTINGS, envNames, flagNames } from '../../src/config/settings.js';
import { agentEnvNames, ROOT } from './helpers.js';
import { ruleExprs } from './promql.js';
import { parse as parseYaml } from 'yaml';

interface ManifestFlag {
  name: string;
  char?: string;
  allowNo?: boolean;
}
interface Manifest {
  commands: Record<string, { flags: Record<string, ManifestFlag> }>;
}

function walk(dir: string, keep: (file: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full, keep) : keep(full) ? [full] : [];
  });
}

const rel = (file: string) => path.relative(ROOT, file);
const MARKDOWN = [path.join(ROOT, 'README.md'), ...walk(path.join(ROOT, 'docs'), (f) => f.endsWith('.md'))];
const DEPLOY_FILES = [
  ...walk(path.join(ROOT, 'docker'), (f) => /\.(ya?ml|mjs|sh)$/.test(f)),
  ...walk(path.join(ROOT, 'deploy'), () => true),
  path.join(ROOT, 'Dockerfile'),
  ...walk(path.join(ROOT, 'docs/prometheus'), (f) => /\.ya?ml$/.test(f)),
];
const CONFIG_DOC = path.join(ROOT, 'docs/configuration.md');

/** Names that look like ours: the seed's `SERVICE_*` family, the CLI's `PROXY_STONE_SD_*`, `LOG_LEVEL`. */
function envVarsIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\b(?:SERVICE|PROXY_STONE_SD)_[A-Z0-9_]*[A-Z0-9]\b|\bLOG_LEVEL\b/g)].map((m) => m[0]))];
}

/** Code a reader would type or read as code: fenced blocks and inline spans of Markdown; whole files otherwise. */
function codeOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  if (!file.endsWith('.md')) return text.split(/\r?\n/);
  const fenced = [...text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  const inline = [...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  return [...fenced.flatMap((b) => b.replace(/\\\n/g, ' ').split('\n')), ...inline];
}

/** Shell-ish words of one command line, stopping at operators; quotes removed. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\|\||&&|[|;&<>()])|([^\s"'|;&<>()]+)/g)) {
    if (m[3]) out.push(m[3]);
    else out.push(m[1] ?? m[2] ?? m[4]!);
  }
  return out;
}

const OPERATORS = new Set(['|', '||', '&&', ';', '&', '<', '>', '(', ')']);

/** Each `proxy-stone-sd …` (or `bin/run.js …`) invocation on a line: the command id and its long flags. */
function invocations(line: string, commandIds: string[]): Array<{ id: string; flags: string[]; text: string }> {
  const w = words(line);
  const out: Array<{ id: string; flags: string[]; text: string }> = [];
  for (let i = 0; i < w.length; i++) {
    const base = path.posix.basename(w[i]!);
    if (base !== 'proxy-stone-sd' && base !== 'run.js') continue;
    if (i > 0 && /^(-u|--unit|install|-g|-t|--name|ln)$/.test(w[i - 1]!)) continue; // systemd unit names, npm packages, image tags
    let j = i + 1;
    const rest: string[] = [];
    while (j < w.length && !OPERATORS.has(w[j]!)) rest.push(w[j++]!);
    // The longest command id spelled by the leading words (`services list` → services:list).
    let id = '';
    for (let k = 1; k <= rest.length; k++) {
      const candidate = rest.slice(0, k).join(':');
      if (commandIds.includes(candidate)) id = candidate;
      if (!commandIds.some((c) => c === candidate || c.startsWith(`${candidate}:`))) break;
    }
    if (!id) continue; // not an invocation (a path, a package name) or only --help / --version
    const flags = rest.filter((t) => /^--[a-z]/.test(t)).map((t) => t.slice(2).split('=')[0]!);
    out.push({ id, flags, text: [w[i], ...rest].join(' ') });
  }
  return out;
}

/** GitHub's heading anchors. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  const text = markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = m[1]!
      .trim()
      .toLowerCase()
      .replace(/`/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = counts.get(slug) ?? 0;
    counts.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

describe('deploy: docs cannot drift from the code', () => {
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as Manifest;
  const commandIds = Object.keys(manifest.commands);
  const flagsOf = (id: string): Set<string> => {
    const flags = new Set(['help', 'version']);
    for (const f of Object.values(manifest.commands[id]!.flags)) {
      flags.add(f.name);
      if (f.allowNo) flags.add(`no-${f.name}`);
    }
    return flags;
  };
  const allFlags = new Set(commandIds.flatMap((id) => [...flagsOf(id)]));
  const knownEnv = agentEnvNames();

  describe('docs/configuration.md', () => {
    const doc = readFileSync(CONFIG_DOC, 'utf8');
    const rows = doc
      .split('\n')
      .filter((l) => /^\| `[\w.]+` \|/.test(l))
      .map((l) => l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));

    it('has a row for every setting, with its flag and every env var', () => {
      for (const s of SETTINGS) {
        const row = rows.find((r) => r[0] === `\`${s.path}\``);
        expect(row, `no row for ${s.path}`).to.not.equal(undefined);
        const flagCell = row![1]!;
        const cells = flagNames(s).map((f) => (s.kind === 'boolean' && s.allowNo ? `\`--[no-]${f}\`` : `\`--${f}\``));
        expect(flagCell, `${s.path}: flag cell`).to.equal(cells.join(', '));
        for (const env of envNames(s)) expect(row![2], `${s.path}: env`).to.include(`\`${env}\``);
      }
    });

    it('has no row that is not a setting', () => {
      const paths = new Set<string>(SETTINGS.map((s) => s.path));
      const stray = rows.map((r) => r[0]!.replace(/`/g, '')).filter((p) => !paths.has(p));
      expect(stray).to.deep.equal([]);
      expect(rows.length).to.equal(SETTINGS.length);
    });

    it('names the agent flags the CLI really has', () => {
      const agentFlags = flagsOf('agent');
      for (const s of SETTINGS) for (const f of flagNames(s)) expect(agentFlags.has(f), `--${f}`).to.equal(true);
    });
  });

  it('every environment variable named in docs, README, the Compose file and deploy files exists', () => {
    const unknown: string[] = [];
    for (const file of [...MARKDOWN, ...DEPLOY_FILES]) {
      for (const name of envVarsIn(readFileSync(file, 'utf8'))) if (!knownEnv.has(name)) unknown.push(`${rel(file)}: ${name}`);
    }
    expect(unknown).to.deep.equal([]);
  });

  it('every `proxy-stone-sd <command> --flag` in docs and deploy files is a flag of that command', () => {
    const bad: string[] = [];
    let seen = 0;
    for (const file of [...MARKDOWN, ...DEPLOY_FILES]) {
      for (const line of codeOf(file)) {
        if (line.includes('<TAB>')) continue; // shell-completion examples type partial flags on purpose
        for (const inv of invocations(line, commandIds)) {
          seen++;
          const flags = flagsOf(inv.id);
          for (const f of inv.flags) if (!flags.has(f)) bad.push(`${rel(file)}: ${inv.text} (--${f} is not a flag of ${inv.id.replace(':', ' ')})`);
        }
      }
    }
    expect(seen, 'invocations found').to.be.greaterThan(30);
    expect(bad).to.deep.equal([]);
  });

  it('every flag written as code in the docs (`--flag`) exists on some command', () => {
    // Flags of other tools the docs use (etcd, etcdctl, prometheus, docker, curl, npm, node, bench scripts).
    const external = new Set([
      'name', 'data-dir', 'listen-client-urls', 'advertise-client-urls', 'listen-peer-urls', 'initial-advertise-peer-urls',
      'initial-cluster', 'initial-cluster-token', 'initial-cluster-state', 'cluster', 'prefix', 'keys-only',
      'config.file', 'storage.tsdb.path', 'web.listen-address', 'web.enable-lifecycle', 'scale', 'build', 'now',
      'offline', 'omit', 'parallel', 'jobs', 'no-log-prefix', 'data-urlencode', 'network', 'rm', 'init',
      'import', 'frames', 'dev', 'runs', 'full',
    ]);
    const unknown: string[] = [];
    for (const file of MARKDOWN) {
      const prose = readFileSync(file, 'utf8').replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
      for (const m of prose.matchAll(/`--(?:\[no-\])?([a-z][\w.-]*)[^`]*`/g)) {
        const name = m[1]!;
        if (!allFlags.has(name) && !external.has(name)) unknown.push(`${rel(file)}: --${name}`);
      }
    }
    expect(unknown).to.deep.equal([]);
  });

  it('relative links and their anchors resolve', () => {
    const broken: string[] = [];
    for (const file of MARKDOWN) {
      const text = readFileSync(file, 'utf8').replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue;
        const [p, anchor] = target.split('#') as [string, string | undefined];
        const resolved = p === '' ? file : path.resolve(path.dirname(file), p);
        if (!existsSync(resolved)) {
          broken.push(`${rel(file)}: ${target} (no such file)`);
          continue;
        }
        if (anchor && resolved.endsWith('.md') && statSync(resolved).isFile() && !anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)) {
          broken.push(`${rel(file)}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).to.deep.equal([]);
  });

  it('every alert names a runbook section that exists', () => {
    const doc = parseYaml(readFileSync(path.join(ROOT, 'docs/prometheus/alerts.yml'), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; annotations: { runbook?: string } }> }>;
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.length).to.equal(ruleExprs(path.join(ROOT, 'docs/prometheus/alerts.yml')).length);
    for (const rule of rules) {
      const runbook = rule.annotations.runbook;
      expect(runbook, rule.alert).to.match(/^docs\/[\w/.-]+\.md#[\w-]+$/);
      const [file, anchor] = runbook!.split('#') as [string, string];
      expect(anchorsOf(readFileSync(path.join(ROOT, file), 'utf8')).has(anchor), `${rule.alert}: ${runbook}`).to.equal(true);
    }
  });
});
