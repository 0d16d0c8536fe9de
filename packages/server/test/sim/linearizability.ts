/**
 * A linearizability checker for key-value histories (Wing & Gong's search with Lowe's
 * memoization, as in Porcupine): a history is linearizable when every operation can be
 * placed at one instant between its call and its return so that the sequence is legal for
 * a register. Keys are independent registers, so the history is checked key by key
 * (Herlihy & Wing's locality: a history is linearizable iff each object's is).
 *
 * An operation whose outcome is unknown (the client gave up, or its member crashed) has
 * return time +Infinity: it may take effect at any point after its call, or never (it can
 * always be placed after everything else, where it is invisible).
 */

export interface KvOp {
  readonly id: number;
  readonly kind: 'put' | 'get';
  readonly key: string;
  /** put: the value written; get: the value read (null: absent). */
  readonly value: string | null;
  readonly call: number;
  /** +Infinity if the outcome is unknown (puts only; a get without an answer is left out). */
  readonly ret: number;
}

export type CheckResult =
  | { readonly ok: true; readonly inconclusive: boolean }
  | { readonly ok: false; readonly key: string; readonly ops: readonly KvOp[] };

interface Node {
  op: KvOp | null;
  bit: number;
  isCall: boolean;
  match: Node | null;
  prev: Node | null;
  next: Node | null;
}

/** Check one register's history. Returns true, false, or null when the search budget ran out. */
export function checkRegister(ops: readonly KvOp[], stepsMax = 2_000_000): boolean | null {
  if (ops.length === 0) return true;
  // Events in time order; at equal times calls come first, so that operations that touch
  // at one instant count as concurrent (never a false alarm from tie-breaking).
  const events: { t: number; isCall: boolean; op: KvOp; bit: number }[] = [];
  ops.forEach((op, bit) => {
    events.push({ t: op.call, isCall: true, op, bit });
    events.push({ t: op.ret, isCall: false, op, bit });
  });
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Node = { op: null, bit: -1, isCall: false, match: null, prev: null, next: null };
  let tail = head;
  const callNodes = new Map<number, Node>();
  for (const ev of events) {
    const n: Node = { op: ev.op, bit: ev.bit, isCall: ev.isCall, match: null, prev: tail, next: null };
    tail.next = n;
    tail = n;
    if (ev.isCall) callNodes.set(ev.bit, n);
    else {
      const c = callNodes.get(ev.bit);
      if (c === undefined) throw new Error('return before call');
      c.match = n;
    }
  }
  const lift = (n: Node): void => {
    n.prev!.next = n.next;
    if (n.next !== null) n.next.prev = n.prev;
    const m = n.match!;
    m.prev!.next = m.next;
    if (m.next !== null) m.next.prev = m.prev;
  };
  const unlift = (n: Node): void => {
    const m = n.match!;
    m.prev!.next = m;
    if (m.next !== null) m.next.prev = m;
    n.prev!.next = n;
    if (n.next !== null) n.next.prev = n;
  };
  let state: string | null = null;
  let linearized = 0n;
  const cache = new Set<string>();
  const calls: { node: Node; state: string | null }[] = [];
  let entry = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (++steps > stepsMax) return null;
    if (entry === null) return false;
    if (entry.isCall) {
      const op = entry.op!;
      let ok: boolean;
      let next: string | null = state;
      if (op.kind === 'put') {
        ok = true;
        next = op.value;
      } else {
        ok = op.value === state;
      }
      if (ok) {
        const lin = linearized | (1n << BigInt(entry.bit));
        const key = `${lin.toString(36)}|${next ?? '\u0000'}`;
        if (!cache.has(key)) {
          cache.add(key);
          calls.push({ node: entry, state });
          state = next;
          linearized = lin;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
    } else {
      // A return reached before its call was linearized: backtrack.
      const top = calls.pop();
      if (top === undefined) return false;
      state = top.state;
      linearized &= ~(1n << BigInt(top.node.bit));
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return true;
}

/** Check a key-value history key by key. */
export function checkKv(ops: readonly KvOp[]): CheckResult {
  const byKey = new Map<string, KvOp[]>();
  for (const op of ops) {
    if (op.call > op.ret) throw new Error(`op ${op.id} returns before its call`);
    let l = byKey.get(op.key);
    if (l === undefined) byKey.set(op.key, (l = []));
    l.push(op);
  }
  let inconclusive = false;
  for (const [key, l] of byKey) {
    const r = checkRegister(l);
    if (r === false) return { ok: false, key, ops: l };
    if (r === null) inconclusive = true;
  }
  return { ok: true, inconclusive };
}
