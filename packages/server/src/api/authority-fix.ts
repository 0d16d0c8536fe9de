/**
 * Accepts gRPC connections whose `:authority` is a URL.
 *
 * etcd's clientv3 (3.4) dials maintenance calls (`etcdctl endpoint status|hashkv`, also with
 * `--cluster`) with the endpoint as given, e.g. `http://127.0.0.1:2379`, and grpc-go sends
 * that string as the HTTP/2 `:authority`. Go's server accepts it; Node's nghttp2 rejects
 * the stream (RST_STREAM PROTOCOL_ERROR) before any JavaScript sees it. So every client
 * connection passes through this small filter on its way to the gRPC server:
 *
 * - It forwards bytes untouched until the connection's first HEADERS block is complete.
 * - If that block's `:authority` is a plain `host:port` (the usual case), the rest of the
 *   connection is forwarded untouched: gRPC clients send one authority per connection.
 * - Otherwise it decodes every header block (HPACK, tracking the client's dynamic table),
 *   replaces a URL authority by its `host:port`, and re-encodes the block with its own
 *   encoder, after telling the server's decoder to empty its table (RFC 7541 §4.2), so
 *   both tables stay consistent.
 *
 * Frame layout: RFC 7540 §4.1 (9-byte header), HEADERS §6.2, CONTINUATION §6.10.
 */
import { Duplex } from 'node:stream';
import type * as net from 'node:net';

// hpack.js has no type definitions.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpack = require('hpack.js') as {
  decompressor: { create(o: object): HpackDecompressor };
  compressor: { create(o: object): HpackCompressor };
};
interface HpackHeader {
  name: string;
  value: string;
  neverIndex?: boolean;
}
interface HpackDecompressor {
  write(b: Buffer): void;
  execute(): void;
  read(): HpackHeader | null;
}
interface HpackCompressor {
  write(h: HpackHeader[]): void;
  read(): Buffer | null;
}

const PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const TYPE_HEADERS = 0x1;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** nghttp2's default SETTINGS_MAX_FRAME_SIZE and header table size. */
const MAX_FRAME_BYTES = 16384;
const HEADER_TABLE_BYTES = 4096;
/** A header block larger than this is refused (bounded buffering). */
const HEADER_BLOCK_BYTES_MAX = 256 * 1024;

type Mode = 'sniff' | 'pass' | 'rewrite';

export function needsRewrite(authority: string): boolean {
  return authority.includes('/');
}

export function fixAuthority(authority: string): string {
  try {
    const u = new URL(authority);
    return u.host;
  } catch {
    return authority.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  }
}

/** Rewrites the client→server byte stream of one HTTP/2 connection. */
export class AuthorityRewriter {
  private mode: Mode = 'sniff';
  private prefaceLeft = PREFACE_BYTES;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly decoder = hpack.decompressor.create({ table: { maxSize: HEADER_TABLE_BYTES } });
  private encoder: HpackCompressor | undefined;
  /** A HEADERS frame waiting for its CONTINUATIONs. */
  private pending: { streamId: number; flags: number; priority: Buffer | undefined; fragments: Buffer[]; original: Buffer[]; bytes: number } | undefined;
  /** Whether the server's decoder table has been emptied (before the first rewritten block). */
  private emptiedServerTable = false;

  /** Feeds bytes from the client; returns bytes for the server. */
  push(chunk: Buffer): Buffer[] {
    if (this.mode === 'pass') return [chunk];
    const out: Buffer[] = [];
    let data = this.buffered.length > 0 ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.buffered = Buffer.alloc(0);
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, data.length);
      out.push(data.subarray(0, n));
      this.prefaceLeft -= n;
      data = data.subarray(n);
    }
    while (data.length >= FRAME_HEADER_BYTES) {
      if ((this.mode as Mode) === 'pass') {
        out.push(data);
        return out;
      }
      const length = data.readUIntBE(0, 3);
      const total = FRAME_HEADER_BYTES + length;
      if (data.length < total) break;
      const frame = data.subarray(0, total);
      data = data.subarray(total);
      const type = frame[3];
      if (type !== TYPE_HEADERS && type !== TYPE_CONTINUATION) {
        out.push(frame);
        continue;
      }
      const block = this.collect(frame);
      if (block) out.push(...this.headerBlock(block));
    }
    if (data.length > 0) {
      if ((this.mode as Mode) === 'pass') out.push(data);
      else this.buffered = Buffer.from(data);
    }
    return out;
  }

  /** Gathers HEADERS + CONTINUATION frames; returns the whole block when END_HEADERS arrives. */
  private collect(frame: Buffer): HeaderBlock | undefined {
    const type = frame[3];
    const flags = frame[4];
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    let payload = frame.subarray(FRAME_HEADER_BYTES);
    if (type === TYPE_HEADERS) {
      let padding = 0;
      if (flags & FLAG_PADDED) {
        padding = payload[0];
        payload = payload.subarray(1);
      }
      let priority: Buffer | undefined;
      if (flags & FLAG_PRIORITY) {
        priority = payload.subarray(0, 5);
        payload = payload.subarray(5);
      }
      payload = payload.subarray(0, payload.length - padding);
      this.pending = { streamId, flags, priority, fragments: [payload], original: [frame], bytes: payload.length };
    } else if (this.pending && this.pending.streamId === streamId) {
      this.pending.fragments.push(payload);
      this.pending.original.push(frame);
      this.pending.bytes += payload.length;
    } else {
      // A CONTINUATION without HEADERS: let the server reject it.
      return { streamId, flags, priority: undefined, block: Buffer.alloc(0), original: [frame] };
    }
    const p = this.pending;
    if (p.bytes > HEADER_BLOCK_BYTES_MAX) throw new Error('header block too large');
    if (!(flags & FLAG_END_HEADERS)) return undefined;
    this.pending = undefined;
    return { streamId: p.streamId, flags: p.flags, priority: p.priority, block: Buffer.concat(p.fragments), original: p.original };
  }

  private headerBlock(b: HeaderBlock): Buffer[] {
    if (b.block.length === 0 && b.original.length === 1 && b.original[0][3] === TYPE_CONTINUATION) return b.original;
    this.decoder.write(b.block);
    this.decoder.execute();
    const headers: HpackHeader[] = [];
    for (let h = this.decoder.read(); h !== null; h = this.decoder.read()) headers.push(h);
    const authority = headers.find((h) => h.name === ':authority');
    if (this.mode === 'sniff') {
      if (!authority || !needsRewrite(authority.value)) {
        this.mode = 'pass';
        return b.original;
      }
      this.mode = 'rewrite';
      this.encoder = hpack.compressor.create({ table: { maxSize: HEADER_TABLE_BYTES } });
    }
    for (const h of headers) if (h.name === ':authority' && needsRewrite(h.value)) h.value = fixAuthority(h.value);
    const encoder = this.encoder!;
    encoder.write(headers);
    const parts: Buffer[] = [];
    for (let c = encoder.read(); c !== null; c = encoder.read()) parts.push(c);
    let block = Buffer.concat(parts);
    if (!this.emptiedServerTable) {
      // First rewritten block: dynamic table size update to 0 (evict all) then back.
      block = Buffer.concat([tableSizeUpdate(0), tableSizeUpdate(HEADER_TABLE_BYTES), block]);
      this.emptiedServerTable = true;
    }
    return frames(b.streamId, b.flags & (FLAG_END_STREAM | FLAG_PRIORITY), b.priority, block);
  }
}

interface HeaderBlock {
  streamId: number;
  flags: number;
  priority: Buffer | undefined;
  block: Buffer;
  /** The frames as received, forwarded as they are when nothing needs rewriting. */
  original: Buffer[];
}

/** HPACK dynamic table size update (RFC 7541 §6.3): 001xxxxx with a 5-bit prefix integer. */
function tableSizeUpdate(size: number): Buffer {
  const bytes: number[] = [];
  if (size < 31) bytes.push(0x20 | size);
  else {
    bytes.push(0x20 | 31);
    let rest = size - 31;
    while (rest >= 128) {
      bytes.push((rest & 0x7f) | 0x80);
      rest >>= 7;
    }
    bytes.push(rest);
  }
  return Buffer.from(bytes);
}

/** A header block as HEADERS (+ CONTINUATION) frames within the frame size limit. */
function frames(streamId: number, flags: number, priority: Buffer | undefined, block: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const firstRoom = MAX_FRAME_BYTES - (priority ? 5 : 0);
  let offset = 0;
  let first = true;
  while (first || offset < block.length) {
    const room = first ? firstRoom : MAX_FRAME_BYTES;
    const part = block.subarray(offset, offset + room);
    offset += part.length;
    const last = offset >= block.length;
    const payload = first && priority ? Buffer.concat([priority, part]) : part;
    const head = Buffer.alloc(FRAME_HEADER_BYTES);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = first ? TYPE_HEADERS : TYPE_CONTINUATION;
    head[4] = (first ? flags : 0) | (last ? FLAG_END_HEADERS : 0);
    head.writeUInt32BE(streamId, 5);
    out.push(head, payload);
    first = false;
  }
  return out;
}

/** Wraps a client socket so that the gRPC server reads the rewritten stream. */
export class AuthorityFixingSocket extends Duplex {
  private readonly rewriter = new AuthorityRewriter();

  constructor(private readonly socket: net.Socket) {
    super();
    socket.on('data', (chunk: Buffer) => {
      let parts: Buffer[];
      try {
        parts = this.rewriter.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
        return;
      }
      let more = true;
      for (const p of parts) more = this.push(p) && more;
      if (!more) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    socket.setNoDelay(true);
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.socket.write(Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    cb(err);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
}
