/**
 * A watch stream that stops reading must not make the server's memory grow without bound,
 * and must lose nothing.
 *
 * Goal: DESIGN.md principle 6 ("a slow watcher must not grow memory without bound: it is
 * moved to an unsynced group and caught up from history, or cancelled with a reason, as
 * etcd does"). While a client does not read one stream carrying 100 watchers (98 with
 * prev_kv), 20,000 events (400 txns of 50 puts of 256 bytes) are written. A server that
 * queued every event for every watcher would hold ~100 × 20,000 events; one that keeps
 * history as the only buffer holds the store plus a bounded queue per stream.
 *
 * Method: one real server (WATCH_TARGET=etcd runs the same test against etcd). Stream A
 * (100 watchers, the client paused: grpc-js stops consuming the HTTP/2 stream, so flow
 * control pushes back on the server) and stream B (1 watcher, paused too) watch the
 * prefix. VmRSS of the server process (/proc/<pid>/status) is read before and after the
 * writes; the growth must stay under a generous 200 MB (the bound is on memory, never on
 * speed). The paused client must indeed have received only a small part of the events
 * (else the test proved nothing). Then A cancels 98 watchers, resumes, and its 2 remaining
 * watchers must receive all 20,000 events, each exactly once, in revision order and in
 * txn order inside a revision, with the values written. Finally the store is compacted in
 * the middle of the written revisions and B resumes: B was behind, so on coord it must get
 * a gap-free prefix of the history and then a cancel with compact_revision set (as etcd
 * cancels a watcher that fell behind a compaction), and never a later event. (etcd may
 * also have kept B's backlog in memory, read before the compaction, and deliver it all.)
 */
import { EtcdGrpc, PbOp, PbWatchResponse, WatchStream } from '../harness/etcd-grpc';
import { Member, sleep } from '../harness/proc';
import { startTarget, targetKind } from '../harness/target';
import * as fs from 'node:fs';

const TXNS = 400;
const PUTS_PER_TXN = 50;
const EVENTS = TXNS * PUTS_PER_TXN;
const VALUE_BYTES = 256;
const WATCHERS_PAUSED = 100;
const WATCHERS_KEPT = 2;
const WRITE_CONCURRENCY = 32;
const RSS_GROWTH_BYTES_MAX = 200 * 1024 * 1024;

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The events of one watch id on a stream, flattened, with the response index of each. */
function eventsOf(s: WatchStream, id: string): { rev: bigint; key: string; value: string; response: number }[] {
  const out: { rev: bigint; key: string; value: string; response: number }[] = [];
  s.responses.forEach((r: PbWatchResponse, i) => {
    if (r.watch_id !== id) return;
    for (const e of r.events) out.push({ rev: BigInt(e.kv.mod_revision), key: e.kv.key.toString(), value: e.kv.value.toString('latin1'), response: i });
  });
  return out;
}

describe('slow watch consumer', () => {
  const kind = targetKind('WATCH_TARGET');
  let member: Member | undefined;
  const conns: EtcdGrpc[] = [];

  afterAll(async () => {
    for (const c of conns) c.close();
    await member?.destroy();
  }, 30_000);

  test(`a paused stream keeps the server's memory bounded and, resumed, receives every event in order (target ${kind})`, async () => {
    member = await startTarget(kind);
    const pid = member.pid!;
    const [a, b, w] = [new EtcdGrpc(member.endpoint), new EtcdGrpc(member.endpoint), new EtcdGrpc(member.endpoint)];
    conns.push(a, b, w);
    const P = '/slow/';
    const keyOf = (t: number, i: number): string => `${P}k${String((t * PUTS_PER_TXN + i) % 1000).padStart(3, '0')}`;
    const valueOf = (t: number, i: number): string => `${t}.${i}.`.padEnd(VALUE_BYTES, String.fromCharCode(97 + ((t + i) % 26)));

    const startRev = BigInt((await w.range('/slow-none')).header.revision) + 1n;
    const streamA = a.watch();
    for (let i = 0; i < WATCHERS_PAUSED; i++) streamA.create({ key: Buffer.from(P), range_end: Buffer.from('/slow0'), start_revision: startRev, prev_kv: i >= WATCHERS_KEPT });
    const streamB = b.watch();
    streamB.create({ key: Buffer.from(P), range_end: Buffer.from('/slow0'), start_revision: startRev });
    expect(await streamA.waitFor((s) => s.responses.filter((r) => r.created).length === WATCHERS_PAUSED, 10_000)).toBe(true);
    expect(await streamB.waitFor((s) => s.responses.some((r) => r.created), 10_000)).toBe(true);
    const ids = streamA.responses.filter((r) => r.created).map((r) => r.watch_id);
    const idB = streamB.responses.find((r) => r.created)!.watch_id;
    streamA.pause();
    streamB.pause();
    await sleep(200);
    const rssBefore = rssBytes(pid);

    // 20,000 events: 400 txns of 50 puts each (one revision per txn).
    const revOfTxn = new Array<bigint>(TXNS);
    let next = 0;
    await Promise.all(
      Array.from({ length: WRITE_CONCURRENCY }, async () => {
        while (next < TXNS) {
          const t = next++;
          const ops: PbOp[] = Array.from({ length: PUTS_PER_TXN }, (_, i) => ({ request_put: { key: Buffer.from(keyOf(t, i)), value: Buffer.from(valueOf(t, i)) } }));
          const res = await w.txn([], ops);
          revOfTxn[t] = BigInt(res.header.revision);
        }
      }),
    );
    await sleep(500);
    const rssAfter = rssBytes(pid);
    const growth = rssAfter - rssBefore;
    console.log(`slow consumer (${kind}): server VmRSS ${(rssBefore / 1e6).toFixed(0)} MB -> ${(rssAfter / 1e6).toFixed(0)} MB while ${EVENTS} events went to a paused stream of ${WATCHERS_PAUSED} watchers`);
    expect(growth).toBeLessThan(RSS_GROWTH_BYTES_MAX);
    // The pause was real: the client has a small part of what the kept watchers are owed.
    const receivedWhilePaused = eventsOf(streamA, ids[0]).length;
    expect(receivedWhilePaused).toBeLessThan(EVENTS / 2);

    // Cancel all but the kept watchers (the cancels travel client -> server, unaffected by
    // the pause), then read again.
    for (const id of ids.slice(WATCHERS_KEPT)) streamA.cancel(id);
    streamA.resume();
    const complete = await streamA.waitFor((s) => ids.slice(0, WATCHERS_KEPT).every((id) => eventsOf(s, id).length >= EVENTS), 60_000);
    await sleep(300);
    expect(streamA.error).toBeUndefined();
    expect(complete).toBe(true);

    // Every event exactly once, in revision order, txn order inside a revision, values intact.
    const txnOfRev = new Map<bigint, number>(revOfTxn.map((r, t) => [r, t]));
    const sortedRevs = [...revOfTxn].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    const expected = sortedRevs.flatMap((r) => {
      const t = txnOfRev.get(r)!;
      return Array.from({ length: PUTS_PER_TXN }, (_, i) => `${r} ${keyOf(t, i)} ${valueOf(t, i).slice(0, 16)}`);
    });
    for (const id of ids.slice(0, WATCHERS_KEPT)) {
      const got = eventsOf(streamA, id);
      const fullValues = got.every((e, i) => {
        const t = txnOfRev.get(e.rev);
        return t !== undefined && e.value === valueOf(t, i % PUTS_PER_TXN);
      });
      expect(fullValues).toBe(true);
      expect(got.map((e) => `${e.rev} ${e.key} ${e.value.slice(0, 16)}`)).toEqual(expected);
      // atomic: the events of a revision are in one response.
      const split = got.filter((e, i) => i > 0 && e.rev === got[i - 1].rev && e.response !== got[i - 1].response);
      expect(split).toEqual([]);
    }
    const canceled = streamA.responses.filter((r) => r.canceled).map((r) => r.watch_id);
    expect(new Set(canceled)).toEqual(new Set(ids.slice(WATCHERS_KEPT)));

    // Compaction while B is paused far behind. coord keeps no per-watcher buffer (history is
    // the buffer), so B must get a gap-free prefix, then the cancel with compact_revision.
    // etcd may instead hold B's backlog in memory (its "victim" batches), read before the
    // compaction: then B gets everything and no cancel. Either way: no gap, nothing after a
    // cancel.
    const C = sortedRevs[TXNS / 2];
    await w.compact(C, true);
    streamB.resume();
    const settledB = await streamB.waitFor((s) => s.responses.some((r) => r.canceled) || eventsOf(s, idB).length >= EVENTS, 20_000);
    await sleep(300);
    expect(settledB).toBe(true);
    const gotB = eventsOf(streamB, idB);
    expect(gotB.map((e) => `${e.rev} ${e.key} ${e.value.slice(0, 16)}`)).toEqual(expected.slice(0, gotB.length));
    const cancel = streamB.responses.find((r) => r.canceled);
    if (kind === 'coord') expect(cancel).toBeDefined();
    if (cancel) {
      expect({ watch_id: cancel.watch_id, compact_revision: cancel.compact_revision, events: cancel.events.length }).toEqual({ watch_id: idB, compact_revision: C.toString(), events: 0 });
      expect(gotB.length).toBeLessThan(EVENTS);
      expect(gotB.every((e) => e.rev < C)).toBe(true);
      // Nothing after the cancel.
      expect(streamB.responses.indexOf(cancel)).toBe(streamB.responses.length - 1);
    } else expect(gotB.length).toBe(EVENTS);
  }, 120_000);
});
