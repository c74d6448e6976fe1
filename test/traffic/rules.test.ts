import { expect } from 'chai';
import { validateBackend, validatePrefix, validateServerOptions, planBackend, serverName, type DesiredServer } from '../../src/traffic/haproxy-plan.js';
import type { HaproxyServerState } from '../../src/traffic/haproxy-runtime.js';
import { compileTemplate, TemplateError } from '../../src/traffic/template.js';
import { hostPort, isRoutableHost, nextVerdictChange, trafficVerdict } from '../../src/traffic/verdict.js';
import { sampleRecord } from '../helpers/records.js';

const NOW = 1_800_000_000_000;

describe('traffic rules (pure)', () => {
  describe('trafficVerdict', () => {
    it('serves healthy enabled instances only', () => {
      expect(trafficVerdict(sampleRecord('a', { adminState: 'enabled' }), NOW)).to.deep.equal({ state: 'serving', reason: 'healthy' });
      expect(trafficVerdict(sampleRecord('a', { status: 'starting' }), NOW)).to.deep.equal({ state: 'out', reason: 'starting' });
      expect(trafficVerdict(sampleRecord('a', { status: 'unhealthy' }), NOW)).to.deep.equal({ state: 'out', reason: 'unhealthy' });
      expect(trafficVerdict(sampleRecord('a', { status: 'stopped' }), NOW).state).to.equal('out');
      const flapping = sampleRecord('a', { status: 'unhealthy' });
      flapping.health.flapping = { since: 1, until: 2, lastChange: 1, transitions: 4, window: 600, holdDown: 300, threshold: 4 };
      expect(trafficVerdict(flapping, NOW).reason).to.equal('unhealthy (flapping)');
    });

    it('drains during an operator drain, then takes the instance out', () => {
      const draining = sampleRecord('a', { enabled: false, adminState: 'draining', drainUntil: NOW + 30_000, disabledReason: 'deploy' });
      expect(trafficVerdict(draining, NOW)).to.deep.equal({ state: 'draining', reason: `operator drain until ${new Date(NOW + 30_000).toISOString()} (deploy)` });
      // The deadline passed before the view re-derived adminState: out by the clock.
      expect(trafficVerdict(draining, NOW + 30_000).state).to.equal('out');
      expect(trafficVerdict(sampleRecord('a', { enabled: false, adminState: 'disabled', disabledReason: 'deploy' }), NOW)).to.deep.equal({ state: 'out', reason: 'disabled (deploy)' });
      // Unhealthy wins over a drain: there is nothing to finish on a dead instance.
      expect(trafficVerdict({ ...draining, status: 'unhealthy' }, NOW).state).to.equal('out');
    });

    it('lets a stopping instance finish its work unless it is disabled', () => {
      expect(trafficVerdict(sampleRecord('a', { status: 'draining' }), NOW)).to.deep.equal({ state: 'draining', reason: 'stopping' });
      expect(trafficVerdict(sampleRecord('a', { status: 'draining', enabled: false, adminState: 'disabled' }), NOW).state).to.equal('out');
    });

    it('never routes to an address that is not a host name or an IP address', () => {
      for (const host of ['1.2.3.4;del server b/x', 'a b', 'host\nserver evil:1;', '', '-lead', 'x'.repeat(254), '[::1', 'a..b']) {
        expect(isRoutableHost(host), JSON.stringify(host)).to.equal(false);
        expect(trafficVerdict(sampleRecord('a', { host }), NOW).state, JSON.stringify(host)).to.equal('out');
      }
      for (const host of ['127.0.0.1', '::1', '[::1]', 'proxy-stone-1', 'proxy_stone_1', 'a.b.example.com', 'fe80::1']) expect(isRoutableHost(host), host).to.equal(true);
      expect(trafficVerdict(sampleRecord('a', { port: 0 }), NOW).state).to.equal('out');
    });

    it('writes IPv6 addresses in brackets', () => {
      expect(hostPort('::1', 3001)).to.equal('[::1]:3001');
      expect(hostPort('[::1]', 3001)).to.equal('[::1]:3001');
      expect(hostPort('10.0.0.1', 3001)).to.equal('10.0.0.1:3001');
      expect(hostPort('proxy-stone-1', 3001)).to.equal('proxy-stone-1:3001');
    });

    it('knows when the clock alone changes a verdict: the earliest running drain deadline', () => {
      const a = sampleRecord('a', { enabled: false, adminState: 'draining', drainUntil: NOW + 5000 });
      const b = sampleRecord('b', { enabled: false, adminState: 'draining', drainUntil: NOW + 2000 });
      expect(nextVerdictChange([a, b, sampleRecord('c')], NOW)).to.equal(NOW + 2000);
      expect(nextVerdictChange([sampleRecord('c')], NOW)).to.equal(undefined);
    });
  });

  describe('HAProxy server names and flags', () => {
    it('is prefix + id when HAProxy accepts the id, else a sanitised id with a hash', () => {
      expect(serverName('psd-', 'proxy-stone-1')).to.equal('psd-proxy-stone-1');
      const odd = serverName('psd-', 'a b@c');
      expect(odd).to.match(/^psd-a_b_c-[0-9a-f]{8}$/);
      // Sanitising must not make two ids one name.
      expect(serverName('psd-', 'a_b_c')).to.not.equal(odd);
      const long = serverName('psd-', 'x'.repeat(200));
      expect(long.length).to.be.at.most(64);
      expect(long).to.match(/^psd-x+-[0-9a-f]{8}$/);
      expect(serverName('psd-', 'x'.repeat(201))).to.not.equal(long);
    });

    it('refuses flag values that could break a Runtime API command line', () => {
      expect(validateServerOptions('check inter 1s fall 2 rise 2')).to.equal(undefined);
      expect(validateServerOptions('')).to.equal(undefined);
      expect(validateServerOptions('check; del server proxy_stone/static1')).to.match(/without ; or #/);
      expect(validateServerOptions('check\nshow info')).to.match(/one line/);
      expect(validateServerOptions('check agent-check')).to.match(/agent-check is not supported/);
      expect(validatePrefix('psd-')).to.equal(undefined);
      expect(validatePrefix('')).to.match(/non-empty/);
      expect(validatePrefix('a b')).to.match(/letters, digits/);
      expect(validateBackend('proxy_stone')).to.equal(undefined);
      expect(validateBackend('be/x')).to.match(/backend name/);
    });
  });

  describe('planBackend', () => {
    const server = (name: string, addr: string, port: number, adminState: number): HaproxyServerState => ({ id: 1, name, addr, port, opState: 2, adminState, weight: 1 });
    const want = (name: string, state: DesiredServer['state'], port = 3001): DesiredServer => ({ name, serviceId: name.slice(4), addr: '127.0.0.1', port, state, reason: 'r' });

    it('adds, moves, changes state and removes owned servers only, gains of traffic first', () => {
      const current = [
        server('static1', '127.0.0.1', 9, 1),
        server('manual', '127.0.0.1', 8, 0),
        server('psd-a', '127.0.0.1', 3001, 0),
        server('psd-b', '127.0.0.1', 3002, 1),
        server('psd-c', '127.0.0.1', 3003, 8),
        server('psd-gone', '127.0.0.1', 3009, 0),
      ];
      const plan = planBackend([want('psd-a', 'maint'), want('psd-b', 'ready', 3002), want('psd-c', 'drain', 3013), want('psd-d', 'drain'), want('psd-e', 'ready')], current, 'psd-');
      expect(plan.map((a) => `${a.kind} ${'server' in a ? a.server.name : a.name}`)).to.deep.equal([
        'add psd-e',
        'add psd-d',
        'address psd-c',
        'state psd-b',
        'state psd-a',
        'remove psd-gone',
      ]);
      expect(plan.find((a) => a.kind === 'remove')).to.deep.include({ from: 'ready', addr: '127.0.0.1:3009' });
    });

    it('plans nothing when the backend already matches', () => {
      expect(planBackend([want('psd-a', 'ready')], [server('psd-a', '127.0.0.1', 3001, 0)], 'psd-')).to.deep.equal([]);
    });
  });

  describe('templates', () => {
    const errorOf = (source: string): TemplateError => {
      try {
        compileTemplate(source, 'up.hbs')({ services: [], serving: [], draining: [], out: [], leader: null, topology: {} as never, namespace: 'ns' });
      } catch (err) {
        expect(err).to.be.instanceOf(TemplateError);
        return err as TemplateError;
      }
      throw new Error('no error');
    };

    it('says which file and line is wrong, on one line', () => {
      const syntax = errorOf('upstream x {\n{{#each serving}\n}');
      expect(syntax.message).to.match(/^template up\.hbs line 2: syntax error near ".*" \(expecting .*; got 'INVALID'\)$/);
      expect(syntax.message).to.not.include('\n');
      expect(errorOf('a\n{{#each serving}}\n{{/if}}').message).to.equal("template up.hbs line 2: each doesn't match if");
      expect(errorOf('{{#each serving}}{{nmae}}{{/each}}{{nmae}}').message).to.equal('template up.hbs line 1: "nmae" not defined');
      expect(errorOf('{{#shout serving}}x{{/shout}}').message).to.equal('template up.hbs line 1: You specified knownHelpersOnly, but used the unknown helper shout');
      expect(errorOf('{{> header}}').message).to.equal('template up.hbs: The partial header could not be found');
    });
  });
});
