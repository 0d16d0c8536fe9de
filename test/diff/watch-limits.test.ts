/**
 * Differential test: watch fragmentation follows --max-request-bytes, coord against etcd 3.4.
 *
 * Goal: etcd fragments a watch response (for a watcher that asked for fragments) once its
 * encoded size reaches --max-request-bytes + 512 KiB (v3rpc NewWatchServer: maxRequestBytes
 * = Cfg.MaxRequestBytes + grpcOverheadBytes). With --max-request-bytes 1 MiB that is
 * 1.5 MiB: four events of 450 KiB come as fragments [3 events] + [1 event].
 *
 * Method: one reference etcd and one target, both started with --max-request-bytes
 * 1048576; the same puts and the same fragmenting watch (raw gRPC, harness/etcd-grpc.ts)
 * on each; the shape of the responses (events per response, fragment flags) must match.
 */
import { EtcdGrpc } from '../harness/etcd-grpc';
import type { Member } from '../harness/proc';
import { sleep } from '../harness/proc';
import { usePair } from '../harness/target';

const pair = usePair({ extraArgs: ['--max-request-bytes', '1048576'] });

async function shape(m: Member): Promise<string[]> {
  const c = new EtcdGrpc(m.endpoint);
  try {
    const p = '/dl/fragment/';
    let first = 0n;
    for (const ch of 'abcd') {
      const r = await c.put(`${p}${ch}`, Buffer.alloc(450 * 1024, ch));
      if (first === 0n) first = BigInt(r.header.revision);
    }
    const s = c.watch();
    s.create({ key: Buffer.from(p), range_end: Buffer.from('/dl/fragment0'), start_revision: first, fragment: true });
    await s.waitFor((x) => x.responses.filter((r) => r.events.length > 0 && !r.fragment).length >= 1, 5000);
    await sleep(200);
    s.close();
    return s.responses.map((r) => (r.created ? 'created' : `${r.events.length} events${r.fragment ? ' (fragment)' : ''}`));
  } finally {
    c.close();
  }
}

describe('watch fragments at --max-request-bytes + 512 KiB, as etcd', () => {
  // The fix is in packages/server/src/member/member.ts, where the hub is built:
  //   new WatchHub(() => this.store, { ...DEFAULT_WATCH_LIMITS, fragmentBytesMax: config.maxRequestBytes + 512 * 1024 })
  test('four 450 KiB events with --max-request-bytes 1 MiB', async () => {
    const [reference, target] = await Promise.all([shape(pair.reference), shape(pair.target)]);
    expect(reference).toEqual(['created', '3 events (fragment)', '1 events']);
    expect(target).toEqual(reference);
  });
});
