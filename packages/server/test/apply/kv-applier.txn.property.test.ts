/**
 * Goal: txn atomicity holds for any txn, not only the hand-picked ones: etcd 3.4 runs every
 * apply-time check (checkRequests with checkPut and checkRange) on the chosen path before it
 * opens the write txn, so a txn either fails with nothing written or is applied whole at one
 * revision.
 *
 * Method: fast-check generates random (possibly nested) txns over a small key space with
 * compares on every target, puts with known/unknown leases and ignore_value/ignore_lease,
 * deletes (single, range, from-key) and ranges at past/compacted/future revisions, and
 * applies them one after another to a store that also gets compacted. After each txn:
 * - if it threw, it threw an EtcdError and every read at every revision, the revision and the
 *   hash are exactly as before;
 * - otherwise every op on the chosen path passed the checks (known lease, ignore_* on a key
 *   that existed, range revision neither future nor compacted), the revision moved by one iff
 *   there are events, every event carries that revision, the header carries the store's
 *   revision, and no read of an earlier revision changed (history is immutable).
 * 200 runs; fast-check prints the seed on failure (FC_SEED / FC_PATH replay it).
 */
import fc from 'fast-check';
import { PbCompare, PbRequestOp, PbTxnRequest, PbTxnResponse } from '../../src/api/pb';
import { EtcdError } from '../../src/errors';
import { toKeyString } from '../../src/mvcc/key-range';
import { MvccStore } from '../../src/mvcc/store';
import { FakeLeases, Result, Target, b, cmp, delOp, observe, putOp, rangeOp, setup, txnOp } from './helpers';

const keyArb = fc.constantFrom('a', 'b', 'c', 'd');

const compareArb: fc.Arbitrary<PbCompare> = fc
  .record({
    key: keyArb,
    target: fc.constantFrom(Target.VERSION, Target.CREATE, Target.MOD, Target.VALUE, Target.LEASE),
    result: fc.constantFrom(Result.EQUAL, Result.GREATER, Result.LESS, Result.NOT_EQUAL),
    operand: fc.integer({ min: 0, max: 6 }),
    ranged: fc.boolean(),
  })
  .map(({ key, target, result, operand, ranged }) =>
    cmp(key, target, result, target === Target.VALUE ? String.fromCharCode(97 + operand) : operand, ranged ? { range_end: b('\x00') } : {}),
  );

const leafOpArb: fc.Arbitrary<PbRequestOp> = fc.oneof(
  fc
    .record({
      key: keyArb,
      value: fc.constantFrom('a', 'b', 'c'),
      // Mostly valid, so that most txns get applied; "9" is a lease the lessor does not know.
      lease: fc.constantFrom('0', '0', '0', '0', '5', '9'),
      ignoreValue: fc.constantFrom(false, false, false, true),
      ignoreLease: fc.constantFrom(false, false, false, true),
    })
    .map(({ key, value, lease, ignoreValue, ignoreLease }) =>
      putOp(key, ignoreValue ? undefined : value, { ...(ignoreLease ? {} : { lease }), ignore_value: ignoreValue, ignore_lease: ignoreLease, prev_kv: true }),
    ),
  fc.record({ key: keyArb, end: fc.constantFrom(undefined, 'c', '\x00') }).map(({ key, end }) => delOp(key, { ...(end === undefined ? {} : { range_end: b(end) }), prev_kv: true })),
  fc.record({ key: keyArb, revision: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -1, max: 30 })) }).map(({ key, revision }) => rangeOp(key, { range_end: b('\x00'), revision: String(revision) })),
);

const txnArb: fc.Arbitrary<PbTxnRequest> = fc.letrec<{ txn: PbTxnRequest; op: PbRequestOp }>((tie) => ({
  txn: fc.record({
    compare: fc.array(compareArb, { maxLength: 2 }),
    success: fc.array(tie('op'), { maxLength: 3 }),
    failure: fc.array(tie('op'), { maxLength: 3 }),
  }),
  op: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leafOpArb, leafOpArb, tie('txn').map(txnOp)),
})).txn;

/**
 * Every op on the chosen path of an applied txn passed etcd's apply-time checks: puts name a
 * granted lease (or none), ignore_value/ignore_lease puts name a key that existed before the
 * txn, ranges ask for a revision that existed and was not compacted before the txn.
 */
function expectChecksPassed(store: MvccStore, req: PbTxnRequest, resp: PbTxnResponse, preRev: bigint, preCompacted: bigint): void {
  const ops = (resp.succeeded ? req.success : req.failure) ?? [];
  expect(resp.responses).toHaveLength(ops.length);
  ops.forEach((op, i) => {
    const r = resp.responses[i];
    if (op.request_put) {
      const p = op.request_put;
      expect(r.response).toBe('response_put');
      expect(['0', '5']).toContain(p.lease ?? '0');
      if (p.ignore_value || p.ignore_lease) {
        expect(store.range({ start: toKeyString(p.key!), end: undefined }, preRev).count).toBe(1);
      }
    } else if (op.request_range) {
      expect(r.response).toBe('response_range');
      const rev = BigInt(op.request_range.revision ?? '0');
      expect(rev <= 0n || (rev <= preRev && rev >= preCompacted)).toBe(true);
    } else if (op.request_delete_range) {
      expect(r.response).toBe('response_delete_range');
    } else if (op.request_txn) {
      expect(r.response).toBe('response_txn');
      expectChecksPassed(store, op.request_txn, r.response_txn!, preRev, preCompacted);
    }
  });
}

const stepArb = fc.oneof({ weight: 6, arbitrary: txnArb.map((txn) => ({ txn })) }, { weight: 1, arbitrary: fc.nat().map((pick) => ({ compact: pick })) });

const fcParams = () => ({
  numRuns: Number(process.env.FC_RUNS ?? 200),
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
  ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
});

describe('KvApplier.txn is atomic', () => {
  it('fails with nothing written, or applies whole at one revision', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 25 }), (steps) => {
        const { store, kv } = setup(new FakeLeases([5n]));
        for (const step of steps) {
          if ('compact' in step) {
            if (store.rev > store.compactedRev) store.compact(store.compactedRev + 1n + (BigInt(step.compact) % (store.rev - store.compactedRev)));
            continue;
          }
          const before = observe(store) as { rev: bigint; reads: unknown[] };
          const compactedBefore = store.compactedRev;
          let outcome: ReturnType<typeof kv.txn> | undefined;
          try {
            outcome = kv.txn(step.txn);
          } catch (e) {
            expect(e).toBeInstanceOf(EtcdError);
            expect(observe(store)).toEqual(before);
            // No write request was left open half-applied: an empty one can start and end.
            store.beginWrite();
            expect(store.endWrite().events).toEqual([]);
            continue;
          }
          const { response, events } = outcome;
          expectChecksPassed(store, step.txn, response, before.rev, compactedBefore);
          expect(response.header.revision).toBe(String(store.rev));
          expect(store.rev).toBe(events.length > 0 ? before.rev + 1n : before.rev);
          for (const e of events) expect(e.kv.modRevision).toBe(store.rev);
          // History up to the old revision is untouched.
          const after = observe(store) as { reads: unknown[] };
          expect(after.reads.slice(0, before.reads.length)).toEqual(before.reads);
        }
      }),
      fcParams(),
    );
  });
});
