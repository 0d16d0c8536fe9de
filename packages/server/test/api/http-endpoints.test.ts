/**
 * Goal: etcd's plain-HTTP endpoints answer on the client port next to gRPC (one listener):
 * /health, /version and /metrics as etcd 3.4 names and shapes them; unknown paths 404;
 * gRPC on the same port keeps working (the first bytes decide the protocol).
 * Method: an in-process single member on a free port; node's http client and a grpc-js
 * client against the same port.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';
import { parseFlags } from '../../src/member/config';
import { startServer, type RunningServer } from '../../src/server';

let running: RunningServer;
let dir: string;
let port: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-http1-'));
  const config = parseFlags(['--name', 'h1', '--data-dir', path.join(dir, 'd'), '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:0']);
  running = await startServer(config);
  port = Number(running.addresses[0].split(':')[1]);
});

afterAll(async () => {
  await running.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function get(p: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
      })
      .on('error', reject);
  });
}

test('/health, /version, /metrics as etcd answers them; 404 elsewhere', async () => {
  expect(await get('/health')).toMatchObject({ status: 200, body: '{"health":"true"}' });
  expect(JSON.parse((await get('/version')).body)).toEqual({ etcdserver: '3.4.0', etcdcluster: '3.4.0' });
  const metrics = await get('/metrics');
  expect(metrics.status).toBe(200);
  expect(metrics.body).toMatch(/^etcd_server_has_leader 1$/m);
  expect(metrics.body).toMatch(/^etcd_server_is_leader 1$/m);
  expect(metrics.body).toMatch(/^# TYPE etcd_network_snapshot_receive_success counter$/m);
  expect((await get('/nope')).status).toBe(404);
});

test('gRPC still works on the same port, and the metrics follow the writes', async () => {
  const def = grpc.loadPackageDefinition(packageDefinition()) as unknown as { etcdserverpb: { KV: grpc.ServiceClientConstructor } };
  const kv = new def.etcdserverpb.KV(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const before = Number(/^etcd_debugging_mvcc_current_revision (\d+)$/m.exec((await get('/metrics')).body)![1]);
    const res = await new Promise<{ header: { revision: string } }>((resolve, reject) =>
      (kv as unknown as { Put(r: unknown, cb: (e: Error | null, r: { header: { revision: string } }) => void): void }).Put({ key: Buffer.from('k'), value: Buffer.from('v') }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(Number(res.header.revision)).toBe(before + 1);
    expect((await get('/metrics')).body).toMatch(new RegExp(`^etcd_debugging_mvcc_current_revision ${before + 1}$`, 'm'));
  } finally {
    kv.close();
  }
});
