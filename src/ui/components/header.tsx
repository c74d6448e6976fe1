import { Box, Text } from 'ink';
import type { DashboardState } from '../dashboard-state.js';
import { ago, clock, fit } from '../format.js';
import { useTone } from './theme.js';

/** Two lines: where we look and who leads; then the totals, health and admin state apart. */
export function Header({ state, now, width }: { state: DashboardState; now: number; width: number }) {
  const tone = useTone();
  const c = state.connection;
  const t = state.totals(now);
  const leader = state.leaderId;
  const link = c.connected
    ? { text: '● live', tone: 'good' as const }
    : c.synced && (c.lostAt !== undefined || c.error !== undefined)
      ? { text: '● stale', tone: 'bad' as const }
      : { text: '○ connecting', tone: 'warn' as const };
  const where = c.source === 'registry' ? `${/^rediss?:\/\//.test(c.target) ? 'redis' : 'etcd'} ${c.target}` : `agent ${c.target}`;
  return (
    <Box flexDirection="column" width={width}>
      <Box width={width}>
        <Box flexGrow={1} flexShrink={1}>
          <Text wrap="truncate">
            <Text dimColor>cluster </Text>
            <Text bold>{fit(c.cluster, 40)}</Text>
            <Text dimColor> │ leader </Text>
            {leader ? (
              <Text bold color={tone('warn')}>
                {leader} ★
              </Text>
            ) : (
              <Text color={tone('bad')} bold>
                none
              </Text>
            )}
            <Text dimColor> │ </Text>
            {where} <Text color={tone(link.tone)} bold={!c.connected}>{link.text}</Text>
            {c.registry ? (
              <>
                <Text dimColor> │ registry </Text>
                {c.registry.description}{' '}
                <Text color={tone(c.registry.reachable && !c.registry.stale ? 'good' : 'bad')}>
                  {c.registry.reachable ? (c.registry.stale ? '● stale' : '● reachable') : '● unreachable'}
                </Text>
              </>
            ) : null}
            <Text dimColor> │ last change </Text>
            {state.lastUpdate ? `${ago(state.lastUpdate, now)} (${clock(state.lastUpdate)})` : 'none yet'}
          </Text>
        </Box>
        <Box flexShrink={0}>
          <Text dimColor> proxy-stone-sd</Text>
        </Box>
      </Box>
      {/* Health (what the checks say) and admin state (what the operator asked) are separate groups:
          a health `draining` is an agent stopping, an admin `draining` a disable whose drain still runs. */}
      <Text wrap="truncate">
        <Text bold>{t.total}</Text> services<Text dimColor>{' │ health: '}</Text>
        <Text color={tone('good')}>{t.byStatus.healthy} healthy</Text>
        {'  '}
        <Text color={tone(t.byStatus.unhealthy ? 'bad' : undefined)} bold={t.byStatus.unhealthy > 0}>
          {t.byStatus.unhealthy} unhealthy
        </Text>
        {/* The passing states only while any service is in them: the line must fit 80 columns. */}
        {t.byStatus.starting ? <Text color={tone('warn')}>{`  ${t.byStatus.starting} starting`}</Text> : null}
        {t.byStatus.draining ? <Text color={tone('info')}>{`  ${t.byStatus.draining} draining`}</Text> : null}
        {t.byStatus.stopped ? <Text color={tone('muted')}>{`  ${t.byStatus.stopped} stopped`}</Text> : null}
        <Text dimColor>{' │ admin: '}</Text>
        <Text color={tone(t.disabled ? 'warn' : undefined)} bold={t.disabled > 0}>
          {t.disabled} disabled
        </Text>
        {t.draining ? <Text color={tone('info')}>{` (${t.draining} draining)`}</Text> : null}
        <Text dimColor>{` │ ${t.takingTraffic} taking traffic`}</Text>
      </Text>
    </Box>
  );
}

/** One line when the live link is down (or not up yet): what is wrong and that the view is the last one. */
export function Banner({ state, now }: { state: DashboardState; now: number }) {
  const tone = useTone();
  const c = state.connection;
  const text = bannerText(state, now);
  if (!text) return null;
  const bad = !c.connected && (c.lostAt !== undefined || c.error !== undefined);
  return (
    <Text wrap="truncate" inverse={bad} bold={bad} color={tone(bad ? 'bad' : 'warn')}>
      {text}
    </Text>
  );
}

export function bannerText(state: DashboardState, now: number): string | undefined {
  const c = state.connection;
  const what = c.source === 'registry' ? `registry ${c.target}` : `agent ${c.target}`;
  if (!c.connected) {
    if (!c.synced) return c.error ? ` ! ${what} unreachable — retrying (${c.error}) ` : ` connecting to ${what}… `;
    // Listed once, the live link not up yet: starting up, not a failure.
    if (c.lostAt === undefined && c.error === undefined) return ` connecting the live ${c.source === 'registry' ? 'watch' : 'event stream'} to ${what}… (showing a one-off listing) `;
    const since = c.lostAt ? ` since ${clock(c.lostAt)} (${ago(c.lostAt, now)})` : '';
    return ` ! STALE: ${what} unreachable${since} — showing the last view; reconnecting…${c.error ? ` (${c.error})` : ''} `;
  }
  if (c.registry && (!c.registry.reachable || c.registry.stale)) {
    return ` ! the agent cannot reach its registry (${c.registry.description}): its view, and so this one, may be stale `;
  }
  return undefined;
}
