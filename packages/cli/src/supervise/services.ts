/**
 * Shared by `coord service register|list|watch`: the `--addr` and `--meta` syntax, and how an
 * instance prints. Instances live where @coord/recipes' ServiceRegistry puts them
 * (`/coord/services/<service>/<id>`, a JSON value), so programs using the library and
 * scripts using the CLI see the same registry.
 *
 * Simple output, one line per instance:
 *
 *     <id> <address>:<port>[ <k>=<v>,<k>=<v>...]         (IPv6 addresses in brackets)
 *
 * `service watch` puts the change first: `ADDED`, `UPDATED` or `REMOVED`, then the instance
 * line; the instances present when the watch starts print as `ADDED`.
 */
import type { ServiceEntry } from '@coord/recipes';
import { badArgs } from '../errors';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `HOST:PORT` or `[V6]:PORT`. */
export function parseHostPort(raw: string): HostPort {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(raw) ?? /^([^:[\]]+):(\d+)$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw badArgs(`--addr must be HOST:PORT (or [IPV6]:PORT), got ${JSON.stringify(raw)}`, 'e.g. --addr 10.0.0.7:8080');
  }
  return { host: m[1], port };
}

/** `HOST:PORT`, with IPv6 hosts in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * `--meta k=v` values. pflag joins repeated flags with commas, so the joined text is split
 * again only at commas followed by `key=`: `--meta tags=a,b --meta zone=eu` gives
 * `{tags: "a,b", zone: "eu"}`.
 */
export function parseMeta(joined: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (joined === '') return out;
  for (const part of joined.split(/,(?=[^,=]+=)/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw badArgs(`--meta must be KEY=VALUE, got ${JSON.stringify(part)}`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** The simple line of an instance. */
export function instanceLine(e: Pick<ServiceEntry, 'id' | 'address' | 'port' | 'metadata'>): string {
  const meta = Object.entries(e.metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${e.id} ${formatHostPort(e.address, e.port)}${meta ? ` ${meta}` : ''}`;
}

/** The JSON view of an instance (int64 as decimal strings via toJsonSafe). */
export function instanceJson(e: ServiceEntry): Record<string, unknown> {
  return {
    id: e.id,
    address: e.address,
    port: e.port,
    metadata: e.metadata,
    key: e.key,
    lease: e.leaseId,
    createRevision: e.createRevision,
    modRevision: e.modRevision,
  };
}

/** A table row: id, address, metadata, lease (hex, as etcdctl prints leases). */
export function instanceRow(e: ServiceEntry): string[] {
  const meta = Object.entries(e.metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return [e.id, formatHostPort(e.address, e.port), meta, e.leaseId.toString(16)];
}
