/**
 * HPACK (RFC 7541) for a gRPC server: a full decoder for request header blocks and a
 * static-only encoder for responses.
 *
 * Decoder: static table (Appendix A), dynamic table (§2.3.2, §4) with eviction, every field
 * representation (§6.1 indexed, §6.2 literals with incremental, without and never
 * indexing, §6.3 table size updates, only at the start of a block), integers (§5.1) and
 * strings raw or Huffman-coded (§5.2, huffman.ts). Strings are decoded as latin1, one
 * character per octet, so an entry's size (§4.1: name octets + value octets + 32) is its
 * string lengths plus 32.
 *
 * A decoded header list is a flat, frozen array [name0, value0, name1, value1, ...].
 * Clients repeat identical blocks (nghttp2 and grpc-go index everything, so after the first
 * request a block is a few indexed-field bytes), so the decoder keeps a small cache keyed by
 * the block's bytes. A cached list is valid only while the dynamic table it was decoded
 * against is unchanged: entries carry the table's generation (bumped on every insertion,
 * eviction or resize), or "any" when the block referenced no dynamic entry at all. Blocks
 * that change the table are never served from the cache: their insertions must happen.
 *
 * Encoder: responses use only the static table and literals without indexing (§6.2.2), so
 * the client's decoder state never depends on ours and the blocks are constants.
 */
import { HuffmanError, huffmanDecode } from './huffman';

export class HpackError extends Error {}

export type HeaderList = readonly string[];

/** RFC 7541 Appendix A (index 1..61). */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ['', ''],
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length - 1;
/** §4.1: every entry costs its octets plus 32. */
const ENTRY_OVERHEAD_BYTES = 32;

export interface HpackDecoderOptions {
  /** Our SETTINGS_HEADER_TABLE_SIZE: the most the client's encoder may use (default 4096). */
  tableBytesMax?: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE: decoded size (§6.5.2 accounting) of one block. */
  headerListBytesMax?: number;
  /** Cached blocks (0 disables the cache). */
  cacheEntriesMax?: number;
  /** Blocks longer than this are not cached. */
  cacheBlockBytesMax?: number;
}

interface CacheEntry {
  headers: HeaderList;
  /** Table generation the list is valid for; -1 when it referenced no dynamic entry. */
  generation: number;
}

export class HpackDecoder {
  readonly tableBytesMax: number;
  readonly headerListBytesMax: number;
  private readonly cacheEntriesMax: number;
  private readonly cacheBlockBytesMax: number;
  /** Dynamic table as a ring: `count` entries, the newest at `(head + count - 1) % cap`. */
  private names: string[];
  private values: string[];
  private head = 0;
  private count = 0;
  private sizeBytes = 0;
  /** Current maximum size, changed by size updates within tableBytesMax (§4.2). */
  private limitBytes: number;
  private generation = 0;
  private readonly cache = new Map<string, CacheEntry>();
  /** Set by decodeFields: whether the last block referenced / changed the dynamic table. */
  private referencedDynamic = false;
  private changedTable = false;

  constructor(opts: HpackDecoderOptions = {}) {
    this.tableBytesMax = opts.tableBytesMax ?? 4096;
    this.headerListBytesMax = opts.headerListBytesMax ?? 65_536;
    this.cacheEntriesMax = opts.cacheEntriesMax ?? 128;
    this.cacheBlockBytesMax = opts.cacheBlockBytesMax ?? 1024;
    this.limitBytes = this.tableBytesMax;
    const cap = Math.max(1, Math.floor(this.tableBytesMax / ENTRY_OVERHEAD_BYTES));
    this.names = new Array<string>(cap);
    this.values = new Array<string>(cap);
  }

  /** Dynamic table size in bytes (§4.1) and entry count, for tests. */
  get tableSizeBytes(): number {
    return this.sizeBytes;
  }
  get tableEntries(): number {
    return this.count;
  }

  /** The dynamic entry at HPACK index `index` (62 = newest), for tests. */
  dynamicEntry(index: number): [string, string] | undefined {
    const i = index - STATIC_COUNT - 1;
    if (i < 0 || i >= this.count) return undefined;
    const slot = (this.head + this.count - 1 - i) % this.names.length;
    return [this.names[slot], this.values[slot]];
  }

  /**
   * Decodes one complete header block. Throws HpackError on any malformed input, after
   * which the connection must be closed (COMPRESSION_ERROR): the table can no longer be
   * trusted to match the client's.
   */
  decode(block: Buffer): HeaderList {
    const cacheable = this.cacheEntriesMax > 0 && block.length <= this.cacheBlockBytesMax;
    let key: string | undefined;
    if (cacheable) {
      key = block.toString('latin1');
      const hit = this.cache.get(key);
      if (hit !== undefined && (hit.generation === -1 || hit.generation === this.generation)) return hit.headers;
    }
    const headers = this.decodeFields(block);
    if (key !== undefined && !this.changedTable) {
      if (this.cache.size >= this.cacheEntriesMax) this.cache.clear();
      this.cache.set(key, { headers, generation: this.referencedDynamic ? this.generation : -1 });
    }
    return headers;
  }

  private decodeFields(block: Buffer): HeaderList {
    const out: string[] = [];
    let listBytes = 0;
    let pos = 0;
    let fieldSeen = false;
    this.referencedDynamic = false;
    this.changedTable = false;
    const end = block.length;
    while (pos < end) {
      const b = block[pos];
      let name: string;
      let value: string;
      if (b & 0x80) {
        // §6.1 Indexed Header Field.
        const index = this.readInt(block, pos, 7);
        pos = this.pos;
        if (index === 0) throw new HpackError('HPACK: index 0');
        if (index <= STATIC_COUNT) {
          name = STATIC_TABLE[index][0];
          value = STATIC_TABLE[index][1];
        } else {
          const slot = this.dynamicSlot(index);
          name = this.names[slot];
          value = this.values[slot];
        }
      } else if ((b & 0xe0) === 0x20) {
        // §6.3 Dynamic Table Size Update: only before the first field of a block (§4.2).
        if (fieldSeen) throw new HpackError('HPACK: dynamic table size update after a header field');
        const size = this.readInt(block, pos, 5);
        pos = this.pos;
        if (size > this.tableBytesMax) throw new HpackError(`HPACK: dynamic table size ${size} exceeds SETTINGS_HEADER_TABLE_SIZE ${this.tableBytesMax}`);
        this.limitBytes = size;
        this.evictTo(size);
        this.generation++;
        this.changedTable = true;
        continue;
      } else {
        // §6.2.1 with incremental indexing (01xxxxxx, 6-bit index), §6.2.2 without (0000xxxx)
        // and §6.2.3 never indexed (0001xxxx), both with a 4-bit index.
        const incremental = (b & 0xc0) === 0x40;
        const index = this.readInt(block, pos, incremental ? 6 : 4);
        pos = this.pos;
        if (index === 0) {
          name = this.readString(block, pos);
          pos = this.pos;
        } else if (index <= STATIC_COUNT) {
          name = STATIC_TABLE[index][0];
        } else {
          name = this.names[this.dynamicSlot(index)];
        }
        value = this.readString(block, pos);
        pos = this.pos;
        if (incremental) this.insert(name, value);
      }
      fieldSeen = true;
      listBytes += name.length + value.length + ENTRY_OVERHEAD_BYTES;
      if (listBytes > this.headerListBytesMax) throw new HpackError(`HPACK: header list larger than ${this.headerListBytesMax} bytes`);
      out.push(name, value);
    }
    return Object.freeze(out);
  }

  /** Position after the last readInt/readString (avoids allocating result tuples). */
  private pos = 0;

  private readInt(buf: Buffer, pos: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = buf[pos] & max;
    pos++;
    if (value === max) {
      let shift = 0;
      for (;;) {
        if (pos >= buf.length) throw new HpackError('HPACK: truncated integer');
        const b = buf[pos++];
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) break;
        // Values we accept are far below 2^28 (sizes, indices, lengths within a block).
        if (shift > 21) throw new HpackError('HPACK: integer too large');
      }
    }
    this.pos = pos;
    return value;
  }

  private readString(buf: Buffer, pos: number): string {
    if (pos >= buf.length) throw new HpackError('HPACK: truncated string');
    const huffman = (buf[pos] & 0x80) !== 0;
    const length = this.readInt(buf, pos, 7);
    const start = this.pos;
    const end = start + length;
    if (end > buf.length) throw new HpackError('HPACK: string longer than its block');
    this.pos = end;
    if (!huffman) return buf.toString('latin1', start, end);
    try {
      return huffmanDecode(buf, start, end);
    } catch (err) {
      if (err instanceof HuffmanError) throw new HpackError(err.message);
      throw err;
    }
  }

  private dynamicSlot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.count) throw new HpackError(`HPACK: index ${index} beyond the dynamic table (${this.count} entries)`);
    this.referencedDynamic = true;
    return (this.head + this.count - 1 - i) % this.names.length;
  }

  /** §4.4: evict from the oldest end until the entry fits; an entry larger than the table empties it. */
  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD_BYTES;
    this.generation++;
    this.changedTable = true;
    if (size > this.limitBytes) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.limitBytes - size);
    const cap = this.names.length;
    if (this.count === cap) throw new HpackError('assertion failed: HPACK ring full although the size fits');
    const slot = (this.head + this.count) % cap;
    this.names[slot] = name;
    this.values[slot] = value;
    this.count++;
    this.sizeBytes += size;
  }

  private evictTo(bytes: number): void {
    const cap = this.names.length;
    while (this.sizeBytes > bytes) {
      if (this.count === 0) throw new HpackError('assertion failed: HPACK table size without entries');
      const slot = this.head;
      this.sizeBytes -= this.names[slot].length + this.values[slot].length + ENTRY_OVERHEAD_BYTES;
      this.names[slot] = '';
      this.values[slot] = '';
      this.head = (this.head + 1) % cap;
      this.count--;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Encoding (static table and literals without indexing only).

function encodeInt(out: number[], firstByteFlags: number, prefixBits: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByteFlags | value);
    return;
  }
  out.push(firstByteFlags | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function encodeRawString(out: number[], s: string): void {
  encodeInt(out, 0x00, 7, s.length);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
}

const STATIC_NAME_INDEX = new Map<string, number>();
for (let i = STATIC_TABLE.length - 1; i >= 1; i--) STATIC_NAME_INDEX.set(STATIC_TABLE[i][0], i);

/**
 * Encodes header fields (latin1 strings) with static-table indices where name and value
 * match, else as literals without indexing (§6.2.2), never Huffman-coded.
 */
export function encodeHeaders(fields: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const full = STATIC_TABLE.findIndex((e, i) => i > 0 && e[0] === name && e[1] === value);
    if (full > 0) {
      encodeInt(out, 0x80, 7, full);
      continue;
    }
    const nameIndex = STATIC_NAME_INDEX.get(name);
    if (nameIndex !== undefined) encodeInt(out, 0x00, 4, nameIndex);
    else {
      out.push(0x00);
      encodeRawString(out, name);
    }
    encodeRawString(out, value);
  }
  return Buffer.from(out);
}

/**
 * grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2: bytes outside 0x20-0x7E and
 * '%' itself become %XX).
 */
export function percentEncode(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let s = '';
  for (const b of Buffer.from(message, 'utf8')) {
    if (b < 0x20 || b > 0x7e || b === 0x25) s += '%' + b.toString(16).toUpperCase().padStart(2, '0');
    else s += String.fromCharCode(b);
  }
  return s;
}
