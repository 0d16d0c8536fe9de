/**
 * The examples in examples/ compile and do what examples/README.md says they do.
 *
 * Goal: each example (service-discovery, leader-job, config-reload, fenced-lock) type-checks
 * against the built @coord/client and @coord/recipes, runs on its own against a real coord
 * server, exits 0 within its bound, and prints the lines that show its point: round-robin
 * picks and an instance vanishing within its TTL after SIGKILL; one leader at a time, a job
 * stopped on lost leadership, "no leader" at the end; reloads, rejected configs and the last
 * good config kept; increments under the lock with growing fencing tokens and a stale write
 * refused. The standalone roles (service + client, two lock workers) are run once too.
 *
 * Method: `tsc -p examples` (needs `npm run build` first, as `npm test` does) while one coord
 * server starts (test/harness/coord.ts: fresh data dir, free port). Then every example runs as
 * a child process with COORD_ENDPOINTS set, all at once (they use distinct keys), each in its
 * own process group so a hung one is SIGKILLed with its children. Each test awaits its run and
 * checks exit code and stdout.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, startCoord } from './harness/coord';
import type { Member } from './harness/proc';

const EXAMPLES = path.join(REPO_ROOT, 'examples');
const DIST = path.join(EXAMPLES, 'dist');
const RUN_TIMEOUT_MS = 30_000;
/** The demo's default TTL, and how much later than the TTL a killed instance may vanish. */
const TTL_SECONDS = 3;
const VANISH_SLACK_SECONDS = 2;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

interface Started {
  /** Resolves with the run when the process exits (or was killed after RUN_TIMEOUT_MS). */
  done: Promise<Run>;
  /** Resolves once stdout contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

const live = new Set<number>();
let server: Member | undefined;
let endpoint = '';

function start(example: string, args: string[] = []): Started {
  const t0 = Date.now();
  // Own process group (detached): a timeout kills the example and any child it started.
  const child = spawn(process.execPath, [path.join(DIST, `${example}.js`), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, COORD_ENDPOINTS: endpoint, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid!;
  live.add(pid);
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of watchers) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => killGroup('SIGKILL'), RUN_TIMEOUT_MS);
  const done = new Promise<Run>((resolve) => {
    // 'close': the streams are drained (children that inherited them are gone too).
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(pid);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
  return {
    done,
    kill: (signal) => child.kill(signal),
    waitFor: (text, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!stdout.includes(text)) return;
          watchers.delete(check);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`${example} did not print ${JSON.stringify(text)} within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      }),
  };
}

/** Fail with the whole output of the run, which is what one needs to see. */
function expectClean(run: Run): void {
  const context = `exit ${run.code ?? run.signal} after ${run.ms} ms\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
  if (run.code !== 0) throw new Error(`expected exit code 0: ${context}`);
}

/** The lines of stdout starting with `[who]`, without that prefix. */
function linesOf(run: Run, who: string): string[] {
  const tag = `[${who}] `;
  return run.stdout
    .split('\n')
    .filter((l) => l.startsWith(tag))
    .map((l) => l.slice(tag.length));
}

// The runs, started in beforeAll, awaited by the tests.
const runs: Record<string, Promise<Run>> = {};

beforeAll(async () => {
  const compile = new Promise<void>((resolve, reject) => {
    const tsc = spawn(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', EXAMPLES], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    tsc.stdout!.on('data', (d) => (out += d));
    tsc.stderr!.on('data', (d) => (out += d));
    tsc.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`tsc -p examples failed (${code}):\n${out}`))));
  });
  const [member] = await Promise.all([startCoord(), compile]);
  server = member;
  endpoint = member.endpoint;

  runs.serviceDiscovery = start('service-discovery').done;
  runs.leaderJob = start('leader-job').done;
  runs.configReload = start('config-reload').done;
  runs.fencedLock = start('fenced-lock').done;

  // Standalone roles: one service instance and a client that finds it; then SIGTERM the service.
  runs.standaloneService = (async () => {
    const service = start('service-discovery', ['--role', 'service', '--service', 'example-solo', '--id', 'solo-1', '--duration', '20']);
    try {
      await service.waitFor('registered');
    } catch (err) {
      service.kill('SIGKILL');
      throw err;
    }
    const client = await start('service-discovery', ['--role', 'client', '--service', 'example-solo', '--duration', '1.5', '--interval-ms', '300']).done;
    service.kill('SIGTERM');
    const serviceRun = await service.done;
    return { ...client, stdout: `${client.stdout}\n--- service\n${serviceRun.stdout}`, code: client.code || serviceRun.code };
  })();
  // Two lock workers as separate processes, on their own lock and record.
  runs.lockWorkers = (async () => {
    const args = (id: string) => ['--role', 'worker', '--name', 'examples/fenced-lock-solo', '--id', id, '--rounds', '3', '--work-ms', '20'];
    const both = await Promise.all([start('fenced-lock', args('a')).done, start('fenced-lock', args('b')).done]);
    return { ...both[0], stdout: both.map((r) => r.stdout).join(''), stderr: both.map((r) => r.stderr).join(''), code: both[0].code || both[1].code };
  })();
  for (const p of Object.values(runs)) p.catch(() => undefined); // reported by the tests
}, 120_000);

afterAll(async () => {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await server?.destroy();
});

test('examples/tsconfig.json compiles every example to examples/dist', () => {
  const sources = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.ts'));
  expect(sources.sort()).toEqual(['config-reload.ts', 'fenced-lock.ts', 'leader-job.ts', 'service-discovery.ts']);
  for (const s of sources) expect(fs.existsSync(path.join(DIST, s.replace(/\.ts$/, '.js')))).toBe(true);
});

test('service-discovery: registers with TTL heartbeats, follows changes, picks round-robin, a killed instance vanishes within its TTL', async () => {
  const run = await runs.serviceDiscovery;
  expectClean(run);
  const client = linesOf(run, 'client');
  expect(client[0]).toMatch(/^discovered 0 instance\(s\) of example-echo/);
  for (const id of ['api-1', 'api-2', 'api-3']) {
    expect(client.some((l) => l.startsWith(`added ${id} `))).toBe(true);
    expect(client.some((l) => l.startsWith(`removed ${id} `))).toBe(true);
  }
  // Round-robin over api-1, api-2, then over all three going on after api-2.
  expect(client.filter((l) => /^request [1-7] ->/.test(l))).toEqual([
    'request 1 -> api-1: hello from api-1',
    'request 2 -> api-2: hello from api-2',
    'request 3 -> api-1: hello from api-1',
    'request 4 -> api-2: hello from api-2',
    'request 5 -> api-3: hello from api-3',
    'request 6 -> api-1: hello from api-1',
    'request 7 -> api-2: hello from api-2',
  ]);
  // The cleanly stopped instance deregistered itself; the SIGKILLed one expired with its lease.
  expect(linesOf(run, 'api-1')).toContain('deregistered; bye');
  expect(linesOf(run, 'api-2')).not.toContain('deregistered; bye');
  const vanished = /api-2 vanished ([\d.]+) s after its process was killed \(TTL (\d+) s\)/.exec(run.stdout);
  expect(vanished).not.toBeNull();
  expect(Number(vanished![2])).toBe(TTL_SECONDS);
  expect(Number(vanished![1])).toBeLessThanOrEqual(TTL_SECONDS + VANISH_SLACK_SECONDS);
  expect(client[client.length - 1]).toMatch(/^removed api-3 .*now: \(none\)$/);
  expect(linesOf(run, 'demo')).toContain('done');
});

test('service-discovery standalone roles: a client discovers a separately started service, which deregisters on SIGTERM', async () => {
  const run = await runs.standaloneService;
  expectClean(run);
  const client = linesOf(run, 'client');
  expect(client[0]).toMatch(/^discovered 1 instance\(s\) of example-solo at revision \d+: solo-1$/);
  expect(client).toContain('request 1 -> solo-1: hello from solo-1');
  expect(linesOf(run, 'solo-1')).toEqual([expect.stringMatching(/^registered \/coord\/services\/example-solo\/solo-1 -> 127\.0\.0\.1:\d+ /), 'deregistered; bye']);
});

test('leader-job: the job runs on one leader at a time, stops on lost leadership, and the observer ends on "no leader"', async () => {
  const run = await runs.leaderJob;
  expectClean(run);
  const observed = linesOf(run, 'observer').map((l) => (l.startsWith('no leader') ? 'no leader' : /^leader: (\S+)/.exec(l)![1]));
  expect(observed).toEqual(['no leader', 'worker-1', 'worker-2', 'worker-3', 'no leader']);
  // Workers 1 and 3 did all steps and resigned; worker 2 stopped after the operator's revoke.
  for (const id of ['worker-1', 'worker-3']) {
    const lines = linesOf(run, id);
    expect(lines).toEqual(expect.arrayContaining(['job step 3/3 done', 'job finished; resigning']));
    expect(lines.some((l) => l.includes('leadership lost'))).toBe(false);
  }
  const w2 = linesOf(run, 'worker-2');
  expect(w2.some((l) => /^election: leadership lost: .*; stopping the job$/.test(l))).toBe(true);
  expect(w2).toContain('job stopped after 1 of 3 step(s)');
  expect(w2).not.toContain('job step 2/3 done');
  // Job steps never interleave: each leader's steps form one block, in election order.
  const steps = run.stdout.split('\n').filter((l) => l.includes('] job step')).map((l) => /^\[(\S+)\]/.exec(l)![1]);
  expect(steps).toEqual(['worker-1', 'worker-1', 'worker-1', 'worker-2', 'worker-3', 'worker-3', 'worker-3']);
  expect(linesOf(run, 'demo')).toEqual(expect.arrayContaining(['results: worker-1: done, worker-2: lost, worker-3: done', 'done']));
});

test('config-reload: valid configs are applied, invalid ones reported while the last good config is kept', async () => {
  const run = await runs.configReload;
  expectClean(run);
  const app = linesOf(run, 'app');
  expect(app[0]).toMatch(/^no config stored yet; starting with the defaults: \{"port":8080,"logLevel":"info","features":\[\]\}$/);
  const reloads = app.filter((l) => l.startsWith('reloaded config of revision'));
  expect(reloads.map((l) => l.replace(/revision \d+/, 'revision R'))).toEqual([
    'reloaded config of revision R: {"port":8080,"logLevel":"info","features":["search"]}',
    'reloaded config of revision R: {"port":8081,"logLevel":"debug","features":["search","beta-ui"]}',
    'reloaded config of revision R: {"port":8082,"logLevel":"warn","features":[]}',
  ]);
  const goodRevision = /revision (\d+)/.exec(reloads[1])![1];
  const rejected = app.filter((l) => l.startsWith('rejected revision'));
  expect(rejected).toHaveLength(3);
  for (const l of rejected) expect(l).toMatch(new RegExp(`; keeping the config of revision ${goodRevision}$`));
  expect(rejected[0]).toMatch(/JSON/);
  expect(rejected[1]).toContain('port must be an integer in 1..65535, got "8082"');
  expect(rejected[2]).toContain('logLevel must be one of debug, info, warn, error, got "verbose"');
  expect(linesOf(run, 'demo')).toContain('done: 3 reloads, 3 rejected versions, never an invalid config in use');
});

test('fenced-lock: increments under the lock with growing fencing tokens; a stale holder cannot write', async () => {
  const run = await runs.fencedLock;
  expectClean(run);
  const writes = [...run.stdout.matchAll(/\[(worker-\d|fast)\] token (\d+): counter (\d+) -> (\d+)/g)].map((m) => ({
    token: BigInt(m[2]),
    from: Number(m[3]),
    to: Number(m[4]),
  }));
  expect(writes.map((w) => w.to)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  for (const [i, w] of writes.entries()) {
    expect(w.from).toBe(w.to - 1);
    if (i > 0) expect(w.token).toBeGreaterThan(writes[i - 1].token);
  }
  const slow = linesOf(run, 'slow');
  const slowToken = BigInt(/holds the lock with token (\d+)/.exec(slow[0])![1]);
  expect(slowToken).toBeLessThan(writes[9].token);
  expect(slow).toContain(`woke up; write with token ${slowToken}: refused by the server`);
  expect(slow.some((l) => l.startsWith('txnIfOwner refuses before sending: mutex: not locked'))).toBe(true);
  expect(linesOf(run, 'demo')).toEqual(
    expect.arrayContaining([`record: counter 10, last written by fast with token ${writes[9].token}`, 'done: no lost update, tokens only grew, the stale write was refused']),
  );
});

test('fenced-lock standalone workers: two processes take turns, no increment lost', async () => {
  const run = await runs.lockWorkers;
  expectClean(run);
  const counters = [...run.stdout.matchAll(/\] token \d+: counter (\d+) -> (\d+)/g)].map((m) => Number(m[2])).sort((a, b) => a - b);
  expect(counters).toEqual([1, 2, 3, 4, 5, 6]);
  expect(linesOf(run, 'a')).toContainEqual(expect.stringMatching(/^wrote 3 time\(s\) with tokens \d+, \d+, \d+$/));
  expect(linesOf(run, 'b')).toContainEqual(expect.stringMatching(/^wrote 3 time\(s\) with tokens \d+, \d+, \d+$/));
});
