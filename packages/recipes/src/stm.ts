/**
 * STM: software transactional memory over etcd's mini-transactions, as etcd's
 * `concurrency.STM`. `apply` reads and writes through a transaction object; on commit, one
 * etcd txn checks that what was read has not changed (and, for serializable snapshot
 * isolation, that nothing written was changed by somebody else since the snapshot) and applies
 * the writes. If the check fails, `apply` runs again on fresh data, up to `retriesMax` times.
 * So `apply` may run more than once: it must have no side effects outside the transaction.
 *
 * Isolation levels (etcd's names and semantics):
 * - `serializable-snapshot` (default, etcd's default): every read is at the revision of the
 *   transaction's first read (a consistent snapshot); commit requires that every key read
 *   still has the mod revision it had, and that every key written was not modified after the
 *   snapshot revision. No write skew.
 * - `serializable`: snapshot reads as above; commit checks the read set only.
 * - `repeatable-read`: reads are at the latest revision (cached per key); commit checks the
 *   read set.
 * - `read-committed`: latest reads, no check at all: the writes are applied as they are.
 *
 * As in etcd, when a commit fails the same txn reads the read set back (its `failure` branch),
 * so the next attempt starts without another round trip for those keys.
 */
import { compare, op, type Client, type Compare, type Int64Input, type KeyValue, type Op, type ResponseHeader } from '@coord/client';
import { StmRetriesExceededError } from './errors';
import { WaitScope } from './wait';

export type StmIsolation = 'serializable-snapshot' | 'serializable' | 'repeatable-read' | 'read-committed';

export interface StmOptions {
  isolation?: StmIsolation;
  /** Attempts before giving up with `StmRetriesExceededError` (default 32). */
  retriesMax?: number;
  /** Keys to read in one round trip before the first attempt (etcd's WithPrefetch). */
  prefetch?: string[];
  signal?: AbortSignal;
  /** Deadline for all attempts together. */
  timeoutMs?: number;
}

/** The transaction `apply` works on. Reads see this transaction's own writes. */
export interface StmTxn {
  /** The key's value as text, or undefined if it does not exist. Adds the key to the read set. */
  get(key: string): Promise<string | undefined>;
  /** The key's value as bytes, or undefined. */
  getBuffer(key: string): Promise<Buffer | undefined>;
  /** The key's mod revision (0n if absent), as read. */
  rev(key: string): Promise<bigint>;
  /** Write the key on commit. */
  put(key: string, value: string | Buffer, options?: { lease?: Int64Input }): void;
  /** Delete the key on commit. */
  delete(key: string): void;
}

export interface StmResult<T> {
  /** What `apply` returned on the attempt that committed. */
  readonly value: T;
  /** The commit's header (its revision is the transaction's). */
  readonly header: ResponseHeader;
  /** How many times `apply` ran. */
  readonly attempts: number;
}

export const STM_RETRIES_MAX_DEFAULT = 32;

interface Read {
  kv: KeyValue | undefined;
  /** Header revision of the read. */
  revision: bigint;
}

type Write = { kind: 'put'; value: Buffer; op: Op } | { kind: 'delete'; op: Op };

class Attempt implements StmTxn {
  readonly reads = new Map<string, Read>();
  readonly writes = new Map<string, Write>();
  private snapshot: bigint | undefined;

  constructor(
    private readonly client: Client,
    private readonly isolation: StmIsolation,
    private readonly prefetched: Map<string, Read>,
    private readonly signal: AbortSignal,
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.getBuffer(key))?.toString('utf8');
  }

  async getBuffer(key: string): Promise<Buffer | undefined> {
    const w = this.writes.get(key);
    if (w) return w.kind === 'put' ? w.value : undefined;
    return (await this.fetch(key)).kv?.value;
  }

  async rev(key: string): Promise<bigint> {
    return (await this.fetch(key)).kv?.modRevision ?? 0n;
  }

  put(key: string, value: string | Buffer, options: { lease?: Int64Input } = {}): void {
    const v = Buffer.from(value);
    this.writes.set(key, { kind: 'put', value: v, op: op.put(key, v, { lease: options.lease }) });
  }

  delete(key: string): void {
    this.writes.set(key, { kind: 'delete', op: op.delete(key) });
  }

  /** The compares guarding the commit at this isolation level. */
  guards(): Compare[] {
    if (this.isolation === 'read-committed') return [];
    const out: Compare[] = [];
    for (const [key, r] of this.reads) out.push(compare.mod(key, '=', r.kv?.modRevision ?? 0n));
    if (this.isolation === 'serializable-snapshot' && this.reads.size > 0) {
      // etcd: writes must not have been modified after the first read's revision.
      let first = -1n;
      for (const r of this.reads.values()) if (first < 0n || r.revision < first) first = r.revision;
      for (const key of this.writes.keys()) out.push(compare.mod(key, '<', first + 1n));
    }
    return out;
  }

  private async fetch(key: string): Promise<Read> {
    const known = this.reads.get(key);
    if (known) return known;
    const snapshot = this.isolation === 'serializable-snapshot' || this.isolation === 'serializable';
    let read = this.prefetched.get(key);
    // A prefetched value can serve a snapshot only if it is at the snapshot's revision.
    if (read && snapshot && this.snapshot !== undefined && read.revision !== this.snapshot) read = undefined;
    if (read) this.prefetched.delete(key);
    else {
      const res = await this.client.getRange({ key, revision: snapshot ? this.snapshot : undefined, signal: this.signal });
      read = { kv: res.kvs[0], revision: res.header.revision };
      // A read at an old revision answers with the current header; the snapshot is what we asked.
      if (snapshot && this.snapshot !== undefined) read.revision = this.snapshot;
    }
    if (snapshot && this.snapshot === undefined) this.snapshot = read.revision;
    if (this.isolation !== 'read-committed') this.reads.set(key, read);
    return read;
  }
}

/**
 * Run `apply` as a transaction and commit it, retrying on conflict (see the file comment).
 * Errors thrown by `apply` end the transaction without committing and are rethrown.
 *
 *   const { value } = await stm(client, async (tx) => {
 *     const from = Number(await tx.get('acct/a'));
 *     const to = Number(await tx.get('acct/b'));
 *     tx.put('acct/a', String(from - 10));
 *     tx.put('acct/b', String(to + 10));
 *     return from - 10;
 *   });
 */
export async function stm<T>(client: Client, apply: (tx: StmTxn) => Promise<T> | T, options: StmOptions = {}): Promise<StmResult<T>> {
  const isolation = options.isolation ?? 'serializable-snapshot';
  if (!['serializable-snapshot', 'serializable', 'repeatable-read', 'read-committed'].includes(isolation)) {
    throw new TypeError(`isolation must be serializable-snapshot, serializable, repeatable-read or read-committed, got ${String(isolation)}`);
  }
  const retriesMax = options.retriesMax ?? STM_RETRIES_MAX_DEFAULT;
  if (!Number.isSafeInteger(retriesMax) || retriesMax < 1) throw new TypeError(`retriesMax must be a positive integer, got ${retriesMax}`);
  const scope = new WaitScope('stm', { signal: options.signal, timeoutMs: options.timeoutMs });
  try {
    let prefetched = new Map<string, Read>();
    if (options.prefetch?.length) {
      const res = await client.txn({ success: options.prefetch.map((k) => op.get(k)), signal: scope.signal });
      res.responses.forEach((r, i) => {
        if (r.op === 'range') prefetched.set(options.prefetch![i], { kv: r.kvs[0], revision: res.header.revision });
      });
    }
    for (let attempt = 1; attempt <= retriesMax; attempt++) {
      scope.check();
      const tx = new Attempt(client, isolation, prefetched, scope.signal);
      const value = await apply(tx);
      const keys = [...tx.reads.keys()];
      const res = await client.txn({
        compare: tx.guards(),
        success: [...tx.writes.values()].map((w) => w.op),
        failure: keys.map((k) => op.get(k)),
        signal: scope.signal,
      });
      if (res.succeeded) return { value, header: res.header, attempts: attempt };
      prefetched = new Map();
      res.responses.forEach((r, i) => {
        if (r.op === 'range') prefetched.set(keys[i], { kv: r.kvs[0], revision: res.header.revision });
      });
    }
    throw new StmRetriesExceededError(retriesMax);
  } catch (err) {
    throw scope.error(err);
  } finally {
    scope.dispose();
  }
}
