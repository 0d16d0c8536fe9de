#!/usr/bin/env node
/**
 * Leader failover time of a 3-member cluster under write load (for docs/BENCHMARKS.md).
 *
 *   node scripts/failover-time.js [--kind etcd|coord] [--rounds N] [--writers N]
 *                                 [--heartbeat-interval MS] [--election-timeout MS]
 *
 * Defaults: --kind etcd, --rounds 10, --writers 10, --heartbeat-interval 100,
 * --election-timeout 1000. For coord, build first (npm run build): the members run
 * packages/server/dist/main.js.
 *
 * Starts a 3-member cluster of that kind on loopback (test/harness/cluster.ts, the same
 * harness as test/cluster/), runs a WriteLoad (test/harness/write-load.ts: N writers, 1 s
 * per put, round-robin over the three endpoints, a failed put retried on the next), and
 * N times: SIGKILLs the leader, measures (test/harness/failover.ts)
 *   elected = kill -> a majority of the survivors agree on a new leader (polled every 50 ms)
 *   gap     = kill -> first acknowledged put among those sent after the old leader died
 * then restarts the killed member on its data dir and waits until it has caught up and the
 * load flows through all three again before the next round. Prints every round and
 * min / median / max of both, as a markdown table. Exits 1 if a round fails.
 *
 * The harness is TypeScript; it is compiled with tsc into node_modules/.cache/ (so that
 * @coord/proto and @grpc/grpc-js resolve from the repo's node_modules) before it runs.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'node_modules', '.cache', 'coord-failover-time');
const HARNESS = ['cluster.ts', 'write-load.ts', 'failover.ts'];

function parseArgs(argv) {
  const opts = { kind: 'etcd', rounds: 10, writers: 10, heartbeatMs: 100, electionMs: 1000 };
  const names = { '--kind': 'kind', '--rounds': 'rounds', '--writers': 'writers', '--heartbeat-interval': 'heartbeatMs', '--election-timeout': 'electionMs' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const key = names[flag];
    if (!key) throw new Error(`unknown argument ${argv[i]} (see the header of scripts/failover-time.js)`);
    const value = inline !== undefined ? inline : argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (key === 'kind') {
      if (value !== 'etcd' && value !== 'coord') throw new Error(`--kind must be etcd or coord, got ${value}`);
      opts.kind = value;
    } else {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${value}`);
      opts[key] = n;
    }
  }
  return opts;
}

function compile() {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  fs.rmSync(outDir, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [
      tsc,
      '--outDir', outDir,
      '--rootDir', path.join(root, 'test', 'harness'),
      '--target', 'ES2022',
      '--module', 'node16',
      '--moduleResolution', 'node16',
      '--strict',
      '--skipLibCheck',
      '--types', 'node',
      ...HARNESS.map((f) => path.join(root, 'test', 'harness', f)),
    ],
    { stdio: 'inherit', cwd: root },
  );
}

function version(kind) {
  try {
    if (kind === 'etcd') return execFileSync(process.env.ETCD_BIN || 'etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0];
    return `coord ${execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()}`;
  } catch {
    return kind;
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // coord.ts finds main.js relative to its own file, which is compiled elsewhere: say where.
  process.env.COORD_MAIN = process.env.COORD_MAIN || path.join(root, 'packages', 'server', 'dist', 'main.js');
  compile();
  const { Cluster, waitFor } = require(path.join(outDir, 'cluster.js'));
  const { WriteLoad } = require(path.join(outDir, 'write-load.js'));
  const { killLeader, summary } = require(path.join(outDir, 'failover.js'));

  console.log(`failover-time: ${opts.kind} (${version(opts.kind)}), 3 members, ${opts.rounds} rounds, ${opts.writers} writers, ` +
    `--heartbeat-interval ${opts.heartbeatMs} --election-timeout ${opts.electionMs}; ${os.cpus().length} CPUs, ${os.cpus()[0].model}`);
  const cluster = await Cluster.start({ kind: opts.kind, size: 3, heartbeatMs: opts.heartbeatMs, electionMs: opts.electionMs });
  const load = new WriteLoad(() => cluster.allEndpoints(), { prefix: `/failover-time/${Date.now()}/`, writers: opts.writers, timeoutMs: 1000 }).start();
  const rounds = [];
  let failed = false;
  try {
    await load.waitAcks(100, { timeoutMs: 30_000 });
    for (let round = 1; round <= opts.rounds; round++) {
      const f = await killLeader(cluster, load, { timeoutMs: 30_000 });
      rounds.push(f);
      console.log(`round ${String(round).padStart(2)}: killed ${f.killed.name}, new leader ${f.newLeader.name} (term ${f.termBefore} -> ${f.termAfter}): elected ${f.electedMs} ms, first write ${f.gapMs} ms`);
      await f.killed.restart();
      const back = Date.now();
      // Caught up and serving again: its own store reaches the cluster's revision, and a put
      // through it is acknowledged.
      const rev = await cluster.revision();
      await waitFor(async () => (BigInt((await f.killed.kv().range('\0', { serializable: true }, 1000)).header.revision) >= rev ? true : undefined), 30_000, () => `${f.killed.name} to catch up`);
      await waitFor(async () => (load.sentSince(back).some((a) => a.endpoint === f.killed.endpoint) ? true : undefined), 30_000, () => `a put through ${f.killed.name}`);
    }
  } catch (err) {
    failed = true;
    console.error(`failover-time: ${err.stack || err}\n${cluster.logs(2000)}`);
  } finally {
    await load.stop();
    await cluster.destroy();
  }
  if (rounds.length > 0) {
    const e = summary(rounds.map((r) => r.electedMs));
    const g = summary(rounds.map((r) => r.gapMs));
    console.log('');
    console.log(`| ${opts.kind} (${rounds.length} leader SIGKILLs) | min | median | max |`);
    console.log('|---|---:|---:|---:|');
    console.log(`| kill -> new leader agreed (ms) | ${e.min} | ${e.median} | ${e.max} |`);
    console.log(`| kill -> first acknowledged write (ms) | ${g.min} | ${g.median} | ${g.max} |`);
    console.log(`\n${load.acks.length} puts acknowledged, ${load.failures} failed or timed out.`);
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
