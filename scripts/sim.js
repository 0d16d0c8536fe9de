#!/usr/bin/env node
/**
 * Run the deterministic Raft simulator over many seeds, from compiled code.
 *
 *   node scripts/sim.js N [start]      run seeds start..start+N-1 (default start 1)
 *   SIM_WORKERS=k                      processes in parallel (default: number of CPUs)
 *   SIM_SEED=N node scripts/sim.js     replay one seed with a trace (same as the jest test)
 *
 * Compiles packages/server/src/raft and packages/server/test/sim with tsc into a temporary
 * directory, then runs the seeds in worker processes. Prints the count, the time and every
 * failing seed (each replays with SIM_SEED=N); exits 1 if any seed failed.
 */
'use strict';
const { execFileSync, fork } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');

const root = path.resolve(__dirname, '..');
const outDir = path.join(os.tmpdir(), 'coord-sim-build');

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
      '--noEmitOnError', 'false',
      path.join(root, 'packages/server/test/sim/simulator.ts'),
    ],
    { stdio: 'inherit' },
  );
  return require(path.join(outDir, 'test/sim/simulator.js'));
}

if (process.env.SIM_WORKER === '1') {
  const sim = require(path.join(outDir, 'test/sim/simulator.js'));
  process.on('message', ({ seeds }) => {
    const failures = [];
    let acked = 0;
    let inconclusive = 0;
    const totals = {};
    for (const seed of seeds) {
      try {
        const st = sim.runSeed(seed);
        acked += st.putsAcked;
        if (st.linearizabilityInconclusive) inconclusive++;
        for (const [k, v] of Object.entries(st)) if (typeof v === 'number' && k !== 'seed') totals[k] = (totals[k] ?? 0) + v;
      } catch (e) {
        failures.push(String(e && e.message ? e.message : e).split('\n')[0]);
      }
    }
    process.send({ failures, acked, inconclusive, totals }, () => process.exit(0));
  });
  return;
}

function main() {
  const sim = compile();
  if (process.env.SIM_SEED !== undefined) {
    const seed = Number(process.env.SIM_SEED);
    try {
      console.log(JSON.stringify(sim.runSeed(seed, { trace: true }), (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
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
  const t0 = Date.now();
  const chunks = Array.from({ length: workers }, () => []);
  for (let i = 0; i < n; i++) chunks[i % workers].push(start + i);
  let done = 0;
  const failures = [];
  let acked = 0;
  let inconclusive = 0;
  const totals = {};
  for (const seeds of chunks) {
    if (seeds.length === 0) {
      done++;
      continue;
    }
    const child = fork(__filename, [], { env: { ...process.env, SIM_WORKER: '1' } });
    child.on('message', (r) => {
      failures.push(...r.failures);
      acked += r.acked;
      inconclusive += r.inconclusive;
      for (const [k, v] of Object.entries(r.totals)) totals[k] = (totals[k] ?? 0) + v;
    });
    child.on('exit', (code) => {
      if (code !== 0) failures.push(`worker exited with code ${code}`);
      if (++done === chunks.length) report();
    });
    child.send({ seeds });
  }
  function report() {
    const secs = (Date.now() - t0) / 1000;
    console.log(`seeds ${start}..${start + n - 1}: ${n} run, ${failures.length} failed, ${secs.toFixed(1)} s (${workers} workers), ${acked} acknowledged writes checked, ${inconclusive} linearizability checks inconclusive`);
    console.log(`totals over passing seeds: ${Object.entries(totals).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    for (const f of failures.sort()) console.log(`  FAIL ${f}`);
    process.exit(failures.length > 0 ? 1 : 0);
  }
}

main();
