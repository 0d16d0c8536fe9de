/**
 * Goal: `coord service register` keeps an instance registered while it runs (or while its CMD
 * runs), `service list` shows it (simple and JSON), `service watch` reports it coming and
 * going, and after `kill -9` of the registering process the instance vanishes within its TTL.
 *
 * Method: the real binary against a real etcd 3.4. The vanishing is timed by an in-process
 * watch on the instance's key (started before the kill), against the TTL plus etcd's
 * expiry-check period (it revokes expired leases every 500 ms) and some slack; this bound is
 * the feature under test, not a speed goal.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from '@coord/client';
import { startEtcd, type EtcdProcess } from './helpers/etcd';
import { coord } from './helpers/run';
import { coordBg, tmpDir, waitFor } from './helpers/supervise';

jest.setTimeout(90000);

let etcd: EtcdProcess;
let ep: string[];

beforeAll(async () => {
  etcd = await startEtcd();
  ep = ['--endpoints', etcd.endpoint];
});

afterAll(async () => {
  await etcd?.stop();
});

describe('coord service', () => {
  it('register, list, watch; after kill -9 the instance vanishes within its TTL', async () => {
    const watch = coordBg([...ep, 'service', 'watch', 'api']);
    const ttlSeconds = 2;
    const reg = coordBg([...ep, 'service', 'register', 'api', '--addr', '10.0.0.7:8080', '--id', 'api-1', '--meta', 'zone=eu-1', '--meta', 'tags=a,b', '--ttl', String(ttlSeconds)]);
    await reg.waitOut(/^\/coord\/services\/api\/api-1\n\{.*\}\n$/);
    expect(JSON.parse(reg.stdout().split('\n')[1])).toEqual({
      service: 'api',
      id: 'api-1',
      address: '10.0.0.7',
      port: 8080,
      metadata: { zone: 'eu-1', tags: 'a,b' },
    });

    const simple = await coord([...ep, 'service', 'list', 'api']);
    expect([simple.stdout.toString(), simple.code]).toEqual(['api-1 10.0.0.7:8080 zone=eu-1,tags=a,b\n', 0]);
    const json = await coord([...ep, 'service', 'list', 'api', '-w', 'json']);
    const listed = JSON.parse(json.stdout.toString());
    expect(listed.instances).toEqual([expect.objectContaining({ id: 'api-1', address: '10.0.0.7', port: 8080, key: '/coord/services/api/api-1' })]);
    expect(listed.revision).toMatch(/^\d+$/);
    await watch.waitOut(/^ADDED api-1 10\.0\.0\.7:8080 zone=eu-1,tags=a,b\n/);

    const client = new Client({ endpoints: [etcd.endpoint] });
    try {
      const kv = await client.get('/coord/services/api/api-1');
      expect(kv).toBeDefined();
      let deletedAt = 0;
      const watcher = client.watch({ key: '/coord/services/api/api-1', startRevision: kv!.modRevision + 1n });
      void (async () => {
        for await (const res of watcher) if (res.events.some((e) => e.type === 'delete')) deletedAt = Date.now();
      })().catch(() => undefined);
      reg.kill('SIGKILL');
      await reg.exited;
      const killedAt = Date.now();
      await waitFor('the instance to vanish', () => deletedAt, 30000, 20);
      watcher.cancel();
      // The lease expires at most TTL after its last keep-alive, which came before the kill;
      // etcd checks for expired leases every 500 ms; 1.5 s more for a loaded machine.
      expect(deletedAt - killedAt).toBeLessThanOrEqual(ttlSeconds * 1000 + 500 + 1500);
    } finally {
      client.close();
    }
    expect((await coord([...ep, 'service', 'list', 'api'])).stdout.toString()).toBe('');
    await watch.waitOut(/\nREMOVED api-1 10\.0\.0\.7:8080 zone=eu-1,tags=a,b\n$/);
    watch.kill('SIGINT');
    expect(await watch.exited).toBe(0);
  });

  it('register -- CMD: registered while CMD runs, deregistered after; exits with CMD\'s status', async () => {
    const dir = tmpDir('service-test');
    const flag = path.join(dir, 'done');
    try {
      const r = coordBg([
        ...ep, 'service', 'register', 'worker', '--addr', '127.0.0.1:9000', '--',
        'sh', '-c', 'echo "in $COORD_SERVICE_ID"; while [ ! -e "$0" ]; do sleep 0.05; done; exit 4', flag,
      ]);
      await r.waitOut(/in 127\.0\.0\.1:9000\n/);
      expect((await coord([...ep, 'service', 'list', 'worker'])).stdout.toString()).toBe('127.0.0.1:9000 127.0.0.1:9000\n');
      fs.writeFileSync(flag, '');
      expect(await r.exited).toBe(4);
      expect((await coord([...ep, 'service', 'list', 'worker'])).stdout.toString()).toBe('');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
