/**
 * HPACK decoder and Huffman codec of the h2 transport (src/api/h2/hpack.ts, huffman.ts).
 *
 * Goal: request header blocks decode exactly as RFC 7541 specifies, including the dynamic
 * table (insertion, eviction, size updates) and Huffman strings; malformed blocks are
 * refused; the block cache never serves a list that the current table would decode
 * differently.
 *
 * Method: the RFC's own examples (Appendix C.3-C.6, byte for byte, with the table contents
 * and sizes it lists after each block); Huffman round trips over every symbol and the
 * padding rules of §5.2; a seeded cross-check against an independent encoder (hpack.js's
 * compressor: dynamic table, Huffman, random header lists, small tables forcing eviction);
 * and real header blocks captured from Node's nghttp2 client.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { encodeHeaders, HpackDecoder, HpackError, percentEncode, STATIC_TABLE } from '../../src/api/h2/hpack';
import { huffmanDecode, huffmanEncode, huffmanLength } from '../../src/api/h2/huffman';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hpackjs = require('hpack.js') as {
  compressor: { create(o: object): { write(h: { name: string; value: string; huffman?: boolean; neverIndex?: boolean }[]): void; read(): Buffer | null } };
};

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (list: readonly string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i], list[i + 1]]);
  return out;
};
const table = (d: HpackDecoder): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 62; d.dynamicEntry(i); i++) out.push(d.dynamicEntry(i)!);
  return out;
};

/** A small deterministic PRNG (mulberry32), so failures replay from the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('RFC 7541 Appendix C examples', () => {
  const req1: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
  const req2: [string, string][] = [...req1, ['cache-control', 'no-cache']];
  const req3: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];

  test.each([
    ['C.3 requests without Huffman', ['8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', '8286 84be 5808 6e6f 2d63 6163 6865', '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65']],
    ['C.4 requests with Huffman', ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf']],
  ])('%s: fields, table entries and table size after each block', (_name, blocks) => {
    const d = new HpackDecoder({ cacheEntriesMax: 0 });
    expect(pairs(d.decode(hex(blocks[0])))).toEqual(req1);
    expect(table(d)).toEqual([[':authority', 'www.example.com']]);
    expect(d.tableSizeBytes).toBe(57);
    expect(pairs(d.decode(hex(blocks[1])))).toEqual(req2);
    expect(table(d)).toEqual([['cache-control', 'no-cache'], [':authority', 'www.example.com']]);
    expect(d.tableSizeBytes).toBe(110);
    expect(pairs(d.decode(hex(blocks[2])))).toEqual(req3);
    expect(table(d)).toEqual([['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']]);
    expect(d.tableSizeBytes).toBe(164);
  });

  const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
  const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
  const loc = 'https://www.example.com';
  const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';

  test.each([
    [
      'C.5 responses without Huffman',
      [
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '4803 3330 37c1 c0bf',
        '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
      ],
    ],
    [
      'C.6 responses with Huffman',
      [
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        '4883 640e ffc1 c0bf',
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ],
    ],
  ])('%s: a 256-byte table evicts the oldest entries (§4.4)', (_name, blocks) => {
    const d = new HpackDecoder({ tableBytesMax: 256, cacheEntriesMax: 0 });
    expect(pairs(d.decode(hex(blocks[0])))).toEqual([[':status', '302'], ['cache-control', 'private'], ['date', date1], ['location', loc]]);
    expect(table(d)).toEqual([['location', loc], ['date', date1], ['cache-control', 'private'], [':status', '302']]);
    expect(d.tableSizeBytes).toBe(222);
    expect(pairs(d.decode(hex(blocks[1])))).toEqual([[':status', '307'], ['cache-control', 'private'], ['date', date1], ['location', loc]]);
    // ":status: 302" was evicted to make room for ":status: 307".
    expect(table(d)).toEqual([[':status', '307'], ['location', loc], ['date', date1], ['cache-control', 'private']]);
    expect(d.tableSizeBytes).toBe(222);
    expect(pairs(d.decode(hex(blocks[2])))).toEqual([
      [':status', '200'], ['cache-control', 'private'], ['date', date2], ['location', loc], ['content-encoding', 'gzip'], ['set-cookie', cookie],
    ]);
    expect(table(d)).toEqual([['set-cookie', cookie], ['content-encoding', 'gzip'], ['date', date2]]);
    expect(d.tableSizeBytes).toBe(215);
  });
});

describe('Huffman codec (RFC 7541 §5.2, Appendix B)', () => {
  test('the RFC strings encode to the RFC bytes and back', () => {
    const cases: [string, string][] = [
      ['www.example.com', 'f1e3c2e5f23a6ba0ab90f4ff'],
      ['no-cache', 'a8eb10649cbf'],
      ['custom-key', '25a849e95ba97d7f'],
      ['custom-value', '25a849e95bb8e8b4bf'],
      ['private', 'aec3771a4b'],
      ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07abe941054d444a8200595040b8166e082a62d1bff'],
    ];
    for (const [text, code] of cases) {
      expect(huffmanEncode(text).toString('hex')).toBe(code);
      expect(huffmanLength(text)).toBe(code.length / 2);
      const b = Buffer.from(code, 'hex');
      expect(huffmanDecode(b, 0, b.length)).toBe(text);
    }
  });

  test('every octet round-trips, alone and in a string of all of them', () => {
    let all = '';
    for (let c = 0; c < 256; c++) {
      const s = String.fromCharCode(c);
      all += s;
      const b = huffmanEncode(s);
      expect(huffmanDecode(b, 0, b.length)).toBe(s);
    }
    const b = huffmanEncode(all + all.split('').reverse().join(''));
    expect(huffmanDecode(b, 0, b.length)).toBe(all + all.split('').reverse().join(''));
  });

  test('padding must be at most 7 one-bits; EOS inside a string is refused', () => {
    // 'a' is 00011 (5 bits); padded with 111 it is 0x1f.
    expect(huffmanDecode(Buffer.from([0x1f]), 0, 1)).toBe('a');
    // Padding with a zero bit.
    expect(() => huffmanDecode(Buffer.from([0x1e]), 0, 1)).toThrow(/padding/);
    // 8 or more bits of padding: a whole 0xff byte after 'a'.
    expect(() => huffmanDecode(Buffer.from([0x1f, 0xff]), 0, 2)).toThrow(/padding/);
    // EOS is 30 one-bits: four 0xff bytes contain it.
    expect(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4)).toThrow(/EOS/);
    // Empty string.
    expect(huffmanDecode(Buffer.alloc(0), 0, 0)).toBe('');
  });
});

describe('decoder errors', () => {
  const d = () => new HpackDecoder({ cacheEntriesMax: 0 });
  test.each([
    ['index 0', '80'],
    ['an index beyond the dynamic table', 'be'],
    ['a literal name index beyond the table', '7e 01 61'],
    ['a truncated integer', 'ff'],
    ['an integer too large', 'ff ff ff ff ff 0f'],
    ['a string longer than the block', '00 05 61 62'],
    ['a truncated string header', '00'],
    ['a size update above SETTINGS_HEADER_TABLE_SIZE', '3f e2 1f'],
    ['a size update after a field', '82 20'],
    ['bad Huffman padding in a value', '00 01 61 81 1e'],
  ])('refuses %s', (_name, block) => {
    expect(() => d().decode(hex(block))).toThrow(HpackError);
  });

  test('a header list above the limit is refused (§6.5.2 accounting: octets + 32 per field)', () => {
    const dec = new HpackDecoder({ headerListBytesMax: 100, cacheEntriesMax: 0 });
    const ok = encodeHeaders([['a', 'x'.repeat(60)]]); // 1 + 60 + 32 = 93
    expect(pairs(dec.decode(ok))).toEqual([['a', 'x'.repeat(60)]]);
    const big = encodeHeaders([['a', 'x'.repeat(70)]]);
    expect(() => dec.decode(big)).toThrow(/header list/);
  });

  test('size updates at the start of a block shrink and empty the table; entries larger than it empty it', () => {
    const dec = new HpackDecoder({ cacheEntriesMax: 0 });
    dec.decode(hex('4001 61 0161')); // a: a (34 bytes)
    dec.decode(hex('4001 62 0162')); // b: b
    expect(dec.tableEntries).toBe(2);
    dec.decode(hex('3f 03')); // size update to 34: keeps only the newest
    expect(table(dec)).toEqual([['b', 'b']]);
    dec.decode(hex('20 3f e1 1f')); // to 0 (evicts all), then back to 4096
    expect(dec.tableEntries).toBe(0);
    dec.decode(hex('4001 63 0163'));
    expect(table(dec)).toEqual([['c', 'c']]);
    // An entry larger than the whole table empties it and is not added (§4.4).
    dec.decode(hex('3f 21')); // size 64
    const big = Buffer.concat([hex('40 01 64 21'), Buffer.alloc(33, 0x78)]); // d: 33 x's = 1 + 33 + 32 = 66 > 64
    expect(pairs(dec.decode(big))).toEqual([['d', 'x'.repeat(33)]]);
    expect(dec.tableEntries).toBe(0);
    expect(dec.tableSizeBytes).toBe(0);
  });
});

describe('block cache', () => {
  test('a block that references the dynamic table is decoded again once the table changed', () => {
    const dec = new HpackDecoder();
    dec.decode(hex('4001 61 0178')); // a: x  (index 62)
    const ref = hex('be');
    expect(pairs(dec.decode(ref))).toEqual([['a', 'x']]);
    expect(pairs(dec.decode(ref))).toEqual([['a', 'x']]); // served from the cache
    dec.decode(hex('4001 62 0179')); // b: y is now index 62
    expect(pairs(dec.decode(ref))).toEqual([['b', 'y']]);
  });

  test('a block that inserts is never served from the cache (its insertion must happen each time)', () => {
    const dec = new HpackDecoder();
    const ins = hex('4001 61 0178');
    dec.decode(ins);
    dec.decode(ins);
    expect(dec.tableEntries).toBe(2);
    expect(table(dec)).toEqual([['a', 'x'], ['a', 'x']]);
  });

  test('a static-only block stays valid across table changes', () => {
    const dec = new HpackDecoder();
    const block = encodeHeaders([[':method', 'POST'], [':path', '/etcdserverpb.KV/Range'], ['content-type', 'application/grpc']]);
    const first = dec.decode(block);
    dec.decode(hex('4001 61 0178'));
    expect(dec.decode(block)).toBe(first);
  });
});

describe('cross-check against independent encoders', () => {
  test('hpack.js compressor: random header lists, Huffman on and off, tables that evict (seeded)', () => {
    const seed = Number(process.env.HPACK_SEED ?? 20261125);
    const rand = prng(seed);
    const names = ['x-a', 'x-b', 'grpc-timeout', 'user-agent', ':path', ':authority', 'content-type', 'te', 'custom'];
    for (const size of [4096, 256, 64]) {
      const enc = hpackjs.compressor.create({ table: { maxSize: size } }); // hpack.js reads maxSize (not size)
      const dec = new HpackDecoder({ tableBytesMax: size });
      for (let block = 0; block < 300; block++) {
        const n = 1 + Math.floor(rand() * 8);
        const fields: { name: string; value: string; huffman: boolean; neverIndex: boolean }[] = [];
        for (let i = 0; i < n; i++) {
          const name = rand() < 0.8 ? names[Math.floor(rand() * names.length)] : `n${Math.floor(rand() * 1000)}`;
          const len = Math.floor(rand() * (rand() < 0.1 ? 200 : 20));
          let value = '';
          for (let k = 0; k < len; k++) value += String.fromCharCode(rand() < 0.9 ? 0x20 + Math.floor(rand() * 95) : Math.floor(rand() * 256));
          fields.push({ name, value, huffman: rand() < 0.5, neverIndex: rand() < 0.1 });
        }
        enc.write(fields);
        const parts: Buffer[] = [];
        for (let c = enc.read(); c !== null; c = enc.read()) parts.push(c);
        const decoded = pairs(dec.decode(Buffer.concat(parts)));
        const expected = fields.map((f) => [f.name, f.value]);
        if (JSON.stringify(decoded) !== JSON.stringify(expected)) throw new Error(`seed=${seed} size=${size} block=${block}: decoded differently`);
      }
    }
  });

  test("Node's nghttp2 client: real request blocks (dynamic table, Huffman) decode to the headers sent", async () => {
    const blocks: Buffer[] = [];
    const server = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      let parts: Buffer[] = [];
      sock.on('error', () => undefined);
      // Our SETTINGS so the client proceeds; it keeps the default 4096-byte table.
      sock.write(Buffer.from('000000040000000000', 'hex'));
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        let off = buf.subarray(0, 24).toString('latin1').startsWith('PRI') ? 24 : 0;
        if (off === 24) buf = buf.subarray(24);
        off = 0;
        while (buf.length - off >= 9) {
          const len = buf.readUIntBE(off, 3);
          if (buf.length - off < 9 + len) break;
          const type = buf[off + 3];
          const flags = buf[off + 4];
          const payload = buf.subarray(off + 9, off + 9 + len);
          if (type === 1 || type === 9) {
            parts.push(payload);
            if (flags & 0x4) {
              blocks.push(Buffer.concat(parts));
              parts = [];
            }
          }
          off += 9 + len;
        }
        buf = buf.subarray(off);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', () => undefined);
    const sent: Record<string, string>[] = [];
    for (let i = 0; i < 40; i++) {
      const h: Record<string, string> = {
        ':method': 'POST',
        ':path': `/etcdserverpb.KV/${i % 3 === 0 ? 'Range' : 'Put'}`,
        'content-type': 'application/grpc',
        'grpc-timeout': `${1000 + i}m`,
        'user-agent': 'grpc-node-js/1.14.7',
        'x-value': `v${i}-${'z'.repeat(i * 7)}`,
      };
      sent.push(h);
      const req = client.request(h, { endStream: false });
      req.on('error', () => undefined);
    }
    const deadline = Date.now() + 5000;
    while (blocks.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    client.destroy();
    server.close();
    expect(blocks.length).toBe(40);
    const dec = new HpackDecoder();
    blocks.forEach((block, i) => {
      const got = Object.fromEntries(pairs(dec.decode(block)));
      for (const [k, v] of Object.entries(sent[i])) expect(got[k]).toBe(v);
    });
    // nghttp2 indexes: later blocks referenced the dynamic table.
    expect(dec.tableEntries).toBeGreaterThan(0);
  });
});

describe('encoder and grpc-message', () => {
  test('static-only blocks decode with an empty table and never change it', () => {
    const block = encodeHeaders([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '0']]);
    expect(block[0]).toBe(0x88); // :status 200 is static index 8
    const dec = new HpackDecoder();
    expect(pairs(dec.decode(block))).toEqual([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '0']]);
    expect(dec.tableEntries).toBe(0);
    expect(STATIC_TABLE[31][0]).toBe('content-type');
  });

  test('percent-encoding: plain ASCII untouched, %, control and non-ASCII bytes escaped (UTF-8)', () => {
    expect(percentEncode('etcdserver: key not found')).toBe('etcdserver: key not found');
    expect(percentEncode('100% sure')).toBe('100%25 sure');
    expect(percentEncode('a\nb')).toBe('a%0Ab');
    expect(percentEncode('clé')).toBe('cl%C3%A9');
    expect(decodeURIComponent(percentEncode('日本 %\t'))).toBe('日本 %\t');
  });
});
