/**
 * A small seeded PRNG (mulberry32) for process-level tests: every random choice a test
 * makes comes from here, and the test prints the seed, so a failure can be replayed with
 * the same choices (the timing of the processes themselves is, of course, not replayable).
 */
export type Rng = () => number;

/** Uniform in [0, 1), deterministic for a given 32-bit seed. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from `envVar` if set, else a fresh one. */
export function seedFromEnv(envVar: string): number {
  const v = process.env[envVar];
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${envVar} must be an integer, got ${JSON.stringify(v)}`);
    return n >>> 0;
  }
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

/** Integer in [lo, hi]. */
export function between(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}
