/**
 * Go's formatting rules, reproduced byte for byte, because etcdctl's printers are Go code:
 * `%q` (strconv.Quote), encoding/json string escaping (Go 1.19, the toolchain of etcdctl
 * 3.4.23), go-humanize's `Bytes`, strconv.ParseInt's error texts and time.ParseDuration.
 * Everything here is pure and has no dependencies, so the benchmark can reuse it.
 */

const LOWER_HEX = '0123456789abcdef';

function hex2(byte: number): string {
  return LOWER_HEX[byte >> 4] + LOWER_HEX[byte & 15];
}

/**
 * Decode one UTF-8 sequence the way Go's utf8.DecodeRune does: overlong forms, surrogates and
 * values above U+10FFFF are invalid. Returns [rune, width]; rune -1 means "invalid, width 1".
 */
export function decodeRune(b: Uint8Array, i: number): [number, number] {
  const b0 = b[i];
  if (b0 < 0x80) return [b0, 1];
  const cont = (j: number, lo = 0x80, hi = 0xbf): boolean => j < b.length && b[j] >= lo && b[j] <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    if (cont(i + 1)) return [((b0 & 0x1f) << 6) | (b[i + 1] & 0x3f), 2];
    return [-1, 1];
  }
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    if (cont(i + 1, lo, hi) && cont(i + 2)) {
      return [((b0 & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f), 3];
    }
    return [-1, 1];
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    if (cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3)) {
      return [((b0 & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f), 4];
    }
  }
  return [-1, 1];
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
export function isPrint(rune: number): boolean {
  if (rune === 0x20) return true;
  if (rune < 0x20 || rune === 0x7f) return false;
  return PRINTABLE.test(String.fromCodePoint(rune));
}

/** Go's `%q` of a string (strconv.Quote) given its bytes. */
export function goQuote(input: Uint8Array | string): string {
  const b = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let out = '"';
  for (let i = 0; i < b.length; ) {
    const [r, width] = decodeRune(b, i);
    if (r < 0) {
      out += '\\x' + hex2(b[i]);
      i += 1;
      continue;
    }
    i += width;
    if (r === 0x22) out += '\\"';
    else if (r === 0x5c) out += '\\\\';
    else if (isPrint(r)) out += String.fromCodePoint(r);
    else if (r === 0x07) out += '\\a';
    else if (r === 0x08) out += '\\b';
    else if (r === 0x0c) out += '\\f';
    else if (r === 0x0a) out += '\\n';
    else if (r === 0x0d) out += '\\r';
    else if (r === 0x09) out += '\\t';
    else if (r === 0x0b) out += '\\v';
    else if (r < 0x20 || r === 0x7f) out += '\\x' + hex2(r);
    else if (r < 0x10000) out += '\\u' + r.toString(16).padStart(4, '0');
    else out += '\\U' + r.toString(16).padStart(8, '0');
  }
  return out + '"';
}

/**
 * Go's strconv.Unquote of the quoted string at the start of `s` (after optional spaces), as
 * fmt.Sscanf's `%q` verb reads it: a double-quoted string with Go escapes, or a back-quoted raw
 * string. Returns the value (as bytes: escapes such as \xff need not be valid UTF-8) and the
 * index just after the closing quote, or undefined when there is no well-formed quoted string.
 */
export function scanQuoted(s: string, from = 0): { value: Buffer; end: number } | undefined {
  let i = from;
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  if (s[i] === '`') {
    const close = s.indexOf('`', i + 1);
    if (close < 0) return undefined;
    return { value: Buffer.from(s.slice(i + 1, close).replace(/\r/g, ''), 'utf8'), end: close + 1 };
  }
  if (s[i] !== '"') return undefined;
  const bytes: number[] = [];
  const pushString = (str: string): void => {
    for (const byte of Buffer.from(str, 'utf8')) bytes.push(byte);
  };
  i++;
  while (i < s.length) {
    const c = s[i];
    if (c === '"') return { value: Buffer.from(bytes), end: i + 1 };
    if (c === '\n') return undefined;
    if (c !== '\\') {
      const cp = s.codePointAt(i) as number;
      pushString(String.fromCodePoint(cp));
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = s[i + 1];
    const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34 };
    if (e !== undefined && simple[e] !== undefined) {
      bytes.push(simple[e]);
      i += 2;
      continue;
    }
    const hexRun = (n: number): number | undefined => {
      const h = s.slice(i + 2, i + 2 + n);
      return h.length === n && /^[0-9a-fA-F]+$/.test(h) ? parseInt(h, 16) : undefined;
    };
    if (e === 'x') {
      const v = hexRun(2);
      if (v === undefined) return undefined;
      bytes.push(v);
      i += 4;
      continue;
    }
    if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const v = hexRun(n);
      if (v === undefined || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return undefined;
      pushString(String.fromCodePoint(v));
      i += 2 + n;
      continue;
    }
    if (e !== undefined && e >= '0' && e <= '7') {
      const o = s.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(o) || parseInt(o, 8) > 255) return undefined;
      bytes.push(parseInt(o, 8));
      i += 4;
      continue;
    }
    return undefined;
  }
  return undefined;
}

/** Go's encoding/json string encoding (HTML-safe, as json.Marshal does; Go 1.19 rules). */
export function goJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      out += '\\u' + c.toString(16).padStart(4, '0');
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'; // a lone surrogate: invalid UTF-8 in Go
    else out += ch;
  }
  return out + '"';
}

/** fmt's `%.Nf` for N = 0 or 1: correctly rounded, ties to even (JS toFixed breaks ties upward). */
function formatFixed(x: number, digits: 0 | 1): string {
  const scaled = x * 10 ** digits;
  if (Number.isInteger(scaled * 2) && !Number.isInteger(scaled)) {
    // an exact tie: round half to even
    const down = Math.floor(scaled);
    const even = down % 2 === 0 ? down : down + 1;
    return (even / 10 ** digits).toFixed(digits);
  }
  return x.toFixed(digits);
}

/** go-humanize `Bytes` (SI units, base 1000), as etcdctl prints "DB SIZE": "20 kB". */
export function humanizeBytes(size: bigint): string {
  if (size < 10n) return `${size} B`;
  const sizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const s = Number(size); // float64(s), rounded to nearest like Go's conversion
  const e = Math.floor(Math.log(s) / Math.log(1000));
  const val = Math.floor((s / Math.pow(1000, e)) * 10 + 0.5) / 10;
  return `${formatFixed(val, val < 10 ? 1 : 0)} ${sizes[e]}`;
}

/** etcdctl's `addHexPrefix(hex.EncodeToString(b))`: every byte as `\xNN`. */
export function hexEscape(b: Uint8Array): string {
  let out = '';
  for (const byte of b) out += '\\x' + hex2(byte);
  return out;
}

/** fmt.Println of a []string: `[a b c]`. */
export function goStringSlice(xs: readonly string[]): string {
  return `[${xs.join(' ')}]`;
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/**
 * strconv.ParseInt(s, base, 64). Throws an Error whose message is Go's, e.g.
 * `strconv.ParseInt: parsing "zz": invalid syntax`.
 */
export function goParseInt(s: string, base: 10 | 16): bigint {
  const fail = (why: string): never => {
    throw new Error(`strconv.ParseInt: parsing ${goQuote(s)}: ${why}`);
  };
  if (s === '') fail('invalid syntax');
  let body = s;
  let negative = false;
  if (body[0] === '+' || body[0] === '-') {
    negative = body[0] === '-';
    body = body.slice(1);
  }
  const digits = base === 10 ? /^[0-9]+$/ : /^[0-9a-fA-F]+$/;
  if (!digits.test(body)) fail('invalid syntax');
  const magnitude = BigInt((base === 16 ? '0x' : '') + body);
  const value = negative ? -magnitude : magnitude;
  if (value > INT64_MAX || value < INT64_MIN) fail('value out of range');
  return value;
}

/** strconv.ParseBool: `invalid syntax` for anything but 1/t/T/TRUE/true/True and the falses. */
export function goParseBool(s: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  throw new Error(`strconv.ParseBool: parsing ${goQuote(s)}: invalid syntax`);
}

const DURATION_UNITS_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** time.ParseDuration, returning milliseconds (fractions kept). Errors carry Go's texts. */
export function goParseDurationMs(orig: string): number {
  const invalid = (): never => {
    throw new Error(`time: invalid duration ${goQuote(orig)}`);
  };
  let s = orig;
  let negative = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') invalid();
  let totalNs = 0;
  while (s !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?/.exec(s) as RegExpExecArray;
    const intPart = m[1];
    const frac = m[2] ?? '';
    if (intPart === '' && (frac === '' || frac === '.')) invalid();
    s = s.slice(m[0].length);
    const u = /^[^0-9.]*/.exec(s)?.[0] ?? '';
    if (u === '') throw new Error(`time: missing unit in duration ${goQuote(orig)}`);
    const scale = DURATION_UNITS_NS[u];
    if (scale === undefined) throw new Error(`time: unknown unit ${goQuote(u)} in duration ${goQuote(orig)}`);
    s = s.slice(u.length);
    totalNs += Number(`${intPart || '0'}${frac === '.' ? '' : frac}`) * scale;
  }
  if (totalNs > 2 ** 63) invalid();
  return (negative ? -totalNs : totalNs) / 1e6;
}
