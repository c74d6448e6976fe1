/**
 * Anything a terminal could act on, tab and newline aside: C0 controls, DEL, C1 controls and the
 * bidirectional controls. What a view drew raw of these came from its data, not from the view.
 */
export const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** The first raw character in `text`, after the colour codes (SGR) a view writes itself are removed. */
export function rawIn(text: string): RegExpExecArray | null {
  return RAW.exec(text.replace(/\u001b\[[\d;]*m/g, ''));
}
