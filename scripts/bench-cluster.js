#!/usr/bin/env node
/**
 * Side-by-side benchmark of 3-member clusters: etcd 3.4 and coord (DESIGN.md §5).
 *
 * Usage: scripts/bench-cluster.sh [--only etcd|coord] [--no-write] [--no-failover] [--rounds N]
 *   (run `npm run build` first: this uses packages/cli/bin/run.js and packages/server/dist)
 *
 * For each kind in turn (etcd, then coord; never both at once):
 *   1. start a fresh 3-member cluster on loopback: free ports, a temp data dir per member
 *      under the OS temp dir, etcd's flags (`--name --data-dir --listen-client-urls
 *      --advertise-client-urls --listen-peer-urls --initial-advertise-peer-urls
 *      --initial-cluster a=..,b=..,c=.. --initial-cluster-token <unique>
 *      --initial-cluster-state new`), default heartbeat (100 ms) and election (1000 ms);
 *   2. wait until every member answers Maintenance.Status naming the same leader, and put
 *      "foo" through the leader (the key the range benches read);
 *   3. the same `coord bench … --json` commands for both kinds:
 *        put    1 client / 1 conn,      --total 1000, against the leader
 *        put    100 clients / 10 conns, --total 20000, against the leader
 *        put    100 clients / 10 conns, --total 20000, --endpoints leader,follower1,follower2
 *               (coord bench dials conn i to endpoint i % endpoints, as etcd's benchmark:
 *               4/3/3 conns and 40/30/30 clients; followers forward their puts to the leader)
 *        range  linearizable, 100/10,   --total 20000, key foo, against a follower
 *        range  serializable, 100/10,   --total 20000, key foo, against a follower
 *      with each member's CPU (from /proc) over every bench, and the leader checked again
 *      after the benches (a change of leader during the run is reported);
 *   4. stop the cluster (SIGTERM, SIGKILL after 10 s) and delete its data.
 * Then `node scripts/failover-time.js --kind <kind> --rounds 5` for each kind (leader
 * SIGKILLed under a 10-writer load: kill -> new leader agreed, kill -> first acknowledged
 * write), min / median / max of both.
 * A markdown section (machine, date, commit, load average before and after, commands, a
 * table etcd | coord | coord/etcd | better) goes to stdout and, between the
 * `bench-cluster` markers, into docs/BENCHMARKS.md under "## 3-member clusters".
 *
 * Bounded: every command has a timeout, the run a budget (7 min: later steps are skipped
 * and reported once it is spent) and a hard deadline (7m40s). Whatever happens, every
 * process started here (members, bench clients, failover-time and its members: it runs in
 * a process group of its own) is killed and every temp dir removed on exit.
 */
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'packages/cli/bin/run.js');
const COORD_MAIN = path.join(ROOT, 'packages/server/dist/main.js');
const FAILOVER = path.join(ROOT, 'scripts/failover-time.js');
const ETCD_BIN = process.env.ETCD_BIN || '/usr/bin/etcd';
const DOC = path.join(ROOT, 'docs/BENCHMARKS.md');
const BEGIN = '<!-- bench-cluster:begin -->';
const END = '<!-- bench-cluster:end -->';
const HEADING = '## 3-member clusters';

const RUN_BUDGET_MS = 420_000;
const RUN_DEADLINE_MS = 460_000;
const RUN_START = Date.now();
const remaining = () => RUN_BUDGET_MS - (Date.now() - RUN_START);
const BENCH_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const FAILOVER_TIMEOUT_MS = 180_000;
const MEMBERS = 3;
const CLK_TCK = 100;

const args = process.argv.slice(2);
const flagValue = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const only = flagValue('--only');
const rounds = Number(flagValue('--rounds') ?? 5);
const write = !args.includes('--no-write');
const failover = !args.includes('--no-failover');
if (only && only !== 'etcd' && only !== 'coord') usage(`--only must be etcd or coord, not ${only}`);
if (!Number.isInteger(rounds) || rounds < 1) usage('--rounds must be a positive integer');
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--only' || a === '--rounds') i++;
  else if (!['--no-write', '--no-failover'].includes(a)) usage(`unknown argument ${a}`);
}

function usage(msg) {
  process.stderr.write(`bench-cluster: ${msg}\nusage: scripts/bench-cluster.sh [--only etcd|coord] [--no-write] [--no-failover] [--rounds N]\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------
// Cleanup: every child (and process group) and temp dir, whatever happens.

const children = new Set();
const groups = new Set();
const tempDirs = new Set();
let cleanedUp = false;
function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`received ${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}
const deadlineTimer = setTimeout(() => {
  log(`run deadline (${RUN_DEADLINE_MS / 1000}s) passed: stopping`);
  cleanup();
  process.exit(3);
}, RUN_DEADLINE_MS);
deadlineTimer.unref();

function log(msg) {
  process.stderr.write(`[bench-cluster ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

function freePort(taken) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => (taken.has(port) ? freePort(taken).then(resolve, reject) : (taken.add(port), resolve(port))));
    });
  });
}

// ---------------------------------------------------------------------------------------
// gRPC: KV calls on the bench's own h2 client, Maintenance.Status on grpc-js.

function benchLib() {
  return require(path.join(ROOT, 'packages/cli/dist/bench/conn.js'));
}

async function kvCall(endpoint, methodName, request, timeoutMs = 1000) {
  const { openConn, kvMethod } = benchLib();
  const method = kvMethod(methodName);
  const c = openConn('h2', endpoint, method);
  try {
    await c.ready(timeoutMs);
    return await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      c.call(method.encode(request), (err, res) => {
        clearTimeout(t);
        if (err) reject(new Error(`${err.code}: ${err.details}`));
        else resolve(method.decode(res));
      });
    });
  } finally {
    c.close();
  }
}

let maintenanceCtor;
function maintenance(endpoint) {
  if (!maintenanceCtor) {
    const grpc = require(require.resolve('@grpc/grpc-js', { paths: [ROOT] }));
    const { packageDefinition } = require(require.resolve('@coord/proto', { paths: [ROOT] }));
    const pkg = grpc.loadPackageDefinition(packageDefinition());
    maintenanceCtor = { grpc, Maintenance: pkg.etcdserverpb.Maintenance };
  }
  const { grpc, Maintenance } = maintenanceCtor;
  return new Maintenance(endpoint, grpc.credentials.createInsecure(), { 'grpc.enable_retries': 0, 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 });
}

/** Maintenance.Status of one member: { id, leader, term } (uint64s as BigInt). */
function status(m, timeoutMs = 700) {
  if (!m.admin) m.admin = maintenance(m.endpoint);
  return new Promise((resolve, reject) => {
    m.admin.Status({}, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve({ id: BigInt(res.header.member_id), leader: BigInt(res.leader), term: BigInt(res.raftTerm) }),
    );
  });
}

/** Every member's Status; the leader once all running members name the same one, else undefined. */
async function agreedLeader(cluster) {
  const st = await Promise.all(cluster.members.map((m) => status(m).catch(() => undefined)));
  st.forEach((s, i) => s && (cluster.members[i].id = s.id));
  if (st.some((s) => !s || s.leader === 0n)) return undefined;
  if (new Set(st.map((s) => s.leader)).size !== 1) return undefined;
  return cluster.members.find((m) => m.id === st[0].leader);
}

// ---------------------------------------------------------------------------------------
// Clusters.

const SERVERS = {
  etcd: () => [ETCD_BIN],
  coord: () => [process.execPath, COORD_MAIN],
};

async function layout(kind) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-cluster-${kind}-`));
  tempDirs.add(dir);
  const taken = new Set();
  const members = [];
  for (let i = 0; i < MEMBERS; i++) {
    const clientPort = await freePort(taken);
    const peerPort = await freePort(taken);
    const name = `${kind}-${i}`;
    members.push({ name, dataDir: path.join(dir, name), clientPort, peerPort, endpoint: `127.0.0.1:${clientPort}`, peerUrl: `http://127.0.0.1:${peerPort}`, logFile: path.join(dir, `${name}.log`) });
  }
  const token = `bench-cluster-${kind}-${process.pid}-${Date.now()}`;
  return { kind, dir, members, token, initialCluster: members.map((m) => `${m.name}=${m.peerUrl}`).join(',') };
}

function flags(cluster, m) {
  const client = `http://127.0.0.1:${m.clientPort}`;
  return [
    '--name', m.name, '--data-dir', m.dataDir,
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
    '--initial-cluster', cluster.initialCluster,
    '--initial-cluster-token', cluster.token,
    '--initial-cluster-state', 'new',
  ];
}

/** Spawns every member together and resolves once they agree on a leader. */
async function startCluster(cluster) {
  const [cmd, ...pre] = SERVERS[cluster.kind]();
  const t0 = Date.now();
  for (const m of cluster.members) {
    const out = fs.openSync(m.logFile, 'a');
    const child = spawn(cmd, [...pre, ...flags(cluster, m)], { stdio: ['ignore', out, out], cwd: cluster.dir });
    fs.closeSync(out);
    children.add(child);
    m.child = child;
    child.once('exit', (code, signal) => {
      m.exit = { code, signal };
      children.delete(child);
    });
  }
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const dead = cluster.members.find((m) => m.exit);
    if (dead) throw new Error(`${dead.name} exited during start-up (${dead.exit.code ?? dead.exit.signal}): ${tail(dead.logFile)}`);
    if (Date.now() > deadline) throw new Error(`no leader agreed within ${READY_TIMEOUT_MS / 1000}s: ${cluster.members.map((m) => `${m.name}: ${tail(m.logFile, 400)}`).join(' | ')}`);
    const leader = await agreedLeader(cluster);
    if (leader) return { leader, readyMs: Date.now() - t0 };
    await sleep(50);
  }
}

async function stopCluster(cluster) {
  await Promise.all(
    cluster.members.map(
      (m) =>
        new Promise((resolve) => {
          if (m.admin) m.admin.close();
          const c = m.child;
          if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
          const timer = setTimeout(() => c.kill('SIGKILL'), STOP_TIMEOUT_MS);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
  fs.rmSync(cluster.dir, { recursive: true, force: true });
  tempDirs.delete(cluster.dir);
}

function tail(file, n = 1500) {
  try {
    return fs.readFileSync(file, 'utf8').slice(-n).trim();
  } catch {
    return '(no log)';
  }
}

/** utime+stime of a process in ms (from /proc), or undefined. */
function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// The bench commands.

const PLACES = { leader: '$LEADER', follower: '$FOLLOWER', all: '$LEADER,$FOLLOWER1,$FOLLOWER2' };

function benchArgs(ep) {
  const v = ['--val-size', '256'];
  const hundred = ['--clients', '100', '--conns', '10', '--total', '20000'];
  return [
    { id: 'put-1', place: 'leader', title: 'put, 1 client / 1 conn, leader', argv: ['put', '--endpoints', ep.leader, '--clients', '1', '--conns', '1', '--total', '1000', ...v] },
    { id: 'put-100', place: 'leader', title: 'put, 100 clients / 10 conns, leader', argv: ['put', '--endpoints', ep.leader, ...hundred, ...v] },
    { id: 'put-100-all', place: 'all', title: 'put, 100 / 10, all 3 endpoints', argv: ['put', '--endpoints', ep.all, ...hundred, ...v] },
    { id: 'range-l', place: 'follower', title: 'range linearizable, 100 / 10, follower', argv: ['range', '--endpoints', ep.follower, ...hundred, '--key', 'foo', '--consistency', 'l'] },
    { id: 'range-s', place: 'follower', title: 'range serializable, 100 / 10, follower', argv: ['range', '--endpoints', ep.follower, ...hundred, '--key', 'foo', '--consistency', 's'] },
  ];
}

function runBench(argv, timeoutMs = BENCH_TIMEOUT_MS) {
  timeoutMs = Math.min(timeoutMs, remaining());
  if (timeoutMs < 5_000) return Promise.resolve({ error: 'skipped: run budget spent' });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'bench', ...argv, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (signal) return resolve({ error: `timed out after ${(timeoutMs / 1000).toFixed(0)}s` });
      try {
        const rep = JSON.parse(stdout);
        if (rep.error) return resolve({ error: rep.error.message || JSON.stringify(rep.error) });
        if (code !== 0) return resolve({ error: `exit ${code}: ${stderr.trim()}` });
        resolve(rep);
      } catch {
        resolve({ error: `exit ${code}: ${(stderr || stdout).trim().slice(0, 500)}` });
      }
    });
  });
}

function showCommand(b) {
  const argv = b.argv.map((a, i) => (b.argv[i - 1] === '--endpoints' ? PLACES[b.place] : a));
  return `coord bench ${argv.join(' ')} --json`;
}

async function measure(kind) {
  const res = { kind, benches: {}, cpu: {}, notes: [], loadStart: loadavg() };
  if (remaining() < 30_000) {
    res.failed = 'skipped: run budget spent';
    return res;
  }
  const cluster = await layout(kind);
  log(`${kind}: starting 3 members (${cluster.members.map((m) => m.endpoint).join(', ')}; data under ${cluster.dir})`);
  try {
    const { leader, readyMs } = await startCluster(cluster);
    res.readyMs = readyMs;
    const followers = cluster.members.filter((m) => m !== leader);
    res.leader = leader.name;
    log(`${kind}: leader ${leader.name} (${leader.id.toString(16)}) after ${readyMs} ms`);
    await kvCall(leader.endpoint, 'Put', { key: Buffer.from('foo'), value: Buffer.alloc(256, 'v') }, 5000);
    const ep = { leader: leader.endpoint, follower: followers[0].endpoint, all: [leader, ...followers].map((m) => m.endpoint).join(',') };
    for (const b of benchArgs(ep)) {
      log(`${kind}: ${showCommand(b)}`);
      const cpu0 = cluster.members.map((m) => cpuMs(m.child.pid));
      const t0 = Date.now();
      res.benches[b.id] = await runBench(b.argv);
      const wall = Date.now() - t0;
      const pct = cluster.members.map((m, i) => {
        const c1 = cpuMs(m.child.pid);
        return c1 !== undefined && cpu0[i] !== undefined ? (100 * (c1 - cpu0[i])) / wall : undefined;
      });
      res.cpu[b.id] = { leader: pct[cluster.members.indexOf(leader)], followers: followers.map((f) => pct[cluster.members.indexOf(f)]) };
      const r = res.benches[b.id];
      if (r.error) log(`${kind}: ${b.id} failed: ${r.error}`);
      else log(`${kind}: ${b.id}: ${r.throughput.toFixed(0)} req/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, errors ${r.errors}`);
      const dead = cluster.members.find((m) => m.exit);
      if (dead) throw new Error(`${dead.name} died during ${b.id}: ${tail(dead.logFile)}`);
    }
    const after = await agreedLeader(cluster).catch(() => undefined);
    if (!after) res.notes.push(`${kind}: the members did not agree on a leader right after the benches`);
    else if (after !== leader) res.notes.push(`${kind}: the leader changed during the benches (${leader.name} -> ${after.name})`);
  } catch (err) {
    res.failed = err.message;
    log(`${kind}: ${err.message}`);
  } finally {
    await stopCluster(cluster);
    log(`${kind}: cluster stopped, data removed`);
  }
  res.loadEnd = loadavg();
  return res;
}

/** `node scripts/failover-time.js --kind <kind> --rounds N`, in a process group of its own. */
function runFailover(kind) {
  const timeoutMs = Math.min(FAILOVER_TIMEOUT_MS, remaining());
  if (timeoutMs < 30_000) return Promise.resolve({ error: 'skipped: run budget spent' });
  log(`${kind}: node scripts/failover-time.js --kind ${kind} --rounds ${rounds}`);
  const loadStart = loadavg();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FAILOVER, '--kind', kind, '--rounds', String(rounds)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, COORD_MAIN },
    });
    groups.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // Its members are in its group: make sure none outlives it.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* all gone */
      }
      groups.delete(child.pid);
      const roundLines = stdout.split('\n').filter((l) => /^round\s+\d+:/.test(l));
      const parseRow = (label) => {
        const line = stdout.split('\n').find((l) => l.startsWith(`| ${label}`));
        if (!line) return undefined;
        const [min, median, max] = line.split('|').slice(2, 5).map((x) => Number(x.trim()));
        return { min, median, max };
      };
      const out = { rounds: roundLines.length, roundLines, elected: parseRow('kill -> new leader agreed'), gap: parseRow('kill -> first acknowledged write'), loadStart, loadEnd: loadavg() };
      const acks = stdout.match(/(\d+) puts acknowledged, (\d+) failed or timed out/);
      if (acks) out.acks = { ok: Number(acks[1]), failed: Number(acks[2]) };
      if (timedOut) out.error = `timed out after ${(timeoutMs / 1000).toFixed(0)}s (${roundLines.length} rounds done)`;
      else if (code !== 0) out.error = `exit ${code}: ${(stderr.split('\n').find((l) => /failover-time:|Error/.test(l)) || stderr.trim().slice(0, 300)).slice(0, 300)}`;
      for (const l of roundLines) log(`${kind}: ${l}`);
      resolve(out);
    });
  });
}

// ---------------------------------------------------------------------------------------
// Report.

function machine() {
  let etcdVersion = 'unknown';
  try {
    etcdVersion = execFileSync(ETCD_BIN, ['--version'], { encoding: 'utf8' }).split('\n')[0].replace('etcd Version: ', '');
  } catch {
    /* missing */
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* not a checkout */
  }
  let dirty = '';
  try {
    const changed = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no', '--', 'packages'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(Boolean);
    if (changed.length) dirty = ` (plus uncommitted changes to ${changed.length} file(s) under packages/)`;
  } catch {
    /* not a checkout */
  }
  let built = '';
  try {
    built = `, server build of ${fs.statSync(COORD_MAIN).mtime.toISOString().replace(/\.\d+Z$/, 'Z')}`;
  } catch {
    /* not built */
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    dirty,
    built,
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    etcdVersion,
    commit,
    loadStart: loadavg(),
    tmp: os.tmpdir(),
  };
}

const fmt = (v, digits) => (v === undefined || v === null || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));
const ratio = (c, e) => (typeof c !== 'number' || typeof e !== 'number' || e === 0 || Number.isNaN(c) || Number.isNaN(e) ? 'n/a' : `${(c / e).toFixed(2)}x`);

function table(results, fo, info) {
  const e = results.etcd ?? { benches: {}, cpu: {} };
  const c = results.coord ?? { benches: {}, cpu: {} };
  const rows = [];
  const row = (what, ev, cv, digits, better) => rows.push(`| ${what} | ${fmt(ev, digits)} | ${fmt(cv, digits)} | ${ratio(cv, ev)} | ${better} |`);
  const cell = (r) => (r && !r.error ? r : undefined);
  for (const b of benchArgs({})) {
    const eb = cell(e.benches[b.id]);
    const cb = cell(c.benches[b.id]);
    row(`${b.title}: throughput (req/s)`, eb?.throughput, cb?.throughput, 0, 'higher');
    row(`${b.title}: latency avg (ms)`, eb?.latencyMs.avg, cb?.latencyMs.avg, 2, 'lower');
    row(`${b.title}: latency p50 (ms)`, eb?.latencyMs.p50, cb?.latencyMs.p50, 2, 'lower');
    row(`${b.title}: latency p90 (ms)`, eb?.latencyMs.p90, cb?.latencyMs.p90, 2, 'lower');
    row(`${b.title}: latency p99 (ms)`, eb?.latencyMs.p99, cb?.latencyMs.p99, 2, 'lower');
    row(`${b.title}: latency max (ms)`, eb?.latencyMs.max, cb?.latencyMs.max, 2, 'lower');
    const errs = (r) => (r ? (r.error ? `failed: ${r.error.slice(0, 80)}` : String(r.errors)) : 'n/a');
    rows.push(`| ${b.title}: errors | ${errs(e.benches[b.id])} | ${errs(c.benches[b.id])} | | fewer |`);
  }
  row('start: spawn of 3 members to a leader agreed by all (ms)', e.readyMs, c.readyMs, 0, 'lower');
  const fe = fo.etcd ?? {};
  const fc = fo.coord ?? {};
  for (const [label, key] of [['kill -> new leader agreed', 'elected'], ['kill -> first acknowledged write', 'gap']]) {
    for (const stat of ['min', 'median', 'max']) row(`failover, leader SIGKILLed (${rounds} rounds): ${label}, ${stat} (ms)`, fe[key]?.[stat], fc[key]?.[stat], 0, 'lower');
  }
  const foCell = (f) => (f.error ? `failed: ${f.error.slice(0, 80)}` : f.acks ? `${f.acks.ok} / ${f.acks.failed}` : 'n/a');
  if (fo.etcd || fo.coord) rows.push(`| failover: puts acknowledged / failed or timed out (10 writers) | ${foCell(fe)} | ${foCell(fc)} | | |`);

  const cpuRows = [];
  for (const b of benchArgs({})) {
    const one = (r, cpu) => {
      if (!r || r.error || !cpu) return 'n/a';
      return `${fmt(r.client.cpuPercentOfOneCore, 0)}% / ${fmt(cpu.leader, 0)}% / ${cpu.followers.map((x) => `${fmt(x, 0)}%`).join(', ')}`;
    };
    cpuRows.push(`| ${b.title} | ${one(e.benches[b.id], e.cpu[b.id])} | ${one(c.benches[b.id], c.cpu[b.id])} |`);
  }

  const roundRows = [];
  for (const k of ['etcd', 'coord']) for (const l of fo[k]?.roundLines ?? []) roundRows.push(`${k} ${l}`);

  const failed = ['etcd', 'coord'].filter((k) => results[k]?.failed).map((k) => `- ${k}: ${results[k].failed}`);
  const foFailed = ['etcd', 'coord'].filter((k) => fo[k]?.error).map((k) => `- ${k} failover: ${fo[k].error}`);
  const skipped = ['etcd', 'coord'].filter((k) => !results[k]).map((k) => `- ${k}: not run (--only)`);
  const notes = [...(e.notes ?? []), ...(c.notes ?? [])].map((n) => `- ${n}`);
  const loads = [
    ...['etcd', 'coord'].filter((k) => results[k]?.loadStart).map((k) => `${k} benches ${results[k].loadStart} -> ${results[k].loadEnd ?? '?'}`),
    ...['etcd', 'coord'].filter((k) => fo[k]?.loadStart).map((k) => `${k} failover ${fo[k].loadStart} -> ${fo[k].loadEnd}`),
  ];
  const cmds = benchArgs({ leader: 'x', follower: 'x', all: 'x' }).map(showCommand);
  return [
    `### Run of ${info.date}`,
    '',
    `Machine: ${info.nproc} CPUs (${info.cpu}), ${info.memoryGiB} GiB memory, ${info.kernel}; Node ${info.node};`,
    `etcd ${info.etcdVersion}; coord at ${info.commit}${info.dirty}${info.built}; data dirs under ${info.tmp} (one disk).`,
    `Load average (1/5/15 min) before the run ${info.loadStart}, after it ${info.loadEnd}; per step: ${loads.join('; ')}.`,
    '',
    'Each cluster ran alone (etcd first, then coord), 3 members on loopback with the default',
    'heartbeat (100 ms) and election timeout (1000 ms), fresh data dirs. coord/etcd: for',
    'throughput higher is better; for latency and times lower is better (below 1.00x there',
    'means coord is faster). `all 3 endpoints`: coord bench dials connection i to endpoint',
    'i mod 3 (leader first), so 4 / 3 / 3 connections and 40 / 30 / 30 clients; followers',
    'forward their puts to the leader.',
    '',
    '| workload: metric | etcd | coord | coord/etcd | better |',
    '|---|---:|---:|---:|---|',
    ...rows,
    '',
    'CPU during each bench, % of one core: the bench client / the leader / the two followers:',
    '',
    '| workload | etcd | coord |',
    '|---|---:|---:|',
    ...cpuRows,
    ...(roundRows.length ? ['', 'Failover rounds:', '', '```', ...roundRows, '```'] : []),
    ...(failed.length || foFailed.length || skipped.length || notes.length ? ['', 'Problems in this run:', '', ...failed, ...foFailed, ...skipped, ...notes] : []),
    '',
    'Commands ($LEADER / $FOLLOWER: client endpoints of the leader and of a follower, found',
    'with Maintenance.Status; members started with etcd\'s flags `--name --data-dir',
    '--listen-client-urls --advertise-client-urls --listen-peer-urls',
    '--initial-advertise-peer-urls --initial-cluster a=…,b=…,c=… --initial-cluster-token',
    '<unique> --initial-cluster-state new` on free loopback ports):',
    '',
    '```',
    `${ETCD_BIN} <flags>                          # etcd, 3 members`,
    'node packages/server/dist/main.js <flags>   # coord, 3 members',
    ...cmds,
    ...(failover ? [`node scripts/failover-time.js --kind etcd --rounds ${rounds}`, `node scripts/failover-time.js --kind coord --rounds ${rounds}`] : []),
    '```',
  ].join('\n');
}

function writeDoc(section) {
  let doc = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8') : '# Benchmarks\n';
  const i = doc.indexOf(BEGIN);
  const j = doc.indexOf(END);
  const block = `${BEGIN}\n${section}\n${END}`;
  if (i >= 0 && j > i) doc = doc.slice(0, i) + block + doc.slice(j + END.length);
  else doc = `${doc.trimEnd()}\n\n${HEADING}\n\n${block}\n`;
  fs.writeFileSync(DOC, doc);
}

async function main() {
  for (const f of [CLI, path.join(ROOT, 'packages/cli/dist/bench/conn.js')]) {
    if (!fs.existsSync(f)) usage(`${path.relative(ROOT, f)} is missing: run npm run build first`);
  }
  if (!fs.existsSync(ETCD_BIN)) usage(`${ETCD_BIN} not found (apt-get install etcd-server, or set ETCD_BIN)`);
  const info = machine();
  log(`machine: ${info.nproc} CPUs, ${info.memoryGiB} GiB, ${info.kernel}, etcd ${info.etcdVersion}, load ${info.loadStart}`);
  const kinds = ['etcd', 'coord'].filter((k) => !only || only === k);
  const results = {};
  for (const kind of kinds) {
    if (kind === 'coord' && !fs.existsSync(COORD_MAIN)) {
      results.coord = { kind, benches: {}, cpu: {}, notes: [], failed: `${path.relative(ROOT, COORD_MAIN)} is missing (build the server)` };
      continue;
    }
    results[kind] = await measure(kind);
  }
  const fo = {};
  if (failover) for (const kind of kinds) fo[kind] = await runFailover(kind);
  info.loadEnd = loadavg();
  const section = table(results, fo, info);
  process.stdout.write(`${section}\n`);
  if (write) {
    writeDoc(section);
    log(`wrote ${path.relative(ROOT, DOC)}`);
  }
  cleanup();
  const anyFailed = Object.values(results).some((r) => r.failed) || Object.values(fo).some((f) => f.error);
  process.exitCode = anyFailed ? 1 : 0;
}

main().catch((err) => {
  log(`failed: ${err.stack || err}`);
  cleanup();
  process.exit(1);
});
