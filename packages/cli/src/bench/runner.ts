/**
 * The closed-loop load generator shared by every `coord bench` command.
 *
 * --clients logical clients, spread round-robin over --conns connections, each keep exactly
 * one request in flight: send, wait for the answer, record its latency, send the next. The
 * run ends after --total requests (counted across all clients) or when --duration has
 * passed (requests in flight then are still awaited and counted). Latency is measured
 * with `performance.now()` from just before the request is handed to grpc-js to its
 * callback, so it includes the client's own encode/HTTP/2 work, as etcd's benchmark does.
 * Failed requests are counted by gRPC status and message and are not part of the latency
 * figures; throughput counts successful requests only (etcd's "Requests/sec").
 *
 * The tool's own cost is reported with the result: CPU time of this process and the
 * event-loop utilization (1.0 means the single JS thread was busy all the time, i.e. the
 * client may be the bottleneck; see docs/BENCHMARKS.md for its measured ceiling).
 */
import { performance } from 'node:perf_hooks';
import { Conn, KvMethod, openConn, TransportKind } from './conn';
import { CallError, decodeGrpcMessage } from './h2';
import { HuffmanDecoder, huffmanDecoder } from './huffman';
import { DEFAULT_SAMPLE_CAP, LatencyRecorder, LatencySummary } from './latency';

export interface Workload {
  method: KvMethod;
  /** The encoded request number `i` (0-based, in issue order). */
  request(i: number): Buffer;
  /** Facts about the first successful (decoded) response worth reporting, e.g. kvs found. */
  inspect?(response: Record<string, unknown>): Record<string, unknown>;
}

export interface RunOptions {
  endpoints: string[];
  clients: number;
  conns: number;
  /** Stop after this many requests... */
  total?: number;
  /** ...or after this long (ms). Exactly one of total/durationMs is set. */
  durationMs?: number;
  dialTimeoutMs: number;
  transport: TransportKind;
  sampleCap?: number;
}

export interface RunResult {
  requests: number;
  succeeded: number;
  errors: number;
  /** "CODE: message" -> count, for the failed requests. */
  errorKinds: Record<string, number>;
  totalSeconds: number;
  /** Successful requests per second. */
  throughput: number;
  latencyMs: LatencySummary;
  firstResponse?: Record<string, unknown>;
  client: { cpuUserMs: number; cpuSystemMs: number; cpuPercentOfOneCore: number; eventLoopUtilization: number };
}

const STATUS_NAMES: Record<number, string> = {
  0: 'OK', 1: 'CANCELLED', 2: 'UNKNOWN', 3: 'INVALID_ARGUMENT', 4: 'DEADLINE_EXCEEDED', 5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 8: 'RESOURCE_EXHAUSTED', 9: 'FAILED_PRECONDITION', 10: 'ABORTED',
  11: 'OUT_OF_RANGE', 12: 'UNIMPLEMENTED', 13: 'INTERNAL', 14: 'UNAVAILABLE', 15: 'DATA_LOSS', 16: 'UNAUTHENTICATED',
};

const ERROR_KINDS_MAX = 20;

export async function runBench(workload: Workload, opts: RunOptions): Promise<RunResult> {
  if (opts.total === undefined && opts.durationMs === undefined) throw new Error('runBench: total or duration required');
  const conns: Conn[] = [];
  for (let c = 0; c < opts.conns; c++) conns.push(openConn(opts.transport, opts.endpoints[c % opts.endpoints.length], workload.method));
  let result: RunResult & { rawErrorKinds?: ErrorKind[] };
  try {
    await Promise.all(conns.map((c) => c.ready(opts.dialTimeoutMs)));
    result = await drive(workload, opts, conns);
  } finally {
    for (const c of conns) c.close();
  }
  const raw = result.rawErrorKinds ?? [];
  delete result.rawErrorKinds;
  result.errorKinds = await describeErrors(raw);
  return result;
}

export interface ErrorKind {
  code: number;
  details: string;
  /** Huffman-coded grpc-message bytes (h2 transport), decoded after the run. */
  huffman?: Buffer;
  count: number;
}

/** "CODE: message" -> count, decoding Huffman-coded messages now that the run is over. */
export async function describeErrors(kinds: ErrorKind[]): Promise<Record<string, number>> {
  let decoder: HuffmanDecoder | undefined;
  if (kinds.some((k) => k.huffman)) decoder = await huffmanDecoder().catch(() => undefined);
  const out: Record<string, number> = {};
  for (const k of kinds) {
    let details = k.details;
    if (k.huffman) {
      const text = decoder?.decode(k.huffman);
      details = text !== undefined ? decodeGrpcMessage(text) : `(undecodable Huffman-coded message 0x${k.huffman.toString('hex')})`;
    }
    const label = `${STATUS_NAMES[k.code] ?? k.code}: ${details}`;
    out[label] = (out[label] ?? 0) + k.count;
  }
  return out;
}

/** Counts a failed call by status and message (at most ERROR_KINDS_MAX distinct kinds are kept). */
export function countError(kinds: Map<string, ErrorKind>, err: CallError): void {
  const key = `${err.code}:${err.huffmanDetails ? err.huffmanDetails.toString('hex') : err.details}`;
  const kind = kinds.get(key);
  if (kind) kind.count++;
  else if (kinds.size < ERROR_KINDS_MAX) kinds.set(key, { code: err.code, details: err.details, huffman: err.huffmanDetails, count: 1 });
}

/** The bench process's own cost over a phase: CPU time and event-loop utilization. */
export function clientMeter(): () => RunResult['client'] {
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const seconds = (performance.now() - t0) / 1000;
    return {
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      cpuPercentOfOneCore: seconds > 0 ? ((cpu.user + cpu.system) / 1e6 / seconds) * 100 : 0,
      eventLoopUtilization: elu.utilization,
    };
  };
}

function drive(workload: Workload, opts: RunOptions, conns: Conn[]): Promise<RunResult & { rawErrorKinds?: ErrorKind[] }> {
  const { method } = workload;
  const total = opts.total ?? Infinity;
  const latencies = new LatencyRecorder(opts.total, opts.sampleCap ?? DEFAULT_SAMPLE_CAP);
  const errorKinds = new Map<string, ErrorKind>();
  let issued = 0;
  let errors = 0;
  let active = 0;
  let firstResponse: Record<string, unknown> | undefined;
  let firstError: unknown;

  return new Promise((resolve, reject) => {
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const start = performance.now();
    const deadline = opts.durationMs !== undefined ? start + opts.durationMs : Infinity;

    const finish = (): void => {
      const end = performance.now();
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0);
      const totalSeconds = (end - start) / 1000;
      if (firstError !== undefined) return reject(firstError);
      const latencyMs = latencies.summary();
      resolve({
        requests: issued,
        succeeded: latencyMs.count,
        errors,
        errorKinds: {},
        rawErrorKinds: [...errorKinds.values()],
        totalSeconds,
        throughput: totalSeconds > 0 ? latencyMs.count / totalSeconds : 0,
        latencyMs,
        firstResponse,
        client: {
          cpuUserMs: cpu.user / 1000,
          cpuSystemMs: cpu.system / 1000,
          cpuPercentOfOneCore: totalSeconds > 0 ? ((cpu.user + cpu.system) / 1e6 / totalSeconds) * 100 : 0,
          eventLoopUtilization: elu.utilization,
        },
      });
    };

    const startClient = (conn: Conn): void => {
      active++;
      const next = (): void => {
        if (issued >= total || (deadline !== Infinity && performance.now() >= deadline) || firstError !== undefined) {
          if (--active === 0) finish();
          return;
        }
        let request: Buffer;
        try {
          request = workload.request(issued++);
        } catch (err) {
          firstError = err;
          if (--active === 0) finish();
          return;
        }
        const t0 = performance.now();
        conn.call(request, (err: CallError | null, response?: Buffer) => {
          const ms = performance.now() - t0;
          if (err) {
            errors++;
            countError(errorKinds, err);
          } else {
            latencies.record(ms);
            if (firstResponse === undefined && response) {
              try {
                const decoded = method.decode(response);
                firstResponse = workload.inspect ? workload.inspect(decoded) : {};
              } catch (e) {
                firstError = new Error(`cannot decode ${method.name} response: ${(e as Error).message}`);
              }
            }
          }
          next();
        });
      };
      next();
    };

    for (let i = 0; i < opts.clients; i++) startClient(conns[i % conns.length]);
  });
}
