import { expect } from 'chai';
import { filterServices } from '../../src/cluster/topology.js';
import { formatLabelSelector, matchesSelection, parseLabelSelector, parseTagList, SelectorError } from '../../src/cluster/selector.js';
import type { ServiceRecord } from '../../src/types.js';

function svc(id: string, tags: string[], metadata: Record<string, string>): ServiceRecord {
  return { id, tags, metadata, status: 'healthy', region: 'r', zone: 'z', isHealthy: true } as unknown as ServiceRecord;
}

describe('service selection by tags and metadata (src/cluster/selector.ts)', () => {
  const edge = svc('edge-1', ['proxy', 'canary'], { team: 'edge', env: 'prod' });
  const core = svc('core-1', ['proxy'], { team: 'core' });
  const bare = svc('bare-1', [], {});

  it('parses =, == and != with spaces dropped, and prints them back', () => {
    const sel = parseLabelSelector(' team = edge ,env==prod, tier!=db');
    expect(sel).to.deep.equal([
      { key: 'team', op: '=', value: 'edge' },
      { key: 'env', op: '=', value: 'prod' },
      { key: 'tier', op: '!=', value: 'db' },
    ]);
    expect(formatLabelSelector(sel)).to.equal('team=edge,env=prod,tier!=db');
    expect(parseLabelSelector('note=')).to.deep.equal([{ key: 'note', op: '=', value: '' }]);
  });

  it('refuses what it cannot read, saying what was expected', () => {
    for (const bad of ['team', '=edge', 'team=edge,', 'a=b=c', 'a!b', 'a=b!', '', '   ', 'a=\u001b[31m', `k=${'v'.repeat(1025)}`, `${'k'.repeat(129)}=v`]) {
      expect(() => parseLabelSelector(bad), JSON.stringify(bad)).to.throw(SelectorError, /expected/);
    }
    expect(() => parseLabelSelector('team')).to.throw(/key=value, key==value or key!=value/);
    for (const bad of ['', 'a,,b', ',', 'a\u202eb', 'x'.repeat(129)]) {
      expect(() => parseTagList(bad), JSON.stringify(bad)).to.throw(SelectorError, /expected/);
    }
    expect(parseTagList('canary, proxy,canary')).to.deep.equal(['canary', 'proxy']);
  });

  it('= needs the key with that value; != matches a missing key too (as kubectl)', () => {
    const pick = (selector: string) => [edge, core, bare].filter((s) => matchesSelection(s, { labels: parseLabelSelector(selector) })).map((s) => s.id);
    expect(pick('team=edge')).to.deep.equal(['edge-1']);
    expect(pick('team!=edge')).to.deep.equal(['core-1', 'bare-1']);
    expect(pick('team!=edge,team!=core')).to.deep.equal(['bare-1']);
    expect(pick('team=edge,env=staging')).to.deep.equal([]);
    // Keys are data: nothing is looked up on Object.prototype.
    expect(pick('toString!=x')).to.deep.equal(['edge-1', 'core-1', 'bare-1']);
    expect(pick('__proto__=x')).to.deep.equal([]);
  });

  it('a service must carry every tag; filterServices combines the selection with the other filters', () => {
    expect(filterServices([edge, core, bare], { tags: ['proxy'] }).map((s) => s.id)).to.deep.equal(['edge-1', 'core-1']);
    expect(filterServices([edge, core, bare], { tags: ['proxy', 'canary'] }).map((s) => s.id)).to.deep.equal(['edge-1']);
    expect(filterServices([edge, core, bare], { tags: ['proxy'], labels: parseLabelSelector('team!=edge') }).map((s) => s.id)).to.deep.equal(['core-1']);
    expect(filterServices([edge, core, bare], { region: 'other', tags: ['proxy'] })).to.deep.equal([]);
    expect(filterServices([edge, core, bare], {})).to.have.length(3);
  });
});
