/**
 * A throwaway real etcd for the bench tests: /usr/bin/etcd (or $ETCD_BIN) on free loopback
 * ports with a temp data dir; ready when /health says so; stop() kills it and removes the
 * dir. Kept local to the bench tests so they depend on nothing but etcd itself.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 500, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 && /"health"\s*:\s*"true"/.test(body)));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

export interface EtcdServer {
  endpoint: string;
  /** The etcd process id (for --server-pid). */
  pid: number;
  stop(): Promise<void>;
}

export async function startEtcd(): Promise<EtcdServer> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-bench-test-'));
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const name = `bench-${process.pid}-${attempt}`;
    const child: ChildProcess = spawn(
      ETCD_BIN,
      [
        '--name', name, '--data-dir', path.join(dir, 'data'),
        '--listen-client-urls', client, '--advertise-client-urls', client,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `${name}=${peer}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8192)));
    let exited = false;
    child.once('exit', () => (exited = true));
    const stop = async (): Promise<void> => {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 20_000;
    while (!exited && Date.now() < deadline) {
      if (await healthy(clientPort)) return { endpoint: `127.0.0.1:${clientPort}`, pid: child.pid!, stop };
      await new Promise((r) => setTimeout(r, 100));
    }
    lastError = log;
    await stop();
  }
  throw new Error(`etcd did not start: ${lastError}`);
}
