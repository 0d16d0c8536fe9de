/**
 * Goal: the peer transport delivers Raft messages between members in order, streams
 * snapshots beside the message loop, reports failures the way the Raft driver needs them
 * (onUnreachable, snapshot 'failure', removal by 410), refuses what it must (another
 * cluster: 412; a removed member: 410; garbage: 400; too large: 413) and keeps one slow or
 * dead peer from affecting the others. The JSON RPC round-trips values and errors.
 * Method: real transports, each behind its own node:http server on a free loopback port;
 * peers that are down (a closed port), stalled (a server that accepts and never answers),
 * restarted (a new server on the same port) or from another cluster. Conditions are
 * awaited by polling, never by fixed sleeps. The message tests run twice: a POST per batch
 * (the default) and `streaming: true` (frames on one long-lived request per peer).
 */
import * as http from 'node:http';
import { encodeMessages } from '../../src/member/peer-codec';
import {
  CLUSTER_MISMATCH_TEXT,
  HEADER_CLUSTER_ID,
  HEADER_FROM,
  PATH_MESSAGES,
  PeerTransport,
  PeerTransportError,
  type PeerTransportOptions,
} from '../../src/member/peer-transport';
import { message, type Message } from '../../src/raft/types';
import { A, B, C, CLUSTER, cleanups, closeServer, hb, listen, runCleanups, startMember, startMember as startMemberWith, waitFor, type Member } from './peer-helpers';

afterEach(runCleanups);

/** A server that accepts requests and never answers them (a SIGSTOPped peer, as far as TCP goes). */
async function startStalled(): Promise<{ url: string; requests: number }> {
  const s = { url: '', requests: 0 };
  const server = http.createServer((req) => {
    s.requests++;
    req.resume();
  });
  const port = await listen(server);
  s.url = `http://127.0.0.1:${port}`;
  cleanups.push(() => closeServer(server));
  return s;
}

/** A loopback URL where nothing listens. */
async function deadUrl(): Promise<string> {
  const server = http.createServer();
  const port = await listen(server);
  await closeServer(server);
  return `http://127.0.0.1:${port}`;
}

const app = (from: bigint, to: bigint, i: number): Message =>
  message({ type: 'app', from, to, term: 2n, logTerm: 2n, index: BigInt(i), commit: 1n, entries: [{ term: 2n, index: BigInt(i + 1), type: 'normal', data: Buffer.from(`entry ${i}`) }] });

function rawPost(url: string, path: string, headers: http.OutgoingHttpHeaders, body: Buffer | string, method = 'POST'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url + path, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const peerHeaders = (from: bigint, cluster = CLUSTER): http.OutgoingHttpHeaders => ({ [HEADER_CLUSTER_ID]: cluster.toString(16), [HEADER_FROM]: from.toString(16) });

async function rejection(p: Promise<unknown>): Promise<PeerTransportError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PeerTransportError);
    return e as PeerTransportError;
  }
  throw new Error('expected a rejection');
}

const MODES: [string, boolean][] = [
  ['posts', false],
  ['streaming', true],
];

describe.each(MODES)('peer transport (%s): messages', (_mode, streaming) => {
  const startMember = (id: bigint, opts: Partial<PeerTransportOptions> = {}, port = 0): Promise<Member> => startMemberWith(id, { streaming, ...opts }, port);

  it('delivers messages in order among three members, batching what queues up', async () => {
    const [a, b, c] = await Promise.all([startMember(A), startMember(B), startMember(C)]);
    for (const x of [a, b, c]) for (const y of [a, b, c]) if (x !== y) x.t.addPeer(y.id, [y.url]);
    const N = 600;
    for (let i = 0; i < N; i++) {
      a.t.send([app(A, B, i), app(A, C, i)]);
      b.t.send([hb(B, A, i)]);
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => b.got.length === N && c.got.length === N && a.got.length === N && a.t.stats().sent === 2 * N, 'all messages');
    expect(b.got.map((m) => Number(m.index))).toEqual([...Array(N).keys()]);
    expect(c.got.map((m) => Number(m.index))).toEqual([...Array(N).keys()]);
    expect(a.got.map((m) => Number(m.commit))).toEqual([...Array(N).keys()]);
    expect(Buffer.from(b.got[7].entries[0].data).toString()).toBe('entry 7');
    expect(b.got[7]).toMatchObject({ type: 'app', from: A, to: B, term: 2n, logTerm: 2n, commit: 1n });
    const s = a.t.stats();
    expect(s.sent).toBe(2 * N);
    expect(s.dropped).toBe(0);
    expect(s.batchesSent).toBeLessThan(N / 5); // everything sent during one POST rides in the next
    expect(b.t.stats().received).toBe(N);
    expect(a.unreachable).toEqual([]);
    expect(s.streamsOpened).toBe(streaming ? 2 : 0);
    expect(b.t.stats().streamsAccepted).toBe(streaming ? 1 : 0); // from A; C sends B nothing
  });

  it('reuses keep-alive connections for message POSTs', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.addPeer(B, [b.url]);
    for (let i = 0; i < 50; i++) {
      a.t.send([hb(A, B, i)]);
      await waitFor(() => b.got.length === i + 1 && a.t.stats().batchesSent === i + 1, `heartbeat ${i} acknowledged`);
    }
    expect(b.connections).toBeLessThanOrEqual(2);
    expect(a.t.stats()).toMatchObject({ streamsOpened: streaming ? 1 : 0, streamsFailed: 0 });
  });

  it('drops messages to unknown peers and received messages addressed to another member, counting them', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.send([hb(A, C, 1)]);
    expect(a.t.stats().droppedUnknownPeer).toBe(1);
    const r = await rawPost(b.url, PATH_MESSAGES, peerHeaders(A), encodeMessages([hb(A, C, 1), hb(A, B, 2), hb(A, C, 3)]));
    expect(r.status).toBe(204);
    expect(r.headers[HEADER_CLUSTER_ID]).toBe(CLUSTER.toString(16));
    expect(b.got.map((m) => m.commit)).toEqual([2n]);
    expect(b.t.stats()).toMatchObject({ droppedMisaddressed: 2, received: 1 });
  });

  it('refuses a local message type (assertion)', async () => {
    const a = await startMember(A);
    a.t.addPeer(B, ['http://127.0.0.1:1']);
    expect(() => a.t.send([message({ type: 'hup', to: B })])).toThrow(/assertion failed: a local message \(hup\)/);
  });

  it('refuses https and malformed peer URLs with a clear error', async () => {
    const a = await startMember(A);
    expect(() => a.t.addPeer(B, ['https://10.0.0.2:2380'])).toThrow(/ERR_PEER_URL_INVALID: https peer URLs are not supported yet/);
    expect(() => a.t.addPeer(B, ['not a url'])).toThrow(/ERR_PEER_URL_INVALID: invalid peer URL/);
    expect(() => a.t.addPeer(B, [])).toThrow(/has no URLs/);
    expect(() => a.t.addPeer(A, ['http://127.0.0.1:1'])).toThrow(/assertion failed: a member is not its own peer/);
  });
});

describe.each(MODES)('peer transport (%s): failures', (_mode, streaming) => {
  const startMember = (id: bigint, opts: Partial<PeerTransportOptions> = {}, port = 0): Promise<Member> => startMemberWith(id, { streaming, ...opts }, port);

  it('a peer that is down: onUnreachable (throttled), the batch dropped, a snapshot reported failure', async () => {
    const a = await startMember(A);
    a.t.addPeer(B, [await deadUrl()]);
    const started = Date.now();
    a.t.send([hb(A, B, 1)]);
    await waitFor(() => a.unreachable.length === 1, 'onUnreachable');
    expect(a.unreachable).toEqual([B]);
    a.t.send([message({ type: 'snap', from: A, to: B, term: 1n, snapshot: { meta: { index: 5n, term: 1n, confState: { voters: [A, B], learners: [] } }, data: Buffer.alloc(1000) } })]);
    await waitFor(() => a.snaps.length === 1, 'snapshot status');
    expect(a.snaps).toEqual([[B, 'failure']]);
    // Keep sending for a while: reports stay at most one per 100 ms.
    while (Date.now() - started < 400) {
      a.t.send([hb(A, B, 2)]);
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = Date.now() - started;
    expect(a.unreachable.length).toBeGreaterThanOrEqual(2);
    expect(a.unreachable.length).toBeLessThanOrEqual(Math.floor(elapsed / 100) + 1);
    const s = a.t.stats();
    expect(s.droppedFailed).toBeGreaterThan(0);
    expect(s.snapshotsFailed).toBe(1);
    expect(s.sent).toBe(0);
    expect(a.logs.some((l) => /messages to http:\/\/127\.0\.0\.1:\d+ failed: connect ECONNREFUSED/.test(l))).toBe(true);
  });

  it('a peer that restarts gets messages again', async () => {
    const a = await startMember(A);
    const b1 = await startMember(B);
    a.t.addPeer(B, [b1.url]);
    a.t.send([hb(A, B, 1)]);
    await waitFor(() => b1.got.length === 1, 'first heartbeat');
    await b1.t.close();
    await closeServer(b1.server);
    a.t.send([hb(A, B, 2)]);
    await waitFor(() => a.unreachable.length > 0, 'onUnreachable while down');
    const b2 = await startMember(B, {}, b1.port);
    let i = 3;
    await waitFor(() => {
      a.t.send([hb(A, B, i++)]);
      return b2.got.length > 0 && a.t.stats().peers[0].active;
    }, 'a heartbeat after the restart, acknowledged');
    expect(a.logs.filter((l) => l.includes('reachable at')).length).toBe(2);
    // Once per outage, not per POST: a POST finds the port closed; a stream is cut when the peer goes.
    expect(a.logs.filter((l) => /messages to .* failed: /.test(l)).length).toBe(1);
    if (!streaming) expect(a.logs.filter((l) => l.includes('failed: connect ECONNREFUSED')).length).toBe(1);
  });

  it('tries the next URL of a peer after a failure and stays with the one that works', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.addPeer(B, [await deadUrl(), b.url]);
    let i = 0;
    await waitFor(() => {
      a.t.send([hb(A, B, i++)]);
      return b.got.length > 0;
    }, 'delivery through the second URL');
    expect(a.unreachable).toEqual([B]);
    expect(a.t.stats().peers[0].url).toBe(b.url);
    const before = a.unreachable.length;
    for (let j = 0; j < 5; j++) {
      a.t.send([hb(A, B, 100 + j)]);
      await waitFor(() => b.got.some((m) => m.commit === BigInt(100 + j)), `heartbeat ${j}`);
    }
    expect(a.unreachable.length).toBe(before);
  });

  it('a stalled peer (accepts, never answers) does not delay messages to another peer', async () => {
    const stalled = await startStalled();
    const [a, b] = await Promise.all([startMember(A, { requestTimeoutMs: 1000 }), startMember(B)]);
    a.t.addPeer(C, [stalled.url]);
    a.t.addPeer(B, [b.url]);
    const latencies: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      const t0 = Date.now();
      a.t.send([hb(A, C, i), hb(A, B, i)]);
      await waitFor(() => b.got.length === i + 1, `heartbeat ${i} to the healthy peer`);
      latencies.push(Date.now() - t0);
    }
    // One POST (or unaccepted stream) in flight to the stalled peer at a time (a new one only after the 1 s timeout), the rest queued behind it.
    expect(stalled.requests).toBeLessThanOrEqual(1 + Math.floor((Date.now() - started) / 1000));
    expect(Math.max(...latencies)).toBeLessThan(500); // far below the 1 s the stalled POST holds
    await waitFor(() => a.unreachable.includes(C), 'the stalled POST times out', 3000);
    expect(a.unreachable).not.toContain(B);
    expect(a.logs.some((l) => l.includes('ETIMEDOUT'))).toBe(true);
  });

  it('bounds the queue per peer: beyond it new messages are dropped and counted', async () => {
    const stalled = await startStalled();
    const a = await startMember(A, { maxQueuedMessagesPerPeer: 10, requestTimeoutMs: 60_000 });
    a.t.addPeer(C, [stalled.url]);
    a.t.send([hb(A, C, 0)]);
    await waitFor(() => stalled.requests === 1, 'the first POST in flight');
    const batch: Message[] = [];
    for (let i = 1; i <= 100; i++) batch.push(hb(A, C, i));
    a.t.send(batch);
    const s = a.t.stats();
    expect(s.droppedQueueFull).toBe(90);
    expect(s.dropped).toBe(90);
    expect(s.peers[0]).toMatchObject({ id: C, queued: 10, inFlight: true });
    expect(a.logs.filter((l) => l.includes('send queue full')).length).toBe(1);
  });
});

describe.each(MODES)('peer transport (%s): snapshots', (_mode, streaming) => {
  const startMember = (id: bigint, opts: Partial<PeerTransportOptions> = {}, port = 0): Promise<Member> => startMemberWith(id, { streaming, ...opts }, port);

  it('streams a 5 MiB snapshot beside the message loop and reports finish', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.addPeer(B, [b.url]);
    // B's server holds the snapshot request unread until a heartbeat sent after it arrives:
    // if the snapshot blocked the message loop, this would never finish.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    b.server.removeAllListeners('request');
    b.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/raft/snapshot') {
        req.pause();
        void released.then(() => b.t.handle(req, res));
      } else b.t.handle(req, res);
    });
    const data = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(i, i);
    const snap = message({ type: 'snap', from: A, to: B, term: 3n, snapshot: { meta: { index: 77n, term: 3n, confState: { voters: [A, B], learners: [C] } }, data } });
    a.t.send([snap, hb(A, B, 1)]);
    await waitFor(() => b.got.length === 1, 'the heartbeat sent after the snapshot');
    expect(b.got[0].type).toBe('heartbeat');
    expect(a.snaps).toEqual([]);
    expect(a.t.stats().peers[0].snapshotInFlight).toBe(true);
    release();
    await waitFor(() => a.snaps.length === 1, 'snapshot status', 10_000);
    expect(a.snaps).toEqual([[B, 'finish']]);
    expect(b.got.length).toBe(2);
    const got = b.got[1];
    expect(got).toMatchObject({ type: 'snap', from: A, to: B, term: 3n });
    expect(got.snapshot!.meta).toEqual({ index: 77n, term: 3n, confState: { voters: [A, B], learners: [C] } });
    expect(Buffer.from(got.snapshot!.data.buffer, got.snapshot!.data.byteOffset, got.snapshot!.data.byteLength).equals(data)).toBe(true);
    expect(a.t.stats().snapshotsSent).toBe(1);
    expect(b.t.stats().snapshotsReceived).toBe(1);
  });

  it('a snapshot upload that makes no progress fails after snapshotTimeoutMs; messages keep flowing', async () => {
    const [a, b] = await Promise.all([startMember(A, { snapshotTimeoutMs: 300 }), startMember(B)]);
    a.t.addPeer(B, [b.url]);
    b.server.removeAllListeners('request');
    b.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/raft/snapshot') req.pause(); // never read: the sender's writes stop making progress
      else b.t.handle(req, res);
    });
    const t0 = Date.now();
    a.t.send([message({ type: 'snap', from: A, to: B, term: 1n, snapshot: { meta: { index: 5n, term: 1n, confState: { voters: [A, B], learners: [] } }, data: Buffer.alloc(8 * 1024 * 1024) } })]);
    for (let i = 0; i < 5; i++) {
      a.t.send([hb(A, B, i)]);
      await waitFor(() => b.got.length === i + 1, `heartbeat ${i}`);
    }
    await waitFor(() => a.snaps.length === 1, 'snapshot status');
    expect(a.snaps).toEqual([[B, 'failure']]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(a.logs.some((l) => /snapshot to .* failed: ETIMEDOUT no answer within 300 ms/.test(l))).toBe(true);
    expect(a.t.stats().peers[0]).toMatchObject({ snapshotInFlight: false, url: b.url });
  });

  it('a snapshot larger than the receiver allows is refused (413) and reported failure', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B, { maxSnapshotBytes: 100_000 })]);
    a.t.addPeer(B, [b.url]);
    a.t.send([message({ type: 'snap', from: A, to: B, term: 1n, snapshot: { meta: { index: 5n, term: 1n, confState: { voters: [A, B], learners: [] } }, data: Buffer.alloc(1024 * 1024) } })]);
    await waitFor(() => a.snaps.length === 1, 'snapshot status');
    expect(a.snaps).toEqual([[B, 'failure']]);
    expect(a.unreachable).toEqual([B]);
    expect(b.got).toEqual([]);
    expect(b.logs.some((l) => l.includes('exceeds the limit of 100000 bytes'))).toBe(true);
    expect(a.logs.some((l) => l.includes('failed: HTTP 413 body of'))).toBe(true);
    // The message loop is unaffected.
    a.t.send([hb(A, B, 1)]);
    await waitFor(() => b.got.length === 1, 'a heartbeat after the refused snapshot');
  });
});

describe.each(MODES)('peer transport (%s): cluster identity and removal', (_mode, streaming) => {
  const startMember = (id: bigint, opts: Partial<PeerTransportOptions> = {}, port = 0): Promise<Member> => startMemberWith(id, { streaming, ...opts }, port);

  it('a member of another cluster: 412, no delivery, the sender logs it once and reports unreachable', async () => {
    const [a, other] = await Promise.all([startMember(A), startMember(C, { clusterId: 0x1234n })]);
    a.t.addPeer(C, [other.url]);
    let i = 0;
    await waitFor(() => {
      a.t.send([hb(A, C, i++)]);
      return a.unreachable.length >= 2;
    }, 'two unreachable reports');
    expect(other.got).toEqual([]);
    expect(a.unreachable[0]).toBe(C);
    const lines = a.logs.filter((l) => l.includes('cluster ID mismatch'));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`ours ${CLUSTER.toString(16)}, theirs 1234`);
    expect(other.logs.filter((l) => l.includes('cluster ID mismatch')).length).toBe(1);
    const r = await rawPost(other.url, PATH_MESSAGES, peerHeaders(A), encodeMessages([hb(A, C, 1)]));
    expect(r.status).toBe(412);
    expect(r.body).toBe(CLUSTER_MISMATCH_TEXT);
    expect(other.got).toEqual([]);
  });

  it('a removed member gets 410 and learns it was removed (onRemoved, once)', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.addPeer(B, [b.url]);
    b.t.markRemoved(A);
    let i = 0;
    await waitFor(() => {
      a.t.send([hb(A, B, i++)]);
      return a.removed > 0 && i > 3;
    }, 'onRemoved');
    await waitFor(() => a.t.stats().batchesFailed >= 2, 'a second refusal');
    expect(a.removed).toBe(1);
    expect(b.got).toEqual([]);
    expect(b.t.stats().streamsAccepted).toBe(0);
    expect(a.logs.some((l) => l.includes('was removed from the cluster (HTTP 410)'))).toBe(true);
    const r = await rawPost(b.url, PATH_MESSAGES, peerHeaders(A), encodeMessages([hb(A, B, 1)]));
    expect(r.status).toBe(410);
  });
});

describe('peer transport: receive side refuses bad requests', () => {
  it('garbage, missing headers, wrong method, oversized bodies; unknown paths are not its own', async () => {
    const b = await startMember(B, { maxBatchBytes: 1000 });
    const garbage = await rawPost(b.url, PATH_MESSAGES, peerHeaders(A), Buffer.from([1, 0, 0, 0, 9, 9]));
    expect(garbage.status).toBe(400);
    expect(garbage.body).toMatch(/message count 9 does not fit/);
    expect(b.logs.some((l) => l.includes('refused /raft/msgs') && l.includes('message count 9'))).toBe(true);
    expect((await rawPost(b.url, PATH_MESSAGES, { [HEADER_FROM]: 'a' }, encodeMessages([]))).status).toBe(400);
    expect((await rawPost(b.url, PATH_MESSAGES, { [HEADER_CLUSTER_ID]: CLUSTER.toString(16) }, encodeMessages([]))).status).toBe(400);
    expect((await rawPost(b.url, PATH_MESSAGES, { ...peerHeaders(A), [HEADER_FROM]: 'xyz' }, encodeMessages([]))).status).toBe(400);
    expect((await rawPost(b.url, PATH_MESSAGES, peerHeaders(A), '', 'GET')).status).toBe(405);
    expect((await rawPost(b.url, PATH_MESSAGES, peerHeaders(A), Buffer.alloc(2001))).status).toBe(413);
    // A chunked body without a length that grows past the bound is cut off too.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(b.url + PATH_MESSAGES, { method: 'POST', headers: peerHeaders(A), agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write(Buffer.alloc(1000));
      req.end();
    });
    expect(chunked).toBe(413);
    expect((await rawPost(b.url, '/elsewhere', peerHeaders(A), '')).status).toBe(404);
    expect(b.got).toEqual([]);
    expect(b.t.stats().requestsRefused).toBe(7);
    // Still serving.
    expect((await rawPost(b.url, PATH_MESSAGES, peerHeaders(A), encodeMessages([hb(A, B, 1)]))).status).toBe(204);
    expect(b.got.length).toBe(1);
  });
});

describe('peer transport: JSON RPC', () => {
  it('round-trips bodies and results; the handler sees the caller ID', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.addPeer(B, [b.url]);
    b.t.route('/coord/echo', async (body, from) => ({ body, from: from.toString(16) }));
    b.t.route('/coord/nothing', async () => undefined);
    const body = { id: '694d6280d047720f', list: [1, 'two', null, { x: true }], s: 'ünïcödé' };
    expect(await a.t.request(B, '/coord/echo', body)).toEqual({ body, from: A.toString(16) });
    expect(await a.t.request(B, '/coord/nothing', null)).toBeNull();
  });

  it('errors: remote throw, unknown route, unknown peer, unreachable, timeout, not JSON, cluster mismatch, removed', async () => {
    const [a, b, other] = await Promise.all([startMember(A), startMember(B), startMember(C, { clusterId: 0x99n })]);
    a.t.addPeer(B, [b.url]);
    a.t.addPeer(C, [other.url]);
    b.t.route('/coord/fail', async () => {
      throw Object.assign(new Error('etcdserver: requested lease not found'), { code: 'LEASE_NOT_FOUND' });
    });
    b.t.route('/coord/hang', () => new Promise(() => undefined));
    other.t.route('/coord/fail', async () => 1);

    const remote = await rejection(a.t.request(B, '/coord/fail', {}));
    expect(remote).toMatchObject({ code: 'ERR_PEER_REMOTE', status: 500, remoteCode: 'LEASE_NOT_FOUND', remoteMessage: 'etcdserver: requested lease not found' });

    const notFound = await rejection(a.t.request(B, '/coord/missing', {}));
    expect(notFound).toMatchObject({ code: 'ERR_PEER_HTTP', status: 404 });

    expect((await rejection(a.t.request(0x42n, '/coord/fail', {}))).code).toBe('ERR_PEER_UNKNOWN');

    const t0 = Date.now();
    const timeout = await rejection(a.t.request(B, '/coord/hang', {}, 150));
    expect(timeout.code).toBe('ERR_PEER_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(2000);

    expect((await rejection(a.t.request(B, '/coord/fail', { big: 1n }))).code).toBe('ERR_PEER_BAD_REQUEST');
    expect((await rejection(a.t.request(C, '/coord/fail', {}))).code).toBe('ERR_PEER_CLUSTER_MISMATCH');

    a.t.addPeer(0x77n, [await deadUrl(), await deadUrl()]);
    expect((await rejection(a.t.request(0x77n, '/coord/fail', {}))).code).toBe('ERR_PEER_UNREACHABLE');

    b.t.markRemoved(A);
    expect((await rejection(a.t.request(B, '/coord/fail', {}))).code).toBe('ERR_PEER_REMOVED');
    expect(a.removed).toBe(1);
  });

  it('tries the URLs of a peer in order until one answers', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    b.t.route('/coord/ping', async () => 'pong');
    a.t.addPeer(B, [await deadUrl(), b.url]);
    expect(await a.t.request(B, '/coord/ping', null)).toBe('pong');
    expect(a.t.stats().peers[0].url).toBe(b.url);
  });

  it('fetchJson: for a member that does not know its peers or cluster yet', async () => {
    const b = await startMember(B);
    b.t.route('/coord/members', async (_body, from) => ({ clusterId: CLUSTER.toString(), from: from.toString() }));
    expect(await PeerTransport.fetchJson(b.url, '/coord/members', null, undefined)).toEqual({ clusterId: CLUSTER.toString(), from: '0' });
    expect(await PeerTransport.fetchJson(b.url, '/coord/members', null, CLUSTER)).toEqual({ clusterId: CLUSTER.toString(), from: '0' });
    expect((await rejection(PeerTransport.fetchJson(b.url, '/coord/members', null, 0x55n))).code).toBe('ERR_PEER_CLUSTER_MISMATCH');
    expect((await rejection(PeerTransport.fetchJson('https://127.0.0.1:1', '/coord/members', null, undefined))).code).toBe('ERR_PEER_URL_INVALID');
    expect((await rejection(PeerTransport.fetchJson(await deadUrl(), '/coord/members', null, undefined))).code).toBe('ERR_PEER_UNREACHABLE');
    // Raft's own paths still insist on the cluster header.
    expect((await rawPost(b.url, PATH_MESSAGES, { [HEADER_FROM]: 'a' }, encodeMessages([]))).status).toBe(400);
  });

  it('close() rejects pending requests, stops sending, answers 503 and calls nothing after', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.addPeer(B, [b.url]);
    let entered = 0;
    b.t.route('/coord/hang', () => {
      entered++;
      return new Promise(() => undefined);
    });
    const pending = a.t.request(B, '/coord/hang', {}, 60_000);
    await waitFor(() => entered === 1, 'the request to arrive');
    await a.t.close();
    expect((await rejection(pending)).code).toBe('ERR_TRANSPORT_CLOSED');
    a.t.send([hb(A, B, 1)]);
    expect(a.t.stats().droppedUnknownPeer).toBe(1);
    expect((await rejection(a.t.request(B, '/coord/hang', {}))).code).toBe('ERR_TRANSPORT_CLOSED');
    await b.t.close();
    expect((await rawPost(b.url, PATH_MESSAGES, peerHeaders(A), encodeMessages([hb(A, B, 1)]))).status).toBe(503);
    expect(b.got).toEqual([]);
  });

  it('removePeer drops its queue and fails its pending requests', async () => {
    const [a, b] = await Promise.all([startMember(A), startMember(B)]);
    a.t.addPeer(B, [b.url]);
    b.t.route('/coord/hang', () => new Promise(() => undefined));
    const pending = a.t.request(B, '/coord/hang', {}, 60_000);
    a.t.send([hb(A, B, 1), hb(A, B, 2)]);
    a.t.removePeer(B);
    expect((await rejection(pending)).code).toBe('ERR_TRANSPORT_CLOSED');
    expect(a.t.stats()).toMatchObject({ droppedUnknownPeer: 2, peers: [] });
    a.t.removePeer(B); // idempotent
  });
});
