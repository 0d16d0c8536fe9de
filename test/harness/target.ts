/**
 * Which server the process-level suites test, and a jest fixture that starts it.
 *
 * DIFF_TARGET=coord (default) tests `coord server`; DIFF_TARGET=etcd puts a second,
 * independent etcd in its place. The second mode exists to validate the harness and the
 * normalization: etcd against etcd must always be green. The crash suite reads
 * CRASH_TARGET the same way (falling back to DIFF_TARGET).
 */
import { startCoord } from './coord';
import { startEtcd } from './etcd';
import { Member } from './proc';

export type TargetKind = 'coord' | 'etcd';

/** The target named by `envVar`, else by DIFF_TARGET, else coord. */
export function targetKind(envVar = 'DIFF_TARGET'): TargetKind {
  const v = (process.env[envVar] || process.env.DIFF_TARGET || 'coord').trim().toLowerCase();
  if (v !== 'coord' && v !== 'etcd') throw new Error(`${envVar} must be "coord" or "etcd", got ${JSON.stringify(v)}`);
  return v;
}

export function startTarget(kind: TargetKind, extraArgs?: string[]): Promise<Member> {
  return kind === 'etcd' ? startEtcd({ extraArgs }) : startCoord({ extraArgs });
}

export interface Pair {
  /** The real etcd: the oracle. */
  reference: Member;
  /** coord (or a second etcd with DIFF_TARGET=etcd). */
  target: Member;
  targetKind: TargetKind;
}

/**
 * Registers beforeAll/afterAll that start one reference etcd and one target for the whole
 * test file, and returns a handle whose fields are filled in by beforeAll.
 */
export function usePair(opts: { extraArgs?: string[] } = {}): Pair {
  const pair = { targetKind: targetKind() } as Pair;
  beforeAll(async () => {
    const [ref, tgt] = await Promise.allSettled([startEtcd({ extraArgs: opts.extraArgs }), startTarget(pair.targetKind, opts.extraArgs)]);
    if (ref.status === 'fulfilled') pair.reference = ref.value;
    if (tgt.status === 'fulfilled') pair.target = tgt.value;
    if (ref.status === 'rejected') throw ref.reason;
    if (tgt.status === 'rejected') throw tgt.reason;
  }, 60_000);
  afterAll(async () => {
    await Promise.all([pair.reference?.destroy(), pair.target?.destroy()]);
  }, 30_000);
  return pair;
}
