import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { EtcdHttpReader } from '../../src/cli/etcd-http-reader.js';
import { RegistryUnavailableError } from '../../src/registry/types.js';
import { uniqueNamespace } from '../helpers/etcd.js';
import { sharedEtcd } from '../helpers/shared-etcd.js';
import { ensureBuilt, runCli } from './fixtures.js';

/**
 * The one-shot reads' etcd client (src/cli/etcd-http-reader.ts) reads the gateway's JSON as hostile
 * input: a URL that answers 200 with something other than etcd's answer (a web page, `{}`, a key that
 * is not a string) is an error naming it, never an empty registry, a TypeError or a stack trace.
 */
describe('EtcdHttpReader: answers that are not etcd', function () {
  this.timeout(30_000);
  let server: Server;
  let endpoint: string;
  let answer: { status: number; body: string } = { status: 200, body: '' };

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server?.close());

  const NOT_ETCD = [
    '<html><body>It works!</body></html>',
    '{}',
    'null',
    '[]',
    '{"kvs":[]}',
    '{"header":{},"kvs":"everything"}',
    '{"header":{},"kvs":[{"key":5,"value":"eA=="}]}',
    '{"header":{},"kvs":[{"key":"eA==","value":{}}]}',
    '{"header":{},"kvs":[null]}',
  ];
  /** Range answers, but not answers to a transaction of three ranges. */
  const NOT_A_TXN = [
    '{"header":{},"responses":[{}]}',
    '{"header":{},"responses":[{"response_range":{"kvs":[{"key":"eA=="}]}}]}',
    '{"header":{},"succeeded":true,"responses":"x"}',
    '{"header":{},"succeeded":true,"responses":[{"response_range":{"header":{}}}]}',
  ];

  it('list, get and the one-revision read of several prefixes each refuse every shape that is not a range answer', async () => {
    const reader = new EtcdHttpReader({ endpoints: [endpoint], timeoutMs: 2000 });
    try {
      for (const body of [...NOT_ETCD, ...NOT_A_TXN]) {
        answer = { status: 200, body };
        for (const [what, read] of [
          ['list', () => reader.list('/ns/services/')],
          ['get', () => reader.get('/ns/leader')],
          ['listConsistent', () => reader.listConsistent(['/ns/services/', '/ns/admin/', '/ns/election/'])],
        ] as const) {
          if (NOT_A_TXN.includes(body) && what !== 'listConsistent') continue;
          const err = await read().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err, `${what} of ${body}`).to.be.instanceOf(RegistryUnavailableError);
          expect((err as Error).message, `${what} of ${body}`).to.match(/something other than etcd's answer \(is this an etcd client URL\?\)$/);
        }
      }
    } finally {
      await reader.close();
    }
  });

  it('services list, leader and status say so in one line (exit 4), or in the --json error, not that there are no services', async function () {
    this.timeout(60_000);
    ensureBuilt();
    answer = { status: 200, body: '<html><body>It works!</body></html>' };
    const said = /^registry http:\/\/127\.0\.0\.1:\d+ unreachable: answered with something other than etcd's answer \(is this an etcd client URL\?\)( \(hint: .*\))?$/;
    for (const args of [['services', 'list'], ['leader']]) {
      const res = await runCli([...args, '--endpoints', endpoint]);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.equal(4);
      expect(res.stdout).to.equal('');
      expect(res.stderr.split('\n')[0]!.replace(/^Error: /, '')).to.match(said);
      expect(res.stderr).to.not.match(/\n\s+at /);
    }
    // status reports the registry as not reachable, and why, then exits 4.
    const status = await runCli(['status', '--endpoints', endpoint]);
    expect(status.code).to.equal(4);
    expect(status.stdout).to.include("reachable: no (answered with something other than etcd's answer (is this an etcd client URL?))");
    const json = await runCli(['services', 'list', '--json', '--endpoints', endpoint]);
    expect(json.code).to.equal(4);
    const error = (JSON.parse(json.stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).to.equal('unreachable');
    expect(error.message).to.match(said);
  });

  it('a web server listed before a real etcd member: the next member is read, and stays the one used', async () => {
    const etcd = await sharedEtcd();
    const ns = uniqueNamespace('reader-next');
    const put = await fetch(`${etcd.endpoint}/v3/kv/put`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from(`${ns}/services/a`).toString('base64'), value: Buffer.from('1').toString('base64') }),
    });
    expect(put.ok).to.equal(true);
    answer = { status: 200, body: '<html><body>It works!</body></html>' };
    let hits = 0;
    const counting = (): void => void hits++;
    server.on('request', counting);
    const reader = new EtcdHttpReader({ endpoints: [endpoint, etcd.endpoint], timeoutMs: 3000 });
    try {
      expect((await reader.list(`${ns}/services/`)).kvs.map((kv) => kv.key)).to.deep.equal([`${ns}/services/a`]);
      expect((await reader.listConsistent([`${ns}/services/`, `${ns}/admin/`])).kvs.map((kv) => kv.value)).to.deep.equal(['1']);
      expect((await reader.get(`${ns}/services/a`))?.value).to.equal('1');
      // The web server was asked once; later reads go to the member that answered as etcd.
      expect(hits).to.equal(1);
    } finally {
      server.off('request', counting);
      await reader.close();
    }
  });

  it('an answer larger than 64 MiB is cut off and reported, not read into memory', async function () {
    const big = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      // Streams well past the bound; the reader must hang up, not buffer it.
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < 80 && res.write(chunk)) sent++;
        if (sent < 80) res.once('drain', pump);
        else res.end('{}');
      };
      res.on('close', () => (sent = 80));
      pump();
    });
    big.listen(0, '127.0.0.1');
    await once(big, 'listening');
    const reader = new EtcdHttpReader({ endpoints: [`http://127.0.0.1:${(big.address() as AddressInfo).port}`], timeoutMs: 10_000 });
    try {
      const err = await reader.list('/ns/services/').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(RegistryUnavailableError);
      expect((err as Error).message).to.match(/answer larger than 64 MiB$/);
    } finally {
      await reader.close();
      big.closeAllConnections();
      big.close();
    }
  });

  it('a real etcd still reads as before: the same keys through the one-revision read and prefix by prefix', async () => {
    const etcd = await sharedEtcd();
    const ns = uniqueNamespace('reader');
    const put = (key: string, value: string) =>
      fetch(`${etcd.endpoint}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }) });
    for (const [k, v] of [[`${ns}/services/a`, '1'], [`${ns}/services/b`, '2'], [`${ns}/admin/a`, ''], [`${ns}/election/x`, 'a']] as const) expect((await put(k, v)).ok).to.equal(true);
    const reader = new EtcdHttpReader({ endpoints: [etcd.endpoint], timeoutMs: 3000 });
    try {
      const prefixes = [`${ns}/services/`, `${ns}/admin/`, `${ns}/election/`];
      const together = await reader.listConsistent(prefixes);
      const apart = (await Promise.all(prefixes.map((p) => reader.list(p, together.revision)))).flatMap((r) => r.kvs);
      expect(together.kvs.map((kv) => [kv.key, kv.value])).to.deep.equal([
        [`${ns}/services/a`, '1'],
        [`${ns}/services/b`, '2'],
        [`${ns}/admin/a`, ''],
        [`${ns}/election/x`, 'a'],
      ]);
      expect(together.kvs).to.deep.equal(apart);
      expect((await reader.get(`${ns}/services/b`))?.value).to.equal('2');
      expect(await reader.get(`${ns}/nothing`)).to.equal(null);
    } finally {
      await reader.close();
    }
  });
});
