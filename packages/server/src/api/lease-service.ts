/**
 * etcdserverpb.Lease. Grant and revoke go through the log; keepalives and TTL queries are
 * answered by the member in charge of expiry, from its clock (etcd does the same: renewals
 * are not replicated).
 */
import type * as grpc from '@grpc/grpc-js';
import type { Member } from '../member/member';
import { int64 } from './pb';
import { OversizedRequest, toServiceError, unary } from './grpc-util';

/** Keepalives queued for answer on one stream before the member stops reading it. */
const KEEPALIVES_IN_FLIGHT_MAX = 10_000;

export function leaseService(m: Member): grpc.UntypedServiceImplementation {
  return {
    LeaseGrant: unary(async (r: { TTL?: string; ID?: string }) => {
      const resp = await m.leaseGrant(int64(r.TTL), int64(r.ID));
      m.fillHeader(resp.header);
      return resp;
    }),
    LeaseRevoke: unary(async (r: { ID?: string }) => {
      const resp = await m.leaseRevoke(int64(r.ID));
      m.fillHeader(resp.header);
      return resp;
    }),
    LeaseTimeToLive: unary(async (r: { ID?: string; keys?: boolean }) => {
      const id = int64(r.ID);
      const t = await m.leaseTimeToLive(id);
      return { header: m.header(), ID: String(id), TTL: String(t.ttl), grantedTTL: String(t.granted), keys: r.keys ? t.keys : [] };
    }),
    LeaseLeases: unary(() => ({ header: m.header(), leases: m.leaseIds().map((id) => ({ ID: String(id) })) })),
    LeaseKeepAlive(call: grpc.ServerDuplexStream<{ ID?: string }, unknown>) {
      let inFlight = 0;
      // Answers leave in request order. On the leader a renew is synchronous; on a follower
      // it is forwarded to the leader, and later requests queue behind it (etcd's stream
      // handles one keepalive at a time the same way).
      let queue: Promise<void> | undefined;
      let failed = false;
      const answer = (id: bigint, ttl: bigint): void => {
        inFlight++;
        if (!call.write({ header: m.header(), ID: String(id), TTL: String(ttl) }) && inFlight > KEEPALIVES_IN_FLIGHT_MAX) call.pause();
      };
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        call.destroy(toServiceError(err));
      };
      call.on('data', (r: { ID?: string }) => {
        if (r instanceof OversizedRequest) {
          call.destroy(r.toServiceError());
          return;
        }
        if (failed) return;
        const id = int64(r.ID);
        try {
          if (queue === undefined) {
            const ttl = m.leaseRenew(id);
            if (typeof ttl === 'bigint') return answer(id, ttl);
            queue = ttl.then((t) => answer(id, t));
          } else queue = queue.then(() => m.leaseRenew(id)).then((t) => answer(id, t));
          const mine: Promise<void> = queue.then(
            () => {
              if (queue === mine) queue = undefined;
            },
            (err: unknown) => fail(err),
          );
          queue = mine;
        } catch (err) {
          fail(err);
        }
      });
      call.on('drain', () => {
        inFlight = 0;
        call.resume();
      });
      call.on('end', () => call.end());
    },
  };
}
