import { expect } from 'chai';
import { AgentUsageError, parseAgentArgs } from '../../src/agent/command-line.js';
import { advertisedApiUrl } from '../../src/agent/run.js';
import { ConfigError, resolveConfig } from '../../src/config/load.js';

/** `agent` parses its flags without oclif; the same flags, the same messages. */
describe('agent command line', () => {
  it('keys values by flag name, with --flag value and --flag=value', () => {
    expect(parseAgentArgs(['--api-port', '8791', '--namespace=ps', '--config', 'sd.json'])).to.deep.equal({
      'api-port': '8791',
      namespace: 'ps',
      config: 'sd.json',
    });
  });

  it('reads booleans and their --no- forms, the last one winning', () => {
    expect(parseAgentArgs(['--no-api'])).to.deep.equal({ api: false });
    expect(parseAgentArgs(['--no-api', '--api'])).to.deep.equal({ api: true });
    expect(parseAgentArgs(['--api', '--no-api'])).to.deep.equal({ api: false });
  });

  it('takes the registry-neutral credential flags, keyed by their own name so two values can be refused', () => {
    expect(parseAgentArgs(['--registry-password', 'pw', '--registry-ca=ca.pem'])).to.deep.equal({ 'registry-password': 'pw', 'registry-ca': 'ca.pem' });
    const env = { SERVICE_DISCOVERY_ENDPOINTS: 'redis://127.0.0.1:6379', SERVICE_DISCOVERY_PASSWORD: 'from-env' };
    expect(resolveConfig({ env, flags: parseAgentArgs(['--registry-password', 'pw']) }).config.cluster.discovery.password).to.equal('pw');
    expect(resolveConfig({ env, flags: parseAgentArgs(['--etcd-password', 'pw', '--registry-password', 'pw']) }).config.cluster.discovery.password).to.equal('pw');
    expect(() => resolveConfig({ env, flags: parseAgentArgs(['--etcd-password', 'a', '--registry-password', 'b']) })).to.throw(
      ConfigError,
      '--etcd-password=*** and --registry-password=*** (flag): both set cluster.discovery.password and the values differ; give one of them',
    );
  });

  it('refuses what oclif refuses, in its words', () => {
    const cases: [string[], string][] = [
      [['--bogus'], 'Nonexistent flag: --bogus'],
      [['--no-namespace'], 'Nonexistent flag: --no-namespace'],
      [['--api-port'], 'Flag --api-port expects a value'],
      [['extra'], 'Unexpected argument: extra'],
      [['--registry', 'consul'], 'Expected --registry=consul to be one of: etcd, redis, memory'],
    ];
    for (const [args, message] of cases) {
      expect(() => parseAgentArgs(args), args.join(' ')).to.throw(AgentUsageError, message);
    }
  });
});

describe('advertised API URL', () => {
  it('is where the API listens, unless it listens on every interface: then the service host', () => {
    expect(advertisedApiUrl('http://127.0.0.1:8790', '127.0.0.1', 'ps-1.internal')).to.equal('http://127.0.0.1:8790');
    expect(advertisedApiUrl('http://127.0.0.1:8790', '0.0.0.0', 'ps-1.internal')).to.equal('http://ps-1.internal:8790');
    expect(advertisedApiUrl('https://[::1]:8790', '::', 'fd00::7')).to.equal('https://[fd00::7]:8790');
  });
});
