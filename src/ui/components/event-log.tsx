import { Box, Text } from 'ink';
import type { DashboardState } from '../dashboard-state.js';
import { cell, clock } from '../format.js';
import { useTone } from './theme.js';

/** The newest events first, one line each: time, type, service, what changed. */
export function EventLog({ state, width, rows }: { state: DashboardState; width: number; rows: number }) {
  const tone = useTone();
  const events = state.events(rows);
  const inner = width - 4;
  const idWidth = Math.min(28, Math.max(12, Math.floor(inner * 0.2)));
  return (
    <Box flexDirection="column" borderStyle="round" borderDimColor width={width} height={rows + 2} paddingX={1}>
      <Box position="absolute" marginTop={-1} marginLeft={1}>
        <Text bold>{` Events (${state.eventCount} received, newest first) `}</Text>
      </Box>
      {events.length === 0 ? <Text dimColor>no events yet: changes appear here as they happen</Text> : null}
      {events.map((e) => (
        <Text key={e.seq} wrap="truncate">
          <Text dimColor>{clock(e.at)} </Text>
          <Text color={tone(e.tone)}>{cell(e.kind, 21)}</Text>
          {cell(e.serviceId ?? '', idWidth)} {e.text}
        </Text>
      ))}
    </Box>
  );
}
