/**
 * Assertions for invariants (TigerBeetle style): a broken invariant is a bug, and the
 * process must stop rather than go on with state it cannot trust. Operating errors
 * (bad input, missing files) are typed errors, never assertions.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function unreachable(x: never): never {
  throw new Error(`assertion failed: unreachable value ${String(x)}`);
}
