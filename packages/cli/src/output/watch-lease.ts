/**
 * etcdctl 3.4's printers for `watch` and `lease ...` (`etcdctl/ctlv3/command/printer*.go`),
 * in the four formats, byte for byte:
 *
 * - simple: `PUT`/`DELETE`, then the prev kv (with --prev-kv) and the kv as key and value
 *   lines (printKV; `--hex` escapes them); `lease %016x granted with TTL(%ds)`, ... .
 * - json: Go's json.Marshal of clientv3's structs, *not* of the protobuf messages:
 *   `WatchResponse` has untagged fields (`{"Header":{...},"Events":[...],"CompactRevision":0,
 *   "Canceled":false,"Created":false}`, Events `[]` when empty, `null` for a response clientv3
 *   made itself); the lease responses embed `*pb.ResponseHeader`, so its fields are promoted
 *   (`{"cluster_id":...,"ID":...,"TTL":...,"Error":""}`), except Revoke, which is the protobuf
 *   `{"header":{...}}`. TimeToLive's tags are `id`, `ttl`, `granted-ttl`, `keys` (null when
 *   none), Leases' `leases` is `[]` when empty.
 * - fields: `"Key" : value` lines, int64 in decimal, bytes as Go's %q.
 * - table: etcdctl has no table for these; it exits with ExitBadFeature ("table not supported
 *   as output format") when it would print, i.e. after the request was made, as here.
 *
 * Only type imports from @coord/client: loading this file never loads gRPC.
 */
import type {
  KeyValue,
  LeaseGrantResult,
  LeaseKeepAliveResult,
  LeaseLeasesResult,
  LeaseRevokeResult,
  LeaseTimeToLiveResult,
  ResponseHeader,
  WatchEvent,
} from '@coord/client';
import { badFeature } from '../errors';
import { goJsonString, goQuote, hexEscape } from './go';
import { jsonHeader, jsonKeyValue, type Sink } from './printers';

/**
 * clientv3's WatchResponse as etcdctl sees it: what the server sent (events, header, compact
 * revision, canceled), or a response the client library made up when a watch ended (empty
 * header, `events: null`).
 */
export interface WatchView {
  readonly header: ResponseHeader;
  /** null: clientv3's nil slice (a response it made itself, not decoded from the server). */
  readonly events: readonly WatchEvent[] | null;
  readonly compactRevision: bigint;
  readonly canceled: boolean;
  readonly created: boolean;
}

export const ZERO_HEADER: ResponseHeader = Object.freeze({ clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n });

export interface WatchLeasePrinter {
  watch(r: WatchView): void;
  grant(r: LeaseGrantResult): void;
  revoke(id: bigint, r: LeaseRevokeResult): void;
  keepAlive(r: LeaseKeepAliveResult): void;
  timeToLive(r: LeaseTimeToLiveResult, keys: boolean): void;
  leases(r: LeaseLeasesResult): void;
}

/** `%016x` of an int64, as Go prints it (a negative ID: `-` and 15 digits). */
export function leaseHex(id: bigint): string {
  return id < 0n ? '-' + (-id).toString(16).padStart(15, '0') : id.toString(16).padStart(16, '0');
}

/** etcdctl's NewPrinter for these commands; undefined for an unknown format. */
export function newWatchLeasePrinter(format: string, sink: Sink, options: { hex?: boolean } = {}): WatchLeasePrinter | undefined {
  switch (format) {
    case 'simple':
      return new SimpleWatchLeasePrinter(sink, options.hex === true);
    case 'json':
      return new JsonWatchLeasePrinter(sink);
    case 'fields':
      return new FieldsWatchLeasePrinter(sink);
    case 'table':
      return new TableWatchLeasePrinter();
    default:
      return undefined;
  }
}

const eventTypeName = (e: WatchEvent): string => (e.type === 'delete' ? 'DELETE' : 'PUT');

// ---- printer_simple.go ------------------------------------------------------------------

class SimpleWatchLeasePrinter implements WatchLeasePrinter {
  constructor(
    private readonly out: Sink,
    private readonly hex: boolean,
  ) {}

  /** util.go printKV (valueOnly is never set for these commands). */
  private kv(kv: KeyValue): void {
    this.out(this.hex ? hexEscape(kv.key) : kv.key);
    this.out(this.hex ? hexEscape(kv.value) : kv.value);
  }

  watch(r: WatchView): void {
    for (const e of r.events ?? []) {
      this.out(eventTypeName(e));
      if (e.prevKv) this.kv(e.prevKv);
      this.kv(e.kv);
    }
  }

  grant(r: LeaseGrantResult): void {
    this.out(`lease ${leaseHex(r.id)} granted with TTL(${r.ttl}s)`);
  }

  revoke(id: bigint): void {
    this.out(`lease ${leaseHex(id)} revoked`);
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.out(`lease ${leaseHex(r.id)} keepalived with TTL(${r.ttl})`);
  }

  timeToLive(r: LeaseTimeToLiveResult, keys: boolean): void {
    if (r.grantedTtl === 0n && r.ttl === -1n) {
      this.out(`lease ${leaseHex(r.id)} already expired`);
      return;
    }
    const text = `lease ${leaseHex(r.id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)`;
    if (!keys) {
      this.out(text);
      return;
    }
    // fmt.Sprintf("%v", []string): the raw key bytes, space-separated, in brackets.
    const parts: Buffer[] = [Buffer.from(`${text}, attached keys([`)];
    r.keys.forEach((k, i) => parts.push(i === 0 ? k : Buffer.concat([Buffer.from(' '), k])));
    parts.push(Buffer.from('])'));
    this.out(Buffer.concat(parts));
  }

  leases(r: LeaseLeasesResult): void {
    this.out(`found ${r.leases.length} leases`);
    for (const id of r.leases) this.out(leaseHex(id));
  }
}

// ---- printer_fields.go ------------------------------------------------------------------

class FieldsWatchLeasePrinter implements WatchLeasePrinter {
  constructor(private readonly out: Sink) {}

  private hdr(h: ResponseHeader): void {
    this.out(`"ClusterID" : ${h.clusterId}`);
    this.out(`"MemberID" : ${h.memberId}`);
    this.out(`"Revision" : ${h.revision}`);
    this.out(`"RaftTerm" : ${h.raftTerm}`);
  }

  private kv(prefix: string, kv: KeyValue): void {
    this.out(`"${prefix}Key" : ${goQuote(kv.key)}`);
    this.out(`"${prefix}CreateRevision" : ${kv.createRevision}`);
    this.out(`"${prefix}ModRevision" : ${kv.modRevision}`);
    this.out(`"${prefix}Version" : ${kv.version}`);
    this.out(`"${prefix}Value" : ${goQuote(kv.value)}`);
    this.out(`"${prefix}Lease" : ${kv.lease}`);
  }

  watch(r: WatchView): void {
    this.hdr(r.header);
    for (const e of r.events ?? []) {
      this.out(`"Type" : ${eventTypeName(e)}`);
      if (e.prevKv) this.kv('Prev', e.prevKv);
      this.kv('', e.kv);
    }
  }

  grant(r: LeaseGrantResult): void {
    this.hdr(r.header);
    this.out(`"ID" : ${r.id}`);
    this.out(`"TTL" : ${r.ttl}`);
  }

  revoke(_id: bigint, r: LeaseRevokeResult): void {
    this.hdr(r.header);
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.hdr(r.header);
    this.out(`"ID" : ${r.id}`);
    this.out(`"TTL" : ${r.ttl}`);
  }

  timeToLive(r: LeaseTimeToLiveResult): void {
    this.hdr(r.header);
    this.out(`"ID" : ${r.id}`);
    this.out(`"TTL" : ${r.ttl}`);
    this.out(`"GrantedTTL" : ${r.grantedTtl}`);
    for (const k of r.keys) this.out(`"Key" : ${goQuote(k)}`);
  }

  leases(r: LeaseLeasesResult): void {
    this.hdr(r.header);
    for (const id of r.leases) this.out(`"ID" : ${id}`);
  }
}

// ---- printer_json.go (printJSON = json.Marshal of clientv3's structs) --------------------

/** `{...}` of the fields whose value is defined, in order. */
const obj = (fields: readonly (readonly [string, string | undefined])[]): string =>
  '{' +
  fields
    .filter((f) => f[1] !== undefined)
    .map(([k, v]) => `${goJsonString(k)}:${v}`)
    .join(',') +
  '}';

/** An `omitempty` int64. */
const omitZero = (n: bigint): string | undefined => (n === 0n ? undefined : n.toString());

/** The fields of an embedded `*pb.ResponseHeader` (all omitempty), promoted into the parent. */
function promotedHeader(h: ResponseHeader): (readonly [string, string | undefined])[] {
  return [
    ['cluster_id', omitZero(h.clusterId)],
    ['member_id', omitZero(h.memberId)],
    ['revision', omitZero(h.revision)],
    ['raft_term', omitZero(h.raftTerm)],
  ];
}

/** mvccpb.Event: `type` (PUT = 0 omitted), `kv`, `prev_kv`, all omitempty. */
export function jsonWatchEvent(e: WatchEvent): string {
  return obj([
    ['type', e.type === 'delete' ? '1' : undefined],
    ['kv', jsonKeyValue(e.kv)],
    ['prev_kv', e.prevKv ? jsonKeyValue(e.prevKv) : undefined],
  ]);
}

/** clientv3.WatchResponse: exported fields without json tags, so none is omitted. */
export function jsonWatchResponse(r: WatchView): string {
  return obj([
    ['Header', jsonHeader(r.header)],
    ['Events', r.events === null ? 'null' : `[${r.events.map(jsonWatchEvent).join(',')}]`],
    ['CompactRevision', r.compactRevision.toString()],
    ['Canceled', String(r.canceled)],
    ['Created', String(r.created)],
  ]);
}

export function jsonLeaseGrant(r: LeaseGrantResult): string {
  return obj([...promotedHeader(r.header), ['ID', r.id.toString()], ['TTL', r.ttl.toString()], ['Error', '""']]);
}

export function jsonLeaseRevoke(r: LeaseRevokeResult): string {
  return obj([['header', jsonHeader(r.header)]]);
}

export function jsonLeaseKeepAlive(r: LeaseKeepAliveResult): string {
  return obj([...promotedHeader(r.header), ['ID', r.id.toString()], ['TTL', r.ttl.toString()]]);
}

export function jsonLeaseTimeToLive(r: LeaseTimeToLiveResult): string {
  return obj([
    ...promotedHeader(r.header),
    ['id', r.id.toString()],
    ['ttl', r.ttl.toString()],
    ['granted-ttl', r.grantedTtl.toString()],
    ['keys', r.keys.length === 0 ? 'null' : `[${r.keys.map((k) => `"${k.toString('base64')}"`).join(',')}]`],
  ]);
}

export function jsonLeaseLeases(r: LeaseLeasesResult): string {
  return obj([...promotedHeader(r.header), ['leases', `[${r.leases.map((id) => obj([['id', id.toString()]])).join(',')}]`]]);
}

class JsonWatchLeasePrinter implements WatchLeasePrinter {
  constructor(private readonly out: Sink) {}

  watch(r: WatchView): void {
    this.out(jsonWatchResponse(r));
  }

  grant(r: LeaseGrantResult): void {
    this.out(jsonLeaseGrant(r));
  }

  revoke(_id: bigint, r: LeaseRevokeResult): void {
    this.out(jsonLeaseRevoke(r));
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.out(jsonLeaseKeepAlive(r));
  }

  timeToLive(r: LeaseTimeToLiveResult): void {
    this.out(jsonLeaseTimeToLive(r));
  }

  leases(r: LeaseLeasesResult): void {
    this.out(jsonLeaseLeases(r));
  }
}

// ---- printer_table.go: printerUnsupported for all of these --------------------------------

class TableWatchLeasePrinter implements WatchLeasePrinter {
  private unsupported(): never {
    throw badFeature('table not supported as output format', 'use -w simple, json or fields for this command.');
  }

  watch(): void {
    this.unsupported();
  }

  grant(): void {
    this.unsupported();
  }

  revoke(): void {
    this.unsupported();
  }

  keepAlive(): void {
    this.unsupported();
  }

  timeToLive(): void {
    this.unsupported();
  }

  leases(): void {
    this.unsupported();
  }
}

// ---- coord's --json (oclif flag) for streaming commands ------------------------------------

/**
 * `--json` on `watch` and `lease keep-alive`: they never return a single result, so each
 * response is one line of JSON (JSON Lines), int64 as decimal strings, bytes as UTF-8 text or
 * `{"base64": ...}` (toJsonSafe).
 */
export class JsonLinesPrinter implements WatchLeasePrinter {
  constructor(private readonly write: (value: unknown) => void) {}

  watch(r: WatchView): void {
    this.write(r);
  }

  grant(r: LeaseGrantResult): void {
    this.write(r);
  }

  revoke(_id: bigint, r: LeaseRevokeResult): void {
    this.write(r);
  }

  keepAlive(r: LeaseKeepAliveResult): void {
    this.write(r);
  }

  timeToLive(r: LeaseTimeToLiveResult): void {
    this.write(r);
  }

  leases(r: LeaseLeasesResult): void {
    this.write(r);
  }
}
