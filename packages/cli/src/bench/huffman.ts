/**
 * Decoding HPACK Huffman strings (RFC 7541 §5.2) for error messages, without shipping the
 * code table: the codes are learned once, on demand, from Node's own HPACK encoder
 * (nghttp2), which Huffman-codes a header value whenever that is shorter.
 *
 * Only error details need this (a grpc-message such as "etcdserver: too many requests"
 * usually arrives Huffman-coded), so the hot path never pays for it: h2.ts keeps such
 * strings as raw bytes and the runner decodes them after the run.
 *
 * Method: an in-process node:http2 client sends one request to a plain TCP server of ours
 * that captures the HEADERS frame. Header values are (1) '0' x 8, which is Huffman-coded as
 * exactly L bytes where L is the bit length of the code of '0', giving that code; and
 * (2) for every symbol x that Node lets into a header value (TAB, 0x20-0x7e, 0x80-0xff),
 * x followed by 40 '0's: the bits are code(x), then 40 codes of '0', then 1-bit padding
 * (fewer than 8). The code of '0' is all zeros, so exactly one split point fits; anything
 * else fails the learning (and messages stay undecoded) rather than guessing. Control
 * characters cannot be learned this way; gRPC percent-encodes them in grpc-message anyway.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { literalValuesRaw } from './h2';

export interface HuffmanDecoder {
  /** Decodes a Huffman-coded string (latin1), or returns undefined for an unknown code. */
  decode(bytes: Buffer): string | undefined;
  /** Number of symbols learned. */
  readonly symbols: number;
}

const FILLER = '0';
const FILLER_COUNT = 40;
const LEARN_TIMEOUT_MS = 5000;

/** Symbols Node accepts in header values. */
export function learnableSymbols(): number[] {
  const out = [0x09];
  for (let c = 0x20; c <= 0x7e; c++) out.push(c);
  for (let c = 0x80; c <= 0xff; c++) out.push(c);
  return out;
}

let learned: Promise<HuffmanDecoder> | undefined;

/** The decoder, learned on first use (once per process). */
export function huffmanDecoder(): Promise<HuffmanDecoder> {
  learned ??= learn();
  return learned;
}

function bitsOf(buf: Buffer): string {
  let s = '';
  for (const b of buf) s += b.toString(2).padStart(8, '0');
  return s;
}

/**
 * The HPACK encodings Node's http2 client makes of `values`, sent as headers x-0, x-1, ...
 * of one request to a TCP server of ours that reads the HEADERS frame.
 */
export function captureEncodedValues(values: readonly string[]): Promise<{ huffman: boolean; bytes: Buffer }[]> {
  const headers: Record<string, string> = {};
  values.forEach((v, i) => (headers[`x-${i}`] = v));
  return new Promise((resolve, reject) => {
    let client: http2.ClientHttp2Session | undefined;
    const server = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('error', () => undefined);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        let off = 24; // client preface
        const parts: Buffer[] = [];
        while (buf.length - off >= 9) {
          const len = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
          if (buf.length - off < 9 + len) return;
          const type = buf[off + 3];
          const flags = buf[off + 4];
          if (type === 1 || type === 9) {
            parts.push(buf.subarray(off + 9, off + 9 + len));
            if (flags & 0x4) {
              done(null, literalValuesRaw(Buffer.concat(parts)));
              return;
            }
          }
          off += 9 + len;
        }
      });
    });
    const timer = setTimeout(() => done(new Error('timed out learning HPACK Huffman codes')), LEARN_TIMEOUT_MS);
    function done(err: Error | null, result?: { huffman: boolean; bytes: Buffer }[]): void {
      clearTimeout(timer);
      client?.destroy();
      server.close();
      if (err) reject(err);
      else if (!result || result.length !== values.length) reject(new Error('HPACK capture: unexpected header block'));
      else resolve(result);
    }
    server.on('error', (e) => done(e));
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address() as net.AddressInfo;
      client = http2.connect(`http://127.0.0.1:${addr.port}`);
      client.on('error', () => undefined);
      const req = client.request({ ':path': '/', ...headers });
      req.on('error', () => undefined);
    });
  });
}

async function learn(): Promise<HuffmanDecoder> {
  const symbols = learnableSymbols();
  const values = await captureEncodedValues([FILLER.repeat(8), ...symbols.map((c) => String.fromCharCode(c) + FILLER.repeat(FILLER_COUNT))]);
  const filler = values[0];
  if (!filler.huffman) throw new Error('filler value not Huffman-coded');
  const fillerCode = bitsOf(filler.bytes).slice(0, filler.bytes.length);
  if (!/^0+$/.test(fillerCode)) throw new Error(`unexpected code for '0': ${fillerCode}`);
  const tail = fillerCode.repeat(FILLER_COUNT);
  const codes = new Map<string, number>(); // bit string -> symbol
  for (let i = 0; i < symbols.length; i++) {
    const c = symbols[i];
    const v = values[i + 1];
    if (!v.huffman) throw new Error(`value for symbol ${c} not Huffman-coded`);
    const bits = bitsOf(v.bytes);
    const fits: number[] = [];
    for (let len = 5; len <= 30 && len + tail.length <= bits.length; len++) {
      const rest = bits.slice(len + tail.length);
      if (bits.slice(len, len + tail.length) === tail && rest.length < 8 && /^1*$/.test(rest)) fits.push(len);
    }
    if (fits.length !== 1) throw new Error(`ambiguous code for symbol ${c}`);
    codes.set(bits.slice(0, fits[0]), c);
  }
  return makeDecoder(codes);
}

export function makeDecoder(codes: Map<string, number>): HuffmanDecoder {
  return {
    symbols: codes.size,
    decode(bytes: Buffer): string | undefined {
      const bits = bitsOf(bytes);
      let out = '';
      let cur = '';
      for (let i = 0; i < bits.length; i++) {
        cur += bits[i];
        const sym = codes.get(cur);
        if (sym !== undefined) {
          out += String.fromCharCode(sym);
          cur = '';
        } else if (cur.length > 30) {
          return undefined;
        }
      }
      // What is left must be EOS padding: fewer than 8 one-bits (RFC 7541 §5.2).
      return cur.length < 8 && /^1*$/.test(cur) ? out : undefined;
    },
  };
}
