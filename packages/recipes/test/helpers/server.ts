/**
 * Start a real single-member server for the recipe tests, on free loopback ports with a
 * temporary data dir (copied from the client's test helpers, which we do not import so the two
 * packages' tests can change independently).
 *
 * The target is the real etcd 3.4 (`/usr/bin/etcd` or $ETCD_BIN) by default. With
 * `RECIPES_TEST_TARGET=coord` it is coord's server (`node packages/server/dist/main.js` with
 * the same etcd flags; build it first with `npm run build`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from '@coord/client';

export type ServerKind = 'etcd' | 'coord';

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';
export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';
export const TARGET: ServerKind = process.env.RECIPES_TEST_TARGET === 'coord' ? 'coord' : 'etcd';
export const COORD_MAIN = path.resolve(__dirname, '../../../server/dist/main.js');

export interface TestServer {
  readonly kind: ServerKind;
  /** `127.0.0.1:P`, usable as a client endpoint. */
  readonly endpoint: string;
  readonly clientUrl: string;
  /** Everything the server printed, for diagnosing failures. */
  output(): string;
  /** Kill it and remove the data dir. */
  destroy(): Promise<void>;
}

/** A loopback port that was free a moment ago (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** etcd: GET /health says true. coord: a gRPC Range is answered. */
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
  const client = new Client({ endpoints: [endpoint], dialTimeoutMs: 1000, callTimeoutMs: 1000 });
  try {
    await client.get('health');
    return true;
  } catch {
    return false;
  } finally {
    client.close();
  }
}

async function startOnce(extraArgs: string[], readyTimeoutMs: number): Promise<TestServer> {
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `coord-recipes-${TARGET}-`));
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
  const [cmd, argv] = TARGET === 'coord' ? [process.execPath, [COORD_MAIN, ...args]] : [ETCD_BIN, args];
  const child: ChildProcess = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (b: Buffer) => {
    log = (log + b.toString()).slice(-40000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const destroy = async () => {
    if (!exited) {
      child.kill('SIGKILL');
      await exitedPromise;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const endpoint = `127.0.0.1:${clientPort}`;
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline && !exited) {
    if (await healthy(TARGET, clientUrl, endpoint)) return { kind: TARGET, endpoint, clientUrl, output: () => log, destroy };
    await sleep(100);
  }
  await destroy();
  throw new Error(`${TARGET} did not become healthy on ${clientUrl}:\n${log}`);
}

/** Start a member; retried with new ports in case another process took one we picked. */
export async function startServer(extraArgs: string[] = [], readyTimeoutMs = 20000): Promise<TestServer> {
  if (TARGET === 'etcd' && !fs.existsSync(ETCD_BIN)) throw new Error(`etcd not found at ${ETCD_BIN} (install the etcd-server package)`);
  if (TARGET === 'coord' && !fs.existsSync(COORD_MAIN)) throw new Error(`coord server not built: ${COORD_MAIN} (npm run build)`);
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(extraArgs, readyTimeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
