import { Flags } from '@oclif/core';
import { ClusterCommand } from '../cli/cluster-command.js';
import { EXIT, UserError } from '../cli/errors.js';
import { selectionFlags, selectionOf } from '../cli/selection-flags.js';
import { EventFilter, needsRecords, parseSince, SINCE_EXPECTATION, type EventSelection } from '../cluster/event-filter.js';
import { parseDuration } from '../util/duration.js';
import { safeJsonText } from '../util/text.js';
import { CLUSTER_EVENT_TYPES, type ClusterEvent, type ClusterEventType } from '../types.js';

/** Each line of `events --json`: one event, the JSON of the API's SSE `data:` line. */
export type EventsLine = ClusterEvent;

const typesFlag = Flags.custom<Set<ClusterEventType>>({
  summary: `Only these event types, comma-separated: ${CLUSTER_EVENT_TYPES.join(', ')}.`,
  helpValue: '<types>',
  async parse(input) {
    const items = input.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = items.filter((i) => !(CLUSTER_EVENT_TYPES as readonly string[]).includes(i));
    if (items.length === 0 || unknown.length > 0) {
      throw new Error(`expected a comma-separated list of ${CLUSTER_EVENT_TYPES.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
    }
    return new Set(items as ClusterEventType[]);
  },
});

export default class Events extends ClusterCommand {
  static override summary = 'Follow cluster events live: joins, leaves, health changes, enable/disable, leader changes.';
  static override description = `One line per event (time, type, service id, detail) until Ctrl-C, which exits 0. With --json: NDJSON, one event object per line, written as it happens (the same JSON as the API's SSE data: lines).
Through etcd it lists then watches the namespace; through --agent it reads the agent's SSE stream and resumes with Last-Event-ID after an interruption. --count and --duration stop it on their own, for scripts.
--service, --region, -l/--label and --tag keep the events about the services selected (for leaderElected: the new leader; --service also matches the previous one). --since (through --agent only: etcd keeps no event history) first replays what the agent's history holds from then on; it keeps the last 1000 events since it started, and says so on stderr when that does not reach back far enough.`;

  static override examples = [
    '<%= config.bin %> events',
    '<%= config.bin %> events --types serviceHealthChanged,leaderElected',
    '<%= config.bin %> events --json --count 1 --types serviceDisabled',
    '<%= config.bin %> events --agent http://127.0.0.1:8790 --duration 30 --json',
    '<%= config.bin %> events --agent http://127.0.0.1:8790 --since 10m --service proxy-stone-2',
    '<%= config.bin %> events -l team=edge --region eu-west-1',
  ];

  static override flags = {
    types: typesFlag(),
    count: Flags.integer({ summary: 'Stop after this many events.', min: 1 }),
    // Was --for, which on `services disable` means "re-enable after": kept as a deprecated alias that warns.
    duration: Flags.custom<number>({
      summary: 'Stop after this long (e.g. 30, 2m, 1h30m).',
      helpValue: '<duration>',
      aliases: ['for'],
      deprecateAliases: true,
      parse: async (v) => parseDuration(v),
    })(),
    service: Flags.string({ summary: 'Only events about this service id.' }),
    region: Flags.string({ summary: 'Only events about services in this region.' }),
    ...selectionFlags(),
    since: Flags.custom<number>({
      summary: `With --agent: first replay the agent's kept events from then on: ${SINCE_EXPECTATION}.`,
      helpValue: '<when>',
      parse: async (v) => parseSince(v),
    })(),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Events);
    // oclif warns about a deprecated alias typed `--for 30`, not `--for=30`.
    if (this.argv.some((a) => a.startsWith('--for='))) this.warn('The "--for" flag has been deprecated. Use "--duration" instead.');
    const client = await this.connect(flags);
    if (flags.since !== undefined && client.kind !== 'agent') {
      throw new UserError('--since: needs --agent (an agent keeps an event history; etcd has the current state only)', EXIT.usage);
    }
    const selection: EventSelection = {
      ...selectionOf(flags),
      ...(flags.service !== undefined ? { serviceId: flags.service } : {}),
      ...(flags.region !== undefined ? { region: flags.region } : {}),
    };
    const filter = new EventFilter(selection);
    // Enable/disable events carry no record: the listing tells the filter where each service is.
    if (needsRecords(selection)) filter.remember((await client.listServices()).services);
    const json = this.jsonEnabled();
    const render = json ? undefined : (await import('../cli/views.js')).renderEvent;
    const stop = new AbortController();
    const abort = () => stop.abort();
    process.once('SIGINT', abort).once('SIGTERM', abort);
    process.stdout.on('error', abort); // a closed pipe (| head) ends the stream quietly
    const timer = flags.duration === undefined ? undefined : setTimeout(abort, flags.duration * 1000);
    let seen = 0;
    try {
      await client.events(
        (event) => {
          if (stop.signal.aborted || !filter.matches(event)) return;
          if (render) this.log(render(event));
          else process.stdout.write(`${safeJsonText(JSON.stringify(event))}\n`);
          if (flags.count !== undefined && ++seen >= flags.count) abort();
        },
        stop.signal,
        { ...(flags.types ? { types: flags.types } : {}), ...(flags.since !== undefined ? { since: flags.since } : {}), onNotice: (m) => this.warnLine(m, 'Note') },
      );
    } finally {
      clearTimeout(timer);
      process.off('SIGINT', abort).off('SIGTERM', abort);
    }
  }
}
