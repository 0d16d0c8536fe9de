/**
 * Goal: SortedKeys always reads as the sorted set of inserted keys, whatever the insertion
 * order, across merges (reader-triggered and bound-triggered) and removals.
 * Method: fast-check sequences of inserts (distinct keys), reads and removals against a
 * plain sorted array; one large run past the side buffer's bound.
 */
import fc from 'fast-check';
import { SortedKeys } from '../../src/mvcc/sorted-keys';

const sorted = (xs: Iterable<string>): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

test('random inserts, reads and removals match a sorted reference', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.record({ op: fc.constant('insert' as const), key: fc.string({ maxLength: 4 }) }), fc.record({ op: fc.constant('read' as const) }), fc.record({ op: fc.constant('remove' as const), key: fc.string({ maxLength: 4 }) })), { maxLength: 200 }),
      (ops) => {
        const idx = new SortedKeys();
        const ref = new Set<string>();
        for (const o of ops) {
          if (o.op === 'insert') {
            if (ref.has(o.key)) continue;
            ref.add(o.key);
            idx.insert(o.key);
          } else if (o.op === 'remove') {
            if (!ref.delete(o.key)) continue;
            idx.removeAll(new Set([o.key]));
          } else expect(idx.keys()).toEqual(sorted(ref));
          expect(idx.size).toBe(ref.size);
        }
        expect(idx.keys()).toEqual(sorted(ref));
      },
    ),
  );
});

test('100,000 keys in an order that is not byte order (key9 before key10) read back sorted', () => {
  const idx = new SortedKeys();
  const keys = Array.from({ length: 100_000 }, (_, i) => `key${i}`);
  for (const k of keys) idx.insert(k);
  expect(idx.size).toBe(100_000);
  expect(idx.keys()).toEqual(sorted(keys));
  expect(() => idx.pushInOrder('a')).toThrow(/assertion failed/);
});
