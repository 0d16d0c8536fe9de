/**
 * Shared by the peer transport's tests (peer-transport.test.ts, peer-stream.test.ts): member
 * IDs, a real PeerTransport behind its own node:http server on a loopback port, cleanup, polling.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PeerTransport, type PeerTransportOptions } from '../../src/member/peer-transport';
import { message, type Message } from '../../src/raft/types';

export const CLUSTER = 0xcdf818194e3a8c32n;
export const A = 0x8e9e05c52164694dn;
export const B = 0x91bc3c398fb3c146n;
export const C = 0xfd422379fda50e48n;

export interface Member {
  readonly id: bigint;
  readonly t: PeerTransport;
  readonly server: http.Server;
  readonly url: string;
  readonly port: number;
  readonly got: Message[];
  readonly unreachable: bigint[];
  readonly snaps: [bigint, 'finish' | 'failure'][];
  readonly logs: string[];
  removed: number;
  connections: number;
}

/** Run (in reverse order) by `runCleanups`, which each test file calls in its afterEach. */
export const cleanups: (() => Promise<void> | void)[] = [];
export async function runCleanups(): Promise<void> {
  for (const f of cleanups.splice(0).reverse()) await f();
}

export function listen(server: http.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A transport with `opts`, served on `port` (0: a free one), recording what it is told. */
export async function startMember(id: bigint, opts: Partial<PeerTransportOptions> = {}, port = 0): Promise<Member> {
  const m = { id, got: [] as Message[], unreachable: [] as bigint[], snaps: [] as [bigint, 'finish' | 'failure'][], logs: [] as string[], removed: 0, connections: 0 } as Omit<Member, 't' | 'server' | 'url' | 'port'> &
    Partial<Member>;
  const t = new PeerTransport({
    localId: id,
    clusterId: CLUSTER,
    onMessages: (msgs) => m.got.push(...msgs),
    onUnreachable: (peer) => m.unreachable.push(peer),
    onSnapshotStatus: (peer, s) => m.snaps.push([peer, s]),
    onRemoved: () => m.removed++,
    log: (line) => m.logs.push(line),
    ...opts,
  });
  const server = http.createServer({ noDelay: true }, (req, res) => {
    if (!t.handle(req, res)) {
      res.statusCode = 404;
      res.end('no such route');
    }
  });
  server.on('connection', () => m.connections++);
  const p = await listen(server, port);
  Object.assign(m, { t, server, port: p, url: `http://127.0.0.1:${p}` });
  cleanups.push(async () => {
    await t.close();
    await closeServer(server);
  });
  return m as Member;
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export const hb = (from: bigint, to: bigint, i: number): Message => message({ type: 'heartbeat', from, to, term: 1n, commit: BigInt(i) });
