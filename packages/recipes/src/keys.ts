/**
 * Key layouts shared by the recipes, and the range options that select "the first" or "the
 * last" key of a prefix by create revision, as etcd's clientv3 spells them.
 *
 * etcd's concurrency package (`clientv3/concurrency`) names a participant's key
 * `fmt.Sprintf("%s%x", prefix, leaseID)` with `prefix = name + "/"`: Go's `%x` of the int64
 * lease ID, lowercase and *not* zero-padded (unlike etcdctl's `%016x` when it prints a lease).
 * Using exactly that layout is what makes `etcdctl lock NAME`, `etcdctl elect NAME`, Go's
 * `concurrency.Mutex`/`Election` and ours contend in the same queue.
 */
import { toInt64, type Int64Input, type RangeOptions } from '@coord/client';

/** Go's `%x` of an int64: lowercase hex without padding, `-` before the magnitude if negative. */
export function leaseKeySuffix(leaseId: Int64Input): string {
  const n = toInt64(leaseId, 'lease id');
  return n < 0n ? '-' + (-n).toString(16) : n.toString(16);
}

/** The prefix of a named recipe: `name + "/"`, as etcd's `NewMutex`/`NewElection` build it. */
export function recipePrefix(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`name must be a non-empty string, got ${JSON.stringify(name)}`);
  return name + '/';
}

/** The participant key of a session in a named recipe: `<name>/<lease id in %x>`. */
export function leaseKey(name: string, leaseId: Int64Input): string {
  return recipePrefix(name) + leaseKeySuffix(leaseId);
}

/** clientv3's `WithFirstCreate()`: the key of the prefix with the lowest create revision. */
export const FIRST_CREATE: Readonly<RangeOptions> = Object.freeze({
  prefix: true,
  sortTarget: 'create',
  sortOrder: 'ascend',
  limit: 1,
});

/** clientv3's `WithLastCreate()`: the key of the prefix with the highest create revision. */
export const LAST_CREATE: Readonly<RangeOptions> = Object.freeze({
  prefix: true,
  sortTarget: 'create',
  sortOrder: 'descend',
  limit: 1,
});

/** A path segment (service name, instance ID): non-empty, no `/`, no NUL. */
export function assertSegment(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || /[/\0]/.test(value)) {
    throw new TypeError(`${name} must be a non-empty string without "/" or NUL, got ${JSON.stringify(value)}`);
  }
}
