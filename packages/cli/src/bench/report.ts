/**
 * What `coord bench` prints: one JSON object (--json) or a human summary table.
 */
import type { RunOptions, RunResult } from './runner';

export interface BenchReport {
  command: string;
  endpoints: string[];
  clients: number;
  conns: number;
  transport: string;
  /** Requested --total, or null for a --duration run. */
  total: number | null;
  /** Requested --duration in seconds, or null for a --total run. */
  durationSeconds: number | null;
  /** Workload parameters (key/value sizes, key space, consistency, ...). */
  workload: Record<string, unknown>;
  requests: number;
  succeeded: number;
  errors: number;
  errorKinds: Record<string, number>;
  totalSeconds: number;
  /** Successful requests per second. */
  throughput: number;
  latencyMs: RunResult['latencyMs'];
  client: RunResult['client'];
  /** Facts from the first successful response (revision, kvs found, ...). */
  firstResponse: Record<string, unknown> | null;
}

export function makeReport(command: string, opts: RunOptions, workload: Record<string, unknown>, r: RunResult): BenchReport {
  return {
    command,
    endpoints: opts.endpoints,
    clients: opts.clients,
    conns: opts.conns,
    transport: opts.transport,
    total: opts.total ?? null,
    durationSeconds: opts.durationMs !== undefined ? opts.durationMs / 1000 : null,
    workload,
    requests: r.requests,
    succeeded: r.succeeded,
    errors: r.errors,
    errorKinds: r.errorKinds,
    totalSeconds: r.totalSeconds,
    throughput: r.throughput,
    latencyMs: r.latencyMs,
    client: r.client,
    firstResponse: r.firstResponse ?? null,
  };
}

const ms = (v: number): string => `${v.toFixed(3)} ms`;

/** The event-loop utilization above which the client itself is likely the bottleneck. */
export const CLIENT_SATURATED_ELU = 0.9;

export function formatReport(rep: BenchReport): string {
  const params = Object.entries(rep.workload)
    .map(([k, v]) => `${k}=${Buffer.isBuffer(v) ? JSON.stringify(v.toString()) : String(v)}`)
    .join(' ');
  const run = rep.total !== null ? `${rep.total} requests` : `${rep.durationSeconds} s`;
  const rows: [string, string][] = [
    ['Total time', `${rep.totalSeconds.toFixed(3)} s`],
    ['Requests', `${rep.requests} (${rep.succeeded} ok, ${rep.errors} errors)`],
    ['Throughput', `${rep.throughput.toFixed(1)} req/s`],
    ['Latency avg', ms(rep.latencyMs.avg)],
    ['Latency stddev', ms(rep.latencyMs.stddev)],
    ['Latency min', ms(rep.latencyMs.min)],
    ['Latency p50', ms(rep.latencyMs.p50)],
    ['Latency p90', ms(rep.latencyMs.p90)],
    ['Latency p99', ms(rep.latencyMs.p99)],
    ['Latency p99.9', ms(rep.latencyMs.p999)],
    ['Latency max', ms(rep.latencyMs.max)],
    [
      'Client CPU',
      `${rep.client.cpuPercentOfOneCore.toFixed(0)}% of one core, event loop ${(rep.client.eventLoopUtilization * 100).toFixed(0)}% busy`,
    ],
  ];
  if (rep.latencyMs.sampled < rep.latencyMs.count) {
    rows.push(['Percentiles from', `${rep.latencyMs.sampled} of ${rep.latencyMs.count} samples (uniform reservoir)`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = [
    `coord bench ${rep.command}: ${rep.endpoints.join(',')}, ${rep.clients} client(s) over ${rep.conns} conn(s) (${rep.transport}), ${run}`,
    `  ${params}`,
    '',
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
  ];
  if (rep.errors > 0) {
    lines.push('', '  Errors:');
    for (const [kind, n] of Object.entries(rep.errorKinds)) lines.push(`    ${n} x ${kind}`);
  }
  if (rep.client.eventLoopUtilization > CLIENT_SATURATED_ELU) {
    lines.push(
      '',
      `  warning: the client's event loop was ${(rep.client.eventLoopUtilization * 100).toFixed(0)}% busy; ` +
        'these figures may be bounded by coord bench itself (see docs/BENCHMARKS.md).',
    );
  }
  return lines.join('\n');
}
