#!/usr/bin/env node
/**
 * Run the deterministic Raft simulator over many seeds, from compiled code.
 *
 *   node scripts/sim.js N [start]      run seeds start..start+N-1 (default start 1)
 *   SIM_WORKERS=k                      processes in parallel (default: number of CPUs)
 *   SIM_TIME_BUDGET_S=s                stop handing out seeds after s seconds (reports how many ran)
 *   SIM_SEED=N node scripts/sim.js     replay one seed with a trace (SIM_TRACE_FILE=path keeps all of it)
 *
 * Compiles packages/server/src/raft and packages/server/test/sim with tsc into a temporary
 * directory, then hands seeds in small batches to worker processes. Prints the count, the
 * time and every failing seed (each replays with SIM_SEED=N); exits 1 if any seed failed.
 */
'use strict';
const { execFileSync, fork } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');

const root = path.resolve(__dirname, '..');
const outDir = path.join(os.tmpdir(), 'coord-sim-build');
const BATCH_SEEDS = 25;

function compile() {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  execFileSync(
    process.execPath,
    [
      tsc,
      '--outDir', outDir,
      '--rootDir', path.join(root, 'packages/server'),
      '--target', 'ES2022',
      '--module', 'node16',
      '--moduleResolution', 'node16',
      '--strict',
      '--skipLibCheck',
      '--types', 'node',
      path.join(root, 'packages/server/test/sim/simulator.ts'),
    ],
    { stdio: 'inherit' },
  );
  return require(path.join(outDir, 'test/sim/simulator.js'));
}

if (process.env.SIM_WORKER === '1') {
  const sim = require(path.join(outDir, 'test/sim/simulator.js'));
  process.on('message', (msg) => {
    if (msg.stop) process.exit(0);
    const failures = [];
    const totals = {};
    let inconclusive = 0;
    for (const seed of msg.seeds) {
      try {
        const st = sim.runSeed(seed);
        if (st.linearizabilityInconclusive) inconclusive++;
        for (const [k, v] of Object.entries(st)) if (typeof v === 'number' && k !== 'seed') totals[k] = (totals[k] ?? 0) + v;
      } catch (e) {
        failures.push(String(e && e.message ? e.message : e).split('\n')[0]);
      }
    }
    process.send({ ran: msg.seeds.length, failures, totals, inconclusive });
  });
  return;
}

function main() {
  const sim = compile();
  if (process.env.SIM_SEED !== undefined) {
    const seed = Number(process.env.SIM_SEED);
    try {
      console.log(JSON.stringify(sim.runSeed(seed, { trace: true })));
    } catch (e) {
      if (e.trace && process.env.SIM_TRACE_FILE) fs.writeFileSync(process.env.SIM_TRACE_FILE, e.trace.join('\n') + '\n');
      else if (e.trace) console.log(e.trace.slice(-400).join('\n'));
      console.log(e.message);
      process.exit(1);
    }
    return;
  }
  const n = Number(process.argv[2] ?? 100);
  const start = Number(process.argv[3] ?? 1);
  if (!Number.isInteger(n) || n <= 0 || !Number.isInteger(start)) {
    console.error('usage: node scripts/sim.js N [start]');
    process.exit(2);
  }
  const workers = Math.max(1, Number(process.env.SIM_WORKERS ?? os.cpus().length));
  const budgetMs = process.env.SIM_TIME_BUDGET_S === undefined ? Infinity : Number(process.env.SIM_TIME_BUDGET_S) * 1000;
  const t0 = Date.now();
  let next = start;
  const end = start + n;
  let ran = 0;
  let inconclusive = 0;
  const failures = [];
  const totals = {};
  let live = 0;

  const handOut = (child) => {
    if (next >= end || Date.now() - t0 >= budgetMs) {
      child.send({ stop: true });
      return;
    }
    const seeds = [];
    for (; seeds.length < BATCH_SEEDS && next < end; next++) seeds.push(next);
    child.send({ seeds });
  };

  for (let w = 0; w < workers; w++) {
    const child = fork(__filename, [], { env: { ...process.env, SIM_WORKER: '1' } });
    live++;
    child.on('message', (r) => {
      ran += r.ran;
      inconclusive += r.inconclusive;
      failures.push(...r.failures);
      for (const [k, v] of Object.entries(r.totals)) totals[k] = (totals[k] ?? 0) + v;
      handOut(child);
    });
    child.on('exit', (code) => {
      if (code !== 0) failures.push(`worker exited with code ${code}`);
      if (--live === 0) report();
    });
    handOut(child);
  }

  function report() {
    const secs = (Date.now() - t0) / 1000;
    const last = next - 1;
    console.log(`seeds ${start}..${last}: ${ran} run, ${failures.length} failed, ${secs.toFixed(1)} s (${workers} workers), ${totals.putsAcked ?? 0} acknowledged writes checked, ${inconclusive} linearizability checks inconclusive`);
    console.log(`totals over passing seeds: ${Object.entries(totals).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    for (const f of failures.sort()) console.log(`  FAIL ${f}`);
    process.exit(failures.length > 0 ? 1 : 0);
  }
}

main();
