import { Box } from 'ink';
import type { DashboardState } from '../dashboard-state.js';
import type { DashboardLayout } from '../layout.js';
import { DetailPane } from './detail-pane.js';
import { EventLog } from './event-log.js';
import { FilterMenu } from './filter-menu.js';
import { Footer } from './footer.js';
import { Banner, Header } from './header.js';
import { HelpPane } from './help-pane.js';
import { ServicesTable } from './services-table.js';
import { TopologyPane } from './topology-pane.js';

/** The whole screen, drawn from the state for one layout; no logic beyond choosing the middle pane. */
export function Dashboard({ state, layout, now }: { state: DashboardState; layout: DashboardLayout; now: number }) {
  const { width, main, tableRows, topologyWidth } = layout;
  const tableWidth = width - topologyWidth;
  let middle;
  if (state.mode === 'help' || (state.mode === 'detail' && state.detail)) {
    middle = state.mode === 'help' ? <HelpPane width={width} rows={main} /> : <DetailPane state={state} width={width} rows={main} now={now} />;
  } else if (state.mode === 'filter' && topologyWidth === 0) {
    middle = <FilterMenu state={state} width={width} rows={main} />;
  } else {
    middle = (
      <Box>
        <ServicesTable state={state} width={tableWidth} rows={tableRows} now={now} />
        {topologyWidth === 0 ? null : state.mode === 'filter' ? (
          <FilterMenu state={state} width={topologyWidth} rows={main} />
        ) : (
          <TopologyPane state={state} width={topologyWidth} rows={tableRows} />
        )}
      </Box>
    );
  }
  return (
    <Box flexDirection="column" width={width} height={layout.height}>
      <Header state={state} now={now} width={width} />
      <Banner state={state} now={now} />
      <Box height={main} flexShrink={0}>
        {middle}
      </Box>
      <EventLog state={state} width={width} rows={layout.events} />
      <Footer state={state} now={now} />
    </Box>
  );
}
