/**
 * Goal: `client.watch()` delivers what etcd's Watch service defines, through one shared
 * stream: events of a key, a prefix, a range; replay from a past revision; prevKv; the
 * noPut/noDelete filters; all events of one txn in one response at one revision; cancel (also
 * by `break` and AbortSignal); refused creates and compacted start revisions ending the
 * iteration with typed errors; progress requests; fragmented responses joined again; and the
 * bounded per-watcher queue (a slow consumer loses and duplicates nothing, or learns of a
 * compaction).
 * Method: a real etcd 3.4 (helpers/server.ts; coord with CLIENT_TEST_TARGET=coord). Each test
 * uses its own key prefix and compares the delivered events with what it wrote (keys, values,
 * types, and revisions taken from the write responses). A second member started with a small
 * --max-request-bytes makes etcd fragment a large history batch; a raw stream checks that it
 * really did.
 */
import * as grpc from '@grpc/grpc-js';
import {
  AbortError,
  Client,
  ClientClosedError,
  WatchCanceledError,
  WatchCompactedError,
  compare,
  op,
  type WatchEvent,
  type WatchResponse,
  type Watcher,
} from '../src';
import { startServer, type TestServer } from './helpers/server';

let server: TestServer;
let client: Client;
const extraClients: Client[] = [];

beforeAll(async () => {
  server = await startServer();
  client = new Client({ endpoints: [server.endpoint] });
});

afterAll(async () => {
  client?.close();
  for (const c of extraClients) c.close();
  await server?.destroy();
});

function newClient(endpoint = server.endpoint): Client {
  const c = new Client({ endpoints: [endpoint] });
  extraClients.push(c);
  return c;
}

/** The next response, or a clear failure instead of a hung test. */
async function nextWithin(w: Watcher, ms = 10000): Promise<IteratorResult<WatchResponse>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no watch response within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([w.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Read responses until `count` events have arrived (progress notifications are skipped). */
async function takeEvents(w: Watcher, count: number): Promise<{ events: WatchEvent[]; responses: WatchResponse[] }> {
  const events: WatchEvent[] = [];
  const responses: WatchResponse[] = [];
  while (events.length < count) {
    const r = await nextWithin(w);
    if (r.done) throw new Error(`watcher ended after ${events.length} of ${count} events`);
    if (r.value.progressNotify) continue;
    responses.push(r.value);
    events.push(...r.value.events);
  }
  return { events, responses };
}

const summary = (events: WatchEvent[]) => events.map((e) => `${e.type} ${e.kv.keyString()}=${e.kv.valueString()} @${e.kv.modRevision}`);

describe('events', () => {
  it('watches one key: puts and deletes in order, int64-exact, nothing for other keys', async () => {
    const w = client.watch({ key: 'one/k' });
    await w.ready();
    const p1 = await client.put('one/k', 'v1');
    await client.put('one/other', 'x');
    const p2 = await client.put('one/k', 'v2');
    const d = await client.delete('one/k');
    const { events } = await takeEvents(w, 3);
    w.cancel();
    expect(summary(events)).toEqual([
      `put one/k=v1 @${p1.header.revision}`,
      `put one/k=v2 @${p2.header.revision}`,
      `delete one/k= @${d.header.revision}`,
    ]);
    expect(typeof events[0].kv.modRevision).toBe('bigint');
    expect(events[0].kv.createRevision).toBe(p1.header.revision);
    expect(events[1].kv.version).toBe(2n);
    expect(events[1].kv.createRevision).toBe(p1.header.revision);
    expect(events[2].kv.version).toBe(0n);
    expect(events[0].prevKv).toBeUndefined();
  });

  it('watches a prefix, a rangeEnd and fromKey', async () => {
    const prefix = client.watch({ key: 'pre/a/', prefix: true });
    const range = client.watch({ key: 'pre/a/2', rangeEnd: 'pre/a/4' });
    const from = client.watch({ key: 'pre/b', fromKey: true });
    await Promise.all([prefix.ready(), range.ready(), from.ready()]);
    for (const k of ['pre/a/1', 'pre/a/2', 'pre/a/3', 'pre/a/4', 'pre/a', 'pre/b', 'pre/c']) await client.put(k, 'x');
    const keysOf = async (w: Watcher, n: number) => (await takeEvents(w, n)).events.map((e) => e.kv.keyString());
    expect(await keysOf(prefix, 4)).toEqual(['pre/a/1', 'pre/a/2', 'pre/a/3', 'pre/a/4']);
    expect(await keysOf(range, 2)).toEqual(['pre/a/2', 'pre/a/3']);
    expect(await keysOf(from, 2)).toEqual(['pre/b', 'pre/c']);
    for (const w of [prefix, range, from]) w.cancel();
  });

  it('replays history from a past startRevision, then goes on live', async () => {
    const first = await client.put('replay/k', 'a');
    await client.put('replay/k', 'b');
    await client.delete('replay/k');
    const w = client.watch({ key: 'replay/', prefix: true, startRevision: first.header.revision });
    const past = await takeEvents(w, 3);
    expect(past.events.map((e) => e.type)).toEqual(['put', 'put', 'delete']);
    expect(past.events[0].kv.modRevision).toBe(first.header.revision);
    const live = await client.put('replay/k', 'c');
    const { events } = await takeEvents(w, 1);
    expect(summary(events)).toEqual([`put replay/k=c @${live.header.revision}`]);
    expect(w.lastRevision).toBe(live.header.revision);
    w.cancel();
  });

  it('gives the previous pair with prevKv, for puts and deletes', async () => {
    const w = client.watch({ key: 'prev/k', prevKv: true });
    await w.ready();
    await client.put('prev/k', 'one');
    await client.put('prev/k', 'two');
    await client.delete('prev/k');
    const { events } = await takeEvents(w, 3);
    w.cancel();
    expect(events[0].prevKv).toBeUndefined();
    expect(events[1].prevKv!.valueString()).toBe('one');
    expect(events[2].type).toBe('delete');
    expect(events[2].prevKv!.valueString()).toBe('two');
    expect(events[2].prevKv!.version).toBe(2n);
  });

  it('filters puts with noPut and deletes with noDelete', async () => {
    const noPut = client.watch({ key: 'filt/', prefix: true, noPut: true });
    const noDelete = client.watch({ key: 'filt/', prefix: true, noDelete: true });
    await Promise.all([noPut.ready(), noDelete.ready()]);
    await client.put('filt/a', '1');
    await client.delete('filt/a');
    await client.put('filt/b', '2');
    await client.delete('filt/b');
    expect(summary((await takeEvents(noPut, 2)).events).map((s) => s.split(' @')[0])).toEqual(['delete filt/a=', 'delete filt/b=']);
    expect(summary((await takeEvents(noDelete, 2)).events).map((s) => s.split(' @')[0])).toEqual(['put filt/a=1', 'put filt/b=2']);
    noPut.cancel();
    noDelete.cancel();
  });

  it('delivers all events of one txn in one response, at one revision', async () => {
    const w = client.watch({ key: 'txn/', prefix: true });
    await w.ready();
    await client.put('txn/c', 'old');
    const t = await client.txn({
      compare: [compare.version('txn/a', '=', 0)],
      success: [op.put('txn/a', '1'), op.put('txn/b', '2'), op.delete('txn/c')],
    });
    expect(t.succeeded).toBe(true);
    const first = await takeEvents(w, 1);
    const { responses } = await takeEvents(w, 3);
    w.cancel();
    expect(first.events[0].kv.keyString()).toBe('txn/c');
    expect(responses).toHaveLength(1);
    expect(responses[0].events.map((e) => `${e.type} ${e.kv.keyString()}`)).toEqual(['put txn/a', 'put txn/b', 'delete txn/c']);
    expect(new Set(responses[0].events.map((e) => e.kv.modRevision))).toEqual(new Set([t.header.revision]));
  });
});

describe('cancel and errors', () => {
  it('cancel() ends the iteration and stops deliveries; break in for-await cancels too', async () => {
    const w = client.watch({ key: 'cancel/k' });
    await w.ready();
    await client.put('cancel/k', '1');
    expect((await takeEvents(w, 1)).events).toHaveLength(1);
    w.cancel();
    await client.put('cancel/k', '2');
    expect(await nextWithin(w)).toEqual({ value: undefined, done: true });
    expect(w.done).toBe(true);

    const w2 = client.watch({ key: 'cancel/k' });
    await w2.ready();
    await client.put('cancel/k', '3');
    let seen = 0;
    for await (const res of w2) {
      seen += res.events.length;
      break;
    }
    expect(seen).toBe(1);
    expect(w2.done).toBe(true);
    expect(client.watches.size).toBe(0);
  });

  it('matches create answers in order, also around a watcher cancelled before its answer', async () => {
    const c = newClient();
    const first = c.watch({ key: 'order/0' });
    await first.ready(); // the stream is open: the next creates go out at once
    const dropped = c.watch({ key: 'order/1' });
    dropped.cancel(); // its create is in flight; its answer must not be given to the next one
    const next = c.watch({ key: 'order/2' });
    await next.ready();
    await expect(dropped.ready()).rejects.toBeInstanceOf(WatchCanceledError);
    expect(await nextWithin(dropped)).toEqual({ value: undefined, done: true });
    const p1 = await c.put('order/1', 'x');
    const p2 = await c.put('order/2', 'y');
    expect(summary((await takeEvents(next, 1)).events)).toEqual([`put order/2=y @${p2.header.revision}`]);
    expect(p1.header.revision).toBeLessThan(p2.header.revision);
    expect(c.watches.size).toBe(2);
    first.cancel();
    next.cancel();
    expect(c.watches.size).toBe(0);
  });

  it('many watchers share one stream, each getting only its own events', async () => {
    const c = newClient();
    const count = 40;
    const watchers = Array.from({ length: count }, (_, i) => c.watch({ key: `many/${i}` }));
    await Promise.all(watchers.map((w) => w.ready()));
    expect(new Set(watchers.map((w) => w.id)).size).toBe(count);
    const revs: bigint[] = [];
    for (let i = count - 1; i >= 0; i--) revs[i] = (await c.put(`many/${i}`, `v${i}`)).header.revision;
    for (let i = 0; i < count; i++) {
      const { events } = await takeEvents(watchers[i], 1);
      expect(summary(events)).toEqual([`put many/${i}=v${i} @${revs[i]}`]);
    }
    expect(c.watches.streamsOpened).toBe(1);
    watchers.forEach((w) => w.cancel());
  });

  it('ends with WatchCompactedError when the start revision is compacted', async () => {
    const a = await client.put('compacted/k', '1');
    const b = await client.put('compacted/k', '2');
    await client.compact(b.header.revision);
    const w = client.watch({ key: 'compacted/k', startRevision: a.header.revision });
    const err = await nextWithin(w).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchCompactedError);
    expect((err as WatchCompactedError).compactRevision).toBe(b.header.revision);
    expect((err as WatchCompactedError).requestedRevision).toBe(a.header.revision);
    expect(w.done).toBe(true);
    expect(await nextWithin(w)).toEqual({ value: undefined, done: true });
  });

  it('ends with WatchCanceledError carrying the reason when the server refuses the create', async () => {
    const w = client.watch({ key: 'refused/b', rangeEnd: 'refused/a' });
    const err = await w.ready().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchCanceledError);
    expect((err as WatchCanceledError).details).toBe('mvcc: watcher range is empty');
    await expect(w.next()).rejects.toBeInstanceOf(WatchCanceledError);
  });

  it('ends with AbortError when its signal aborts', async () => {
    const ac = new AbortController();
    const w = client.watch({ key: 'abort/k', signal: ac.signal });
    await w.ready();
    const pending = w.next();
    ac.abort(new Error('stop'));
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    const pre = new AbortController();
    pre.abort();
    await expect(client.watch({ key: 'abort/k', signal: pre.signal }).next()).rejects.toBeInstanceOf(AbortError);
  });

  it('ends every watcher with ClientClosedError when the client closes', async () => {
    const c = newClient();
    const w = c.watch({ key: 'closed/k' });
    await w.ready();
    const pending = w.next();
    c.close();
    await expect(pending).rejects.toBeInstanceOf(ClientClosedError);
    expect(() => c.watch({ key: 'closed/k' })).toThrow(ClientClosedError);
  });
});

describe('progress', () => {
  it('watchProgress() answers with the current revision and reaches every watcher', async () => {
    const w = client.watch({ key: 'progress/k' });
    await w.ready();
    const put = await client.put('progress/other', 'x');
    const header = await client.watchProgress();
    expect(header.revision).toBeGreaterThanOrEqual(put.header.revision);
    const r = await nextWithin(w);
    expect(r.value).toMatchObject({ progressNotify: true, events: [], watchId: -1n });
    expect((r.value as WatchResponse).header.revision).toBe(header.revision);
    w.cancel();
  });
});

describe('back-pressure', () => {
  it('a slow consumer beyond queuedResponsesMax loses and duplicates nothing', async () => {
    const w = client.watch({ key: 'slow/', prefix: true, queuedResponsesMax: 4 });
    await w.ready();
    const firstId = w.id;
    const revs: bigint[] = [];
    for (let i = 0; i < 30; i++) revs.push((await client.put(`slow/${i % 3}`, `v${i}`)).header.revision);
    // Nobody reads for a while: the queue fills and the watch is parked on the server side.
    await new Promise((r) => setTimeout(r, 300));
    const { events } = await takeEvents(w, 30);
    expect(events.map((e) => e.kv.modRevision)).toEqual(revs);
    expect(events.map((e) => e.kv.valueString())).toEqual(revs.map((_, i) => `v${i}`));
    // It was re-created (a new server-side id) to catch up from history.
    expect(w.id).not.toBe(firstId);
    const live = await client.put('slow/x', 'live');
    expect(summary((await takeEvents(w, 1)).events)).toEqual([`put slow/x=live @${live.header.revision}`]);
    w.cancel();
  });

  it('a slow consumer whose missed history was compacted gets WatchCompactedError after its queue', async () => {
    const w = client.watch({ key: 'slowc/', prefix: true, queuedResponsesMax: 2 });
    await w.ready();
    const revs: bigint[] = [];
    for (let i = 0; i < 6; i++) revs.push((await client.put('slowc/k', `v${i}`)).header.revision);
    await new Promise((r) => setTimeout(r, 300));
    await client.compact(revs[5]);
    // The two queued responses are delivered, then the resume from revs[2] hits the compaction.
    const { events } = await takeEvents(w, 2);
    expect(events.map((e) => e.kv.modRevision)).toEqual(revs.slice(0, 2));
    const err = await nextWithin(w).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchCompactedError);
    expect((err as WatchCompactedError).requestedRevision).toBe(revs[2]);
    expect((err as WatchCompactedError).compactRevision).toBe(revs[5]);
  });
});

describe('fragments', () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startServer(['--max-request-bytes', '4096']);
  });
  afterAll(async () => {
    await small?.destroy();
  });

  it('joins a fragmented response before delivering it', async () => {
    // etcd fragments a response above --max-request-bytes + 512 KiB of gRPC overhead
    // (v3rpc/watch.go): 160 events of 3800 bytes in one history batch are about 600 KiB.
    const c = newClient(small.endpoint);
    const value = 'x'.repeat(3800);
    const count = 160;
    const revs: bigint[] = [];
    for (let i = 0; i < count; i++) revs.push((await c.put(`frag/${String(i).padStart(3, '0')}`, value)).header.revision);

    // The server really splits this history batch (checked on a raw stream).
    const raw = c.raw().watch;
    const call = (raw.Watch as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, { fragment: boolean; created: boolean; events: unknown[] }>).call(
      raw,
      new grpc.Metadata(),
    );
    const parts: boolean[] = [];
    let rawEvents = 0;
    await new Promise<void>((resolve, reject) => {
      call.on('data', (r) => {
        if (r.created) return;
        parts.push(r.fragment);
        rawEvents += r.events.length;
        if (!r.fragment && rawEvents >= count) resolve();
      });
      call.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
      call.write({ create_request: { key: Buffer.from('frag/'), range_end: Buffer.from('frag0'), start_revision: revs[0].toString(), fragment: true } });
    });
    call.cancel();
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.slice(0, -1).every((f) => f)).toBe(true);

    const w = c.watch({ key: 'frag/', prefix: true, startRevision: revs[0], fragment: true });
    const r = (await nextWithin(w)).value as WatchResponse;
    w.cancel();
    expect(r.events.map((e) => e.kv.modRevision)).toEqual(revs);
    expect(r.events.every((e) => e.kv.value.length === 3800)).toBe(true);
  });
});
