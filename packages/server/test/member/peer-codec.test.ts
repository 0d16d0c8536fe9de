/**
 * Goal: the peer wire format carries every field of every Raft message exactly (bigint
 * IDs, terms and indexes over the whole u64 range; entries; snapshots; `context` null vs
 * empty), and decoding never trusts its input: a truncated, extended, garbled or
 * implausible batch throws PeerCodecError (never another error, never a huge allocation).
 * Method: fast-check round trips of random batches against the encoder's own size
 * computation; a golden heartbeat pins the layout; every cut point and every single-byte
 * corruption of a sample batch; hand-made headers with implausible counts and lengths.
 */
import fc from 'fast-check';
import {
  PEER_CODEC_FORMAT,
  PeerCodecError,
  batchEncodedBytes,
  decodeMessages,
  encodeMessages,
  encodeSnapshotMessage,
  messageEncodedBytes,
} from '../../src/member/peer-codec';
import { isLocalMessage, message, type Entry, type Message, type MessageType } from '../../src/raft/types';

const U64_MAX = (1n << 64n) - 1n;
const WIRE_TYPES: MessageType[] = [
  'prop',
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'snap',
  'heartbeat',
  'heartbeatResp',
  'transferLeader',
  'timeoutNow',
  'readIndex',
  'readIndexResp',
];
const LOCAL_TYPES: MessageType[] = ['hup', 'beat', 'checkQuorum', 'unreachable', 'snapStatus'];

const u64 = fc.oneof(
  fc.constantFrom(0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, U64_MAX),
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 0n, max: U64_MAX }),
);
const bytes = fc.uint8Array({ maxLength: 48 });
const entry: fc.Arbitrary<Entry> = fc.record({ term: u64, index: u64, type: fc.constantFrom('normal' as const, 'confChange' as const), data: bytes });
const snapshot = fc.record({
  meta: fc.record({ index: u64, term: u64, confState: fc.record({ voters: fc.array(u64, { maxLength: 7 }), learners: fc.array(u64, { maxLength: 3 }) }) }),
  data: fc.uint8Array({ maxLength: 300 }),
});
const msg: fc.Arbitrary<Message> = fc.record({
  type: fc.constantFrom(...WIRE_TYPES),
  to: u64,
  from: u64,
  term: u64,
  logTerm: u64,
  index: u64,
  entries: fc.array(entry, { maxLength: 6 }),
  commit: u64,
  snapshot: fc.option(snapshot, { nil: null }),
  reject: fc.boolean(),
  rejectHint: u64,
  context: fc.option(bytes, { nil: null }),
});

/** Plain data with every byte array as hex, so that equality does not depend on Buffer vs Uint8Array. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function expectCodecError(f: () => unknown, pattern?: RegExp): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PeerCodecError);
  if (pattern) expect((caught as Error).message).toMatch(pattern);
}

const b = (s: string): Buffer => Buffer.from(s);

function sampleBatch(): Message[] {
  return [
    message({ type: 'app', to: 2n, from: 1n, term: 5n, logTerm: 4n, index: 10n, commit: 9n, entries: [
      { term: 5n, index: 11n, type: 'normal', data: b('put a') },
      { term: 5n, index: 12n, type: 'confChange', data: b('cc') },
      { term: 5n, index: 13n, type: 'normal', data: new Uint8Array(0) },
    ] }),
    message({ type: 'heartbeat', to: 2n, from: 1n, term: 5n, commit: 9n, context: b('read-1') }),
    message({ type: 'readIndex', to: 2n, from: 3n, context: new Uint8Array(0) }),
    message({ type: 'appResp', to: 2n, from: 1n, term: 5n, index: 7n, reject: true, rejectHint: 6n, logTerm: 3n }),
    message({ type: 'snap', to: 2n, from: 1n, term: 5n, snapshot: { meta: { index: 8n, term: 4n, confState: { voters: [1n, 2n, 3n], learners: [4n] } }, data: b('state machine bytes') } }),
  ];
}

describe('peer codec: round trip', () => {
  it('every field of random batches round-trips exactly, in exactly the computed size', () => {
    fc.assert(
      fc.property(fc.array(msg, { maxLength: 6 }), (msgs) => {
        const enc = encodeMessages(msgs);
        expect(enc.length).toBe(batchEncodedBytes(msgs));
        expect(enc[0]).toBe(PEER_CODEC_FORMAT);
        expect(plain(decodeMessages(enc))).toEqual(plain(msgs));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes from a plain Uint8Array view at an offset inside a larger buffer', () => {
    fc.assert(
      fc.property(fc.array(msg, { minLength: 1, maxLength: 3 }), fc.nat(16), (msgs, pad) => {
        const enc = encodeMessages(msgs);
        const ab = new ArrayBuffer(enc.length + 2 * pad);
        const view = new Uint8Array(ab, pad, enc.length);
        view.set(enc);
        expect(plain(decodeMessages(view))).toEqual(plain(msgs));
      }),
      { numRuns: 100 },
    );
  });

  it('large IDs cycling through the encoder and decoder word caches stay exact', () => {
    const ids = [0x694d6280d047720fn, 0x8e9e05c52164694dn, U64_MAX, 0xfd422379fda50e48n, 2n ** 53n];
    const msgs: Message[] = [];
    for (let i = 0; i < 40; i++) {
      msgs.push(message({ type: 'app', to: ids[i % 5], from: ids[(i * 3 + 1) % 5], term: ids[(i * 7) % 5], entries: [{ term: ids[i % 2], index: ids[(i + 2) % 5], type: 'normal', data: new Uint8Array(0) }] }));
    }
    const out = decodeMessages(encodeMessages(msgs));
    expect(plain(out)).toEqual(plain(msgs));
    // Decoding twice in a row (warm caches) gives the same values.
    expect(plain(decodeMessages(encodeMessages(out)))).toEqual(plain(msgs));
  });

  it('keeps a null context apart from an empty one', () => {
    const [a, c] = decodeMessages(encodeMessages([message({ type: 'heartbeat', to: 1n }), message({ type: 'heartbeat', to: 1n, context: new Uint8Array(0) })]));
    expect(a.context).toBeNull();
    expect(c.context).not.toBeNull();
    expect(c.context!.byteLength).toBe(0);
  });

  it('gives entry and snapshot data as views into the input, not copies', () => {
    const enc = encodeMessages(sampleBatch());
    const out = decodeMessages(enc);
    expect(out[0].entries[0].data.buffer).toBe(enc.buffer);
    expect(Buffer.from(out[0].entries[0].data).toString()).toBe('put a');
    expect(out[4].snapshot!.data.buffer).toBe(enc.buffer);
    expect(Buffer.from(out[4].snapshot!.data).toString()).toBe('state machine bytes');
  });

  it('an empty batch is five bytes', () => {
    const enc = encodeMessages([]);
    expect(enc.toString('hex')).toBe('0100000000');
    expect(decodeMessages(enc)).toEqual([]);
  });

  it('pins the layout: a heartbeat with a read context (golden bytes)', () => {
    const m = message({ type: 'heartbeat', to: 0x694d6280d047720fn, from: 2n, term: 3n, commit: 0x0102030405060708n, context: b('ab') });
    const hex = encodeMessages([m]).toString('hex');
    expect(hex).toBe(
      '01' + '00000001' + // format, count
        '09' + '02' + // heartbeat, flags: context
        '694d6280d047720f' + '0000000000000002' + '0000000000000003' + // to, from, term
        '0000000000000000' + '0000000000000000' + '0102030405060708' + '0000000000000000' + // logTerm, index, commit, rejectHint
        '00000000' + // no entries
        '00000002' + '6162', // context
    );
    expect(plain(decodeMessages(Buffer.from(hex, 'hex')))).toEqual(plain([m]));
  });

  it('encodeSnapshotMessage: head followed by data is the batch of that one message', () => {
    fc.assert(
      fc.property(msg, snapshot, (m0, s) => {
        const m = { ...m0, type: 'snap' as const, snapshot: s };
        const { head, data } = encodeSnapshotMessage(m);
        expect(data).toBe(s.data);
        expect(Buffer.concat([head, data]).equals(encodeMessages([m]))).toBe(true);
        expect(head.length + data.byteLength).toBe(5 + messageEncodedBytes(m));
      }),
      { numRuns: 100 },
    );
  });
});

describe('peer codec: encode refuses what must not leave a node', () => {
  it.each(LOCAL_TYPES)('local message type %s is an assertion failure', (t) => {
    expect(isLocalMessage(t)).toBe(true);
    expect(() => encodeMessages([message({ type: 'heartbeat', to: 2n }), message({ type: t, to: 2n })])).toThrow(/assertion failed: .*not local/);
  });

  it('negative and over-64-bit values are assertion failures', () => {
    expect(() => encodeMessages([message({ type: 'app', to: -1n })])).toThrow(/assertion failed: to/);
    expect(() => encodeMessages([message({ type: 'app', term: U64_MAX + 1n })])).toThrow(/assertion failed: term/);
    const e: Entry = { term: 1n, index: -5n, type: 'normal', data: new Uint8Array(0) };
    expect(() => encodeMessages([message({ type: 'app', entries: [e] })])).toThrow(/assertion failed: entry index/);
  });
});

describe('peer codec: decode trusts nothing', () => {
  const sample = encodeMessages(sampleBatch());

  it('every truncation of a sample batch throws PeerCodecError', () => {
    for (let cut = 0; cut < sample.length; cut++) expectCodecError(() => decodeMessages(sample.subarray(0, cut)));
  });

  it('trailing bytes throw PeerCodecError', () => {
    expectCodecError(() => decodeMessages(Buffer.concat([sample, Buffer.from([0])])), /1 trailing bytes/);
  });

  it('every single-byte corruption of a sample batch decodes or throws PeerCodecError, nothing else', () => {
    for (let i = 0; i < sample.length; i++) {
      for (const v of [0x00, 0x01, 0x7f, 0x80, 0xff]) {
        const c = Buffer.from(sample);
        c[i] = v;
        try {
          decodeMessages(c);
        } catch (e) {
          if (!(e instanceof PeerCodecError)) throw new Error(`byte ${i} = ${v}: ${String(e)}`);
        }
      }
    }
  });

  it('random garbage decodes or throws PeerCodecError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (g, withHeader) => {
        const input = withHeader ? Buffer.concat([Buffer.from([PEER_CODEC_FORMAT]), g]) : g;
        try {
          decodeMessages(input);
        } catch (e) {
          if (!(e instanceof PeerCodecError)) throw e;
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses an unknown format byte', () => {
    const c = Buffer.from(sample);
    c[0] = 2;
    expectCodecError(() => decodeMessages(c), /unsupported format 2/);
  });

  it('refuses unknown message type codes, local types included (they have no code)', () => {
    for (const code of [0, 15, 255]) {
      const c = Buffer.from(sample);
      c[5] = code;
      expectCodecError(() => decodeMessages(c), new RegExp(`unknown message type code ${code}`));
    }
  });

  it('refuses unknown flag bits and entry types', () => {
    const c = Buffer.from(sample);
    c[6] |= 0x08;
    expectCodecError(() => decodeMessages(c), /unknown flag bits/);
    const d = Buffer.from(sample);
    d[5 + 62 + 16] = 2; // the first entry's type byte
    expectCodecError(() => decodeMessages(d), /entry 0: unknown entry type 2/);
  });

  it('an implausible message count is refused before anything is allocated for it', () => {
    const h = Buffer.from([PEER_CODEC_FORMAT, 0xff, 0xff, 0xff, 0xff]);
    expectCodecError(() => decodeMessages(h), /message count 4294967295 does not fit in the 0 bytes left/);
  });

  it('implausible entry, id counts and data lengths are refused', () => {
    const hb = encodeMessages([message({ type: 'app', to: 1n })]);
    const c = Buffer.from(hb);
    c.writeUInt32BE(0xfffffff0, 5 + 58);
    expectCodecError(() => decodeMessages(c), /entry count 4294967280 does not fit/);

    const withEntry = encodeMessages([message({ type: 'app', to: 1n, entries: [{ term: 1n, index: 1n, type: 'normal', data: b('xy') }] })]);
    const d = Buffer.from(withEntry);
    d.writeUInt32BE(3, 5 + 62 + 17);
    expectCodecError(() => decodeMessages(d), /message 0 entry 0: data length 3 runs past the end \(2 bytes left\)/);

    const snap = encodeMessages([message({ type: 'snap', to: 1n, snapshot: { meta: { index: 1n, term: 1n, confState: { voters: [1n], learners: [] } }, data: b('s') } })]);
    const e = Buffer.from(snap);
    e.writeUInt32BE(1000, 5 + 62 + 16);
    expectCodecError(() => decodeMessages(e), /snapshot voter count 1000 does not fit/);
  });
});
