/**
 * Just enough protobuf wire-format reading for the streaming benches' hot paths: a
 * WatchResponse (watch id, created/canceled, and per event its type, mod revision and
 * value bytes) and a LeaseKeepAliveResponse (the ID's varint bytes and the TTL). A watch
 * bench with 10,000 watchers receives hundreds of thousands of messages per second;
 * protobufjs' generic decode (objects, Long-to-string conversions) would make the client
 * the bottleneck, so these read fields in place and allocate nothing per message.
 *
 * Wire format (protobuf encoding spec): a field is a varint key (number << 3 | wire type)
 * followed by a varint (type 0), 8 bytes (1), a varint length and that many bytes (2), or
 * 4 bytes (5). Unknown fields are skipped, so newer servers' extra fields do no harm.
 */

/** Reads a varint at `pos` into `out.v` (exact for 0..2^53; int64 negatives decoded exactly) and returns the next position. */
function varint(buf: Buffer, pos: number, out: { v: number }): number {
  let result = 0;
  let mul = 1;
  const start = pos;
  for (;;) {
    if (pos >= buf.length) throw new Error('protobuf: truncated varint');
    const b = buf[pos++];
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
    if (pos - start >= 10) throw new Error('protobuf: varint too long');
  }
  // A negative int64 is sent as a 10-byte two's-complement varint: decode it exactly.
  if (pos - start === 10) {
    let big = 0n;
    for (let i = pos - 1; i >= start; i--) big = (big << 7n) | BigInt(buf[i] & 0x7f);
    result = Number(BigInt.asIntN(64, big));
  }
  out.v = result;
  return pos;
}

function skip(buf: Buffer, pos: number, wireType: number, tmp: { v: number }): number {
  switch (wireType) {
    case 0:
      return varint(buf, pos, tmp);
    case 1:
      return pos + 8;
    case 2:
      pos = varint(buf, pos, tmp);
      return pos + tmp.v;
    case 5:
      return pos + 4;
    default:
      throw new Error(`protobuf: unsupported wire type ${wireType}`);
  }
}

/** A decoded WatchResponse; one object is reused for every message. */
export class WatchMessage {
  watchId = 0;
  created = false;
  canceled = false;
  compactRevision = 0;
  /** Offsets of cancel_reason in the message (end 0: absent). */
  cancelReasonStart = 0;
  cancelReasonEnd = 0;
  events = 0;
  /** Per event (index < events): type (0 PUT, 1 DELETE), kv.mod_revision, kv.value offsets in the message. */
  type: number[] = [];
  modRevision: number[] = [];
  valueStart: number[] = [];
  valueEnd: number[] = [];

  cancelReason(buf: Buffer): string {
    return buf.toString('utf8', this.cancelReasonStart, this.cancelReasonEnd);
  }
}

const tmp = { v: 0 };

/** Decodes `buf` (one WatchResponse) into `m`. */
export function parseWatchResponse(buf: Buffer, m: WatchMessage): void {
  m.watchId = 0;
  m.created = false;
  m.canceled = false;
  m.compactRevision = 0;
  m.cancelReasonStart = m.cancelReasonEnd = 0;
  m.events = 0;
  let pos = 0;
  while (pos < buf.length) {
    pos = varint(buf, pos, tmp);
    const field = Math.floor(tmp.v / 8);
    const wt = tmp.v & 7;
    if (field === 2 && wt === 0) {
      pos = varint(buf, pos, tmp);
      m.watchId = tmp.v;
    } else if (field === 3 && wt === 0) {
      pos = varint(buf, pos, tmp);
      m.created = tmp.v !== 0;
    } else if (field === 4 && wt === 0) {
      pos = varint(buf, pos, tmp);
      m.canceled = tmp.v !== 0;
    } else if (field === 5 && wt === 0) {
      pos = varint(buf, pos, tmp);
      m.compactRevision = tmp.v;
    } else if (field === 6 && wt === 2) {
      pos = varint(buf, pos, tmp);
      m.cancelReasonStart = pos;
      m.cancelReasonEnd = pos += tmp.v;
    } else if (field === 11 && wt === 2) {
      pos = varint(buf, pos, tmp);
      const end = pos + tmp.v;
      if (end > buf.length) throw new Error('protobuf: truncated event');
      parseEvent(buf, pos, end, m, m.events++);
      pos = end;
    } else {
      pos = skip(buf, pos, wt, tmp);
    }
  }
  if (pos > buf.length) throw new Error('protobuf: truncated WatchResponse');
}

function parseEvent(buf: Buffer, pos: number, end: number, m: WatchMessage, i: number): void {
  m.type[i] = 0;
  m.modRevision[i] = 0;
  m.valueStart[i] = 0;
  m.valueEnd[i] = 0;
  while (pos < end) {
    pos = varint(buf, pos, tmp);
    const field = Math.floor(tmp.v / 8);
    const wt = tmp.v & 7;
    if (field === 1 && wt === 0) {
      pos = varint(buf, pos, tmp);
      m.type[i] = tmp.v;
    } else if (field === 2 && wt === 2) {
      pos = varint(buf, pos, tmp);
      const kvEnd = pos + tmp.v;
      parseKv(buf, pos, kvEnd, m, i);
      pos = kvEnd;
    } else {
      pos = skip(buf, pos, wt, tmp);
    }
  }
}

function parseKv(buf: Buffer, pos: number, end: number, m: WatchMessage, i: number): void {
  while (pos < end) {
    pos = varint(buf, pos, tmp);
    const field = Math.floor(tmp.v / 8);
    const wt = tmp.v & 7;
    if (field === 3 && wt === 0) {
      pos = varint(buf, pos, tmp);
      m.modRevision[i] = tmp.v;
    } else if (field === 5 && wt === 2) {
      pos = varint(buf, pos, tmp);
      m.valueStart[i] = pos;
      m.valueEnd[i] = pos += tmp.v;
    } else {
      pos = skip(buf, pos, wt, tmp);
    }
  }
}

/** A decoded LeaseKeepAliveResponse (reused). */
export class KeepAliveMessage {
  /** Offsets of the ID's varint bytes in the message (equal: ID absent, i.e. 0). */
  idStart = 0;
  idEnd = 0;
  ttl = 0;
}

export function parseKeepAliveResponse(buf: Buffer, m: KeepAliveMessage): void {
  m.idStart = m.idEnd = 0;
  m.ttl = 0;
  let pos = 0;
  while (pos < buf.length) {
    pos = varint(buf, pos, tmp);
    const field = Math.floor(tmp.v / 8);
    const wt = tmp.v & 7;
    if (field === 2 && wt === 0) {
      m.idStart = pos;
      pos = varint(buf, pos, tmp);
      m.idEnd = pos;
    } else if (field === 3 && wt === 0) {
      pos = varint(buf, pos, tmp);
      m.ttl = tmp.v;
    } else {
      pos = skip(buf, pos, wt, tmp);
    }
  }
  if (pos > buf.length) throw new Error('protobuf: truncated LeaseKeepAliveResponse');
}
