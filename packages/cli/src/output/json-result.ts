/**
 * The `--json` view of a command's result (oclif's flag: `run()` returns the result, oclif
 * prints it). JSON has no int64, so bigints become their exact decimal digits as strings
 * (DESIGN §3.4: decimal strings at JSON edges). Keys and values print as UTF-8 text when they
 * are valid UTF-8, otherwise as `{"base64": "..."}`, so no byte is ever lost.
 */
export function toJsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) {
    const text = value.toString('utf8');
    return Buffer.from(text, 'utf8').equals(value) ? text : { base64: value.toString('base64') };
  }
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonSafe(v);
    return out;
  }
  return value;
}
