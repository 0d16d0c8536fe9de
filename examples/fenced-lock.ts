/**
 * Fenced lock: a critical section guarded by a distributed lock whose writes carry the lock's
 * fencing token, so that a holder that lost the lock without noticing (a long GC pause, a
 * stalled VM, a network partition) cannot overwrite the work of the next holder.
 *
 * Why a lock alone is not enough: a lock held through a lease is released when the lease
 * expires. A holder that was paused for longer than the TTL wakes up still "inside" its
 * critical section while somebody else holds the lock. Every write it makes then must be
 * refused by whatever it writes to. That is what the fencing token is for.
 *
 * How it works (@coord/recipes Session + Mutex, keys laid out as `etcdctl lock NAME`):
 * - `mutex.lock()` / `mutex.withLock(fn)` return `{ key, fencingToken, signal }`. The token is
 *   the create revision of our lock key: every later holder's token is strictly greater.
 * - Writes to etcd go through `mutex.txnIfOwner(ops)`: one transaction whose compare
 *   `create_revision(key) == fencingToken` the *server* checks, so it fails once our key is
 *   gone, whether or not we know it yet. Without the Mutex object at hand the same guard is
 *   `compare.create(lock.key, '=', lock.fencingToken)` (shown for the stale holder below).
 * - A resource outside etcd (a database, a file store) should be given the token with each
 *   write and refuse tokens lower than the highest it has seen; the shared record below keeps
 *   the token of its last writer to show that check too.
 * - `lock.signal` aborts (and `mutex.on('lost')` fires) when the lock is lost: stop working
 *   then (the critical section below checks it before writing). The guard above is for the
 *   case where we cannot know in time.
 *
 * Roles (--role):
 *   worker  --rounds times: take the lock, read the shared record, work --work-ms, write the
 *           incremented record with txnIfOwner, release. Run several to see them take turns.
 *   demo    (default) three workers in this process increment the record 3 times each under
 *           the lock (tokens strictly increase); then a stale holder: "slow" holds the lock and
 *           pauses, an operator revokes its lease, "fast" takes the lock and writes, and slow's
 *           late write is refused by the server.
 *
 * Run (from the repository root, with a server on COORD_ENDPOINTS, default 127.0.0.1:2379):
 *   npm run build && npx tsc -p examples
 *   node examples/dist/fenced-lock.js                                         # the demo
 *   node examples/dist/fenced-lock.js --role worker --id a --rounds 5 & node examples/dist/fenced-lock.js --role worker --id b --rounds 5
 */
import { parseArgs } from 'node:util';
import { Client, compare, op } from '@coord/client';
import { Mutex, NotLockedError, Session, type LockInfo } from '@coord/recipes';

// ---- small helpers (each example is standalone, so each has its own) ----------------------

/** COORD_ENDPOINTS: comma-separated host:port list. */
const endpoints = (process.env.COORD_ENDPOINTS ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);

function log(who: string, message: string): void {
  console.log(`[${who}] ${message}`);
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

// ---- options -------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'demo' },
    /** The lock's name: contenders for the same resource use the same one. */
    name: { type: 'string', default: 'examples/fenced-lock' },
    id: { type: 'string', default: `worker-${process.pid}` },
    rounds: { type: 'string', default: '3' },
    'work-ms': { type: 'string', default: '50' },
    /** Session TTL in seconds. */
    ttl: { type: 'string', default: '5' },
  },
});
const NAME = args.name!;
/** The shared record the lock protects. Not under `NAME/`: that prefix is the lock's queue. */
const RECORD_KEY = `${NAME}.record`;
const TTL_SECONDS = Number(args.ttl);

/** The shared record: a counter, and who wrote it last with which token. */
interface SharedRecord {
  counter: number;
  /** Fencing token of the last writer, as a decimal string (tokens are 64-bit). */
  token: string;
  holder: string;
}

async function readRecord(client: Client): Promise<SharedRecord> {
  const kv = await client.get(RECORD_KEY);
  return kv ? (JSON.parse(kv.valueString()) as SharedRecord) : { counter: 0, token: '0', holder: '' };
}

// ---- the critical section ------------------------------------------------------------------

/**
 * Runs while holding the lock: read the record, work, write it back incremented, guarded by the
 * lock. Returns the token written, or undefined if the write was refused.
 */
async function incrementUnderLock(mutex: Mutex, lock: LockInfo, who: string, workMs: number): Promise<bigint | undefined> {
  const client = mutex.session.client;
  const record = await readRecord(client);
  // What a resource outside etcd would check: never accept a token older than the last one.
  if (BigInt(record.token) >= lock.fencingToken) {
    log(who, `refusing to write: record was written with token ${record.token}, ours is ${lock.fencingToken}`);
    return undefined;
  }
  await sleep(workMs, lock.signal); // the work; cut short if the lock is lost
  if (lock.signal.aborted) {
    log(who, `lock lost while working (${errText(lock.signal.reason)}); not writing`);
    return undefined;
  }
  const next: SharedRecord = { counter: record.counter + 1, token: lock.fencingToken.toString(), holder: who };
  // The server applies the put only if our lock key still exists with our create revision.
  const res = await mutex.txnIfOwner([op.put(RECORD_KEY, JSON.stringify(next))]);
  if (!res.succeeded) {
    log(who, `write refused by the server: token ${lock.fencingToken} no longer holds the lock`);
    return undefined;
  }
  log(who, `token ${lock.fencingToken}: counter ${record.counter} -> ${next.counter}`);
  return lock.fencingToken;
}

/** One contender: its own client, session and Mutex, `rounds` turns in the critical section. */
async function runWorker(id: string, rounds: number, workMs: number, written: bigint[]): Promise<void> {
  const client = new Client({ endpoints });
  try {
    const session = await Session.create(client, { ttl: TTL_SECONDS });
    const mutex = new Mutex(session, NAME);
    try {
      for (let round = 1; round <= rounds; round++) {
        // withLock: lock (waiting in line), run, unlock also if fn throws; rejects with
        // LockLostError if the lock was lost while fn ran.
        const token = await mutex.withLock((lock) => incrementUnderLock(mutex, lock, id, workMs), { timeoutMs: 30_000 });
        if (token !== undefined) written.push(token);
      }
    } finally {
      await session.close();
    }
  } finally {
    client.close();
  }
}

// ---- the demo ------------------------------------------------------------------------------

async function runDemo(): Promise<void> {
  const operator = new Client({ endpoints });
  const slowClient = new Client({ endpoints });
  const fastClient = new Client({ endpoints });
  try {
    // Start from an empty record and no queued contenders (leftovers of an interrupted run).
    await operator.delete(`${NAME}/`, { prefix: true });
    await operator.delete(RECORD_KEY);

    // Part 1: three workers, three increments each, taking turns.
    log('demo', 'part 1: three workers increment the shared record under the lock');
    const written: bigint[] = [];
    await Promise.all(['worker-1', 'worker-2', 'worker-3'].map((id) => runWorker(id, 3, 50, written)));
    const after1 = await readRecord(operator);
    const increasing = written.every((t, i) => i === 0 || t > written[i - 1]);
    log('demo', `counter = ${after1.counter} after ${written.length} guarded writes; tokens in write order: ${written.join(' < ')}`);
    if (after1.counter !== 9 || written.length !== 9 || !increasing) throw new Error('part 1: lost update or tokens not increasing');

    // Part 2: a stale holder.
    log('demo', 'part 2: a holder pauses past the loss of its lock');
    const slowSession = await Session.create(slowClient, { ttl: TTL_SECONDS });
    const slow = new Mutex(slowSession, NAME);
    const slowLock = await slow.lock();
    log('slow', `holds the lock with token ${slowLock.fencingToken}; pausing (think of a long GC pause)`);

    const fastSession = await Session.create(fastClient, { ttl: TTL_SECONDS });
    const fast = new Mutex(fastSession, NAME);
    const fastTurn = fast.withLock((lock) => {
      log('fast', `holds the lock with token ${lock.fencingToken}`);
      return incrementUnderLock(fast, lock, 'fast', 50);
    });
    // Wait until fast is queued behind slow (two keys under NAME/).
    for (let tries = 0; ; tries++) {
      const { count } = await operator.getRange({ key: `${NAME}/`, prefix: true, countOnly: true });
      if (count >= 2n) break;
      if (tries > 200) throw new Error('fast did not queue for the lock');
      await sleep(25);
    }

    // While slow is paused its lease ends: here an operator revokes it, which is what the
    // server does by itself when a paused process misses its keep-alives for a whole TTL.
    log('operator', `revoking slow's lease ${slowSession.leaseHex}: the lock passes to the next in line`);
    await operator.leaseRevoke(slowSession.leaseId);
    const fastToken = await fastTurn;
    if (fastToken === undefined || fastToken <= slowLock.fencingToken) throw new Error('part 2: fast did not write with a newer token');

    // slow wakes up and, not having looked at its lock's signal, writes with its old token:
    // exactly the transaction a holder that missed the loss would send.
    const stale: SharedRecord = { counter: 0, token: slowLock.fencingToken.toString(), holder: 'slow' };
    const res = await slowClient.txn({
      compare: [compare.create(slowLock.key, '=', slowLock.fencingToken)],
      success: [op.put(RECORD_KEY, JSON.stringify(stale))],
    });
    log('slow', `woke up; write with token ${slowLock.fencingToken}: ${res.succeeded ? 'ACCEPTED (wrong!)' : 'refused by the server'}`);
    // The Mutex itself learns of the loss within moments (it watches its key, and its session
    // sees the lease gone): its signal aborts, `lost` fires, and txnIfOwner refuses locally.
    await Promise.race([new Promise((resolve) => slowLock.signal.addEventListener('abort', resolve, { once: true })), sleep(5000)]);
    try {
      await slow.txnIfOwner([op.put(RECORD_KEY, JSON.stringify(stale))]);
      log('slow', 'txnIfOwner: sent (unexpected)');
    } catch (err) {
      if (!(err instanceof NotLockedError)) throw err;
      log('slow', `txnIfOwner refuses before sending: ${err.message} (lost: ${slow.lostReason?.reason})`);
    }
    await slowSession.close().catch(() => undefined);
    await fastSession.close();

    const after2 = await readRecord(operator);
    log('demo', `record: counter ${after2.counter}, last written by ${after2.holder} with token ${after2.token}`);
    if (res.succeeded || after2.counter !== 10 || after2.holder !== 'fast') throw new Error('part 2: the stale write got through');
    log('demo', 'done: no lost update, tokens only grew, the stale write was refused');
  } finally {
    operator.close();
    slowClient.close();
    fastClient.close();
  }
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  switch (args.role) {
    case 'worker': {
      const written: bigint[] = [];
      await runWorker(args.id!, Number(args.rounds), Number(args['work-ms']), written);
      log(args.id!, `wrote ${written.length} time(s) with tokens ${written.join(', ')}`);
      return;
    }
    case 'demo':
      return runDemo();
    default:
      throw new Error(`--role must be worker or demo, got ${args.role}`);
  }
}

main().catch((err) => {
  console.error(`fenced-lock: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
