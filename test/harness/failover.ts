/**
 * One leader failover under write load, measured: shared by test/cluster/failover.test.ts
 * and scripts/failover-time.js.
 *
 * Goal: the numbers an operator cares about when the leader machine dies: how long until
 * the cluster has a new leader, and how long until a client's write is acknowledged again.
 *
 * Method: with a WriteLoad running, find the leader, SIGKILL it (t0 = just before the
 * signal), wait for its exit (tDead), then wait for a majority of the survivors to agree on
 * a new leader (electedMs = when that was first seen - t0; polled every 50 ms, so it is an
 * upper bound by up to one poll plus one Status round trip), and for the first
 * acknowledgement of a put SENT after tDead (gapMs = its ack time - t0). A put sent before
 * the kill may be acknowledged after it (the old leader may have committed it before
 * dying), so those do not count: after tDead no put can be committed by the dead leader.
 */
import { Cluster, ClusterMember } from './cluster';
import type { WriteLoad } from './write-load';

export interface Failover {
  killed: ClusterMember;
  newLeader: ClusterMember;
  /** Kill → a majority agrees on a new leader. */
  electedMs: number;
  /** Kill → first acknowledged write sent after the old leader was dead. */
  gapMs: number;
  /** Raft terms before and after (after: once it exceeds before, or as last seen within 5 s). */
  termBefore: bigint;
  termAfter: bigint;
}

export async function killLeader(cluster: Cluster, load: WriteLoad, opts: { timeoutMs?: number } = {}): Promise<Failover> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const killed = await cluster.waitLeader();
  const termBefore = BigInt((await killed.status()).raftTerm);
  const t0 = Date.now();
  await killed.kill();
  const tDead = Date.now();
  const [newLeader, firstAck] = await Promise.all([
    cluster.waitLeader({ exclude: [killed], timeoutMs }).then((m) => ({ m, at: Date.now() })),
    load.waitAcks(1, { sentSince: tDead, timeoutMs }),
  ]);
  const termAfter = await newLeader.m.termAbove(termBefore);
  return {
    killed,
    newLeader: newLeader.m,
    electedMs: newLeader.at - t0,
    gapMs: firstAck[0].ackMs - t0,
    termBefore,
    termAfter,
  };
}

/** min / median / max of a list of numbers. */
export function summary(xs: number[]): { min: number; median: number; max: number } {
  if (xs.length === 0) throw new Error('summary of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { min: s[0], median, max: s[s.length - 1] };
}
