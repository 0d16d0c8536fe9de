/**
 * Concurrent writers against a cluster that fail over between endpoints, recording
 * exactly which writes were acknowledged; and the check that every acknowledged write is
 * on a member.
 *
 * Goal: the client side of a failover test. While members are killed, paused and
 * restarted, keep writing as a real client with failover would, and afterwards know (a)
 * which puts the cluster acknowledged, with the revision it acknowledged them at, (b) when
 * each was sent and acknowledged, so the unavailability gap around a fault can be read off.
 *
 * Method: `writers` loops (default 10), each putting unique keys `PREFIX wNN/SEQ` (a key
 * is never written twice, so a put that timed out and was applied anyway cannot be
 * confused with one that was acknowledged). Each put has a deadline (default 1 s) and no
 * gRPC-level retry. A writer sends its puts round-robin over the current endpoint list
 * (as clientv3's balancer does; `endpoints()` is asked every time, so members that joined
 * or left are followed), so a failed put is retried, as a fresh key, on the next endpoint,
 * and a member that comes back gets its share of the puts again. One gRPC channel per endpoint is shared by all writers.
 * checkAcked() reads the prefix from one member with a serializable Range at a fixed
 * revision (so it reads that member's own store, not the leader's), waiting until the
 * member has applied that revision, and reports acknowledged keys that are missing or
 * differ (value, create/mod revision, version), and keys present that no writer attempted
 * with that value.
 */
import { KeyValue, KvClient } from './kv-client';
import { sleep } from './proc';

export interface Ack {
  key: string;
  value: string;
  revision: bigint;
  /** Date.now() when the put was sent, and when its answer came. */
  sentMs: number;
  ackMs: number;
  endpoint: string;
}

export interface WriteLoadOptions {
  prefix: string;
  /** Concurrent writers (default 10). */
  writers?: number;
  /** Per-put deadline (default 1000 ms). */
  timeoutMs?: number;
  /** Pause after a failed put before the next attempt (default 20 ms). */
  backoffMs?: number;
}

const FAILURES_KEPT_MAX = 200;

export class WriteLoad {
  readonly acks: Ack[] = [];
  /** Every key ever sent, with its value. */
  readonly attempted = new Map<string, string>();
  failures = 0;
  /** The most recent failures (endpoint: message), for failure messages. */
  readonly recentFailures: string[] = [];
  private readonly clients = new Map<string, KvClient>();
  private running: Promise<void>[] = [];
  private stopping = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly endpoints: () => string[],
    private readonly opts: WriteLoadOptions,
  ) {}

  private client(endpoint: string): KvClient {
    let c = this.clients.get(endpoint);
    if (!c) {
      c = new KvClient(endpoint);
      this.clients.set(endpoint, c);
    }
    return c;
  }

  start(): this {
    if (this.running.length > 0) throw new Error('WriteLoad already started');
    const n = this.opts.writers ?? 10;
    for (let w = 0; w < n; w++) this.running.push(this.writer(w));
    return this;
  }

  private async writer(w: number): Promise<void> {
    let pick = w;
    for (let seq = 0; !this.stopping; seq++) {
      const eps = this.endpoints();
      if (eps.length === 0) {
        await sleep(this.opts.backoffMs ?? 20);
        continue;
      }
      const endpoint = eps[pick % eps.length];
      const key = `${this.opts.prefix}w${String(w).padStart(2, '0')}/${seq}`;
      const value = `${key}@${endpoint}`;
      this.attempted.set(key, value);
      const sentMs = Date.now();
      try {
        const res = await this.client(endpoint).put(key, value, this.opts.timeoutMs ?? 1000);
        this.acks.push({ key, value, revision: BigInt(res.header.revision), sentMs, ackMs: Date.now(), endpoint });
        for (const l of [...this.listeners]) l();
      } catch (err) {
        this.failures += 1;
        this.recentFailures.push(`${endpoint}: ${(err as Error).message}`);
        if (this.recentFailures.length > FAILURES_KEPT_MAX) this.recentFailures.shift();
        if (!this.stopping) await sleep(this.opts.backoffMs ?? 20);
      }
      pick += 1;
    }
  }

  /** Stops the writers (puts in flight finish or time out) and closes the channels. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** Acknowledged puts that were sent at or after `t`. */
  sentSince(t: number): Ack[] {
    return this.acks.filter((a) => a.sentMs >= t);
  }

  /**
   * Resolves with the first `count` acknowledgements of puts sent at or after `t` (default:
   * any time), once there are that many; rejects after `timeoutMs`.
   */
  waitAcks(count: number, opts: { sentSince?: number; timeoutMs?: number } = {}): Promise<Ack[]> {
    const since = opts.sentSince ?? 0;
    const timeoutMs = opts.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const got = this.sentSince(since);
        if (got.length >= count) {
          finish();
          resolve(got.slice(0, count));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${count} acknowledged puts sent since ${new Date(since).toISOString()} ` +
              `(have ${this.sentSince(since).length}; ${this.failures} failures, recent: ${this.recentFailures.slice(-5).join(' | ')})`,
          ),
        );
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** The highest acknowledged revision (0 if none). */
  maxRevision(): bigint {
    return this.acks.reduce((m, a) => (a.revision > m ? a.revision : m), 0n);
  }
}

export interface AckCheck {
  endpoint: string;
  revision: bigint;
  present: number;
  lost: string[];
  wrong: string[];
  phantom: string[];
}

/**
 * Reads `prefix` from the member at `endpoint` at `revision` (serializable: the member's
 * own store), waiting up to `timeoutMs` for it to have applied that revision, and checks
 * it against what `loads` attempted and acknowledged.
 */
export async function checkAcked(endpoint: string, prefix: string, revision: bigint, loads: WriteLoad[], timeoutMs = 20_000): Promise<AckCheck> {
  const client = new KvClient(endpoint);
  try {
    const deadline = Date.now() + timeoutMs;
    let kvs: KeyValue[] | undefined;
    let lastErr = '';
    while (!kvs) {
      try {
        const r = await client.range(prefix, { prefix: true, revision, serializable: true }, 5000);
        if (r.kvs.length !== Number(r.count)) throw new Error(`range returned ${r.kvs.length} of ${r.count} keys`);
        kvs = r.kvs;
      } catch (err) {
        lastErr = (err as Error).message;
        if (Date.now() > deadline) throw new Error(`${endpoint} did not answer a serializable range at revision ${revision} within ${timeoutMs} ms: ${lastErr}`);
        await sleep(50);
      }
    }
    const present = new Map(kvs.map((kv) => [kv.key.toString(), kv]));
    const attempted = new Map<string, string>();
    for (const l of loads) for (const [k, v] of l.attempted) attempted.set(k, v);
    const lost: string[] = [];
    const wrong: string[] = [];
    for (const l of loads) {
      for (const a of l.acks) {
        if (a.revision > revision) continue;
        const kv = present.get(a.key);
        if (!kv) {
          lost.push(`${a.key} (acknowledged at revision ${a.revision} by ${a.endpoint})`);
          continue;
        }
        const got = { value: kv.value.toString(), create: kv.create_revision, mod: kv.mod_revision, version: kv.version };
        const want = { value: a.value, create: a.revision.toString(), mod: a.revision.toString(), version: '1' };
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${a.key}: got ${JSON.stringify(got)}, acknowledged ${JSON.stringify(want)}`);
      }
    }
    const phantom = [...present.entries()].filter(([k, kv]) => attempted.get(k) !== kv.value.toString()).map(([k, kv]) => `${k}=${kv.value.toString()}`);
    return { endpoint, revision, present: present.size, lost, wrong, phantom };
  } finally {
    client.close();
  }
}
