/**
 * Goal: mutual exclusion holds across processes: contenders in several OS processes and in
 * the test process take turns; no two critical sections overlap, fencing tokens strictly
 * increase in the order the sections ran, and every guarded read-modify-write of a shared
 * counter succeeds (so the final count equals the number of sections).
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); three child processes run
 * fixtures/lock-worker.js (the built package: `npm run build` first) while two in-process
 * contenders do the same. Sections are timed with the machine's monotonic clock
 * (`process.hrtime`, CLOCK_MONOTONIC, shared by all processes), so intervals compare across
 * processes.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, compare, op } from '@coord/client';
import { Mutex, Session } from '../src';
import { startServer, type TestServer } from './helpers/server';
import { now, sleep } from './helpers/util';

const WORKER = path.join(__dirname, 'fixtures', 'lock-worker.js');
const DIST = path.resolve(__dirname, '../dist/index.js');

let server: TestServer;
let client: Client;

beforeAll(async () => {
  if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: run npm run build first`);
  server = await startServer();
  client = new Client({ endpoints: [server.endpoint] });
});

afterAll(async () => {
  client?.close();
  await server?.destroy();
});

interface Section {
  who: string;
  token: bigint;
  start: bigint;
  end: bigint;
  ok: boolean;
}

function runWorker(who: string, rounds: number): Promise<Section[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, server.endpoint, 'procs/lock', String(rounds), 'procs/counter', who], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`worker ${who} exited ${code}: ${err}`));
      resolve(
        out
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, string | boolean>)
          .map((r) => ({ who: String(r.who), token: BigInt(r.token as string), start: BigInt(r.start as string), end: BigInt(r.end as string), ok: r.ok === true })),
      );
    });
  });
}

async function inProcess(who: string, rounds: number): Promise<Section[]> {
  const session = await Session.create(client, { ttl: 10 });
  const mutex = new Mutex(session, 'procs/lock');
  const out: Section[] = [];
  for (let r = 0; r < rounds; r++) {
    await mutex.withLock(async ({ fencingToken }) => {
      const start = now();
      const kv = await client.get('procs/counter');
      const n = Number(kv ? kv.valueString() : '0');
      await sleep(Math.random() * 5);
      const res = await mutex.txnIfOwner([op.put('procs/counter', String(n + 1))], { compare: [compare.value('procs/counter', '=', String(n))] });
      out.push({ who, token: fencingToken, start, end: now(), ok: res.succeeded });
    });
  }
  await session.close();
  return out;
}

it('sections of 3 processes and 2 in-process contenders never overlap; tokens strictly increase', async () => {
  const rounds = 6;
  await client.put('procs/counter', '0');
  const results = await Promise.all([
    runWorker('p1', rounds),
    runWorker('p2', rounds),
    runWorker('p3', rounds),
    inProcess('t1', rounds),
    inProcess('t2', rounds),
  ]);
  const sections = results.flat().sort((a, b) => (a.start < b.start ? -1 : 1));
  expect(sections).toHaveLength(5 * rounds);
  expect(sections.every((s) => s.ok)).toBe(true);
  for (let i = 1; i < sections.length; i++) {
    expect(sections[i].start).toBeGreaterThan(sections[i - 1].end);
    expect(sections[i].token).toBeGreaterThan(sections[i - 1].token);
  }
  // Each process really took part in the interleaving.
  expect(new Set(sections.map((s) => s.who)).size).toBe(5);
  expect((await client.get('procs/counter'))!.valueString()).toBe(String(5 * rounds));
  expect((await client.getRange({ key: 'procs/lock/', prefix: true })).kvs).toHaveLength(0);
});
