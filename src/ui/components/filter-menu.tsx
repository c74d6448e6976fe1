import { Box, Text } from 'ink';
import type { DashboardState } from '../dashboard-state.js';
import { cell } from '../format.js';

/** The `f` menu: clear, each status, each region, with how many services each would show. */
export function FilterMenu({ state, width, rows }: { state: DashboardState; width: number; rows: number }) {
  const menu = state.filterMenu;
  if (!menu) return null;
  const room = Math.max(1, rows - 3);
  // Keep the highlighted option in view when there are more regions than lines.
  const start = Math.max(0, Math.min(menu.index - Math.floor(room / 2), menu.options.length - room));
  const shown = menu.options.slice(start, start + room);
  const inner = width - 4;
  return (
    <Box flexDirection="column" borderStyle="double" width={width} height={rows} paddingX={1}>
      <Text bold>Filter</Text>
      {shown.map((o, i) => (
        <Text key={o.label} inverse={start + i === menu.index} wrap="truncate">
          {cell(o.label, inner - 6)}
          {cell(String(o.count), 6, 'right')}
        </Text>
      ))}
    </Box>
  );
}
