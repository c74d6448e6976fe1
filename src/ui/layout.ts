/**
 * Screen geometry of the dashboard from the terminal size: pure, so a resize is a recomputation and
 * tests can pin it.
 *
 * @module
 */

export interface DashboardLayout {
  width: number;
  /** Lines the whole frame uses: one less than the terminal, so ink never redraws from the top. */
  height: number;
  header: number;
  banner: number;
  /** Lines of the middle band (table and topology, or detail / help). */
  main: number;
  /** Service rows that fit in the table. */
  tableRows: number;
  /** Event lines in the event pane. */
  events: number;
  footer: number;
  /** Columns of the topology pane; 0 hides it (narrow terminal). */
  topologyWidth: number;
}

/** Smallest terminal the layout is drawn for; smaller ones are drawn as if this big (and clipped). */
export const MIN_COLUMNS = 60;
export const MIN_ROWS = 16;

export function computeLayout(columns: number, rows: number, options: { banner: boolean }): DashboardLayout {
  const width = Math.max(MIN_COLUMNS, Math.floor(columns) || 80);
  // ink clears the whole screen for every frame as tall as the terminal; one line less avoids that flicker.
  const height = Math.max(MIN_ROWS, (Math.floor(rows) || 24) - 1);
  const header = 2;
  const banner = options.banner ? 1 : 0;
  const footer = 1;
  const events = height >= 30 ? Math.min(10, Math.floor(height * 0.2)) : height >= 20 ? 4 : 2;
  // Bordered panes: 2 border lines each; the table has its column header too.
  const main = height - header - banner - footer - (events + 2);
  const tableRows = Math.max(1, main - 3);
  const topologyWidth = width >= 110 ? Math.max(34, Math.min(48, Math.floor(width * 0.28))) : 0;
  return { width, height, header, banner, main, tableRows, events, footer, topologyWidth };
}
