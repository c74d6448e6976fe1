import { userInfo } from 'node:os';
import { Args, Flags } from '@oclif/core';
import { SERVICE_STATUSES, type ServiceStatus } from '../types.js';
import { MAX_REASON } from '../cluster/admin.js';
import { unsafeCharacterIn } from '../util/text.js';
import type { ClusterClient, SetEnabledRequest, SetEnabledSummary } from './cluster-contract.js';
import { ClusterCommand } from './cluster-command.js';
import { selectionFlags, selectionOf } from './selection-flags.js';
import { formatLabelSelector, type Selection } from '../cluster/selector.js';
import { bulkExitCode, capacityRefusal, describeError, EXIT, UserError } from './errors.js';


/** Why a `--reason` cannot be recorded, or undefined: too long, or a control character (the audit trail is shown on terminals). */
export function reasonProblem(reason: string): string | undefined {
  if (reason.length > MAX_REASON) return `expected at most ${MAX_REASON} characters (got ${reason.length})`;
  const bad = unsafeCharacterIn(reason);
  if (bad) return `expected text without control characters; contains ${bad.codePoint}`;
  return undefined;
}

/** A service the capacity guard kept in traffic during a bulk disable: not disabled, and not a failure. */
export interface KeptService {
  serviceId: string;
  by: 'capacity guard';
  /** What disabling it would have done: `zone us-east-1a of region us-east-1 would have 0 healthy enabled instances (minimum 1)`. */
  reason: string;
  /** How to disable it anyway. */
  override: '--force';
}

/** Enabling or disabling many services at once (`--all`). */
export interface BulkToggleResult {
  enabled: boolean;
  /** Services the selection matched: `results`, `kept` and `failed` together. */
  matched: number;
  /** How many actually changed state. */
  changed: number;
  results: SetEnabledSummary[];
  /** Disable only: services the capacity guard refused to take out (exit 5 when nothing failed). */
  kept: KeptService[];
  /** Services that could not be changed: why, and the exit code that failure gives on its own. */
  failed: { serviceId: string; error: string; exit: number }[];
}

export type ToggleResult = SetEnabledSummary | BulkToggleResult;

/** Who the audit trail names for a change made from this machine. */
export function cliActor(): string {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers): fall back to the environment
    user = process.env.USER ?? process.env.LOGNAME;
  }
  return `cli:${user || `uid-${process.getuid?.() ?? 'unknown'}`}`;
}

/**
 * Shared by `services enable` and `services disable`: one id, or `--all` narrowed by region, zone and
 * status, confirmed on a terminal and by `--yes` elsewhere. Both are idempotent: a service already in
 * the asked state is reported with `changed: false` and exit 0.
 */
export abstract class ServiceToggleCommand extends ClusterCommand {
  static override args = { id: Args.string({ description: 'Service id, as shown by services list; omit it with --all.' }) };
  static override flags = {
    reason: Flags.string({ summary: `Why, recorded in the audit trail (at most ${MAX_REASON} characters).` }),
    all: Flags.boolean({ summary: 'Every service matching --region/--zone/--status/--label/--tag (all services without them).' }),
    region: Flags.string({ summary: 'With --all: only services in this region.', dependsOn: ['all'] }),
    zone: Flags.string({ summary: 'With --all: only services in this zone.', dependsOn: ['all'] }),
    status: Flags.string({ summary: 'With --all: only services with this status.', options: [...SERVICE_STATUSES], dependsOn: ['all'] }),
    ...selectionFlags({ dependsOn: ['all'] }),
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation (required with --all when stdin is not a terminal).' }),
  };

  protected abstract readonly enabled: boolean;

  /** Options beyond the reason that the subclass's own flags add to the request (disable's). */
  protected requestOptions(_flags: Record<string, unknown>): Omit<SetEnabledRequest, 'reason' | 'actor'> {
    return {};
  }

  async run(): Promise<ToggleResult> {
    const { args, flags } = await this.parse(this.ctor as typeof ServiceToggleCommand);
    if (args.id !== undefined && flags.all) throw new UserError('give a service id or --all, not both', EXIT.usage);
    if (args.id === undefined && !flags.all) {
      throw new UserError('missing service id: give one, or --all (optionally with --region, --zone, --status, --label, --tag)', EXIT.usage);
    }
    const reasonError = flags.reason === undefined ? undefined : reasonProblem(flags.reason);
    if (reasonError) throw new UserError(`--reason: ${reasonError}`, EXIT.usage);
    // Disable's own options (--for, --drain-timeout, --force, --min-healthy-per-zone), checked before connecting.
    const extra = this.requestOptions(flags as Record<string, unknown>);
    const client = await this.connect(flags);
    if (client.kind === 'agent' && extra.minHealthy !== undefined && this.onCommandLine('min-healthy-per-zone')) {
      this.warnLine('--min-healthy-per-zone applies to etcd access; an agent applies its own --min-healthy-per-zone');
    }
    const request = { ...(flags.reason !== undefined ? { reason: flags.reason } : {}), actor: cliActor(), ...extra };
    const views = this.jsonEnabled() ? undefined : await import('./views.js');
    if (args.id !== undefined) {
      const result = await client.setEnabled(args.id, this.enabled, request);
      if (views) this.log(views.renderToggle(result));
      return result;
    }
    const filter = { region: flags.region, zone: flags.zone, status: flags.status as ServiceStatus | undefined, ...selectionOf(flags) };
    return this.bulk(client, filter, request, flags.yes, views);
  }

  private async bulk(
    client: ClusterClient,
    filter: { region?: string; zone?: string; status?: ServiceStatus } & Selection,
    request: SetEnabledRequest,
    yes: boolean,
    views: typeof import('./views.js') | undefined,
  ): Promise<BulkToggleResult> {
    const { services } = await client.listServices(filter);
    const verb = this.enabled ? 'enable' : 'disable';
    const selection = describeFilter(filter);
    if (services.length === 0) throw new UserError(`no services match ${selection}`, EXIT.notFound);
    if (!yes) {
      if (!process.stdin.isTTY || !process.stderr.isTTY) {
        throw new UserError(`refusing to ${verb} ${services.length} services (${selection}) without confirmation: add --yes`, EXIT.usage);
      }
      const ids = services.map((s) => s.id);
      const shown = ids.length > 10 ? `${ids.slice(0, 10).join(', ')}, …` : ids.join(', ');
      if (!(await confirm(`${verb} ${services.length} services (${shown})?`))) throw new UserError('cancelled; nothing changed', EXIT.failure);
    }
    const result: BulkToggleResult = { enabled: this.enabled, matched: services.length, changed: 0, results: [], kept: [], failed: [] };
    for (const s of services) {
      try {
        const r = await client.setEnabled(s.id, this.enabled, request);
        result.results.push(r);
        if (r.changed) result.changed += 1;
        if (views) this.log(views.renderToggle(r));
      } catch (err) {
        // The guard keeping a zone's last healthy instance is the outcome asked for, not a failure.
        const guarded = this.enabled ? undefined : capacityRefusal(err);
        if (guarded !== undefined) {
          const kept: KeptService = { serviceId: s.id, by: 'capacity guard', reason: guarded, override: '--force' };
          result.kept.push(kept);
          if (views) this.log(views.renderKept(kept));
          continue;
        }
        const { message, exit } = describeError(err);
        result.failed.push({ serviceId: s.id, error: message, exit });
        this.warnLine(`${s.id}: ${message}`);
      }
    }
    const exit = bulkExitCode(result);
    if (exit !== EXIT.ok) process.exitCode = exit;
    return result;
  }
}

function describeFilter(filter: { region?: string; zone?: string; status?: string } & Selection): string {
  const parts = (['region', 'zone', 'status'] as const).filter((k) => filter[k] !== undefined).map((k) => `--${k} ${filter[k]}`);
  if (filter.labels?.length) parts.push(`--label ${formatLabelSelector(filter.labels)}`);
  if (filter.tags?.length) parts.push(`--tag ${filter.tags.join(',')}`);
  return parts.length ? parts.join(' ') : '--all';
}

/** A plain y/N question on stderr; Ctrl-C or end of input is "no". */
async function confirm(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise<boolean>((resolve) => {
    let answered = false;
    const done = (yes: boolean) => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(yes);
    };
    rl.on('SIGINT', () => {
      process.stderr.write('\n');
      done(false);
    });
    rl.on('close', () => done(false));
    rl.question(`${question} [y/N] `, (answer) => done(/^y(es)?$/i.test(answer.trim())));
  });
}
