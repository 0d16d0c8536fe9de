/**
 * Goal: `coord elect -- CMD` runs CMD on exactly one elector at a time: with two electors only
 * the leader's CMD runs; when the leader's coord is killed (SIGKILL: it can do nothing about
 * it), the other's CMD starts only after the first CMD's whole process group is gone; when
 * leadership is lost (its lease revoked), CMD's group is terminated and coord exits 123; and
 * `elect -l` prints every leader change, including "no leader", for coord's and etcdctl's
 * candidates alike, while a coord candidate prints what `etcdctl elect` prints.
 *
 * Method: the real binary against a real etcd 3.4. CMD is a small node job that, when it
 * starts, looks in /proc for any live process of the process groups of the jobs that started
 * before it and logs "overlap" if it finds one, logs "start ID PGID", keeps a grandchild
 * `sleep` in its group, and logs "stop ID" on SIGTERM. The test reads the log; it asserts the
 * order of events, never their speed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SupervisedExit } from '../src/supervise/exit-codes';
import { startEtcd, type EtcdProcess } from './helpers/etcd';
import { etcdctl } from './helpers/run';
import { background, coordBg, leaseOfFirstKey, running, sleep, tmpDir, waitFor } from './helpers/supervise';

jest.setTimeout(90000);

let etcd: EtcdProcess;
let ep: string[];
let dir: string;
let job: string;

const JOB = `
const fs = require('fs');
const { spawn } = require('child_process');
const [log, id] = process.argv.slice(2);
const live = (pg) => fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).some((n) => {
  try {
    const s = fs.readFileSync('/proc/' + n + '/stat', 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[2]) === pg && f[0] !== 'Z' && f[0] !== 'X';
  } catch { return false; }
});
const earlier = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\\n').filter((l) => l.startsWith('start ')).map((l) => Number(l.split(' ')[2])) : [];
for (const pg of earlier) if (pg !== process.pid && live(pg)) fs.appendFileSync(log, 'overlap ' + id + ' ' + pg + '\\n');
fs.appendFileSync(log, 'start ' + id + ' ' + process.pid + ' ' + process.env.COORD_ELECT_REV + '\\n');
spawn('sleep', ['1000'], { stdio: 'ignore' });
process.on('SIGTERM', () => { fs.appendFileSync(log, 'stop ' + id + '\\n'); process.exit(0); });
setInterval(() => {}, 1000);
`;

beforeAll(async () => {
  etcd = await startEtcd();
  ep = ['--endpoints', etcd.endpoint];
  dir = tmpDir('elect-test');
  job = path.join(dir, 'job.js');
  fs.writeFileSync(job, JOB);
});

afterAll(async () => {
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const logLines = (log: string): string[] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []);

describe('coord elect -- CMD', () => {
  it('one CMD at a time; SIGKILL of the leader\'s coord: the next CMD starts only after the first group is gone; loss exits 123', async () => {
    const log = path.join(dir, 'jobs.log');
    const a = coordBg([...ep, 'elect', '--ttl', '3', 'jobs', 'a', '--', process.execPath, job, log, 'A']);
    await waitFor('A to start', () => logLines(log).some((l) => l.startsWith('start A')));
    const [, , pgidA, revA] = logLines(log)[0].split(' ');
    expect(a.stdout()).toMatch(/^jobs\/[0-9a-f]+\na\n$/);
    const b = coordBg([...ep, 'elect', '--ttl', '3', 'jobs', 'b', '--', process.execPath, job, log, 'B']);
    await sleep(1500);
    expect(logLines(log).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['start A']);

    a.kill('SIGKILL');
    await waitFor('B to start', () => logLines(log).some((l) => l.startsWith('start B')), 30000);
    const lines = logLines(log);
    expect(lines.filter((l) => l.startsWith('overlap'))).toEqual([]);
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['start A', 'stop A', 'start B']);
    expect(running(Number(pgidA))).toBe(false);
    // The new leader's fencing token is larger.
    expect(BigInt(lines[2].split(' ')[3])).toBeGreaterThan(BigInt(revA));

    // Leadership taken away: B's group is terminated, coord exits 123.
    await etcdctl([...ep, 'lease', 'revoke', await leaseOfFirstKey(etcd.endpoint, 'jobs/')]);
    expect(await b.exited).toBe(SupervisedExit.Lost);
    expect(b.stderr()).toMatch(/^Error: elect: leadership of jobs lost: /);
    expect(logLines(log).slice(-1)).toEqual(['stop B']);
    expect(running(Number(lines[2].split(' ')[2]))).toBe(false);
  });
});

describe('coord elect -l', () => {
  it('prints every leader change, including no leader, for coord and etcdctl candidates', async () => {
    const observer = coordBg([...ep, 'elect', '-l', 'obs']);
    const jsonObserver = coordBg([...ep, 'elect', '-l', 'obs', '--json']);
    await observer.waitOut(/^\(no leader\)\n$/);
    await jsonObserver.waitOut(/"leader":null/);

    const first = coordBg([...ep, 'elect', 'obs', 'p1']);
    const [firstOut] = await first.waitOut(/^obs\/[0-9a-f]+\np1\n$/);
    const second = background('/usr/bin/etcdctl', [...ep, 'elect', 'obs', 'p2']);
    await observer.waitOut(/p1\n$/);
    // etcdctl must be a candidate before the leader resigns, or there is a real "no leader" in between.
    await waitFor('the second candidate', async () => {
      const keys = await etcdctl([...ep, 'get', '--prefix', 'obs/', '--keys-only']);
      return keys.stdout.toString().split('\n').filter(Boolean).length === 2;
    });

    first.kill('SIGINT'); // resigns
    expect(await first.exited).toBe(0);
    const [secondOut] = await second.waitOut(/^obs\/[0-9a-f]+\np2\n$/);
    await observer.waitOut(/p2\n$/);
    second.kill('SIGINT');
    expect(await second.exited).toBe(0);
    await observer.waitOut(/\(no leader\)\n$/);
    await waitFor('the JSON observer', () => jsonObserver.stdout().trim().split('\n').length >= 4);

    observer.kill('SIGINT');
    jsonObserver.kill('SIGINT');
    expect(await observer.exited).toBe(0);
    expect(await jsonObserver.exited).toBe(0);
    expect(observer.stdout()).toBe(`(no leader)\n${firstOut}${secondOut}(no leader)\n`);
    const changes = jsonObserver
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { leader: { key: string; proposal: string } | null });
    expect(changes.map((c) => (c.leader ? [c.leader.key, c.leader.proposal] : null))).toEqual([
      null,
      [firstOut.split('\n')[0], 'p1'],
      [secondOut.split('\n')[0], 'p2'],
      null,
    ]);
  });
});
