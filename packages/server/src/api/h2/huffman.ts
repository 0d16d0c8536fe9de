/**
 * HPACK Huffman coding (RFC 7541 §5.2, code table in Appendix B).
 *
 * The code table is hpack.js's copy of Appendix B (`[bitLength, code]` per symbol, 0..256,
 * 256 being EOS); the tests check a few codes against the RFC and round-trip against
 * Node's own (nghttp2) encoder.
 *
 * Decoding is a nibble-driven state machine, as nghttp2 does it: the states are the
 * internal nodes of the code tree (256 of them), and for each state and 4-bit input a
 * precomputed entry gives the next state and at most one emitted symbol (the shortest
 * code is 5 bits, so 4 bits can finish at most one symbol). A string is valid when it
 * ends in a state reached from the root by at most 7 one-bits: RFC 7541 §5.2 requires
 * padding to be the most significant bits of EOS (all ones) and shorter than 8 bits, and
 * forbids EOS itself in a string.
 */

// hpack.js has no type definitions.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const CODES = (require('hpack.js') as { huffman: { encode: [number, number][] } }).huffman.encode;

const EOS = 256;
const SYMBOLS = 257;

/** Code tree: node i has children tree[2i] (bit 0) and tree[2i+1] (bit 1); a leaf is -(symbol + 1). */
function buildTree(): { tree: Int32Array; nodes: number } {
  if (CODES.length !== SYMBOLS) throw new Error(`assertion failed: Huffman table has ${CODES.length} symbols, expected ${SYMBOLS}`);
  const tree = new Int32Array(2 * SYMBOLS).fill(0);
  let nodes = 1; // root is node 0
  for (let sym = 0; sym < SYMBOLS; sym++) {
    const [bits, code] = CODES[sym];
    let node = 0;
    for (let i = bits - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = 2 * node + bit;
      if (i === 0) {
        if (tree[slot] !== 0) throw new Error('assertion failed: Huffman code is not prefix-free');
        tree[slot] = -(sym + 1);
      } else {
        if (tree[slot] < 0) throw new Error('assertion failed: Huffman code is not prefix-free');
        if (tree[slot] === 0) tree[slot] = nodes++;
        node = tree[slot];
      }
    }
  }
  if (nodes !== SYMBOLS - 1) throw new Error(`assertion failed: Huffman tree has ${nodes} internal nodes, expected ${SYMBOLS - 1}`);
  return { tree, nodes };
}

/** Transition entries: next state (bits 0-8), symbol (bits 9-17, 511 = none), failure (bit 18). */
const NO_SYMBOL = 511;
const FAIL = 1 << 18;

const { tree, nodes: STATES } = buildTree();
const TRANSITIONS = new Int32Array(STATES * 16);
/** Whether a string may end in this state (padding of at most 7 one-bits). */
const ACCEPTING = new Uint8Array(STATES);

(function buildStateMachine(): void {
  // Depth and all-ones-ness of each internal node's path from the root.
  const depth = new Int32Array(STATES);
  const allOnes = new Uint8Array(STATES);
  allOnes[0] = 1;
  const order = [0];
  for (let k = 0; k < order.length; k++) {
    const n = order[k];
    for (let bit = 0; bit < 2; bit++) {
      const c = tree[2 * n + bit];
      if (c > 0) {
        depth[c] = depth[n] + 1;
        allOnes[c] = allOnes[n] && bit === 1 ? 1 : 0;
        order.push(c);
      }
    }
  }
  for (let s = 0; s < STATES; s++) ACCEPTING[s] = allOnes[s] && depth[s] <= 7 ? 1 : 0;
  for (let s = 0; s < STATES; s++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = s;
      let sym = NO_SYMBOL;
      let fail = 0;
      for (let i = 3; i >= 0; i--) {
        const c = tree[2 * node + ((nibble >> i) & 1)];
        if (c < 0) {
          const symbol = -c - 1;
          if (symbol === EOS || sym !== NO_SYMBOL) fail = FAIL;
          sym = symbol;
          node = 0;
        } else {
          node = c;
        }
      }
      TRANSITIONS[s * 16 + nibble] = node | (sym << 9) | fail;
    }
  }
})();

export class HuffmanError extends Error {}

let scratch = Buffer.allocUnsafe(256);

/** Decodes a Huffman-coded string to latin1 (one character per octet). */
export function huffmanDecode(buf: Buffer, start: number, end: number): string {
  // Every symbol takes at least 5 bits, so the output has at most 8/5 of the input's length.
  const maxOut = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < maxOut) scratch = Buffer.allocUnsafe(Math.max(maxOut, 2 * scratch.length));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    let t = TRANSITIONS[state * 16 + (b >> 4)];
    if (t & FAIL) throw new HuffmanError('HPACK: EOS in a Huffman-coded string');
    let sym = (t >> 9) & 0x1ff;
    if (sym !== NO_SYMBOL) out[n++] = sym;
    state = t & 0x1ff;
    t = TRANSITIONS[state * 16 + (b & 0xf)];
    if (t & FAIL) throw new HuffmanError('HPACK: EOS in a Huffman-coded string');
    sym = (t >> 9) & 0x1ff;
    if (sym !== NO_SYMBOL) out[n++] = sym;
    state = t & 0x1ff;
  }
  if (!ACCEPTING[state]) throw new HuffmanError('HPACK: invalid Huffman padding');
  return out.toString('latin1', 0, n);
}

/** Length in bytes of the Huffman coding of a latin1 string. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += CODES[s.charCodeAt(i) & 0xff][0];
  return Math.ceil(bits / 8);
}

/** Huffman-codes a latin1 string (padding with the most significant bits of EOS). */
export function huffmanEncode(s: string): Buffer {
  const out = Buffer.alloc(huffmanLength(s));
  let acc = 0;
  let accBits = 0;
  let pos = 0;
  for (let i = 0; i < s.length; i++) {
    const [bits, code] = CODES[s.charCodeAt(i) & 0xff];
    // Feed at most 8 bits at a time so the accumulator stays far below 2^31.
    for (let left = bits; left > 0; ) {
      const take = Math.min(8, left);
      left -= take;
      acc = (acc << take) | (Math.floor(code / 2 ** left) & ((1 << take) - 1));
      accBits += take;
      while (accBits >= 8) {
        accBits -= 8;
        out[pos++] = (acc >> accBits) & 0xff;
      }
      acc &= (1 << accBits) - 1;
    }
  }
  if (accBits > 0) out[pos++] = ((acc << (8 - accBits)) | ((1 << (8 - accBits)) - 1)) & 0xff;
  return out;
}
