/**
 * A real `redis-server` for the Redis backend's integration tests: each test file starts its
 * own on a free loopback port, without persistence (`--save '' --appendonly no`), and kills it
 * afterwards. A missing binary fails the test file loudly: CI installs the Debian package
 * `redis-server` (see .ci/run), and a skipped suite would hide a broken backend.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

export interface TestRedis {
  readonly port: number;
  /** A new client of this server (closed by `destroy()`). */
  client(options?: { keyPrefix?: string; port?: number }): Redis;
  /** Everything the server printed, for diagnosing failures. */
  output(): string;
  /** Close every client made by `client()`, kill the server, remove its directory. */
  destroy(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRedis(extraArgs: string[] = []): Promise<TestRedis> {
  if (!fs.existsSync(REDIS_SERVER_BIN)) {
    throw new Error(`redis-server not found at ${REDIS_SERVER_BIN}: install the Debian package redis-server (or set REDIS_SERVER_BIN)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-redis-'));
  // A port can be taken between freePort() and the bind: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(REDIS_SERVER_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = await new Promise<boolean>((resolve) => {
      const deadline = Date.now() + 10_000;
      const onExit = () => resolve(false);
      child.once('exit', onExit);
      const poll = () => {
        if (/Ready to accept connections/.test(out)) {
          child.off('exit', onExit);
          return resolve(true);
        }
        if (Date.now() > deadline) return resolve(false);
        setTimeout(poll, 20);
      };
      poll();
    });
    if (!ready) {
      child.kill('SIGKILL');
      await exited;
      if (/Address already in use/.test(out)) continue;
      throw new Error(`redis-server did not start:\n${out}`);
    }
    const clients: Redis[] = [];
    return {
      port,
      client(options = {}) {
        const c = new Redis({ port: options.port ?? port, host: '127.0.0.1', keyPrefix: options.keyPrefix, maxRetriesPerRequest: 2, lazyConnect: false });
        c.on('error', () => undefined);
        clients.push(c);
        return c;
      },
      output: () => out,
      async destroy() {
        for (const c of clients) c.disconnect();
        child.kill('SIGKILL');
        await exited;
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('redis-server: no free port after 5 attempts');
}

/** Poll `cond` until it holds; fail with `what` after `timeoutMs` (a limit, not a speed claim). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Monotonic nanoseconds. */
export const now = (): bigint => process.hrtime.bigint();
