/**
 * `coord bench watch`: event fan-out from one writer to many watchers.
 *
 * Set-up: --conns HTTP/2 connections carry --streams Watch streams (stream j on conn j mod
 * conns, conn c dials endpoint c mod endpoints); --watchers watchers are spread round-robin
 * over the streams (watcher w on stream w mod streams). Watcher w watches key w mod
 * --key-space-size, or with --watch-prefix every watcher watches the whole key prefix. The
 * run starts once the server has answered every create with `created`.
 *
 * Load: a separate writer connection puts at --put-rate puts/s (open loop: puts are sent
 * on schedule whether or not earlier ones are answered, at most 1,000 unanswered), until
 * --total-puts or --duration. Put i writes key i mod key-space-size; its value (--val-size
 * bytes, at least 8) carries a run id and i, so every event names the put it came from.
 *
 * Measured: for every delivery (one event reaching one watcher), the time from the put's
 * send to the arrival of the socket chunk carrying the event (etcd's `benchmark
 * watch-latency` also counts from the put's send; the writer's own put latency is
 * reported beside it, so the commit's share is visible). Percentiles over all deliveries
 * (exact up to 2M samples, then a uniform reservoir), deliveries/s over the span from the
 * first put to the last delivery, and the checks: per watcher, revisions must strictly
 * increase (a repeat is a duplicate) and the count of distinct events must equal the
 * number of acknowledged puts to its key (the shortfall is `missing`); events that are
 * not ours (wrong key, run or type) are `unexpected`. After the last put is answered the
 * run waits for the outstanding deliveries (up to --drain-timeout).
 *
 * Transport: the lean HTTP/2 client (h2.ts) with its streaming calls, and responses read
 * in place (pb.ts), so the client stays far below its ceiling; its CPU and event-loop use
 * are reported. With --server-pid the server's RSS (before, with the watchers created,
 * peak, after) and CPU time come from /proc.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { serviceMethod, splitHostPort } from './conn';
import { BidiStream, CallError, H2Connection, PreparedMethod } from './h2';
import { LatencyRecorder, LatencySummary } from './latency';
import { parseWatchResponse, WatchMessage } from './pb';
import { clientMeter, countError, describeErrors, ErrorKind, RunResult } from './runner';
import { mib, ServerStats, ServerWatch } from './server-stats';
import { CLIENT_SATURATED_ELU } from './report';

export interface WatchOptions {
  endpoints: string[];
  conns: number;
  streams: number;
  watchers: number;
  keySpaceSize: number;
  watchPrefix: boolean;
  keyPrefix: string;
  valSize: number;
  putRate: number;
  totalPuts?: number;
  durationMs?: number;
  dialTimeoutMs: number;
  createTimeoutMs: number;
  drainTimeoutMs: number;
  serverPid?: number;
}

export interface WatchReport {
  command: 'watch';
  endpoints: string[];
  conns: number;
  streams: number;
  watchers: number;
  transport: 'h2';
  totalPuts: number | null;
  durationSeconds: number | null;
  workload: { keySpaceSize: number; watchPrefix: boolean; keyPrefix: string; valSize: number; putRate: number };
  watchersCreated: number;
  /** From the first create sent to the last `created` received. */
  createSeconds: number;
  puts: {
    issued: number;
    succeeded: number;
    errors: number;
    errorKinds: Record<string, number>;
    /** From the first put sent to the last answered. */
    seconds: number;
    /** Acknowledged puts per second. */
    rate: number;
    latencyMs: LatencySummary;
  };
  /** Distinct events received, summed over watchers. */
  deliveries: number;
  /** Acknowledged puts times the watchers of their key. */
  expectedDeliveries: number;
  missing: number;
  duplicates: number;
  unexpected: number;
  /** Watchers the server canceled during the run, by reason. */
  canceled: Record<string, number>;
  /** Watch streams that ended during the run, by status. */
  streamErrors: Record<string, number>;
  /** From the first put sent to the last delivery. */
  totalSeconds: number;
  eventsPerSecond: number;
  /** Fan-out latency: put sent -> event received, over every delivery. */
  latencyMs: LatencySummary;
  client: RunResult['client'];
  server: ServerStats | null;
}

/** Unanswered puts allowed before the writer waits (the schedule then slips, which shows in puts.rate). */
const PUTS_IN_FLIGHT_MAX = 1000;

export function watchKeys(keyPrefix: string, keySpaceSize: number): Buffer[] {
  const width = String(Math.max(0, keySpaceSize - 1)).length;
  return Array.from({ length: keySpaceSize }, (_, k) => Buffer.from(keyPrefix + String(k).padStart(width, '0')));
}

/** etcd's prefix range end: the prefix with its last byte incremented (trailing 0xff dropped). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

interface StreamState {
  conn: H2Connection;
  call: BidiStream;
  /** Watchers whose create is sent and not yet answered, in order. */
  pending: number[];
  pendingHead: number;
  byId: Map<number, number>;
}

export async function runWatchBench(o: WatchOptions): Promise<WatchReport> {
  if (o.valSize < 8) throw new Error('--val-size must be at least 8 (the value carries the run id and put number)');
  if (o.streams > o.watchers) throw new Error(`--streams (${o.streams}) must not exceed --watchers (${o.watchers})`);
  if (o.conns > o.streams) throw new Error(`--conns (${o.conns}) must not exceed --streams (${o.streams})`);
  if (!o.watchPrefix && o.keySpaceSize > o.watchers) throw new Error(`--key-space-size (${o.keySpaceSize}) must not exceed --watchers (${o.watchers})`);
  const server = new ServerWatch(o.serverPid);
  const dial = (endpoint: string): H2Connection => {
    const { host, port } = splitHostPort(endpoint);
    return new H2Connection(host, port);
  };
  const conns = Array.from({ length: o.conns }, (_, c) => dial(o.endpoints[c % o.endpoints.length]));
  const writer = dial(o.endpoints[0]);
  try {
    await Promise.all([...conns, writer].map((c) => c.connect(o.dialTimeoutMs)));
    return await measure(o, conns, writer, server);
  } finally {
    for (const c of conns) c.close();
    writer.close();
    server.stop();
  }
}

async function measure(o: WatchOptions, conns: H2Connection[], writer: H2Connection, server: ServerWatch): Promise<WatchReport> {
  const K = o.keySpaceSize;
  const W = o.watchers;
  const keys = watchKeys(o.keyPrefix, K);
  const watchMethod = serviceMethod('etcdserverpb.Watch', 'Watch');
  const putMethod = serviceMethod('etcdserverpb.KV', 'Put');
  const runId = randomBytes(4).readUInt32BE(0);

  // Watchers of each key (all of them for a prefix watch).
  const watchersPerKey = new Float64Array(K);
  for (let w = 0; w < W; w++) watchersPerKey[w % K]++;

  const lastRev = new Float64Array(W);
  const unique = new Float64Array(W);
  const latencies = new LatencyRecorder(undefined);
  const msg = new WatchMessage();
  const createErrors = new Map<string, number>();
  const canceled = new Map<string, number>();
  const streamErrorKinds = new Map<string, ErrorKind>();
  let created = 0;
  let answeredCreates = 0;
  let delivered = 0;
  let duplicates = 0;
  let unexpected = 0;
  let lastDeliveryAt = 0;
  let running = false;
  let finished = false;
  let onCreatesDone: ((err?: Error) => void) | undefined;
  let maybeFinish = (): void => undefined;

  // Puts (the writer's state is read by the event handler).
  const maxPuts = o.totalPuts ?? Math.ceil((o.putRate * (o.durationMs ?? 0)) / 1000) + 1;
  const sendAt = new Float64Array(maxPuts);
  let issued = 0;

  const tally = (map: Map<string, number>, key: string): void => {
    map.set(key, (map.get(key) ?? 0) + 1);
  };

  const onMessage = (s: StreamState, buf: Buffer): void => {
    parseWatchResponse(buf, msg);
    if (msg.created) {
      const w = s.pending[s.pendingHead++];
      answeredCreates++;
      if (msg.canceled || w === undefined) tally(createErrors, msg.canceled ? msg.cancelReason(buf) || 'canceled' : 'created answer without a create');
      else {
        s.byId.set(msg.watchId, w);
        created++;
      }
      if (answeredCreates === W) onCreatesDone?.();
      if (msg.events === 0) return;
    } else if (msg.canceled) {
      tally(canceled, msg.cancelReason(buf) || `canceled${msg.compactRevision ? ` (compacted at ${msg.compactRevision})` : ''}`);
      return;
    }
    if (msg.events === 0) return;
    const w = s.byId.get(msg.watchId);
    if (w === undefined || !running) {
      unexpected += msg.events;
      return;
    }
    const now = s.conn.receivedAt;
    for (let i = 0; i < msg.events; i++) {
      const rev = msg.modRevision[i];
      if (rev <= lastRev[w]) {
        duplicates++;
        continue;
      }
      lastRev[w] = rev;
      const vs = msg.valueStart[i];
      if (msg.type[i] !== 0 || msg.valueEnd[i] - vs < 8 || buf.readUInt32BE(vs) !== runId) {
        unexpected++;
        continue;
      }
      const seq = buf.readUInt32BE(vs + 4);
      if (seq >= issued || (!o.watchPrefix && seq % K !== w % K)) {
        unexpected++;
        continue;
      }
      unique[w]++;
      delivered++;
      latencies.record(now - sendAt[seq]);
      lastDeliveryAt = now;
    }
    maybeFinish();
  };

  // Streams and watchers.
  const watchPaths = conns.map((c) => new PreparedMethod(watchMethod.path, c.authority));
  const streams: StreamState[] = [];
  for (let j = 0; j < o.streams; j++) {
    const conn = conns[j % conns.length];
    const s: StreamState = { conn, call: undefined as unknown as BidiStream, pending: [], pendingHead: 0, byId: new Map() };
    s.call = conn.openStream(watchPaths[j % conns.length], {
      onMessage: (m) => onMessage(s, m),
      onEnd: (err) => {
        if (finished) return;
        const e: CallError = err ?? { code: 0, details: 'stream ended by the server' };
        countError(streamErrorKinds, e);
        if (!running) onCreatesDone?.(new Error(`a watch stream ended while creating watchers: ${e.code}: ${e.details}`));
        maybeFinish();
      },
    });
    streams.push(s);
  }
  const createMsgs = o.watchPrefix
    ? [watchMethod.encode({ create_request: { key: Buffer.from(o.keyPrefix), range_end: prefixEnd(Buffer.from(o.keyPrefix)) } })]
    : keys.map((key) => watchMethod.encode({ create_request: { key } }));

  server.mark('before');
  const createStart = performance.now();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`only ${answeredCreates} of ${W} watch creates answered within ${o.createTimeoutMs / 1000}s`)),
      o.createTimeoutMs,
    );
    onCreatesDone = (err) => {
      clearTimeout(timer);
      onCreatesDone = undefined;
      if (err) reject(err);
      else resolve();
    };
    for (let w = 0; w < W; w++) {
      const s = streams[w % o.streams];
      s.pending.push(w);
      s.call.send(createMsgs[o.watchPrefix ? 0 : w % K]);
    }
  });
  const createSeconds = (performance.now() - createStart) / 1000;
  if (createErrors.size > 0) {
    throw new Error(`${W - created} of ${W} watchers were refused: ${[...createErrors].map(([r, n]) => `${n} x ${r}`).join('; ')}`);
  }
  server.mark('watchersCreated');

  // The writer and the measured phase.
  const putPath = new PreparedMethod(putMethod.path, writer.authority);
  const template = randomBytes(o.valSize);
  template.writeUInt32BE(runId, 0);
  const putLatency = new LatencyRecorder(maxPuts);
  const putErrorKinds = new Map<string, ErrorKind>();
  const okPerKey = new Float64Array(K);
  let acked = 0;
  let putOk = 0;
  let putErrors = 0;
  let expected = 0;
  let lastAckAt = 0;
  let writerStopped = false;
  let drainTimer: NodeJS.Timeout | undefined;
  let tickTimer: NodeJS.Timeout | undefined;

  const meter = clientMeter();
  server.start();
  running = true;
  const t0 = performance.now();

  const done = new Promise<void>((resolve) => {
    const finish = (): void => {
      if (finished) return;
      finished = true;
      running = false;
      if (drainTimer) clearTimeout(drainTimer);
      if (tickTimer) clearTimeout(tickTimer);
      resolve();
    };
    maybeFinish = (): void => {
      if (finished || !writerStopped || acked < issued) return;
      if (delivered >= expected) return finish();
      drainTimer ??= setTimeout(finish, o.drainTimeoutMs);
    };

    const sendPut = (i: number): void => {
      const k = i % K;
      const value = Buffer.from(template);
      value.writeUInt32BE(i, 4);
      const request = putMethod.encode({ key: keys[k], value });
      sendAt[i] = performance.now();
      writer.call(putPath, request, (err) => {
        acked++;
        lastAckAt = performance.now();
        if (err) {
          putErrors++;
          countError(putErrorKinds, err);
        } else {
          putOk++;
          okPerKey[k]++;
          expected += o.watchPrefix ? W : watchersPerKey[k];
          putLatency.record(lastAckAt - sendAt[i]);
        }
        if (!writerStopped && issued - acked === PUTS_IN_FLIGHT_MAX - 1) tick();
        maybeFinish();
      });
    };

    const tick = (): void => {
      tickTimer = undefined;
      if (writerStopped || finished) return;
      const now = performance.now();
      const timeUp = o.durationMs !== undefined && now - t0 >= o.durationMs;
      const due = timeUp ? issued : Math.min(maxPuts, Math.floor(((now - t0) * o.putRate) / 1000) + 1);
      while (issued < due && issued - acked < PUTS_IN_FLIGHT_MAX) sendPut(issued++);
      if (timeUp || issued >= maxPuts) {
        writerStopped = true;
        maybeFinish();
        return;
      }
      if (issued - acked >= PUTS_IN_FLIGHT_MAX) return; // resumed by an answer
      const nextAt = t0 + (issued * 1000) / o.putRate;
      tickTimer = setTimeout(tick, Math.max(0, nextAt - performance.now()));
    };
    tick();
  });
  await done;
  const client = meter();
  server.mark('after');
  server.stop();

  let missing = 0;
  for (let w = 0; w < W; w++) {
    const exp = o.watchPrefix ? putOk : okPerKey[w % K];
    if (unique[w] < exp) missing += exp - unique[w];
    else if (unique[w] > exp) unexpected += unique[w] - exp; // events of puts that failed for us
  }
  const end = Math.max(lastDeliveryAt, lastAckAt, t0);
  const totalSeconds = (end - t0) / 1000;
  const putSeconds = (lastAckAt > 0 ? lastAckAt - t0 : 0) / 1000;
  return {
    command: 'watch',
    endpoints: o.endpoints,
    conns: o.conns,
    streams: o.streams,
    watchers: W,
    transport: 'h2',
    totalPuts: o.totalPuts ?? null,
    durationSeconds: o.durationMs !== undefined ? o.durationMs / 1000 : null,
    workload: { keySpaceSize: K, watchPrefix: o.watchPrefix, keyPrefix: o.keyPrefix, valSize: o.valSize, putRate: o.putRate },
    watchersCreated: created,
    createSeconds,
    puts: {
      issued,
      succeeded: putOk,
      errors: putErrors,
      errorKinds: await describeErrors([...putErrorKinds.values()]),
      seconds: putSeconds,
      rate: putSeconds > 0 ? putOk / putSeconds : 0,
      latencyMs: putLatency.summary(),
    },
    deliveries: delivered,
    expectedDeliveries: expected,
    missing,
    duplicates,
    unexpected,
    canceled: Object.fromEntries(canceled),
    streamErrors: await describeErrors([...streamErrorKinds.values()]),
    totalSeconds,
    eventsPerSecond: totalSeconds > 0 ? delivered / totalSeconds : 0,
    latencyMs: latencies.summary(),
    client,
    server: server.result(),
  };
}

const ms = (v: number): string => `${v.toFixed(3)} ms`;

export function formatWatchReport(r: WatchReport): string {
  const run = r.totalPuts !== null ? `${r.totalPuts} puts` : `${r.durationSeconds} s`;
  const target = r.workload.watchPrefix
    ? `every watcher on prefix "${r.workload.keyPrefix}" (${r.workload.keySpaceSize} keys)`
    : `${r.workload.keySpaceSize} key(s), ${(r.watchers / r.workload.keySpaceSize).toFixed(1)} watchers per key`;
  const rows: [string, string][] = [
    ['Watchers created', `${r.watchersCreated} in ${r.createSeconds.toFixed(3)} s`],
    ['Puts', `${r.puts.issued} sent, ${r.puts.succeeded} ok, ${r.puts.errors} errors; ${r.puts.rate.toFixed(1)} puts/s (target ${r.workload.putRate})`],
    ['Put latency p50/p99', `${ms(r.puts.latencyMs.p50)} / ${ms(r.puts.latencyMs.p99)}`],
    ['Deliveries', `${r.deliveries} of ${r.expectedDeliveries} expected`],
    ['Missing / duplicate', `${r.missing} / ${r.duplicates}${r.unexpected ? ` (and ${r.unexpected} unexpected)` : ''}`],
    ['Total time', `${r.totalSeconds.toFixed(3)} s (first put to last delivery)`],
    ['Events/s', `${r.eventsPerSecond.toFixed(0)} deliveries/s`],
    ['Fan-out avg', ms(r.latencyMs.avg)],
    ['Fan-out min', ms(r.latencyMs.min)],
    ['Fan-out p50', ms(r.latencyMs.p50)],
    ['Fan-out p90', ms(r.latencyMs.p90)],
    ['Fan-out p99', ms(r.latencyMs.p99)],
    ['Fan-out p99.9', ms(r.latencyMs.p999)],
    ['Fan-out max', ms(r.latencyMs.max)],
    ['Client CPU', `${r.client.cpuPercentOfOneCore.toFixed(0)}% of one core, event loop ${(r.client.eventLoopUtilization * 100).toFixed(0)}% busy`],
  ];
  if (r.latencyMs.sampled < r.latencyMs.count) rows.push(['Percentiles from', `${r.latencyMs.sampled} of ${r.latencyMs.count} deliveries (uniform reservoir)`]);
  if (r.server) {
    const s = r.server;
    rows.push(
      ['Server RSS', `${mib(s.rssKiB.before)} before, ${mib(s.rssKiB.watchersCreated)} with watchers, peak ${mib(s.rssPeakKiB)}, ${mib(s.rssKiB.after)} after`],
      ['Server CPU', `${s.cpuPercentOfOneCore.toFixed(0)}% of one core during the puts`],
    );
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = [
    `coord bench watch: ${r.endpoints.join(',')}, ${r.watchers} watchers over ${r.streams} streams / ${r.conns} conn(s) (h2), ${run}`,
    `  ${target}; --put-rate ${r.workload.putRate}; fan-out latency = put sent -> event received`,
    '',
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
  ];
  const problems: string[] = [];
  for (const [kind, n] of Object.entries(r.puts.errorKinds)) problems.push(`    ${n} x put failed: ${kind}`);
  for (const [kind, n] of Object.entries(r.streamErrors)) problems.push(`    ${n} x watch stream ended: ${kind}`);
  for (const [kind, n] of Object.entries(r.canceled)) problems.push(`    ${n} x watcher canceled: ${kind}`);
  if (problems.length) lines.push('', '  Problems:', ...problems);
  if (r.client.eventLoopUtilization > CLIENT_SATURATED_ELU) {
    lines.push('', `  warning: the client's event loop was ${(r.client.eventLoopUtilization * 100).toFixed(0)}% busy; these figures may be bounded by coord bench itself.`);
  }
  return lines.join('\n');
}
