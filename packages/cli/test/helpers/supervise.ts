/**
 * Helpers for the tests of the supervising commands (lock, elect, service, config): coord
 * running in the background with its output collected line by line, processes inspected
 * through /proc (independently of the code under test), a coord server started on free
 * ports, a TCP proxy that can cut one client off, and polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './etcd';
import { COORD_BIN, etcdctl } from './run';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` every `everyMs` until it returns a truthy value; throws `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The environment the real binary gets: no COORD_/ETCDCTL_ settings from the test runner. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(COORD_|ETCDCTL_)/.test(k) || k === 'NODE_OPTIONS' || k === 'DEBUG') continue;
    env[k] = v;
  }
  return { ...env, ETCDCTL_API: '3', ...extra };
}

/** A process running in the background, its stdout and stderr collected. */
export interface Background {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status (128 + signal number when killed). */
  readonly exited: Promise<number>;
  /** Wait until stdout matches `re`. */
  waitOut(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): void;
}

export function background(file: string, args: readonly string[], env: Record<string, string> = {}): Background {
  const child = spawn(file, args, { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0))),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    pid: child.pid as number,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitOut(re, timeoutMs = 30000) {
      return waitFor(`${JSON.stringify(String(re))} on stdout of ${args.join(' ')}; stdout: ${out}; stderr: ${err}`, () => {
        if (done && !re.test(out)) throw new Error(`exited before ${String(re)}; stdout: ${out}; stderr: ${err}`);
        return out.match(re);
      }, timeoutMs);
    },
    kill(signal = 'SIGTERM') {
      if (!done) child.kill(signal);
    },
  };
}

/** `coord ARGS...` in the background. */
export function coordBg(args: readonly string[], env: Record<string, string> = {}): Background {
  return background(process.execPath, [COORD_BIN, ...args], env);
}

/** True while process `pid` exists and is not a zombie (read from /proc, not from coord's code). */
export function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Read the pids a test script wrote to `file`, one per line (waits for `count` of them). */
export async function readPids(file: string, count: number): Promise<number[]> {
  return waitFor(`${count} pids in ${file}`, () => {
    try {
      const pids = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
      return pids.length >= count ? pids : undefined;
    } catch {
      return undefined;
    }
  });
}

/** The lease (hex, as etcdctl takes it) of the first key under `prefix`, read with etcdctl. */
export async function leaseOfFirstKey(endpoint: string, prefix: string): Promise<string> {
  const r = await etcdctl(['--endpoints', endpoint, 'get', '--prefix', prefix, '-w', 'json']);
  // int64 leases do not fit a JS number: read the digits.
  const m = /"lease":(\d+)/.exec(r.stdout.toString());
  if (!m) throw new Error(`no key under ${prefix}: ${r.stdout.toString()} ${r.stderr}`);
  return BigInt(m[1]).toString(16);
}

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `coord-${tag}-`));
}

/** A coord server (node packages/server/dist/main.js) on free ports. */
export interface CoordServer {
  readonly endpoint: string;
  output(): string;
  stop(): Promise<void>;
}

export const COORD_SERVER_MAIN = path.resolve(__dirname, '../../../server/dist/main.js');

export async function startCoordServer(readyTimeoutMs = 30000): Promise<CoordServer> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dir = tmpDir('cli-server');
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const p = background(process.execPath, [
    COORD_SERVER_MAIN,
    '--name', 's1',
    '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `s1=${peerUrl}`,
  ]);
  const endpoint = `127.0.0.1:${clientPort}`;
  const stop = async (): Promise<void> => {
    p.kill('SIGKILL');
    await p.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('the coord server to answer', async () => {
      const r = await etcdctl(['--endpoints', endpoint, '--command-timeout', '1s', 'get', 'health-check']);
      return r.code === 0;
    }, readyTimeoutMs, 200);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${p.stdout()}${p.stderr()}`);
  }
  return { endpoint, output: () => p.stdout() + p.stderr(), stop };
}

/**
 * A TCP proxy in front of `target`; `cut()` black-holes every connection (nothing is closed,
 * so the client learns nothing from the transport), as a network partition would.
 */
export interface Proxy {
  readonly endpoint: string;
  cut(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<Proxy> {
  const [host, port] = target.split(':');
  const sockets = new Set<net.Socket>();
  const pairs: [net.Socket, net.Socket][] = [];
  let isCut = false;
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    if (isCut) {
      client.pause();
      return;
    }
    const upstream = net.connect(Number(port), host);
    sockets.add(upstream);
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => !isCut && client.destroy());
    client.on('close', () => !isCut && upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    endpoint: `127.0.0.1:${addr.port}`,
    cut() {
      isCut = true;
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    close() {
      isCut = true;
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
