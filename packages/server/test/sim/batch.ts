/**
 * Shared by the simulator's jest files: each runs one share of the seed batch, so that
 * jest's workers run the shares in parallel. SIM_SEEDS (default 300) is the batch size,
 * SIM_SEED_START (default 1) its first seed; SIM_SEED=N replays seed N in share 0 (with the
 * tail of its trace printed on failure) while the other shares run their seeds.
 */
import { SimFailure, runSeed } from './simulator';

export const SHARES = 2;

export function defineSimBatch(share: number): void {
  const only = process.env.SIM_SEED;
  const count = Number(process.env.SIM_SEEDS ?? 300);
  const start = Number(process.env.SIM_SEED_START ?? 1);

  // With SIM_SEED, share 0 replays that seed with its trace; the other shares run their part
  // of the batch as usual (no placeholder test).
  if (only !== undefined && share === 0) {
    test(`seed=${only}`, () => {
      try {
        const st = runSeed(Number(only), { trace: true });
        console.log(JSON.stringify(st));
      } catch (e) {
        if (e instanceof SimFailure) console.log(e.trace.slice(-400).join('\n'));
        throw e;
      }
    });
    return;
  }

  const seeds: number[] = [];
  for (let seed = start + share; seed < start + count; seed += SHARES) seeds.push(seed);
  test(`${seeds.length} seeds (share ${share + 1}/${SHARES} of ${start}..${start + count - 1}): election safety, log matching, leader completeness, state-machine safety, no lost writes, linearizable reads, liveness after healing`, () => {
    const failures: string[] = [];
    let acked = 0;
    for (const seed of seeds) {
      try {
        acked += runSeed(seed).putsAcked;
      } catch (e) {
        failures.push(e instanceof Error ? e.message.split('\n')[0] : String(e));
      }
    }
    if (failures.length > 0) throw new Error(`${failures.length} failing seeds:\n${failures.join('\n')}`);
    expect(acked).toBeGreaterThan(0);
  }, 600_000);
}
