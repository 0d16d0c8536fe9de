/**
 * `coord bench lease-keepalive`: how many lease renewals a server answers.
 *
 * 1. Grant: --leases LeaseGrant calls (TTL --ttl, server-chosen IDs), 100 in flight over
 *    the --conns connections; their rate is reported too.
 * 2. Keep alive: --streams LeaseKeepAlive streams over the conns (stream j on conn j mod
 *    conns); lease i belongs to stream i mod streams. Each stream is a closed loop with
 *    --window requests in flight: every answer is timed and the stream's next lease (round
 *    robin over its leases) is sent at once, until --total keepalives or --duration.
 *    Answers are matched to requests by lease ID (in order, as both etcd and coord answer
 *    a stream in order; an out-of-order answer is still matched). An answer with TTL <= 0
 *    means the server did not know the lease (expired or never granted): an error.
 * 3. Check: LeaseTimeToLive on a sample of the leases (--check-sample, evenly spaced; 0 =
 *    all): each must still be alive (TTL > 0). With a TTL shorter than the run this shows
 *    the keepalives, not the grant, kept them alive; `leasesRenewed` counts leases that got
 *    at least one successful keepalive.
 *
 * Latency is measured from the request being handed to the stream to its answer being
 * read, so it includes the client's own work, as the unary benches do. Transport: the lean
 * HTTP/2 client (h2.ts) with streaming calls; keepalive requests are pre-encoded per lease
 * and answers read in place (pb.ts). With --server-pid the server's RSS and CPU time are
 * read from /proc.
 */
import { performance } from 'node:perf_hooks';
import { GrpcMethod, serviceMethod, splitHostPort } from './conn';
import { BidiStream, CallError, H2Connection, PreparedMethod } from './h2';
import { LatencyRecorder, LatencySummary } from './latency';
import { KeepAliveMessage, parseKeepAliveResponse } from './pb';
import { clientMeter, countError, describeErrors, ErrorKind, RunResult } from './runner';
import { mib, ServerStats, ServerWatch } from './server-stats';
import { CLIENT_SATURATED_ELU } from './report';

export interface LeaseOptions {
  endpoints: string[];
  conns: number;
  streams: number;
  leases: number;
  window: number;
  ttl: number;
  total?: number;
  durationMs?: number;
  dialTimeoutMs: number;
  checkSample: number;
  drainTimeoutMs: number;
  serverPid?: number;
}

export interface LeaseReport {
  command: 'lease-keepalive';
  endpoints: string[];
  conns: number;
  streams: number;
  leases: number;
  window: number;
  ttl: number;
  transport: 'h2';
  total: number | null;
  durationSeconds: number | null;
  grant: { succeeded: number; errors: number; errorKinds: Record<string, number>; seconds: number; throughput: number; latencyMs: LatencySummary };
  /** Keepalive requests sent. */
  requests: number;
  /** Answers with TTL > 0. */
  succeeded: number;
  /** Answers with TTL <= 0 (lease unknown), unanswered requests and failed streams. */
  errors: number;
  errorKinds: Record<string, number>;
  /** From the first keepalive sent to the last answer. */
  totalSeconds: number;
  /** Successful keepalives per second. */
  throughput: number;
  latencyMs: LatencySummary;
  /** Leases that got at least one successful keepalive. */
  leasesRenewed: number;
  check: { checked: number; alive: number; errors: number; errorKinds: Record<string, number>; ttlMin: number | null; ttlMax: number | null };
  client: RunResult['client'];
  server: ServerStats | null;
}

const GRANTS_IN_FLIGHT = 100;
const CHECKS_IN_FLIGHT = 16;

function dial(endpoint: string): H2Connection {
  const { host, port } = splitHostPort(endpoint);
  return new H2Connection(host, port);
}

export async function runLeaseBench(o: LeaseOptions): Promise<LeaseReport> {
  if (o.streams > o.leases) throw new Error(`--streams (${o.streams}) must not exceed --leases (${o.leases})`);
  if (o.conns > o.streams) throw new Error(`--conns (${o.conns}) must not exceed --streams (${o.streams})`);
  const server = new ServerWatch(o.serverPid);
  const conns = Array.from({ length: o.conns }, (_, c) => dial(o.endpoints[c % o.endpoints.length]));
  try {
    await Promise.all(conns.map((c) => c.connect(o.dialTimeoutMs)));
    return await measure(o, conns, server);
  } finally {
    for (const c of conns) c.close();
    server.stop();
  }
}

/** Unary calls `count` times with `parallel` in flight over the conns; `onAnswer` sees each decoded response. */
async function unaryLoop(
  conns: H2Connection[],
  method: GrpcMethod,
  count: number,
  parallel: number,
  request: (i: number) => Buffer,
  onAnswer: (i: number, response: Record<string, unknown>, ms: number) => void,
  errorKinds: Map<string, ErrorKind>,
): Promise<{ errors: number; seconds: number }> {
  const prepared = conns.map((c) => new PreparedMethod(method.path, c.authority));
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  const client = (slot: number): Promise<void> =>
    new Promise((resolve) => {
      const c = slot % conns.length;
      const go = (): void => {
        if (next >= count) return resolve();
        const i = next++;
        const s = performance.now();
        conns[c].call(prepared[c], request(i), (err: CallError | null, res?: Buffer) => {
          if (err) {
            errors++;
            countError(errorKinds, err);
          } else {
            try {
              onAnswer(i, method.decode(res!), performance.now() - s);
            } catch (e) {
              errors++;
              countError(errorKinds, { code: 13, details: `cannot decode the answer: ${(e as Error).message}` });
            }
          }
          go();
        });
      };
      go();
    });
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, (_, k) => client(k)));
  return { errors, seconds: (performance.now() - t0) / 1000 };
}

interface KaStream {
  call: BidiStream;
  conn: H2Connection;
  leases: number[];
  cursor: number;
  /** Ring of in-flight requests: lease index and send time. */
  ringLease: Int32Array;
  ringSentAt: Float64Array;
  head: number;
  count: number;
}

async function measure(o: LeaseOptions, conns: H2Connection[], server: ServerWatch): Promise<LeaseReport> {
  const grantMethod = serviceMethod('etcdserverpb.Lease', 'LeaseGrant');
  const kaMethod = serviceMethod('etcdserverpb.Lease', 'LeaseKeepAlive');
  const ttlMethod = serviceMethod('etcdserverpb.Lease', 'LeaseTimeToLive');
  server.mark('before');

  // 1. Grant.
  const grantRequest = grantMethod.encode({ TTL: String(o.ttl) });
  const ids: string[] = [];
  const grantErrorKinds = new Map<string, ErrorKind>();
  const grantLatency = new LatencyRecorder(o.leases);
  const grant = await unaryLoop(
    conns,
    grantMethod,
    o.leases,
    GRANTS_IN_FLIGHT,
    () => grantRequest,
    (_i, r, ms) => {
      if (typeof r.error === 'string' && r.error !== '') throw new Error(r.error);
      if (r.ID === undefined || r.ID === '0') throw new Error('no lease ID in the answer');
      ids.push(String(r.ID));
      grantLatency.record(ms);
    },
    grantErrorKinds,
  );
  server.mark('leasesGranted');
  if (ids.length < o.streams) throw new Error(`only ${ids.length} of ${o.leases} leases granted: ${JSON.stringify(await describeErrors([...grantErrorKinds.values()]))}`);

  // Pre-encoded keepalive requests; the ID's varint bytes to match answers.
  const framed: Buffer[] = [];
  const idBytes: Buffer[] = [];
  for (const id of ids) {
    const m = kaMethod.encode({ ID: id });
    if (m[0] !== 0x08) throw new Error(`unexpected LeaseKeepAliveRequest encoding ${m.toString('hex')}`);
    const f = Buffer.alloc(5 + m.length);
    f.writeUInt32BE(m.length, 1);
    m.copy(f, 5);
    framed.push(f);
    idBytes.push(m.subarray(1));
  }

  // 2. Keep alive.
  const L = ids.length;
  const renewed = new Uint8Array(L);
  const latencies = new LatencyRecorder(o.total);
  const errorKinds = new Map<string, ErrorKind>();
  const ka = new KeepAliveMessage();
  const total = o.total ?? Infinity;
  let sent = 0;
  let ok = 0;
  let notFound = 0;
  let lost = 0;
  let unmatched = 0;
  let lastAnswerAt = 0;
  let stopping = false;
  let finished = false;
  let finish = (): void => undefined;

  const matches = (buf: Buffer, lease: number): boolean => {
    const want = idBytes[lease];
    if (ka.idEnd - ka.idStart !== want.length) return false;
    for (let i = 0; i < want.length; i++) if (buf[ka.idStart + i] !== want[i]) return false;
    return true;
  };
  const inFlight = (): number => streams.reduce((n, s) => n + s.count, 0);
  const window = Math.max(1, o.window);

  const sendNext = (s: KaStream): void => {
    const lease = s.leases[s.cursor];
    s.cursor = s.cursor + 1 === s.leases.length ? 0 : s.cursor + 1;
    const slot = (s.head + s.count) % s.ringLease.length;
    s.ringLease[slot] = lease;
    s.ringSentAt[slot] = performance.now();
    s.count++;
    sent++;
    s.call.sendFramed(framed[lease]);
  };

  const onAnswer = (s: KaStream, buf: Buffer): void => {
    parseKeepAliveResponse(buf, ka);
    const now = s.conn.receivedAt;
    if (s.count === 0) {
      unmatched++;
      return;
    }
    const size = s.ringLease.length;
    let slot = s.head;
    if (!matches(buf, s.ringLease[slot])) {
      let found = -1;
      for (let k = 1; k < s.count; k++) {
        const j = (s.head + k) % size;
        if (matches(buf, s.ringLease[j])) {
          found = j;
          break;
        }
      }
      if (found < 0) {
        unmatched++;
        return;
      }
      // Swap the match to the head, then pop the head.
      const [l, t] = [s.ringLease[found], s.ringSentAt[found]];
      s.ringLease[found] = s.ringLease[slot];
      s.ringSentAt[found] = s.ringSentAt[slot];
      s.ringLease[slot] = l;
      s.ringSentAt[slot] = t;
    }
    const lease = s.ringLease[slot];
    const sentAt = s.ringSentAt[slot];
    s.head = slot + 1 === size ? 0 : slot + 1;
    s.count--;
    lastAnswerAt = now;
    if (ka.ttl > 0) {
      ok++;
      renewed[lease] = 1;
      latencies.record(now - sentAt);
    } else {
      notFound++;
    }
    if (!stopping && (sent >= total || (deadline !== Infinity && now >= deadline))) stopping = true;
    if (!stopping) sendNext(s);
    else if (s.count === 0 && inFlight() === 0) finish();
  };

  const streams: KaStream[] = [];
  const kaPaths = conns.map((c) => new PreparedMethod(kaMethod.path, c.authority));
  for (let j = 0; j < o.streams; j++) {
    const conn = conns[j % conns.length];
    const leases: number[] = [];
    for (let i = j; i < L; i += o.streams) leases.push(i);
    const w = Math.min(window, leases.length);
    const s: KaStream = {
      call: undefined as unknown as BidiStream,
      conn,
      leases,
      cursor: 0,
      ringLease: new Int32Array(w),
      ringSentAt: new Float64Array(w),
      head: 0,
      count: 0,
    };
    s.call = conn.openStream(kaPaths[j % conns.length], {
      onMessage: (m) => onAnswer(s, m),
      onEnd: (err) => {
        if (finished) return;
        countError(errorKinds, err ?? { code: 0, details: 'keepalive stream ended by the server' });
        lost += s.count;
        s.count = 0;
        if (inFlight() === 0) finish();
      },
    });
    streams.push(s);
  }

  const meter = clientMeter();
  server.start();
  const t0 = performance.now();
  const deadline = o.durationMs !== undefined ? t0 + o.durationMs : Infinity;
  await new Promise<void>((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    // A --duration run may end while no answer arrives (a stalled server): stop sending then.
    const stopTimer = o.durationMs !== undefined ? setTimeout(() => {
      stopping = true;
      if (inFlight() === 0) finish();
      else drainTimer = setTimeout(finish, o.drainTimeoutMs);
    }, o.durationMs + 50) : undefined;
    finish = (): void => {
      if (finished) return;
      finished = true;
      if (stopTimer) clearTimeout(stopTimer);
      if (drainTimer) clearTimeout(drainTimer);
      resolve();
    };
    for (const s of streams) for (let k = 0; k < s.ringLease.length && sent < total; k++) sendNext(s);
  });
  const client = meter();
  server.mark('after');
  server.stop();
  const unanswered = inFlight();
  for (const s of streams) s.call.cancel();
  const totalSeconds = ((lastAnswerAt || performance.now()) - t0) / 1000;

  // 3. Check a sample of leases.
  const sample: number[] = [];
  const n = o.checkSample <= 0 || o.checkSample >= L ? L : o.checkSample;
  for (let k = 0; k < n; k++) sample.push(Math.floor((k * L) / n));
  const checkErrorKinds = new Map<string, ErrorKind>();
  let alive = 0;
  let ttlMin = Infinity;
  let ttlMax = -Infinity;
  const check = await unaryLoop(
    conns,
    ttlMethod,
    sample.length,
    CHECKS_IN_FLIGHT,
    (i) => ttlMethod.encode({ ID: ids[sample[i]] }),
    (_i, r) => {
      const ttl = Number(r.TTL);
      if (ttl > 0) alive++;
      ttlMin = Math.min(ttlMin, ttl);
      ttlMax = Math.max(ttlMax, ttl);
    },
    checkErrorKinds,
  );

  const kinds = await describeErrors([...errorKinds.values()]);
  if (notFound) kinds['keepalive answered TTL 0 (lease not found)'] = notFound;
  if (unanswered) kinds['keepalive unanswered at the end of the run'] = unanswered;
  if (lost) kinds['keepalive lost with its stream'] = lost;
  if (unmatched) kinds['answer for a lease not in flight on its stream'] = unmatched;
  const grantErrors = await describeErrors([...grantErrorKinds.values()]);
  let renewedCount = 0;
  for (let i = 0; i < L; i++) renewedCount += renewed[i];
  return {
    command: 'lease-keepalive',
    endpoints: o.endpoints,
    conns: o.conns,
    streams: o.streams,
    leases: o.leases,
    window,
    ttl: o.ttl,
    transport: 'h2',
    total: o.total ?? null,
    durationSeconds: o.durationMs !== undefined ? o.durationMs / 1000 : null,
    grant: {
      succeeded: L,
      errors: grant.errors,
      errorKinds: grantErrors,
      seconds: grant.seconds,
      throughput: grant.seconds > 0 ? L / grant.seconds : 0,
      latencyMs: grantLatency.summary(),
    },
    requests: sent,
    succeeded: ok,
    errors: sent - ok,
    errorKinds: kinds,
    totalSeconds,
    throughput: totalSeconds > 0 ? ok / totalSeconds : 0,
    latencyMs: latencies.summary(),
    leasesRenewed: renewedCount,
    check: {
      checked: sample.length,
      alive,
      errors: check.errors,
      errorKinds: await describeErrors([...checkErrorKinds.values()]),
      ttlMin: ttlMin === Infinity ? null : ttlMin,
      ttlMax: ttlMax === -Infinity ? null : ttlMax,
    },
    client,
    server: server.result(),
  };
}

const ms = (v: number): string => `${v.toFixed(3)} ms`;

export function formatLeaseReport(r: LeaseReport): string {
  const run = r.total !== null ? `${r.total} keepalives` : `${r.durationSeconds} s`;
  const rows: [string, string][] = [
    ['Leases granted', `${r.grant.succeeded} of ${r.leases} (TTL ${r.ttl} s) in ${r.grant.seconds.toFixed(3)} s, ${r.grant.throughput.toFixed(0)} grants/s`],
    ['Keepalives', `${r.requests} sent, ${r.succeeded} ok, ${r.errors} errors`],
    ['Total time', `${r.totalSeconds.toFixed(3)} s`],
    ['Throughput', `${r.throughput.toFixed(1)} keepalives/s`],
    ['Latency avg', ms(r.latencyMs.avg)],
    ['Latency min', ms(r.latencyMs.min)],
    ['Latency p50', ms(r.latencyMs.p50)],
    ['Latency p90', ms(r.latencyMs.p90)],
    ['Latency p99', ms(r.latencyMs.p99)],
    ['Latency p99.9', ms(r.latencyMs.p999)],
    ['Latency max', ms(r.latencyMs.max)],
    ['Leases renewed', `${r.leasesRenewed} of ${r.grant.succeeded} got at least one keepalive`],
    [
      'Alive at the end',
      `${r.check.alive} of ${r.check.checked} checked (LeaseTimeToLive${r.check.ttlMin !== null ? `, TTL left ${r.check.ttlMin}..${r.check.ttlMax} s` : ''})`,
    ],
    ['Client CPU', `${r.client.cpuPercentOfOneCore.toFixed(0)}% of one core, event loop ${(r.client.eventLoopUtilization * 100).toFixed(0)}% busy`],
  ];
  if (r.latencyMs.sampled < r.latencyMs.count) rows.push(['Percentiles from', `${r.latencyMs.sampled} of ${r.latencyMs.count} samples (uniform reservoir)`]);
  if (r.server) {
    const s = r.server;
    rows.push(
      ['Server RSS', `${mib(s.rssKiB.before)} before, ${mib(s.rssKiB.leasesGranted)} with leases, peak ${mib(s.rssPeakKiB)}, ${mib(s.rssKiB.after)} after`],
      ['Server CPU', `${s.cpuPercentOfOneCore.toFixed(0)}% of one core during the keepalives`],
    );
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = [
    `coord bench lease-keepalive: ${r.endpoints.join(',')}, ${r.leases} leases over ${r.streams} streams / ${r.conns} conn(s) (h2), window ${r.window}, ${run}`,
    '',
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
  ];
  const problems: string[] = [];
  for (const [kind, n] of Object.entries(r.grant.errorKinds)) problems.push(`    ${n} x grant failed: ${kind}`);
  for (const [kind, n] of Object.entries(r.errorKinds)) problems.push(`    ${n} x ${kind}`);
  for (const [kind, n] of Object.entries(r.check.errorKinds)) problems.push(`    ${n} x LeaseTimeToLive failed: ${kind}`);
  if (problems.length) lines.push('', '  Problems:', ...problems);
  if (r.client.eventLoopUtilization > CLIENT_SATURATED_ELU) {
    lines.push('', `  warning: the client's event loop was ${(r.client.eventLoopUtilization * 100).toFixed(0)}% busy; these figures may be bounded by coord bench itself.`);
  }
  return lines.join('\n');
}
