/**
 * The peer transport: how a member's Raft messages reach its peers, over HTTP/1.1 on the
 * peer URLs (`http://` only for now; peer TLS is not implemented and https URLs are refused).
 *
 * Sending. One sender per peer, with at most one message POST in flight (`POST /raft/msgs`,
 * body = peer-codec batch), so a peer receives messages in the order they were sent; all
 * that queued meanwhile goes in the next POST (up to `maxBatchBytes`). The queue is bounded
 * (`maxQueuedMessagesPerPeer`): beyond it new messages are dropped and counted; Raft
 * tolerates loss and retransmits (etcd's pipeline drops the same way when its buffer is
 * full). A failed POST (refused, reset, timed out, 5xx) is not retried: its batch is
 * dropped, `onUnreachable` is reported (at most every 100 ms per peer), the next URL of
 * the peer becomes current (only when no answer came at all), and the sender waits
 * 50–100 ms before its next POST. A POST times out after `requestTimeoutMs` (default 1 s,
 * plus 1 s per MiB of body) and only delays that peer: a SIGSTOPped peer must not hold
 * back heartbeats to the others, and senders share nothing (not even an http.Agent).
 *
 * Snapshots (`snap` messages) go alone on `POST /raft/snapshot`, streamed in 64 KiB chunks
 * with back-pressure and without copying the snapshot (peer-codec `encodeSnapshotMessage`),
 * beside the message loop, never in it. The timeout is on progress: the upload fails only
 * when no chunk was taken and no answer came for `snapshotTimeoutMs` (default 30 s).
 * The receiver answers after the message is delivered; 2xx → `onSnapshotStatus('finish')`,
 * anything else → 'failure' (and `onUnreachable`), as etcd's snapshot sender reports.
 *
 * Streaming (`streaming: true`, off by default). Instead of a POST per batch, each peer's
 * sender keeps one long-lived chunked request open (`POST /raft/stream`) and writes each
 * batch as one frame: u32 big-endian length + peer-codec batch, one `write` per batch, no
 * answer per batch. The receiver checks the cluster ID and removal when the stream opens
 * (412/410 at once, as for a POST), then accepts it by sending its answer's headers (200)
 * at once; it decodes frames as they arrive and ends the answer only when the stream ends
 * (or when it closes the stream: an undecodable frame, a frame larger than twice
 * `maxBatchBytes`, a member removed meanwhile, close()). Until the peer accepts the stream
 * the sender writes only the batch that opened it (so a refusing or stalled peer holds at
 * most one batch, as with POSTs). A write the socket does not take (`write` returns false)
 * stops the sender until 'drain'; no 'drain' (or no acceptance) within `requestTimeoutMs`
 * (plus 1 s per MiB waiting) declares the stream dead. A stream that fails or closes: the
 * batches not yet taken by the socket are dropped (Raft retransmits), `onUnreachable`, the
 * same backoff, then a new stream. A stream is ended cleanly after `streamLifetimeMs`
 * (default 60 s; HTTP servers cut long requests: node's requestTimeout is 300 s) and the
 * queue waits for the peer's answer to that end before a new stream carries it (order is
 * kept across streams). A stream idle for long is normal. A receiver serves both
 * `/raft/msgs` and `/raft/stream`, so members with and without streaming interoperate.
 * Snapshots and RPCs are unchanged.
 *
 * Every request carries `X-Coord-Cluster-ID` and `X-Coord-From` (hex). A receiver refuses
 * another cluster's request with 412 `cluster ID mismatch`, and a removed member's with
 * 410 (`markRemoved`); a sender that gets 410 learns it was removed (`onRemoved`), as an
 * etcd member does from its peers' `410 Gone`.
 *
 * Besides Raft, a small JSON RPC between members (`route`/`request`/`fetchJson`): lease
 * keepalive and promote forwarding, the member list for a joining member. The body is
 * `JSON.stringify(body)`; the answer is `{"result": …}` (200) or
 * `{"error": {"message", "code"}}` (500, the handler threw). A route's path is served
 * exactly as registered; `/raft/` paths are the transport's own.
 */
import * as http from 'node:http';
import { assert } from '../util/assert';
import { isLocalMessage, type Message } from '../raft/types';
import { PeerCodecError, decodeMessages, encodeMessages, encodeSnapshotMessage, messageEncodedBytes } from './peer-codec';

export const PATH_MESSAGES = '/raft/msgs';
export const PATH_SNAPSHOT = '/raft/snapshot';
export const PATH_STREAM = '/raft/stream';
/** Bytes of the length prefix of a stream frame (u32 big-endian). */
export const STREAM_FRAME_HEADER_BYTES = 4;
export const HEADER_CLUSTER_ID = 'x-coord-cluster-id';
export const HEADER_FROM = 'x-coord-from';
export const CLUSTER_MISMATCH_TEXT = 'cluster ID mismatch';
export const REMOVED_TEXT = 'member removed';

const DEFAULT_QUEUED_MESSAGES_PER_PEER_MAX = 4096;
const DEFAULT_BATCH_BYTES_MAX = 4 * 1024 * 1024;
const DEFAULT_SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 1000;
const DEFAULT_SNAPSHOT_TIMEOUT_MS = 30_000;
const DEFAULT_RPC_TIMEOUT_MS = 5000;
const DEFAULT_STREAM_LIFETIME_MS = 60_000;
const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
/** The slowest link a message POST is given time for, beyond `requestTimeoutMs`. */
const BATCH_BYTES_PER_SECOND_MIN = 1024 * 1024;
/** After a failed POST, the next one to that peer waits this long plus up to the same again (jitter). */
const BACKOFF_MS = 50;
const UNREACHABLE_REPORT_INTERVAL_MS = 100;
const CLUSTER_MISMATCH_LOG_INTERVAL_MS = 60_000;
const QUEUE_FULL_LOG_INTERVAL_MS = 10_000;
const BAD_REQUEST_LOG_INTERVAL_MS = 10_000;
/** Bytes of an error answer kept for a log line or an error message. */
const RESPONSE_TEXT_BYTES_MAX = 4096;
/** An RPC answer is JSON; this bounds what a sender buffers of one. */
const RPC_RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
/** Keys in the log-throttle table before it is cleared (a misbehaving sender could vary its ID). */
const THROTTLE_KEYS_MAX = 1024;

export type PeerTransportErrorCode =
  /** A peer URL that is not `http://host:port` (https is refused until peer TLS exists). */
  | 'ERR_PEER_URL_INVALID'
  /** `request` to a peer that was never added (or was removed). */
  | 'ERR_PEER_UNKNOWN'
  /** No URL of the peer accepted a connection (refused, reset, unresolvable). */
  | 'ERR_PEER_UNREACHABLE'
  /** No answer within the timeout. */
  | 'ERR_PEER_TIMEOUT'
  /** The peer belongs to another cluster (HTTP 412). */
  | 'ERR_PEER_CLUSTER_MISMATCH'
  /** The peer says this member was removed from the cluster (HTTP 410). */
  | 'ERR_PEER_REMOVED'
  /** The peer answered another non-2xx status (unknown route 404, too large 413, bad request 400, …). */
  | 'ERR_PEER_HTTP'
  /** The peer's route handler threw: `remoteMessage` and `remoteCode` are what it threw. */
  | 'ERR_PEER_REMOTE'
  /** The peer's answer was not the JSON the RPC expects. */
  | 'ERR_PEER_BAD_RESPONSE'
  /** The body given to `request` cannot be sent as JSON (a bigint, a cycle). */
  | 'ERR_PEER_BAD_REQUEST'
  /** The transport was closed (or the peer removed) while the request was pending. */
  | 'ERR_TRANSPORT_CLOSED';

export class PeerTransportError extends Error {
  override readonly name = 'PeerTransportError';
  constructor(
    readonly code: PeerTransportErrorCode,
    message: string,
    /** The HTTP status, when the peer answered. */
    readonly status?: number,
    /** ERR_PEER_REMOTE: the `code` property of what the remote handler threw, if it had one. */
    readonly remoteCode?: string,
    /** ERR_PEER_REMOTE: the remote handler's error message. */
    readonly remoteMessage?: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export function isPeerTransportError(e: unknown, code?: PeerTransportErrorCode): e is PeerTransportError {
  return e instanceof PeerTransportError && (code === undefined || e.code === code);
}

export interface PeerTransportOptions {
  readonly localId: bigint;
  readonly clusterId: bigint;
  /** Each received batch, already filtered to `to === localId` (never called with an empty array). */
  onMessages(msgs: Message[]): void;
  /** A send to `peerId` failed (at most once per 100 ms per peer). */
  onUnreachable(peerId: bigint): void;
  /** The fate of a `snap` message sent to `peerId`. */
  onSnapshotStatus(peerId: bigint, status: 'finish' | 'failure'): void;
  /** A peer answered 410 Gone: this member was removed from the cluster (called once). */
  onRemoved?(): void;
  /** Messages queued per peer beyond which new ones are dropped (counted). Default 4096. */
  readonly maxQueuedMessagesPerPeer?: number;
  /** Bytes per message POST (a single larger message goes alone). Received batches may be twice this. Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** Largest snapshot body received. Default 1 GiB. */
  readonly maxSnapshotBytes?: number;
  /** Timeout of a message POST, connection included. Default 1000 ms. */
  readonly requestTimeoutMs?: number;
  /** A snapshot upload fails after this long without progress. Default 30 s. */
  readonly snapshotTimeoutMs?: number;
  /** Default timeout of `request`. Default 5000 ms. */
  readonly rpcTimeoutMs?: number;
  /**
   * Send message batches as frames on one long-lived request per peer (`POST /raft/stream`)
   * instead of a POST each. Default false. Receiving accepts both either way.
   */
  readonly streaming?: boolean;
  /**
   * Streaming: a stream is ended cleanly after this long and the next batch opens a new one
   * (HTTP servers cut requests that last too long: node's requestTimeout is 300 s). Default 60 s.
   */
  readonly streamLifetimeMs?: number;
  readonly log?: (line: string) => void;
}

export interface PeerStats {
  readonly id: bigint;
  /** The URL the sender uses now. */
  readonly url: string;
  readonly queued: number;
  readonly inFlight: boolean;
  /** The last message POST succeeded (false before the first). */
  readonly active: boolean;
  readonly snapshotInFlight: boolean;
}

export interface PeerTransportStats {
  /** Messages in POSTs the peer accepted. */
  readonly sent: number;
  /** Messages delivered to `onMessages`. */
  readonly received: number;
  /** Every message dropped, the sum of the `dropped*` counts below. */
  readonly dropped: number;
  readonly droppedQueueFull: number;
  /** Sent to a peer never added (or removed meanwhile), or while closed. */
  readonly droppedUnknownPeer: number;
  /** In a POST that failed (Raft retransmits). */
  readonly droppedFailed: number;
  /** Received, but addressed to another member. */
  readonly droppedMisaddressed: number;
  /** A `snap` to a peer already receiving one. */
  readonly droppedSnapshotBusy: number;
  readonly batchesSent: number;
  readonly batchesFailed: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  readonly snapshotsReceived: number;
  /** Requests refused: undecodable, too large, wrong cluster, from a removed member, bad headers. */
  readonly requestsRefused: number;
  /** Message streams opened to peers (streaming mode). */
  readonly streamsOpened: number;
  /** Message streams to peers that failed or were closed by the peer. */
  readonly streamsFailed: number;
  /** Message streams from peers accepted (refusals at opening count in `requestsRefused`). */
  readonly streamsAccepted: number;
  /** Accepted streams from peers this member closed: a bad or oversized frame, a sender removed meanwhile. */
  readonly streamsRefused: number;
  readonly peers: readonly PeerStats[];
}

type Counters = { -readonly [K in Exclude<keyof PeerTransportStats, 'dropped' | 'peers'>]: number };

interface PeerUrl {
  readonly href: string;
  readonly host: string;
  readonly port: number;
}

/** What a finished HTTP exchange gave: an answer, or a transport-level error (never both). */
type Outcome = { readonly status: number; readonly headers: http.IncomingHttpHeaders; readonly body: Buffer } | { readonly error: Error };

type RouteHandler = (body: unknown, fromId: bigint) => Promise<unknown>;

interface Settings {
  readonly queuedMax: number;
  readonly batchBytesMax: number;
  readonly snapshotBytesMax: number;
  readonly requestTimeoutMs: number;
  readonly snapshotTimeoutMs: number;
  readonly rpcTimeoutMs: number;
  readonly streamLifetimeMs: number;
}

function positiveInt(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`PeerTransportOptions.${name} must be a positive integer, got ${v}`);
  return v;
}

export const idHex = (id: bigint): string => id.toString(16);

/** A 64-bit hex ID from a header; undefined when absent or malformed. */
function parseHexId(v: string | string[] | undefined): bigint | undefined {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{1,16}$/.test(v)) return undefined;
  return BigInt('0x' + v);
}

/** Parses and checks a peer URL: `http://host:port` (path ignored); https and others refused. */
export function parsePeerUrl(u: string): PeerUrl {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw new PeerTransportError('ERR_PEER_URL_INVALID', `invalid peer URL ${JSON.stringify(u)}`);
  }
  if (url.protocol === 'https:') throw new PeerTransportError('ERR_PEER_URL_INVALID', `https peer URLs are not supported yet (peer TLS is not implemented): ${u}`);
  if (url.protocol !== 'http:') throw new PeerTransportError('ERR_PEER_URL_INVALID', `peer URL ${JSON.stringify(u)} is not http://host:port`);
  if (url.hostname === '') throw new PeerTransportError('ERR_PEER_URL_INVALID', `peer URL ${JSON.stringify(u)} has no host`);
  const host = url.hostname.startsWith('[') && url.hostname.endsWith(']') ? url.hostname.slice(1, -1) : url.hostname;
  return { href: u, host, port: url.port === '' ? 80 : Number(url.port) };
}

function errorText(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code !== undefined && !e.message.includes(code) ? `${code} ${e.message}` : e.message;
}

function isConnectError(e: Error): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EADDRNOTAVAIL';
}

/**
 * One HTTP POST with a deadline, reporting once through `done`. The caller writes the
 * body (`start(req)`), which lets a snapshot stream. `arm` re-arms the timeout (progress).
 * Answers longer than `bodyMax` are cut (the rest is drained so the socket can be reused).
 */
function exchange(
  opts: http.RequestOptions,
  timeoutMs: number,
  bodyMax: number,
  start: (req: http.ClientRequest, arm: () => void) => void,
  done: (o: Outcome, req: http.ClientRequest) => void,
): http.ClientRequest {
  const req = http.request(opts);
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (o: Outcome): void => {
    if (finished) return;
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    // An error, or an answer before the whole body left (a refusal): stop writing, drop the socket.
    if ('error' in o || !req.writableFinished) req.destroy();
    done(o, req);
  };
  const arm = (): void => {
    if (finished) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      const e = new Error(`no answer within ${timeoutMs} ms`) as NodeJS.ErrnoException;
      e.code = 'ETIMEDOUT';
      finish({ error: e });
    }, timeoutMs);
  };
  arm();
  req.on('error', (e) => finish({ error: e }));
  req.on('response', (res) => {
    arm();
    const chunks: Buffer[] = [];
    let bytes = 0;
    res.on('data', (c: Buffer) => {
      arm();
      if (bytes >= bodyMax) return;
      const keep = c.length <= bodyMax - bytes ? c : c.subarray(0, bodyMax - bytes);
      chunks.push(keep);
      bytes += keep.length;
    });
    res.on('end', () => finish({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, bytes) }));
    res.on('error', (e) => finish({ error: e }));
    res.on('close', () => {
      if (!res.complete) finish({ error: new Error('the answer was cut short') });
    });
  });
  start(req, arm);
  return req;
}

/**
 * Reads a request body of at most `max` bytes. Refuses a larger one with 413 (declared or
 * actual) and closes the connection rather than reading the rest.
 */
function readBody(req: http.IncomingMessage, res: http.ServerResponse, max: number, refuse: (status: number, text: string) => void, then: (body: Buffer) => void): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared);
    if (!Number.isSafeInteger(n) || n < 0) return refuse(400, 'bad Content-Length');
    if (n > max) return refuse(413, `body of ${n} bytes exceeds the limit of ${max} bytes`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  let over = false;
  req.on('data', (c: Buffer) => {
    if (over) return;
    bytes += c.length;
    if (bytes > max) {
      over = true;
      chunks.length = 0;
      refuse(413, `body exceeds the limit of ${max} bytes`);
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (over || res.writableEnded) return;
    then(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, bytes));
  });
  req.on('error', () => {
    /* the sender went away mid-body: nothing to deliver, nobody to answer */
  });
  // A caller may have paused the request (to hold it while deciding); a 'data' listener does not undo an explicit pause.
  req.resume();
}

/** A message stream to a peer (streaming mode). */
interface OutStream {
  readonly req: http.ClientRequest;
  readonly url: PeerUrl;
  /** The peer sent its answer's headers (200): frames are being read. */
  accepted: boolean;
  /** `write` returned false: nothing more until 'drain'. */
  draining: boolean;
  ended: boolean;
  /** Ended by this side (its lifetime is over): no more writes; a clean end of the answer is no failure. */
  closing: boolean;
  timer: NodeJS.Timeout | null;
  lifetimeTimer: NodeJS.Timeout | null;
  /** Written, and not yet both taken by the socket and accepted: dropped if the stream fails. */
  msgs: number;
  batches: number;
  /** Taken by the socket before the stream was accepted. */
  flushedMsgs: number;
  flushedBatches: number;
  flushedBytes: number;
}

/** The transport's side of one peer: its URLs, agents, message queue and in-flight requests. */
class Peer {
  queue: Message[] = [];
  urlIndex = 0;
  inFlight: http.ClientRequest | null = null;
  flushScheduled = false;
  backoffTimer: NodeJS.Timeout | null = null;
  snapshotReq: http.ClientRequest | null = null;
  /** Streaming mode: the open message stream. */
  stream: OutStream | null = null;
  /** Message POSTs: their own agent, so RPCs and snapshots piling up never queue a heartbeat behind them. */
  readonly messageAgent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 2, scheduling: 'lifo' });
  /** Snapshots and RPCs. */
  readonly otherAgent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 4, scheduling: 'lifo' });
  active = false;
  lastUnreachableMs = -Infinity;
  closed = false;

  constructor(
    readonly id: bigint,
    public urls: readonly PeerUrl[],
  ) {}

  get url(): PeerUrl {
    return this.urls[this.urlIndex];
  }

  /** The next URL becomes current (after a failure through the current one). */
  rotate(): void {
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
  }

  /** Ends the open stream without reporting anything; returns the messages it dropped. */
  dropStream(): number {
    const st = this.stream;
    if (st === null) return 0;
    this.stream = null;
    st.ended = true;
    if (st.timer !== null) clearTimeout(st.timer);
    if (st.lifetimeTimer !== null) clearTimeout(st.lifetimeTimer);
    st.timer = st.lifetimeTimer = null;
    st.req.destroy();
    return st.msgs;
  }

  close(): void {
    this.closed = true;
    if (this.backoffTimer !== null) clearTimeout(this.backoffTimer);
    this.backoffTimer = null;
    this.inFlight?.destroy();
    this.inFlight = null;
    this.dropStream();
    this.snapshotReq?.destroy();
    this.snapshotReq = null;
    this.queue = [];
    this.messageAgent.destroy();
    this.otherAgent.destroy();
  }
}

export class PeerTransport {
  private readonly o: PeerTransportOptions;
  private readonly s: Settings;
  private readonly peers = new Map<bigint, Peer>();
  private readonly removed = new Set<bigint>();
  private readonly routes = new Map<string, RouteHandler>();
  /** Pending `request`s: rejected by close() (and by removePeer, for that peer). */
  private readonly pending = new Set<{ readonly peerId: bigint; readonly reject: (e: Error) => void }>();
  private readonly throttle = new Map<string, number>();
  private readonly c: Counters = {
    sent: 0,
    received: 0,
    droppedQueueFull: 0,
    droppedUnknownPeer: 0,
    droppedFailed: 0,
    droppedMisaddressed: 0,
    droppedSnapshotBusy: 0,
    batchesSent: 0,
    batchesFailed: 0,
    bytesSent: 0,
    bytesReceived: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
    snapshotsReceived: 0,
    requestsRefused: 0,
    streamsOpened: 0,
    streamsFailed: 0,
    streamsAccepted: 0,
    streamsRefused: 0,
  };
  /** Streams from peers being read: closed by close(). */
  private readonly inbound = new Set<http.IncomingMessage>();
  private readonly streaming: boolean;
  private readonly clusterHex: string;
  private readonly localHex: string;
  private removedReported = false;
  private closed = false;

  constructor(opts: PeerTransportOptions) {
    assert(opts.localId !== 0n, 'the local member ID is not zero');
    this.o = opts;
    this.s = Object.freeze({
      queuedMax: positiveInt(opts.maxQueuedMessagesPerPeer, DEFAULT_QUEUED_MESSAGES_PER_PEER_MAX, 'maxQueuedMessagesPerPeer'),
      batchBytesMax: positiveInt(opts.maxBatchBytes, DEFAULT_BATCH_BYTES_MAX, 'maxBatchBytes'),
      snapshotBytesMax: positiveInt(opts.maxSnapshotBytes, DEFAULT_SNAPSHOT_BYTES_MAX, 'maxSnapshotBytes'),
      requestTimeoutMs: positiveInt(opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs'),
      snapshotTimeoutMs: positiveInt(opts.snapshotTimeoutMs, DEFAULT_SNAPSHOT_TIMEOUT_MS, 'snapshotTimeoutMs'),
      rpcTimeoutMs: positiveInt(opts.rpcTimeoutMs, DEFAULT_RPC_TIMEOUT_MS, 'rpcTimeoutMs'),
      streamLifetimeMs: positiveInt(opts.streamLifetimeMs, DEFAULT_STREAM_LIFETIME_MS, 'streamLifetimeMs'),
    });
    this.clusterHex = idHex(opts.clusterId);
    this.localHex = idHex(opts.localId);
    this.streaming = opts.streaming === true;
  }

  // ---- membership ----

  /**
   * Starts sending to `id` at `urls` (tried in order). Adding a known peer updates its
   * URLs. After close() membership calls do nothing (a conf change applied during shutdown).
   */
  addPeer(id: bigint, urls: readonly string[]): void {
    assert(id !== this.o.localId, 'a member is not its own peer');
    assert(id !== 0n, 'a peer ID is not zero');
    const parsed = this.parseUrls(id, urls);
    if (this.closed) return;
    const p = this.peers.get(id);
    if (p !== undefined) {
      p.urls = parsed;
      p.urlIndex = 0;
      this.streamUrlsChanged(p);
      return;
    }
    this.peers.set(id, new Peer(id, parsed));
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    if (this.closed) return;
    const p = this.peers.get(id);
    assert(p !== undefined, `updatePeer of a known peer (${idHex(id)})`);
    p.urls = this.parseUrls(id, urls);
    p.urlIndex = 0;
    this.streamUrlsChanged(p);
  }

  /** A stream to a URL the peer no longer has is closed (its unsent batches dropped); the next batch opens one to the new URL. */
  private streamUrlsChanged(p: Peer): void {
    const st = p.stream;
    if (st === null || p.urls.some((u) => u.href === st.url.href)) return;
    this.c.droppedFailed += p.dropStream();
    this.scheduleFlush(p);
  }

  /** Stops sending to `id`: its queue is dropped, its requests fail, no callback mentions it again. */
  removePeer(id: bigint): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    this.c.droppedUnknownPeer += p.queue.length;
    p.close();
    for (const r of this.pending) if (r.peerId === id) r.reject(new PeerTransportError('ERR_TRANSPORT_CLOSED', `peer ${idHex(id)} was removed`));
  }

  /** Requests from `id` are answered 410 Gone from now on (it was removed from the cluster). */
  markRemoved(id: bigint): void {
    this.removed.add(id);
  }

  private parseUrls(id: bigint, urls: readonly string[]): PeerUrl[] {
    if (urls.length === 0) throw new PeerTransportError('ERR_PEER_URL_INVALID', `peer ${idHex(id)} has no URLs`);
    return urls.map(parsePeerUrl);
  }

  // ---- sending Raft messages ----

  /** Routes each message by `m.to`; `snap` messages go on their own stream. Never blocks, never throws for a peer's state. */
  send(msgs: readonly Message[]): void {
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      if (isLocalMessage(m.type)) assert(false, `a local message (${m.type}) is never sent to a peer`);
      const p = this.closed ? undefined : this.peers.get(m.to);
      if (p === undefined) {
        this.c.droppedUnknownPeer++;
        continue;
      }
      if (m.type === 'snap') {
        this.sendSnapshot(p, m);
        continue;
      }
      if (p.queue.length >= this.s.queuedMax) {
        this.c.droppedQueueFull++;
        this.logThrottled(`queue-full/${p.id}`, QUEUE_FULL_LOG_INTERVAL_MS, `peer ${idHex(p.id)}: send queue full (${this.s.queuedMax} messages), dropping messages`);
        continue;
      }
      p.queue.push(m);
      this.scheduleFlush(p);
    }
  }

  /** Everything sent in one synchronous run (a Ready's messages) goes in one POST. */
  private scheduleFlush(p: Peer): void {
    if (p.flushScheduled || p.inFlight !== null || p.backoffTimer !== null) return;
    p.flushScheduled = true;
    queueMicrotask(() => {
      p.flushScheduled = false;
      this.flush(p);
    });
  }

  private flush(p: Peer): void {
    if (this.streaming) return this.flushStream(p);
    if (p.closed || p.inFlight !== null || p.backoffTimer !== null || p.queue.length === 0) return;
    const batch = this.takeBatch(p);
    this.post(p, batch, encodeMessages(batch), false);
  }

  /** Takes the queue's head: as many messages as fit batchBytesMax (at least one). */
  private takeBatch(p: Peer): readonly Message[] {
    let n = 0;
    let bytes = 5;
    while (n < p.queue.length) {
      const b = messageEncodedBytes(p.queue[n]);
      if (n > 0 && bytes + b > this.s.batchBytesMax) break;
      bytes += b;
      n++;
    }
    const batch = n === p.queue.length ? p.queue : p.queue.slice(0, n);
    p.queue = n === p.queue.length ? [] : p.queue.slice(n);
    return batch;
  }

  private post(p: Peer, batch: readonly Message[], body: Buffer, isRetry: boolean): void {
    const url = p.url;
    p.inFlight = exchange(
      { agent: p.messageAgent, host: url.host, port: url.port, method: 'POST', path: PATH_MESSAGES, headers: this.headers('application/octet-stream', body.length) },
      // A big batch gets time to travel too (at 1 MiB/s at worst); a heartbeat's POST just the base timeout.
      this.s.requestTimeoutMs + Math.floor((body.length / BATCH_BYTES_PER_SECOND_MIN) * 1000),
      RESPONSE_TEXT_BYTES_MAX,
      (req) => req.end(body),
      (o, req) => {
        if (p.closed) return;
        p.inFlight = null;
        // A keep-alive socket the peer closed just as we reused it: once, on a fresh one (not a failure of the peer).
        if ('error' in o && req.reusedSocket && (o.error as NodeJS.ErrnoException).code === 'ECONNRESET' && !isRetry) {
          this.post(p, batch, body, true);
          return;
        }
        if (!('error' in o) && o.status >= 200 && o.status < 300) {
          this.c.sent += batch.length;
          this.c.batchesSent++;
          this.c.bytesSent += body.length;
          if (!p.active) {
            p.active = true;
            this.log(`peer ${idHex(p.id)}: reachable at ${url.href}`);
          }
          this.flush(p);
          return;
        }
        this.c.droppedFailed += batch.length;
        this.c.batchesFailed++;
        this.failed(p, url, o, 'messages');
        p.backoffTimer = setTimeout(
          () => {
            p.backoffTimer = null;
            this.flush(p);
          },
          BACKOFF_MS + Math.floor(Math.random() * BACKOFF_MS),
        );
      },
    );
  }

  // ---- sending Raft messages: streaming mode ----

  /** Writes what is queued as frames on the peer's stream (opening one), as far as the stream takes them. */
  private flushStream(p: Peer): void {
    if (p.closed || p.backoffTimer !== null || p.queue.length === 0) return;
    let st = p.stream;
    if (st === null) st = this.openStream(p);
    while (p.queue.length > 0 && !st.ended && !st.closing && !st.draining && (st.accepted || st.batches === 0)) {
      this.writeFrame(p, st, this.takeBatch(p));
    }
  }

  private writeFrame(p: Peer, st: OutStream, batch: readonly Message[]): void {
    const body = encodeMessages(batch);
    const frame = Buffer.allocUnsafe(STREAM_FRAME_HEADER_BYTES + body.length);
    frame.writeUInt32BE(body.length, 0);
    body.copy(frame, STREAM_FRAME_HEADER_BYTES);
    const n = batch.length;
    st.msgs += n;
    st.batches++;
    const ok = st.req.write(frame, (err) => {
      if (err || st.ended) return;
      st.flushedMsgs += n;
      st.flushedBatches++;
      st.flushedBytes += frame.length;
      this.settleStream(p, st);
    });
    if (!ok && !st.ended) {
      st.draining = true;
      // No 'drain' within the timeout (plus time for what waits, at 1 MiB/s): the peer is not reading.
      const waiting = st.req.writableLength;
      this.armStream(p, st, this.s.requestTimeoutMs + Math.floor((waiting / BATCH_BYTES_PER_SECOND_MIN) * 1000), 'no drain');
    }
  }

  /** Frames the socket took on an accepted stream count as sent. */
  private settleStream(p: Peer, st: OutStream): void {
    if (!st.accepted || st.flushedBatches === 0) return;
    this.c.sent += st.flushedMsgs;
    this.c.batchesSent += st.flushedBatches;
    this.c.bytesSent += st.flushedBytes;
    st.msgs -= st.flushedMsgs;
    st.batches -= st.flushedBatches;
    st.flushedMsgs = st.flushedBatches = st.flushedBytes = 0;
    if (!p.active) {
      p.active = true;
      this.log(`peer ${idHex(p.id)}: reachable at ${st.url.href} (stream)`);
    }
  }

  private armStream(p: Peer, st: OutStream, ms: number, what: string): void {
    if (st.timer !== null) clearTimeout(st.timer);
    st.timer = setTimeout(() => {
      st.timer = null;
      const e = new Error(`${what} within ${ms} ms`) as NodeJS.ErrnoException;
      e.code = 'ETIMEDOUT';
      this.streamEnded(p, st, { error: e });
    }, ms);
  }

  private openStream(p: Peer): OutStream {
    const url = p.url;
    const req = http.request({
      agent: false,
      host: url.host,
      port: url.port,
      method: 'POST',
      path: PATH_STREAM,
      headers: { 'content-type': 'application/octet-stream', [HEADER_CLUSTER_ID]: this.clusterHex, [HEADER_FROM]: this.localHex },
    });
    const st: OutStream = { req, url, accepted: false, draining: false, ended: false, closing: false, timer: null, lifetimeTimer: null, msgs: 0, batches: 0, flushedMsgs: 0, flushedBatches: 0, flushedBytes: 0 };
    p.stream = st;
    this.c.streamsOpened++;
    this.armStream(p, st, this.s.requestTimeoutMs, 'no answer');
    req.on('socket', (s) => s.setNoDelay(true));
    req.on('drain', () => {
      if (st.ended || !st.draining) return;
      st.draining = false;
      if (st.timer !== null) clearTimeout(st.timer);
      st.timer = null;
      this.flushStream(p);
    });
    req.on('error', (e) => this.streamEnded(p, st, { error: e }));
    let answered = false;
    req.on('close', () => {
      if (!answered) this.streamEnded(p, st, { error: new Error('the stream closed without an answer') });
    });
    req.on('response', (res) => {
      answered = true;
      const status = res.statusCode ?? 0;
      if (status === 200 && !st.ended) {
        st.accepted = true;
        if (!st.draining && st.timer !== null) {
          clearTimeout(st.timer);
          st.timer = null;
        }
        // HTTP servers bound how long a request may take (node's requestTimeout, 300 s by default):
        // a stream is ended cleanly before that and the next batch opens a new one.
        st.lifetimeTimer = setTimeout(() => {
          st.lifetimeTimer = null;
          if (st.ended) return;
          st.closing = true;
          st.req.end();
        }, this.s.streamLifetimeMs);
        this.settleStream(p, st);
        this.flushStream(p);
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        if (bytes >= RESPONSE_TEXT_BYTES_MAX) return;
        const keep = c.subarray(0, RESPONSE_TEXT_BYTES_MAX - bytes);
        chunks.push(keep);
        bytes += keep.length;
      });
      const body = (): Buffer => Buffer.concat(chunks, bytes);
      res.on('end', () => {
        if (status === 200 && st.closing && !st.ended) {
          // Our end, answered: the peer read every frame. The queue waited meanwhile (order across streams).
          st.flushedMsgs = st.msgs;
          st.flushedBatches = st.batches;
          this.settleStream(p, st);
          p.dropStream();
          this.flushStream(p);
          return;
        }
        if (status === 200) {
          const text = body().toString('utf8').trim();
          this.streamEnded(p, st, { error: new Error(`the peer closed the stream${text === '' ? '' : `: ${text}`}`) });
        } else this.streamEnded(p, st, { status, headers: res.headers, body: body() });
      });
      res.on('error', (e) => this.streamEnded(p, st, { error: e }));
      res.on('close', () => {
        if (!res.complete) this.streamEnded(p, st, { error: new Error(status === 200 ? 'the stream was cut' : 'the answer was cut short') });
      });
    });
    return st;
  }

  /** The stream failed or was closed by the peer: drop what it had not delivered, report, back off, then a new stream. */
  private streamEnded(p: Peer, st: OutStream, o: Outcome): void {
    if (st.ended) return;
    st.ended = true;
    if (st.timer !== null) clearTimeout(st.timer);
    if (st.lifetimeTimer !== null) clearTimeout(st.lifetimeTimer);
    st.timer = st.lifetimeTimer = null;
    st.req.destroy();
    if (p.stream === st) p.stream = null;
    if (p.closed) return;
    this.c.streamsFailed++;
    this.c.droppedFailed += st.msgs;
    this.c.batchesFailed += st.batches;
    this.failed(p, st.url, o, 'messages');
    if (p.backoffTimer !== null) return;
    p.backoffTimer = setTimeout(
      () => {
        p.backoffTimer = null;
        this.flush(p);
      },
      BACKOFF_MS + Math.floor(Math.random() * BACKOFF_MS),
    );
  }

  /**
   * A failed exchange with a peer: log what matters, learn removal, report unreachable.
   * Only a failure to get any answer moves to the peer's next URL: a URL that answered
   * (even 412, 413 or 500) reaches the peer.
   */
  private failed(p: Peer, url: PeerUrl, o: Outcome, what: 'messages' | 'snapshot'): void {
    if ('error' in o) {
      if (p.urls.length > 1 && p.url === url) p.rotate();
    } else if (o.status === 412) {
      this.logThrottled(
        `mismatch/${p.id}`,
        CLUSTER_MISMATCH_LOG_INTERVAL_MS,
        `peer ${idHex(p.id)} at ${url.href} refused our ${what}: cluster ID mismatch (ours ${this.clusterHex}, theirs ${String(o.headers[HEADER_CLUSTER_ID] ?? '?')}): is it a member of another cluster?`,
      );
    } else if (o.status === 410) {
      this.removedByPeer(p.id);
    }
    if (what === 'messages') {
      // One line when the peer goes from reachable (or never tried) to failing; the recovery logs "reachable".
      // 412 and 410 have their own lines above.
      const explained = !('error' in o) && (o.status === 412 || o.status === 410);
      if (!explained && (p.active || !this.throttle.has(`inactive/${p.id}`))) {
        const reason = 'error' in o ? errorText(o.error) : `HTTP ${o.status} ${o.body.toString('utf8', 0, Math.min(o.body.length, 200)).trim()}`;
        this.logThrottled(`inactive/${p.id}`, 0, `peer ${idHex(p.id)}: messages to ${url.href} failed: ${reason}`);
      }
      p.active = false;
    }
    this.reportUnreachable(p);
  }

  private reportUnreachable(p: Peer): void {
    const now = performance.now();
    if (now - p.lastUnreachableMs < UNREACHABLE_REPORT_INTERVAL_MS) return;
    p.lastUnreachableMs = now;
    this.o.onUnreachable(p.id);
  }

  private removedByPeer(by: bigint): void {
    if (this.removedReported) return;
    this.removedReported = true;
    this.log(`peer ${idHex(by)} says this member (${this.localHex}) was removed from the cluster (HTTP 410)`);
    this.o.onRemoved?.();
  }

  // ---- sending snapshots ----

  private sendSnapshot(p: Peer, m: Message): void {
    assert(m.snapshot !== null, 'a snap message carries a snapshot');
    if (p.snapshotReq !== null) {
      // Raft sends no second snapshot before the first is reported; drop a stray one rather than stack uploads.
      this.c.droppedSnapshotBusy++;
      this.log(`peer ${idHex(p.id)}: a snapshot is already being sent; dropped the snapshot at index ${m.snapshot.meta.index}`);
      return;
    }
    const { head, data } = encodeSnapshotMessage(m);
    const total = head.length + data.byteLength;
    const url = p.url;
    const startedMs = performance.now();
    this.log(`peer ${idHex(p.id)}: sending snapshot at index ${m.snapshot.meta.index} (${total} bytes) to ${url.href}`);
    p.snapshotReq = exchange(
      { agent: p.otherAgent, host: url.host, port: url.port, method: 'POST', path: PATH_SNAPSHOT, headers: this.headers('application/octet-stream', total) },
      this.s.snapshotTimeoutMs,
      RESPONSE_TEXT_BYTES_MAX,
      (req, arm) => {
        let off = 0;
        const onWritten = (): void => arm();
        const pump = (): void => {
          while (off < data.byteLength) {
            const chunk = data.subarray(off, Math.min(off + SNAPSHOT_CHUNK_BYTES, data.byteLength));
            off += chunk.byteLength;
            if (!req.write(chunk, onWritten)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        req.write(head, onWritten);
        pump();
      },
      (o) => {
        if (p.closed) return;
        p.snapshotReq = null;
        if (!('error' in o) && o.status >= 200 && o.status < 300) {
          this.c.snapshotsSent++;
          this.c.bytesSent += total;
          this.log(`peer ${idHex(p.id)}: snapshot sent (${total} bytes in ${Math.round(performance.now() - startedMs)} ms)`);
          this.o.onSnapshotStatus(p.id, 'finish');
          return;
        }
        this.c.snapshotsFailed++;
        const reason = 'error' in o ? errorText(o.error) : `HTTP ${o.status} ${o.body.toString('utf8', 0, Math.min(o.body.length, 200)).trim()}`;
        this.log(`peer ${idHex(p.id)}: snapshot to ${url.href} failed: ${reason}`);
        this.failed(p, url, o, 'snapshot');
        this.o.onSnapshotStatus(p.id, 'failure');
      },
    );
  }

  private headers(contentType: string, length: number): http.OutgoingHttpHeaders {
    return { 'content-type': contentType, 'content-length': length, [HEADER_CLUSTER_ID]: this.clusterHex, [HEADER_FROM]: this.localHex };
  }

  // ---- JSON RPC ----

  /** Serves POST `path` (JSON in, JSON out) to peers. `fromId` is the caller's ID (0n for a member that has none yet). */
  route(path: string, handler: (body: unknown, fromId: bigint) => Promise<unknown>): void {
    assert(path.startsWith('/') && !path.includes('?'), `route path ${path} is an absolute path without a query`);
    assert(!path.startsWith('/raft/'), `route path ${path} is not under /raft/ (the transport's own)`);
    assert(!this.routes.has(path), `route ${path} is registered once`);
    this.routes.set(path, handler);
  }

  /**
   * POSTs `body` as JSON to the peer's `path`, trying its URLs in order (from the one that
   * last worked) until one answers; resolves to the handler's result. Rejects with a
   * {@link PeerTransportError}. `timeoutMs` (default `rpcTimeoutMs`) bounds the whole call.
   */
  request(peerId: bigint, path: string, body: unknown, timeoutMs?: number): Promise<unknown> {
    const p = this.closed ? undefined : this.peers.get(peerId);
    if (p === undefined) return Promise.reject(new PeerTransportError(this.closed ? 'ERR_TRANSPORT_CLOSED' : 'ERR_PEER_UNKNOWN', `no peer ${idHex(peerId)}`));
    let json: Buffer;
    try {
      json = Buffer.from(JSON.stringify(body ?? null), 'utf8');
    } catch (e) {
      return Promise.reject(new PeerTransportError('ERR_PEER_BAD_REQUEST', `body of ${path} is not JSON: ${(e as Error).message}`));
    }
    const deadline = performance.now() + (timeoutMs ?? this.s.rpcTimeoutMs);
    return new Promise<unknown>((resolve, reject) => {
      let current: http.ClientRequest | null = null;
      const entry = {
        peerId,
        reject: (e: Error): void => {
          this.pending.delete(entry);
          current?.destroy();
          reject(e);
        },
      };
      this.pending.add(entry);
      const settle = (f: () => void): void => {
        if (!this.pending.delete(entry)) return; // already rejected by close/removePeer
        f();
      };
      const tryUrl = (index: number, tried: number, lastError: Error | undefined): void => {
        const left = deadline - performance.now();
        if (tried === p.urls.length || left <= 0) {
          const timedOut = left <= 0 || (lastError as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
          settle(() =>
            reject(
              new PeerTransportError(
                timedOut ? 'ERR_PEER_TIMEOUT' : 'ERR_PEER_UNREACHABLE',
                `${path} to peer ${idHex(peerId)}: ${lastError ? errorText(lastError) : 'no time left'}`,
              ),
            ),
          );
          return;
        }
        const url = p.urls[index % p.urls.length];
        current = exchange(
          { agent: p.otherAgent, host: url.host, port: url.port, method: 'POST', path, headers: this.headers('application/json', json.length) },
          Math.max(1, Math.ceil(left)),
          RPC_RESPONSE_BYTES_MAX,
          (req) => req.end(json),
          (o) => {
            current = null;
            if (p.closed) return;
            if ('error' in o) {
              // No answer through this URL: the next one (a timeout used up the deadline, so it ends here).
              tryUrl(index + 1, tried + 1, o.error);
              return;
            }
            p.urlIndex = index % p.urls.length;
            if (o.status === 410) this.removedByPeer(peerId);
            settle(() => {
              try {
                resolve(rpcResult(o, path, `peer ${idHex(peerId)}`, this.o.clusterId));
              } catch (e) {
                reject(e);
              }
            });
          },
        );
      };
      tryUrl(p.urlIndex, 0, undefined);
    });
  }

  /**
   * POSTs `body` as JSON to `path` at one peer URL, for a member that does not know its
   * peers yet (joining: it asks for the member list). Without `clusterId` no cluster
   * header is sent (the receiver's routes accept that); with it, a mismatch is an error.
   */
  static fetchJson(url: string, path: string, body: unknown, clusterId: bigint | undefined, timeoutMs = DEFAULT_RPC_TIMEOUT_MS): Promise<unknown> {
    let u: PeerUrl;
    let json: Buffer;
    try {
      u = parsePeerUrl(url);
      json = Buffer.from(JSON.stringify(body ?? null), 'utf8');
    } catch (e) {
      return Promise.reject(isPeerTransportError(e) ? e : new PeerTransportError('ERR_PEER_BAD_REQUEST', `body of ${path} is not JSON: ${(e as Error).message}`));
    }
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': json.length };
    if (clusterId !== undefined) headers[HEADER_CLUSTER_ID] = idHex(clusterId);
    return new Promise((resolve, reject) => {
      exchange(
        { agent: false, host: u.host, port: u.port, method: 'POST', path, headers },
        timeoutMs,
        RPC_RESPONSE_BYTES_MAX,
        (req) => req.end(json),
        (o) => {
          if ('error' in o) {
            const code = (o.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? 'ERR_PEER_TIMEOUT' : 'ERR_PEER_UNREACHABLE';
            reject(new PeerTransportError(code, `${path} at ${url}: ${errorText(o.error)}`));
            return;
          }
          try {
            resolve(rpcResult(o, path, url, clusterId));
          } catch (e) {
            reject(e);
          }
        },
      );
    });
  }

  // ---- receiving ----

  /**
   * Serves a peer HTTP request: call it from the member's peer http.Server 'request'
   * handler. Returns false (and touches nothing) for a path the transport does not own.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const raw = req.url ?? '';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const route = this.routes.get(path);
    const kind = path === PATH_MESSAGES ? 'messages' : path === PATH_STREAM ? 'stream' : path === PATH_SNAPSHOT ? 'snapshot' : route !== undefined ? 'rpc' : undefined;
    if (kind === undefined) return false;
    res.setHeader(HEADER_CLUSTER_ID, this.clusterHex);
    const refuse = (status: number, text: string, logLine?: string): void => {
      this.c.requestsRefused++;
      if (logLine !== undefined) this.logThrottled(`refused/${status}/${String(req.headers[HEADER_FROM])}`, BAD_REQUEST_LOG_INTERVAL_MS, logLine);
      if (res.headersSent) return;
      // Do not read the rest of a refused body: answer and close the connection.
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
      res.end(text);
      req.resume();
    };
    if (this.closed) {
      refuse(503, 'transport closed');
      return true;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      refuse(405, 'method not allowed');
      return true;
    }
    const clusterHeader = req.headers[HEADER_CLUSTER_ID];
    const fromHeader = req.headers[HEADER_FROM];
    const from = parseHexId(fromHeader);
    if (clusterHeader !== undefined || kind !== 'rpc') {
      const cluster = parseHexId(clusterHeader);
      if (cluster === undefined) {
        refuse(400, `missing or malformed ${HEADER_CLUSTER_ID} header`, `refused ${path} from ${req.socket.remoteAddress}: no valid ${HEADER_CLUSTER_ID} header`);
        return true;
      }
      if (cluster !== this.o.clusterId) {
        this.c.requestsRefused++;
        this.logThrottled(
          `mismatch-in/${String(fromHeader)}`,
          CLUSTER_MISMATCH_LOG_INTERVAL_MS,
          `refused ${path} from member ${String(fromHeader)} at ${req.socket.remoteAddress}: cluster ID mismatch (theirs ${idHex(cluster)}, ours ${this.clusterHex})`,
        );
        res.writeHead(412, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
        res.end(CLUSTER_MISMATCH_TEXT);
        req.resume();
        return true;
      }
    }
    if (from === undefined && (fromHeader !== undefined || kind !== 'rpc')) {
      refuse(400, `missing or malformed ${HEADER_FROM} header`, `refused ${path} from ${req.socket.remoteAddress}: no valid ${HEADER_FROM} header`);
      return true;
    }
    if (from !== undefined && this.removed.has(from)) {
      refuse(410, REMOVED_TEXT, `refused ${path} from removed member ${idHex(from)}`);
      return true;
    }
    if (kind === 'stream') {
      this.serveStream(req, res, from!);
      return true;
    }
    const limit = kind === 'messages' ? 2 * this.s.batchBytesMax : kind === 'snapshot' ? this.s.snapshotBytesMax : this.s.batchBytesMax;
    readBody(
      req,
      res,
      limit,
      (status, text) => refuse(status, text, `refused ${path} from ${String(fromHeader)}: ${text}`),
      (body) => {
        if (this.closed) return refuse(503, 'transport closed');
        this.c.bytesReceived += body.length;
        if (kind === 'rpc') return this.serveRoute(route!, body, from ?? 0n, path, res, refuse);
        let msgs: Message[];
        try {
          msgs = decodeMessages(body);
        } catch (e) {
          if (!(e instanceof PeerCodecError)) throw e;
          return refuse(400, e.message, `refused ${path} from ${String(fromHeader)}: ${e.message}`);
        }
        if (kind === 'snapshot') {
          if (msgs.length !== 1 || msgs[0].type !== 'snap' || msgs[0].snapshot === null) {
            return refuse(400, 'a snapshot request carries exactly one snap message', `refused ${path} from ${String(fromHeader)}: not one snap message`);
          }
          if (msgs[0].to !== this.o.localId) {
            this.c.droppedMisaddressed++;
            return refuse(400, `snapshot addressed to ${idHex(msgs[0].to)}, this is ${this.localHex}`, `refused a snapshot for ${idHex(msgs[0].to)} from ${String(fromHeader)}`);
          }
          this.c.snapshotsReceived++;
          this.log(`received a snapshot at index ${msgs[0].snapshot.meta.index} (${body.length} bytes) from ${String(fromHeader)}`);
        }
        let mine = msgs;
        for (let i = 0; i < msgs.length; i++) {
          if (msgs[i].to !== this.o.localId) {
            mine = msgs.filter((m) => m.to === this.o.localId);
            this.c.droppedMisaddressed += msgs.length - mine.length;
            break;
          }
        }
        this.c.received += mine.length;
        if (mine.length > 0) this.o.onMessages(mine);
        res.writeHead(204);
        res.end();
      },
    );
    return true;
  }

  /**
   * Reads a message stream: frames (u32 length + batch) decoded as they arrive, each batch
   * delivered; at most one frame (≤ 2 × maxBatchBytes) is buffered. Accepted by sending the
   * answer's headers at once; the answer ends when the stream does.
   */
  private serveStream(req: http.IncomingMessage, res: http.ServerResponse, from: bigint): void {
    const fromHex = idHex(from);
    const frameMax = 2 * this.s.batchBytesMax;
    this.c.streamsAccepted++;
    this.inbound.add(req);
    req.socket.setNoDelay(true);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.flushHeaders();
    let chunks: Buffer[] = [];
    let buffered = 0;
    /** The length of the frame being read, -1 while its length is not read yet. */
    let need = -1;
    let stopped = false;
    const stop = (text: string, logLine: string | undefined): void => {
      if (stopped) return;
      stopped = true;
      chunks = [];
      buffered = 0;
      this.inbound.delete(req);
      if (logLine !== undefined) {
        this.c.streamsRefused++;
        this.c.requestsRefused++;
        this.logThrottled(`refused-stream/${fromHex}`, BAD_REQUEST_LOG_INTERVAL_MS, logLine);
      }
      if (!res.writableEnded && !res.destroyed) res.end(text, () => req.socket.destroy());
      else req.socket.destroy();
    };
    /** Takes `n` bytes off the front of what is buffered (n ≤ buffered). */
    const take = (n: number): Buffer => {
      if (n === 0) return Buffer.alloc(0);
      const first = chunks[0];
      if (first.length >= n) {
        const out = first.subarray(0, n);
        if (first.length === n) chunks.shift();
        else chunks[0] = first.subarray(n);
        buffered -= n;
        return out;
      }
      const out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = chunks[0];
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) chunks.shift();
        else chunks[0] = c.subarray(k);
      }
      buffered -= n;
      return out;
    };
    const deliver = (body: Buffer): void => {
      if (this.removed.has(from)) return stop(REMOVED_TEXT, `closed the stream from removed member ${fromHex}`);
      this.c.bytesReceived += STREAM_FRAME_HEADER_BYTES + body.length;
      let msgs: Message[];
      try {
        msgs = decodeMessages(body);
      } catch (e) {
        if (!(e instanceof PeerCodecError)) throw e;
        return stop(e.message, `closed the stream from ${fromHex}: ${e.message}`);
      }
      let mine = msgs;
      for (let i = 0; i < msgs.length; i++) {
        if (msgs[i].to !== this.o.localId) {
          mine = msgs.filter((m) => m.to === this.o.localId);
          this.c.droppedMisaddressed += msgs.length - mine.length;
          break;
        }
      }
      this.c.received += mine.length;
      if (mine.length > 0) this.o.onMessages(mine);
    };
    req.on('data', (c: Buffer) => {
      if (stopped) return;
      if (this.closed) return stop('transport closed', undefined);
      chunks.push(c);
      buffered += c.length;
      while (!stopped) {
        if (need < 0) {
          if (buffered < STREAM_FRAME_HEADER_BYTES) break;
          const h = take(STREAM_FRAME_HEADER_BYTES);
          need = h.readUInt32BE(0);
          if (need > frameMax) {
            return stop(`frame of ${need} bytes exceeds the limit of ${frameMax} bytes`, `closed the stream from ${fromHex}: a frame of ${need} bytes exceeds the limit of ${frameMax} bytes`);
          }
        }
        if (buffered < need) break;
        const body = take(need);
        need = -1;
        deliver(body);
      }
    });
    req.on('end', () => {
      if (stopped) return;
      if (need >= 0 || buffered > 0) return stop('the stream ended inside a frame', `closed the stream from ${fromHex}: it ended inside a frame`);
      stopped = true;
      this.inbound.delete(req);
      res.end();
    });
    req.on('close', () => {
      this.inbound.delete(req);
      stopped = true;
      chunks = [];
    });
    req.on('error', () => {
      /* the sender went away: nothing to answer */
    });
    req.resume();
  }

  private serveRoute(handler: RouteHandler, body: Buffer, from: bigint, path: string, res: http.ServerResponse, refuse: (status: number, text: string, logLine?: string) => void): void {
    let arg: unknown;
    try {
      arg = JSON.parse(body.toString('utf8'));
    } catch (e) {
      return refuse(400, `body is not JSON: ${(e as Error).message}`, `refused ${path} from ${idHex(from)}: body is not JSON`);
    }
    const answer = (status: number, value: unknown): void => {
      if (res.writableEnded || res.destroyed) return;
      let text: string;
      try {
        text = JSON.stringify(value);
      } catch (e) {
        status = 500;
        text = JSON.stringify({ error: { message: `the answer of ${path} is not JSON: ${(e as Error).message}` } });
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    };
    let p: Promise<unknown>;
    try {
      p = handler(arg, from);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (result) => answer(200, { result: result === undefined ? null : result }),
      (e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        const code = (err as { code?: unknown }).code;
        answer(500, { error: { message: err.message, code: typeof code === 'string' ? code : undefined } });
      },
    );
  }

  // ---- the rest ----

  stats(): PeerTransportStats {
    const c = this.c;
    const peers: PeerStats[] = [];
    for (const p of this.peers.values()) {
      const st = p.stream;
      const inFlight = p.inFlight !== null || (st !== null && (!st.accepted || st.draining));
      peers.push({ id: p.id, url: p.url.href, queued: p.queue.length, inFlight, active: p.active, snapshotInFlight: p.snapshotReq !== null });
    }
    return {
      ...c,
      dropped: c.droppedQueueFull + c.droppedUnknownPeer + c.droppedFailed + c.droppedMisaddressed + c.droppedSnapshotBusy,
      peers,
    };
  }

  /** Stops every sender, destroys agents and sockets, rejects pending requests. No callback is called after it. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const p of this.peers.values()) {
      this.c.droppedUnknownPeer += p.queue.length;
      p.close();
    }
    this.peers.clear();
    for (const r of [...this.inbound]) r.socket.destroy();
    this.inbound.clear();
    for (const r of [...this.pending]) r.reject(new PeerTransportError('ERR_TRANSPORT_CLOSED', 'the peer transport was closed'));
    return Promise.resolve();
  }

  private log(line: string): void {
    this.o.log?.(`peer-transport ${this.localHex}: ${line}`);
  }

  /** Logs `line` unless a line with this key was logged less than `intervalMs` ago. */
  private logThrottled(key: string, intervalMs: number, line: string): void {
    const now = performance.now();
    const last = this.throttle.get(key);
    if (last !== undefined && now - last < intervalMs) return;
    if (this.throttle.size >= THROTTLE_KEYS_MAX) this.throttle.clear();
    this.throttle.set(key, now);
    this.log(line);
  }
}

/** Interprets an RPC answer: the result of a 200, or the error the status and body say. */
function rpcResult(o: Extract<Outcome, { status: number }>, path: string, who: string, clusterId: bigint | undefined): unknown {
  const text = (): string => o.body.toString('utf8', 0, Math.min(o.body.length, RESPONSE_TEXT_BYTES_MAX)).trim();
  const theirs = parseHexId(o.headers[HEADER_CLUSTER_ID]);
  if (o.status === 412 || (clusterId !== undefined && theirs !== undefined && theirs !== clusterId)) {
    throw new PeerTransportError('ERR_PEER_CLUSTER_MISMATCH', `${path} at ${who}: cluster ID mismatch (ours ${clusterId === undefined ? '?' : idHex(clusterId)}, theirs ${theirs === undefined ? '?' : idHex(theirs)})`, o.status);
  }
  if (o.status === 410) throw new PeerTransportError('ERR_PEER_REMOVED', `${path} at ${who}: this member was removed from the cluster`, 410);
  if (o.status !== 200 && o.status !== 500) throw new PeerTransportError('ERR_PEER_HTTP', `${path} at ${who}: HTTP ${o.status} ${text()}`, o.status);
  let v: unknown;
  try {
    v = JSON.parse(o.body.toString('utf8'));
  } catch {
    throw new PeerTransportError('ERR_PEER_BAD_RESPONSE', `${path} at ${who}: HTTP ${o.status} with a body that is not JSON: ${text().slice(0, 200)}`, o.status);
  }
  if (o.status === 200 && v !== null && typeof v === 'object' && 'result' in v) return (v as { result: unknown }).result;
  if (o.status === 500 && v !== null && typeof v === 'object' && 'error' in v) {
    const e = (v as { error: { message?: unknown; code?: unknown } }).error;
    const message = typeof e?.message === 'string' ? e.message : 'unknown error';
    const code = typeof e?.code === 'string' ? e.code : undefined;
    throw new PeerTransportError('ERR_PEER_REMOTE', `${path} at ${who}: ${message}`, 500, code, message);
  }
  throw new PeerTransportError('ERR_PEER_BAD_RESPONSE', `${path} at ${who}: HTTP ${o.status} with an unexpected body: ${text().slice(0, 200)}`, o.status);
}
