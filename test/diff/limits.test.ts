/**
 * Differential test: request size limits, coord against etcd 3.4.
 *
 * Goal: values near and over the request size limit are accepted or refused exactly as by
 * etcd, with the same error ("etcdserver: request is too large", InvalidArgument), both at
 * the default limit and with --max-request-bytes set, and a value at the limit reads back
 * byte for byte.
 *
 * Method: etcd checks the size of the *encoded raft request* (InternalRaftRequest: a
 * RequestHeader holding a 64-bit request ID, plus the PutRequest) against
 * --max-request-bytes (default 1572864 = 1.5 MiB), not the size of key + value. So the
 * largest value accepted is limit - overhead - len(key), where the overhead depends on the
 * varint length of etcd's request ID, 7 to 10 bytes (the ID's top 16 bits are the low 16
 * bits of the member ID): for a 3-byte key and the default limit it is 1572837..1572840.
 * `requestBytes()` below models that encoding exactly; the tests (1) compare etcdctl
 * transcripts at sizes that are on the same side of the limit whatever the ID length,
 * and (2) binary-search the largest accepted value on each side and require both to lie
 * in the window etcd's encoding allows. Above max-request-bytes + 512 KiB gRPC itself
 * refuses the message; etcdctl refuses to send more than 2 MiB (client-side error).
 * Values go through etcdctl's stdin: argv cannot carry 1.5 MB (MAX_ARG_STRLEN is 128 KiB).
 */
import { etcdctl } from '../harness/etcdctl';
import type { Member } from '../harness/proc';
import { expectSameAsEtcd, prefixFor } from '../harness/scenario';
import { usePair } from '../harness/target';

const DEFAULT_LIMIT = 1572864;

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    len++;
  }
  return len;
}

/** Size of etcd's InternalRaftRequest{header: {ID}, put: {key, value}} for an ID of `idLen` varint bytes. */
export function requestBytes(keyLen: number, valueLen: number, idLen: number): number {
  const field = (len: number) => 1 + varintLen(len) + len; // tag (field < 16) + length + bytes
  const header = 1 + idLen; // RequestHeader.ID (field 1, varint)
  const put = field(keyLen) + (valueLen > 0 ? field(valueLen) : 0);
  // header is field 100 (2-byte tag), put is field 4.
  return 2 + varintLen(header) + header + field(put);
}

/** Largest value accepted for a key of `keyLen` bytes with an ID of `idLen` bytes. */
export function maxValue(limit: number, keyLen: number, idLen: number): number {
  let v = limit;
  while (v > 0 && requestBytes(keyLen, v, idLen) > limit) v--;
  return v;
}

const value = (n: number) => Buffer.alloc(n, 'x');

/** Largest accepted value size on `m`, by binary search between lo (accepted) and hi (refused). */
async function boundary(m: Member, key: string, lo: number, hi: number): Promise<number> {
  const put = async (n: number) => (await etcdctl(m.endpoint, ['put', key], { stdin: value(n) })).code === 0;
  expect(await put(lo)).toBe(true);
  expect(await put(hi)).toBe(false);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await put(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

describe('request size limits at the default --max-request-bytes', () => {
  const pair = usePair();

  test('the size model reproduces the boundary measured on etcd 3.4.23 (key "big": 1572838 with a 9-byte ID)', () => {
    expect(maxValue(DEFAULT_LIMIT, 3, 9)).toBe(1572838);
    expect(maxValue(DEFAULT_LIMIT, 3, 10)).toBe(1572837);
    expect(maxValue(DEFAULT_LIMIT, 3, 7)).toBe(1572840);
  });

  test('values just under, at and over the limit', async () => {
    const p = prefixFor('limits');
    const key = `${p}big`;
    const surelyOk = maxValue(DEFAULT_LIMIT, key.length, 10);
    const surelyTooLarge = maxValue(DEFAULT_LIMIT, key.length, 7) + 1;
    await expectSameAsEtcd(pair, [
      { args: ['put', key], stdin: value(1024 * 1024) },
      { args: ['put', key], stdin: value(surelyOk - 1) },
      { args: ['put', key], stdin: value(surelyOk) },
      { args: ['get', key, '--print-value-only'], digest: true },
      { args: ['get', key, '--keys-only', '-w', 'json'] },
      { args: ['put', key], stdin: value(surelyTooLarge), code: 1 },
      { args: ['put', key], stdin: value(DEFAULT_LIMIT), code: 1 },
      { args: ['put', key, '-w', 'json'], stdin: value(DEFAULT_LIMIT + 1000), code: 1 },
      // Over 2 MiB etcdctl's gRPC client refuses to send: a client-side error, the same everywhere.
      { args: ['put', key], stdin: value(2 * 1024 * 1024 + 1), code: 1 },
      { args: ['get', key, '--keys-only', '-w', 'json'] },
      // A txn's size counts every operation: two 700 kB values fit, two 800 kB values do not.
      { args: ['txn'], stdin: `\nput ${p}t1 ${'a'.repeat(700_000)}\nput ${p}t2 ${'b'.repeat(700_000)}\n\n\n` },
      { args: ['txn'], stdin: `\nput ${p}t1 ${'c'.repeat(800_000)}\nput ${p}t2 ${'d'.repeat(800_000)}\n\n\n`, code: 1 },
      { args: ['get', p, '--prefix', '--keys-only', '-w', 'json'] },
    ]);
  });

  test('the largest accepted value lies in the window etcd\'s request encoding allows', async () => {
    const key = `${prefixFor('boundary')}k`;
    const lo = maxValue(DEFAULT_LIMIT, key.length, 10) - 8;
    const hi = maxValue(DEFAULT_LIMIT, key.length, 7) + 8;
    const [ref, tgt] = await Promise.all([boundary(pair.reference, key, lo, hi), boundary(pair.target, key, lo, hi)]);
    const window = [maxValue(DEFAULT_LIMIT, key.length, 10), maxValue(DEFAULT_LIMIT, key.length, 7)];
    expect(ref).toBeGreaterThanOrEqual(window[0]);
    expect(ref).toBeLessThanOrEqual(window[1]);
    expect({ target: tgt, inWindow: tgt >= window[0] && tgt <= window[1] }).toEqual({ target: tgt, inWindow: true });
  });
});

describe('request size limits with --max-request-bytes=4096', () => {
  const LIMIT = 4096;
  const pair = usePair({ extraArgs: ['--max-request-bytes', String(LIMIT)] });

  test('the flag moves the limit; gRPC refuses messages over limit + 512 KiB', async () => {
    const p = prefixFor('limit-flag');
    const key = `${p}k`;
    await expectSameAsEtcd(pair, [
      { args: ['put', key], stdin: value(maxValue(LIMIT, key.length, 10)) },
      { args: ['put', key], stdin: value(maxValue(LIMIT, key.length, 7) + 1), code: 1 },
      { args: ['put', key], stdin: value(100 * 1024), code: 1 },
      { args: ['put', key], stdin: value(LIMIT + 512 * 1024 + 1), code: 1 },
      { args: ['get', key, '--keys-only', '-w', 'json'] },
      { args: ['txn'], stdin: `\nput ${p}a ${'a'.repeat(2000)}\nput ${p}b ${'b'.repeat(2000)}\n\n\n` },
      { args: ['txn'], stdin: `\nput ${p}a ${'a'.repeat(2100)}\nput ${p}b ${'b'.repeat(2100)}\n\n\n`, code: 1 },
      { args: ['get', p, '--prefix', '--keys-only'] },
    ]);
  });

  test('the largest accepted value lies in the window etcd\'s request encoding allows', async () => {
    const key = `${prefixFor('boundary-flag')}k`;
    const window = [maxValue(LIMIT, key.length, 10), maxValue(LIMIT, key.length, 7)];
    const [ref, tgt] = await Promise.all([
      boundary(pair.reference, key, window[0] - 8, window[1] + 8),
      boundary(pair.target, key, window[0] - 8, window[1] + 8),
    ]);
    expect(ref).toBeGreaterThanOrEqual(window[0]);
    expect(ref).toBeLessThanOrEqual(window[1]);
    expect({ target: tgt, inWindow: tgt >= window[0] && tgt <= window[1] }).toEqual({ target: tgt, inWindow: true });
  });
});
