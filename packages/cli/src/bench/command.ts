/**
 * The part every `coord bench` command shares: run the workload, build the report,
 * print the human table (the JSON object is printed by oclif's --json handling from the
 * value `run()` returns).
 */
import type { Command } from '@oclif/core';
import { BenchReport, formatReport, makeReport } from './report';
import { RunOptions, runBench, Workload } from './runner';

export async function benchAndReport(
  cmd: Command,
  name: string,
  opts: RunOptions,
  workload: Workload,
  params: Record<string, unknown>,
): Promise<BenchReport> {
  const result = await runBench(workload, opts);
  const report = makeReport(name, opts, params, result);
  cmd.log(formatReport(report));
  return report;
}

/** Turns a thrown Error into oclif's error exit without a stack for expected failures. */
export function failWith(cmd: Command, err: unknown): never {
  return cmd.error(err instanceof Error ? err.message : String(err), { exit: 1 });
}
