/**
 * Differential test: the Watch gRPC stream itself, coord against etcd 3.4.
 *
 * Goal: what etcdctl cannot show is the same too: watch ids (assigned and explicit, reuse,
 * duplicates), created/canceled responses and their header revisions, cancel_reason texts,
 * cancels of unknown ids, progress requests (answered with watch_id -1 and the current
 * revision), NOPUT/NODELETE filters, prev_kv on puts and deletes, range_end "\0" (every
 * key from key on), replay grouping (one catch-up response, header = current revision),
 * future and negative start revisions, fragmentation of large responses, and watches
 * below / at the compacted revision.
 *
 * Method: the same script of watch requests and KV writes runs on one raw gRPC watch
 * stream per side (harness/etcd-grpc.ts), concurrently. `collect N` waits until N more
 * responses have arrived (deadline 5 s), waits until the stream has been quiet for 200 ms
 * (so an extra response shows), and records them normalized (responses to different
 * watchers for the same revision in watch id order, since etcd does not define that
 * interleaving; each watcher's own order is kept): revisions relative to the
 * side's revision when the script started, cluster/member ids and raft term left out
 * (kv.test.ts covers headers), large values as length + hash. The transcripts must be equal.
 */
import { createHash } from 'node:crypto';
import { EtcdGrpc, PbEvent, PbKv, PbOp, PbWatchResponse, WatchCreate, WatchStream } from '../harness/etcd-grpc';
import type { Member } from '../harness/proc';
import { sleep } from '../harness/proc';
import { usePair } from '../harness/target';

const pair = usePair();

/** A revision relative to the script's start (`{ rel: 2 }` = base + 2), or absolute. */
type Rev = { rel: number } | bigint;

type GStep =
  | { create: Omit<WatchCreate, 'start_revision' | 'key' | 'range_end'> & { key: string; range_end?: string; start?: Rev } }
  | { cancel: bigint }
  | { progress: true }
  | { put: string; value: string | Buffer; lease?: bigint }
  | { del: string; end?: string; prevKv?: boolean }
  | { txn: PbOp[] }
  | { compact: Rev }
  | { collect: number; timeoutMs?: number };

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

class GSide {
  private base = 0n;
  private stream!: WatchStream;
  private seen = 0;
  constructor(
    private readonly member: Member,
    private readonly conn: EtcdGrpc,
  ) {}

  async start(): Promise<void> {
    this.base = BigInt((await this.conn.range('/__never__')).header.revision);
    this.stream = this.conn.watch();
  }

  private rev(r: Rev): bigint {
    return typeof r === 'bigint' ? r : this.base + BigInt(r.rel);
  }

  private relRev(s: string): string {
    const n = BigInt(s);
    if (n <= 0n) return s;
    const d = n - this.base;
    return d >= 0n ? `R+${d}` : `R${d}`;
  }

  private kv(kv: PbKv | null): string | null {
    if (!kv) return null;
    const v = kv.value.length > 64 ? `<${kv.value.length} bytes ${createHash('sha256').update(kv.value).digest('hex').slice(0, 12)}>` : kv.value.toString('latin1');
    return `${kv.key.toString('latin1')}=${v} c${kv.create_revision === '0' ? 0 : this.relRev(kv.create_revision)} m${this.relRev(kv.mod_revision)} v${kv.version} l${kv.lease}`;
  }

  private response(r: PbWatchResponse): object {
    return {
      revision: this.relRev(r.header.revision),
      watch_id: r.watch_id,
      ...(r.created ? { created: true } : {}),
      ...(r.canceled ? { canceled: true } : {}),
      ...(r.compact_revision !== '0' ? { compact_revision: this.relRev(r.compact_revision) } : {}),
      ...(r.cancel_reason ? { cancel_reason: r.cancel_reason } : {}),
      ...(r.fragment ? { fragment: true } : {}),
      events: r.events.map((e: PbEvent) => `${e.type === 0 ? 'PUT' : 'DELETE'} ${this.kv(e.kv)}${e.prev_kv ? ` prev ${this.kv(e.prev_kv)}` : ''}`),
    };
  }

  async run(step: GStep): Promise<unknown> {
    if ('create' in step) {
      const { key, range_end, start, ...rest } = step.create;
      this.stream.create({ ...rest, key: b(key), range_end: range_end === undefined ? undefined : b(range_end), start_revision: start === undefined ? undefined : this.rev(start) });
      return undefined;
    }
    if ('cancel' in step) return void this.stream.cancel(step.cancel);
    if ('progress' in step) return void this.stream.progress();
    try {
      if ('put' in step) return { revision: this.relRev((await this.conn.put(step.put, step.value, { lease: step.lease })).header.revision) };
      if ('del' in step) {
        const r = await this.conn.deleteRange(step.del, { rangeEnd: step.end === undefined ? undefined : b(step.end), prevKv: step.prevKv });
        return { revision: this.relRev(r.header.revision), deleted: r.deleted };
      }
      if ('txn' in step) return { revision: this.relRev((await this.conn.txn([], step.txn)).header.revision) };
      if ('compact' in step) {
        await this.conn.compact(this.rev(step.compact), true);
        return { compacted: true };
      }
    } catch (err) {
      return { error: (err as Error).message };
    }
    // collect
    const want = this.seen + step.collect;
    const met = await this.stream.waitFor((s) => s.responses.length >= want, step.timeoutMs ?? 5000);
    for (let quiet = 0; quiet < 20; quiet++) {
      const n = this.stream.responses.length;
      await sleep(200);
      if (this.stream.responses.length === n) break;
    }
    const got = interleavingFree(this.stream.responses.slice(this.seen)).map((r) => this.response(r));
    this.seen = this.stream.responses.length;
    return { responses: got, ...(met ? {} : { harness: `fewer than ${step.collect} responses within the deadline` }), ...(this.stream.error ? { error: this.stream.error.message } : {}) };
  }

  close(): void {
    this.stream?.close();
    this.conn.close();
  }
  get endpoint(): string {
    return this.member.endpoint;
  }
}

/**
 * The order of responses to different watchers for the same revision is not defined (etcd
 * walks a map of watchers); the order of each watcher's own responses is. Runs of event
 * responses with the same header revision are put in watch id order.
 */
function interleavingFree(rs: PbWatchResponse[]): PbWatchResponse[] {
  const out = [...rs];
  const plain = (r: PbWatchResponse): boolean => !r.created && !r.canceled && r.events.length > 0;
  for (let i = 0; i < out.length; ) {
    let j = i;
    while (j < out.length && plain(out[j]) && plain(out[i]) && out[j].header.revision === out[i].header.revision) j++;
    if (j > i + 1) out.splice(i, j - i, ...out.slice(i, j).sort((x, y) => Number(BigInt(x.watch_id) - BigInt(y.watch_id))));
    i = Math.max(j, i + 1);
  }
  return out;
}

/** A step as text for the transcript (big values as their length). */
function stepText(step: GStep): string {
  return JSON.stringify(step, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') {
      const data = (v as { data: number[] }).data;
      return data.length > 64 ? `<${data.length} bytes>` : Buffer.from(data).toString('latin1');
    }
    return v;
  });
}

async function expectSameStream(steps: GStep[]): Promise<{ reference: unknown[]; target: unknown[] }> {
  const ref = new GSide(pair.reference, new EtcdGrpc(pair.reference.endpoint));
  const tgt = new GSide(pair.target, new EtcdGrpc(pair.target.endpoint));
  try {
    await Promise.all([ref.start(), tgt.start()]);
    const out = { reference: [] as unknown[], target: [] as unknown[] };
    for (const [i, step] of steps.entries()) {
      const [r, t] = await Promise.all([ref.run(step), tgt.run(step)]);
      const what = `${i}: ${stepText(step)}`;
      out.reference.push({ step: what, result: r });
      out.target.push({ step: what, result: t });
    }
    if (process.env.DIFF_DUMP) console.log(JSON.stringify(out.reference, null, 1));
    expect(out.target).toEqual(out.reference);
    return out;
  } finally {
    ref.close();
    tgt.close();
  }
}

describe('watch stream (gRPC) against etcd', () => {
  test('watch ids, created and canceled responses, duplicate ids, empty ranges, cancels, progress', async () => {
    const p = '/dg/ids/';
    const res = await expectSameStream([
      { progress: true }, // no watcher yet: still answered
      { collect: 1 },
      { create: { key: `${p}a` } }, // id 0
      { create: { key: `${p}b`, watch_id: 5n } }, // explicit id 5
      { create: { key: `${p}c` } }, // id 1
      { create: { key: `${p}d`, watch_id: 5n } }, // duplicate id
      { create: { key: `${p}z`, range_end: `${p}a` } }, // empty range
      { create: { key: `${p}a`, range_end: `${p}a` } }, // empty range (start == end)
      { collect: 6 },
      { cancel: 1n },
      { cancel: 1n }, // already canceled: no answer
      { cancel: 99n }, // unknown: no answer
      { create: { key: `${p}e` } }, // the next free id: 2
      { create: { key: `${p}f`, watch_id: 1n } }, // a canceled id may be used again
      { progress: true },
      { collect: 4 },
      { put: `${p}a`, value: 'va' },
      { put: `${p}b`, value: 'vb' },
      { put: `${p}c`, value: 'not watched any more' },
      { put: `${p}f`, value: 'vf' },
      { collect: 3 },
      { cancel: 0n },
      { cancel: 5n },
      { progress: true },
      { collect: 3 },
    ]);
    expect(JSON.stringify(res.reference)).toContain('mvcc: duplicate watch ID provided on the WatchStream');
  });

  test('filters, prev_kv on puts and deletes, prefix and "\\0" range ends, txn order', async () => {
    const p = '/dg/filters/';
    await expectSameStream([
      { put: `${p}b`, value: 'b0' },
      { create: { key: p, range_end: '/dg/filters0', filters: [0] } }, // NOPUT
      { create: { key: p, range_end: '/dg/filters0', filters: [1], prev_kv: true } }, // NODELETE
      { create: { key: p, range_end: '/dg/filters0', filters: [0, 1] } }, // nothing at all
      { create: { key: `${p}b`, range_end: '\0', prev_kv: true } }, // every key from p/b on
      { create: { key: `${p}b`, prev_kv: true } },
      { collect: 5 },
      { put: `${p}a`, value: 'a1' },
      { put: `${p}b`, value: 'b1' },
      { txn: [{ request_put: { key: b(`${p}c`), value: b('c1') } }, { request_delete_range: { key: b(`${p}b`) } }, { request_put: { key: b(`${p}a`), value: b('a2') } }] },
      { del: p, end: '/dg/filters0', prevKv: true },
      { put: '/dg/filters1', value: 'after the prefix' },
      { collect: 11 },
    ]);
  });

  test('start revisions: replay in one response, the current revision, the future, negative', async () => {
    const p = '/dg/start/';
    await expectSameStream([
      { put: `${p}k`, value: '1' }, // R+1
      { put: `${p}k`, value: '2' }, // R+2
      { put: `${p}j`, value: '3' }, // R+3
      { del: `${p}k` }, // R+4
      { create: { key: p, range_end: '/dg/start0', start: { rel: 1 }, prev_kv: true } },
      { collect: 2 }, // created, then every past revision in one response
      { create: { key: p, range_end: '/dg/start0', start: { rel: 4 } } },
      { collect: 2 },
      { create: { key: p, range_end: '/dg/start0', start: { rel: 6 } } }, // the future
      // Negative start revisions: etcd compares them with its compacted revision, which is
      // -1 before any compaction: -1 is not below it (the watcher replays nothing and goes
      // on from now), -3 is (canceled with compact_revision -1).
      { create: { key: p, range_end: '/dg/start0', start: -1n } },
      { create: { key: p, range_end: '/dg/start0', start: -3n } },
      { collect: 4 },
      { put: `${p}k`, value: '5' }, // R+5: only the live watchers (ids 0, 1, 3)
      { put: `${p}k`, value: '6' }, // R+6: and the one from the future (id 2)
      { collect: 7 },
    ]);
  });

  test('fragment: a response of max-request-bytes + 512 KiB or more is split when the watcher allows it', async () => {
    const p = '/dg/fragment/';
    const big = (c: string): Buffer => Buffer.alloc(450 * 1024, c);
    await expectSameStream([
      { put: `${p}a`, value: big('a') }, // R+1
      { put: `${p}b`, value: big('b') }, // R+2
      { put: `${p}c`, value: big('c') }, // R+3
      { put: `${p}d`, value: big('d') }, // R+4
      { put: `${p}a`, value: big('e') }, // R+5: prev_kv is a's 450 KiB
      { put: `${p}f`, value: 'small' }, // R+6
      // 5 x 450 KiB + a little: 2.2 MiB >= 2 MiB: fragments [R+1..R+4] and [R+5, R+6].
      { create: { key: p, range_end: '/dg/fragment0', start: { rel: 1 }, fragment: true } },
      { collect: 3 },
      // 4 x 450 KiB: 1.8 MiB, under etcd's limit (1.5 MiB + 512 KiB): one response.
      { create: { key: p, range_end: '/dg/fragment0', start: { rel: 2 }, fragment: true } },
      { collect: 2 },
      // The same with prev_kv: 5 x 450 KiB again, split before R+5.
      { create: { key: p, range_end: '/dg/fragment0', start: { rel: 2 }, fragment: true, prev_kv: true } },
      { collect: 3 },
      // Not asked for: one response whatever its size.
      { create: { key: p, range_end: '/dg/fragment0', start: { rel: 1 } } },
      { collect: 2 },
      // Live: a single revision of two 450 KiB puts stays whole, for each of the 4 watchers.
      { txn: [{ request_put: { key: b(`${p}g`), value: big('g') } }, { request_put: { key: b(`${p}h`), value: big('h') } }] },
      { collect: 4 },
    ]);
  });

  test('compaction: below it the watch is canceled with compact_revision; at it, puts of that revision without prev_kv (runs last)', async () => {
    const p = '/dg/compact/';
    await expectSameStream([
      { put: `${p}k`, value: '1' }, // R+1
      { put: `${p}j`, value: '1' }, // R+2
      { txn: [{ request_delete_range: { key: b(`${p}k`) } }, { request_put: { key: b(`${p}j`), value: b('2') } }] }, // R+3
      { put: `${p}j`, value: '3' }, // R+4
      { compact: { rel: 3 } },
      { create: { key: p, range_end: '/dg/compact0', start: { rel: 2 } } },
      { collect: 2 },
      { create: { key: p, range_end: '/dg/compact0', start: { rel: 3 }, prev_kv: true } },
      { collect: 2 },
      { create: { key: p, range_end: '/dg/compact0', start: 1n } },
      { collect: 2 },
      { put: `${p}j`, value: '5' },
      { collect: 1 },
    ]);
  });
});
