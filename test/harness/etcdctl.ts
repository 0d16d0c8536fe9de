/**
 * Run the real `etcdctl` (API v3) against one or more endpoints.
 *
 * Goal: one function the differential and process tests use to drive a server exactly as
 * an operator would, returning exit code, stdout and stderr (as text and as raw bytes,
 * since `get` prints binary values and `-w protobuf` prints protobuf).
 *
 * Method: spawn `etcdctl --endpoints=... --dial-timeout=... --command-timeout=... ARGS`
 * with ETCDCTL_API=3 and every other ETCDCTL_* variable removed (a developer's
 * ETCDCTL_ENDPOINTS must not leak in); feed `stdin` when given (txn scripts, large or
 * binary values for `put`) and close it otherwise; kill the process if it outlives
 * `timeoutMs`.
 */
import { spawn } from 'node:child_process';

export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? 'etcdctl';

export interface EtcdctlOptions {
  stdin?: string | Buffer;
  /** etcdctl --dial-timeout (default 2s). */
  dialTimeout?: string;
  /** etcdctl --command-timeout (default 5s). */
  commandTimeout?: string;
  /** Hard limit for the whole process (default 30 s); then SIGKILL and code -1. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface EtcdctlResult {
  /** Exit code; -1 when killed by the harness timeout or by a signal. */
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
  /** The full argv, for failure messages. */
  argv: string[];
}

export function etcdctlEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith('ETCDCTL_') || /^(https?|all|grpc)_proxy$/i.test(k)) delete env[k];
  }
  env.ETCDCTL_API = '3';
  return { ...env, ...extra };
}

/** etcdctl's argv: the global flags (endpoints, timeouts), then `args`. */
export function etcdctlArgv(endpoints: string | string[], args: string[], opts: Pick<EtcdctlOptions, 'dialTimeout' | 'commandTimeout'> = {}): string[] {
  const eps = Array.isArray(endpoints) ? endpoints.join(',') : endpoints;
  return [
    `--endpoints=${eps}`,
    `--dial-timeout=${opts.dialTimeout ?? '2s'}`,
    `--command-timeout=${opts.commandTimeout ?? '5s'}`,
    ...args,
  ];
}

export function etcdctl(endpoints: string | string[], args: string[], opts: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  const argv = etcdctlArgv(endpoints, args, opts);
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL_BIN, argv, { env: etcdctlEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${ETCDCTL_BIN}: ${e.message} (is etcd-client installed? run node scripts/ensure-etcd.js)`));
    });
    child.stdin.on('error', () => {
      // etcdctl may exit before reading all of stdin (e.g. a usage error); not our failure.
    });
    if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
    else child.stdin.end();
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const stderrBytes = Buffer.concat(err);
      resolve({
        code: timedOut || code === null ? -1 : code,
        stdout: stdoutBytes.toString('utf8'),
        stderr: stderrBytes.toString('utf8') + (timedOut ? `\n[harness: etcdctl killed after ${opts.timeoutMs ?? 30_000} ms]` : ''),
        stdoutBytes,
        stderrBytes,
        argv: [ETCDCTL_BIN, ...argv],
      });
    });
  });
}

/** Like etcdctl(), but throws (with the output) unless the exit code is 0. */
export async function etcdctlOk(endpoints: string | string[], args: string[], opts: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  const r = await etcdctl(endpoints, args, opts);
  if (r.code !== 0) {
    throw new Error(`${r.argv.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}
