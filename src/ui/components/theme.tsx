import { createContext, useContext, type ReactNode } from 'react';
import type { Tone } from '../format.js';

const TONE_COLOR: Record<Tone, string> = {
  good: 'green',
  bad: 'red',
  warn: 'yellow',
  info: 'cyan',
  muted: 'gray',
};

const ColorContext = createContext(true);

/** Colour on or off for everything below (off under NO_COLOR); bold, dim and inverse stay. */
export function ColorScope({ enabled, children }: { enabled: boolean; children: ReactNode }) {
  return <ColorContext.Provider value={enabled}>{children}</ColorContext.Provider>;
}

/** The ink colour of a tone, or undefined when colour is off. */
export function useTone(): (tone: Tone | undefined) => string | undefined {
  const enabled = useContext(ColorContext);
  return (tone) => (enabled && tone ? TONE_COLOR[tone] : undefined);
}
