import { Flags, type Interfaces } from '@oclif/core';
import { envNames, flagNames, formatDefault, SETTINGS, type Setting } from '../config/settings.js';

// oclif's flag types are invariant in their value; the loader validates these values itself.
type AnyFlag = Interfaces.Flag<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * oclif flags generated from the settings table, so every setting has a flag. The env var is named
 * in the help but not bound through oclif: the config loader reads env itself, which is what lets an
 * error say whether a bad value came from a flag or from the environment.
 */
export function settingFlags(filter: (s: Setting) => boolean = () => true): Record<string, AnyFlag> {
  const flags: Record<string, AnyFlag> = {};
  for (const s of SETTINGS.filter(filter)) {
    const def = formatDefault(s);
    const env = `[env: ${envNames(s).join(', ')}${def !== undefined && def !== '' && !s.secret ? `; default: ${def}` : ''}]`;
    // An alias is a flag of its own, so the loader can refuse two different values; hidden, so help
    // lists the setting once, under its canonical name, whose summary names the alias.
    for (const [i, flag] of flagNames(s).entries()) {
      const others = flagNames(s).filter((f) => f !== flag);
      const summary = `${s.description}${others.length ? ` Same setting as --${others.join(', --')}.` : ''} ${env}`;
      const hidden = i > 0;
      flags[flag] =
        s.kind === 'boolean'
          ? Flags.boolean({ summary, allowNo: true, helpGroup: s.group.toUpperCase(), hidden })
          : s.kind === 'list' && s.itemKind === 'check'
            ? // `--check` is given once per check.
              Flags.string({ summary, helpGroup: s.group.toUpperCase(), hidden, multiple: true })
            : Flags.string({ summary, helpGroup: s.group.toUpperCase(), hidden, ...(s.enumValues ? { options: [...s.enumValues] } : {}) });
    }
  }
  return flags;
}

export const configFlag = Flags.string({
  summary: 'JSON config file in the seed\'s shape (cluster.leaderElection, cluster.healthCheck, cluster.discovery, service). [env: SERVICE_DISCOVERY_CONFIG]',
});
