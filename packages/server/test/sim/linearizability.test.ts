/**
 * Goal: the Wing–Gong/Porcupine-style checker accepts linearizable register histories and
 * rejects non-linearizable ones, including with unknown-outcome writes.
 * Method: hand-made histories with known answers.
 */
import { checkKv, checkRegister, type KvOp } from './linearizability';

let id = 0;
const put = (value: string, call: number, ret: number, key = 'k'): KvOp => ({ id: id++, kind: 'put', key, value, call, ret });
const get = (value: string | null, call: number, ret: number, key = 'k'): KvOp => ({ id: id++, kind: 'get', key, value, call, ret });

describe('linearizability checker (register)', () => {
  test('sequential history: read sees the last write', () => {
    expect(checkRegister([put('a', 0, 1), get('a', 2, 3), put('b', 4, 5), get('b', 6, 7)])).toBe(true);
  });
  test('stale read after a completed write is not linearizable', () => {
    expect(checkRegister([put('a', 0, 1), put('b', 2, 3), get('a', 4, 5)])).toBe(false);
  });
  test('a read concurrent with a write may see either value', () => {
    expect(checkRegister([put('a', 0, 1), put('b', 2, 6), get('a', 3, 4), get('b', 5, 7)])).toBe(true);
  });
  test('once a read sees the new value, a later read may not see the old one', () => {
    expect(checkRegister([put('a', 0, 1), put('b', 2, 10), get('b', 3, 4), get('a', 5, 6)])).toBe(false);
  });
  test('a write with unknown outcome may take effect late, or never', () => {
    expect(checkRegister([put('a', 0, 1), put('x', 2, Infinity), get('a', 3, 4), get('x', 8, 9)])).toBe(true);
    expect(checkRegister([put('a', 0, 1), put('x', 2, Infinity), get('a', 3, 4)])).toBe(true);
  });
  test('a read of a value never written is not linearizable', () => {
    expect(checkRegister([put('a', 0, 1), get('zzz', 2, 3)])).toBe(false);
  });
  test('keys are checked independently and the failing key is reported', () => {
    const r = checkKv([put('a', 0, 1, 'k1'), get('a', 2, 3, 'k1'), put('b', 0, 1, 'k2'), get(null, 2, 3, 'k2')]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.key).toBe('k2');
  });
});
