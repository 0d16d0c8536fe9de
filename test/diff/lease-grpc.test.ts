/**
 * Differential test: the Lease gRPC service itself, coord against etcd 3.4.
 *
 * Goal: what etcdctl cannot send is answered the same: explicit lease IDs (positive,
 * negative, the largest int64, a duplicate, 0 = "choose one"), TTLs at and beyond the
 * limits, LeaseTimeToLive and LeaseRevoke of ID 0 and unknown IDs, LeaseLeases, and a
 * LeaseKeepAlive stream carrying known, unknown, zero and revoked IDs (each answered with
 * TTL 0 when the lease does not exist, the stream staying open), plus keys moving between
 * explicitly numbered leases. Errors must carry etcd's gRPC code and text.
 *
 * Method: the same calls on both sides (harness/etcd-grpc.ts), concurrently; answers are
 * normalized (header reduced to its revision relative to the test's start, server-chosen
 * lease IDs as placeholders, remaining TTLs within 2 s of the granted TTL as a range,
 * lease lists and attached keys sorted, errors as "code details") and must be equal.
 */
import type * as grpc from '@grpc/grpc-js';
import { EtcdGrpc } from '../harness/etcd-grpc';
import type { ResponseHeader } from '../harness/kv-client';
import { sleep } from '../harness/proc';
import { usePair } from '../harness/target';

const pair = usePair();

type LStep =
  | { grant: bigint; id?: bigint }
  | { revoke: bigint | string }
  | { ttl: bigint | string; keys?: boolean }
  | { leases: true }
  | { put: string; lease: bigint | string }
  | { keepAlive: (bigint | string)[] };

class LSide {
  private base = 0n;
  private readonly chosen = new Map<string, string>();
  constructor(private readonly conn: EtcdGrpc) {}

  async start(): Promise<void> {
    this.base = BigInt((await this.conn.range('/__never__')).header.revision);
  }

  /** `{name}` refers to a lease the server chose (granted with id 0 under that name). */
  private id(x: bigint | string): bigint {
    if (typeof x === 'bigint') return x;
    const v = this.chosen.get(x);
    if (v === undefined) throw new Error(`no lease named ${x}`);
    return BigInt(v);
  }

  private idText(s: string): string {
    for (const [name, v] of this.chosen) if (v === s) return `{${name}}`;
    return s;
  }

  private header(h: ResponseHeader): string {
    const d = BigInt(h.revision) - this.base;
    return `R+${d}`;
  }

  async run(step: LStep, name?: string): Promise<unknown> {
    try {
      if ('grant' in step) {
        const r = await this.conn.leaseGrant(step.grant, step.id ?? 0n);
        if (step.id === undefined || step.id === 0n) this.chosen.set(name!, r.ID);
        return { revision: this.header(r.header), ID: this.idText(r.ID), TTL: r.TTL, error: r.error };
      }
      if ('revoke' in step) return { revision: this.header((await this.conn.leaseRevoke(this.id(step.revoke))).header) };
      if ('ttl' in step) {
        const r = await this.conn.leaseTimeToLive(this.id(step.ttl), step.keys);
        const ttl = Number(r.TTL);
        const granted = Number(r.grantedTTL);
        return {
          revision: this.header(r.header),
          ID: this.idText(r.ID),
          TTL: ttl > 0 && ttl <= granted && ttl >= granted - 2 ? `${granted}-2..${granted}` : r.TTL,
          grantedTTL: r.grantedTTL,
          keys: r.keys.map((k) => k.toString()).sort(), // etcd: Go map order
        };
      }
      if ('leases' in step) {
        const r = await this.conn.leaseLeases();
        return { revision: this.header(r.header), leases: r.leases.map((l) => this.idText(l.ID)).sort() };
      }
      if ('put' in step) return { revision: this.header((await this.conn.put(step.put, 'v', { lease: this.id(step.lease) })).header) };
      // keepAlive: one stream, one request per ID, in order; then the stream must still be open.
      const s = this.conn.keepAliveStream();
      for (const x of step.keepAlive) s.send({ ID: this.id(x).toString() });
      await s.waitFor((st) => st.responses.length >= step.keepAlive.length, 5000);
      await sleep(200);
      const out = {
        answers: s.responses.map((r) => ({ revision: this.header(r.header), ID: this.idText(r.ID), TTL: r.TTL })),
        open: !s.closed,
        ...(s.error ? { error: `${s.error.code} ${s.error.details}` } : {}),
      };
      s.close();
      return out;
    } catch (err) {
      const e = err as grpc.ServiceError;
      return { error: `${e.code} ${e.details}` };
    }
  }
}

async function expectSameLeases(steps: (LStep & { as?: string })[]): Promise<{ reference: unknown[]; target: unknown[] }> {
  const refConn = new EtcdGrpc(pair.reference.endpoint);
  const tgtConn = new EtcdGrpc(pair.target.endpoint);
  try {
    const ref = new LSide(refConn);
    const tgt = new LSide(tgtConn);
    await Promise.all([ref.start(), tgt.start()]);
    const out = { reference: [] as unknown[], target: [] as unknown[] };
    for (const [i, { as, ...step }] of steps.entries()) {
      const what = `${i}: ${JSON.stringify(step, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}${as ? ` as {${as}}` : ''}`;
      const [r, t] = await Promise.all([ref.run(step, as), tgt.run(step, as)]);
      out.reference.push({ step: what, result: r });
      out.target.push({ step: what, result: t });
    }
    if (process.env.DIFF_DUMP) console.log(JSON.stringify(out.reference, null, 1));
    expect(out.target).toEqual(out.reference);
    return out;
  } finally {
    refConn.close();
    tgtConn.close();
  }
}

describe('lease service (gRPC) against etcd', () => {
  test('explicit and chosen IDs, TTL limits, unknown and zero IDs, lease list (runs first)', async () => {
    const res = await expectSameLeases([
      { leases: true },
      { grant: 60n, id: 1000n },
      { grant: 60n, id: 1000n }, // duplicate
      { grant: 60n, id: -5n }, // negative IDs are IDs too
      { grant: 60n, id: 9223372036854775807n },
      { grant: 60n, as: 'A' }, // the server chooses
      { grant: 0n, id: 1001n }, // raised to the minimum TTL
      { grant: -7n, id: 1002n },
      { grant: 9000000000n, id: 1003n },
      { grant: 9000000001n, id: 1004n }, // too large
      { leases: true },
      { ttl: 1000n, keys: true },
      { ttl: -5n },
      { ttl: 'A' },
      { ttl: 4242n },
      { ttl: 0n },
      { revoke: 0n },
      { revoke: 4242n },
      { revoke: -5n },
      { revoke: -5n },
      { revoke: 1004n },
      { leases: true },
    ]);
    expect(JSON.stringify(res.reference)).toContain('lease already exists');
  });

  test('keys move between explicitly numbered leases; revoke deletes the ones still attached', async () => {
    await expectSameLeases([
      { grant: 60n, id: 2001n },
      { grant: 60n, id: 2002n },
      { put: '/dgl/a', lease: 2001n },
      { put: '/dgl/b', lease: 2001n },
      { put: '/dgl/c', lease: 2002n },
      { put: '/dgl/a', lease: 2002n },
      { put: '/dgl/x', lease: 2999n }, // unknown lease
      { ttl: 2001n, keys: true },
      { ttl: 2002n, keys: true },
      { revoke: 2002n },
      { ttl: 2001n, keys: true },
      { ttl: 2002n, keys: true },
      { put: '/dgl/b', lease: 2002n },
      { revoke: 2001n },
    ]);
  });

  test('keep-alive stream: known, unknown, zero and revoked IDs each get an answer; the stream stays open', async () => {
    await expectSameLeases([
      { grant: 60n, id: 3001n },
      { grant: 30n, as: 'B' },
      { keepAlive: [3001n, 'B', 3999n, 0n, 3001n] },
      { revoke: 3001n },
      { keepAlive: [3001n, 'B'] },
      { ttl: 'B' },
      { revoke: 'B' },
    ]);
  });
});
