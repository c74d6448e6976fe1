/**
 * `GET /service-discovery/events?since=`: the stream replays its kept events from a time, and says
 * with `event: truncated` when its history does not reach back that far (issue 18, part 3).
 */
import { expect } from 'chai';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStream } from '../../src/api/events.js';
import type { ClusterEvent } from '../../src/types.js';

/** Serves one EventStream on a loopback port; `read` collects the frames of one request until `count` data frames. */
async function serveStream(stream: EventStream): Promise<{ read(query: { since?: number; lastEventId?: string; types?: string }, count: number): Promise<string[]>; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const since = url.searchParams.get('since');
    const types = url.searchParams.get('types');
    stream.serve(req, res, {
      ...(since !== null ? { since: Number(since) } : {}),
      ...(url.searchParams.get('lastEventId') ? { lastEventId: url.searchParams.get('lastEventId')! } : {}),
      ...(types ? { types: new Set(types.split(',') as ClusterEvent['type'][]) } : {}),
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    read: (query, count) =>
      new Promise((resolve, reject) => {
        const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString();
        const req = get({ host: '127.0.0.1', port, path: `/?${qs}`, timeout: 5000 }, (res) => {
          let text = '';
          const frames = () => text.split('\n\n').filter((f) => /^(event|data):/m.test(f));
          // Nothing more comes once the replay is sent: stop at `count` frames, or shortly after the last byte.
          let quiet: NodeJS.Timeout | undefined;
          const done = () => {
            clearTimeout(quiet);
            req.destroy();
            resolve(frames());
          };
          res.on('data', (d: Buffer) => {
            text += d.toString();
            clearTimeout(quiet);
            if (frames().length >= count) done();
            else quiet = setTimeout(done, 300);
          });
        });
        req.on('timeout', () => req.destroy(new Error('no answer within 5s')));
        req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
      }),
    close: async () => {
      await stream.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function enabled(id: string, timestamp: number): ClusterEvent {
  return { type: 'serviceEnabled', serviceId: id, timestamp };
}

const dataOf = (frames: string[]) => frames.filter((f) => !f.includes('event: ')).map((f) => (JSON.parse(/^data: (.*)$/m.exec(f)![1]!) as ClusterEvent & { serviceId: string }).serviceId);

describe('event stream: ?since= replays the kept history', function () {
  this.timeout(20_000);

  it('replays from a time; says truncated when the agent started later, or dropped older events', async () => {
    const constructing = Date.now();
    const stream = new EventStream({ historySize: 3, heartbeatMs: 60_000 });
    // The stream's own start lies between the two readings.
    const started = Date.now();
    const t = started + 10_000;
    const server = await serveStream(stream);
    try {
      stream.publish(enabled('a', t));
      stream.publish(enabled('b', t + 1000));
      // Within the history, from after the start: all of it, no notice.
      expect(dataOf(await server.read({ since: started }, 2))).to.deep.equal(['a', 'b']);
      expect(dataOf(await server.read({ since: t + 500 }, 1))).to.deep.equal(['b']);
      const before = await server.read({ since: started - 60_000 }, 3);
      expect(before[0]).to.match(/^event: truncated\ndata: /);
      const notice = JSON.parse(/^data: (.*)$/m.exec(before[0]!)![1]!) as { type: string; reason: string; since: number };
      expect(notice.type).to.equal('truncated');
      expect(notice.reason).to.match(/^the event history reaches back to \S+Z only \(the agent started then\)$/);
      expect(notice.since).to.be.at.least(constructing).and.at.most(started);
      expect(dataOf(before)).to.deep.equal(['a', 'b']);

      stream.publish(enabled('c', t + 2000));
      stream.publish(enabled('d', t + 3000)); // `a` is dropped: the history holds 3
      const dropped = await server.read({ since: t }, 4);
      expect(dropped[0]).to.contain('event: truncated').and.contain('(it keeps the last 3 events)');
      expect(JSON.parse(/^data: (.*)$/m.exec(dropped[0]!)![1]!)).to.include({ since: t + 1 });
      expect(dataOf(dropped)).to.deep.equal(['b', 'c', 'd']);
      // After the dropped event: complete again.
      const complete = await server.read({ since: t + 1 }, 3);
      expect(complete.some((f) => f.includes('truncated'))).to.equal(false);
      expect(dataOf(complete)).to.deep.equal(['b', 'c', 'd']);
      // Types still apply; a Last-Event-ID resumes and `since` is not used.
      expect(dataOf(await server.read({ since: t + 1, types: 'serviceDisabled' }, 1))).to.deep.equal([]);
      expect(dataOf(await server.read({ since: 0, lastEventId: `${stream.streamId}-3` }, 1))).to.deep.equal(['d']);
    } finally {
      await server.close();
    }
  });
});
