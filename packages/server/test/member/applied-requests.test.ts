/**
 * Goal: the exactly-once window remembers the last N applied request IDs, forgets older ones
 * in order, and survives a snapshot round trip (JSON) unchanged, so restored members skip
 * the same duplicates as the others.
 * Method: direct use with a small window.
 */
import { AppliedRequests } from '../../src/member/applied-requests';

test('remembers the last N ids, forgets older ones oldest first', () => {
  const w = new AppliedRequests(3);
  for (const id of [1n, 2n, 3n]) w.add(id);
  expect([1n, 2n, 3n].map((id) => w.has(id))).toEqual([true, true, true]);
  w.add(4n);
  expect(w.has(1n)).toBe(false);
  expect([2n, 3n, 4n].every((id) => w.has(id))).toBe(true);
  expect(() => w.add(4n)).toThrow(/assertion failed/);
  for (let id = 5n; id < 100n; id++) w.add(id);
  expect(w.toJSON()).toEqual(['97', '98', '99']);
});

test('a JSON round trip (the snapshot) keeps the same ids in the same order', () => {
  const w = new AppliedRequests(5);
  for (let id = 10n; id < 20n; id++) w.add(id);
  const back = AppliedRequests.fromJSON(w.toJSON(), 5);
  expect(back.toJSON()).toEqual(w.toJSON());
  expect(back.has(19n) && !back.has(14n)).toBe(true);
  expect(AppliedRequests.fromJSON(undefined).toJSON()).toEqual([]);
});
