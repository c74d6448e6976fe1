import { Box, Text } from 'ink';
import type { ServiceRecord } from '../../types.js';
import type { DashboardState, SortKey } from '../dashboard-state.js';
import { age, cell, enabledCell, fit, latency, STATUS_TONE } from '../format.js';
import { useTone } from './theme.js';

interface Column {
  key: SortKey;
  title: string;
  width: number;
  align?: 'left' | 'right';
  value(s: ServiceRecord, now: number): string;
}

const FIXED: Column[] = [
  { key: 'place', title: 'REGION/ZONE', width: 22, value: (s) => `${s.region}/${s.zone}` },
  // A service held down as flapping is unhealthy by definition; the column says which kind.
  { key: 'status', title: 'STATUS', width: 9, value: (s) => (s.health.flapping ? 'flapping' : s.status) },
  { key: 'role', title: 'ROLE', width: 8, value: (s) => (s.role === 'leader' ? 'leader ★' : 'follower') },
  { key: 'enabled', title: 'ENABLED', width: 7, value: (s, now) => enabledCell(s, now) },
  { key: 'latency', title: 'LATENCY', width: 7, align: 'right', value: (s) => latency(s.health.responseTime) },
  // The record's health is written on each change and refreshed at a slow cadence, not on every
  // probe: its age says when the agent last reported, not that checks stopped.
  { key: 'checked', title: 'UPDATED', width: 7, align: 'right', value: (s, now) => age(s.health.lastCheck, now) },
  { key: 'version', title: 'VERSION', width: 10, value: (s) => s.version },
];
/** Dropped in this order when the table is too narrow for an id of at least this width. */
const DROP_ORDER: SortKey[] = ['version', 'checked', 'role', 'place'];
const MIN_ID = 16;
/** `›` on the selected row (visible without colour or inverse), `★` on the leader, a space. */
const MARK = 3;

/** Which columns fit in `width`, and how wide the id column can be. */
export function tableColumns(width: number): { id: number; columns: Column[] } {
  let columns = FIXED;
  const idWidth = (cols: Column[]) => width - MARK - cols.reduce((n, c) => n + c.width + 1, 0);
  for (const drop of DROP_ORDER) {
    if (idWidth(columns) >= MIN_ID) break;
    columns = columns.filter((c) => c.key !== drop);
  }
  return { id: Math.max(8, Math.min(40, idWidth(columns))), columns };
}

/** The services table: a bordered box with only the rows that fit (windowed), the selection inverted. */
export function ServicesTable({ state, width, rows, now }: { state: DashboardState; width: number; rows: number; now: number }) {
  const tone = useTone();
  const inner = width - 4;
  const { id, columns } = tableColumns(inner);
  const win = state.window();
  const arrow = state.sort.descending ? '▼' : '▲';
  const heading = (key: SortKey, title: string) => (state.sort.key === key ? `${title}${arrow}` : title);
  const leader = state.leaderId;
  const range = win.total === 0 ? '0' : `${win.start + 1}-${win.start + win.rows.length} of ${win.total}`;
  const filters = [
    state.filters.status ? `status=${state.filters.status}` : '',
    state.filters.region !== undefined ? `region=${state.filters.region || '(none)'}` : '',
  ].filter(Boolean);
  const title = fit(
    ` Services ${range}${win.total !== state.size ? ` (${state.size} in all)` : ''} · sort ${state.sort.key} ${arrow} · filter ${filters.length ? filters.join(' ') : 'none'} · search ${state.search ? `“${state.search}”` : '—'} `,
    width - 4,
  );
  return (
    <Box flexDirection="column" borderStyle="round" borderDimColor width={width} height={rows + 3} paddingX={1}>
      <Box position="absolute" marginTop={-1} marginLeft={1}>
        <Text bold>{title}</Text>
      </Box>
      <Text bold wrap="truncate">
        {'   '}
        {cell(heading('id', 'ID'), id)}
        {columns.map((c) => ` ${cell(heading(c.key, c.title), c.width, c.align)}`).join('')}
      </Text>
      {win.total === 0 ? (
        <Text dimColor>{state.size === 0 ? (state.connection.synced ? 'no services registered' : 'waiting for the first listing…') : 'no service matches the filter or search (Esc clears them)'}</Text>
      ) : (
        win.rows.map((s, i) => {
          const selected = win.start + i === win.selected;
          const isLeader = s.id === leader;
          return (
            <Text key={s.id} inverse={selected} wrap="truncate">
              {selected ? '›' : ' '}
              <Text color={tone(isLeader ? 'warn' : undefined)} bold={isLeader}>
                {isLeader ? '★ ' : '  '}
              </Text>
              <Text bold={isLeader}>{cell(s.id, id)}</Text>
              {columns.map((c) => {
                const text = ` ${cell(c.value(s, now), c.width, c.align)}`;
                if (c.key === 'status') return <Text key={c.key} color={tone(STATUS_TONE[s.status])} bold={s.status === 'unhealthy'}>{text}</Text>;
                if (c.key === 'enabled' && !s.enabled) return <Text key={c.key} color={tone('warn')} bold>{text}</Text>;
                if (c.key === 'role' && isLeader) return <Text key={c.key} bold>{text}</Text>;
                return <Text key={c.key}>{text}</Text>;
              })}
            </Text>
          );
        })
      )}
    </Box>
  );
}
