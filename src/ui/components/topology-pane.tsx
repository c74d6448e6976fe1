import { Box, Text } from 'ink';
import type { DashboardState, TopologyNode } from '../dashboard-state.js';
import { cell } from '../format.js';
import { useTone } from './theme.js';

/** Region → zone → counts, the `topology` command's maths; cut with "… n more" when it does not fit. */
export function TopologyPane({ state, width, rows }: { state: DashboardState; width: number; rows: number }) {
  const tone = useTone();
  const tree = state.topologyTree();
  const inner = width - 4;
  const lines: { key: string; label: string; node: TopologyNode; depth: number }[] = [];
  for (const region of tree) {
    lines.push({ key: `r:${region.name}`, label: region.name || '(no region)', node: region, depth: 0 });
    for (const zone of region.zones) lines.push({ key: `z:${region.name}/${zone.name}`, label: zone.name || '(no zone)', node: zone, depth: 1 });
  }
  // The body is the box minus its borders, minus the leader line and its spacer.
  const room = Math.max(1, rows + 1 - 2);
  const shown = lines.length > room ? lines.slice(0, room - 1) : lines;
  const countWidth = 18;
  const leader = state.leaderId;
  return (
    <Box flexDirection="column" borderStyle="round" borderDimColor width={width} height={rows + 3} paddingX={1}>
      <Box position="absolute" marginTop={-1} marginLeft={1}>
        <Text bold> Topology </Text>
      </Box>
      <Text wrap="truncate">
        <Text dimColor>leader </Text>
        {leader ? <Text bold color={tone('warn')}>{`${leader} ★`}</Text> : <Text color={tone('bad')}>none</Text>}
      </Text>
      {shown.map((l) => {
        const bad = l.node.total - l.node.healthy;
        return (
          <Text key={l.key} wrap="truncate" bold={l.depth === 0}>
            {cell(`${'  '.repeat(l.depth)}${l.label}`, Math.max(4, inner - countWidth))}
            {cell(`${l.node.total}`, 4, 'right')}
            <Text color={tone(bad ? 'bad' : 'good')} bold={false}>
              {cell(bad ? ` ${bad} not serving` : ' all serving', countWidth - 4)}
            </Text>
          </Text>
        );
      })}
      {shown.length < lines.length ? <Text dimColor>{`… ${lines.length - shown.length} more`}</Text> : null}
    </Box>
  );
}
