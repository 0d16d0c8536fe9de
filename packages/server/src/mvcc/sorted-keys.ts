/**
 * The store's keys in byte order, for range scans. Inserting into one sorted array cost a
 * memmove of the whole array per new key (keys that do not arrive in order — "key9" then
 * "key10" — made loading or replaying 100k keys spend 4.5 s in it). New keys that do not
 * sort last wait in a side buffer, sorted and merged in one O(n + p log p) pass when a
 * reader needs the order or the buffer grows past a bound.
 */
import { assert } from '../util/assert';
import type { KeyString } from './key-range';

/** Merge at the latest when this many keys wait (bounds the side buffer's memory and a reader's wait). */
const PENDING_MAX = 16_384;

export class SortedKeys {
  private sorted: KeyString[] = [];
  private pending: KeyString[] = [];

  get size(): number {
    return this.sorted.length + this.pending.length;
  }

  /** The keys in order (merges waiting keys first). The array must not be modified. */
  keys(): readonly KeyString[] {
    if (this.pending.length > 0) this.merge();
    return this.sorted;
  }

  /** A key not present before. */
  insert(key: KeyString): void {
    const s = this.sorted;
    if (this.pending.length === 0 && (s.length === 0 || s[s.length - 1] < key)) {
      s.push(key);
      return;
    }
    this.pending.push(key);
    if (this.pending.length >= PENDING_MAX) this.merge();
  }

  /** Appends a key that sorts after every key held (restoring a snapshot in order). */
  pushInOrder(key: KeyString): void {
    assert(this.pending.length === 0 && (this.sorted.length === 0 || this.sorted[this.sorted.length - 1] < key), 'keys pushed in order');
    this.sorted.push(key);
  }

  removeAll(removed: ReadonlySet<KeyString>): void {
    const s = this.keys() as KeyString[];
    let j = 0;
    for (let i = 0; i < s.length; i++) if (!removed.has(s[i])) s[j++] = s[i];
    s.length = j;
  }

  private merge(): void {
    const p = this.pending.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    this.pending = [];
    const s = this.sorted;
    const out: KeyString[] = new Array(s.length + p.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < s.length && j < p.length) {
      assert(s[i] !== p[j], 'a key is inserted once');
      out[k++] = s[i] < p[j] ? s[i++] : p[j++];
    }
    while (i < s.length) out[k++] = s[i++];
    while (j < p.length) out[k++] = p[j++];
    this.sorted = out;
  }
}
