/**
 * Watch guarantees on a real coord server, checked on recorded histories.
 *
 * Goal: the six guarantees etcd documents for Watch (etcd.io/docs/v3.4/learning/api_guarantees,
 * "Watch APIs") hold under concurrent writes, a server restart and compaction:
 *   ordered    events are ordered by revision; an event never comes before one it follows;
 *              within a revision, in the order of the txn's operations;
 *   unique     no event twice;
 *   atomic     all events of a revision (for one watcher) come in one response;
 *   reliable   no gap: a watcher's events are exactly the history of its range;
 *   resumable  a watcher started at any uncompacted revision r sees exactly the history
 *              from r, and one started below the compacted revision is canceled with
 *              compact_revision;
 *   identical  every watcher of the same range (on any stream or connection) sees the same
 *              events with the same contents.
 *
 * Method: one server (WATCH_TARGET=etcd runs the same test against etcd 3.4, which
 * validates the test itself; WATCH_SEED=<n> replays the random choices, the seed is
 * printed). 4 writers do random puts, deletes, range deletes and multi-op txns over 8 keys
 * (plus a key outside the watched prefix) through gRPC; every acknowledged write is logged
 * with its revision and the events its response implies, in operation order. Watchers on
 * the prefix, on a sub-range, on one key and with a NOPUT filter are spread over several
 * streams and connections; a few more start mid-run "from now". Halfway through, the
 * server is SIGKILLed and restarted on the same data dir; every watch stream dies and the
 * test re-creates each watcher at (last revision it received) + 1, as a client library
 * does. Afterwards the history is read back with Range at every revision (the oracle:
 * what each revision changed, with full key-values and previous key-values), checked
 * against the acknowledged-write log (acknowledged writes survive the SIGKILL, in the
 * acknowledged order), and every watcher's recorded responses are checked against it.
 * Then watchers start at random past revisions, the store is compacted at a random
 * revision C, and watchers start just below, at and above C.
 */
import { prefixEnd } from '../harness/kv-client';
import { EtcdGrpc, PbEvent, PbKv, PbOp, PbWatchResponse, WatchCreate, WatchStream } from '../harness/etcd-grpc';
import { between, mulberry32, Rng, seedFromEnv } from '../harness/prng';
import { Member, sleep } from '../harness/proc';
import { startTarget, targetKind } from '../harness/target';

const WRITERS = 4;
const WRITES_PER_WRITER = 100;
const KEY_COUNT = 8;
const WRITE_PHASE_MS_MAX = 40_000;
const CATCH_UP_MS_MAX = 20_000;

const PUT = 0;
const DELETE = 1;

/** One event, flattened for comparison. */
interface Ev {
  rev: bigint;
  type: number;
  key: string;
  value: string;
  create: bigint;
  version: bigint;
  lease: bigint;
  prev: string | null;
}

function kvText(kv: PbKv | null | undefined): string | null {
  if (!kv) return null;
  return `${kv.key.toString()}=${kv.value.toString()}@c${kv.create_revision}/m${kv.mod_revision}/v${kv.version}/l${kv.lease}`;
}

function toEv(e: PbEvent, withPrev: boolean): Ev {
  return {
    rev: BigInt(e.kv.mod_revision),
    type: e.type,
    key: e.kv.key.toString(),
    value: e.kv.value.toString(),
    create: BigInt(e.kv.create_revision),
    version: BigInt(e.kv.version),
    lease: BigInt(e.kv.lease),
    prev: withPrev ? kvText(e.prev_kv) : null,
  };
}

const evText = (e: Ev): string => `${e.rev} ${e.type === PUT ? 'PUT' : 'DELETE'} ${e.key}=${e.value} c${e.create}/v${e.version}/l${e.lease}${e.prev === null ? '' : ` prev ${e.prev}`}`;

/** A key range as etcd defines it: [key, end), end undefined = the single key. */
interface Range {
  key: string;
  end?: string;
}
const inRange = (r: Range, k: string): boolean => (r.end === undefined ? k === r.key : Buffer.compare(Buffer.from(k), Buffer.from(r.key)) >= 0 && Buffer.compare(Buffer.from(k), Buffer.from(r.end)) < 0);

/** A watcher the test keeps alive across stream deaths. */
class Tracked {
  /** Event-bearing responses, in arrival order, across every stream it lived on. */
  readonly responses: { header: bigint; events: Ev[]; fragment: boolean }[] = [];
  readonly createdRevs: bigint[] = [];
  canceled: PbWatchResponse | undefined;
  /** First revision it must see (start revision, or created revision + 1). */
  firstRev: bigint | undefined;
  lastRev = 0n;
  constructor(
    readonly name: string,
    readonly range: Range,
    readonly startRev: bigint | undefined,
    readonly opts: { prevKv?: boolean; noPut?: boolean } = {},
  ) {}

  /** Where to resume: after the last event received, else where it was meant to start. */
  resumeRev(): bigint | undefined {
    if (this.lastRev > 0n) return this.lastRev + 1n;
    return this.firstRev ?? this.startRev;
  }

  events(): Ev[] {
    return this.responses.flatMap((r) => r.events);
  }

  createRequest(): WatchCreate {
    return {
      key: Buffer.from(this.range.key),
      range_end: this.range.end === undefined ? undefined : Buffer.from(this.range.end),
      start_revision: this.resumeRev(),
      prev_kv: this.opts.prevKv,
      filters: this.opts.noPut ? [0] : undefined,
    };
  }
}

/** Watchers sharing one watch stream; the stream is replaced (and the watchers re-created) when it dies. */
class Group {
  stream: WatchStream | undefined;
  private pending: Tracked[] = [];
  private byId = new Map<string, Tracked>();
  readonly problems: string[] = [];
  constructor(
    private readonly conn: EtcdGrpc,
    readonly watchers: Tracked[],
  ) {}

  open(): void {
    const stream = this.conn.watch();
    this.stream = stream;
    this.pending = [];
    this.byId = new Map();
    stream.onData((r) => this.dispatch(stream, r));
    for (const w of this.watchers) this.add(w);
  }

  add(w: Tracked): void {
    if (!this.watchers.includes(w)) this.watchers.push(w);
    if (w.canceled) return;
    this.pending.push(w);
    this.stream!.create(w.createRequest());
  }

  private dispatch(stream: WatchStream, r: PbWatchResponse): void {
    if (stream !== this.stream) return;
    if (r.created) {
      const w = this.pending.shift();
      if (!w) return void this.problems.push(`created response with no create pending: ${JSON.stringify(r)}`);
      if (r.canceled) {
        w.canceled = r;
        return;
      }
      this.byId.set(r.watch_id, w);
      const rev = BigInt(r.header.revision);
      w.createdRevs.push(rev);
      if (w.firstRev === undefined) w.firstRev = w.startRev ?? rev + 1n;
      return;
    }
    if (r.watch_id === '-1') return; // progress notification
    const w = this.byId.get(r.watch_id);
    if (!w) return void this.problems.push(`response for unknown watch id ${r.watch_id}: ${JSON.stringify(r).slice(0, 300)}`);
    if (r.canceled) {
      w.canceled = r;
      this.byId.delete(r.watch_id);
      return;
    }
    if (r.events.length === 0) return; // progress notification for this watcher
    const events = r.events.map((e) => toEv(e, w.opts.prevKv === true));
    w.responses.push({ header: BigInt(r.header.revision), events, fragment: r.fragment });
    const last = events[events.length - 1].rev;
    if (last > w.lastRev) w.lastRev = last;
  }

  /** Opens a new stream if the current one died (server restart). */
  repair(): void {
    if (this.stream && !this.stream.closed) return;
    this.stream?.close();
    this.open();
  }

  close(): void {
    this.stream?.close();
  }
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) return false;
    await sleep(50);
  }
  return true;
}

interface Ack {
  rev: bigint;
  /** `type key` in operation order (values checked through the read-back history). */
  events: string[];
}

describe('watch guarantees under concurrent writes, a restart and compaction', () => {
  const kind = targetKind('WATCH_TARGET');
  const seed = seedFromEnv('WATCH_SEED');
  let member: Member | undefined;
  const conns: EtcdGrpc[] = [];
  const groups: Group[] = [];
  let repairing = true;

  afterAll(async () => {
    repairing = false;
    for (const g of groups) g.close();
    for (const c of conns) c.close();
    await member?.destroy();
  }, 30_000);

  test(`ordered, unique, atomic, reliable, resumable, identical (target ${kind})`, async () => {
    console.log(`watch guarantees: target=${kind} seed=${seed} (replay the random choices with WATCH_SEED=${seed})`);
    const rng = mulberry32(seed);
    member = await startTarget(kind);
    for (let i = 0; i < 4; i++) conns.push(new EtcdGrpc(member.endpoint));
    const [c0, c1, c2, c3] = conns;

    const P = `/wg/${seed}/`;
    const keys = Array.from({ length: KEY_COUNT }, (_, i) => `${P}k${i}`);
    const outside = `/wg/${seed}x/outside`;
    const prefix: Range = { key: P, end: prefixEnd(Buffer.from(P)).toString() };
    const sub: Range = { key: keys[2], end: keys[5] };

    const startRev = BigInt((await c0.range('/wg/none')).header.revision) + 1n;

    // ---- watchers: the same ranges on different streams and connections
    const full = new Tracked('full', prefix, startRev, { prevKv: true });
    const peers = Array.from({ length: 6 }, (_, i) => new Tracked(`peer${i}`, prefix, startRev, { prevKv: i % 2 === 0 }));
    const subs = [new Tracked('sub0', sub, startRev), new Tracked('sub1', sub, startRev, { prevKv: true })];
    const singles = [new Tracked('key0', { key: keys[0] }, startRev), new Tracked('key0b', { key: keys[0] }, startRev)];
    const deletesOnly = new Tracked('noput', prefix, startRev, { noPut: true, prevKv: true });
    const mk = (conn: EtcdGrpc, ws: Tracked[]): Group => {
      const g = new Group(conn, ws);
      groups.push(g);
      g.open();
      return g;
    };
    mk(c0, [full, subs[0]]);
    mk(c1, [peers[0], peers[1], singles[0]]);
    mk(c2, [peers[2], peers[3], deletesOnly]);
    mk(c3, [peers[4], subs[1]]);
    mk(c3, [peers[5], singles[1]]);
    const late: Tracked[] = [];

    // A repair loop re-creates watchers whose stream died (the restart).
    const repairLoop = (async () => {
      while (repairing) {
        await sleep(100);
        if (repairing) for (const g of groups) g.repair();
      }
    })();

    // ---- writers
    const acks = new Map<bigint, Ack>();
    const ackProblems: string[] = [];
    let acked = 0;
    let failed = 0;
    const total = WRITERS * WRITES_PER_WRITER;
    const restartAt = Math.floor(total / 2);
    const lateAt = [0.2, 0.4, 0.7, 0.9].map((f) => Math.floor(total * f));
    const deadline = Date.now() + WRITE_PHASE_MS_MAX;
    let restarting: Promise<unknown> | undefined;

    const record = (rev: bigint, events: string[]): void => {
      if (events.length === 0) return;
      if (acks.has(rev)) ackProblems.push(`two acknowledged writes at revision ${rev}`);
      acks.set(rev, { rev, events });
    };

    const writer = async (w: number, wr: Rng): Promise<void> => {
      let n = 0;
      while (n < WRITES_PER_WRITER && Date.now() < deadline) {
        const conn = conns[w % conns.length];
        const value = `w${w}-${n}`;
        const pick = wr();
        try {
          if (pick < 0.3) {
            const key = keys[between(wr, 0, KEY_COUNT - 1)];
            const res = await conn.put(key, value);
            record(BigInt(res.header.revision), [`PUT ${key}`]);
          } else if (pick < 0.4) {
            const key = keys[between(wr, 0, KEY_COUNT - 1)];
            const res = await conn.deleteRange(key, { prevKv: true });
            record(BigInt(res.header.revision), res.prev_kvs.map((kv) => `DELETE ${kv.key.toString()}`));
          } else if (pick < 0.45) {
            const res = await conn.deleteRange(keys[1], { rangeEnd: Buffer.from(keys[4]), prevKv: true });
            record(BigInt(res.header.revision), res.prev_kvs.map((kv) => `DELETE ${kv.key.toString()}`));
          } else if (pick < 0.9) {
            // A txn over 2-4 distinct keys, puts and deletes interleaved; its compare may fail.
            const chosen = [...keys].sort(() => wr() - 0.5).slice(0, between(wr, 2, 4));
            const ops: PbOp[] = chosen.map((key, i) =>
              wr() < 0.7 ? { request_put: { key: Buffer.from(key), value: Buffer.from(`${value}.${i}`) } } : { request_delete_range: { key: Buffer.from(key), prev_kv: true } },
            );
            const guard = keys[between(wr, 0, KEY_COUNT - 1)];
            const compare = wr() < 0.5 ? [] : [{ result: 1, target: 0, key: Buffer.from(guard), version: '0' }]; // version > 0
            const other = keys.find((k) => !chosen.includes(k))!;
            const failure: PbOp[] = [{ request_put: { key: Buffer.from(other), value: Buffer.from(`${value}.f`) } }];
            const res = await conn.txn(compare, ops, failure);
            const branch = res.succeeded ? ops : failure;
            const evs: string[] = [];
            res.responses.forEach((r, i) => {
              if (r.response_put) evs.push(`PUT ${branch[i].request_put!.key.toString()}`);
              else if (r.response_delete_range) for (const kv of r.response_delete_range.prev_kvs) evs.push(`DELETE ${kv.key.toString()}`);
            });
            record(BigInt(res.header.revision), evs);
          } else {
            const res = await conn.put(outside, value);
            record(BigInt(res.header.revision), [`PUT ${outside}`]);
          }
          n++;
          acked++;
          if (acked === restartAt) {
            // SIGKILL in the middle of the write load; streams die, writes fail until it is back.
            restarting = member!.restart({ kill: true });
          }
          if (lateAt.includes(acked)) {
            const t = new Tracked(`late${late.length}`, prefix, undefined, { prevKv: late.length % 2 === 0 });
            late.push(t);
            mk(conns[late.length % conns.length], [t]);
          }
        } catch {
          failed++; // outcome unknown (server down): the read-back history decides
          await sleep(50);
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w, mulberry32(seed + w + 1))));
    await restarting;
    expect(ackProblems).toEqual([]);
    expect(acked).toBe(total);
    console.log(`watch guarantees: ${acked} writes acknowledged, ${failed} failed or unknown (around the restart)`);

    // ---- the oracle: the history of the prefix, read back revision by revision
    const lastRev = BigInt((await c0.range('/wg/none')).header.revision);
    const snapshots = new Map<bigint, Map<string, PbKv>>();
    const revs: bigint[] = [];
    for (let r = startRev - 1n; r <= lastRev; r++) revs.push(r);
    for (let i = 0; i < revs.length; i += 32) {
      await Promise.all(
        revs.slice(i, i + 32).map(async (r) => {
          const res = await c1.range(P, { prefix: true, revision: r });
          snapshots.set(r, new Map(res.kvs.map((kv) => [kv.key.toString(), kv])));
        }),
      );
    }
    /** Events of each revision, in the acknowledged order when the write was acknowledged. */
    const history: Ev[] = [];
    for (let r = startRev; r <= lastRev; r++) {
      const before = snapshots.get(r - 1n)!;
      const after = snapshots.get(r)!;
      const evs: Ev[] = [];
      for (const [key, kv] of after) {
        if (BigInt(kv.mod_revision) === r) evs.push({ ...toEv({ type: PUT, kv, prev_kv: before.get(key) ?? null }, true) });
      }
      for (const [key, kv] of before) {
        if (!after.has(key)) {
          evs.push({ rev: r, type: DELETE, key, value: '', create: 0n, version: 0n, lease: 0n, prev: kvText(kv) });
        }
      }
      const ack = acks.get(r);
      const inPrefix = ack?.events.filter((e) => e.split(' ')[1].startsWith(P));
      if (ack) {
        // Acknowledged writes are in the history (after the SIGKILL too), exactly as acknowledged.
        expect({ rev: r, events: evs.map((e) => `${e.type === PUT ? 'PUT' : 'DELETE'} ${e.key}`).sort() }).toEqual({ rev: r, events: [...inPrefix!].sort() });
        evs.sort((a, b) => inPrefix!.indexOf(`${a.type === PUT ? 'PUT' : 'DELETE'} ${a.key}`) - inPrefix!.indexOf(`${b.type === PUT ? 'PUT' : 'DELETE'} ${b.key}`));
      } else evs.sort((a, b) => (a.key < b.key ? -1 : 1));
      history.push(...evs);
    }
    const unacked = new Set<bigint>();
    for (let r = startRev; r <= lastRev; r++) if (!acks.has(r)) unacked.add(r);
    expect(history.length).toBeGreaterThan(total / 2);

    const expectedFor = (w: Tracked): Ev[] =>
      history
        .filter((e) => e.rev >= w.firstRev! && inRange(w.range, e.key) && !(w.opts.noPut && e.type === PUT))
        .map((e) => (w.opts.prevKv ? e : { ...e, prev: null }));
    /** Events of revisions whose in-txn order is unknown (unacknowledged) are compared sorted by key. */
    const canonical = (evs: Ev[]): string[] => {
      const out: Ev[] = [];
      for (let i = 0; i < evs.length; ) {
        let j = i;
        while (j < evs.length && evs[j].rev === evs[i].rev) j++;
        const group = evs.slice(i, j);
        if (unacked.has(evs[i].rev)) group.sort((a, b) => (a.key < b.key ? -1 : 1));
        out.push(...group);
        i = j;
      }
      return out.map(evText);
    };

    // ---- resumable: watchers at random past revisions (and one at the next revision)
    const resumers: Tracked[] = [];
    for (let i = 0; i < 8; i++) {
      const r = startRev + BigInt(between(rng, 0, Number(lastRev - startRev)));
      resumers.push(new Tracked(`resume@${r}`, prefix, r, { prevKv: i % 2 === 0 }));
    }
    resumers.push(new Tracked(`resume@${lastRev}`, prefix, lastRev, { prevKv: true }));
    resumers.push(new Tracked(`resume@${lastRev + 1n}`, prefix, lastRev + 1n));
    mk(c1, resumers.slice(0, 5));
    mk(c2, resumers.slice(5));

    // ---- wait until every watcher has everything it should have
    const all = [full, ...peers, ...subs, ...singles, deletesOnly, ...late, ...resumers];
    const caughtUp = async (ws: Tracked[]): Promise<void> => {
      const until = Date.now() + CATCH_UP_MS_MAX;
      for (;;) {
        const behind = ws.filter((w) => {
          if (w.firstRev === undefined) return true;
          const exp = expectedFor(w);
          return exp.length > 0 && w.lastRev < exp[exp.length - 1].rev;
        });
        if (behind.length === 0 || Date.now() > until) return;
        await sleep(100);
      }
    };
    await caughtUp(all);
    await sleep(300); // anything extra (a duplicate, a stray event) arrives meanwhile

    const problems: string[] = groups.flatMap((g) => g.problems);
    for (const w of all) {
      if (w.canceled) problems.push(`${w.name}: canceled: ${JSON.stringify(w.canceled).slice(0, 300)}`);
      if (w.firstRev === undefined) problems.push(`${w.name}: never created`);
      // ordered + atomic: revisions never go back inside a response and strictly increase
      // between responses, so no revision is split over two responses.
      let prevLast = 0n;
      for (const [i, r] of w.responses.entries()) {
        if (r.fragment) problems.push(`${w.name}: response ${i} is a fragment (not asked for)`);
        for (let j = 1; j < r.events.length; j++) {
          if (r.events[j].rev < r.events[j - 1].rev) problems.push(`${w.name}: response ${i}: revision ${r.events[j].rev} after ${r.events[j - 1].rev}`);
        }
        const first = r.events[0].rev;
        const last = r.events[r.events.length - 1].rev;
        if (first <= prevLast) problems.push(`${w.name}: response ${i} starts at revision ${first}, not after the previous response's ${prevLast} (order/atomicity)`);
        if (r.header < last) problems.push(`${w.name}: response ${i} header revision ${r.header} < its events' ${last}`);
        prevLast = last;
      }
      // unique
      const seen = new Set<string>();
      for (const e of w.events()) {
        const id = `${e.rev} ${e.key}`;
        if (seen.has(id)) problems.push(`${w.name}: event ${id} delivered twice`);
        seen.add(id);
      }
    }
    expect(problems).toEqual([]);

    // reliable (+ ordered inside each revision): exactly the history of the range, no gap.
    for (const w of all) {
      expect({ watcher: w.name, events: canonical(w.events()) }).toEqual({ watcher: w.name, events: canonical(expectedFor(w)) });
    }
    // identical: the same range gives the same events on every stream and connection.
    const sameAs = (a: Tracked, b: Tracked): void =>
      expect({ watcher: b.name, events: b.events().map((e) => evText({ ...e, prev: a.opts.prevKv && b.opts.prevKv ? e.prev : null })) }).toEqual({
        watcher: b.name,
        events: a.events().map((e) => evText({ ...e, prev: a.opts.prevKv && b.opts.prevKv ? e.prev : null })),
      });
    for (const p of peers) sameAs(full, p);
    sameAs(subs[0], subs[1]);
    sameAs(singles[0], singles[1]);
    // resumable: a watcher started at r sees exactly the full watcher's stream from r.
    for (const r of resumers) {
      const fromFull = full.events().filter((e) => e.rev >= r.startRev!);
      expect({ watcher: r.name, events: r.events().map((e) => evText({ ...e, prev: r.opts.prevKv ? e.prev : null })) }).toEqual({
        watcher: r.name,
        events: fromFull.map((e) => evText({ ...e, prev: r.opts.prevKv ? e.prev : null })),
      });
    }
    // Not vacuous: the restart happened while watched, and every stream was re-created.
    expect(full.createdRevs.length).toBeGreaterThanOrEqual(2);
    expect(late.length).toBe(lateAt.length);

    // ---- compaction at a random revision C
    const C = startRev + 1n + BigInt(between(rng, 0, Number(lastRev - startRev) - 2));
    await c0.compact(C, true); // physical: etcd answers once its backend compaction is done
    const below = new Tracked(`compacted@${C - 1n}`, prefix, C - 1n);
    const atC = new Tracked(`at-compaction@${C}`, prefix, C, { prevKv: true });
    const fromStart = new Tracked(`compacted@${startRev}`, prefix, startRev);
    const g = mk(c3, [below, atC, fromStart]);
    // The synced watchers are not disturbed by the compaction: they see the next write.
    const after = await c1.put(keys[7], 'after-compaction');
    const afterRev = BigInt(after.header.revision);
    const live = [full, ...peers, ...late, atC];
    const ok = await waitUntil(() => below.canceled !== undefined && fromStart.canceled !== undefined && live.every((w) => w.lastRev >= afterRev), 10_000);
    expect(g.problems).toEqual([]);
    expect(ok).toBe(true);
    for (const w of [below, fromStart]) {
      expect({ watcher: w.name, canceled: w.canceled!.canceled, compact_revision: w.canceled!.compact_revision, events: w.events().length }).toEqual({
        watcher: w.name,
        canceled: true,
        compact_revision: C.toString(),
        events: 0,
      });
    }
    // Compaction at C keeps, of revision C itself, only what a read at C needs: the versions
    // written at C, not the tombstones written at C nor the versions C superseded (etcd's
    // keyIndex.compact; its backend compaction deletes the rest). So, as on etcd, a watcher
    // from C gets C's puts without prev_kv, not C's deletes; then exactly the full history.
    const expectAtC = full.events().filter((e) => e.rev > C || (e.rev === C && e.type === PUT)).map((e) => (e.rev === C ? { ...e, prev: null } : e));
    expect(atC.events().map(evText)).toEqual(expectAtC.map(evText));
    for (const w of live) {
      const evs = w.events();
      expect({ watcher: w.name, last: `${evs[evs.length - 1].rev} ${evs[evs.length - 1].key}=${evs[evs.length - 1].value}`, canceled: w.canceled }).toEqual({
        watcher: w.name,
        last: `${afterRev} ${keys[7]}=after-compaction`,
        canceled: undefined,
      });
    }

    repairing = false;
    await repairLoop;
  }, 120_000);
});
