/**
 * One watch as etcdctl 3.4 runs it (`printWatchCh` over a clientv3 watch channel), on top of
 * @coord/client's Watcher (one shared stream, resumed after disconnects from the next
 * revision, as clientv3 does):
 *
 * - every response is printed (`-w` printer); a progress notification also prints
 *   `progress notify: <revision>` first; then CMD runs once per event (see exec.ts), in order,
 *   and a failing CMD ends the process: `command [...] error (...)`, exit status 1.
 * - when the server cancels the watch the channel closes, as clientv3's does:
 *   - start revision compacted: `watch was canceled (etcdserver: mvcc: required revision has
 *     been compacted)` on stderr, and the cancel response is printed (json/fields show the
 *     server's header with revision 0, `CompactRevision`, `Canceled: true`);
 *   - create refused (e.g. `watch b a`: "mvcc: watcher range is empty") or the stream failed
 *     for good (permission denied, ...): `watch was canceled (<reason>)` and clientv3's
 *     made-up response (empty header, `Events: null`, `Canceled: true`);
 *   - any other cancel of a created watch: the channel closes silently.
 *   The caller decides what a closed channel means (etcdctl: exit 5 unless interactive).
 *
 * clientv3 details reproduced: progress answers reach every watcher of the stream; a response
 * carries the events of whole revisions, as the server sent them.
 */
import type { Client, ResponseHeader, WatchResponse, Watcher } from '@coord/client';
import { toCliError } from '../errors';
import { ZERO_HEADER, type WatchLeasePrinter, type WatchView } from '../output/watch-lease';
import { goQuoteSlice, runWatchCommand, watchEventEnv } from './exec';
import type { WatchRequest } from './args';

/** The process must end now with this status; what it had to say is already printed. */
export class WatchExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

export interface WatchIO {
  readonly printer: WatchLeasePrinter;
  /** A line on stdout. */
  readonly stdout: (line: string) => void;
  /** A line on stderr. */
  readonly stderr: (line: string) => void;
  /** Only json and fields print the header of a compaction cancel. */
  readonly needsHeaders: boolean;
}

/** Start a watch as etcdctl's getWatchChan does (`WithRev(rev)`, range end or prefix, prev kv). */
export function startWatch(client: Client, req: WatchRequest): Watcher {
  return client.watch({
    key: req.key,
    rangeEnd: req.rangeEnd,
    prefix: req.prefix || undefined,
    // etcd treats a negative start revision like a very old one: replay everything that is
    // not compacted (our client refuses negatives; revision 1 asks for the same history).
    startRevision: req.rev < 0n ? 1n : req.rev,
    prevKv: req.prevKv || undefined,
  });
}

const toView = (r: WatchResponse): WatchView => ({
  header: r.header,
  events: r.events,
  compactRevision: 0n,
  canceled: false,
  created: false,
});

interface ErrorLike {
  name?: string;
  details?: string;
  compactRevision?: bigint;
}

/**
 * Print the responses of `watcher` until it ends (printWatchCh). Resolves when the channel
 * closes; rejects with WatchExit when a command failed, or with the printer's error.
 */
export async function printWatchCh(client: Client, watcher: Watcher, req: WatchRequest, io: WatchIO): Promise<void> {
  let created = false;
  watcher.ready().then(
    () => (created = true),
    () => undefined,
  );
  let lastHeader: ResponseHeader | undefined;
  try {
    for await (const res of watcher) {
      lastHeader = res.header;
      if (res.progressNotify && res.header.revision !== 0n) io.stdout(`progress notify: ${res.header.revision}`);
      io.printer.watch(toView(res));
      if (req.execArgs.length === 0) continue;
      for (const e of res.events) {
        const failure = await runWatchCommand(req.execArgs, watchEventEnv(res.header.revision, e));
        if (failure !== undefined) {
          io.stderr(`command ${goQuoteSlice(req.execArgs)} error (${failure})`);
          throw new WatchExit(1, failure);
        }
      }
    }
  } catch (err) {
    if (err instanceof WatchExit) throw err;
    const e = err as ErrorLike;
    switch (e?.name) {
      case 'WatchCompactedError': {
        io.stderr('watch was canceled (etcdserver: mvcc: required revision has been compacted)');
        let header = ZERO_HEADER;
        if (io.needsHeaders) header = { ...(lastHeader ?? (await headerOf(client, req))), revision: 0n };
        io.printer.watch({ header, events: [], compactRevision: e.compactRevision ?? 0n, canceled: true, created: false });
        return;
      }
      case 'ClientClosedError':
      case 'AbortError':
        return;
      case 'WatchCanceledError':
        if (created) return; // clientv3 closes the channel without a word
        io.stderr(`watch was canceled (${e.details})`);
        io.printer.watch({ header: ZERO_HEADER, events: null, compactRevision: 0n, canceled: true, created: false });
        return;
      default:
        // The stream failed for good (clientv3's closeErr): its error, clientv3's empty response.
        if (e && typeof e === 'object' && typeof e.details === 'string') {
          io.stderr(`watch was canceled (${toCliError(err).message})`);
          io.printer.watch({ header: ZERO_HEADER, events: null, compactRevision: 0n, canceled: true, created: false });
          return;
        }
        throw err;
    }
  }
}

/**
 * The cluster/member/term of the server's cancel response, which @coord/client does not pass
 * on: the same member answers a cheap serializable count of the watched key.
 */
async function headerOf(client: Client, req: WatchRequest): Promise<ResponseHeader> {
  try {
    const r = await client.getRange({ key: req.key === '' ? '\0' : req.key, countOnly: true, serializable: true });
    return r.header;
  } catch {
    return ZERO_HEADER;
  }
}
