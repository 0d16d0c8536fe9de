/**
 * Randomness is injected (DESIGN.md §3.1): the core never calls Math.random, so a seeded
 * generator makes every run reproducible. The only use in raft is the randomized election
 * timeout (§5.2: "election timeouts are chosen randomly from a fixed interval").
 */
import { assert } from '../util/assert';

export interface Rand {
  /** A uniformly distributed integer in [0, n). */
  intn(n: number): number;
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Chaotic generator, 128-bit state), seeded through
 * splitmix32 so that neighbouring seeds give unrelated streams. Not cryptographic.
 */
export class SeededRand implements Rand {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    assert(Number.isInteger(seed), 'seed is an integer');
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  intn(n: number): number {
    assert(Number.isInteger(n), 'intn: n is an integer');
    assert(n > 0 && n <= 4294967296, 'intn: 0 < n <= 2^32');
    return Math.floor(this.float() * n);
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** A fresh generator whose stream depends on this one's (for independent sub-streams). */
  fork(): SeededRand {
    return new SeededRand(this.nextU32());
  }
}
