/**
 * Shared by watch*.test.ts and lease*.test.ts (not a test itself).
 *
 * - Targets: a real etcd 3.4 (helpers/etcd.ts) and a `coord server`
 *   (`node packages/server/dist/main.js` with etcd's flags, free loopback ports, temp data dir,
 *   ready when `etcdctl endpoint status` answers), behind one interface.
 * - Background processes for commands that do not end by themselves (`watch`, `lease
 *   keep-alive`): output collected as it comes, conditions awaited, stdin fed line by line,
 *   killed at the end.
 * - `syncWatchers`: live watches print nothing when they are set up, so to know that every
 *   watcher is in place we put a sentinel key (in the watched range) until each one printed
 *   it; output is compared after the last sentinel only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { COORD_BIN, ETCDCTL_BIN, etcdctl } from './helpers/run';
import { freePort, startEtcd } from './helpers/etcd';

export const COORD_SERVER_MAIN = path.join(__dirname, '..', '..', 'server', 'dist', 'main.js');

export interface Target {
  readonly name: 'etcd' | 'coord';
  readonly endpoint: string;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A single-member coord server on free ports; ready when etcdctl gets an endpoint status. */
export async function startCoordServer(readyTimeoutMs = 20000): Promise<Target> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-cli-wl-'));
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const env = { ...process.env, NODE_OPTIONS: '' };
  const child = spawn(
    process.execPath,
    [COORD_SERVER_MAIN, '--name', 'c', '--data-dir', path.join(dir, 'data'), '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl, '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `c=${peerUrl}`],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  let log = '';
  child.stderr?.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-20000)));
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGKILL');
      await exitedPromise;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const endpoint = `127.0.0.1:${clientPort}`;
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline && !exited) {
    const r = await etcdctl(['--endpoints', endpoint, '--dial-timeout', '1s', '--command-timeout', '2s', 'endpoint', 'status'], { timeoutMs: 5000 });
    if (r.code === 0) return { name: 'coord', endpoint, stop };
    await sleep(150);
  }
  await stop();
  throw new Error(`coord server did not become ready on ${endpoint}:\n${log}`);
}

export async function startTarget(name: 'etcd' | 'coord'): Promise<Target> {
  if (name === 'coord') return startCoordServer();
  const e = await startEtcd();
  return { name: 'etcd', endpoint: e.endpoint, stop: () => e.stop() };
}

/** Which binaries a test may run. */
export type Bin = 'etcdctl' | 'coord';

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(COORD_|ETCDCTL_)/.test(k) || k === 'NODE_OPTIONS' || k === 'DEBUG') continue;
    env[k] = v;
  }
  return { ...env, ETCDCTL_API: '3', ...extra };
}

const ZAP_LINE = /^\{"level":"[a-z]+","ts":.*\n?/gm;

/** A command running in the background (`watch`, `lease keep-alive`), its output as it comes. */
export class Background {
  private readonly child: ChildProcess;
  private out: Buffer[] = [];
  private err: Buffer[] = [];
  private code: number | null | undefined;
  readonly exited: Promise<number | null>;

  constructor(
    readonly bin: Bin,
    args: readonly string[],
    options: { env?: Record<string, string>; stdin?: boolean } = {},
  ) {
    const [file, argv] = bin === 'coord' ? [process.execPath, [COORD_BIN, ...args]] : [ETCDCTL_BIN, [...args]];
    this.child = spawn(file, argv, { env: cleanEnv(options.env), stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (b: Buffer) => this.out.push(b));
    this.child.stderr?.on('data', (b: Buffer) => this.err.push(b));
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => {
        this.code = code;
        resolve(code);
      }),
    );
  }

  /** stdout as UTF-8 text, or (when it is not valid UTF-8) as `(latin1) ...`, still exact. */
  get stdout(): string {
    const b = Buffer.concat(this.out);
    const s = b.toString('utf8');
    return Buffer.from(s, 'utf8').equals(b) ? s : `(latin1) ${b.toString('latin1')}`;
  }

  /** stderr without clientv3's zap log lines (etcdctl's, not part of its own output). */
  get stderr(): string {
    return Buffer.concat(this.err).toString('utf8').replace(ZAP_LINE, '');
  }

  /** The exit status; undefined while running, null when killed by a signal. */
  get exitCode(): number | null | undefined {
    return this.code;
  }

  write(text: string): void {
    this.child.stdin?.write(text);
  }

  endInput(): void {
    this.child.stdin?.end();
  }

  /** Wait until `cond` holds (checked every 25 ms); throws with the output after timeoutMs. */
  async waitFor(cond: (p: Background) => boolean, what: string, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond(this)) {
      if (Date.now() > deadline) throw new Error(`${this.bin}: timed out waiting for ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await sleep(25);
    }
  }

  /** Wait for the exit; throws after timeoutMs. */
  async waitExit(timeoutMs = 15000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.bin}: did not exit\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<void> {
    if (this.code === undefined) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Start the same command with etcdctl and coord. */
export function both(args: readonly string[], options?: { env?: Record<string, string>; stdin?: boolean }): [Background, Background] {
  return [new Background('etcdctl', args, options), new Background('coord', args, options)];
}

/**
 * Put `key` = `sync-N` (N = 0, 1, ...) until every watcher has printed the latest value
 * (`seen` knows the output format); returns that value. Writes go through etcdctl.
 */
export async function syncWatchers(
  endpoint: string,
  watchers: readonly Background[],
  key: string,
  seen: (stdout: string, value: string) => boolean,
  timeoutMs = 20000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < deadline; i++) {
    const value = `sync-${i}`;
    const put = await etcdctl(['--endpoints', endpoint, 'put', key, value]);
    if (put.code !== 0) throw new Error(`sync put failed: ${put.stderr}`);
    const until = Date.now() + 500;
    while (Date.now() < until) {
      if (watchers.every((w) => seen(w.stdout, value))) return value;
      await sleep(25);
    }
  }
  throw new Error(`watchers never saw ${key}: ${watchers.map((w) => `${w.bin}: ${w.stdout} ${w.stderr}`).join('\n')}`);
}

/** Simple format: the output after the event that printed `key` = `value`. */
export function afterSimpleEvent(stdout: string, key: string, value: string): string {
  const marker = `${key}\n${value}\n`;
  const at = stdout.lastIndexOf(marker);
  if (at < 0) throw new Error(`no ${JSON.stringify(marker)} in ${stdout}`);
  return stdout.slice(at + marker.length);
}

/** JSON format: the response lines after the one carrying `value`. */
export function afterJsonEvent(stdout: string, value: string): string {
  const b64 = Buffer.from(value).toString('base64');
  const lines = stdout.split('\n');
  let at = -1;
  lines.forEach((l, i) => {
    if (l.includes(`"${b64}"`)) at = i;
  });
  if (at < 0) throw new Error(`no ${value} in ${stdout}`);
  return lines.slice(at + 1).join('\n');
}

/** Run etcdctl once against an endpoint (global flags first, as users write them). */
export function ctl(endpoint: string, args: readonly string[], input?: string | Buffer) {
  return etcdctl(['--endpoints', endpoint, ...args], { input });
}

/**
 * Independent cases run a few at a time (each coord process spends most of its time loading
 * node, oclif and gRPC): `pooled(name, fn)` registers a case, `startPooled()` (call it in a
 * beforeAll after the target is up) starts them all through a pool of `concurrency`, and
 * `it(name, pooledResult(name))` awaits that case, so failures are still reported per case.
 */
export class CasePool {
  private readonly cases = new Map<string, () => Promise<void>>();
  private readonly results = new Map<string, Promise<void>>();

  constructor(private readonly concurrency = 4) {}

  pooled(name: string, fn: () => Promise<void>): void {
    if (this.cases.has(name)) throw new Error(`duplicate case ${name}`);
    this.cases.set(name, fn);
  }

  start(): void {
    const queue = [...this.cases.entries()];
    const resolvers = new Map<string, (p: Promise<void>) => void>();
    for (const [name] of queue) this.results.set(name, new Promise<Promise<void>>((r) => resolvers.set(name, r)).then((p) => p));
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [name, fn] = next;
        const p = fn();
        (resolvers.get(name) as (p: Promise<void>) => void)(p);
        await p.catch(() => undefined);
      }
    };
    for (let i = 0; i < this.concurrency; i++) void worker();
  }

  result(name: string): Promise<void> {
    const r = this.results.get(name);
    if (!r) throw new Error(`case ${name} was not started`);
    return r;
  }

  /** Every case settled (for tests that write and must not disturb them). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.results.values());
  }
}
