/**
 * A requested progress notification never runs ahead of the events on its stream.
 *
 * Goal: a WatchProgressRequest is answered (watch_id -1, header revision R) only when every
 * watcher of the stream has been sent every event up to R, and it is answered even when it
 * arrives while watchers are still catching up: once they have caught up. This is etcd's
 * behaviour since PR #15237 (issue #15220, backported to 3.4) and #17557; etcd 3.4.23
 * itself answers at once with the current revision even if the stream's watchers are
 * behind (the bug those PRs fixed), so this suite runs against coord only. Clients such
 * as Kubernetes' watch cache use the notification to know they have seen everything up
 * to R; an answer that comes early breaks that, and no answer at all leaves them waiting.
 *
 * Method: a real coord server; 60 revisions of 10 KiB values are written; 30 watchers from
 * revision 1 are created on one stream whose client does not read, so the server's stream
 * backs up and most watchers stay behind (unsynced); a progress request is sent; then the
 * client reads again. The progress response must arrive exactly once, after all 30
 * watchers have received all 60 events, with a header revision >= the last event's. A
 * second progress request, with everything synced, is answered at once with the current
 * revision.
 */
import { EtcdGrpc } from '../harness/etcd-grpc';
import { Member, sleep } from '../harness/proc';
import { startCoord } from '../harness/coord';
import { targetKind } from '../harness/target';

const REVISIONS = 60;
const WATCHERS = 30;

const suite = targetKind('WATCH_TARGET') === 'coord' ? describe : describe.skip;

suite('requested watch progress', () => {
  let member: Member | undefined;
  let conn: EtcdGrpc | undefined;

  afterAll(async () => {
    conn?.close();
    await member?.destroy();
  }, 30_000);

  test('is deferred until every watcher of the stream has caught up, never dropped', async () => {
    member = await startCoord();
    conn = new EtcdGrpc(member.endpoint);
    const P = '/progress/';
    let last = 0n;
    for (let i = 0; i < REVISIONS; i++) last = BigInt((await conn.put(`${P}k${i % 7}`, Buffer.alloc(10 * 1024, 97 + (i % 26)))).header.revision);

    const s = conn.watch();
    s.pause();
    for (let i = 0; i < WATCHERS; i++) s.create({ key: Buffer.from(P), range_end: Buffer.from('/progress0'), start_revision: 1n });
    await sleep(500); // the server queues what it can, then stops: the client is not reading
    s.progress();
    await sleep(200);
    s.resume();

    const arrived = await s.waitFor((x) => x.responses.some((r) => r.watch_id === '-1'), 20_000);
    await sleep(300);
    expect(s.error).toBeUndefined();
    expect(arrived).toBe(true);
    const at = s.responses.findIndex((r) => r.watch_id === '-1');
    const progressRev = BigInt(s.responses[at].header.revision);
    expect(progressRev).toBeGreaterThanOrEqual(last);
    const before = s.responses.slice(0, at);
    const ids = before.filter((r) => r.created).map((r) => r.watch_id);
    expect(ids.length).toBe(WATCHERS);
    for (const id of ids) {
      const revs = before.filter((r) => r.watch_id === id).flatMap((r) => r.events.map((e) => BigInt(e.kv.mod_revision)));
      expect({ watcher: id, events: revs.length, last: revs[revs.length - 1] }).toEqual({ watcher: id, events: REVISIONS, last });
    }
    expect(s.responses.filter((r) => r.watch_id === '-1').length).toBe(1);

    // Everything synced now: the next request is answered at once, with the current revision.
    const n = s.responses.length;
    s.progress();
    expect(await s.waitFor((x) => x.responses.length > n, 5000)).toBe(true);
    expect({ watch_id: s.responses[n].watch_id, revision: s.responses[n].header.revision, events: s.responses[n].events.length }).toEqual({
      watch_id: '-1',
      revision: last.toString(),
      events: 0,
    });
    s.close();
  }, 60_000);
});
