/**
 * The member's peer network: the peer transport (peer-transport.ts) plus the HTTP
 * listeners on --listen-peer-urls. A member listens for peers once it has any: a cluster
 * of one never opens its peer port (so many single members can run side by side, e.g. in
 * tests), and starts listening when `member add` gives it a peer.
 */
import * as http from 'node:http';
import type { Message } from '../raft';
import { PeerTransport } from './peer-transport';
import type { PeerNetwork } from './member';

export interface PeerNetworkOptions {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly listenPeerUrls: readonly string[];
  onMessages(msgs: Message[]): void;
  onUnreachable(id: bigint): void;
  onSnapshotStatus(id: bigint, s: 'finish' | 'failure'): void;
  onRemoved(): void;
  readonly log: (line: string) => void;
}

export class ListeningPeerNetwork implements PeerNetwork {
  private readonly transport: PeerTransport;
  private readonly servers: http.Server[] = [];
  private listening: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: PeerNetworkOptions) {
    this.transport = new PeerTransport({
      localId: o.memberId,
      clusterId: o.clusterId,
      onMessages: o.onMessages,
      onUnreachable: o.onUnreachable,
      onSnapshotStatus: o.onSnapshotStatus,
      onRemoved: o.onRemoved,
      log: o.log,
    });
  }

  /** Starts the peer listeners (idempotent); a port that cannot be bound stops the member, as etcd's would. */
  listen(): Promise<void> {
    this.listening ??= Promise.all(
      this.o.listenPeerUrls.map(async (u) => {
        const url = new URL(u);
        if (url.protocol !== 'http:') throw new Error(`--listen-peer-urls: only http:// is supported (got ${u})`);
        const server = http.createServer({ noDelay: true }, (req, res) => {
          if (!this.transport.handle(req, res)) {
            res.statusCode = 404;
            res.end('not found\n');
          }
        });
        server.keepAliveTimeout = 60_000;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(Number(url.port || 80), url.hostname.replace(/^\[|\]$/g, ''), () => {
            server.off('error', reject);
            resolve();
          });
        });
        this.servers.push(server);
        this.o.log(`listening for peers on ${u}`);
      }),
    ).then(() => undefined);
    return this.listening;
  }

  send(msgs: readonly Message[]): void {
    this.transport.send(msgs);
  }

  addPeer(id: bigint, urls: readonly string[]): void {
    this.transport.addPeer(id, urls);
    this.listen().catch((err: unknown) => {
      process.stderr.write(`coord: cannot listen for peers: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    this.transport.updatePeer(id, urls);
  }

  removePeer(id: bigint): void {
    this.transport.removePeer(id);
  }

  markRemoved(id: bigint): void {
    this.transport.markRemoved(id);
  }

  request(peerId: bigint, path: string, body: unknown, timeoutMs?: number): Promise<unknown> {
    return this.transport.request(peerId, path, body, timeoutMs);
  }

  route(path: string, handler: (body: unknown, fromId: bigint) => Promise<unknown>): void {
    this.transport.route(path, handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport.close();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }
}

/** A joining member asks a peer URL for the membership (no cluster ID yet to check). */
export function fetchMembersFrom(peerUrl: string): Promise<{ clusterId: string; membership: { members: never[]; removed: string[] } }> {
  return PeerTransport.fetchJson(peerUrl, '/coord/members', {}, undefined, 3000) as Promise<{ clusterId: string; membership: { members: never[]; removed: string[] } }>;
}
