/**
 * Start a real etcd (the Debian `etcd-server` 3.4 at /usr/bin/etcd, or $ETCD_BIN) as a
 * single-member cluster on free loopback ports with a temporary data dir; wait until it
 * answers /health; stop it (SIGKILL, then remove the data dir) when the suite ends.
 * (Same pattern as packages/client/test/helpers/etcd.ts, kept separate so the packages'
 * suites do not depend on each other.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';

export interface EtcdProcess {
  /** `127.0.0.1:P`, usable as a client endpoint. */
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** A loopback port that was free a moment ago. */
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

async function startOnce(readyTimeoutMs: number): Promise<EtcdProcess> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-cli-etcd-'));
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
  ];
  const child = spawn(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-20000);
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
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGKILL');
      await exitedPromise;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline && !exited) {
    if (await healthy(clientUrl)) {
      return { endpoint: `127.0.0.1:${clientPort}`, clientUrl, peerUrl, process: child, output: () => output, stop };
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`etcd did not become healthy on ${clientUrl}:\n${output}`);
}

/** Start etcd; retried in case another process took a port we picked. */
export async function startEtcd(readyTimeoutMs = 20000): Promise<EtcdProcess> {
  if (!fs.existsSync(ETCD_BIN)) throw new Error(`etcd not found at ${ETCD_BIN} (install the etcd-server package)`);
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(readyTimeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
