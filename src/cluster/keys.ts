/**
 * Key layout under the namespace (DESIGN.md). `<ns>/services/<id>` is fixed by the seed, so operators
 * can run `etcdctl get --prefix proxy-stone/services/`.
 */
export interface KeyLayout {
  namespace: string;
  root: string;
  services: string;
  admin: string;
  election: string;
  audit: string;
  /**
   * `<ns>/leader`: who leads, since when and in which term (`{leaderId, since, term}`), written by
   * the leader through its fence under its own lease, so it never outlives its leader.
   */
  leader: string;
  /**
   * `<ns>/resign`: an operator's request that the leader of one term hand over (`leader resign`,
   * src/cluster/leader.ts), written under that leader's lease and honoured only by that term.
   */
  resign: string;
  service(id: string): string;
  adminOf(id: string): string;
  electionOf(leaseId: string): string;
  /** `<ns>/health/`: per-instance health state that must outlive the agent (a flap-damping hold); no lease. */
  health: string;
  healthOf(id: string): string;
}

export function keyLayout(namespace: string): KeyLayout {
  const ns = namespace.replace(/\/+$/, '');
  const root = `${ns}/`;
  return {
    namespace: ns,
    root,
    services: `${root}services/`,
    admin: `${root}admin/`,
    election: `${root}election/`,
    audit: `${root}audit/`,
    leader: `${root}leader`,
    resign: `${root}resign`,
    service: (id) => `${root}services/${id}`,
    adminOf: (id) => `${root}admin/${id}`,
    // etcd's election recipe names a candidate by its lease id in hex.
    electionOf: (leaseId) => `${root}election/${BigInt(leaseId).toString(16)}`,
    health: `${root}health/`,
    healthOf: (id) => `${root}health/${id}`,
  };
}

export type KeyKind = 'service' | 'admin' | 'election' | 'audit' | 'leader' | 'resign' | 'foreign' | 'health';

/** Classifies a key under the namespace root and returns the id part after the kind prefix. */
export function classifyKey(layout: KeyLayout, key: string): { kind: KeyKind; id: string } {
  if (key === layout.leader) return { kind: 'leader', id: '' };
  if (key === layout.resign) return { kind: 'resign', id: '' };
  for (const [kind, prefix] of [
    ['service', layout.services],
    ['admin', layout.admin],
    ['election', layout.election],
    ['audit', layout.audit],
    ['health', layout.health],
  ] as const) {
    if (key.startsWith(prefix)) {
      const id = key.slice(prefix.length);
      if (id.length > 0 && !id.includes('/')) return { kind, id };
    }
  }
  return { kind: 'foreign', id: key };
}
