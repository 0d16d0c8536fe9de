/**
 * etcdserverpb.Watch: one bidirectional stream carries many watchers. Creates are answered
 * in order with `created: true`; events come from the watch hub; cancels are answered with
 * `canceled: true`; progress requests with the current revision once every watcher of the
 * stream is synced (etcd's RequestProgressAll): at once if they are, else as soon as the
 * last one catches up, so the progress revision never runs ahead of the events sent.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Member } from '../member/member';
import { keyRange } from '../mvcc/key-range';
import type { Watcher, WatchResponseBody, WatchSink } from '../watch/hub';
import { encodedEvent, encodeWatchResponse, encodeWatchResponses, HeaderEncoder } from '../watch/wire';
import { int64 } from './pb';
import { OversizedRequest } from './grpc-util';

/** Bound on watchers per stream: a client must not make the member track without limit. */
export const WATCHERS_PER_STREAM_MAX = 100_000;

/** Event responses gathered for one stream before they are written (see flushBatch). */
const BATCH_BYTES_MAX = 64 * 1024;

/** The h2 transport writes a run of pre-encoded messages at once; grpc-js one by one. */
function writeEncoded(call: grpc.ServerDuplexStream<unknown, unknown>, messages: readonly Buffer[]): boolean {
  const h2 = call as unknown as { writeEncoded?(messages: readonly Buffer[]): boolean };
  if (h2.writeEncoded) return h2.writeEncoded(messages);
  let ok = true;
  for (const msg of messages) ok = call.write(msg) && ok;
  return ok;
}

interface PbWatchCreate {
  key?: Buffer;
  range_end?: Buffer;
  start_revision?: string;
  progress_notify?: boolean;
  filters?: number[];
  prev_kv?: boolean;
  watch_id?: string;
  fragment?: boolean;
}
interface PbWatchRequest {
  request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  create_request?: PbWatchCreate;
  cancel_request?: { watch_id?: string };
  progress_request?: object;
}

const FILTER_NOPUT = 0;
const FILTER_NODELETE = 1;

export function watchService(m: Member): grpc.UntypedServiceImplementation {
  // Event responses go out pre-encoded (watch/wire.ts): one put fans out to every watcher.
  const headers = new HeaderEncoder(m.clusterId, m.memberId);
  return {
    Watch(call: grpc.ServerDuplexStream<PbWatchRequest, unknown>) {
      const watchers = new Map<bigint, Watcher>();
      let nextId = 0n;
      let blocked = false;
      let closed = false;
      /** A progress request waits for unsynced watchers (see maybeSendProgress). */
      let progressPending = false;
      /**
       * etcd answers a progress request only when every watcher of the stream is synced, and
       * otherwise defers it until they are (etcd PR #15237 "Send requested progress
       * notifications through watchStream", fixing issue #15220, backported to 3.4; PR #17557
       * also fires it when a watcher syncs without any event). Dropping the request instead
       * left a client that waits for the notification (a consistent-read cache) waiting forever.
       */
      const maybeSendProgress = (): void => {
        if (!progressPending || closed || !m.watchHub.allSynced(watchers.values())) return;
        progressPending = false;
        write({ header: m.header(), watch_id: '-1' });
      };
      /**
       * Event responses of one apply are gathered per stream and written as one batch at the
       * end of the tick (or once BATCH_BYTES_MAX have gathered, so `blocked` lags the stream's
       * queue by at most that much). Every other response first flushes the batch: a stream's
       * responses keep their order.
       */
      const batch: Buffer[] = [];
      let batchBytes = 0;
      const flushBatch = (): void => {
        if (batch.length === 0) return;
        const messages = batch.splice(0);
        batchBytes = 0;
        if (closed) return;
        if (!writeEncoded(call, messages)) blocked = true;
      };
      const write = (response: object): void => {
        flushBatch();
        if (!call.write(response)) blocked = true;
      };
      const sink: WatchSink = {
        get blocked() {
          return blocked;
        },
        send(body: WatchResponseBody): boolean {
          if (closed) return false;
          const withPrev = body.prevKv === true;
          const bytes = encodeWatchResponse(headers.field(body.revision, m.raftTerm), {
            watchId: body.watchId,
            canceled: body.canceled,
            compactRevision: body.compactRevision,
            fragment: body.fragment,
            events: body.events?.map((ev) => encodedEvent(ev, withPrev)),
          });
          if (batch.length === 0) process.nextTick(flushBatch);
          batch.push(bytes);
          batchBytes += bytes.length;
          if (batchBytes >= BATCH_BYTES_MAX) flushBatch();
          if (body.canceled) {
            const w = watchers.get(body.watchId);
            if (w) watchers.delete(w.id);
            maybeSendProgress();
          }
          return !blocked;
        },
        sendEach(ws: readonly Watcher[], events, prevKv, revision): void {
          if (closed) return;
          const encoded = events.map((ev) => encodedEvent(ev, prevKv));
          if (batch.length === 0) process.nextTick(flushBatch);
          batchBytes += encodeWatchResponses(headers.field(revision, m.raftTerm), ws.map((w) => w.id), encoded, batch);
          if (batchBytes >= BATCH_BYTES_MAX) flushBatch();
        },
        onSynced: () => maybeSendProgress(),
      };
      call.on('drain', () => {
        blocked = false;
        m.watchHub.resume(watchers.values());
      });
      const close = (): void => {
        if (closed) return;
        closed = true;
        for (const w of watchers.values()) m.watchHub.remove(w);
        watchers.clear();
      };
      call.on('data', (req: PbWatchRequest) => {
        if (closed) return;
        if (req instanceof OversizedRequest) {
          call.destroy(req.toServiceError());
          return;
        }
        if (req.create_request) {
          const c = req.create_request;
          const rev = m.rev;
          let id = int64(c.watch_id);
          const range = keyRange(c.key, c.range_end);
          // etcd's mvcc watchStream.Watch refuses an empty range first, then a duplicate
          // explicit ID, and only a request that passes consumes an auto-assigned ID (a refused
          // create used to take one, so the next watcher got ID 4 where etcd gives 2).
          let reason: string | undefined;
          if (range.end !== undefined && range.end !== '' && range.start >= range.end) reason = 'mvcc: watcher range is empty';
          else if (id !== 0n && watchers.has(id)) reason = 'mvcc: duplicate watch ID provided on the WatchStream';
          else if (watchers.size >= WATCHERS_PER_STREAM_MAX) reason = `coord: too many watchers on one stream (max ${WATCHERS_PER_STREAM_MAX})`;
          if (reason) {
            write({ header: m.header(rev), watch_id: '-1', created: true, canceled: true, cancel_reason: reason });
            return;
          }
          if (id === 0n) {
            while (watchers.has(nextId)) nextId++;
            id = nextId++;
          }
          const filters = c.filters ?? [];
          // The "created" answer goes first; events (even replayed ones) follow it.
          write({ header: m.header(rev), watch_id: String(id), created: true });
          const w = m.watchHub.add(id, sink, {
            range,
            startRev: int64(c.start_revision),
            noPut: filters.includes(FILTER_NOPUT),
            noDelete: filters.includes(FILTER_NODELETE),
            prevKv: c.prev_kv === true,
            progressNotify: c.progress_notify === true,
            fragment: c.fragment === true,
          });
          watchers.set(id, w);
        } else if (req.cancel_request) {
          const id = int64(req.cancel_request.watch_id);
          const w = watchers.get(id);
          if (!w) return;
          m.watchHub.remove(w);
          watchers.delete(id);
          write({ header: m.header(), watch_id: String(id), canceled: true });
          maybeSendProgress();
        } else if (req.progress_request) {
          progressPending = true;
          maybeSendProgress();
        }
      });
      call.on('end', () => {
        flushBatch();
        close();
        call.end();
      });
      call.on('cancelled', close);
      call.on('error', close);
      call.on('close', close);
    },
  };
}
