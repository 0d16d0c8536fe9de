/**
 * Differential scenarios: the same etcdctl commands against the reference etcd and the
 * target, normalized, side by side.
 *
 * Goal: make a differential test a short list of commands, so that a failure reads as
 * "this command printed X on etcd and Y on coord".
 *
 * Method: before the first step each side's current revision is read (a `get -w json` of a
 * key nobody writes) and becomes that side's revision base (normalize.ts). Steps may use
 * templates that are resolved per side: `{rev+N}` / `{rev-N}` / `{rev}` (base ± N) in
 * arguments and stdin, and `{NAME}` for a value captured from an earlier step's stdout
 * on the same side (e.g. a lease ID). Each step runs on both sides concurrently. The
 * reference's exit code is checked against the step's `code` (default 0), so a scenario
 * also asserts what etcd does and cannot pass vacuously when both sides fail the same way
 * for an unintended reason (say, a mistyped flag). The transcript records the unresolved
 * command, so both transcripts can be compared with toEqual.
 *
 * Long-lived commands (watch, watch -i, lease keep-alive) run in the background
 * (background.ts), on each side under a name: `{ spawn: NAME, args }` starts one,
 * `{ input: NAME, text }` types into an interactive one, `{ await: NAME, until }` waits
 * (with a deadline, on both sides at once) until its output satisfies `until` or it exits
 * and then is quiet for a moment (background.ts settle()), records what it printed since
 * the previous await and, unless `keep`, stops it. The
 * await's `code` is the exit code etcd's etcdctl must show: -1 (the default) means it was
 * still running and the harness stopped it. Because a watch without --rev only sees writes
 * made after its watcher exists, and etcdctl does not say when that is, `{ barrier: NAME,
 * key }` puts KEY (with a unique value) until the watch prints that put, then drops its
 * output so far and takes the current revision as the new base for `{rev}` and for
 * printed revisions. A `transform` on a step rewrites both sides' normalized output (e.g.
 * a lease's remaining TTL, which depends on timing). `{ call: LABEL, fn }` runs fn on each
 * side's member (say, a restart) between two steps.
 */
import { BackgroundEtcdctl, Condition, OutputView, startEtcdctl } from './background';
import { etcdctl, etcdctlOk, EtcdctlResult } from './etcdctl';
import { headerRevision, Normalized, Normalizer } from './normalize';
import type { Member } from './proc';
import type { Pair } from './target';

/** Rewrites a normalized output (applied to both sides alike). */
export type Transform = (n: Normalized) => Normalized;

/** One etcdctl command, run to completion on each side. */
export interface Step {
  /** etcdctl arguments (no global flags); may contain templates (see file comment). */
  args: string[];
  stdin?: string | Buffer;
  /** Exit code the reference etcd must give (default 0). */
  code?: number;
  /** Capture group 1 of this regexp on stdout becomes template `{name}` on the same side. */
  capture?: { name: string; re: RegExp };
  /** Replaces the whole stdout in the transcript by its length and a hash (huge outputs). */
  digest?: boolean;
  transform?: Transform;
}

/** Starts `etcdctl ARGS` in the background under `spawn` (see file comment). */
export interface SpawnStep {
  spawn: string;
  args: string[];
  /** Written to its stdin at once; stdin stays open for `input` steps. */
  stdin?: string;
}

/** Types `text` (templates resolved) into the background etcdctl `input`. */
export interface InputStep {
  input: string;
  text: string;
  /** Close its stdin after the text (interactive etcdctl then exits: EOF). */
  end?: boolean;
}

/** Waits until the background etcdctl `await` satisfies `until` (or exits); records its output. */
export interface AwaitStep {
  await: string;
  /** Condition on what it printed; default: it has exited. */
  until?: Condition;
  /** Deadline for the condition (default 10 s). */
  timeoutMs?: number;
  /** Exit code the reference's etcdctl must show; -1 (default) = still running, stopped here. */
  code?: number;
  /** Keep it running (record the output so far and continue from there at the next await). */
  keep?: boolean;
  transform?: Transform;
}

/** Puts `key` until the background watch `barrier` prints that put (see file comment). */
export interface BarrierStep {
  barrier: string;
  key: string;
  timeoutMs?: number;
}

/** Runs `fn` on each side's member, concurrently (e.g. a restart in the middle of a scenario). */
export interface CallStep {
  /** What it does, for the transcript. */
  call: string;
  fn: (m: Member) => Promise<unknown>;
}

/** Any step of a scenario: a command (Step) or a background-process step. */
export type ScenarioStep = Step | SpawnStep | InputStep | AwaitStep | BarrierStep | CallStep;

export interface TranscriptEntry extends Normalized {
  cmd: string;
}

export interface ScenarioResult {
  reference: TranscriptEntry[];
  target: TranscriptEntry[];
}

interface Running {
  proc: BackgroundEtcdctl;
  args: string[];
  /** stdout/stderr bytes already recorded by an earlier await (or dropped by a barrier). */
  outFrom: number;
  errFrom: number;
}

class Side {
  readonly normalizer: Normalizer;
  readonly captures = new Map<string, string>();
  readonly background = new Map<string, Running>();
  private barriers = 0;
  constructor(readonly member: Member) {
    this.normalizer = new Normalizer([{ clientPort: member.clientPort, peerPort: member.peerPort, name: member.name }]);
  }

  private proc(name: string): Running {
    const r = this.background.get(name);
    if (!r) throw new Error(`scenario: no background etcdctl named ${JSON.stringify(name)}`);
    return r;
  }

  spawn(step: SpawnStep): void {
    if (this.background.has(step.spawn)) throw new Error(`scenario: background etcdctl ${JSON.stringify(step.spawn)} already exists`);
    const args = step.args.map((a) => this.resolve(a));
    const proc = startEtcdctl(this.member.endpoint, args, { stdin: step.stdin === undefined ? undefined : this.resolve(step.stdin) });
    this.background.set(step.spawn, { proc, args, outFrom: 0, errFrom: 0 });
  }

  input(step: InputStep): void {
    const r = this.proc(step.input);
    r.proc.write(this.resolve(step.text));
    if (step.end) r.proc.endInput();
  }

  /** Waits for the condition; returns the output since the last await and whether the condition held. */
  async await(step: AwaitStep): Promise<{ raw: EtcdctlResult; norm: Normalized; met: boolean }> {
    const r = this.proc(step.await);
    const timeoutMs = step.timeoutMs ?? 10_000;
    const until: Condition = step.until ?? ((p) => !p.running);
    const since = (): OutputView => ({
      running: r.proc.running,
      stdout: r.proc.stdoutBytes.subarray(r.outFrom).toString('utf8'),
      stderr: Buffer.from(r.proc.stderr).subarray(r.errFrom).toString('utf8'),
    });
    const met = await r.proc.waitFor(() => until(since()), timeoutMs);
    await r.proc.settle();
    const full = step.keep ? r.proc.result() : await r.proc.stop();
    if (!step.keep) this.background.delete(step.await);
    const stdoutBytes = full.stdoutBytes.subarray(r.outFrom);
    const stderrBytes = full.stderrBytes.subarray(r.errFrom);
    r.outFrom = full.stdoutBytes.length;
    r.errFrom = full.stderrBytes.length;
    const raw: EtcdctlResult = { ...full, stdoutBytes, stderrBytes, stdout: stdoutBytes.toString('utf8'), stderr: stderrBytes.toString('utf8') };
    let norm = this.normalizer.normalize(r.args, raw);
    if (!met) norm = { ...norm, stderr: norm.stderr + `[harness: condition not met within ${timeoutMs} ms]\n` };
    return { raw, norm, met };
  }

  /** Puts `key` until the watch prints it, then drops the watch's output so far and rebases revisions. */
  async barrier(step: BarrierStep): Promise<void> {
    const r = this.proc(step.barrier);
    const deadline = Date.now() + (step.timeoutMs ?? 15_000);
    const key = this.resolve(step.key);
    let last = '';
    for (let i = 0; ; i++) {
      if (Date.now() > deadline || !r.proc.running) {
        throw new Error(`barrier: ${r.proc.argv.join(' ')} on ${this.member.kind} never printed a put of ${key}\nstdout: ${r.proc.stdout}\nstderr: ${r.proc.stderr}`);
      }
      this.barriers += 1;
      last = `barrier-${this.barriers}`;
      await etcdctlOk(this.member.endpoint, ['put', key, last]);
      if (await r.proc.waitFor(() => markerEnd(r.proc.stdoutBytes, last) >= 0, Math.min(200 * (i + 1), 1000))) break;
    }
    // Every earlier barrier put was printed before the last one: drop everything up to it.
    r.outFrom = markerEnd(r.proc.stdoutBytes, last);
    r.errFrom = Buffer.byteLength(r.proc.stderr);
    this.normalizer.revisionBase = await currentRevision(this.member);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.background.values()].map((r) => r.proc.stop()));
    this.background.clear();
  }

  resolve(s: string): string {
    return s.replace(/\{(rev)([+-]\d+)?\}|\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (all, rev: string, off: string, name: string) => {
      if (rev) return (this.normalizer.revisionBase + BigInt(off ?? 0)).toString();
      const v = this.captures.get(name);
      if (v === undefined) return all;
      return v;
    });
  }

  async run(step: Step): Promise<{ raw: EtcdctlResult; norm: Normalized }> {
    const args = step.args.map((a) => this.resolve(a));
    const stdin = typeof step.stdin === 'string' ? this.resolve(step.stdin) : step.stdin;
    const raw = await etcdctl(this.member.endpoint, args, { stdin });
    if (step.capture) {
      const m = step.capture.re.exec(raw.stdout);
      if (m) this.captures.set(step.capture.name, m[1]);
    }
    let norm = this.normalizer.normalize(args, raw);
    if (step.digest) {
      const { createHash } = await import('node:crypto');
      norm = { ...norm, stdout: `<${raw.stdoutBytes.length} bytes sha256=${createHash('sha256').update(raw.stdoutBytes).digest('hex').slice(0, 16)}>` };
    }
    return { raw, norm };
  }
}

/** Reads a side's current revision (no write: a get of a key that is never written). */
export async function currentRevision(m: Member): Promise<bigint> {
  const r = await etcdctl(m.endpoint, ['get', '/__harness_never_written__', '-w', 'json']);
  if (r.code !== 0) throw new Error(`cannot read the revision of ${m.kind} ${m.endpoint}: code ${r.code}\n${r.stderr}\n${m.logTail(2000)}`);
  return headerRevision(r.stdout);
}

export interface ScenarioOptions {
  /** Show revisions as absolute numbers instead of relative to the scenario's start. */
  absoluteRevisions?: boolean;
}

/** Runs `steps` on both sides of `pair`; throws if the reference disagrees with a step's expected code. */
export async function runScenario(pair: Pair, steps: ScenarioStep[], opts: ScenarioOptions = {}): Promise<ScenarioResult> {
  const ref = new Side(pair.reference);
  const tgt = new Side(pair.target);
  if (!opts.absoluteRevisions) {
    const [a, b] = await Promise.all([currentRevision(pair.reference), currentRevision(pair.target)]);
    ref.normalizer.revisionBase = a;
    tgt.normalizer.revisionBase = b;
  }
  const result: ScenarioResult = { reference: [], target: [] };
  const spawned = new Map<string, string>();
  const record = (cmd: string, r: Normalized, t: Normalized, transform?: Transform): void => {
    result.reference.push({ cmd, ...(transform ? transform(r) : r) });
    result.target.push({ cmd, ...(transform ? transform(t) : t) });
  };
  const none: Normalized = { code: 0, stdout: '', stderr: '' };
  try {
    for (const step of steps) {
      if ('call' in step) {
        await Promise.all([step.fn(pair.reference), step.fn(pair.target)]);
        record(`(${step.call})`, none, none);
      } else if ('spawn' in step) {
        const cmd = ['etcdctl', ...step.args.map(quote)].join(' ');
        spawned.set(step.spawn, cmd);
        ref.spawn(step);
        tgt.spawn(step);
        record(`${step.spawn}& ${cmd}` + (step.stdin === undefined ? '' : ` <<< ${preview(step.stdin)}`), none, none);
      } else if ('input' in step) {
        ref.input(step);
        tgt.input(step);
        record(`${step.input}< ${preview(step.text)}${step.end ? ' <EOF>' : ''}`, none, none);
      } else if ('barrier' in step) {
        await Promise.all([ref.barrier(step), tgt.barrier(step)]);
        record(`${step.barrier}: barrier (put ${step.key} until printed; revisions rebased)`, none, none);
      } else if ('await' in step) {
        const [r, t] = await Promise.all([ref.await(step), tgt.await(step)]);
        const expected = step.code ?? -1;
        if (!r.met || r.raw.code !== expected) {
          throw new Error(
            `the reference etcd's ${r.raw.argv.join(' ')} ${r.met ? `shows exit code ${r.raw.code}, the scenario expects ${expected}` : 'never met the await condition'}\n` +
              `stdout: ${r.raw.stdout.slice(0, 2000)}\nstderr: ${r.raw.stderr.slice(0, 2000)}`,
          );
        }
        record(`${step.await}: ${step.keep ? 'output so far of' : 'output of'} ${spawned.get(step.await) ?? '?'}`, r.norm, t.norm, step.transform);
      } else {
        const cmd = ['etcdctl', ...step.args.map(quote)].join(' ') + (step.stdin === undefined ? '' : ` <<< ${preview(step.stdin)}`);
        const [r, t] = await Promise.all([ref.run(step), tgt.run(step)]);
        const expected = step.code ?? 0;
        if (r.raw.code !== expected) {
          throw new Error(
            `the reference etcd exited ${r.raw.code}, the scenario expects ${expected}: ${r.raw.argv.join(' ')}\n` +
              `stdout: ${r.raw.stdout.slice(0, 2000)}\nstderr: ${r.raw.stderr.slice(0, 2000)}`,
          );
        }
        record(cmd, r.norm, t.norm, step.transform);
      }
    }
  } finally {
    await Promise.all([ref.stopAll(), tgt.stopAll()]);
  }
  return result;
}

/**
 * Byte offset just past the line that shows `marker` as a value in watch output (simple:
 * the value line; json: the response line, where values are base64), or -1.
 */
export function markerEnd(stdout: Buffer, marker: string): number {
  for (const needle of [`\n${marker}\n`, `"value":"${Buffer.from(marker).toString('base64')}"`]) {
    const i = stdout.indexOf(needle);
    if (i < 0) continue;
    const nl = stdout.indexOf('\n', needle.startsWith('\n') ? i + 1 : i);
    if (nl >= 0) return nl + 1;
  }
  return -1;
}

/** An argument as it would be typed: plain words as they are, anything else JSON-quoted. */
function quote(arg: string): string {
  return /^[A-Za-z0-9_\/.:=,+@%{}~-]+$/.test(arg) ? arg : JSON.stringify(arg);
}

function preview(stdin: string | Buffer): string {
  if (Buffer.isBuffer(stdin)) return stdin.length > 40 ? `<${stdin.length} bytes>` : JSON.stringify(stdin.toString('latin1'));
  return stdin.length > 200 ? `<${stdin.length} chars>` : JSON.stringify(stdin);
}

/**
 * Runs a scenario and asserts that the target's transcript equals the reference's.
 * Returns the result for further assertions.
 */
export async function expectSameAsEtcd(pair: Pair, steps: ScenarioStep[], opts: ScenarioOptions = {}): Promise<ScenarioResult> {
  const res = await runScenario(pair, steps, opts);
  for (const m of [pair.reference, pair.target]) {
    if (!m.running) {
      const e = m.exitInfo;
      throw new Error(`${m.kind} ${m.endpoint} exited during the scenario (code=${e?.code} signal=${e?.signal}). Output:\n${m.logTail()}`);
    }
  }
  if (process.env.DIFF_DUMP) {
    // DIFF_DUMP=1 prints the normalized reference transcript: what the target must print.
    console.log(res.reference.map((e) => `$ ${e.cmd}\n[exit ${e.code}]\n${e.stdout}${e.stderr ? `[stderr]\n${e.stderr}` : ''}`).join('\n'));
  }
  expect(res.target).toEqual(res.reference);
  return res;
}

/** A key prefix unique to one test, e.g. `/diff/get-flags/`. */
export function prefixFor(name: string): string {
  return `/diff/${name.replace(/[^A-Za-z0-9_-]+/g, '-')}/`;
}
