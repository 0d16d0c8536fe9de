/**
 * Run the real binaries: `node packages/cli/bin/run.js ...` (coord) and `/usr/bin/etcdctl`,
 * with a clean environment (no COORD_*, ETCDCTL_* or NODE_OPTIONS from the test runner) and
 * stdin either given or /dev/null. etcdctl's client library logs retries as zap JSON lines on
 * stderr ({"level":"warn",...}, with timestamps and random IDs); they are not part of
 * etcdctl's own output and are dropped.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const COORD_BIN = path.join(__dirname, '..', '..', 'bin', 'run.js');
export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';

export interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  timeoutMs?: number;
}

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(COORD_|ETCDCTL_)/.test(k) || k === 'NODE_OPTIONS' || k === 'DEBUG') continue;
    env[k] = v;
  }
  return { ...env, ETCDCTL_API: '3', ...extra };
}

export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: cleanEnv(options.env),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8'), code: code ?? (signal ? 128 + 9 : -1) });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export function coord(args: readonly string[], options?: RunOptions): Promise<RunResult> {
  return run(process.execPath, [COORD_BIN, ...args], options);
}

const ZAP_LINE = /^\{"level":"[a-z]+","ts":.*\n?/gm;

export async function etcdctl(args: readonly string[], options?: RunOptions): Promise<RunResult> {
  const r = await run(ETCDCTL_BIN, args, options);
  return { ...r, stderr: r.stderr.replace(ZAP_LINE, '') };
}
