import { expect } from 'chai';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Etcd3 } from 'etcd3';
import { startSampleUpstream, type SampleUpstream } from '../../src/demo/demo.js';
import {
  createLogger,
  debugEnabled,
  effectiveLogLevel,
  formatLogLine,
  type Logger,
} from '../../src/util/logger.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { assertBuilt, eventually, spawnAgent, type LoggedProcess, type LogRecord } from './helpers.js';

// 2026-01-02T03:04:05.678 local time: the formatter prints local wall-clock time.
const T = new Date(2026, 0, 2, 3, 4, 5, 678).getTime();
const ANSI = /\u001b\[[0-9;]*m/g;

/** A writable that keeps what it gets and claims (or not) to be a terminal. */
function sink(isTTY: boolean): Writable & { text: () => string; isTTY?: boolean } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  }) as Writable & { text: () => string; isTTY?: boolean };
  stream.isTTY = isTTY;
  stream.text = () => chunks.join('');
  return stream;
}

/** pino writes synchronously to a plain object stream, but a Writable may defer: let it drain. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('logging: the TTY formatter', () => {
  it('formats time, level, event and message on one line, then the fields the message does not show', () => {
    const line = formatLogLine({
      level: 30,
      time: T,
      pid: 1,
      name: 'proxy-stone-sd',
      event: 'registered',
      serviceId: 'proxy-stone-1',
      leaseId: '7587',
      ttl: 30,
      msg: 'registered proxy-stone-1 under lease 7587 (ttl 30s)',
    });
    expect(line).to.equal('03:04:05.678 INFO  registered registered proxy-stone-1 under lease 7587 (ttl 30s)  ttl=30');
  });

  it('labels every level, quotes strings with spaces and prints objects as JSON', () => {
    const labels = [10, 20, 30, 40, 50, 60].map((level) => formatLogLine({ level, time: T, msg: 'm' }).split(' ')[1]);
    expect(labels).to.deep.equal(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']);
    const line = formatLogLine({ level: 40, time: T, event: 'lease.keepalive_failed', msg: 'keep-alive failed', err: 'deadline exceeded', detail: { a: 1 } });
    expect(line).to.equal('03:04:05.678 WARN  lease.keepalive_failed keep-alive failed  err="deadline exceeded" detail={"a":1}');
  });

  it('shows an error object by its message with the stack on indented lines', () => {
    const line = formatLogLine({ level: 50, time: T, msg: 'boom', err: { type: 'Error', message: 'bad thing', stack: 'Error: bad thing\n    at f (x.js:1:1)\n    at g (y.js:2:2)' } });
    expect(line.split('\n')).to.deep.equal(['03:04:05.678 ERROR boom  err="bad thing"', '    at f (x.js:1:1)', '    at g (y.js:2:2)']);
  });

  it('shows control and bidirectional characters from registry data as escapes, never raw', () => {
    const hostile = 'node\u001b[2J\u202eevil';
    const line = formatLogLine({ level: 30, time: T, event: 'haproxy.server.added', msg: `added ${hostile}`, serviceId: `x${hostile}`, detail: { id: hostile } });
    expect(line).to.equal(
      '03:04:05.678 INFO  haproxy.server.added added node\\u001b[2J\\u202eevil  serviceId=xnode\\u001b[2J\\u202eevil detail={"id":"node\\u001b[2J\\u202eevil"}',
    );
    expect(line).not.to.match(/[\u001b\u202e]/);
  });

  it('colours only when asked, and the text without colour codes is the same', () => {
    const record = { level: 40, time: T, event: 'view.stale', msg: 'cluster view is stale' };
    const coloured = formatLogLine(record, { color: true });
    expect(coloured).to.match(ANSI);
    expect(coloured.replace(ANSI, '')).to.equal(formatLogLine(record));
    expect(formatLogLine(record)).not.to.match(ANSI);
  });

  it('createLogger writes readable lines to a terminal and JSON lines elsewhere', async () => {
    const tty = sink(true);
    const pipe = sink(false);
    for (const [dest, color] of [[tty, false], [pipe, undefined]] as const) {
      const logger = createLogger({ destination: dest, env: {}, ...(color === undefined ? {} : { color }) });
      logger.info({ event: 'leader.elected', serviceId: 'proxy-stone-1' }, 'proxy-stone-1 is now the leader');
    }
    await tick();
    expect(tty.text()).to.match(/^\d\d:\d\d:\d\d\.\d{3} INFO  leader\.elected proxy-stone-1 is now the leader\n$/);
    const json = JSON.parse(pipe.text()) as LogRecord;
    expect(json).to.include({ level: 30, event: 'leader.elected', serviceId: 'proxy-stone-1', msg: 'proxy-stone-1 is now the leader', name: 'proxy-stone-sd' });
    expect(json.time).to.be.a('number');
  });

  it('colours a terminal unless NO_COLOR is set; format can be forced either way', async () => {
    const colour = sink(true);
    const noColour = sink(true);
    const forcedJson = sink(true);
    const forcedPretty = sink(false);
    createLogger({ destination: colour, env: {} }).warn({ event: 'x' }, 'y');
    createLogger({ destination: noColour, env: { NO_COLOR: '1' } }).warn({ event: 'x' }, 'y');
    createLogger({ destination: forcedJson, env: {}, format: 'json' }).warn({ event: 'x' }, 'y');
    createLogger({ destination: forcedPretty, env: {}, format: 'pretty' }).warn({ event: 'x' }, 'y');
    await tick();
    expect(colour.text()).to.match(ANSI);
    expect(noColour.text()).not.to.match(ANSI);
    expect(JSON.parse(forcedJson.text())).to.include({ event: 'x', level: 40 });
    expect(forcedPretty.text()).to.match(/ WARN  x y\n$/);
  });

  it('never prints credentials, in either format', async () => {
    for (const format of ['json', 'pretty'] as const) {
      const out = sink(false);
      createLogger({ destination: out, env: {}, format }).info({ event: 'x', password: 'hunter2', etcd: { password: 'p2' }, apiKey: 'k' }, 'm');
      await tick();
      expect(out.text()).not.to.match(/hunter2|p2|"k"|=k\b/);
      expect(out.text()).to.include('***');
    }
  });
});

describe('logging: LOG_LEVEL and DEBUG', () => {
  it('DEBUG uses the debug package syntax: names, wildcards, exclusions', () => {
    expect(debugEnabled('proxy-stone:service-discovery')).to.equal(true);
    expect(debugEnabled('proxy-stone:*')).to.equal(true);
    expect(debugEnabled('*')).to.equal(true);
    expect(debugEnabled('express:*, proxy-stone:service-discovery')).to.equal(true);
    expect(debugEnabled('express:* proxy-stone:service-discovery')).to.equal(true);
    expect(debugEnabled('*,-proxy-stone:service-discovery')).to.equal(false);
    expect(debugEnabled('proxy-stone:service')).to.equal(false);
    expect(debugEnabled('express:*')).to.equal(false);
    expect(debugEnabled('')).to.equal(false);
    expect(debugEnabled(undefined)).to.equal(false);
  });

  it('DEBUG lowers the level to debug and never raises it', () => {
    const debug = { DEBUG: 'proxy-stone:service-discovery' };
    expect(effectiveLogLevel(undefined, {})).to.equal('info');
    expect(effectiveLogLevel('warn', {})).to.equal('warn');
    expect(effectiveLogLevel(undefined, debug)).to.equal('debug');
    expect(effectiveLogLevel('info', debug)).to.equal('debug');
    expect(effectiveLogLevel('error', debug)).to.equal('debug');
    expect(effectiveLogLevel('trace', debug)).to.equal('trace');
    expect(effectiveLogLevel('info', { DEBUG: 'express:*' })).to.equal('info');
  });

  it('createLogger applies the effective level', async () => {
    const quiet = sink(false);
    const loud = sink(false);
    const log = (l: Logger) => {
      l.debug({ event: 'd' }, 'debug line');
      l.info({ event: 'i' }, 'info line');
    };
    log(createLogger({ destination: quiet, env: {}, level: 'info' }));
    log(createLogger({ destination: loud, env: { DEBUG: 'proxy-stone:*' }, level: 'info' }));
    await tick();
    expect(quiet.text()).not.to.include('debug line');
    expect(quiet.text()).to.include('info line');
    expect(loud.text()).to.include('debug line');
  });
});

describe('logging: a real agent process (memory registry)', function () {
  this.timeout(60_000);
  let upstream: SampleUpstream;
  let agent: LoggedProcess | undefined;
  let keyDir: string;

  before(async () => {
    assertBuilt();
    upstream = await startSampleUpstream();
    keyDir = mkdtempSync(path.join(tmpdir(), 'sd-logging-'));
    writeFileSync(path.join(keyDir, 'keys'), 'alice:operator:alice-secret-key\n');
  });
  after(async () => {
    await agent?.stop();
    await upstream?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const common = (port: number) => [
    '--registry', 'memory',
    '--service-id', 'proxy-stone-1',
    '--service-host', '127.0.0.1',
    '--service-port', String(port),
    '--api-port', '0',
    '--health-interval', '100ms',
    '--health-timeout', '500ms',
    '--health-retries', '2',
    '--grace-period', '0',
    '--leader-ttl', '2',
    '--renew-interval', '500ms',
  ];

  it('logs one JSON line per state change, each with an event field', async () => {
    // One instance: the capacity guard (tested in test/cli/drain.test.ts) is off here.
    agent = spawnAgent(common(upstream.port), { SERVICE_DISCOVERY_API_KEY_FILE: path.join(keyDir, 'keys'), SERVICE_DISCOVERY_MIN_HEALTHY_PER_ZONE: '0' });
    const listening = await agent.waitForEvent('api.listening');
    const api = String(listening.url);
    await agent.waitForEvent('registered');
    await agent.waitForEvent('leader.elected');
    await agent.waitForEvent('health.changed', 20_000, (r) => r.to === 'healthy');

    const post = async (verb: 'enable' | 'disable', body: object) => {
      const res = await fetch(`${api}/service-discovery/services/proxy-stone-1/${verb}`, {
        method: 'POST',
        headers: { authorization: 'Bearer alice-secret-key', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status, `${verb}: ${await res.clone().text()}`).to.equal(200);
    };
    await post('disable', { reason: 'deploy 1.4.2' });
    const disabled = await agent.waitForEvent('service.disabled');
    expect(disabled).to.include({ serviceId: 'proxy-stone-1', actor: 'alice', reason: 'deploy 1.4.2', changed: true });
    await post('enable', {});
    const enabled = await agent.waitForEvent('service.enabled');
    expect(enabled).to.include({ serviceId: 'proxy-stone-1', actor: 'alice', changed: true });

    upstream.setMode('down');
    const down = await agent.waitForEvent('health.changed', 10_000, (r) => r.to === 'unhealthy');
    expect(down).to.include({ serviceId: 'proxy-stone-1', from: 'healthy' });
    // Several more failing checks (every 100 ms) must not log the same change again.
    await new Promise((resolve) => setTimeout(resolve, 600));
    upstream.setMode('up');
    await agent.waitForEvent('health.changed', 10_000, (r) => r.from === 'unhealthy' && r.to === 'healthy');

    const exit = await agent.stop();
    expect(exit).to.deep.equal({ code: 0, signal: null });
    expect(agent.badLines, 'every stdout line is a JSON object').to.deep.equal([]);

    for (const r of agent.records) {
      expect(r, JSON.stringify(r)).to.include.keys('level', 'time', 'msg', 'event', 'pid', 'name');
      expect(r.event, JSON.stringify(r)).to.be.a('string').and.match(/^[a-z_]+(\.[a-z_]+)*$/);
    }
    const count = (event: string, match: (r: LogRecord) => boolean = () => true) => agent!.events(event).filter(match).length;
    expect(count('registered'), 'registered').to.equal(1);
    expect(count('lease.regranted'), 'lease.regranted').to.equal(0);
    expect(count('leader.elected'), 'leader.elected').to.equal(1);
    expect(count('leader.lost'), 'leader.lost (on stop)').to.equal(1);
    expect(count('service.disabled'), 'service.disabled').to.equal(1);
    expect(count('service.enabled'), 'service.enabled').to.equal(1);
    const transitions = agent.events('health.changed').map((r) => `${String(r.from)}->${String(r.to)}`);
    expect(transitions).to.deep.equal(['starting->healthy', 'healthy->unhealthy', 'unhealthy->healthy', 'healthy->draining', 'draining->stopped']);
    expect(count('deregistered'), 'deregistered').to.equal(1);
    expect(agent.records.map((r) => r.event).slice(-1)).to.deep.equal(['agent.stopped']);
  });

  it('LOG_LEVEL=warn keeps info lines out; DEBUG=proxy-stone:service-discovery and LOG_LEVEL=debug add debug lines', async () => {
    const run = async (env: NodeJS.ProcessEnv) => {
      const p = spawnAgent(common(upstream.port), env);
      await p.waitForEvent('agent.started').catch(async (err: unknown) => {
        await p.stop();
        throw err;
      });
      return p;
    };
    // warn: no info line at all, but the process runs (its API key warning is a warn line).
    const warn = spawnAgent(common(upstream.port), { LOG_LEVEL: 'warn' });
    await warn.waitForEvent('api.no_keys');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await warn.stop();
    expect(warn.records.length).to.be.greaterThan(0);
    expect(warn.records.filter((r) => r.level < 40).map((r) => r.event)).to.deep.equal([]);

    for (const env of [{ DEBUG: 'proxy-stone:service-discovery' }, { LOG_LEVEL: 'debug' }] as NodeJS.ProcessEnv[]) {
      const p = await run(env);
      const listening = p.events('api.listening')[0]!;
      // Reads are logged at debug (writes at info): one GET must show up as a debug api.request line.
      const res = await fetch(`${String(listening.url)}/service-discovery/status`);
      expect(res.status).to.equal(200);
      const line = await p.waitForEvent('api.request', 5000);
      expect(line.level, JSON.stringify(env)).to.equal(20);
      await p.stop();
    }

    const info = await run({});
    const listening = info.events('api.listening')[0]!;
    await fetch(`${String(listening.url)}/service-discovery/status`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await info.stop();
    expect(info.records.filter((r) => r.level < 30).map((r) => r.event), 'no debug lines at the default level').to.deep.equal([]);
  });
});

describe('logging: lease lost and re-granted (etcd)', function () {
  this.timeout(60_000);
  let agent: LoggedProcess | undefined;
  let upstream: SampleUpstream;
  let client: Etcd3 | undefined;

  before(async () => {
    assertBuilt();
    upstream = await startSampleUpstream();
  });
  after(async () => {
    await agent?.stop();
    await upstream?.close();
    client?.close();
  });

  it('logs lease.lost once and lease.regranted once when the lease is revoked behind its back', async () => {
    const etcd = await sharedEtcd();
    const namespace = uniqueNamespace('deploy-logging');
    agent = spawnAgent(
      ['--no-api', '--health-interval', '200ms', '--health-retries', '1', '--grace-period', '0', '--leader-ttl', '3', '--renew-interval', '300ms'],
      {
        SERVICE_DISCOVERY_ENDPOINTS: etcd.endpoint,
        SERVICE_DISCOVERY_NAMESPACE: namespace,
        SERVICE_ID: 'proxy-stone-1',
        SERVICE_HOST: '127.0.0.1',
        SERVICE_PORT: String(upstream.port),
      },
    );
    const registered = await agent.waitForEvent('registered', 20_000);
    await agent.waitForEvent('leader.elected');
    client = new Etcd3({ hosts: etcd.endpoint });
    await client.leaseClient.leaseRevoke({ ID: String(registered.leaseId) });

    const lost = await agent.waitForEvent('lease.lost', 10_000);
    expect(lost).to.include({ serviceId: 'proxy-stone-1', leaseId: registered.leaseId });
    const regranted = await agent.waitForEvent('lease.regranted', 10_000);
    expect(regranted.leaseId).to.be.a('string').and.not.equal(registered.leaseId);
    // The new lease carries the record again, and the agent leads again.
    await eventually('the record under the new lease', async () => {
      const kv = await client!.get(`${namespace}/services/proxy-stone-1`).exec();
      return kv.kvs[0] && String(kv.kvs[0].lease) === String(regranted.leaseId);
    });
    await eventually('leadership regained', () => agent!.events('leader.elected').length === 2);
    await new Promise((resolve) => setTimeout(resolve, 700));

    expect(agent.events('registered')).to.have.length(1);
    expect(agent.events('lease.lost')).to.have.length(1);
    expect(agent.events('lease.regranted')).to.have.length(1);
    // Leadership went with the lease and came back with the new one: one loss, one election each.
    expect(agent.events('leader.lost')).to.have.length(1);
    expect(agent.events('leader.elected')).to.have.length(2);
    const exit = await agent.stop();
    expect(exit.code).to.equal(0);
    expect(agent.badLines).to.deep.equal([]);
  });
});
