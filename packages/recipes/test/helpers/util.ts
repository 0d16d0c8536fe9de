/** Small test utilities: polling with a limit, and instrumented clients. */
import { Client, toBuffer, type GetRangeOptions, type WatchOptions } from '@coord/client';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `cond` until it holds; fail with `what` after `timeoutMs` (a limit, not a speed claim). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Monotonic nanoseconds, the same clock in every process of the machine (CLOCK_MONOTONIC). */
export const now = (): bigint => process.hrtime.bigint();

export interface ClientStats {
  /** Keys of every watch the client created, in order. */
  readonly watches: string[];
  /** Range reads (getRange/get) the client sent. */
  ranges: number;
}

/** A client that counts the watches it creates and the range reads it sends. */
export function instrumentedClient(endpoint: string): { client: Client; stats: ClientStats } {
  const client = new Client({ endpoints: [endpoint] });
  const stats: ClientStats = { watches: [], ranges: 0 };
  const watch = client.watch.bind(client);
  client.watch = (o: WatchOptions) => {
    stats.watches.push(toBuffer(o.key).toString());
    return watch(o);
  };
  const getRange = client.getRange.bind(client);
  client.getRange = (o: GetRangeOptions) => {
    stats.ranges++;
    return getRange(o);
  };
  return { client, stats };
}

/** Settle-state of a promise without awaiting it. */
export function track<T>(p: Promise<T>): { readonly settled: boolean; readonly value: T | undefined; readonly error: unknown; promise: Promise<T> } {
  const s = { settled: false, value: undefined as T | undefined, error: undefined as unknown, promise: p };
  p.then(
    (v) => {
      s.settled = true;
      s.value = v;
    },
    (e) => {
      s.settled = true;
      s.error = e;
    },
  );
  return s;
}
