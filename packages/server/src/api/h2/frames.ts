/**
 * HTTP/2 wire constants and frame encoding (RFC 7540 §4, §6, §7, §11).
 *
 * Every frame starts with a 9-byte header: 24-bit payload length, 8-bit type, 8-bit flags,
 * one reserved bit and a 31-bit stream identifier (§4.1). Encoding helpers write into
 * caller-provided buffers so the connection can gather several frames into one socket write.
 */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_BYTES = 9;

/** Frame types (§6). */
export const enum FrameType {
  Data = 0x0,
  Headers = 0x1,
  Priority = 0x2,
  RstStream = 0x3,
  Settings = 0x4,
  PushPromise = 0x5,
  Ping = 0x6,
  Goaway = 0x7,
  WindowUpdate = 0x8,
  Continuation = 0x9,
}

/** Frame flags (§6). ACK and END_STREAM share the value 0x1 on different frame types. */
export const enum Flag {
  EndStream = 0x1,
  Ack = 0x1,
  EndHeaders = 0x4,
  Padded = 0x8,
  Priority = 0x20,
}

/** SETTINGS parameters (§6.5.2). */
export const enum Setting {
  HeaderTableSize = 0x1,
  EnablePush = 0x2,
  MaxConcurrentStreams = 0x3,
  InitialWindowSize = 0x4,
  MaxFrameSize = 0x5,
  MaxHeaderListSize = 0x6,
}

/** Error codes (§7). */
export const enum H2Error {
  NoError = 0x0,
  ProtocolError = 0x1,
  InternalError = 0x2,
  FlowControlError = 0x3,
  SettingsTimeout = 0x4,
  StreamClosed = 0x5,
  FrameSizeError = 0x6,
  RefusedStream = 0x7,
  Cancel = 0x8,
  CompressionError = 0x9,
  ConnectError = 0xa,
  EnhanceYourCalm = 0xb,
  InadequateSecurity = 0xc,
  Http11Required = 0xd,
}

/** Defaults before any SETTINGS (§6.5.2) and hard limits (§6.9.1, §4.2). */
export const DEFAULT_WINDOW_BYTES = 65_535;
export const DEFAULT_MAX_FRAME_BYTES = 16_384;
export const MAX_FRAME_BYTES_LIMIT = 16_777_215;
export const MAX_WINDOW_BYTES = 0x7fff_ffff;
export const MAX_STREAM_ID = 0x7fff_ffff;

export function writeFrameHeader(buf: Buffer, offset: number, length: number, type: number, flags: number, streamId: number): void {
  buf[offset] = (length >>> 16) & 0xff;
  buf[offset + 1] = (length >>> 8) & 0xff;
  buf[offset + 2] = length & 0xff;
  buf[offset + 3] = type;
  buf[offset + 4] = flags;
  buf[offset + 5] = (streamId >>> 24) & 0x7f;
  buf[offset + 6] = (streamId >>> 16) & 0xff;
  buf[offset + 7] = (streamId >>> 8) & 0xff;
  buf[offset + 8] = streamId & 0xff;
}

/** A whole frame in a new buffer (for control frames; the hot paths write in place). */
export function encodeFrame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(b, 0, payload.length, type, flags, streamId);
  payload.copy(b, FRAME_HEADER_BYTES);
  return b;
}

export function encodeSettings(settings: readonly (readonly [Setting, number])[], ack = false): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return encodeFrame(FrameType.Settings, ack ? Flag.Ack : 0, 0, payload);
}

export function encodeWindowUpdate(streamId: number, increment: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(b, 0, 4, FrameType.WindowUpdate, 0, streamId);
  b.writeUInt32BE(increment, FRAME_HEADER_BYTES);
  return b;
}

export function encodeRstStream(streamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(b, 0, 4, FrameType.RstStream, 0, streamId);
  b.writeUInt32BE(code, FRAME_HEADER_BYTES);
  return b;
}

export function encodeGoaway(lastStreamId: number, code: number, debug = ''): Buffer {
  const d = Buffer.from(debug, 'utf8');
  const payload = Buffer.allocUnsafe(8 + d.length);
  payload.writeUInt32BE(lastStreamId & MAX_STREAM_ID, 0);
  payload.writeUInt32BE(code, 4);
  d.copy(payload, 8);
  return encodeFrame(FrameType.Goaway, 0, 0, payload);
}

/** A header block as one HEADERS frame plus CONTINUATION frames, each within `maxFrameBytes`. */
export function encodeHeaderFrames(streamId: number, block: Buffer, endStream: boolean, maxFrameBytes: number): Buffer {
  if (block.length <= maxFrameBytes) {
    const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + block.length);
    writeFrameHeader(b, 0, block.length, FrameType.Headers, Flag.EndHeaders | (endStream ? Flag.EndStream : 0), streamId);
    block.copy(b, FRAME_HEADER_BYTES);
    return b;
  }
  const parts: Buffer[] = [];
  for (let off = 0; off < block.length; off += maxFrameBytes) {
    const part = block.subarray(off, off + maxFrameBytes);
    const first = off === 0;
    const last = off + maxFrameBytes >= block.length;
    const flags = (first && endStream ? Flag.EndStream : 0) | (last ? Flag.EndHeaders : 0);
    parts.push(encodeFrame(first ? FrameType.Headers : FrameType.Continuation, flags, streamId, part));
  }
  return Buffer.concat(parts);
}
