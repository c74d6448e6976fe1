import { expect } from 'chai';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  configFromPartial,
  describeSource,
  loadConfig,
  readConfigFile,
  redactConfig,
  resolveConfig,
  sdConfigSchema,
  type LoadedConfig,
} from '../../src/config/load.js';
import { renderConfigReference } from '../../src/config/reference.js';
import {
  SETTINGS,
  canonicalEnv,
  envNames,
  flagNames,
  formatDefault,
  settingByEnv,
  settingByFlag,
  settingByPath,
} from '../../src/config/settings.js';
import type { SdConfig } from '../../src/config/types.js';
import { formatDuration, parseDuration } from '../../src/util/duration.js';

/** Runs `fn`, expecting a ConfigError, and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  expect.fail('expected a ConfigError');
}

async function configErrorAsync(fn: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  expect.fail('expected a ConfigError');
}

/** Resolve with an empty environment so the test never depends on the machine's env. */
function resolve(options: Parameters<typeof resolveConfig>[0] = {}): LoadedConfig {
  return resolveConfig({ env: {}, ...options });
}

const FILE = '/path/x.json';
/** A character a terminal could act on, raw: C0 and C1 controls, DEL, bidirectional controls. */
const RAW_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const file = (data: unknown) => ({ path: FILE, data });

describe('config', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-config-test-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const writeJson = (name: string, content: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };

  describe('parseDuration / formatDuration', () => {
    it('reads plain seconds and units', () => {
      expect(parseDuration(30)).to.equal(30);
      expect(parseDuration(0.5)).to.equal(0.5);
      expect(parseDuration('30')).to.equal(30);
      expect(parseDuration(' 0.25 ')).to.equal(0.25);
      expect(parseDuration('500ms')).to.equal(0.5);
      expect(parseDuration('2s')).to.equal(2);
      expect(parseDuration('1.5m')).to.equal(90);
      expect(parseDuration('1h')).to.equal(3600);
      expect(parseDuration('0')).to.equal(0);
      expect(parseDuration('300ms')).to.equal(0.3);
    });

    it('reads compounds from the largest unit down, as Go and kubectl write them', () => {
      expect(parseDuration('1h30m')).to.equal(5400);
      expect(parseDuration('2m30s')).to.equal(150);
      expect(parseDuration('1s500ms')).to.equal(1.5);
      expect(parseDuration('1h0m1s')).to.equal(3601);
      expect(parseDuration('1.5h30m')).to.equal(7200);
      expect(parseDuration('575h59m60s')).to.equal(2073600);
      expect(() => parseDuration('576h1s')).to.throw(/at most 576h/);
    });

    it('rejects everything else', () => {
      for (const bad of ['fast', '', '-1', '1d', '1m30', '30m1h', '1m1m', '1s2m', '1h 30m', 'hms', '2 s', '1e3', 'ms', '1.', 'NaN', '10S']) {
        expect(() => parseDuration(bad), bad).to.throw(/duration/);
      }
      expect(() => parseDuration(-1)).to.throw();
      expect(() => parseDuration(Number.NaN)).to.throw();
      expect(() => parseDuration(Number.POSITIVE_INFINITY)).to.throw();
    });

    it("refuses durations past a timer's range (2^31-1 ms, about 24.8 days), which Node would fire after 1 ms", () => {
      for (const bad of ['600h', '577h', '2073601', '34561m', '99999999999999999999', '9'.repeat(400), '2073600001ms']) {
        expect(() => parseDuration(bad), bad).to.throw(/^invalid duration "[^"]{1,40}": expected a duration of at most 576h \(24 days\)$/);
      }
      expect(() => parseDuration(1e20)).to.throw('invalid duration 100000000000000000000: expected a duration of at most 576h (24 days)');
      expect(() => parseDuration(Number.MAX_VALUE)).to.throw(/at most 576h/);
      expect(parseDuration('576h')).to.equal(2_073_600);
      expect(parseDuration(2_073_600)).to.equal(2_073_600);
      // The bound keeps every duration a timer can hold, in milliseconds, plus slack.
      expect(2_073_600 * 1000 + 1000).to.be.below(2 ** 31 - 1);
    });

    it('formats in a form parseDuration reads back', () => {
      const cases: Array<[number, string]> = [
        [0, '0s'],
        [0.5, '500ms'],
        [1.5, '1.5s'],
        [30, '30s'],
        [90, '90s'],
        [120, '2m'],
        [3600, '1h'],
      ];
      for (const [seconds, text] of cases) {
        expect(formatDuration(seconds)).to.equal(text);
        expect(parseDuration(text)).to.equal(seconds);
      }
    });
  });

  describe('settings table', () => {
    it('has unique paths, flags and env names, all kebab-case flags', () => {
      const paths = SETTINGS.map((s) => s.path);
      const flags = SETTINGS.flatMap((s) => flagNames(s));
      const envs = SETTINGS.flatMap((s) => envNames(s));
      expect(new Set(paths).size).to.equal(paths.length);
      expect(new Set(flags).size).to.equal(flags.length);
      expect(new Set(envs).size).to.equal(envs.length);
      for (const f of flags) expect(f).to.match(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      for (const e of envs) expect(e).to.match(/^[A-Z][A-Z0-9_]*$/);
    });

    it('keeps the seed env names', () => {
      const expected: Record<string, string> = {
        SERVICE_DISCOVERY_ENABLED: 'enabled',
        SERVICE_DISCOVERY_REGISTRY: 'cluster.discovery.registry',
        SERVICE_DISCOVERY_ENDPOINTS: 'cluster.discovery.endpoints',
        SERVICE_DISCOVERY_NAMESPACE: 'cluster.discovery.namespace',
        SERVICE_NAME: 'service.name',
        SERVICE_HOST: 'service.host',
        SERVICE_PORT: 'service.port',
        SERVICE_VERSION: 'service.version',
        SERVICE_REGION: 'service.region',
        SERVICE_ZONE: 'service.zone',
        SERVICE_ID: 'service.id',
        SERVICE_TAGS: 'service.tags',
        SERVICE_METADATA: 'service.metadata',
        LOG_LEVEL: 'log.level',
      };
      for (const [env, path] of Object.entries(expected)) expect(settingByEnv(env)?.path, env).to.equal(path);
    });

    it('looks settings up by path, flag (with or without --) and env', () => {
      const s = settingByPath('cluster.healthCheck.interval');
      expect(s?.flag).to.equal('health-interval');
      expect(settingByFlag('health-interval')).to.equal(s);
      expect(settingByFlag('--health-interval')).to.equal(s);
      expect(settingByEnv('SERVICE_DISCOVERY_HEALTH_INTERVAL')).to.equal(s);
      expect(canonicalEnv(s!)).to.equal('SERVICE_DISCOVERY_HEALTH_INTERVAL');
      expect(settingByPath('cluster.nope')).to.equal(undefined);
    });

    it('keeps the etcd credential flags and gives each a registry-neutral name', () => {
      const names: Record<string, [string, string]> = {
        'cluster.discovery.username': ['etcd-username', 'registry-username'],
        'cluster.discovery.password': ['etcd-password', 'registry-password'],
        'cluster.discovery.tls.ca': ['etcd-ca', 'registry-ca'],
        'cluster.discovery.tls.cert': ['etcd-cert', 'registry-cert'],
        'cluster.discovery.tls.key': ['etcd-key', 'registry-key'],
      };
      for (const [path, [etcd, neutral]] of Object.entries(names)) {
        const s = settingByPath(path)!;
        expect(flagNames(s), path).to.deep.equal([etcd, neutral]);
        expect(settingByFlag(etcd), etcd).to.equal(s);
        expect(settingByFlag(`--${neutral}`), neutral).to.equal(s);
      }
    });

    it('formats defaults as they would be typed', () => {
      expect(formatDefault(settingByPath('cluster.healthCheck.gracePeriod')!)).to.equal('60s');
      expect(formatDefault(settingByPath('service.tags')!)).to.equal('proxy-stone,backend');
      expect(formatDefault(settingByPath('service.id')!)).to.equal(undefined);
    });
  });

  describe('defaults', () => {
    it('are the seed defaults, with etcd on this host when no endpoints are given', () => {
      const { config, sources } = resolve();
      const expected: SdConfig = {
        enabled: true,
        cluster: {
          name: 'proxy-stone-cluster',
          leaderElection: { enabled: true, ttl: 30, renewInterval: 10 },
          healthCheck: {
            interval: 30,
            timeout: 5,
            retries: 3,
            gracePeriod: 60,
            path: '/health',
            refreshInterval: 60,
            // Flap damping is off by default (docs/operations.md says why).
            flapThreshold: 0,
            flapWindow: 600,
            flapHoldDown: 300,
          },
          discovery: { registry: 'etcd', endpoints: ['http://127.0.0.1:2379'], namespace: 'proxy-stone', callTimeout: 5 },
          minHealthyPerZone: '1',
        },
        service: {
          name: 'proxy-stone',
          host: 'localhost',
          port: 3000,
          version: '1.0.0',
          tags: ['proxy-stone', 'backend'],
          region: 'us-east-1',
          zone: 'us-east-1a',
          metadata: {},
          maintenanceHook: false,
          startDisabled: false,
        },
        api: { enabled: true, host: '127.0.0.1', port: 8790, readAccess: 'open', corsOrigins: [] },
        log: { level: 'info' },
      };
      expect(config).to.deep.equal(expected);
      expect(Object.keys(sources).sort()).to.deep.equal(SETTINGS.map((s) => s.path).sort());
      expect(new Set(Object.values(sources))).to.deep.equal(new Set(['default']));
      expect(sdConfigSchema.safeParse(config).success).to.equal(true);
    });

    it('are not shared between loads', () => {
      const a = resolve().config;
      a.service.tags.push('mutated');
      a.service.metadata.x = 'y';
      const b = resolve().config;
      expect(b.service.tags).to.deep.equal(['proxy-stone', 'backend']);
      expect(b.service.metadata).to.deep.equal({});
    });
  });

  describe('precedence', () => {
    it('default < file < env < flag < override, with sources', () => {
      const fileData = { service: { port: 1001, name: 'from-file', host: 'file-host', region: 'file-region' } };
      const env = { SERVICE_PORT: '1002', SERVICE_NAME: 'from-env', SERVICE_HOST: 'env-host' };
      const flags = { 'service-port': '1003', 'service-name': 'from-flag' };
      const overrides = { service: { port: 1004 } };
      const loaded = resolveConfig({ env, file: file(fileData), flags, overrides });
      const { config, sources } = loaded;
      expect(config.service.port).to.equal(1004);
      expect(config.service.name).to.equal('from-flag');
      expect(config.service.host).to.equal('env-host');
      expect(config.service.region).to.equal('file-region');
      expect(config.service.zone).to.equal('us-east-1a');
      expect(sources['service.port']).to.equal('override');
      expect(sources['service.name']).to.equal('flag');
      expect(sources['service.host']).to.equal('env');
      expect(sources['service.region']).to.equal('file');
      expect(sources['service.zone']).to.equal('default');
      expect(describeSource('service.port', loaded)).to.equal('override');
      expect(describeSource('service.name', loaded)).to.equal('flag --service-name');
      expect(describeSource('service.host', loaded)).to.equal('env SERVICE_HOST');
      expect(describeSource('service.region', loaded)).to.equal(`file ${FILE}`);
      expect(describeSource('service.zone', loaded)).to.equal('default');
      expect(describeSource('service.name', sources)).to.equal('flag --service-name');
      expect(describeSource('service.host', sources)).to.equal('env SERVICE_HOST');
      expect(() => describeSource('nope', sources)).to.throw(/unknown setting/);
    });

    it('loadConfig reads the file given as option, config flag or SERVICE_DISCOVERY_CONFIG', async () => {
      const p = writeJson('precedence.json', { cluster: { healthCheck: { interval: 1, timeout: '250ms' } }, service: { port: 4000 } });
      const viaOption = await loadConfig({ env: { SERVICE_PORT: '4001' }, configFile: p });
      expect(viaOption.config.cluster.healthCheck.interval).to.equal(1);
      expect(viaOption.config.cluster.healthCheck.timeout).to.equal(0.25);
      expect(viaOption.config.service.port).to.equal(4001);
      expect(viaOption.configFile).to.equal(p);
      expect(viaOption.sources['cluster.healthCheck.interval']).to.equal('file');

      const viaFlag = await loadConfig({ env: {}, flags: { config: p, 'health-interval': '2s' } });
      expect(viaFlag.config.service.port).to.equal(4000);
      expect(viaFlag.config.cluster.healthCheck.interval).to.equal(2);

      const viaEnv = await loadConfig({ env: { SERVICE_DISCOVERY_CONFIG: p } });
      expect(viaEnv.config.service.port).to.equal(4000);

      const none = await loadConfig({ env: {} });
      expect(none.configFile).to.equal(undefined);
      expect(none.config.service.port).to.equal(3000);
    });

    it("accepts the seed's serviceDiscoveryConfig wrapper", () => {
      const { config } = resolve({
        file: file({
          $schema: './schema.json',
          serviceDiscoveryConfig: {
            enabled: true,
            cluster: { discovery: { registry: 'etcd', endpoints: ['http://localhost:2379'], namespace: 'ns' } },
            service: { port: 3001 },
          },
        }),
      });
      expect(config.cluster.discovery.registry).to.equal('etcd');
      expect(config.cluster.discovery.namespace).to.equal('ns');
      expect(config.service.port).to.equal(3001);
    });

    it('ignores flags that are not settings and undefined flags', () => {
      const { config } = resolve({ flags: { json: true, config: undefined, 'service-port': undefined, 'service-name': 'x' } });
      expect(config.service.port).to.equal(3000);
      expect(config.service.name).to.equal('x');
    });

    it('takes a setting from either of its flag names, at flag precedence', () => {
      const ca = writeJson('ca.pem', 'not really a CA');
      const other = writeJson('other-ca.pem', 'another');
      const env = { SERVICE_DISCOVERY_ENDPOINTS: 'redis://r:6379', SERVICE_DISCOVERY_PASSWORD: 'from-env', SERVICE_DISCOVERY_CA_FILE: other };
      const viaNeutral = resolve({ env, flags: { 'registry-password': 'from-flag', 'registry-ca': ca } });
      expect(viaNeutral.config.cluster.discovery.password).to.equal('from-flag');
      expect(viaNeutral.config.cluster.discovery.tls?.ca).to.equal(ca);
      expect(describeSource('cluster.discovery.password', viaNeutral)).to.equal('flag --registry-password');
      const viaEtcd = resolve({ env, flags: { 'etcd-password': 'from-flag' } });
      expect(viaEtcd.config.cluster.discovery.password).to.equal('from-flag');
      expect(describeSource('cluster.discovery.password', viaEtcd)).to.equal('flag --etcd-password');
      // Both names with one value is no conflict.
      const both = resolve({ env, flags: { 'etcd-ca': ca, 'registry-ca': ca } });
      expect(both.config.cluster.discovery.tls?.ca).to.equal(ca);
    });

    it('refuses two flag names of one setting with different values, naming both (secrets masked)', () => {
      const ca = writeJson('ca-a.pem', 'a');
      const other = writeJson('ca-b.pem', 'b');
      const env = { SERVICE_DISCOVERY_ENDPOINTS: 'redis://r:6379' };
      expect(configError(() => resolve({ env, flags: { 'etcd-ca': ca, 'registry-ca': other } })).message).to.equal(
        `--etcd-ca=${ca} and --registry-ca=${other} (flag): both set cluster.discovery.tls.ca and the values differ; give one of them`,
      );
      const secret = configError(() => resolve({ env, flags: { 'registry-password': 'hunter2', 'etcd-password': 'hunter3' } }));
      expect(secret.message).to.equal(
        '--registry-password=*** and --etcd-password=*** (flag): both set cluster.discovery.password and the values differ; give one of them',
      );
      expect(JSON.stringify(secret.issues)).not.to.match(/hunter/);
    });

    it('treats empty env vars as unset', () => {
      const { config, sources } = resolve({ env: { SERVICE_PORT: '', SERVICE_ID: '  ' } });
      expect(config.service.port).to.equal(3000);
      expect(config.service.id).to.equal(undefined);
      expect(sources['service.port']).to.equal('default');
    });

    it('never validates a value that a stronger source overrides', () => {
      const { config } = resolve({
        env: { SERVICE_PORT: 'abc' },
        flags: { 'service-port': '3005' },
        file: file({ cluster: { healthCheck: { retries: 'many' } } }),
        overrides: { cluster: { healthCheck: { retries: 2 } } },
      });
      expect(config.service.port).to.equal(3005);
      expect(config.cluster.healthCheck.retries).to.equal(2);
    });
  });

  describe('conversion per kind', () => {
    it('boolean', () => {
      const cases: Array<[string, boolean]> = [
        ['true', true],
        ['TRUE', true],
        ['1', true],
        ['yes', true],
        ['on', true],
        ['false', false],
        ['0', false],
        ['No', false],
        ['off', false],
      ];
      for (const [raw, value] of cases) {
        expect(resolve({ env: { SERVICE_DISCOVERY_LEADER_ELECTION: raw } }).config.cluster.leaderElection.enabled, raw).to.equal(value);
      }
      expect(resolve({ flags: { api: false } }).config.api.enabled).to.equal(false);
      expect(resolve({ flags: { 'no-api': true } }).config.api.enabled).to.equal(false);
      expect(resolve({ flags: { 'leader-election': 'false' } }).config.cluster.leaderElection.enabled).to.equal(false);
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_ENABLED: 'maybe' } })).message).to.equal(
        'SERVICE_DISCOVERY_ENABLED=maybe (env): expected a boolean (true/false, 1/0, yes/no, on/off)',
      );
      expect(configError(() => resolve({ file: file({ enabled: 'sure' }) })).message).to.equal(
        `enabled=sure (file ${FILE}): expected a boolean (true/false, 1/0, yes/no, on/off)`,
      );
    });

    it('integer', () => {
      expect(resolve({ env: { SERVICE_DISCOVERY_HEALTH_RETRIES: ' 5 ' } }).config.cluster.healthCheck.retries).to.equal(5);
      expect(resolve({ flags: { 'health-retries': 7 } }).config.cluster.healthCheck.retries).to.equal(7);
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_HEALTH_RETRIES: '1.5' } })).message).to.equal(
        'SERVICE_DISCOVERY_HEALTH_RETRIES=1.5 (env): expected an integer 1-1000',
      );
      expect(configError(() => resolve({ file: file({ cluster: { healthCheck: { retries: 2.5 } } }) })).message).to.equal(
        `cluster.healthCheck.retries=2.5 (file ${FILE}): expected an integer 1-1000`,
      );
    });

    it('duration', () => {
      const hc = (env: Record<string, string>) => resolve({ env }).config.cluster.healthCheck;
      expect(hc({ SERVICE_DISCOVERY_HEALTH_INTERVAL: '500ms' }).interval).to.equal(0.5);
      expect(hc({ SERVICE_DISCOVERY_HEALTH_INTERVAL: '2s' }).interval).to.equal(2);
      expect(hc({ SERVICE_DISCOVERY_HEALTH_INTERVAL: '1.5m' }).interval).to.equal(90);
      expect(hc({ SERVICE_DISCOVERY_HEALTH_INTERVAL: '45' }).interval).to.equal(45);
      expect(hc({ SERVICE_DISCOVERY_HEALTH_REFRESH_INTERVAL: '0' }).refreshInterval).to.equal(0);
      expect(hc({ SERVICE_DISCOVERY_GRACE_PERIOD: '0' }).gracePeriod).to.equal(0);
      expect(resolve({ file: file({ cluster: { healthCheck: { timeout: 0.5, interval: '1m' } } }) }).config.cluster.healthCheck).to.include({
        timeout: 0.5,
        interval: 60,
      });
      expect(resolve({ env: { SERVICE_DISCOVERY_LEADER_TTL: '1m' } }).config.cluster.leaderElection.ttl).to.equal(60);
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_HEALTH_TIMEOUT: '0' } })).message).to.equal(
        'SERVICE_DISCOVERY_HEALTH_TIMEOUT=0 (env): expected a duration of at least 1ms (e.g. 30, 500ms, 2s)',
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_LEADER_TTL: '1500ms' } })).message).to.equal(
        'SERVICE_DISCOVERY_LEADER_TTL=1500ms (env): expected a whole number of seconds >= 1 (e.g. 30, 1m)',
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_GRACE_PERIOD: '-5' } })).message).to.equal(
        'SERVICE_DISCOVERY_GRACE_PERIOD=-5 (env): expected a duration in seconds (e.g. 30, 500ms, 2s)',
      );
    });

    it('string (trimmed) with patterns', () => {
      expect(resolve({ env: { SERVICE_HOST: ' proxy-stone-1 ' } }).config.service.host).to.equal('proxy-stone-1');
      expect(resolve({ env: { SERVICE_ID: 'edge-1' } }).config.service.id).to.equal('edge-1');
      expect(configError(() => resolve({ env: { SERVICE_ID: 'a/b' } })).message).to.equal(
        'SERVICE_ID=a/b (env): expected an id of letters, digits and . _ : @ - (no / or spaces)',
      );
      expect(configError(() => resolve({ flags: { 'health-path': 'health' } })).message).to.equal(
        '--health-path=health (flag): expected a URL path starting with / (e.g. /health)',
      );
      expect(configError(() => resolve({ file: file({ service: { name: '' } }) })).message).to.equal(
        `service.name="" (file ${FILE}): expected a non-empty string`,
      );
      expect(configError(() => resolve({ file: file({ service: { version: 2 } }) })).message).to.equal(
        `service.version=2 (file ${FILE}): expected a non-empty string`,
      );
    });

    it('host: a host name or an IP address, nothing a URL or a socket could not use (issue 16)', () => {
      for (const ok of ['localhost', 'proxy-stone-1', 'ps-1.internal', 'ps-1.internal.', 'my_service', '10.0.0.7', '0.0.0.0', '::', '::1', 'fd00::7', ' 10.0.0.7 ']) {
        const { config } = resolve({ env: { SERVICE_HOST: ok, SERVICE_DISCOVERY_API_HOST: ok } });
        expect(config.service.host, ok).to.equal(ok.trim());
        expect(config.api.host, ok).to.equal(ok.trim());
      }
      const hint = 'expected a host name or an IP address without brackets (e.g. proxy-stone-1.internal, 10.0.0.7, fd00::7)';
      for (const bad of ['a\u0001b', 'a b', 'a\u202eb', '[::1]', 'http://x', 'x:3000', 'a/b', '-a', 'a..b', `${'a'.repeat(64)}.x`, `${'a.'.repeat(127)}a`]) {
        const err = configError(() => resolve({ env: { SERVICE_HOST: bad } }));
        expect(err.message, bad).to.match(/^SERVICE_HOST=\S.* \(env\): /);
        expect(err.message, bad).to.include(hint);
        expect(err.message, bad).not.to.match(RAW_UNSAFE);
      }
      expect(configError(() => resolve({ env: { SERVICE_HOST: 'a\u0001b' } })).message).to.equal(
        `SERVICE_HOST="a\\u0001b" (env): ${hint}; contains a control character (U+0001)`,
      );
      expect(configError(() => resolve({ flags: { 'api-host': 'a b' } })).message).to.equal(`--api-host=a b (flag): ${hint}`);
      expect(configError(() => resolve({ file: file({ api: { host: 'http://0.0.0.0' } }) })).message).to.equal(`api.host=http://0.0.0.0 (file ${FILE}): ${hint}`);
    });

    it('API key: no spaces or control characters inside (surrounding whitespace is a paste accident, trimmed)', () => {
      expect(resolve({ env: { SERVICE_DISCOVERY_API_KEY: 'k-123' } }).config.api.apiKey).to.equal('k-123');
      expect(resolve({ env: { SERVICE_DISCOVERY_API_KEY: 'k-123\n' } }).config.api.apiKey).to.equal('k-123\n');
      for (const bad of ['a b', 'a\tb', 'a\u0000b', 'a\u202eb']) {
        expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_API_KEY: bad } })).message, JSON.stringify(bad)).to.match(
          /^SERVICE_DISCOVERY_API_KEY=\*\*\* \(env\): expected a key without spaces or control characters(; contains a (bidirectional )?control character \(U\+[0-9A-F]{4}\))?$/,
        );
      }
      expect(configError(() => resolve({ flags: { 'api-key': 'two words' } })).message).to.equal(
        '--api-key=*** (flag): expected a key without spaces or control characters',
      );
    });

    it('list', () => {
      expect(resolve({ env: { SERVICE_TAGS: 'a, b,,c ' } }).config.service.tags).to.deep.equal(['a', 'b', 'c']);
      expect(resolve({ env: { SERVICE_TAGS: ',' } }).config.service.tags).to.deep.equal([]);
      expect(resolve({ file: file({ service: { tags: ['x', 'y'] } }) }).config.service.tags).to.deep.equal(['x', 'y']);
      expect(resolve({ flags: { 'service-tags': ['a', 'b,c'] } }).config.service.tags).to.deep.equal(['a', 'b', 'c']);
      expect(configError(() => resolve({ file: file({ service: { tags: ['x', ''] } }) })).message).to.equal(
        `service.tags=["x",""] (file ${FILE}): expected a comma-separated list of non-empty values; got ""`,
      );
      expect(configError(() => resolve({ file: file({ service: { tags: [1] } }) })).message).to.match(/^service\.tags=\[1\] \(file/);
    });

    it('url and URL lists', () => {
      const { config } = resolve({
        env: {
          SERVICE_DISCOVERY_ENDPOINTS: 'http://etcd1:2379, https://etcd2:2379',
          SERVICE_DISCOVERY_HEALTH_URL: 'http://127.0.0.1:3000/health/ready',
        },
      });
      expect(config.cluster.discovery.endpoints).to.deep.equal(['http://etcd1:2379', 'https://etcd2:2379']);
      expect(config.cluster.healthCheck.url).to.equal('http://127.0.0.1:3000/health/ready');
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: 'localhost:2379' } })).message).to.equal(
        'SERVICE_DISCOVERY_ENDPOINTS=localhost:2379 (env): expected comma-separated http(s) URLs (e.g. http://etcd1:2379,http://etcd2:2379) or one redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379)',
      );
      expect(configError(() => resolve({ flags: { endpoints: 'http://a:2379,grpc://b:2379' } })).message).to.equal(
        '--endpoints=http://a:2379,grpc://b:2379 (flag): expected comma-separated http(s) URLs (e.g. http://etcd1:2379,http://etcd2:2379) or one redis:// or rediss:// URL (e.g. redis://127.0.0.1:6379); got "grpc://b:2379"',
      );
      expect(configError(() => resolve({ flags: { 'advertise-url': 'not a url' } })).message).to.equal(
        '--advertise-url=not a url (flag): expected an http(s) URL (e.g. http://host:3000/path)',
      );
    });

    it('port (api port may be 0)', () => {
      expect(resolve({ env: { SERVICE_PORT: '3001' } }).config.service.port).to.equal(3001);
      expect(resolve({ env: { SERVICE_DISCOVERY_API_PORT: '0' } }).config.api.port).to.equal(0);
      expect(configError(() => resolve({ env: { SERVICE_PORT: '0' } })).message).to.equal('SERVICE_PORT=0 (env): expected an integer 1-65535');
      expect(configError(() => resolve({ env: { SERVICE_PORT: '65536' } })).message).to.equal(
        'SERVICE_PORT=65536 (env): expected an integer 1-65535',
      );
      expect(configError(() => resolve({ flags: { 'api-port': '-1' } })).message).to.equal('--api-port=-1 (flag): expected an integer 0-65535');
    });

    it('enum (case-insensitive)', () => {
      expect(resolve({ env: { LOG_LEVEL: 'DEBUG' } }).config.log.level).to.equal('debug');
      expect(resolve({ flags: { registry: 'Memory' } }).config.cluster.discovery.registry).to.equal('memory');
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_REGISTRY: 'consul' } })).message).to.equal(
        'SERVICE_DISCOVERY_REGISTRY=consul (env): expected one of etcd, redis, memory',
      );
      expect(configError(() => resolve({ env: { LOG_LEVEL: 'verbose' } })).message).to.equal(
        'LOG_LEVEL=verbose (env): expected one of trace, debug, info, warn, error, fatal, silent',
      );
    });

    it('keyvalue', () => {
      expect(resolve({ env: { SERVICE_METADATA: 'team=edge, tier=1,url=http://x?a=b' } }).config.service.metadata).to.deep.equal({
        team: 'edge',
        tier: '1',
        url: 'http://x?a=b',
      });
      expect(resolve({ file: file({ service: { metadata: { team: 'edge', tier: 1, canary: true } } }) }).config.service.metadata).to.deep.equal({
        team: 'edge',
        tier: '1',
        canary: 'true',
      });
      expect(configError(() => resolve({ env: { SERVICE_METADATA: 'team=edge,oops' } })).message).to.equal(
        'SERVICE_METADATA=team=edge,oops (env): expected comma-separated key=value pairs (e.g. team=edge,tier=1); "oops" is not key=value',
      );
      expect(configError(() => resolve({ file: file({ service: { metadata: { a: { b: 1 } } } }) })).message).to.match(
        /^service\.metadata=\{"a":\{"b":1\}\} \(file \/path\/x\.json\): expected comma-separated key=value pairs/,
      );
    });
  });

  describe('error messages', () => {
    it('env', () => {
      const err = configError(() => resolve({ env: { SERVICE_PORT: 'abc' } }));
      expect(err.name).to.equal('ConfigError');
      expect(err.message).to.equal('SERVICE_PORT=abc (env): expected an integer 1-65535');
      expect(err.issues).to.deep.equal([{ path: 'service.port', source: 'env', message: err.message }]);
    });

    it('flag', () => {
      expect(configError(() => resolve({ flags: { 'health-interval': 'fast' } })).message).to.equal(
        '--health-interval=fast (flag): expected a duration in seconds (e.g. 30, 500ms, 2s)',
      );
    });

    it('file', () => {
      expect(configError(() => resolve({ file: file({ cluster: { healthCheck: { retries: 0 } } }) })).message).to.equal(
        'cluster.healthCheck.retries=0 (file /path/x.json): expected an integer 1-1000',
      );
    });

    it('override', () => {
      expect(configError(() => resolve({ overrides: { service: { port: 70000 } } })).message).to.equal(
        'service.port=70000 (override): expected an integer 1-65535',
      );
    });

    it('cross-field: renewInterval < ttl, reported on renewInterval', () => {
      expect(configError(() => resolve({ file: file({ cluster: { leaderElection: { ttl: 10 } } }) })).message).to.equal(
        `cluster.leaderElection.ttl=10 (file ${FILE}): must be more than cluster.leaderElection.renewInterval (--renew-interval / SERVICE_DISCOVERY_RENEW_INTERVAL), 10`,
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_RENEW_INTERVAL: '30' } })).message).to.equal(
        'SERVICE_DISCOVERY_RENEW_INTERVAL=30 (env): must be less than cluster.leaderElection.ttl (30)',
      );
      const ok = resolve({ env: { SERVICE_DISCOVERY_LEADER_TTL: '10', SERVICE_DISCOVERY_RENEW_INTERVAL: '3s' } });
      expect(ok.config.cluster.leaderElection).to.include({ ttl: 10, renewInterval: 3 });
    });

    it('allows ttl 1 and warns about etcd raising it to 2', () => {
      const loaded = resolve({
        env: { SERVICE_DISCOVERY_LEADER_TTL: '1', SERVICE_DISCOVERY_RENEW_INTERVAL: '300ms', SERVICE_DISCOVERY_ENDPOINTS: 'http://e:2379' },
      });
      expect(loaded.config.cluster.leaderElection.ttl).to.equal(1);
      expect(loaded.warnings.join('\n')).to.match(/raises lease TTLs below 2 s/);
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_LEADER_TTL: '0' } })).message).to.equal(
        'SERVICE_DISCOVERY_LEADER_TTL=0 (env): expected a whole number of seconds >= 1 (e.g. 30, 1m)',
      );
    });

    it("refuses every duration setting past a timer's range, naming it as given (env, flag, file, override)", () => {
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_HEALTH_INTERVAL: '600h' } })).message).to.equal(
        'SERVICE_DISCOVERY_HEALTH_INTERVAL=600h (env): expected a duration of at most 576h (24 days)',
      );
      for (const setting of SETTINGS.filter((s) => s.kind === 'duration')) {
        const env = canonicalEnv(setting);
        const err = configError(() => resolve({ env: { [env]: '99999999999999999999' } }));
        expect(err.message, env).to.equal(`${env}=99999999999999999999 (env): expected a duration of at most 576h (24 days)`);
        expect(configError(() => resolve({ flags: { [setting.flag]: '600h' } })).message, setting.flag).to.equal(
          `--${setting.flag}=600h (flag): expected a duration of at most 576h (24 days)`,
        );
      }
      expect(configError(() => resolve({ file: file({ cluster: { leaderElection: { ttl: 1e10 } } }) })).message).to.equal(
        `cluster.leaderElection.ttl=10000000000 (file ${FILE}): expected a duration of at most 576h (24 days)`,
      );
      expect(configError(() => configFromPartial({ cluster: { discovery: { callTimeout: 3e6 } } })).message).to.equal(
        'cluster.discovery.callTimeout=3000000 (override): expected a duration of at most 576h (24 days)',
      );
      // The largest valid value is taken as it is.
      expect(resolve({ env: { SERVICE_DISCOVERY_FLAP_WINDOW: '576h' } }).config.cluster.healthCheck.flapWindow).to.equal(2_073_600);
      // The schema alone (for values already converted) holds the same bound.
      const base = resolve().config;
      const tooLong = { ...base, cluster: { ...base.cluster, healthCheck: { ...base.cluster.healthCheck, interval: 3e6 } } };
      expect(sdConfigSchema.safeParse(tooLong).success).to.equal(false);
    });

    it('does not require health timeout <= interval', () => {
      const { config } = resolve({ env: { SERVICE_DISCOVERY_HEALTH_INTERVAL: '1', SERVICE_DISCOVERY_HEALTH_TIMEOUT: '5' } });
      expect(config.cluster.healthCheck).to.include({ interval: 1, timeout: 5 });
    });

    it('keeps the message on one line and counts further problems', () => {
      const err = configError(() => resolve({ env: { SERVICE_PORT: 'abc', LOG_LEVEL: 'loud', SERVICE_METADATA: 'x' } }));
      expect(err.message).to.equal('SERVICE_PORT=abc (env): expected an integer 1-65535 (and 2 more)');
      expect(err.issues.map((i) => i.path)).to.have.members(['service.port', 'log.level', 'service.metadata']);
      for (const issue of err.issues) expect(issue.message).not.to.include('\n');
      const multiline = configError(() => resolve({ env: { SERVICE_PORT: 'a\nb' } }));
      expect(multiline.message).to.equal('SERVICE_PORT="a\\nb" (env): expected an integer 1-65535');
    });

    it('requires TLS cert and key together, and username with password', () => {
      const cert = writeJson('client.pem', 'cert');
      expect(configError(() => resolve({ flags: { 'etcd-cert': cert } })).message).to.equal(
        `--etcd-cert=${cert} (flag): requires cluster.discovery.tls.key (--etcd-key / SERVICE_DISCOVERY_KEY_FILE)`,
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_USERNAME: 'root' } })).message).to.equal(
        'SERVICE_DISCOVERY_USERNAME=root (env): requires cluster.discovery.password (--etcd-password / SERVICE_DISCOVERY_PASSWORD)',
      );
    });

    it('checks that TLS files are readable, resolving file-relative paths against the config file', () => {
      mkdirSync(join(dir, 'tls'), { recursive: true });
      writeFileSync(join(dir, 'tls', 'ca.pem'), 'ca');
      const { config } = resolve({ file: { path: join(dir, 'sd.json'), data: { cluster: { discovery: { tls: { ca: 'tls/ca.pem' } } } } } });
      expect(config.cluster.discovery.tls).to.deep.equal({ ca: join(dir, 'tls', 'ca.pem') });
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_CA_FILE: join(dir, 'missing.pem') } })).message).to.equal(
        `SERVICE_DISCOVERY_CA_FILE=${join(dir, 'missing.pem')} (env): file not found`,
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_CA_FILE: dir } })).message).to.equal(
        `SERVICE_DISCOVERY_CA_FILE=${dir} (env): not a file`,
      );
    });

    it("reads the API's security settings from every source, with the same precedence", () => {
      mkdirSync(join(dir, 'api'), { recursive: true });
      for (const name of ['cert.pem', 'key.pem', 'ca.pem', 'keys.txt']) writeFileSync(join(dir, 'api', name), 'x');
      const fromFile = resolve({
        file: {
          path: join(dir, 'sd.json'),
          data: { api: { keyFile: 'api/keys.txt', readAccess: 'viewer', tls: { cert: 'api/cert.pem', key: 'api/key.pem', ca: 'api/ca.pem' } } },
        },
      });
      expect(fromFile.config.api).to.deep.include({
        keyFile: join(dir, 'api', 'keys.txt'),
        readAccess: 'viewer',
        tls: { cert: join(dir, 'api', 'cert.pem'), key: join(dir, 'api', 'key.pem'), ca: join(dir, 'api', 'ca.pem') },
      });
      const env = {
        SERVICE_DISCOVERY_API_KEY_FILE: join(dir, 'api', 'keys.txt'),
        SERVICE_DISCOVERY_API_READ_ACCESS: 'Viewer',
        SERVICE_DISCOVERY_API_TLS_CERT: join(dir, 'api', 'cert.pem'),
        SERVICE_DISCOVERY_API_TLS_KEY: join(dir, 'api', 'key.pem'),
      };
      const loaded = resolve({ env, flags: { 'api-read-access': 'open' } });
      expect(loaded.config.api).to.deep.include({ readAccess: 'open', keyFile: env.SERVICE_DISCOVERY_API_KEY_FILE });
      expect(loaded.config.api.tls).to.deep.equal({ cert: env.SERVICE_DISCOVERY_API_TLS_CERT, key: env.SERVICE_DISCOVERY_API_TLS_KEY });
      expect(describeSource('api.readAccess', loaded)).to.equal('flag --api-read-access');
      expect(describeSource('api.keyFile', loaded)).to.equal('env SERVICE_DISCOVERY_API_KEY_FILE');
      expect(resolve().config.api.readAccess).to.equal('open');
    });

    it('validates the API security settings: TLS pairs, mTLS only with HTTPS, viewer only with a key', () => {
      const cert = join(dir, 'api-cert.pem');
      writeFileSync(cert, 'x');
      expect(configError(() => resolve({ flags: { 'api-tls-cert': cert } })).message).to.equal(
        `--api-tls-cert=${cert} (flag): requires api.tls.key (--api-tls-key / SERVICE_DISCOVERY_API_TLS_KEY)`,
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_API_TLS_KEY: cert } })).message).to.equal(
        `SERVICE_DISCOVERY_API_TLS_KEY=${cert} (env): requires api.tls.cert (--api-tls-cert / SERVICE_DISCOVERY_API_TLS_CERT)`,
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_API_TLS_CA: cert } })).message).to.equal(
        `SERVICE_DISCOVERY_API_TLS_CA=${cert} (env): requires api.tls.cert (--api-tls-cert / SERVICE_DISCOVERY_API_TLS_CERT) and api.tls.key (--api-tls-key / SERVICE_DISCOVERY_API_TLS_KEY)`,
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_API_READ_ACCESS: 'closed' } })).message).to.equal(
        'SERVICE_DISCOVERY_API_READ_ACCESS=closed (env): expected one of open, viewer',
      );
      expect(configError(() => resolve({ flags: { 'api-read-access': 'viewer' } })).message).to.equal(
        '--api-read-access=viewer (flag): requires an API key: set api.apiKey (--api-key / SERVICE_DISCOVERY_API_KEY) or api.keyFile (--api-key-file / SERVICE_DISCOVERY_API_KEY_FILE), or make reads open',
      );
      expect(resolve({ flags: { 'api-read-access': 'viewer', 'api-key': 'k' } }).config.api.readAccess).to.equal('viewer');
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_API_KEY_FILE: join(dir, 'no-keys.txt') } })).message).to.equal(
        `SERVICE_DISCOVERY_API_KEY_FILE=${join(dir, 'no-keys.txt')} (env): file not found`,
      );
    });
  });

  describe('hostile values (issue 16): accepted before, unusable after', () => {
    it('refuses control and bidirectional characters in every string, list item, key and value, naming the setting', () => {
      const cases: Record<string, string> = {
        SERVICE_DISCOVERY_CLUSTER_NAME: 'c\u202eluster',
        SERVICE_NAME: 'ps\u0007',
        SERVICE_VERSION: '1.0\u2066',
        SERVICE_REGION: 'eu\u001b[2J',
        SERVICE_ZONE: 'z\u0085a',
        SERVICE_TAGS: 'a,b\u0000',
        SERVICE_METADATA: 'team=edge,k=v\u0001',
        SERVICE_DISCOVERY_NAMESPACE: 'ns\u0001',
        SERVICE_DISCOVERY_HEALTH_PATH: '/health\u0007',
        SERVICE_DISCOVERY_USERNAME: 'root\u0000',
        SERVICE_DISCOVERY_CA_FILE: '/etc/ssl/ca\u0000.pem',
        SERVICE_DISCOVERY_API_KEY_FILE: '/etc/keys\u200f',
        SERVICE_DISCOVERY_HEALTH_URL: 'http://127.0.0.1:3000/he\u0007alth',
        SERVICE_DISCOVERY_ENDPOINTS: 'http://127.0.0.1:2379,http://e\u009b:2379',
        SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE: '1\u0001',
      };
      for (const [name, value] of Object.entries(cases)) {
        const err = configError(() => resolve({ env: { [name]: value } }));
        expect(err.message, name).to.match(new RegExp(`^${name}="[^"]+" \\(env\\): expected .*; contains a (bidirectional )?control character \\(U\\+[0-9A-F]{4}\\)$`));
        expect(err.message, name).not.to.match(RAW_UNSAFE);
      }
      // A secret: masked, and still told what is wrong. Kept verbatim, so only what is inside counts:
      // a trailing newline (a secret mounted from a file) is no reason to refuse it.
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_USERNAME: 'root', SERVICE_DISCOVERY_PASSWORD: 'p\u0000w' } })).message).to.equal(
        'SERVICE_DISCOVERY_PASSWORD=*** (env): expected a non-empty string; contains a control character (U+0000)',
      );
      expect(resolve({ env: { SERVICE_DISCOVERY_USERNAME: 'root', SERVICE_DISCOVERY_PASSWORD: 'pw\r\n' } }).config.cluster.discovery.password).to.equal('pw\r\n');
      // In the file, keys of a metadata object too.
      expect(configError(() => resolve({ file: file({ service: { metadata: { 'k\u001b': 'v' } } }) })).message).to.equal(
        `service.metadata={"k\\u001b":"v"} (file ${FILE}): expected comma-separated key=value pairs (e.g. team=edge,tier=1); contains a control character (U+001B)`,
      );
      // Surrounding whitespace is still just trimmed.
      expect(resolve({ env: { SERVICE_NAME: ' ps \n' } }).config.service.name).to.equal('ps');
    });

    it('refuses values longer than a record, a header or a path can carry', () => {
      const long = (n: number) => 'a'.repeat(n);
      expect(resolve({ env: { SERVICE_NAME: long(256) } }).config.service.name).to.have.length(256);
      expect(configError(() => resolve({ env: { SERVICE_NAME: long(300_000) } })).message).to.equal(
        `SERVICE_NAME=${long(117)}... (env): expected at most 256 characters (got 300000)`,
      );
      // A tag as long as a record's reader takes (RECORD_LIMITS.tag), not one more.
      expect(configError(() => resolve({ env: { SERVICE_TAGS: `a,${long(129)}` } })).message).to.match(/^SERVICE_TAGS=a,a+\.\.\. \(env\): expected at most 128 characters in each item \(got 129\)$/);
      expect(configError(() => resolve({ env: { SERVICE_TAGS: Array.from({ length: 65 }, (_, i) => `t${i}`).join(',') } })).message).to.match(
        /^SERVICE_TAGS=t0,t1,.* \(env\): expected at most 64 items \(got 65\)$/,
      );
      expect(configError(() => resolve({ env: { SERVICE_METADATA: `k=${long(1025)}` } })).message).to.match(/^SERVICE_METADATA=k=a+\.\.\. \(env\): expected at most 1024 characters in each value \(got 1025\)$/);
      expect(configError(() => resolve({ env: { SERVICE_METADATA: `${long(129)}=v` } })).message).to.match(/ \(env\): expected at most 128 characters in each key \(got 129\)$/);
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_HEALTH_URL: `http://h/${long(2048)}` } })).message).to.match(/ \(env\): expected at most 2048 characters \(got 2057\)$/);
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_PASSWORD: long(5000) } })).message).to.equal('SERVICE_DISCOVERY_PASSWORD=*** (env): expected at most 1024 characters (got 5000)');
      // A service id the API could not address (its routes take ids of at most 256 characters).
      expect(configError(() => resolve({ env: { SERVICE_ID: long(257) } })).message).to.match(/^SERVICE_ID=a+\.\.\. \(env\): expected at most 256 characters \(got 257\)$/);
    });

    it('refuses counts no instance could ever reach', () => {
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_HEALTH_RETRIES: '1000000000000000' } })).message).to.equal(
        'SERVICE_DISCOVERY_HEALTH_RETRIES=1000000000000000 (env): expected an integer 1-1000',
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_FLAP_THRESHOLD: '99999999999999999999' } })).message).to.equal(
        'SERVICE_DISCOVERY_FLAP_THRESHOLD=99999999999999999999 (env): expected an integer 0-1000',
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_FLAP_THRESHOLD: '-1' } })).message).to.equal(
        'SERVICE_DISCOVERY_FLAP_THRESHOLD=-1 (env): expected an integer 0-1000',
      );
      expect(resolve({ env: { SERVICE_DISCOVERY_HEALTH_RETRIES: '1000' } }).config.cluster.healthCheck.retries).to.equal(1000);
    });

    it('refuses durations a timer cannot wait for: below 1 ms where 0 is not allowed', () => {
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_HEALTH_INTERVAL: '0.0001' } })).message).to.equal(
        'SERVICE_DISCOVERY_HEALTH_INTERVAL=0.0001 (env): expected a duration of at least 1ms (e.g. 30, 500ms, 2s)',
      );
      expect(resolve({ env: { SERVICE_DISCOVERY_HEALTH_TIMEOUT: '1ms' } }).config.cluster.healthCheck.timeout).to.equal(0.001);
      // Where 0 means "never", 0 stays valid.
      expect(resolve({ env: { SERVICE_DISCOVERY_HEALTH_REFRESH_INTERVAL: '0' } }).config.cluster.healthCheck.refreshInterval).to.equal(0);
    });

    it('refuses a metadata key that an object cannot hold', () => {
      expect(configError(() => resolve({ env: { SERVICE_METADATA: '__proto__=x' } })).message).to.equal(
        'SERVICE_METADATA=__proto__=x (env): expected comma-separated key=value pairs (e.g. team=edge,tier=1); "__proto__" is not a usable key',
      );
      expect(configError(() => resolve({ file: file({ service: { metadata: JSON.parse('{"__proto__": "x"}') as Record<string, string> } }) })).message).to.match(
        /"__proto__" is not a usable key$/,
      );
    });

    it('refuses URLs that cannot be connected to: port 0, a space, a tab the URL parser would drop', () => {
      for (const bad of ['http://127.0.0.1:0/health', 'http://a b/health', 'http://ho\tst/health', 'ftp://127.0.0.1/health', 'http://:80/health']) {
        const err = configError(() => resolve({ env: { SERVICE_DISCOVERY_HEALTH_URL: bad } }));
        expect(err.message, JSON.stringify(bad)).to.match(/^SERVICE_DISCOVERY_HEALTH_URL=.* \(env\): expected an http\(s\) URL/);
      }
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: 'http://127.0.0.1:0' } })).message).to.match(/^SERVICE_DISCOVERY_ENDPOINTS=http:\/\/127\.0\.0\.1:0 \(env\): expected comma-separated http\(s\) URLs/);
    });

    it('names the variable that was set when a rule between two settings fails, not the default beside it', () => {
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_LEADER_TTL: '5' } })).message).to.equal(
        'SERVICE_DISCOVERY_LEADER_TTL=5 (env): must be more than cluster.leaderElection.renewInterval (--renew-interval / SERVICE_DISCOVERY_RENEW_INTERVAL), 10',
      );
      // Every value of a group failing: one line per setting, never "cluster.leaderElection: expected object".
      const err = configError(() =>
        resolve({ env: { SERVICE_DISCOVERY_LEADER_ELECTION: 'x', SERVICE_DISCOVERY_LEADER_TTL: 'x', SERVICE_DISCOVERY_RENEW_INTERVAL: 'x' } }),
      );
      expect(err.message).to.equal('SERVICE_DISCOVERY_LEADER_ELECTION=x (env): expected a boolean (true/false, 1/0, yes/no, on/off) (and 2 more)');
      expect(err.issues.map((i) => i.path)).to.deep.equal(['cluster.leaderElection.enabled', 'cluster.leaderElection.ttl', 'cluster.leaderElection.renewInterval']);
    });

    it('shows a line or paragraph separator escaped, so the message stays one line anywhere', () => {
      expect(configError(() => resolve({ env: { SERVICE_PORT: '1\u20282' } })).message).to.equal('SERVICE_PORT="1\\u20282" (env): expected an integer 1-65535');
    });
  });

  describe('config file', () => {
    it('rejects unknown keys, naming the path and suggesting the right one', () => {
      const cases: Array<[unknown, string]> = [
        [{ cluster: { healthcheck: {} } }, 'cluster.healthcheck (file /p): unknown setting; did you mean cluster.healthCheck?'],
        [{ cluster: { healthCheck: { intervall: 5 } } }, 'cluster.healthCheck.intervall (file /p): unknown setting; did you mean cluster.healthCheck.interval?'],
        [{ service: { tag: ['a'] } }, 'service.tag (file /p): unknown setting; did you mean service.tags?'],
        [{ SERVICE_PORT: 3000 }, 'SERVICE_PORT (file /p): unknown setting; did you mean service.port?'],
        [{ service: { ttl: 5 } }, 'service.ttl (file /p): unknown setting; did you mean cluster.leaderElection.ttl?'],
        [{ whatever: 1 }, 'whatever (file /p): unknown setting'],
        [{ cluster: 'x' }, 'cluster=x (file /p): expected an object'],
      ];
      for (const [data, message] of cases) {
        expect(configError(() => resolve({ file: { path: '/p', data } })).message).to.equal(message);
      }
      const many = configError(() => resolve({ file: { path: '/p', data: { a: 1, b: 2 } } }));
      expect(many.issues.map((i) => i.path)).to.deep.equal(['a', 'b']);
    });

    it('treats null as unset only for settings without a default', () => {
      expect(resolve({ file: file({ cluster: { healthCheck: { url: null }, discovery: { registry: null } } }) }).config.cluster.discovery.registry).to.equal(
        'etcd',
      );
      expect(configError(() => resolve({ file: file({ service: { port: null } }) })).message).to.equal(
        `service.port=null (file ${FILE}): expected an integer 1-65535`,
      );
    });

    it('is a one-line error when missing, a directory, not JSON or not an object', async () => {
      const missing = join(dir, 'missing.json');
      expect((await configErrorAsync(() => loadConfig({ env: {}, configFile: missing }))).message).to.equal(`config file ${missing}: not found`);
      expect((await configErrorAsync(() => loadConfig({ env: {}, configFile: dir }))).message).to.equal(
        `config file ${dir}: is a directory, expected a JSON file`,
      );
      const bad = writeJson('bad.json', '{\n  "cluster": {\n    "name": "x",\n  }\n}\n');
      expect((await configErrorAsync(() => loadConfig({ env: {}, configFile: bad }))).message).to.equal(
        `config file ${bad}: invalid JSON at line 4 column 3: expected a double-quoted property name, unexpected character "}"`,
      );
      const array = writeJson('array.json', '[1]');
      expect((await configErrorAsync(() => loadConfig({ env: {}, configFile: array }))).message).to.equal(
        `config file ${array}: expected a JSON object at the top level`,
      );
      const empty = writeJson('empty.json', '');
      expect((await configErrorAsync(() => loadConfig({ env: {}, configFile: empty }))).message).to.equal(
        `config file ${empty}: invalid JSON at line 1 column 1: unexpected end of file`,
      );
    });

    it('reads a file with a BOM', async () => {
      const p = writeJson('bom.json', '\uFEFF{"service":{"port":3333}}');
      expect((await readConfigFile(p)).data).to.deep.equal({ service: { port: 3333 } });
    });
  });

  describe('registry resolution', () => {
    it('is etcd when endpoints are given by any source, and etcd without them', () => {
      const fromEnv = resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: 'http://etcd:2379' } });
      expect(fromEnv.config.cluster.discovery.registry).to.equal('etcd');
      expect(fromEnv.sources['cluster.discovery.registry']).to.equal('default');
      expect(describeSource('cluster.discovery.registry', fromEnv)).to.equal('default (derived)');
      expect(resolve({ file: file({ cluster: { discovery: { endpoints: ['http://e:2379'] } } }) }).config.cluster.discovery.registry).to.equal('etcd');
      expect(resolve({ flags: { endpoints: 'http://e:2379' } }).config.cluster.discovery.registry).to.equal('etcd');
      expect(resolve({ overrides: { cluster: { discovery: { endpoints: ['http://e:2379'] } } } }).config.cluster.discovery.registry).to.equal('etcd');
      expect(resolve().config.cluster.discovery.registry).to.equal('etcd');
    });

    it('uses etcd at http://127.0.0.1:2379, where the CLI looks, when no source names an endpoint', () => {
      for (const loaded of [
        resolve(),
        resolve({ env: { SERVICE_DISCOVERY_REGISTRY: 'etcd' } }),
        resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: ' ' } }), // empty counts as unset
        resolve({ file: file({ cluster: { discovery: { registry: 'etcd', endpoints: [] } } }) }),
      ]) {
        expect(loaded.config.cluster.discovery).to.include({ registry: 'etcd' });
        expect(loaded.config.cluster.discovery.endpoints).to.deep.equal(['http://127.0.0.1:2379']);
        expect(describeSource('cluster.discovery.endpoints', loaded)).to.equal('default');
        expect(loaded.warnings).to.deep.equal([]);
      }
      // The library (the seed's config shape) follows the same rule.
      const seed = configFromPartial({ cluster: { name: 'c', discovery: { namespace: 'proxy-stone' } }, service: { port: 3000 } });
      expect(seed.cluster.discovery).to.include({ registry: 'etcd' });
      expect(seed.cluster.discovery.endpoints).to.deep.equal(['http://127.0.0.1:2379']);
    });

    it('is memory only when named, and then without endpoints', () => {
      for (const loaded of [
        resolve({ flags: { registry: 'memory' } }),
        resolve({ env: { SERVICE_DISCOVERY_REGISTRY: 'memory' } }),
        resolve({ file: file({ cluster: { discovery: { registry: 'memory' } } }) }),
      ]) {
        expect(loaded.config.cluster.discovery.registry).to.equal('memory');
        expect(loaded.config.cluster.discovery.endpoints).to.deep.equal([]);
      }
      expect(describeSource('cluster.discovery.registry', resolve({ flags: { registry: 'memory' } }))).to.equal('flag --registry');
      expect(configFromPartial({ cluster: { discovery: { registry: 'memory' } } }).cluster.discovery.endpoints).to.deep.equal([]);
    });

    it('warns that --health-path / --health-url are not used when --check replaces their HTTP check', () => {
      const flagged = resolve({ flags: { 'health-path': '/ready', check: ['tcp://127.0.0.1:5432'] }, env: {} });
      expect(flagged.warnings).to.deep.equal(['--health-path is set but service.checks replaces the HTTP check it configures: it is not used']);
      const fromEnv = resolve({ env: { SERVICE_DISCOVERY_HEALTH_URL: 'http://127.0.0.1:3001/health', SERVICE_CHECKS: 'tcp://127.0.0.1:5432' } });
      expect(fromEnv.warnings).to.deep.equal(['SERVICE_DISCOVERY_HEALTH_URL is set but service.checks replaces the HTTP check it configures: it is not used']);
      // Either alone is fine.
      expect(resolve({ flags: { 'health-path': '/ready' }, env: {} }).warnings).to.deep.equal([]);
      expect(resolve({ flags: { check: ['tcp://127.0.0.1:5432'] }, env: {} }).warnings).to.deep.equal([]);
    });

    it('keeps an explicit memory registry, warning that endpoints are unused', () => {
      const loaded = resolve({ env: { SERVICE_DISCOVERY_REGISTRY: 'memory', SERVICE_DISCOVERY_ENDPOINTS: 'http://e:2379' } });
      expect(loaded.config.cluster.discovery.registry).to.equal('memory');
      expect(loaded.warnings).to.have.length(1);
    });

  });

  describe('registry resolution: redis', () => {
    it('is redis when the endpoint is a redis:// or rediss:// URL', () => {
      for (const url of ['redis://127.0.0.1:6379', 'rediss://cache.internal:6380/2', 'redis://sd:pw@r:6379']) {
        const loaded = resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: url } });
        expect(loaded.config.cluster.discovery.registry, url).to.equal('redis');
        expect(loaded.config.cluster.discovery.endpoints).to.deep.equal([url]);
      }
      expect(resolve({ flags: { registry: 'redis', endpoints: 'redis://r:6379' } }).config.cluster.discovery.registry).to.equal('redis');
    });

    it('rejects redis without an endpoint, with an http endpoint, or with two', () => {
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_REGISTRY: 'redis' } })).message).to.equal(
        'SERVICE_DISCOVERY_REGISTRY=redis (env): requires one redis:// or rediss:// URL in cluster.discovery.endpoints (--endpoints / SERVICE_DISCOVERY_ENDPOINTS)',
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_REGISTRY: 'redis', SERVICE_DISCOVERY_ENDPOINTS: 'http://e:2379' } })).message).to.equal(
        'SERVICE_DISCOVERY_ENDPOINTS=http://e:2379 (env): expected exactly one redis:// or rediss:// URL with the redis registry (e.g. redis://127.0.0.1:6379)',
      );
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: 'redis://a:1,redis://b:2' } })).message).to.match(
        /^SERVICE_DISCOVERY_ENDPOINTS=redis:\/\/a:1,redis:\/\/b:2 \(env\): expected exactly one redis/,
      );
    });

    it('rejects a redis URL with etcd, and a malformed redis URL, naming the field', () => {
      expect(configError(() => resolve({ env: { SERVICE_DISCOVERY_REGISTRY: 'etcd', SERVICE_DISCOVERY_ENDPOINTS: 'redis://r:6379' } })).message).to.equal(
        'SERVICE_DISCOVERY_ENDPOINTS=redis://r:6379 (env): holds a redis:// URL but cluster.discovery.registry (--registry / SERVICE_DISCOVERY_REGISTRY) is etcd: expected http(s) etcd URLs, or set the registry to redis',
      );
      const bad = configError(() => resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: 'redis://r:6379/cache' } })).message;
      expect(bad).to.match(/^SERVICE_DISCOVERY_ENDPOINTS=redis:\/\/r:6379\/cache \(env\): expected comma-separated http\(s\) URLs .* or one redis:\/\/ or rediss:\/\/ URL/);
    });

    it('takes a Redis password without a user name (requirepass), but not for etcd', () => {
      const loaded = resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: 'redis://r:6379', SERVICE_DISCOVERY_PASSWORD: 'pw' } });
      expect(loaded.config.cluster.discovery.password).to.equal('pw');
      expect(() => resolve({ env: { SERVICE_DISCOVERY_ENDPOINTS: 'http://e:2379', SERVICE_DISCOVERY_PASSWORD: 'pw' } })).to.throw(/requires cluster.discovery.username/);
    });
  });

  describe('secrets', () => {
    it('never appear in error messages', () => {
      const secret = 'hunter2-very-secret';
      const errors = [
        configError(() => resolve({ env: { SERVICE_DISCOVERY_PASSWORD: secret } })),
        configError(() => resolve({ flags: { 'etcd-password': secret } })),
        configError(() => resolve({ file: file({ cluster: { discovery: { password: 12345 } } }) })),
        configError(() => resolve({ file: file({ api: { apiKey: '' } }) })),
      ];
      expect(errors[0]!.message).to.equal(
        'SERVICE_DISCOVERY_PASSWORD=*** (env): requires cluster.discovery.username (--etcd-username / SERVICE_DISCOVERY_USERNAME)',
      );
      expect(errors[2]!.message).to.equal(`cluster.discovery.password=*** (file ${FILE}): expected a non-empty string`);
      for (const err of errors) {
        expect(err.message).to.include('***');
        expect(err.message).not.to.include(secret);
        expect(JSON.stringify(err.issues)).not.to.include(secret);
        expect(err.message).not.to.include('12345');
      }
    });

    it('never appear in JSON syntax errors', async () => {
      const p = writeJson('leak.json', '{"cluster": {"discovery": {"password": "hunter2-very-secret" "x": 1}}}');
      const err = await configErrorAsync(() => loadConfig({ env: {}, configFile: p }));
      expect(err.message).to.match(/invalid JSON at line 1 column \d+/);
      expect(err.message).not.to.include('hunter2');
    });

    it('are kept verbatim and masked by redactConfig', () => {
      const { config } = resolve({ env: { SERVICE_DISCOVERY_USERNAME: 'root', SERVICE_DISCOVERY_PASSWORD: ' p@ss ', SERVICE_DISCOVERY_API_KEY: 'k' } });
      expect(config.cluster.discovery.password).to.equal(' p@ss ');
      const redacted = redactConfig(config);
      expect(redacted.cluster.discovery.password).to.equal('***');
      expect(redacted.api.apiKey).to.equal('***');
      expect(redacted.cluster.discovery.username).to.equal('root');
      expect(config.cluster.discovery.password).to.equal(' p@ss ');
      expect(redactConfig(resolve().config).api).not.to.have.property('apiKey');
    });
  });

  describe('configFromPartial', () => {
    it("takes the seed's nested object and fills in defaults, without reading env", () => {
      const saved = process.env.SERVICE_PORT;
      process.env.SERVICE_PORT = '9999';
      try {
        const config = configFromPartial({
          cluster: { healthCheck: { interval: 1 }, discovery: { registry: 'etcd', endpoints: ['http://localhost:2379'] } },
          service: { host: 'proxy-stone-1' },
        });
        expect(config.cluster.healthCheck.interval).to.equal(1);
        expect(config.cluster.healthCheck.timeout).to.equal(5);
        expect(config.service.host).to.equal('proxy-stone-1');
        expect(config.service.port).to.equal(3000);
        expect(configFromPartial(config)).to.deep.equal(config);
      } finally {
        if (saved === undefined) delete process.env.SERVICE_PORT;
        else process.env.SERVICE_PORT = saved;
      }
    });

    it('validates and rejects unknown keys', () => {
      expect(configError(() => configFromPartial({ cluster: { healthCheck: { retries: 0 } } })).message).to.equal(
        'cluster.healthCheck.retries=0 (override): expected an integer 1-1000',
      );
      const unknownKey = { service: { prot: 3000 } } as unknown as Parameters<typeof configFromPartial>[0];
      expect(configError(() => configFromPartial(unknownKey)).message).to.equal(
        'service.prot (override): unknown setting; did you mean service.port?',
      );
    });
  });

  describe('renderConfigReference', () => {
    it('lists every setting with its flag, env vars and default', () => {
      const md = renderConfigReference();
      for (const s of SETTINGS) {
        const row = md.split('\n').find((line) => line.startsWith(`| \`${s.path}\` |`));
        expect(row, s.path).to.be.a('string');
        for (const flag of flagNames(s)) expect(row).to.include(`${flag}\``);
        for (const env of envNames(s)) expect(row).to.include(`\`${env}\``);
        const def = formatDefault(s);
        if (def && s.path !== 'cluster.discovery.registry') expect(row).to.include(def);
        // Six cells: the pipes inside cells are escaped.
        expect(row!.replace(/\\\|/g, '').split('|')).to.have.length(8);
      }
      const row = (path: string) => md.split('\n').find((line) => line.startsWith(`| \`${path}\` |`));
      expect(row('cluster.discovery.registry')).to.include('| `redis` for a redis:// endpoint, else `etcd` |');
      expect(row('cluster.discovery.endpoints')).to.include('| `http://127.0.0.1:2379` with etcd |');
    });
  });
});
