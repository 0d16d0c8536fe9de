/**
 * Picker: choose one of a changing set of instances, round-robin or at random. It is plain
 * data (no I/O): `ServiceRegistry.picker()` keeps one current from a watch; tests and callers
 * with their own lists use it directly.
 *
 * Round-robin keeps one counter across updates and indexes the list sorted by key, so an
 * update that adds or removes one instance does not restart the rotation at the first one
 * (which would overload it when membership churns).
 */

export type PickStrategy = 'round-robin' | 'random';

export class Picker<T> {
  private items: readonly T[] = [];
  private counter = 0;

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
    const item = this.items[this.counter % n];
    this.counter = (this.counter + 1) % Number.MAX_SAFE_INTEGER;
    return item;
  }
}
