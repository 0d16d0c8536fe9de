/**
 * WAL micro-benchmark (not a test: nothing here asserts speed).
 * Goal: the figures quoted at the top of src/storage/wal.ts.
 * Method: build first (`npx tsc -b packages/server`), then
 *   node packages/server/test/storage/wal-bench.js [seconds-per-run] [rounds]
 * Runs in a temp dir under os.tmpdir(): (1) one appender doing append(1 entry)+sync in
 * sequence; (2) 1000 concurrent appenders, each looping append(1 entry)+await sync();
 * (3) one appender writing batches of 1000 entries; with and without preallocation.
 */
'use strict';
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { Wal } = require('../../dist/storage/wal.js');

const seconds = Number(process.argv[2] ?? 3);
const ENTRY_BYTES = 200;

async function withWal(preallocate, fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-bench-'));
  const wal = await Wal.create(path.join(dir, 'wal'), { memberId: 1n, clusterId: 2n }, { preallocate });
  try {
    return await fn(wal);
  } finally {
    await wal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function entryMaker(wal) {
  const data = Buffer.alloc(ENTRY_BYTES, 0x61);
  let next = wal.lastIndex() + 1n;
  return () => ({ term: 1n, index: next++, type: 0, data });
}

async function sequential(preallocate) {
  return withWal(preallocate, async (wal) => {
    const mk = entryMaker(wal);
    const end = Date.now() + seconds * 1000;
    let n = 0;
    const t0 = process.hrtime.bigint();
    while (Date.now() < end) {
      wal.append([mk()]);
      await wal.sync();
      n++;
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { rate: n / s, note: `${((s / n) * 1e6).toFixed(0)} us` };
  });
}

async function concurrent(preallocate, clients) {
  return withWal(preallocate, async (wal) => {
    const mk = entryMaker(wal);
    const end = Date.now() + seconds * 1000;
    let n = 0;
    const t0 = process.hrtime.bigint();
    const s0 = wal.stats().fdatasyncs;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (Date.now() < end) {
          wal.append([mk()]);
          await wal.sync();
          n++;
        }
      }),
    );
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const syncs = wal.stats().fdatasyncs - s0;
    return { rate: n / s, note: `${(syncs / s).toFixed(0)} fdatasyncs/s` };
  });
}

async function batches(preallocate, batch) {
  return withWal(preallocate, async (wal) => {
    const mk = entryMaker(wal);
    const end = Date.now() + seconds * 1000;
    let n = 0;
    const t0 = process.hrtime.bigint();
    while (Date.now() < end) {
      const es = [];
      for (let i = 0; i < batch; i++) es.push(mk());
      wal.append(es);
      await wal.sync();
      n += batch;
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { rate: n / s, note: `${((s / (n / batch)) * 1e6).toFixed(0)} us` };
  });
}

(async () => {
  // The machine is shared: run every case several times, alternating the settings,
  // and report median and best (best ≈ the machine unloaded).
  const rounds = Number(process.argv[3] ?? 3);
  const cases = [
    ['sequential append(1 entry)+sync, pairs/s', (p) => sequential(p)],
    ['1000 concurrent appenders, entries/s', (p) => concurrent(p, 1000)],
    ['batches of 1000 entries, entries/s', (p) => batches(p, 1000)],
  ];
  for (const [name, fn] of cases) {
    const got = { on: [], off: [] };
    for (let r = 0; r < rounds; r++) {
      for (const p of [true, false]) {
        const res = await fn(p);
        got[p ? 'on' : 'off'].push(res);
      }
    }
    for (const k of ['on', 'off']) {
      const rates = got[k].map((x) => x.rate).sort((a, b) => a - b);
      console.log(`${name} [prealloc ${k}]: median ${rates[Math.floor(rates.length / 2)].toFixed(0)}, best ${rates[rates.length - 1].toFixed(0)}  (${got[k].map((x) => x.note).join('; ')})`);
    }
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
