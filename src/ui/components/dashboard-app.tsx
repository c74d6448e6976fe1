import { useInput, useStdout } from 'ink';
import { useEffect, useState, useSyncExternalStore } from 'react';
import type { DashboardController } from '../controller.js';
import { computeLayout } from '../layout.js';
import { Dashboard } from './dashboard.js';
import { bannerText } from './header.js';
import { ColorScope } from './theme.js';

export interface DashboardAppProps {
  controller: DashboardController;
  /** Colour on (false under NO_COLOR). */
  color: boolean;
  /** Fixed size (tests, benchmarks); otherwise the terminal's, following resizes. */
  columns?: number;
  rows?: number;
  now?: () => number;
}

/** The root: subscribes to the controller's frames, routes keys to it, follows the terminal size. */
export function DashboardApp({ controller, color, columns, rows, now = Date.now }: DashboardAppProps) {
  useSyncExternalStore(controller.subscribe, controller.getFrame);
  const size = useTerminalSize(columns, rows);
  useInput((input, key) => void controller.press(input, key));
  const state = controller.state;
  const at = now();
  const layout = computeLayout(size.columns, size.rows, { banner: bannerText(state, at) !== undefined });
  state.setViewport(layout.tableRows);
  return (
    <ColorScope enabled={color}>
      <Dashboard state={state} layout={layout} now={at} />
    </ColorScope>
  );
}

function useTerminalSize(columns: number | undefined, rows: number | undefined): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: columns ?? stdout.columns ?? 80, rows: rows ?? stdout.rows ?? 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    if (columns !== undefined && rows !== undefined) return undefined;
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, columns, rows]);
  return columns !== undefined && rows !== undefined ? { columns, rows } : size;
}
