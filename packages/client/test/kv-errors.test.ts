/**
 * Goal: the errors a real etcd returns for bad KV requests arrive as the catalogue's classes,
 * with etcd's gRPC code and text, and the failed request changes nothing.
 * Method: one real etcd 3.4 for the file (its own, because compaction here would disturb
 * other files); provoke each error with the smallest request that triggers it, assert class,
 * `.code`, `.details`, and where it matters that the key space is unchanged afterwards.
 */
import {
  Client,
  CompactedError,
  DuplicateKeyError,
  EmptyKeyError,
  EtcdError,
  FutureRevisionError,
  KeyNotFoundError,
  LeaseNotFoundError,
  LeaseProvidedError,
  RequestTooLargeError,
  Status,
  TooManyOpsError,
  ValueProvidedError,
  op,
} from '../src';
import { startEtcd, type EtcdProcess } from './helpers/etcd';

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

/** Await a rejection and return the error, failing the test if the call succeeds. */
async function failure(p: Promise<unknown>): Promise<EtcdError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EtcdError);
  return err as EtcdError;
}

it('reading a compacted revision raises CompactedError (OUT_OF_RANGE)', async () => {
  const first = await client.put('c/k', '1');
  const second = await client.put('c/k', '2');
  await client.compact(second.header.revision);
  const e = await failure(client.getRange({ key: 'c/k', revision: first.header.revision }));
  expect(e).toBeInstanceOf(CompactedError);
  expect(e.code).toBe(Status.OUT_OF_RANGE);
  expect(e.details).toBe('etcdserver: mvcc: required revision has been compacted');
  // Compacting again at the same revision is refused the same way.
  expect(await failure(client.compact(second.header.revision))).toBeInstanceOf(CompactedError);
  // The revision itself is still readable.
  expect((await client.get('c/k', { revision: second.header.revision }))!.valueString()).toBe('2');
});

it('reading or compacting a future revision raises FutureRevisionError', async () => {
  const now = (await client.put('f/k', 'v')).header.revision;
  const e = await failure(client.getRange({ key: 'f/k', revision: now + 1000n }));
  expect(e).toBeInstanceOf(FutureRevisionError);
  expect(e.code).toBe(Status.OUT_OF_RANGE);
  expect(e.details).toBe('etcdserver: mvcc: required revision is a future revision');
  expect(await failure(client.compact(now + 1000n))).toBeInstanceOf(FutureRevisionError);
});

it('a txn writing one key twice raises DuplicateKeyError and writes nothing', async () => {
  const e = await failure(client.txn({ success: [op.put('d/k', '1'), op.put('d/k', '2')] }));
  expect(e).toBeInstanceOf(DuplicateKeyError);
  expect(e.code).toBe(Status.INVALID_ARGUMENT);
  expect(e.details).toBe('etcdserver: duplicate key given in txn request');
  // A delete of a range covering a put in the same branch is a duplicate too.
  expect(await failure(client.txn({ success: [op.put('d/k', '1'), op.delete('d/', { prefix: true })] }))).toBeInstanceOf(DuplicateKeyError);
  expect(await client.get('d/k')).toBeUndefined();
});

it('more than 128 ops in a txn raises TooManyOpsError; 128 is allowed', async () => {
  const ops = (n: number) => Array.from({ length: n }, (_, i) => op.put(`t/${i}`, 'v'));
  const e = await failure(client.txn({ success: ops(129) }));
  expect(e).toBeInstanceOf(TooManyOpsError);
  expect(e.code).toBe(Status.INVALID_ARGUMENT);
  expect(e.details).toBe('etcdserver: too many operations in txn request');
  expect((await client.getRange({ key: 't/', prefix: true, countOnly: true })).count).toBe(0n);
  const ok = await client.txn({ success: ops(128) });
  expect(ok.responses).toHaveLength(128);
  expect((await client.getRange({ key: 't/', prefix: true, countOnly: true })).count).toBe(128n);
});

it('an empty key raises EmptyKeyError for put, range and delete', async () => {
  for (const call of [() => client.put('', 'v'), () => client.get(''), () => client.delete('')]) {
    const e = await failure(call());
    expect(e).toBeInstanceOf(EmptyKeyError);
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.details).toBe('etcdserver: key is not provided');
  }
});

it('a request over 1.5 MiB raises RequestTooLargeError and stores nothing', async () => {
  const value = Buffer.alloc(1.6 * 1024 * 1024, 0x61);
  const e = await failure(client.put('big/k', value));
  expect(e).toBeInstanceOf(RequestTooLargeError);
  expect(e.code).toBe(Status.INVALID_ARGUMENT);
  expect(e.details).toBe('etcdserver: request is too large');
  expect(await client.get('big/k')).toBeUndefined();
  // Just under the limit goes through.
  await client.put('big/k', Buffer.alloc(1024 * 1024, 0x62));
  expect((await client.get('big/k'))!.value.length).toBe(1024 * 1024);
});

it('ignoreValue on a missing key raises KeyNotFoundError', async () => {
  const e = await failure(client.put('nf/k', '', { ignoreValue: true }));
  expect(e).toBeInstanceOf(KeyNotFoundError);
  expect(e.code).toBe(Status.INVALID_ARGUMENT);
  expect(e.details).toBe('etcdserver: key not found');
});

it('a put with an unknown lease raises LeaseNotFoundError (NOT_FOUND)', async () => {
  const e = await failure(client.put('ln/k', 'v', { lease: 0x694d6280d047720fn }));
  expect(e).toBeInstanceOf(LeaseNotFoundError);
  expect(e.code).toBe(Status.NOT_FOUND);
  expect(e.details).toBe('etcdserver: requested lease not found');
  expect(await client.get('ln/k')).toBeUndefined();
});

it('ignoreValue with a value and ignoreLease with a lease are refused', async () => {
  await client.put('ig/k', 'v');
  const v = await failure(client.put('ig/k', 'x', { ignoreValue: true }));
  expect(v).toBeInstanceOf(ValueProvidedError);
  expect(v.details).toBe('etcdserver: value is provided');
  const l = await failure(client.put('ig/k', 'x', { ignoreLease: true, lease: 5 }));
  expect(l).toBeInstanceOf(LeaseProvidedError);
  expect(l.details).toBe('etcdserver: lease is provided');
  expect((await client.get('ig/k'))!.valueString()).toBe('v');
});
