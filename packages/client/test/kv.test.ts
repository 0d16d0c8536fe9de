/**
 * Goal: every KV call and option of the client behaves as etcd defines it, int64 values
 * (revisions, lease IDs, member IDs) round-trip exactly as bigint, keys and values as Buffers;
 * Maintenance (status, hashKV) and Cluster (memberList) decode correctly.
 * Method: one real etcd 3.4 (test/helpers/etcd.ts) for the file; each test works under its
 * own key prefix so tests do not see each other's keys, and checks the results against what
 * it wrote (values, versions, revisions taken from response headers).
 */
import { Client, KeyValue, compare, op, type OpResult } from '../src';
import { startEtcd, type EtcdProcess } from './helpers/etcd';
import { grantLease, rawUnary } from './helpers/raw';

let etcd: EtcdProcess;
let client: Client;

beforeAll(async () => {
  etcd = await startEtcd();
  client = new Client({ endpoints: [etcd.endpoint] });
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

const keys = (kvs: KeyValue[]) => kvs.map((kv) => kv.keyString());

/** Narrow a txn op result to the expected kind. */
function as<K extends OpResult['op']>(r: OpResult, kind: K): Extract<OpResult, { op: K }> {
  expect(r.op).toBe(kind);
  return r as Extract<OpResult, { op: K }>;
}

describe('put and get', () => {
  it('writes a key and reads it back with bigint metadata and Buffer bytes', async () => {
    const put = await client.put('pg/a', 'hello');
    expect(typeof put.header.revision).toBe('bigint');
    expect(put.header.revision).toBeGreaterThan(0n);
    expect(put.header.clusterId).toBeGreaterThan(0n);
    expect(put.header.memberId).toBeGreaterThan(0n);
    expect(put.header.raftTerm).toBeGreaterThan(0n);
    expect(put.prevKv).toBeUndefined();

    const kv = await client.get('pg/a');
    expect(kv).toBeInstanceOf(KeyValue);
    expect(Buffer.isBuffer(kv!.key)).toBe(true);
    expect(Buffer.isBuffer(kv!.value)).toBe(true);
    expect(kv!.keyString()).toBe('pg/a');
    expect(kv!.valueString()).toBe('hello');
    expect(kv!.createRevision).toBe(put.header.revision);
    expect(kv!.modRevision).toBe(put.header.revision);
    expect(kv!.version).toBe(1n);
    expect(kv!.lease).toBe(0n);
  });

  it('returns undefined for a missing key', async () => {
    expect(await client.get('pg/missing')).toBeUndefined();
  });

  it('round-trips binary keys and values byte for byte', async () => {
    const key = Buffer.from([0x70, 0x67, 0x2f, 0x00, 0xff, 0x80]);
    const value = Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x00]);
    await client.put(key, value);
    const kv = await client.get(key);
    expect(kv!.key.equals(key)).toBe(true);
    expect(kv!.value.equals(value)).toBe(true);
    await client.put(new Uint8Array([0x70, 0x67, 0x2f, 0x01]), new Uint8Array([7]));
    expect((await client.get(Buffer.from([0x70, 0x67, 0x2f, 0x01])))!.value).toEqual(Buffer.from([7]));
  });

  it('returns the previous pair with prevKv and bumps the version', async () => {
    const first = await client.put('pg/prev', 'v1');
    const second = await client.put('pg/prev', 'v2', { prevKv: true });
    expect(second.prevKv).toBeInstanceOf(KeyValue);
    expect(second.prevKv!.valueString()).toBe('v1');
    expect(second.prevKv!.modRevision).toBe(first.header.revision);
    expect(second.header.revision).toBe(first.header.revision + 1n);
    const kv = await client.get('pg/prev');
    expect(kv!.version).toBe(2n);
    expect(kv!.createRevision).toBe(first.header.revision);
    expect(kv!.modRevision).toBe(second.header.revision);
  });

  it('reads at an older revision, serializably, and keys-only', async () => {
    const v1 = await client.put('pg/rev', 'old');
    await client.put('pg/rev', 'new');
    expect((await client.get('pg/rev', { revision: v1.header.revision }))!.valueString()).toBe('old');
    expect((await client.get('pg/rev', { revision: v1.header.revision.toString() }))!.valueString()).toBe('old');
    expect((await client.get('pg/rev', { serializable: true }))!.valueString()).toBe('new');
    const keysOnly = await client.get('pg/rev', { keysOnly: true });
    expect(keysOnly!.keyString()).toBe('pg/rev');
    expect(keysOnly!.value.length).toBe(0);
    expect(keysOnly!.version).toBe(2n);
  });
});

describe('leases and int64 exactness', () => {
  const LEASE = 0x694d6280d047720fn; // above 2^53: a number would round it

  beforeAll(async () => {
    expect(await grantLease(client, LEASE)).toBe(LEASE.toString());
  });

  it('attaches a lease ID above 2^53 and reads it back exactly', async () => {
    await client.put('lease/a', 'v', { lease: LEASE });
    const kv = await client.get('lease/a');
    expect(kv!.lease).toBe(LEASE);
    expect(kv!.lease.toString(16)).toBe('694d6280d047720f');
    // The same ID given as a decimal string.
    await client.put('lease/b', 'v', { lease: LEASE.toString() });
    expect((await client.get('lease/b'))!.lease).toBe(LEASE);
  });

  it('compares on the exact lease ID (off by one does not match)', async () => {
    await client.put('lease/c', 'v', { lease: LEASE });
    const hit = await client.txn({ compare: [compare.lease('lease/c', '=', LEASE)], success: [op.get('lease/c')] });
    expect(hit.succeeded).toBe(true);
    expect(as(hit.responses[0], 'range').kvs[0].lease).toBe(LEASE);
    const miss = await client.txn({ compare: [compare.lease('lease/c', '=', LEASE + 1n)] });
    expect(miss.succeeded).toBe(false);
    const miss2 = await client.txn({ compare: [compare.lease('lease/c', '=', LEASE - 1n)] });
    expect(miss2.succeeded).toBe(false);
  });

  it('keeps the lease with ignoreLease and the value with ignoreValue', async () => {
    await client.put('lease/d', 'keep-me', { lease: LEASE });
    await client.put('lease/d', 'new-value', { ignoreLease: true });
    let kv = await client.get('lease/d');
    expect(kv!.valueString()).toBe('new-value');
    expect(kv!.lease).toBe(LEASE);

    await client.put('lease/d', '', { ignoreValue: true, lease: 0 });
    kv = await client.get('lease/d');
    expect(kv!.valueString()).toBe('new-value');
    expect(kv!.lease).toBe(0n);
    expect(kv!.version).toBe(3n);
  });

  it('rejects unsafe numbers before sending anything', async () => {
    await expect(client.put('lease/e', 'v', { lease: Number(LEASE) })).rejects.toThrow(TypeError);
    await expect(client.getRange({ key: 'lease/e', revision: 1.5 })).rejects.toThrow(TypeError);
    expect(await client.get('lease/e')).toBeUndefined();
  });
});

describe('getRange', () => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  const revs: Record<string, bigint> = {};

  beforeAll(async () => {
    // Values in reverse order of keys, so sorting by value differs from sorting by key.
    for (const [i, n] of names.entries()) revs[n] = (await client.put(`gr/${n}`, `v${4 - i}`)).header.revision;
    // b gets a second version: version 2 and a newer mod revision.
    revs.b2 = (await client.put('gr/b', 'v3')).header.revision;
  });

  it('reads a single key, an explicit range, a prefix and from a key', async () => {
    expect(keys((await client.getRange({ key: 'gr/c' })).kvs)).toEqual(['gr/c']);
    expect(keys((await client.getRange({ key: 'gr/b', rangeEnd: 'gr/d' })).kvs)).toEqual(['gr/b', 'gr/c']);
    const prefix = await client.getRange({ key: 'gr/', prefix: true });
    expect(keys(prefix.kvs)).toEqual(names.map((n) => `gr/${n}`));
    expect(prefix.count).toBe(5n);
    expect(prefix.more).toBe(false);
    const from = keys((await client.getRange({ key: 'gr/c', fromKey: true })).kvs);
    expect(from.slice(0, 3)).toEqual(['gr/c', 'gr/d', 'gr/e']);
    expect(from.every((k) => k >= 'gr/c')).toBe(true);
  });

  it('reads every key with an empty prefix', async () => {
    const all = await client.getRange({ key: '', prefix: true, keysOnly: true });
    expect(keys(all.kvs)).toEqual(expect.arrayContaining(['gr/a', 'gr/e', 'pg/a']));
    expect(all.count).toBe(BigInt(all.kvs.length));
  });

  it('limits results and reports more and the full count', async () => {
    const r = await client.getRange({ key: 'gr/', prefix: true, limit: 2 });
    expect(keys(r.kvs)).toEqual(['gr/a', 'gr/b']);
    expect(r.more).toBe(true);
    expect(r.count).toBe(5n);
    const all = await client.getRange({ key: 'gr/', prefix: true, limit: 5n });
    expect(all.more).toBe(false);
  });

  it('reads the range as of an older revision', async () => {
    const r = await client.getRange({ key: 'gr/', prefix: true, revision: revs.c });
    expect(keys(r.kvs)).toEqual(['gr/a', 'gr/b', 'gr/c']);
    expect(r.kvs[1].valueString()).toBe('v3');
    expect(r.kvs[1].version).toBe(1n);
    expect(r.header.revision).toBeGreaterThanOrEqual(revs.b2);
  });

  it('sorts by each target in each order', async () => {
    const sorted = async (sortTarget: 'key' | 'version' | 'create' | 'mod' | 'value', sortOrder: 'ascend' | 'descend' | 'none') =>
      keys((await client.getRange({ key: 'gr/', prefix: true, sortTarget, sortOrder })).kvs);
    expect(await sorted('key', 'descend')).toEqual(['gr/e', 'gr/d', 'gr/c', 'gr/b', 'gr/a']);
    expect(await sorted('key', 'ascend')).toEqual(['gr/a', 'gr/b', 'gr/c', 'gr/d', 'gr/e']);
    expect(await sorted('key', 'none')).toEqual(['gr/a', 'gr/b', 'gr/c', 'gr/d', 'gr/e']);
    // Values: a=v4 b=v3 (rewritten with the same value) c=v2 d=v1 e=v0.
    expect(await sorted('value', 'ascend')).toEqual(['gr/e', 'gr/d', 'gr/c', 'gr/b', 'gr/a']);
    expect((await sorted('mod', 'descend'))[0]).toBe('gr/b');
    expect(await sorted('create', 'descend')).toEqual(['gr/e', 'gr/d', 'gr/c', 'gr/b', 'gr/a']);
    expect((await sorted('version', 'descend'))[0]).toBe('gr/b');
  });

  it('answers serializable, keys-only and count-only reads', async () => {
    const ser = await client.getRange({ key: 'gr/', prefix: true, serializable: true });
    expect(keys(ser.kvs)).toHaveLength(5);
    const ko = await client.getRange({ key: 'gr/', prefix: true, keysOnly: true });
    expect(ko.kvs.every((kv) => kv.value.length === 0)).toBe(true);
    expect(keys(ko.kvs)).toHaveLength(5);
    const co = await client.getRange({ key: 'gr/', prefix: true, countOnly: true });
    expect(co.kvs).toEqual([]);
    expect(co.count).toBe(5n);
  });

  it('filters by mod and create revision bounds', async () => {
    const minMod = await client.getRange({ key: 'gr/', prefix: true, minModRevision: revs.d });
    expect(keys(minMod.kvs)).toEqual(['gr/b', 'gr/d', 'gr/e']);
    const maxMod = await client.getRange({ key: 'gr/', prefix: true, maxModRevision: revs.b });
    expect(keys(maxMod.kvs)).toEqual(['gr/a']);
    const minCreate = await client.getRange({ key: 'gr/', prefix: true, minCreateRevision: revs.d });
    expect(keys(minCreate.kvs)).toEqual(['gr/d', 'gr/e']);
    const maxCreate = await client.getRange({ key: 'gr/', prefix: true, maxCreateRevision: revs.b });
    expect(keys(maxCreate.kvs)).toEqual(['gr/a', 'gr/b']);
  });

  it('rejects conflicting selectors and a missing key', async () => {
    await expect(client.getRange({ key: 'gr/', prefix: true, fromKey: true })).rejects.toThrow(TypeError);
    await expect(client.getRange(undefined as never)).rejects.toThrow(TypeError);
  });
});

describe('delete', () => {
  beforeEach(async () => {
    for (const n of ['a', 'b', 'c', 'd']) await client.put(`del/${n}`, n);
  });

  it('deletes one key and reports the count', async () => {
    const r = await client.delete('del/a');
    expect(r.deleted).toBe(1n);
    expect(r.prevKvs).toEqual([]);
    expect(await client.get('del/a')).toBeUndefined();
    expect((await client.delete('del/a')).deleted).toBe(0n);
  });

  it('deletes a range with rangeEnd and returns previous pairs', async () => {
    const r = await client.delete('del/b', { rangeEnd: 'del/d', prevKv: true });
    expect(r.deleted).toBe(2n);
    expect(r.prevKvs.map((kv) => kv.valueString())).toEqual(['b', 'c']);
    expect(keys((await client.getRange({ key: 'del/', prefix: true })).kvs)).toEqual(['del/a', 'del/d']);
  });

  it('deletes by prefix and from a key', async () => {
    const from = await client.delete('del/c', { fromKey: true, prevKv: true });
    expect(from.prevKvs.slice(0, 2).map((kv) => kv.keyString())).toEqual(['del/c', 'del/d']);
    const prefix = await client.delete('del/', { prefix: true });
    expect(prefix.deleted).toBe(2n);
    expect((await client.getRange({ key: 'del/', prefix: true, countOnly: true })).count).toBe(0n);
  });
});

describe('txn', () => {
  it('runs success when every compare holds, failure otherwise', async () => {
    const create = await client.txn({
      compare: [compare.version('tx/lock', '=', 0)],
      success: [op.put('tx/lock', 'me'), op.get('tx/lock')],
      failure: [op.get('tx/lock')],
    });
    expect(create.succeeded).toBe(true);
    expect(create.responses).toHaveLength(2);
    expect(as(create.responses[0], 'put').header.revision).toBe(create.header.revision);
    expect(as(create.responses[1], 'range').kvs[0].valueString()).toBe('me');

    const again = await client.txn({
      compare: [compare.version('tx/lock', '=', 0)],
      success: [op.put('tx/lock', 'other')],
      failure: [op.get('tx/lock')],
    });
    expect(again.succeeded).toBe(false);
    expect(as(again.responses[0], 'range').kvs[0].valueString()).toBe('me');
    expect(again.header.revision).toBe(create.header.revision); // nothing written
  });

  it('compares on each target with each operator', async () => {
    const put = await client.put('tx/cmp', 'm');
    await client.put('tx/cmp', 'n'); // version 2
    const rev = put.header.revision;
    const holds = async (c: ReturnType<typeof compare.version>) => (await client.txn({ compare: [c] })).succeeded;
    expect(await holds(compare.version('tx/cmp', '=', 2))).toBe(true);
    expect(await holds(compare.version('tx/cmp', '>', 1))).toBe(true);
    expect(await holds(compare.version('tx/cmp', '<', 2))).toBe(false);
    expect(await holds(compare.version('tx/cmp', '!=', 2))).toBe(false);
    expect(await holds(compare.create('tx/cmp', '=', rev))).toBe(true);
    expect(await holds(compare.createRevision('tx/cmp', '<', rev))).toBe(false);
    expect(await holds(compare.mod('tx/cmp', '>', rev))).toBe(true);
    expect(await holds(compare.modRevision('tx/cmp', '=', rev + 1n))).toBe(true);
    expect(await holds(compare.value('tx/cmp', '=', 'n'))).toBe(true);
    expect(await holds(compare.value('tx/cmp', '>', 'm'))).toBe(true);
    expect(await holds(compare.value('tx/cmp', '<', Buffer.from('n')))).toBe(false);
    expect(await holds(compare.lease('tx/cmp', '=', 0))).toBe(true);
    // All compares must hold.
    expect((await client.txn({ compare: [compare.version('tx/cmp', '=', 2), compare.value('tx/cmp', '=', 'x')] })).succeeded).toBe(false);
    // An empty txn succeeds.
    expect((await client.txn({})).succeeded).toBe(true);
  });

  it('compares over a key range', async () => {
    await client.put('tx/r/a', '1');
    await client.put('tx/r/b', '1');
    expect((await client.txn({ compare: [compare.value('tx/r/', '=', '1', { prefix: true })] })).succeeded).toBe(true);
    await client.put('tx/r/c', '2');
    expect((await client.txn({ compare: [compare.value('tx/r/', '=', '1', { prefix: true })] })).succeeded).toBe(false);
  });

  it('runs delete ops and nested transactions, returning typed results', async () => {
    await client.put('tx/n/a', 'A');
    await client.put('tx/n/b', 'B');
    const r = await client.txn({
      success: [
        op.delete('tx/n/a', { prevKv: true }),
        op.txn({
          compare: [compare.value('tx/n/b', '=', 'B')],
          success: [op.put('tx/n/c', 'C', { prevKv: true }), op.get('tx/n/', { prefix: true, countOnly: true })],
        }),
      ],
    });
    expect(r.succeeded).toBe(true);
    const del = as(r.responses[0], 'delete');
    expect(del.deleted).toBe(1n);
    expect(del.prevKvs[0].valueString()).toBe('A');
    const nested = as(r.responses[1], 'txn');
    expect(nested.succeeded).toBe(true);
    expect(as(nested.responses[0], 'put').prevKv).toBeUndefined();
    // Ops see the txn's own earlier writes: a deleted, c created.
    expect(as(nested.responses[1], 'range').count).toBe(2n);
    expect(keys((await client.getRange({ key: 'tx/n/', prefix: true })).kvs)).toEqual(['tx/n/b', 'tx/n/c']);
  });

  it('applies all ops at one revision', async () => {
    const r = await client.txn({ success: [op.put('tx/one/a', '1'), op.put('tx/one/b', '2')] });
    const a = await client.get('tx/one/a');
    const b = await client.get('tx/one/b');
    expect(a!.modRevision).toBe(r.header.revision);
    expect(b!.modRevision).toBe(r.header.revision);
  });
});

describe('compact', () => {
  it('compacts history and hashKV reports the compact revision', async () => {
    const first = await client.put('cp/k', '1');
    const second = await client.put('cp/k', '2');
    const res = await client.compact(second.header.revision, { physical: true });
    expect(res.header.revision).toBeGreaterThanOrEqual(second.header.revision);
    const hash = await client.hashKV();
    expect(hash.compactRevision).toBe(second.header.revision);
    // The current value is still there; the history before the compaction is gone.
    expect((await client.get('cp/k'))!.valueString()).toBe('2');
    await expect(client.get('cp/k', { revision: first.header.revision })).rejects.toMatchObject({ name: 'CompactedError' });
  });
});

describe('maintenance and cluster', () => {
  it('status describes the answering member', async () => {
    const s = await client.status();
    expect(s.version).toMatch(/^3\.4\./);
    expect(s.leader).toBe(s.header.memberId);
    expect(s.raftIndex).toBeGreaterThan(0n);
    expect(s.raftAppliedIndex).toBeGreaterThan(0n);
    expect(s.raftTerm).toBeGreaterThan(0n);
    expect(s.dbSize).toBeGreaterThan(0n);
    expect(s.dbSizeInUse).toBeGreaterThan(0n);
    expect(s.errors).toEqual([]);
    expect(s.isLearner).toBe(false);
  });

  it('memberList returns the single member with exact uint64 IDs', async () => {
    const s = await client.status();
    const m = await client.memberList();
    expect(m.members).toHaveLength(1);
    expect(m.members[0].id).toBe(s.header.memberId);
    expect(m.header.clusterId).toBe(s.header.clusterId);
    expect(m.members[0].name).toBe('t');
    expect(m.members[0].clientURLs).toEqual([etcd.clientUrl]);
    expect(m.members[0].peerURLs).toHaveLength(1);
    expect(m.members[0].isLearner).toBe(false);
    expect((await client.memberList({ linearizable: true })).members[0].id).toBe(s.header.memberId);
  });

  it('hashKV at a fixed revision is stable across later writes', async () => {
    const rev = (await client.put('hk/a', '1')).header.revision;
    const h1 = await client.hashKV(rev);
    await client.put('hk/b', '2');
    const h2 = await client.hashKV(rev.toString());
    expect(h2.hash).toBe(h1.hash);
    expect(Number.isInteger(h1.hash) && h1.hash >= 0 && h1.hash <= 0xffffffff).toBe(true);
    const latest = await client.hashKV();
    expect(latest.hash).not.toBe(h1.hash);
  });
});

describe('raw access', () => {
  it('exposes the grpc-js service clients in the wire shape', async () => {
    await client.put('raw/k', 'v');
    const res = await rawUnary<{ kvs: { key: Buffer; value: Buffer; version: string }[]; count: string }>(client.raw().kv, 'Range', {
      key: Buffer.from('raw/k'),
    });
    expect(res.count).toBe('1');
    expect(res.kvs[0].value.toString()).toBe('v');
    expect(res.kvs[0].version).toBe('1');
    expect(client.raw(0).target).toBe(etcd.endpoint);
    expect(client.raw(etcd.endpoint).kv).toBe(client.raw().kv);
    expect(() => client.raw(5)).toThrow(RangeError);
  });
});
