/**
 * Goal: watchers survive the loss of their stream. When the member is stopped (SIGTERM, as an
 * operator or a rolling upgrade does) and started again on the same data dir and ports, every
 * watcher is re-created on a new stream from the revision after the last one it received:
 * no event written before, during or after the outage is lost, none is delivered twice, and a
 * watcher whose create had not been answered yet still starts where it should.
 * Method: one restartable member (helpers/server.ts; etcd 3.4, or coord with
 * CLIENT_TEST_TARGET=coord). A writer puts keys in a loop while the member is stopped and
 * restarted (writes that fail during the outage are recorded and skipped). The events each
 * watcher delivered are then compared with the authoritative history: a fresh watch, on a
 * fresh client, replaying the same range from the same start revision. The sequences must be
 * equal, revisions strictly increasing, and every acknowledged write must be in them. The
 * same check runs in a 3-member cluster where the member serving the watch stream is stopped
 * and the watchers fail over to another endpoint.
 */
import { Client, type WatchEvent, type WatchResponse, type Watcher } from '../src';
import { startCluster, startServer, type TestServer } from './helpers/server';

let server: TestServer;
const clients: Client[] = [];

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.destroy();
});

function newClient(): Client {
  const c = new Client({ endpoints: [server.endpoint], callTimeoutMs: 2000, dialTimeoutMs: 1000 });
  clients.push(c);
  return c;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function nextWithin(w: Watcher, ms: number): Promise<IteratorResult<WatchResponse>> {
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

/** Collect events until one for `lastKey` arrives. */
async function collectUntil(w: Watcher, lastKey: string): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  for (;;) {
    const r = await nextWithin(w, 30000);
    if (r.done) throw new Error(`watcher ended after ${events.length} events`);
    events.push(...r.value.events);
    if (r.value.events.some((e) => e.kv.keyString() === lastKey)) return events;
  }
}

const ids = (events: WatchEvent[]) => events.map((e) => `${e.type} ${e.kv.keyString()}=${e.kv.valueString()} @${e.kv.modRevision}`);

function expectStrictlyIncreasing(events: WatchEvent[]): void {
  for (let i = 1; i < events.length; i++) expect(events[i].kv.modRevision).toBeGreaterThan(events[i - 1].kv.modRevision);
}

it('resumes every watcher after the member is stopped and restarted: no gap, no duplicate', async () => {
  const client = newClient();
  const start = await client.put('resume/begin', 'x');
  const from = start.header.revision;

  const live = client.watch({ key: 'resume/', prefix: true }); // from now
  const replay = client.watch({ key: 'resume/', prefix: true, startRevision: from }); // from the past
  const single = client.watch({ key: 'resume/k/3', prevKv: true });
  await Promise.all([live.ready(), replay.ready(), single.ready()]);
  const liveFrom = live.lastRevision + 1n;

  const acknowledged: bigint[] = [];
  let failed = 0;
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        const r = await client.put(`resume/k/${i % 7}`, `v${i}`, { timeoutMs: 1000 });
        acknowledged.push(r.header.revision);
      } catch {
        failed++;
        await sleep(50);
      }
      await sleep(5);
    }
  })();

  await sleep(300);
  await server.stop('SIGTERM');
  await sleep(500);
  await server.start();
  // Writes after the restart, and a watcher created while the others are resuming.
  const late = client.watch({ key: 'resume/', prefix: true, startRevision: from });
  await sleep(500);
  stop = true;
  await writer;
  await client.put('resume/end', 'x');

  expect(failed).toBeGreaterThan(0); // the outage was real
  expect(client.watches.streamsOpened).toBeGreaterThanOrEqual(2);

  // The authoritative history, from a client that never saw the outage.
  const fresh = newClient();
  const truth = fresh.watch({ key: 'resume/', prefix: true, startRevision: from });
  const history = await collectUntil(truth, 'resume/end');
  truth.cancel();
  expectStrictlyIncreasing(history);
  const historyRevs = new Set(history.map((e) => e.kv.modRevision));
  for (const rev of acknowledged) expect(historyRevs.has(rev)).toBe(true);

  const gotReplay = await collectUntil(replay, 'resume/end');
  const gotLate = await collectUntil(late, 'resume/end');
  const gotLive = await collectUntil(live, 'resume/end');
  expect(ids(gotReplay)).toEqual(ids(history));
  expect(ids(gotLate)).toEqual(ids(history));
  expect(ids(gotLive)).toEqual(ids(history.filter((e) => e.kv.modRevision >= liveFrom)));

  const singleTruth = history.filter((e) => e.kv.keyString() === 'resume/k/3' && e.kv.modRevision >= liveFrom);
  const gotSingle: WatchEvent[] = [];
  while (gotSingle.length < singleTruth.length) {
    const r = await nextWithin(single, 10000);
    gotSingle.push(...(r.value as WatchResponse).events);
  }
  expect(ids(gotSingle)).toEqual(ids(singleTruth));
  // prevKv survives the resume: each event's previous value is the one before it.
  for (let i = 1; i < gotSingle.length; i++) expect(gotSingle[i].prevKv?.valueString()).toBe(gotSingle[i - 1].kv.valueString());

  for (const w of [live, replay, single, late]) w.cancel();
});

it('a watcher created while the member is down starts once it is back, from its start revision', async () => {
  const client = newClient();
  const before = await client.put('down/k', 'before');
  await server.stop('SIGTERM');
  const w = client.watch({ key: 'down/k', startRevision: before.header.revision });
  await sleep(300);
  await server.start();
  const after = await client.put('down/k', 'after');
  const got: WatchEvent[] = [];
  while (got.length < 2) {
    const r = await nextWithin(w, 30000);
    got.push(...(r.value as WatchResponse).events);
  }
  expect(ids(got)).toEqual([`put down/k=before @${before.header.revision}`, `put down/k=after @${after.header.revision}`]);
  w.cancel();
});

describe('three-member cluster', () => {
  let members: TestServer[];
  beforeAll(async () => {
    members = await startCluster(3);
  });
  afterAll(async () => {
    await Promise.all((members ?? []).map((m) => m.destroy()));
  });

  it('fails the watchers over to another member with no gap and no duplicate', async () => {
    const watching = new Client({ endpoints: members.map((m) => m.endpoint), dialTimeoutMs: 500, callTimeoutMs: 3000 });
    const writing = new Client({ endpoints: [members[1].endpoint, members[2].endpoint], callTimeoutMs: 3000 });
    clients.push(watching, writing);
    const start = await writing.put('fo/begin', 'x');
    const live = watching.watch({ key: 'fo/', prefix: true });
    const replay = watching.watch({ key: 'fo/', prefix: true, startRevision: start.header.revision });
    await Promise.all([live.ready(), replay.ready()]);
    const liveFrom = live.lastRevision + 1n;
    expect(watching.activeEndpoint).toBe(members[0].endpoint);

    let stop = false;
    const acknowledged: bigint[] = [];
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          acknowledged.push((await writing.put(`fo/k/${i % 5}`, `v${i}`, { timeoutMs: 1000 })).header.revision);
        } catch {
          await sleep(50);
        }
        await sleep(5);
      }
    })();
    await sleep(300);
    await members[0].stop('SIGTERM');
    try {
      await sleep(1500);
      stop = true;
      await writer;
      await writing.put('fo/end', 'x');
      const truth = writing.watch({ key: 'fo/', prefix: true, startRevision: start.header.revision });
      const history = await collectUntil(truth, 'fo/end');
      truth.cancel();
      expectStrictlyIncreasing(history);
      const revs = new Set(history.map((e) => e.kv.modRevision));
      for (const rev of acknowledged) expect(revs.has(rev)).toBe(true);
      expect(ids(await collectUntil(replay, 'fo/end'))).toEqual(ids(history));
      expect(ids(await collectUntil(live, 'fo/end'))).toEqual(ids(history.filter((e) => e.kv.modRevision >= liveFrom)));
      expect(watching.watches.streamsOpened).toBeGreaterThanOrEqual(2);
    } finally {
      await members[0].start();
    }
    live.cancel();
    replay.cancel();
  });
});
