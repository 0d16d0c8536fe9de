/**
 * Shared by `coord config get|set|watch PREFIX`: a configuration is every key under PREFIX,
 * read as one JSON object at one revision, as @coord/recipes' ConfigWatcher reads a prefix:
 *
 *     app/db/host = db1           →   {"db/host": "db1", "db/port": 5432}
 *     app/db/port = 5432
 *
 * Names are the keys relative to PREFIX (end PREFIX with "/": it is a plain key prefix, so
 * "app" would also match "apple/..."). A value that parses as JSON is that JSON value;
 * anything else is its text. `config set` writes in one transaction, so watchers see one
 * change per `set`, never half of one.
 */
import type { KeyValue } from '@coord/client';
import { badArgs } from '../errors';

/** A stored value: its JSON value if it parses, else its UTF-8 text. */
export function decodeValue(value: Buffer): unknown {
  const text = value.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The configuration object of `kvs` under `prefix`, names sorted by key bytes. */
export function configObject(prefix: string, kvs: readonly KeyValue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const sorted = [...kvs].sort((a, b) => Buffer.compare(a.key, b.key));
  for (const kv of sorted) out[kv.keyString().slice(prefix.length)] = decodeValue(kv.value);
  return out;
}

/** What `config set` writes: name → stored text, or null to delete. */
export type ConfigWrites = Map<string, string | null>;

/**
 * `NAME=VALUE` words: VALUE is stored as given (so `port=5432` reads back as the number 5432
 * and `host=db1` as the string "db1").
 */
export function writesFromPairs(pairs: readonly string[]): ConfigWrites {
  const out: ConfigWrites = new Map();
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw badArgs(`expected NAME=VALUE, got ${JSON.stringify(p)}`, 'e.g. coord config set app/ db/host=db1 db/port=5432');
    out.set(p.slice(0, eq), p.slice(eq + 1));
  }
  return out;
}

/**
 * A JSON object from stdin: each value is stored as its JSON text (so strings keep their
 * quotes and read back as strings, exactly); `null` deletes the name.
 */
export function writesFromJson(text: string): ConfigWrites {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw badArgs(`stdin is not JSON: ${(err as Error).message}`, 'pipe a JSON object, e.g. echo \'{"db/port": 5432}\' | coord config set app/');
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw badArgs('stdin must hold a JSON object of NAME: VALUE');
  const out: ConfigWrites = new Map();
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (k === '') throw badArgs('a name may not be empty');
    out.set(k, v === null ? null : JSON.stringify(v));
  }
  return out;
}

/** A signal name as `--signal` takes it: `HUP`, `SIGHUP` or its number. */
export function parseSignal(raw: string): NodeJS.Signals {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { signals } = (require('node:os') as typeof import('node:os')).constants;
  const table = signals as Record<string, number>;
  const name = /^\d+$/.test(raw)
    ? Object.keys(table).find((k) => table[k] === Number(raw))
    : raw.toUpperCase().startsWith('SIG')
      ? raw.toUpperCase()
      : `SIG${raw.toUpperCase()}`;
  if (name && name in table && name !== 'SIGKILL' && name !== 'SIGSTOP') return name as NodeJS.Signals;
  throw badArgs(`unknown signal ${JSON.stringify(raw)} for --signal`, 'e.g. --signal HUP, --signal USR1');
}
