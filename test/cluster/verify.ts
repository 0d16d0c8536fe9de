/**
 * The end-of-scenario check shared by the cluster suites: every acknowledged write is on
 * every member, and every member's store is the same.
 *
 * Method: take the cluster's current revision (a linearizable read, so at least every
 * acknowledged revision); on each serving voter, a serializable range of the test's prefix
 * at that revision (write-load.ts checkAcked: nothing acknowledged missing or different,
 * nothing present that was not attempted) and HashKV at that revision; all hashes and
 * compact revisions must be equal. A member that is behind is waited for (up to 20 s):
 * catching up is part of what is checked.
 */
import type { Cluster } from '../harness/cluster';
import { checkAcked, WriteLoad } from '../harness/write-load';

export interface Converged {
  revision: bigint;
  hash: number;
  /** Keys under the prefix at that revision (the same on every member). */
  present: number;
}

export async function expectConverged(cluster: Cluster, prefix: string, loads: WriteLoad[], label: string): Promise<Converged> {
  const revision = await cluster.revision();
  const maxAcked = loads.reduce((m, l) => (l.maxRevision() > m ? l.maxRevision() : m), 0n);
  expect(revision).toBeGreaterThanOrEqual(maxAcked);
  const hashes = await cluster.hashesAt(revision);
  // Every member serves and is a voter when a scenario ends (learners are promoted first).
  expect(hashes.size).toBe(cluster.members.length);
  expect(cluster.serving().length).toBe(cluster.members.length);
  const presentCounts = new Set<number>();
  for (const m of hashes.keys()) {
    const r = await checkAcked(m.endpoint, prefix, revision, loads);
    const context = `${label}: ${m.label} at revision ${revision}`;
    expect({ context, lost: r.lost.slice(0, 10), lostCount: r.lost.length }).toEqual({ context, lost: [], lostCount: 0 });
    expect({ context, wrong: r.wrong.slice(0, 10) }).toEqual({ context, wrong: [] });
    expect({ context, phantom: r.phantom.slice(0, 10) }).toEqual({ context, phantom: [] });
    presentCounts.add(r.present);
  }
  expect(presentCounts.size).toBe(1);
  const byMember = [...hashes].map(([m, h]) => ({ member: m.name, hash: h.hash, compact_revision: h.compact_revision }));
  const first = byMember[0];
  expect(byMember).toEqual(byMember.map((b) => ({ ...b, hash: first.hash, compact_revision: first.compact_revision })));
  return { revision, hash: first.hash, present: [...presentCounts][0] };
}
