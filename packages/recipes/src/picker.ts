/**
 * Picker: choose one of a changing set of instances, round-robin or at random. It is plain
 * data (no I/O): `ServiceRegistry.picker()` keeps one current from a watch; tests and callers
 * with their own lists use it directly.
 *
 * Round-robin walks the list sorted by key and remembers the key it picked last; after an
 * update it goes on with the first key after that one, so adding or removing an instance
 * neither restarts the rotation at the first instance (which would overload it when
 * membership churns) nor skips one.
 */

export type PickStrategy = 'round-robin' | 'random';

export class Picker<T> {
  private items: readonly T[] = [];
  private keys: readonly string[] = [];
  private lastKey: string | undefined;

  constructor(
    readonly strategy: PickStrategy = 'round-robin',
    /** Key used to order the items (stable order for round-robin). */
    private readonly keyOf: (item: T) => string = (item) => String(item),
    /** Source of randomness in [0, 1) for 'random' (injectable for tests). */
    private readonly random: () => number = Math.random,
  ) {
    if (strategy !== 'round-robin' && strategy !== 'random') throw new TypeError(`strategy must be 'round-robin' or 'random', got ${String(strategy)}`);
  }

  /** Replace the set of items. */
  update(items: readonly T[]): void {
    this.items = [...items].sort((a, b) => {
      const ka = this.keyOf(a);
      const kb = this.keyOf(b);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    this.keys = this.items.map(this.keyOf);
  }

  /** How many items there are to pick from. */
  get size(): number {
    return this.items.length;
  }

  /** The items, in key order. */
  get all(): readonly T[] {
    return this.items;
  }

  /** One item, or undefined when there is none. */
  pick(): T | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    if (this.strategy === 'random') return this.items[Math.min(n - 1, Math.floor(this.random() * n))];
    // The first key greater than the last one picked (binary search), wrapping around.
    let lo = 0;
    let hi = n;
    const last = this.lastKey;
    if (last !== undefined) {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.keys[mid] <= last) lo = mid + 1;
        else hi = mid;
      }
    }
    const i = lo < n ? lo : 0;
    this.lastKey = this.keys[i];
    return this.items[i];
  }
}
