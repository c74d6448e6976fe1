import { Flags } from '@oclif/core';
import { parseLabelSelector, parseTagList, type Selection } from '../cluster/selector.js';

/**
 * `-l/--label` and `--tag`, for every command that selects services (src/cluster/selector.ts).
 * Checked while oclif parses, so a bad one is a usage error (exit 2) naming the flag, through
 * oclif's exitCodes.failedFlagParsing; the values stay strings, {@link selectionOf} reads them.
 */
export function selectionFlags(options: { dependsOn?: string[] } = {}) {
  const depends = options.dependsOn ? { dependsOn: options.dependsOn } : {};
  return {
    label: Flags.string({
      char: 'l',
      summary: 'Only services whose metadata matches: key=value, key==value or key!=value, comma-separated; repeatable (all must hold).',
      helpValue: '<selector>',
      multiple: true,
      ...depends,
      async parse(input) {
        parseLabelSelector(input);
        return input;
      },
    }),
    tag: Flags.string({
      summary: 'Only services carrying this tag (comma-separated or repeated: every one).',
      helpValue: '<tags>',
      multiple: true,
      ...depends,
      async parse(input) {
        parseTagList(input);
        return input;
      },
    }),
  };
}

/** The flags as one {@link Selection}. */
export function selectionOf(flags: { label?: string[]; tag?: string[] }): Selection {
  const labels = (flags.label ?? []).flatMap(parseLabelSelector);
  const tags = [...new Set((flags.tag ?? []).flatMap(parseTagList))];
  return { ...(tags.length ? { tags } : {}), ...(labels.length ? { labels } : {}) };
}
