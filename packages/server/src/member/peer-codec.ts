/**
 * The peer wire format: how a batch of Raft {@link Message}s travels between members in
 * the body of `POST /raft/msgs` (and, one `snap` message alone, of `POST /raft/snapshot`).
 *
 * Everything is big-endian with fixed-width integers: a u64 costs 8 bytes where a varint
 * would cost 1–3, but the encoder writes it with byte stores and the decoder reads it with
 * byte loads and no branches per byte, which is what matters on the hot path (append
 * messages of many small entries, heartbeats).
 *
 *   batch    := u8 format (=1) | u32 count | message{count}
 *   message  := u8 type | u8 flags | u64 to | u64 from | u64 term | u64 logTerm | u64 index
 *               | u64 commit | u64 rejectHint | u32 entryCount | entry{entryCount}
 *               | [flags.context]  u32 len | bytes{len}
 *               | [flags.snapshot] u64 index | u64 term | u32 nVoters | u64{nVoters}
 *                                  | u32 nLearners | u64{nLearners} | u32 len | bytes{len}
 *   entry    := u64 term | u64 index | u8 type (0 normal, 1 confChange) | u32 len | bytes{len}
 *   flags    := bit 0 reject | bit 1 context present | bit 2 snapshot present (other bits 0)
 *
 * `context` null and `context` empty are different (flag clear vs flag set with len 0).
 * The snapshot's data is the last field of its message, so a batch of one `snap` message
 * ends with the snapshot bytes: {@link encodeSnapshotMessage} hands them out separately and
 * the transport streams them without copying.
 *
 * Decoding trusts nothing: every length and count is checked against the bytes that remain
 * before anything is read or allocated, unknown codes and flag bits are refused, and
 * trailing bytes are an error. A malformed input throws {@link PeerCodecError}. Decoded
 * entry, context and snapshot data are views into the input (no copies): the caller must
 * not reuse the input buffer while the messages live.
 */
import { assert } from '../util/assert';
import { isLocalMessage, type Entry, type EntryKind, type Message, type MessageType, type Snapshot } from '../raft/types';

/** The first byte of every batch. A new layout gets a new number; decoders refuse numbers they do not know. */
export const PEER_CODEC_FORMAT = 1;

export class PeerCodecError extends Error {
  override readonly name = 'PeerCodecError';
  readonly code = 'ERR_PEER_CODEC';
}

const BATCH_HEADER_BYTES = 1 + 4;
/** type, flags, seven u64s, the entry count. */
const MESSAGE_FIXED_BYTES = 1 + 1 + 7 * 8 + 4;
const ENTRY_FIXED_BYTES = 8 + 8 + 1 + 4;
/** index, term, voter count, learner count, data length. */
const SNAPSHOT_FIXED_BYTES = 8 + 8 + 4 + 4 + 4;
/** u32 lengths and counts are bounded by the input anyway; this keeps an encoder from writing one that wraps. */
const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;
const TWO_32 = 4294967296;
/** Below this high word, hi * 2^32 + lo is exact as a double (< 2^53). */
const HI_SAFE = 0x200000;

const FLAG_REJECT = 1;
const FLAG_CONTEXT = 2;
const FLAG_SNAPSHOT = 4;
const FLAGS_KNOWN = FLAG_REJECT | FLAG_CONTEXT | FLAG_SNAPSHOT;

/** Wire codes of the message types that may leave a node. Stable: never renumber, only add. */
const TYPE_CODES: Readonly<Record<MessageType, number>> = Object.freeze({
  hup: 0,
  beat: 0,
  checkQuorum: 0,
  unreachable: 0,
  snapStatus: 0,
  prop: 1,
  app: 2,
  appResp: 3,
  vote: 4,
  voteResp: 5,
  preVote: 6,
  preVoteResp: 7,
  snap: 8,
  heartbeat: 9,
  heartbeatResp: 10,
  transferLeader: 11,
  timeoutNow: 12,
  readIndex: 13,
  readIndexResp: 14,
});
const TYPES_BY_CODE: readonly (MessageType | undefined)[] = (() => {
  const t: (MessageType | undefined)[] = [];
  for (const [name, code] of Object.entries(TYPE_CODES) as [MessageType, number][]) {
    if (code === 0) {
      assert(isLocalMessage(name), `only local message types lack a wire code (${name})`);
      continue;
    }
    assert(t[code] === undefined, `wire code ${code} is used once`);
    t[code] = name;
  }
  return t;
})();

const ENTRY_TYPE_NORMAL = 0;
const ENTRY_TYPE_CONF_CHANGE = 1;

// ---------------------------------------------------------------------------------------------
// Sizes

function entriesEncodedBytes(es: readonly Entry[]): number {
  let n = es.length * ENTRY_FIXED_BYTES;
  for (let i = 0; i < es.length; i++) n += es[i].data.byteLength;
  return n;
}

function snapshotEncodedBytes(s: Snapshot): number {
  return SNAPSHOT_FIXED_BYTES + 8 * (s.meta.confState.voters.length + s.meta.confState.learners.length) + s.data.byteLength;
}

/** The bytes `m` takes inside a batch (the batch header not included). */
export function messageEncodedBytes(m: Message): number {
  let n = MESSAGE_FIXED_BYTES + entriesEncodedBytes(m.entries);
  if (m.context !== null) n += 4 + m.context.byteLength;
  if (m.snapshot !== null) n += snapshotEncodedBytes(m.snapshot);
  return n;
}

/** The exact length of `encodeMessages(msgs)`. */
export function batchEncodedBytes(msgs: readonly Message[]): number {
  let n = BATCH_HEADER_BYTES;
  for (let i = 0; i < msgs.length; i++) n += messageEncodedBytes(msgs[i]);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Encoding

function storeU64(buf: Buffer, off: number, hi: number, lo: number): void {
  buf[off] = hi >>> 24;
  buf[off + 1] = hi >>> 16;
  buf[off + 2] = hi >>> 8;
  buf[off + 3] = hi;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = lo >>> 16;
  buf[off + 6] = lo >>> 8;
  buf[off + 7] = lo;
}

/**
 * The last two u64s ≥ 2^53 split into words, both ways. Member IDs are random 64-bit
 * numbers and every message carries two (`to`, `from`), the same two for a whole batch;
 * bigint shifts and masks cost ~50–100 ns each on V8 11, a hit here a few ns (measured:
 * a heartbeat's encode went from ~1.4 µs to ~0.4 µs). Single-threaded, so module state is safe.
 * The encode slots start at 0n, a valid value whose words are right.
 */
let encV0 = 0n;
let encHi0 = 0;
let encLo0 = 0;
let encV1 = 0n;
let encHi1 = 0;
let encLo1 = 0;
/** hi = -1 never matches a word read from the wire. */
let decHi0 = -1;
let decLo0 = 0;
let decV0 = 0n;
let decHi1 = -1;
let decLo1 = 0;
let decV1 = 0n;

/**
 * Writes a u64 big-endian. Below 2^53 (terms, indexes) it is one Number conversion and
 * byte stores; the range test is on the Number: a bigint ≥ 2^53 converts to a double
 * ≥ 2^53 and a negative one to a negative double, so both take the checked path.
 */
function writeU64(buf: Buffer, v: bigint, off: number, what: string): void {
  const n = Number(v);
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    const lo = n >>> 0;
    storeU64(buf, off, (n - lo) / TWO_32, lo);
    return;
  }
  if (v === encV0) {
    storeU64(buf, off, encHi0, encLo0);
    return;
  }
  if (v === encV1) {
    storeU64(buf, off, encHi1, encLo1);
    return;
  }
  if (!(v >= 0n)) assert(false, `${what} (${v}) is not negative`);
  if (!(v <= U64_MAX)) assert(false, `${what} (${v}) fits in 64 bits`);
  const hi = Number(v >> 32n);
  const lo = Number(v & 0xffffffffn);
  encV1 = encV0;
  encHi1 = encHi0;
  encLo1 = encLo0;
  encV0 = v;
  encHi0 = hi;
  encLo0 = lo;
  storeU64(buf, off, hi, lo);
}

/** The u64 with words `hi`, `lo` (see the cache above). */
function u64FromWords(hi: number, lo: number): bigint {
  if (hi < HI_SAFE) return BigInt(hi * TWO_32 + lo);
  if (hi === decHi0 && lo === decLo0) return decV0;
  if (hi === decHi1 && lo === decLo1) return decV1;
  const v = (BigInt(hi) << 32n) | BigInt(lo);
  decHi1 = decHi0;
  decLo1 = decLo0;
  decV1 = decV0;
  decHi0 = hi;
  decLo0 = lo;
  decV0 = v;
  return v;
}

function writeU32(buf: Buffer, v: number, off: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = v >>> 16;
  buf[off + 2] = v >>> 8;
  buf[off + 3] = v;
}

/** `byteLength` is read once: on V8 11 it is a call, not a field load (measured: it was half of encode's time). */
function writeBytes(buf: Buffer, data: Uint8Array, off: number, what: string): number {
  const n = data.byteLength;
  if (!(n <= U32_MAX)) assert(false, `${what} (${n} bytes) fits a u32 length`);
  writeU32(buf, n, off);
  if (n > 0) buf.set(data, off + 4);
  return off + 4 + n;
}

/** Writes `m` at `off`; with `withSnapshotData` false, stops after the snapshot data's length. Returns the end. */
function writeMessage(buf: Buffer, m: Message, off: number, withSnapshotData: boolean): number {
  const code = TYPE_CODES[m.type];
  if (code === undefined || code === 0) assert(false, `message type ${m.type} is not local (never sent on the wire)`);
  if (!(m.entries.length <= U32_MAX)) assert(false, 'entry count fits a u32');
  let p = off;
  buf[p] = code;
  buf[p + 1] = (m.reject ? FLAG_REJECT : 0) | (m.context !== null ? FLAG_CONTEXT : 0) | (m.snapshot !== null ? FLAG_SNAPSHOT : 0);
  writeU64(buf, m.to, p + 2, 'to');
  writeU64(buf, m.from, p + 10, 'from');
  writeU64(buf, m.term, p + 18, 'term');
  writeU64(buf, m.logTerm, p + 26, 'logTerm');
  writeU64(buf, m.index, p + 34, 'index');
  writeU64(buf, m.commit, p + 42, 'commit');
  writeU64(buf, m.rejectHint, p + 50, 'rejectHint');
  writeU32(buf, m.entries.length, p + 58);
  p += MESSAGE_FIXED_BYTES;
  const es = m.entries;
  for (let i = 0; i < es.length; i++) {
    const e = es[i];
    writeU64(buf, e.term, p, 'entry term');
    writeU64(buf, e.index, p + 8, 'entry index');
    if (e.type === 'normal') buf[p + 16] = ENTRY_TYPE_NORMAL;
    else if (e.type === 'confChange') buf[p + 16] = ENTRY_TYPE_CONF_CHANGE;
    else assert(false, `entry type ${String(e.type)} is known`);
    p = writeBytes(buf, e.data, p + 17, 'entry data');
  }
  if (m.context !== null) p = writeBytes(buf, m.context, p, 'context');
  const s = m.snapshot;
  if (s !== null) {
    writeU64(buf, s.meta.index, p, 'snapshot index');
    writeU64(buf, s.meta.term, p + 8, 'snapshot term');
    p += 16;
    for (const ids of [s.meta.confState.voters, s.meta.confState.learners]) {
      writeU32(buf, ids.length, p);
      p += 4;
      for (let i = 0; i < ids.length; i++, p += 8) writeU64(buf, ids[i], p, 'conf state member id');
    }
    if (withSnapshotData) p = writeBytes(buf, s.data, p, 'snapshot data');
    else {
      if (!(s.data.byteLength <= U32_MAX)) assert(false, `snapshot data (${s.data.byteLength} bytes) fits a u32 length`);
      writeU32(buf, s.data.byteLength, p);
      p += 4;
    }
  }
  return p;
}

/** Encodes a batch into one Buffer of exactly {@link batchEncodedBytes} bytes. Local message types are a bug (assert). */
export function encodeMessages(msgs: readonly Message[]): Buffer {
  assert(msgs.length <= U32_MAX, 'message count fits a u32');
  const size = batchEncodedBytes(msgs);
  const buf = Buffer.allocUnsafe(size);
  buf[0] = PEER_CODEC_FORMAT;
  writeU32(buf, msgs.length, 1);
  let p = BATCH_HEADER_BYTES;
  for (let i = 0; i < msgs.length; i++) p = writeMessage(buf, msgs[i], p, true);
  assert(p === size, `encoded batch fills exactly its computed size (${p} vs ${size})`);
  return buf;
}

/**
 * A batch of the one `snap` message `m`, split so the snapshot data need not be copied:
 * `head` followed by `data` is byte for byte `encodeMessages([m])`.
 */
export function encodeSnapshotMessage(m: Message): { readonly head: Buffer; readonly data: Uint8Array } {
  assert(m.snapshot !== null, 'a snapshot message carries a snapshot');
  const size = BATCH_HEADER_BYTES + messageEncodedBytes(m) - m.snapshot.data.byteLength;
  const head = Buffer.allocUnsafe(size);
  head[0] = PEER_CODEC_FORMAT;
  writeU32(head, 1, 1);
  const p = writeMessage(head, m, BATCH_HEADER_BYTES, false);
  assert(p === size, `encoded snapshot head fills exactly its computed size (${p} vs ${size})`);
  return { head, data: m.snapshot.data };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Where decoding is, for error messages: built only when something fails, never on the hot path. */
class Reader {
  p = 0;
  /** The message being read, or -1 in the batch header. */
  msgAt = -1;
  /** The entry being read, or -1 outside entries. */
  entryAt = -1;
  constructor(
    readonly buf: Buffer,
    readonly end: number,
  ) {}

  fail(what: string): never {
    const where = this.msgAt < 0 ? '' : this.entryAt < 0 ? `message ${this.msgAt}: ` : `message ${this.msgAt} entry ${this.entryAt}: `;
    throw new PeerCodecError(`peer message batch: ${where}${what} (at byte ${this.p} of ${this.end})`);
  }

  need(n: number, what: string): void {
    if (n > this.end - this.p) this.fail(`truncated ${what}: need ${n} bytes, ${this.end - this.p} left`);
  }

  u8(): number {
    return this.buf[this.p++];
  }

  u32(): number {
    const b = this.buf;
    const p = this.p;
    this.p = p + 4;
    return (b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3])) >>> 0;
  }

  u64(): bigint {
    const b = this.buf;
    const p = this.p;
    this.p = p + 8;
    const hi = (b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3])) >>> 0;
    const lo = (b[p + 4] * 0x1000000 + ((b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7])) >>> 0;
    return u64FromWords(hi, lo);
  }

  /** A u32 count of items of at least `itemBytes` each, checked against what is left before anyone allocates for it. */
  count(itemBytes: number, what: string): number {
    this.need(4, `${what} count`);
    const n = this.u32();
    if (n * itemBytes > this.end - this.p) this.fail(`${what} count ${n} does not fit in the ${this.end - this.p} bytes left`);
    return n;
  }

  bytes(what: string): Buffer {
    this.need(4, `${what} length`);
    const n = this.u32();
    if (n > this.end - this.p) this.fail(`${what} length ${n} runs past the end (${this.end - this.p} bytes left)`);
    const v = this.buf.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }
}

function readIds(r: Reader, what: string): bigint[] {
  const n = r.count(8, what);
  const ids = new Array<bigint>(n);
  for (let i = 0; i < n; i++) ids[i] = r.u64();
  return ids;
}

function readMessage(r: Reader, at: number): Message {
  r.msgAt = at;
  r.entryAt = -1;
  r.need(MESSAGE_FIXED_BYTES, 'message');
  const code = r.u8();
  const type = TYPES_BY_CODE[code];
  if (type === undefined) {
    r.p--;
    r.fail(`unknown message type code ${code}`);
  }
  const flags = r.u8();
  if ((flags & ~FLAGS_KNOWN) !== 0) {
    r.p--;
    r.fail(`unknown flag bits 0x${flags.toString(16)}`);
  }
  const to = r.u64();
  const from = r.u64();
  const term = r.u64();
  const logTerm = r.u64();
  const index = r.u64();
  const commit = r.u64();
  const rejectHint = r.u64();
  const n = r.count(ENTRY_FIXED_BYTES, 'entry');
  const entries = new Array<Entry>(n);
  for (let i = 0; i < n; i++) {
    r.entryAt = i;
    r.need(ENTRY_FIXED_BYTES, 'entry');
    const eTerm = r.u64();
    const eIndex = r.u64();
    const t = r.u8();
    let eType: EntryKind;
    if (t === ENTRY_TYPE_NORMAL) eType = 'normal';
    else if (t === ENTRY_TYPE_CONF_CHANGE) eType = 'confChange';
    else {
      r.p--;
      r.fail(`unknown entry type ${t}`);
    }
    entries[i] = { term: eTerm, index: eIndex, type: eType, data: r.bytes('data') };
  }
  r.entryAt = -1;
  const context = (flags & FLAG_CONTEXT) !== 0 ? r.bytes('context') : null;
  let snapshot: Snapshot | null = null;
  if ((flags & FLAG_SNAPSHOT) !== 0) {
    r.need(16, 'snapshot');
    const sIndex = r.u64();
    const sTerm = r.u64();
    const voters = readIds(r, 'snapshot voter');
    const learners = readIds(r, 'snapshot learner');
    const data = r.bytes('snapshot data');
    snapshot = { meta: { index: sIndex, term: sTerm, confState: { voters, learners } }, data };
  }
  return { type, to, from, term, logTerm, index, entries, commit, snapshot, reject: (flags & FLAG_REJECT) !== 0, rejectHint, context };
}

/**
 * Decodes a batch made by {@link encodeMessages}. Throws {@link PeerCodecError} on any
 * malformed, truncated or over-long input. Data fields are views into `input`.
 */
export function decodeMessages(input: Uint8Array): Message[] {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const r = new Reader(buf, buf.length);
  r.need(BATCH_HEADER_BYTES, 'batch header');
  const format = r.u8();
  if (format !== PEER_CODEC_FORMAT) {
    r.p--;
    r.fail(`unsupported format ${format} (this member speaks format ${PEER_CODEC_FORMAT})`);
  }
  const n = r.count(MESSAGE_FIXED_BYTES, 'message');
  const msgs = new Array<Message>(n);
  for (let i = 0; i < n; i++) msgs[i] = readMessage(r, i);
  r.msgAt = -1;
  if (r.p !== r.end) r.fail(`${r.end - r.p} trailing bytes after ${n} messages`);
  return msgs;
}
