/**
 * A restartable single-member server for the watch and lease tests. Unlike helpers/etcd.ts it
 * can stop the member the way an operator does (SIGTERM), keep its data dir, and start it again
 * on the same data dir and ports, which the resume and lease-loss tests need.
 *
 * `startCluster(n)` starts n such members as one cluster, for failover between endpoints.
 *
 * The target is the real etcd 3.4 (`/usr/bin/etcd` or $ETCD_BIN) by default. With
 * `CLIENT_TEST_TARGET=coord` it is coord's server instead (`node packages/server/dist/main.js`
 * with the same etcd flags; build it first with `npx tsc -b packages/server`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createRawClients } from '../../src';
import { ETCD_BIN, freePort } from './etcd';

export type ServerKind = 'etcd' | 'coord';

export const TARGET: ServerKind = process.env.CLIENT_TEST_TARGET === 'coord' ? 'coord' : 'etcd';
export const COORD_MAIN = path.resolve(__dirname, '../../../server/dist/main.js');

export interface TestServer {
  readonly kind: ServerKind;
  /** `127.0.0.1:P`, usable as a client endpoint; the same across restarts. */
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly dataDir: string;
  readonly running: boolean;
  /** Everything the server printed (all runs), for diagnosing failures. */
  output(): string;
  /** Stop the member (SIGTERM by default; SIGKILL after 10 s) and keep its data dir. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same ports and data dir; resolves once /health says true. */
  start(): Promise<void>;
  /** Kill it and remove the data dir. */
  destroy(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** etcd: GET /health says true. coord (no HTTP gateway yet): a gRPC Range is answered. */
async function healthy(kind: ServerKind, clientUrl: string, endpoint: string): Promise<boolean> {
  if (kind === 'etcd') {
    try {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: string };
      return body.health === 'true';
    } catch {
      return false;
    }
  }
  const raw = createRawClients(endpoint);
  try {
    await new Promise((resolve, reject) =>
      raw.kv.Range({ key: Buffer.from('health') }, new grpc.Metadata(), { deadline: Date.now() + 1000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
    return true;
  } catch {
    return false;
  } finally {
    raw.channel.close();
  }
}

class Server implements TestServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log = '';

  constructor(
    readonly kind: ServerKind,
    readonly endpoint: string,
    readonly clientUrl: string,
    readonly dataDir: string,
    private readonly args: string[],
    private readonly readyTimeoutMs: number,
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  output(): string {
    return this.log;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error('server already running');
    const [cmd, argv] =
      this.kind === 'coord' ? [process.execPath, [COORD_MAIN, ...this.args]] : [ETCD_BIN, this.args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-40000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let gone = false;
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        gone = true;
        if (this.child === child) this.child = undefined;
        resolve();
      }),
    );
    this.child = child;
    const deadline = Date.now() + this.readyTimeoutMs;
    while (Date.now() < deadline && !gone) {
      if (await healthy(this.kind, this.clientUrl, this.endpoint)) return;
      await sleep(100);
    }
    await this.stop('SIGKILL');
    throw new Error(`${this.kind} did not become healthy on ${this.clientUrl}:\n${this.log}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

async function createOnce(extraArgs: string[], readyTimeoutMs: number): Promise<TestServer> {
  const [clientPort, peerPort] = await distinctFreePorts(2);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `coord-client-${TARGET}-`));
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 't',
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `t=${peerUrl}`,
    '--logger', 'zap',
    '--log-level', 'warn',
    ...extraArgs,
  ];
  const server = new Server(TARGET, `127.0.0.1:${clientPort}`, clientUrl, dataDir, args, readyTimeoutMs);
  try {
    await server.start();
  } catch (err) {
    await server.destroy();
    throw err;
  }
  return server;
}

/** Start a member; retried with new ports in case another process took one we picked. */
export async function startServer(extraArgs: string[] = [], readyTimeoutMs = 20000): Promise<TestServer> {
  if (TARGET === 'etcd' && !fs.existsSync(ETCD_BIN)) throw new Error(`etcd not found at ${ETCD_BIN} (install the etcd-server package)`);
  if (TARGET === 'coord' && !fs.existsSync(COORD_MAIN)) throw new Error(`coord server not built: ${COORD_MAIN} (npx tsc -b packages/server)`);
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await createOnce(extraArgs, readyTimeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

/**
 * Start an n-member cluster on loopback (all members at once: none is healthy before a quorum
 * is up). Members are restartable like single ones; their endpoints are in member order.
 */
export async function startCluster(n: number, extraArgs: string[] = [], readyTimeoutMs = 30000): Promise<TestServer[]> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startClusterOnce(n, extraArgs, readyTimeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function startClusterOnce(n: number, extraArgs: string[], readyTimeoutMs: number): Promise<TestServer[]> {
  const free = await distinctFreePorts(2 * n);
  const ports = Array.from({ length: n }, (_, i) => ({ client: free[2 * i], peer: free[2 * i + 1] }));
  const token = `coord-client-test-${process.pid}-${ports[0].client}`;
  const initialCluster = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const members = ports.map((p, i) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `coord-client-${TARGET}-m${i}-`));
    const clientUrl = `http://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    const args = [
      '--name', `m${i}`,
      '--data-dir', dataDir,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-token', token,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      '--log-level', 'warn',
      ...extraArgs,
    ];
    return new Server(TARGET, `127.0.0.1:${p.client}`, clientUrl, dataDir, args, readyTimeoutMs);
  });
  try {
    await Promise.all(members.map((m) => m.start()));
  } catch (err) {
    await Promise.all(members.map((m) => m.destroy()));
    throw err;
  }
  return members;
}
