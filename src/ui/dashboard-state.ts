/**
 * Everything the dashboard shows and every decision a key makes, as one plain class: the live
 * service map (fed by a full listing, then events), the event log, selection, filters, search, sort,
 * prompts and the detail pane. No I/O and no ink: keys return {@link DashboardAction}s that the
 * controller carries out, so the whole behaviour is testable without a terminal.
 *
 * Why this file is long: it is the dashboard's state machine (modes, keys, prompts) over its data,
 * and a key's effect is read best beside the state it changes.
 *
 * @module
 */
import { matchesSelection, parseLabelSelector, type LabelRequirement } from '../cluster/selector.js';
import type { ServiceDetails } from '../cli/cluster-contract.js';
import { MAX_REASON } from '../cluster/admin.js';
import { computeTopology } from '../cluster/topology.js';
import {
  SERVICE_STATUSES,
  type ClusterEvent,
  type ClusterEventType,
  type ClusterTopology,
  type ServiceRecord,
  type ServiceStatus,
} from '../types.js';
import { escapeUnsafe, terminalSafe } from '../util/text.js';
import { eventDetail, eventTone, isDraining, printable, STATUS_RANK, type Tone } from './format.js';

export type SortKey = 'id' | 'status' | 'place' | 'role' | 'enabled' | 'latency' | 'checked' | 'version';
/** In the order `s` cycles through them. */
export const SORT_KEYS: readonly SortKey[] = ['id', 'status', 'place', 'role', 'enabled', 'latency', 'checked', 'version'];

/** A status, or `disabled` for services an operator took out of rotation. */
export type StatusFilter = ServiceStatus | 'disabled';

export interface Filters {
  status?: StatusFilter;
  region?: string;
}

/** The parts of a keypress the dashboard reads; ink's `Key` fits it. */
export interface KeyPress {
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  backspace?: boolean;
  delete?: boolean;
  ctrl?: boolean;
  meta?: boolean;
  tab?: boolean;
}

export type Mode = 'table' | 'detail' | 'help' | 'search' | 'filter' | 'reason' | 'confirm';

/** What a key asks the controller to do. */
export type DashboardAction =
  | { type: 'quit' }
  | { type: 'loadDetail'; serviceId: string }
  | { type: 'setEnabled'; serviceId: string; enabled: boolean; reason?: string; force?: boolean };

export interface ConnectionState {
  source: 'registry' | 'agent';
  /** What the dashboard talks to: etcd endpoints or the agent's URL (no credentials). */
  target: string;
  /** The cluster's name and namespace: the dashboard's --cluster-name, or what the agent says. */
  cluster: string;
  /** The live link (watch or event stream) is up. */
  connected: boolean;
  /** At least one full listing has been applied. */
  synced: boolean;
  /** Why the link is down, when known. */
  error?: string;
  /** Epoch ms the link went down. */
  lostAt?: number;
  /** Through an agent: the registry that agent uses, and whether it reaches it. */
  registry?: { description: string; reachable: boolean; stale: boolean };
}

export interface EventLogEntry {
  seq: number;
  at: number;
  /** An event type, or `notice` for connection changes and warnings. */
  kind: ClusterEventType | 'notice';
  serviceId?: string;
  text: string;
  tone: Tone;
}

export interface Flash {
  text: string;
  tone: Tone;
  at: number;
  /** Errors stay until the next key; everything else fades after {@link FLASH_MS}. */
  sticky: boolean;
}

export interface DetailState {
  serviceId: string;
  loading: boolean;
  data?: ServiceDetails;
  error?: string;
}

export interface FilterOption {
  label: string;
  count: number;
  apply: Filters | 'clear';
}

/** One line of the topology pane: a region or a zone, how many services, how many take traffic. */
export interface TopologyNode {
  name: string;
  total: number;
  healthy: number;
}

export interface TopologyRegion extends TopologyNode {
  zones: TopologyNode[];
}

export interface Totals {
  total: number;
  /** Health, as the records publish it (a health `draining` is an agent that is stopping). */
  byStatus: Record<ServiceStatus, number>;
  /** Operator state: services disabled (draining ones included). */
  disabled: number;
  /**
   * Operator state: of `disabled`, those whose drain still runs (adminState `draining`, deadline not
   * passed), whatever their health says.
   */
  draining: number;
  /** Healthy and enabled: what routing sends traffic to. */
  takingTraffic: number;
}

export interface DashboardStateOptions {
  connection: ConnectionState;
  /** Events kept in the log (default 200). */
  logSize?: number;
}

const FLASH_MS = 6_000;
const SPECIAL_KEYS = ['upArrow', 'downArrow', 'leftArrow', 'rightArrow', 'pageUp', 'pageDown', 'home', 'end', 'return', 'escape', 'backspace', 'delete', 'ctrl', 'meta', 'tab'] as const satisfies readonly (keyof KeyPress)[];

/** The live model of the dashboard. Mutated by the controller; read by the components at each frame. */
export class DashboardState {
  connection: ConnectionState;
  /** Epoch ms of the last listing or event applied. */
  lastUpdate: number | null = null;
  /** Events received since start (the log keeps only the newest). */
  eventCount = 0;

  mode: Mode = 'table';
  sort: { key: SortKey; descending: boolean } = { key: 'id', descending: false };
  filters: Filters = {};
  search = '';
  selectedId: string | null = null;
  /** Index of the first table row shown. */
  scrollTop = 0;
  /** How many table rows fit on screen; set by the layout. */
  viewportRows = 20;
  filterMenu: { options: FilterOption[]; index: number } | undefined;
  /** The disable/enable being prepared (reason prompt, then confirmation). */
  toggle: { serviceId: string; enabled: boolean; reason: string; force?: boolean; refusal?: string } | undefined;
  detail: DetailState | undefined;
  flash: Flash | undefined;
  /** An action in flight, e.g. `disabling proxy-stone-2…`. */
  busy: string | undefined;

  private readonly records = new Map<string, ServiceRecord>();
  private leader: string | null = null;
  private readonly log: EventLogEntry[] = [];
  private readonly logSize: number;
  private logSeq = 0;
  /** Bumped by every change to the data; caches key on it. */
  private dataVersion = 0;
  private rowsCache: { key: string; rows: ServiceRecord[] } | undefined;
  private topologyCache: { version: number; topology: ClusterTopology } | undefined;
  private treeCache: { version: number; tree: TopologyRegion[] } | undefined;
  /** The drain deadlines of the services draining, per change; `totals` counts those not yet passed. */
  private drainCache: { version: number; until: number[] } | undefined;
  /** Where the selection was, so a vanished row hands the selection to its neighbour. */
  private selectedIndexHint = 0;
  private searchBefore = '';
  /** Where Esc goes back to from a prompt. */
  private returnMode: 'table' | 'detail' = 'table';

  constructor(options: DashboardStateOptions) {
    this.connection = options.connection;
    this.logSize = options.logSize ?? 200;
  }

  // ── live data ────────────────────────────────────────────────────────────────────────────────

  /** Replaces the whole map with a fresh listing (first load, and after a reconnect or reset). */
  replaceAll(services: readonly ServiceRecord[], leaderId: string | null, now = Date.now()): void {
    // Registry data is escaped once, here and in applyEvent, rather than in every component that
    // draws a field: a control character in a name must not move ink's cursor or clear the screen.
    services = terminalSafe(services);
    leaderId = terminalSafe(leaderId);
    this.records.clear();
    this.leader = leaderId;
    for (const s of services) this.records.set(s.id, this.withRole(s));
    this.connection = { ...this.connection, synced: true };
    this.touch(now);
  }

  /** Applies one event to the map and the log (the event reducer). */
  applyEvent(e: ClusterEvent, now = Date.now()): void {
    e = terminalSafe(e);
    switch (e.type) {
      case 'serviceJoined':
      case 'serviceUpdated':
      case 'serviceHealthChanged':
        this.records.set(e.serviceId, this.withRole(e.service));
        break;
      case 'serviceLeft':
        this.records.delete(e.serviceId);
        break;
      case 'serviceEnabled':
      case 'serviceDisabled': {
        const s = this.records.get(e.serviceId);
        if (s) {
          const enabled = e.type === 'serviceEnabled';
          const next: ServiceRecord = { ...s, enabled, isHealthy: s.status === 'healthy' && enabled };
          if (enabled || e.reason === undefined) delete next.disabledReason;
          else next.disabledReason = e.reason;
          // The drain's countdown and a timed disable's time left (a serviceUpdated says when a drain ended).
          next.adminState = enabled ? 'enabled' : e.drainUntil !== undefined ? 'draining' : 'disabled';
          if (!enabled && e.drainUntil !== undefined) next.drainUntil = e.drainUntil;
          else delete next.drainUntil;
          if (!enabled && e.expiresAt !== undefined) next.disabledUntil = e.expiresAt;
          else delete next.disabledUntil;
          this.records.set(e.serviceId, next);
        }
        break;
      }
      case 'leaderElected':
        this.setLeader(e.leaderId);
        break;
    }
    this.eventCount += 1;
    this.pushLog({
      at: e.timestamp || now,
      kind: e.type,
      ...('serviceId' in e ? { serviceId: e.serviceId } : { serviceId: e.leaderId ?? undefined }),
      text: eventDetail(e),
      tone: eventTone(e),
    });
    this.touch(now);
  }

  /** A line in the event log that is not a cluster event: link lost, resynced, a skipped entry. */
  notice(text: string, tone: Tone = 'warn', now = Date.now()): void {
    this.pushLog({ at: now, kind: 'notice', text: escapeUnsafe(text), tone });
    this.dataVersion += 1;
  }

  setConnection(update: Partial<ConnectionState>, now = Date.now()): void {
    update = terminalSafe(update);
    const before = this.connection;
    const next = { ...before, ...update };
    if (before.connected && !next.connected) next.lostAt = next.lostAt ?? now;
    if (next.connected) {
      delete next.error;
      delete next.lostAt;
    }
    this.connection = next;
    this.dataVersion += 1;
  }

  /** Stale: the last view is shown, but the live link is down. */
  get stale(): boolean {
    return !this.connection.connected;
  }

  get leaderId(): string | null {
    return this.leader;
  }

  get size(): number {
    return this.records.size;
  }

  service(id: string): ServiceRecord | undefined {
    return this.records.get(id);
  }

  allServices(): ServiceRecord[] {
    return [...this.records.values()];
  }

  /** The seed's topology maths over the live map (memoised per change). */
  topology(): ClusterTopology {
    if (this.topologyCache?.version !== this.dataVersion) {
      this.topologyCache = { version: this.dataVersion, topology: computeTopology(this.allServices(), this.leader) };
    }
    return this.topologyCache.topology;
  }

  /** Regions and their zones, sorted by name, with computeTopology's counts for each. */
  topologyTree(): TopologyRegion[] {
    if (this.treeCache?.version === this.dataVersion) return this.treeCache.tree;
    const groups = new Map<string, Map<string, ServiceRecord[]>>();
    for (const s of this.records.values()) {
      const zones = groups.get(s.region) ?? new Map<string, ServiceRecord[]>();
      groups.set(s.region, zones);
      const list = zones.get(s.zone) ?? [];
      list.push(s);
      zones.set(s.zone, list);
    }
    const t = this.topology();
    const tree: TopologyRegion[] = [...groups.keys()].sort().map((region) => {
      const zones = [...groups.get(region)!.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([zone, list]) => ({ name: zone, total: own(own(t.servicesByZone, region) ?? {}, zone) ?? list.length, healthy: computeTopology(list, null).healthyServices }));
      return { name: region, total: own(t.servicesByRegion, region) ?? 0, healthy: zones.reduce((n, z) => n + z.healthy, 0), zones };
    });
    this.treeCache = { version: this.dataVersion, tree };
    return tree;
  }

  totals(now = Date.now()): Totals {
    const t = this.topology();
    if (this.drainCache?.version !== this.dataVersion) {
      const until: number[] = [];
      for (const s of this.records.values()) if (isDraining(s, -Infinity)) until.push(s.drainUntil);
      this.drainCache = { version: this.dataVersion, until };
    }
    // A drain is over at its deadline even before the event saying so arrives (as the table's countdown).
    const draining = this.drainCache.until.filter((until) => until > now).length;
    return { total: t.totalServices, byStatus: t.servicesByStatus, disabled: t.disabledServices, draining, takingTraffic: t.healthyServices };
  }

  /** Newest first. */
  events(limit = this.logSize): EventLogEntry[] {
    const out: EventLogEntry[] = [];
    for (let i = this.log.length - 1; i >= 0 && out.length < limit; i--) out.push(this.log[i]!);
    return out;
  }

  /** A number that changes whenever anything shown changes (for tests and frame skipping). */
  get version(): number {
    return this.dataVersion;
  }

  // ── the table ────────────────────────────────────────────────────────────────────────────────

  /** The services the table lists: filtered, searched, sorted. Memoised per change. */
  rows(): ServiceRecord[] {
    const key = `${this.dataVersion}|${this.sort.key}|${this.sort.descending}|${this.filters.status ?? ''}|${this.filters.region ?? ''}|${this.search}`;
    if (this.rowsCache?.key === key) return this.rowsCache.rows;
    const needle = this.search.trim().toLowerCase();
    // A search that reads as a label selector (`team=edge,env!=prod`) selects by metadata, as `-l` does.
    const labels = searchSelector(this.search);
    const rows = this.allServices().filter(
      (s) => matchesFilters(s, this.filters) && (labels ? matchesSelection(s, { labels }) : needle === '' || matchesSearch(s, needle)),
    );
    const compare = comparator(this.sort.key);
    rows.sort((a, b) => {
      const c = compare(a, b);
      // Ties keep id order whichever way the sort runs, so equal rows never swap places between frames.
      return c !== 0 ? (this.sort.descending ? -c : c) : a.id.localeCompare(b.id);
    });
    this.rowsCache = { key, rows };
    return rows;
  }

  /** Index of the selected row in {@link rows}, after handing a vanished selection to a neighbour. */
  selectedIndex(): number {
    const rows = this.rows();
    if (rows.length === 0) {
      this.selectedId = null;
      return -1;
    }
    let index = this.selectedId === null ? -1 : rows.findIndex((r) => r.id === this.selectedId);
    if (index === -1) {
      index = Math.min(Math.max(0, this.selectedIndexHint), rows.length - 1);
      this.selectedId = rows[index]!.id;
    }
    this.selectedIndexHint = index;
    return index;
  }

  selected(): ServiceRecord | undefined {
    const index = this.selectedIndex();
    return index === -1 ? undefined : this.rows()[index];
  }

  /**
   * The rows to draw: only the ones that fit (windowed, so 1,000 services cost as much as 30),
   * scrolled so that the selection is visible.
   */
  window(): { start: number; rows: ServiceRecord[]; total: number; selected: number } {
    const rows = this.rows();
    const selected = this.selectedIndex();
    const height = Math.max(1, this.viewportRows);
    if (selected !== -1) {
      if (selected < this.scrollTop) this.scrollTop = selected;
      if (selected >= this.scrollTop + height) this.scrollTop = selected - height + 1;
    }
    this.scrollTop = Math.max(0, Math.min(this.scrollTop, Math.max(0, rows.length - height)));
    return { start: this.scrollTop, rows: rows.slice(this.scrollTop, this.scrollTop + height), total: rows.length, selected };
  }

  setViewport(rows: number): void {
    this.viewportRows = Math.max(1, Math.floor(rows));
  }

  /** Moves the selection by `delta` rows, clamped to the list. */
  move(delta: number): void {
    const rows = this.rows();
    if (rows.length === 0) return;
    const index = Math.max(0, Math.min(rows.length - 1, this.selectedIndex() + delta));
    this.selectedId = rows[index]!.id;
    this.selectedIndexHint = index;
  }

  select(id: string): void {
    this.selectedId = id;
  }

  cycleSort(): void {
    const next = SORT_KEYS[(SORT_KEYS.indexOf(this.sort.key) + 1) % SORT_KEYS.length]!;
    // Worst first where there is a worst: slowest latency (descending), oldest check (ascending).
    this.sort = { key: next, descending: next === 'latency' };
  }

  reverseSort(): void {
    this.sort = { ...this.sort, descending: !this.sort.descending };
  }

  setFilters(filters: Filters): void {
    this.filters = { ...filters };
  }

  /** What `f` offers: clear, each status (and disabled), each region, with how many services match. */
  filterOptions(): FilterOption[] {
    const all = this.allServices();
    const options: FilterOption[] = [{ label: 'all services (clear filters)', count: all.length, apply: 'clear' }];
    for (const status of SERVICE_STATUSES) {
      options.push({ label: `status: ${status}`, count: all.filter((s) => s.status === status).length, apply: { ...this.filters, status } });
    }
    options.push({ label: 'status: disabled', count: all.filter((s) => !s.enabled).length, apply: { ...this.filters, status: 'disabled' } });
    const regions = new Map<string, number>();
    for (const s of all) regions.set(s.region, (regions.get(s.region) ?? 0) + 1);
    for (const region of [...regions.keys()].sort()) {
      options.push({ label: `region: ${region || '(none)'}`, count: regions.get(region)!, apply: { ...this.filters, region } });
    }
    return options;
  }

  /** Whether the flash is still to be shown at `now`. */
  visibleFlash(now = Date.now()): Flash | undefined {
    const f = this.flash;
    if (!f) return undefined;
    return f.sticky || now - f.at < FLASH_MS ? f : undefined;
  }

  say(text: string, tone: Tone = 'info', now = Date.now(), sticky = tone === 'bad'): void {
    this.flash = { text: escapeUnsafe(text), tone, at: now, sticky };
  }

  // ── actions' outcomes (called by the controller) ────────────────────────────────────────────

  detailLoaded(serviceId: string, data: ServiceDetails): void {
    if (this.detail?.serviceId !== serviceId) return;
    this.detail = { serviceId, loading: false, data: terminalSafe(data) };
  }

  detailFailed(serviceId: string, error: string): void {
    if (this.detail?.serviceId !== serviceId) return;
    this.detail = { serviceId, loading: false, error: escapeUnsafe(error) };
  }

  // ── keys ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Handles what the terminal delivered at once: one key, or several typed faster than they were read
   * (ink passes `jj\r` as one input), each handled in turn. Returns the actions to carry out, in order.
   */
  pressKeys(input: string, key: KeyPress = {}, now = Date.now()): DashboardAction[] {
    const special = SPECIAL_KEYS.some((k) => key[k]);
    const keys: [string, KeyPress][] = special || input.length <= 1 ? [[input, key]] : Array.from(input, (ch) => splitKey(ch));
    const actions: DashboardAction[] = [];
    for (const [i, k] of keys) {
      const action = this.press(i, k, now);
      if (action) actions.push(action);
      if (action?.type === 'quit') break;
    }
    return actions;
  }

  /** Handles one keypress and returns what the controller must do, if anything. */
  press(input: string, key: KeyPress = {}, now = Date.now()): DashboardAction | undefined {
    if (key.ctrl && input === 'c') return { type: 'quit' };
    // Any key dismisses a message; a new one may replace it below.
    if (this.flash && this.mode !== 'reason') this.flash = undefined;
    switch (this.mode) {
      case 'search':
        return this.pressSearch(input, key);
      case 'reason':
        return this.pressReason(input, key, now);
      case 'confirm':
        return this.pressConfirm(input, now);
      case 'filter':
        return this.pressFilter(input, key);
      case 'help':
        if (input === 'q') return { type: 'quit' };
        this.mode = this.returnMode;
        return undefined;
      case 'detail':
        return this.pressDetail(input, key, now);
      case 'table':
        return this.pressTable(input, key, now);
    }
  }

  private pressTable(input: string, key: KeyPress, now: number): DashboardAction | undefined {
    const page = Math.max(1, this.viewportRows - 1);
    if (key.upArrow || input === 'k') this.move(-1);
    else if (key.downArrow || input === 'j') this.move(1);
    else if (key.pageUp || (key.ctrl && input === 'b')) this.move(-page);
    else if (key.pageDown || (key.ctrl && input === 'f') || input === ' ') this.move(page);
    else if (key.home || input === 'g') this.move(-Infinity);
    else if (key.end || input === 'G') this.move(Infinity);
    else if (key.return) return this.openDetail();
    else if (input === 'q') return { type: 'quit' };
    else if (input === 'd' || input === 'e') return this.startToggle(input === 'e', 'table', now);
    else if (input === 'f') this.openFilterMenu();
    else if (input === '/') {
      this.searchBefore = this.search;
      this.mode = 'search';
    } else if (input === 's') this.cycleSort();
    else if (input === 'S') this.reverseSort();
    else if (input === '?') {
      this.returnMode = 'table';
      this.mode = 'help';
    } else if (key.escape) {
      // Esc is "show me everything again".
      if (this.search || this.filters.status || this.filters.region !== undefined) {
        this.search = '';
        this.filters = {};
        this.say('filters and search cleared', 'info', now);
      }
    }
    return undefined;
  }

  private pressDetail(input: string, key: KeyPress, now: number): DashboardAction | undefined {
    if (input === 'q') return { type: 'quit' };
    if (key.escape || key.return || key.leftArrow || key.backspace || key.delete) {
      this.mode = 'table';
      this.detail = undefined;
      return undefined;
    }
    if (input === 'd' || input === 'e') return this.startToggle(input === 'e', 'detail', now);
    if (input === 'r' && this.detail) return this.openDetail(this.detail.serviceId);
    if (input === '?') {
      this.returnMode = 'detail';
      this.mode = 'help';
    }
    return undefined;
  }

  private openDetail(id = this.selected()?.id): DashboardAction | undefined {
    if (id === undefined) return undefined;
    this.mode = 'detail';
    this.detail = { serviceId: id, loading: true, ...(this.detail?.serviceId === id && this.detail.data ? { data: this.detail.data } : {}) };
    return { type: 'loadDetail', serviceId: id };
  }

  private pressSearch(input: string, key: KeyPress): DashboardAction | undefined {
    if (key.escape) {
      this.search = this.searchBefore;
      this.mode = 'table';
    } else if (key.return) {
      this.mode = 'table';
    } else if (key.backspace || key.delete) {
      this.search = this.search.slice(0, -1);
    } else if (key.ctrl && input === 'u') {
      this.search = '';
    } else if (key.upArrow || key.downArrow) {
      // Moving while searching keeps the search and goes back to the table.
      this.mode = 'table';
      this.move(key.upArrow ? -1 : 1);
    } else if (!key.ctrl && !key.meta) {
      this.search += printable(input);
    }
    return undefined;
  }

  private openFilterMenu(): void {
    const options = this.filterOptions();
    const { status, region } = this.filters;
    const current =
      status !== undefined
        ? options.findIndex((o) => o.label === `status: ${status}`)
        : region !== undefined
          ? options.findIndex((o) => o.apply !== 'clear' && o.apply.status === undefined && o.apply.region === region)
          : 0;
    this.filterMenu = { options, index: Math.max(0, current) };
    this.mode = 'filter';
  }

  private pressFilter(input: string, key: KeyPress): DashboardAction | undefined {
    const menu = this.filterMenu;
    if (!menu || key.escape || input === 'f' || input === 'q') {
      this.filterMenu = undefined;
      this.mode = 'table';
      return undefined;
    }
    if (key.upArrow || input === 'k') menu.index = Math.max(0, menu.index - 1);
    else if (key.downArrow || input === 'j') menu.index = Math.min(menu.options.length - 1, menu.index + 1);
    else if (key.return) {
      const choice = menu.options[menu.index];
      if (choice) this.filters = choice.apply === 'clear' ? {} : { ...choice.apply };
      this.filterMenu = undefined;
      this.mode = 'table';
      this.scrollTop = 0;
    }
    return undefined;
  }

  private startToggle(enabled: boolean, from: 'table' | 'detail', now: number): DashboardAction | undefined {
    const id = from === 'detail' ? this.detail?.serviceId : this.selected()?.id;
    if (id === undefined) {
      this.say('no service selected', 'warn', now);
      return undefined;
    }
    if (this.busy) {
      this.say(`wait: ${this.busy}`, 'warn', now);
      return undefined;
    }
    const service = this.records.get(id);
    if (service && service.enabled === enabled) {
      this.say(`${id} is already ${enabled ? 'enabled' : 'disabled'}`, 'info', now);
      return undefined;
    }
    this.returnMode = from;
    this.toggle = { serviceId: id, enabled, reason: '' };
    this.mode = 'reason';
    return undefined;
  }

  private pressReason(input: string, key: KeyPress, now: number): DashboardAction | undefined {
    const toggle = this.toggle;
    if (!toggle || key.escape) return this.cancelToggle(now);
    if (key.return) {
      const reason = toggle.reason.trim();
      // An instance out of rotation with no why is the next on-call's puzzle: disabling needs one.
      if (!toggle.enabled && reason === '') {
        this.say('a reason is required to disable (Esc cancels)', 'warn', now, false);
        return undefined;
      }
      toggle.reason = reason;
      this.flash = undefined;
      this.mode = 'confirm';
    } else if (key.backspace || key.delete) {
      toggle.reason = toggle.reason.slice(0, -1);
    } else if (key.ctrl && input === 'u') {
      toggle.reason = '';
    } else if (!key.ctrl && !key.meta) {
      toggle.reason = (toggle.reason + printable(input)).slice(0, MAX_REASON);
    }
    return undefined;
  }

  private pressConfirm(input: string, now: number): DashboardAction | undefined {
    const toggle = this.toggle;
    if (!toggle) return this.cancelToggle(now);
    if (input === 'y' || input === 'Y') {
      this.toggle = undefined;
      this.mode = this.returnMode;
      this.busy = `${toggle.enabled ? 'enabling' : 'disabling'} ${toggle.serviceId}…`;
      return {
        type: 'setEnabled',
        serviceId: toggle.serviceId,
        enabled: toggle.enabled,
        ...(toggle.reason ? { reason: toggle.reason } : {}),
        ...(toggle.force ? { force: true } : {}),
      };
    }
    // Anything but yes is no, as with the CLI's [y/N].
    return this.cancelToggle(now);
  }

  /**
   * The capacity guard refused a disable: show why, and offer to force it, which needs its own
   * explicit `y` (anything else cancels). A forced disable is audited as forced.
   */
  refused(serviceId: string, reason: string | undefined, message: string, now = Date.now()): void {
    this.busy = undefined;
    this.toggle = { serviceId, enabled: false, reason: reason ?? '', force: true, refusal: escapeUnsafe(message) };
    this.mode = 'confirm';
    this.say(message, 'bad', now, false);
  }

  private cancelToggle(now: number): undefined {
    this.toggle = undefined;
    this.mode = this.returnMode;
    this.say('cancelled; nothing changed', 'info', now);
    return undefined;
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  private withRole(s: ServiceRecord): ServiceRecord {
    // The election decides who leads; a record's own role can lag behind it by a write.
    if (this.leader === null) return s;
    const role = s.id === this.leader ? 'leader' : 'follower';
    return s.role === role ? s : { ...s, role };
  }

  private setLeader(id: string | null): void {
    this.leader = id;
    for (const [key, s] of this.records) {
      const role = s.id === id ? 'leader' : 'follower';
      if (s.role !== role) this.records.set(key, { ...s, role });
    }
  }

  private pushLog(entry: Omit<EventLogEntry, 'seq'>): void {
    this.log.push({ seq: ++this.logSeq, ...entry });
    // Trim in chunks: one splice per 10% overflow instead of a shift per event in a burst.
    if (this.log.length > this.logSize * 1.1) this.log.splice(0, this.log.length - this.logSize);
  }

  private touch(now: number): void {
    this.lastUpdate = now;
    this.dataVersion += 1;
  }
}

/** One character of a multi-key input as the key it stands for. */
function splitKey(ch: string): [string, KeyPress] {
  if (ch === '\r' || ch === '\n') return ['', { return: true }];
  if (ch === '\t') return ['', { tab: true }];
  if (ch === '\u007f' || ch === '\b') return ['', { backspace: true }];
  const code = ch.charCodeAt(0);
  // Ctrl-A … Ctrl-Z arrive as 0x01 … 0x1a; ink reports them as the letter with ctrl.
  if (code >= 1 && code <= 26) return [String.fromCharCode(code + 96), { ctrl: true }];
  return [ch, {}];
}

function matchesFilters(s: ServiceRecord, f: Filters): boolean {
  if (f.region !== undefined && s.region !== f.region) return false;
  if (f.status === undefined) return true;
  return f.status === 'disabled' ? !s.enabled : s.status === f.status;
}

/** The search as a label selector when it has a `=` and reads as one (src/cluster/selector.ts); else undefined. */
function searchSelector(search: string): LabelRequirement[] | undefined {
  if (!search.includes('=')) return undefined;
  try {
    return parseLabelSelector(search);
  } catch {
    return undefined;
  }
}

function matchesSearch(s: ServiceRecord, needle: string): boolean {
  return (
    s.id.toLowerCase().includes(needle) ||
    s.name.toLowerCase().includes(needle) ||
    `${s.host}:${s.port}`.includes(needle) ||
    `${s.region}/${s.zone}`.toLowerCase().includes(needle) ||
    s.version.toLowerCase().includes(needle) ||
    s.tags.some((t) => t.toLowerCase().includes(needle))
  );
}

function comparator(key: SortKey): (a: ServiceRecord, b: ServiceRecord) => number {
  switch (key) {
    case 'id':
      return (a, b) => a.id.localeCompare(b.id);
    case 'status':
      return (a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status];
    case 'place':
      return (a, b) => a.region.localeCompare(b.region) || a.zone.localeCompare(b.zone);
    case 'role':
      return (a, b) => (a.role === b.role ? 0 : a.role === 'leader' ? -1 : 1);
    case 'enabled':
      return (a, b) => (a.enabled === b.enabled ? 0 : a.enabled ? 1 : -1);
    case 'latency':
      return (a, b) => (a.health.responseTime ?? -1) - (b.health.responseTime ?? -1);
    case 'checked':
      return (a, b) => (a.health.lastCheck ?? 0) - (b.health.lastCheck ?? 0);
    case 'version':
      return (a, b) => a.version.localeCompare(b.version, undefined, { numeric: true });
  }
}

/** `obj[key]` when `obj` has it as its own property: a region named `constructor` is not Object's. */
function own<T>(obj: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}
