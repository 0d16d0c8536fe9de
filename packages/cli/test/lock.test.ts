/**
 * Goal: `coord lock` guards a script as documented: CMD runs only while the lock is held,
 * with COORD_LOCK_KEY / COORD_LOCK_REV (fencing token) and etcdctl's ETCD_LOCK_KEY /
 * ETCD_LOCK_REV; coord exits with CMD's status; `etcdctl lock` and `coord lock` exclude each
 * other (same keys); `--try`, `--timeout` and unreachable endpoints end with their documented
 * codes; and when the lock is taken away (the session's lease revoked from outside, the CLI
 * cut off from the server, or the CLI killed) the *whole* process group of CMD (a `sh -c` and
 * its grandchild `sleep`) is terminated, early enough in the cut-off case that it is gone
 * before the server deletes the lock key.
 *
 * Method: run the real binary (bin/run.js) against a real etcd 3.4 started on free ports (and
 * a coord server for the etcdctl interop and revoke cases). CMD is `sh -c` writing its own and
 * its grandchild's pids to a file; liveness is read from /proc (zombies count as gone),
 * independently of the code under test. The lease is found through the lock key's lease field
 * and revoked with etcdctl. The cut-off case runs coord through a TCP proxy that black-holes
 * traffic and compares, with an in-process watch on the key, when the group was gone and when
 * the server deleted the key. No assertions on speed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from '@coord/client';
import { SupervisedExit } from '../src/supervise/exit-codes';
import { startEtcd, freePort, type EtcdProcess } from './helpers/etcd';
import { coord, etcdctl } from './helpers/run';
import {
  coordBg,
  background,
  leaseOfFirstKey,
  readPids,
  running,
  sleep,
  startCoordServer,
  startProxy,
  tmpDir,
  waitFor,
  type CoordServer,
} from './helpers/supervise';

jest.setTimeout(90000);

let etcd: EtcdProcess;
let ep: string[];
let dir: string;

beforeAll(async () => {
  etcd = await startEtcd();
  ep = ['--endpoints', etcd.endpoint];
  dir = tmpDir('lock-test');
});

afterAll(async () => {
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** `sh -c` that writes its pid and its grandchild's (a `sleep`) to `file`, then waits. */
const groupScript = (file: string, trap = ''): string[] => ['sh', '-c', `${trap}echo $$ > ${file}; sleep 1000 & echo $! >> ${file}; wait`];

describe('coord lock -- CMD', () => {
  it('runs CMD with the lock key and fencing token in its environment, exits with its status, then releases', async () => {
    const script = `echo "$COORD_LOCK_KEY $COORD_LOCK_REV $ETCD_LOCK_KEY $ETCD_LOCK_REV"; etcdctl --endpoints ${etcd.endpoint} get "$COORD_LOCK_KEY" -w json; exit 7`;
    const r = await coord([...ep, 'lock', 'job', '--', 'sh', '-c', script]);
    expect(r.code).toBe(7);
    const [envLine, json] = r.stdout.toString().split('\n');
    const [key, rev, etcdKey, etcdRev] = envLine.split(' ');
    expect(key).toMatch(/^job\/[0-9a-f]+$/);
    expect(etcdKey).toBe(key);
    // The fencing token is the key's create revision, as the server reports it.
    expect(rev).toBe(/"create_revision":(\d+)/.exec(json)?.[1]);
    expect(BigInt(etcdRev)).toBeGreaterThanOrEqual(BigInt(rev));
    const after = await etcdctl([...ep, 'get', '--prefix', 'job/']);
    expect(after.stdout.toString()).toBe('');
  });

  it('serializes two holders: the second CMD starts after the first ended, with a larger fencing token', async () => {
    const log = path.join(dir, 'serial.log');
    const cmd = ['sh', '-c', `echo "start $COORD_LOCK_REV" >> ${log}; sleep 0.3; echo "end $COORD_LOCK_REV" >> ${log}`];
    const [a, b] = await Promise.all([coord([...ep, 'lock', 'serial', '--', ...cmd]), coord([...ep, 'lock', 'serial', '--', ...cmd])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['start', 'end', 'start', 'end']);
    expect(lines[0].split(' ')[1]).toBe(lines[1].split(' ')[1]);
    expect(BigInt(lines[2].split(' ')[1])).toBeGreaterThan(BigInt(lines[0].split(' ')[1]));
  });

  it('SIGTERM to coord goes to the whole group; coord exits with CMD\'s status and releases the lock', async () => {
    const pids = path.join(dir, 'term.pids');
    const p = coordBg([...ep, 'lock', 'term', '--', ...groupScript(pids, 'trap "exit 3" TERM; ')]);
    const [sh, grandchild] = await readPids(pids, 2);
    expect(running(sh) && running(grandchild)).toBe(true);
    p.kill('SIGTERM');
    expect(await p.exited).toBe(3);
    expect([running(sh), running(grandchild)]).toEqual([false, false]);
    expect((await etcdctl([...ep, 'get', '--prefix', 'term/'])).stdout.toString()).toBe('');
  });

  it('CMD not found exits 127; an unreachable cluster exits 121', async () => {
    const nf = await coord([...ep, 'lock', 'nf', '--', 'no-such-command-xyz']);
    expect([nf.code, nf.stderr]).toEqual([SupervisedExit.NotFound, 'Error: no-such-command-xyz: command not found\n']);
    const port = await freePort();
    const down = await coord(['--endpoints', `127.0.0.1:${port}`, '--dial-timeout', '500ms', '--command-timeout', '500ms', 'lock', 'x', '--', 'true']);
    expect(down.code).toBe(SupervisedExit.CannotConnect);
    expect(down.stderr).toBe('Error: context deadline exceeded\n');
  });
});

describe('taking the lock away terminates the whole process group', () => {
  it('coord killed with SIGKILL: its watchdog terminates the group while the lease still holds the lock', async () => {
    const pids = path.join(dir, 'kill9.pids');
    const p = coordBg([...ep, 'lock', '--ttl', '30', 'orphan', '--', ...groupScript(pids)]);
    const [sh, grandchild] = await readPids(pids, 2);
    p.kill('SIGKILL');
    await p.exited;
    await waitFor('the orphaned group to be terminated', () => !running(sh) && !running(grandchild));
    // The lock key is still there (TTL 30): the group was ended before anyone else could lock.
    expect((await etcdctl([...ep, 'get', '--prefix', 'orphan/', '--keys-only'])).stdout.toString()).toMatch(/^orphan\//);
    await etcdctl([...ep, 'lease', 'revoke', await leaseOfFirstKey(etcd.endpoint, 'orphan/')]);
  });

  it('cut off from the server: the group is gone before the server deletes the lock key, exit 123', async () => {
    const proxy = await startProxy(etcd.endpoint);
    const client = new Client({ endpoints: [etcd.endpoint] });
    try {
      const pids = path.join(dir, 'cut.pids');
      // TTL 4 s, grace 500 ms: declared lost 900 ms before the lease could expire.
      const p = coordBg(['--endpoints', proxy.endpoint, 'lock', '--ttl', '4', '--grace', '500ms', 'cut', '--', ...groupScript(pids)]);
      const [sh, grandchild] = await readPids(pids, 2);
      const kv = (await client.getRange({ key: 'cut/', prefix: true })).kvs[0];
      expect(kv).toBeDefined();
      let keyDeletedAt = 0;
      const watcher = client.watch({ key: kv.key, startRevision: kv.modRevision + 1n });
      void (async () => {
        for await (const res of watcher) if (res.events.some((e) => e.type === 'delete')) keyDeletedAt = Date.now();
      })().catch(() => undefined);
      proxy.cut();
      const groupGoneAt = await waitFor('the group to be terminated', () => (!running(sh) && !running(grandchild) ? Date.now() : 0), 30000, 5);
      expect(await p.exited).toBe(SupervisedExit.Lost);
      await waitFor('the server to expire the lease', () => keyDeletedAt, 30000);
      expect(groupGoneAt).toBeLessThan(keyDeletedAt);
      watcher.cancel();
    } finally {
      client.close();
      await proxy.close();
    }
  });
});

// Against etcd every case; against a coord server the two that exercise it differently.
describe.each([
  ['etcd 3.4', () => Promise.resolve(undefined as CoordServer | undefined), true],
  ['a coord server', () => startCoordServer(), false],
])('etcdctl lock and coord lock exclude each other (%s)', (_name, start, full) => {
  let server: CoordServer | undefined;
  let e: string[];

  beforeAll(async () => {
    server = await start();
    e = ['--endpoints', server ? server.endpoint : etcd.endpoint];
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('while etcdctl holds it: coord --try exits 122, --timeout exits 124, a waiting coord runs CMD once etcdctl releases', async () => {
    const holder = background('/usr/bin/etcdctl', [...e, 'lock', 'shared']);
    await holder.waitOut(/^shared\/[0-9a-f]+\n/);
    const held = await coord([...e, 'lock', '--try', 'shared', '--', 'true']);
    expect([held.code, held.stderr]).toEqual([SupervisedExit.Held, 'Error: mutex: Locked by another session (lock shared)\n']);
    const late = await coord([...e, 'lock', '--timeout', '0.5', 'shared', '--', 'true']);
    expect([late.code, late.stderr]).toEqual([SupervisedExit.Timeout, 'Error: timed out waiting to acquire lock shared\n']);
    const waiter = coordBg([...e, 'lock', 'shared', '--', 'echo', 'coord has it']);
    await sleep(1000);
    expect(waiter.stdout()).toBe('');
    holder.kill('SIGINT');
    expect(await holder.exited).toBe(0);
    expect(await waiter.exited).toBe(0);
    expect(waiter.stdout()).toBe('coord has it\n');
  });

  if (full) it('while coord holds it (printing the key as etcdctl does), etcdctl lock waits until coord is interrupted', async () => {
    const holder = coordBg([...e, 'lock', 'shared2']);
    const [printed] = await holder.waitOut(/^shared2\/[0-9a-f]+\n\n/);
    const waiter = background('/usr/bin/etcdctl', [...e, 'lock', 'shared2', 'echo', 'etcdctl has it']);
    await sleep(1000);
    expect(waiter.stdout()).toBe('');
    const ref = await etcdctl([...e, 'get', printed.trim()]);
    expect(ref.stdout.toString()).toBe(printed);
    holder.kill('SIGINT');
    expect(await holder.exited).toBe(0);
    expect(await waiter.exited).toBe(0);
    expect(waiter.stdout()).toBe('etcdctl has it\n');
  });

  it('lease revoked: the group is terminated and coord exits 123', async () => {
    const pids = path.join(dir, `revoke-${server ? 'coord' : 'etcd'}.pids`);
    const p = coordBg([...e, 'lock', 'victim2', '--', ...groupScript(pids)]);
    const [sh, grandchild] = await readPids(pids, 2);
    await etcdctl([...e, 'lease', 'revoke', await leaseOfFirstKey(e[1], 'victim2/')]);
    expect(await p.exited).toBe(SupervisedExit.Lost);
    expect(p.stderr()).toMatch(/^Error: lock victim2 lost: /);
    expect([running(sh), running(grandchild)]).toEqual([false, false]);
  });
});
