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
 */
import { etcdctl, EtcdctlResult } from './etcdctl';
import { headerRevision, Normalized, Normalizer } from './normalize';
import type { Member } from './proc';
import type { Pair } from './target';

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
}

export interface TranscriptEntry extends Normalized {
  cmd: string;
}

export interface ScenarioResult {
  reference: TranscriptEntry[];
  target: TranscriptEntry[];
}

class Side {
  readonly normalizer: Normalizer;
  readonly captures = new Map<string, string>();
  constructor(readonly member: Member) {
    this.normalizer = new Normalizer([{ clientPort: member.clientPort, peerPort: member.peerPort, name: member.name }]);
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
export async function runScenario(pair: Pair, steps: Step[], opts: ScenarioOptions = {}): Promise<ScenarioResult> {
  const ref = new Side(pair.reference);
  const tgt = new Side(pair.target);
  if (!opts.absoluteRevisions) {
    const [a, b] = await Promise.all([currentRevision(pair.reference), currentRevision(pair.target)]);
    ref.normalizer.revisionBase = a;
    tgt.normalizer.revisionBase = b;
  }
  const result: ScenarioResult = { reference: [], target: [] };
  for (const step of steps) {
    const cmd = ['etcdctl', ...step.args.map(quote)].join(' ') + (step.stdin === undefined ? '' : ` <<< ${preview(step.stdin)}`);
    const [r, t] = await Promise.all([ref.run(step), tgt.run(step)]);
    const expected = step.code ?? 0;
    if (r.raw.code !== expected) {
      throw new Error(
        `the reference etcd exited ${r.raw.code}, the scenario expects ${expected}: ${r.raw.argv.join(' ')}\n` +
          `stdout: ${r.raw.stdout.slice(0, 2000)}\nstderr: ${r.raw.stderr.slice(0, 2000)}`,
      );
    }
    result.reference.push({ cmd, ...r.norm });
    result.target.push({ cmd, ...t.norm });
  }
  return result;
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
export async function expectSameAsEtcd(pair: Pair, steps: Step[], opts: ScenarioOptions = {}): Promise<ScenarioResult> {
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
