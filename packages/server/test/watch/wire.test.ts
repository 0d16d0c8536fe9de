/**
 * The hand-written WatchResponse encoder (watch/wire.ts) against the .proto: whatever it
 * writes, protobufjs (what etcd clients decode with, in the npm world) must read back as the
 * response the old object path would have sent, and the sizes the hub fragments by must be
 * the sizes written.
 */
import * as fc from 'fast-check';
import { serviceDefinition } from '@coord/proto';
import { EventType, type KeyValue, type MvccEvent } from '../../src/mvcc/store';
import { encodedEvent, encodeWatchResponse, encodeWatchResponses, HeaderEncoder, varintLength } from '../../src/watch/wire';

const watchMethod = serviceDefinition('etcdserverpb.Watch').Watch;
const decode = (buf: Buffer): Record<string, unknown> => watchMethod.responseDeserialize(buf) as Record<string, unknown>;
const objectPath = (v: unknown): Buffer => watchMethod.responseSerialize(v) as Buffer;

const U64_MAX = (1n << 64n) - 1n;
const int64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const revision = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }));
const bytes = fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)));
const keyValue: fc.Arbitrary<KeyValue> = fc.record({ key: bytes, createRevision: revision, modRevision: revision, version: revision, value: bytes, lease: int64 });
const event: fc.Arbitrary<MvccEvent> = fc.record({
  type: fc.constantFrom(EventType.Put, EventType.Delete),
  kv: keyValue,
  prevKv: fc.option(keyValue, { nil: undefined }),
});

const pbKv = (kv: KeyValue) => ({ key: kv.key, create_revision: String(kv.createRevision), mod_revision: String(kv.modRevision), version: String(kv.version), value: kv.value, lease: String(kv.lease) });

describe('watch response wire encoding', () => {
  test('decodes to the response the protobufjs object path encodes, for any field values', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: U64_MAX }),
        fc.bigInt({ min: 0n, max: U64_MAX }),
        int64,
        fc.bigInt({ min: 0n, max: U64_MAX }),
        int64,
        fc.record({ canceled: fc.boolean(), fragment: fc.boolean(), compactRevision: int64, cancelReason: fc.string({ maxLength: 40 }) }, { requiredKeys: [] }),
        fc.array(event, { maxLength: 5 }),
        fc.boolean(),
        (clusterId, memberId, rev, term, watchId, flags, events, withPrev) => {
          const header = new HeaderEncoder(clusterId, memberId).field(rev, term);
          const ours = encodeWatchResponse(header, { watchId, ...flags, events: events.map((ev) => encodedEvent(ev, withPrev)) });
          const theirs = objectPath({
            header: { cluster_id: String(clusterId), member_id: String(memberId), revision: String(rev), raft_term: String(term) },
            watch_id: String(watchId),
            canceled: flags.canceled,
            fragment: flags.fragment,
            compact_revision: flags.compactRevision === undefined ? undefined : String(flags.compactRevision),
            cancel_reason: flags.cancelReason,
            events: events.map((ev) => ({ type: ev.type, kv: pbKv(ev.kv), ...(withPrev && ev.prevKv ? { prev_kv: pbKv(ev.prevKv) } : {}) })),
          });
          expect(decode(ours)).toEqual(decode(theirs));
        },
      ),
      { numRuns: 500 },
    );
  });

  test('omits zero values and orders fields by number, as Go marshals proto3', () => {
    const header = new HeaderEncoder(1n, 2n).field(0n, 3n);
    // header: cluster_id=1, member_id=2, raft_term=3 (revision 0 omitted)
    expect([...header]).toEqual([0x0a, 6, 0x08, 1, 0x10, 2, 0x20, 3]);
    const created = encodeWatchResponse(header, { watchId: 0n, created: true });
    expect([...created.subarray(header.length)]).toEqual([0x18, 1]);
    const put: MvccEvent = { type: EventType.Put, kv: { key: Buffer.from('k'), createRevision: 5n, modRevision: 5n, version: 1n, value: Buffer.alloc(0), lease: 0n }, prevKv: undefined };
    // events(11) { kv(2) { key(1)="k", create(2)=5, mod(3)=5, version(4)=1 } }; type PUT (0) omitted
    expect([...encodedEvent(put, false)]).toEqual([0x5a, 11, 0x12, 9, 0x0a, 1, 0x6b, 0x10, 5, 0x18, 5, 0x20, 1]);
    const negative = encodeWatchResponse(header, { watchId: -1n });
    expect(negative.length - header.length).toBe(1 + 10);
  });

  test('a cached event and header are reused, and change with the revision or term', () => {
    const ev: MvccEvent = { type: EventType.Delete, kv: { key: Buffer.from('a'), createRevision: 0n, modRevision: 9n, version: 0n, value: Buffer.alloc(0), lease: 0n }, prevKv: undefined };
    expect(encodedEvent(ev, true)).toBe(encodedEvent(ev, false)); // no prev_kv known: one encoding
    const h = new HeaderEncoder(7n, 8n);
    const a = h.field(10n, 2n);
    expect(h.field(10n, 2n)).toBe(a);
    expect(h.field(11n, 2n)).not.toEqual(a);
    expect(h.field(11n, 3n)).not.toEqual(h.field(11n, 2n));
  });

  test('the fan-out encoding of many watch IDs is, byte for byte, one response per ID', () => {
    fc.assert(
      fc.property(fc.array(int64, { maxLength: 20 }), fc.array(event, { minLength: 1, maxLength: 3 }), fc.boolean(), (ids, events, withPrev) => {
        const header = new HeaderEncoder(5n, 6n).field(42n, 7n);
        const encoded = events.map((ev) => encodedEvent(ev, withPrev));
        const out: Buffer[] = [];
        const bytes = encodeWatchResponses(header, ids, encoded, out);
        expect(out.map((b) => b.toString('hex'))).toEqual(ids.map((watchId) => encodeWatchResponse(header, { watchId, events: encoded }).toString('hex')));
        expect(bytes).toBe(out.reduce((n, b) => n + b.length, 0));
      }),
      { numRuns: 200 },
    );
  });

  test('varintLength matches the bytes written for the whole int64 range', () => {
    fc.assert(
      fc.property(int64, (n) => {
        const header = new HeaderEncoder(0n, 0n).field(0n, 0n);
        const r = encodeWatchResponse(header, { watchId: n });
        expect(r.length).toBe(header.length + (n === 0n ? 0 : 1 + varintLength(n)));
        expect(String(decode(r).watch_id)).toBe(String(n));
      }),
    );
  });
});
