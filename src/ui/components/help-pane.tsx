import { Box, Text } from 'ink';

export const KEYS: [string, string][] = [
  ['↑ ↓  j k', 'move the selection'],
  ['PgUp PgDn  Space  g G', 'page up / down, first / last'],
  ['Enter', 'detail of the selected service: record, health history, intent, audit'],
  ['d', 'disable the selected service (asks for a reason, then y; if the capacity guard refuses, y again forces)'],
  ['e', 'enable the selected service (optional reason, then y to confirm)'],
  ['f', 'filter by status (or disabled) or by region'],
  ['/', 'search id, name, address, place, version, tags'],
  ['s  S', 'next sort column / reverse the order'],
  ['Esc', 'clear filter and search; leave the detail'],
  ['r', 'reload the detail'],
  ['?', 'this help (any key closes it)'],
  ['q  Ctrl-C', 'quit'],
];

export function HelpPane({ width, rows }: { width: number; rows: number }) {
  return (
    <Box flexDirection="column" borderStyle="round" width={width} height={rows} paddingX={1}>
      <Text bold>Keys</Text>
      {KEYS.map(([k, what]) => (
        <Text key={k} wrap="truncate">
          <Text bold>{k.padEnd(24)}</Text>
          {what}
        </Text>
      ))}
      <Text> </Text>
      <Text dimColor wrap="truncate">
        ★ marks the leader. “stale” means the live link is down and you see the last view; it recovers by itself.
      </Text>
      <Text dimColor wrap="truncate">
        Changes are made exactly as `proxy-stone-sd services disable|enable` makes them, and audited.
      </Text>
    </Box>
  );
}
