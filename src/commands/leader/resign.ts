import { Flags } from '@oclif/core';
import { ClusterCommand } from '../../cli/cluster-command.js';
import { EXIT, UserError } from '../../cli/errors.js';
import { cliActor, reasonProblem } from '../../cli/service-toggle.js';
import type { LeaderInfo } from '../../cluster/leader.js';
import { parseDuration } from '../../util/duration.js';

/** Whom the request was for, whether leadership moved within --wait, and the leader as last read. */
export interface LeaderResignResult {
  requested: { leaderId: string; term: number };
  moved: boolean;
  leader: LeaderInfo;
}

export default class LeaderResign extends ClusterCommand {
  static override summary = 'Ask the leader to hand over leadership (fenced by its term; audited).';
  static override description = `Stores a resign request for the current leader's term (its fencing revision) with an audit entry. Only the leader of exactly that term acts on it: it gives up the term through the same fenced transaction its graceful stop (SIGTERM) uses, and campaigns again from the back of the line, so the next candidate leads. A request that arrives after leadership moved unseats nobody.
--term asks only the leader of that term (exit 1 when another term leads). The command then waits up to --wait for a new term and exits 1 if leadership has not moved by then. With a single agent the same agent is elected again, in a new term. No leader at all exits 3.`;

  static override examples = [
    '<%= config.bin %> leader resign --reason "kernel patch on its host"',
    '<%= config.bin %> leader resign --wait 30s --json',
    '<%= config.bin %> leader resign --agent http://127.0.0.1:8790 --api-key "$SERVICE_DISCOVERY_API_KEY"',
  ];

  static override flags = {
    term: Flags.integer({ summary: 'Only ask the leader of this term (its fencing revision, as `leader` shows it).', min: 1 }),
    reason: Flags.string({ summary: 'Why, recorded in the audit trail.' }),
    wait: Flags.custom<number>({
      summary: 'How long to wait for the new term (e.g. 10s; 0 = do not wait).',
      helpValue: '<duration>',
      default: 10,
      parse: async (v) => parseDuration(v),
    })(),
  };

  async run(): Promise<LeaderResignResult> {
    const { flags } = await this.parse(LeaderResign);
    const reasonError = flags.reason === undefined ? undefined : reasonProblem(flags.reason);
    if (reasonError) throw new UserError(`--reason: ${reasonError}`, EXIT.usage);
    const client = await this.connect(flags);
    const asked = await client.resignLeader({
      ...(flags.term !== undefined ? { term: flags.term } : {}),
      ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
      actor: cliActor(),
    });
    // Moved: a leader with another fencing revision (the same agent may win again, in a new term).
    const deadline = Date.now() + flags.wait * 1000;
    let leader = await client.leader();
    while (leader.fencingRevision === asked.term && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      leader = await client.leader();
    }
    const result: LeaderResignResult = { requested: { leaderId: asked.leaderId, term: asked.term }, moved: leader.fencingRevision !== asked.term, leader };
    if (!this.jsonEnabled()) {
      const { renderResign } = await import('../../cli/views.js');
      this.log(renderResign(result));
    }
    if (!result.moved && flags.wait > 0) {
      this.warnLine(`leadership had not moved within ${flags.wait}s; the request stays with term ${asked.term} until its leader acts or goes`);
      process.exitCode = EXIT.failure;
    }
    return result;
  }
}
