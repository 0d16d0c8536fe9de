/**
 * Leader job: a job that runs only on the elected leader, and an observer that prints every
 * leader change, including "no leader".
 *
 * How it works (@coord/recipes Session + Election, keys laid out as `etcdctl elect NAME`):
 * - Each worker opens a Session (a lease kept alive in the background) and campaigns: it puts
 *   its candidate key `<NAME>/<lease id>` and waits until that key is the oldest under NAME/.
 *   Candidates queue in order; each watches only its predecessor.
 * - While leader, the worker runs its job step by step. Every step records its progress with
 *   `election.txnIfLeader(ops)`: the server applies the write only while our candidate key still
 *   exists with our create revision, so a worker that lost leadership without knowing it yet
 *   cannot overwrite the new leader's progress.
 * - The worker stops its job as soon as leadership is lost (`election.on('lost')`, and the
 *   leadership's `signal` aborts): its session expired or could not be renewed in time (the
 *   session says so *before* the server could expire the lease), or its key was deleted or its
 *   lease revoked from outside. When the job is done it resigns, and the next candidate leads.
 * - `Election.observe(client, NAME)` is list-then-watch over the candidates: the current leader
 *   first, then every change, and `leader: undefined` ("no leader") when the last one leaves.
 *
 * Roles (--role):
 *   worker   campaign (at most --duration seconds), run --steps steps of --step-ms while
 *            leader, resign. SIGINT/SIGTERM stop it early (resigning).
 *   observe  print leader changes for --duration seconds.
 *   demo     (default) an observer and three workers in this process, each with its own client
 *            and session. worker-1 finishes its job and resigns; an operator revokes worker-2's
 *            lease in the middle of its job (as if its machine hung past the TTL), so it stops;
 *            worker-3 takes over and finishes. The observer ends on "no leader".
 *
 * Run (from the repository root, with a server on COORD_ENDPOINTS, default 127.0.0.1:2379):
 *   npm run build && npx tsc -p examples
 *   node examples/dist/leader-job.js                                          # the demo
 *   node examples/dist/leader-job.js --role observe --duration 30 &
 *   node examples/dist/leader-job.js --role worker --id host-a --steps 10 &
 *   node examples/dist/leader-job.js --role worker --id host-b --steps 10
 */
import { parseArgs } from 'node:util';
import { Client, op } from '@coord/client';
import { AbortError, Election, Session, WaitTimeoutError, type LeaderInfo, type LeadershipLostError } from '@coord/recipes';

// ---- small helpers (each example is standalone, so each has its own) ----------------------

/** COORD_ENDPOINTS: comma-separated host:port list. */
const endpoints = (process.env.COORD_ENDPOINTS ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);

function log(who: string, message: string): void {
  console.log(`[${who}] ${message}`);
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** An AbortSignal that aborts on SIGTERM, SIGINT or after `ms`; `dispose()` removes the hooks. */
function stopSignal(ms: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  const timer = setTimeout(stop, ms);
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    },
  };
}

// ---- options -------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'demo' },
    /** The election's name: workers of the same job use the same one. */
    name: { type: 'string', default: 'examples/leader-job' },
    id: { type: 'string', default: `worker-${process.pid}` },
    /** Session TTL in seconds: how long a dead leader can block the job. */
    ttl: { type: 'string', default: '3' },
    steps: { type: 'string', default: '3' },
    'step-ms': { type: 'string', default: '300' },
    /** worker: how long to campaign at most; observe: how long to watch. In seconds. */
    duration: { type: 'string', default: '30' },
  },
});
const NAME = args.name!;
/** Where the job records its progress. Not under `NAME/`: that prefix is for candidates only. */
const PROGRESS_KEY = `${NAME}.progress`;
const TTL_SECONDS = Number(args.ttl);
const STEPS = Number(args.steps);
const STEP_MS = Number(args['step-ms']);
const DURATION_MS = Number(args.duration) * 1000;

// ---- the worker ----------------------------------------------------------------------------

type WorkerResult = 'done' | 'lost' | 'not-elected' | 'stopped';

interface WorkerOptions {
  /** Give up campaigning after this long. */
  campaignTimeoutMs: number;
  /** Stop campaigning, or stop the job and resign, when this aborts. */
  stop?: AbortSignal;
  /** Called after each completed step (the demo uses it to play the operator). */
  afterStep?: (step: number, session: Session) => Promise<void>;
}

async function runWorker(client: Client, id: string, options: WorkerOptions): Promise<WorkerResult> {
  const session = await Session.create(client, { ttl: TTL_SECONDS });
  const election = new Election(session, NAME);
  // `lost`: leadership ended without our resigning. The job loop below stops on the
  // leadership's signal, which aborts at the same moment.
  const onLost = (err: LeadershipLostError) => log(id, `${errText(err)}; stopping the job`);
  election.on('lost', onLost);
  try {
    // 1. Campaign: resolves once we are the leader.
    log(id, 'campaigning');
    let leadership;
    try {
      leadership = await election.campaign(id, { timeoutMs: options.campaignTimeoutMs, signal: options.stop });
    } catch (err) {
      if (err instanceof WaitTimeoutError) {
        log(id, `not elected within ${options.campaignTimeoutMs} ms; giving up`);
        return 'not-elected';
      }
      if (err instanceof AbortError) return 'stopped';
      throw err;
    }
    log(id, `elected leader (fencing revision ${leadership.createRevision}); starting the job`);

    // 2. The job, only while leader: `leadership.signal` aborts the moment leadership is lost.
    const { signal } = leadership;
    let step = 0;
    while (step < STEPS && !signal.aborted && !options.stop?.aborted) {
      await sleep(STEP_MS, signal); // the "work" of one step; cut short if leadership is lost
      if (signal.aborted) break;
      // Record progress with a write the server accepts only from the current leader.
      let accepted = false;
      try {
        accepted = (await election.txnIfLeader([op.put(PROGRESS_KEY, `${id} finished step ${step + 1}`)])).succeeded;
      } catch (err) {
        if (!signal.aborted) throw err; // lost meanwhile: txnIfLeader refuses locally
      }
      if (!accepted) break; // the server says we are no longer the leader
      step++;
      log(id, `job step ${step}/${STEPS} done`);
      await options.afterStep?.(step, session);
    }
    if (signal.aborted && election.state !== 'leader') {
      log(id, `job stopped after ${step} of ${STEPS} step(s)`);
      return 'lost';
    }

    // 3. Done (or asked to stop): resign, so the next candidate takes over now rather than
    //    when our session ends. From here on, leadership ends because we give it up.
    election.off('lost', onLost);
    log(id, options.stop?.aborted ? 'stopping early; resigning' : 'job finished; resigning');
    await election.resign();
    return options.stop?.aborted ? 'stopped' : 'done';
  } finally {
    // Revokes the lease: a candidate key still queued is deleted with it.
    await session.close().catch(() => undefined);
  }
}

// ---- the observer --------------------------------------------------------------------------

async function observe(client: Client, signal: AbortSignal, onChange?: (leader: LeaderInfo | undefined) => void): Promise<void> {
  for await (const { leader, revision } of Election.observe(client, NAME, { signal })) {
    // `revision`: the store revision of this observation; `createRevision`: when this leader's
    // candidacy began (it grows with every new leader, a fencing token for the leadership).
    log('observer', leader ? `leader: ${leader.value} (key ${leader.key}, candidate since revision ${leader.createRevision})` : `no leader (as of revision ${revision})`);
    onChange?.(leader);
  }
}

// ---- the demo ------------------------------------------------------------------------------

async function runDemo(): Promise<void> {
  const operator = new Client({ endpoints }); // the observer's and operator's connection
  const workers = ['worker-1', 'worker-2', 'worker-3'].map((id) => ({ id, client: new Client({ endpoints }) }));
  const stopObserving = new AbortController();
  const seen: string[] = []; // what the observer saw: worker IDs and 'no leader'
  let onSeen: (() => void) | undefined;
  try {
    // Candidates left over by an interrupted earlier demo would lead first.
    await operator.delete(`${NAME}/`, { prefix: true });

    const observing = observe(operator, stopObserving.signal, (leader) => {
      seen.push(leader ? leader.value : 'no leader');
      onSeen?.();
    });
    const waitSeen = async (what: string, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (seen[seen.length - 1] !== what) {
        if (Date.now() > deadline) throw new Error(`observer did not report ${what}; saw ${seen.join(', ')}`);
        await new Promise<void>((resolve) => {
          onSeen = resolve;
          setTimeout(resolve, 100);
        });
      }
    };
    await waitSeen('no leader');

    // worker-2's job is interrupted: after its first step, the operator revokes its lease.
    const afterStep = async (id: string, step: number, session: Session) => {
      if (id === 'worker-2' && step === 1) {
        log('operator', `revoking ${id}'s lease ${session.leaseHex} (as if its machine hung past the TTL)`);
        await operator.leaseRevoke(session.leaseId);
      }
    };

    // Start the workers one after the other, so they queue in this order.
    const results: Promise<WorkerResult>[] = [];
    for (const [i, w] of workers.entries()) {
      results.push(runWorker(w.client, w.id, { campaignTimeoutMs: 30_000, afterStep: (step, s) => afterStep(w.id, step, s) }));
      // Wait until its candidate key is there: i + 1 candidates under NAME/.
      for (let tries = 0; ; tries++) {
        const { count } = await operator.getRange({ key: `${NAME}/`, prefix: true, countOnly: true });
        if (count >= BigInt(i + 1)) break;
        if (tries > 200) throw new Error(`${w.id} did not become a candidate`);
        await sleep(25);
      }
    }

    const outcome = await Promise.all(results);
    await waitSeen('no leader');
    stopObserving.abort();
    await observing;

    const summary = workers.map((w, i) => `${w.id}: ${outcome[i]}`).join(', ');
    const leaders = seen.filter((s) => s !== 'no leader');
    log('demo', `results: ${summary}`);
    log('demo', `leaders in order: ${leaders.join(' -> ')}; then no leader`);
    const expected = ['done', 'lost', 'done'];
    if (outcome.join() !== expected.join() || leaders.join() !== 'worker-1,worker-2,worker-3') {
      throw new Error(`unexpected run: ${summary}; observer saw ${seen.join(', ')}`);
    }
    const progress = await operator.get(PROGRESS_KEY);
    log('demo', `last progress record: "${progress?.valueString()}"`);
    log('demo', 'done');
  } finally {
    stopObserving.abort();
    for (const w of workers) w.client.close();
    operator.close();
  }
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  switch (args.role) {
    case 'worker': {
      const stop = stopSignal(DURATION_MS);
      const client = new Client({ endpoints });
      try {
        const result = await runWorker(client, args.id!, { campaignTimeoutMs: DURATION_MS, stop: stop.signal });
        log(args.id!, `result: ${result}`);
      } finally {
        stop.dispose();
        client.close();
      }
      return;
    }
    case 'observe': {
      const stop = stopSignal(DURATION_MS);
      const client = new Client({ endpoints });
      try {
        await observe(client, stop.signal);
      } finally {
        stop.dispose();
        client.close();
      }
      return;
    }
    case 'demo':
      return runDemo();
    default:
      throw new Error(`--role must be worker, observe or demo, got ${args.role}`);
  }
}

main().catch((err) => {
  console.error(`leader-job: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
