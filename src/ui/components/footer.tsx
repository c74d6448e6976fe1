import { Text } from 'ink';
import type { DashboardState } from '../dashboard-state.js';
import { useTone } from './theme.js';

const HINTS = '↑↓/jk move · Enter detail · d disable · e enable · f filter · / search · s sort · ? help · q quit';
const DETAIL_HINTS = 'Esc back · d disable · e enable · r reload · ? help · q quit';

/** The bottom line: the prompt being answered, else a message, else what the keys do. */
export function Footer({ state, now }: { state: DashboardState; now: number }) {
  const tone = useTone();
  const t = state.toggle;
  if (state.mode === 'reason' && t) {
    const flash = state.visibleFlash(now);
    return (
      <Text wrap="truncate">
        <Text bold color={tone(t.enabled ? 'good' : 'warn')}>
          {t.enabled ? 'Enable' : 'Disable'} {t.serviceId}
        </Text>
        {' — reason'}
        {t.enabled ? ' (optional)' : ''}: {t.reason}
        <Text inverse> </Text>
        <Text dimColor>{'   Enter continue · Esc cancel'}</Text>
        {flash ? <Text color={tone(flash.tone)}>{`   ${flash.text}`}</Text> : null}
      </Text>
    );
  }
  if (state.mode === 'confirm' && t?.force) {
    return (
      // The question first, so a narrow terminal cuts the explanation, not the prompt.
      <Text wrap="truncate" bold>
        <Text color={tone('warn')}>Force the disable of {t.serviceId} (audited as forced)</Text>? <Text inverse>y/N</Text>
        <Text color={tone('bad')}>{`  refused: ${t.refusal}`}</Text>
      </Text>
    );
  }
  if (state.mode === 'confirm' && t) {
    return (
      <Text wrap="truncate" bold>
        <Text color={tone(t.enabled ? 'good' : 'warn')}>
          {t.enabled ? 'Enable' : 'Disable'} {t.serviceId}
        </Text>
        {t.reason ? ` (reason: ${t.reason})` : ''}? <Text inverse>y/N</Text>
      </Text>
    );
  }
  if (state.mode === 'search') {
    return (
      <Text wrap="truncate">
        <Text bold>/</Text> {state.search}
        <Text inverse> </Text>
        <Text dimColor>{`   ${state.rows().length} match · Enter keep · Esc cancel`}</Text>
      </Text>
    );
  }
  if (state.mode === 'filter') return <Text dimColor wrap="truncate">↑↓ choose · Enter apply · Esc cancel</Text>;
  const flash = state.visibleFlash(now);
  if (flash) {
    return (
      <Text wrap="truncate" color={tone(flash.tone)} bold={flash.tone === 'bad'}>
        {flash.text}
      </Text>
    );
  }
  if (state.busy) return <Text wrap="truncate" color={tone('info')}>{state.busy}</Text>;
  return (
    <Text dimColor wrap="truncate">
      {state.mode === 'detail' ? DETAIL_HINTS : HINTS}
    </Text>
  );
}
