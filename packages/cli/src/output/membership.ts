/**
 * etcdctl 3.4's printers for the membership commands: MemberAdd, MemberRemove, MemberUpdate,
 * MemberPromote, MoveLeader and EndpointHealth (`printer.go`, `printer_simple.go`,
 * `printer_json.go`, `printer_fields.go`, `printer_table.go`), checked byte for byte against
 * etcdctl 3.4.23 by test/cluster-membership.test.ts.
 *
 * What etcdctl does, reproduced here:
 * - simple: `Member %16x added to cluster %16x` (Go's `%16x` pads with spaces; 3.4 says
 *   nothing about learners here), `Leadership transferred from X to Y` (`types.ID`: no padding);
 *   `endpoint health` writes every line, healthy or not, to **stderr**;
 * - json: `json.Marshal` of the gogoproto response (MoveLeaderResponse carries no header in
 *   etcd 3.4, hence `{}`), and of `[]epHealth` for health;
 * - fields and table print only `endpoint health`; for the member changes and move-leader they
 *   fail with "<format> not supported as output format" (ExitBadFeature) **after** the change
 *   was made, as etcdctl does (its printer runs once the call has returned).
 * Only type imports from @coord/client: loading this file never loads gRPC.
 */
import type { Member, MemberAddResult, MemberChangeResult, MoveLeaderResult } from '@coord/client';
import { badFeature } from '../errors';
import { goJsonString, goQuote } from './go';
import { jsonHeader, type OutputFormat, type Sink } from './printers';
import { renderTable } from './table';

/** etcdctl's `epHealth`. */
export interface EndpointHealth {
  endpoint: string;
  health: boolean;
  /** Go's Duration.String() of the check ("" when the client could not even be created). */
  took: string;
  /** "" when healthy. */
  error: string;
}

export interface MembershipPrinter {
  readonly format: OutputFormat;
  memberAdd(r: MemberAddResult): void;
  memberRemove(id: bigint, r: MemberChangeResult): void;
  memberUpdate(id: bigint, r: MemberChangeResult): void;
  memberPromote(id: bigint, r: MemberChangeResult): void;
  moveLeader(r: MoveLeaderResult): void;
  endpointHealth(list: readonly EndpointHealth[]): void;
}

/** Where each printer writes: stdout, and stderr for the lines etcdctl sends there. */
export interface Sinks {
  out: Sink;
  err: Sink;
}

export function newMembershipPrinter(format: string, sinks: Sinks): MembershipPrinter | undefined {
  switch (format) {
    case 'simple':
      return new SimpleMembershipPrinter(sinks);
    case 'json':
      return new JsonMembershipPrinter(sinks.out);
    case 'fields':
      return new FieldsMembershipPrinter(sinks.out);
    case 'table':
      return new TableMembershipPrinter(sinks.out);
    default:
      return undefined;
  }
}

// ---- JSON (Go's json.Marshal: omitempty everywhere, uint64 as numbers) -----------------------

const field = (name: string, value: string | undefined): string | undefined => (value === undefined ? undefined : `"${name}":${value}`);
const jObj = (fields: (string | undefined)[]): string => `{${fields.filter((f) => f !== undefined).join(',')}}`;
const jUint = (n: bigint): string | undefined => (n === 0n ? undefined : n.toString());
const jArr = (xs: readonly string[]): string | undefined => (xs.length === 0 ? undefined : `[${xs.join(',')}]`);

export function jsonMember(m: Member): string {
  return jObj([
    field('ID', jUint(m.id)),
    field('name', m.name === '' ? undefined : goJsonString(m.name)),
    field('peerURLs', jArr(m.peerURLs.map(goJsonString))),
    field('clientURLs', jArr(m.clientURLs.map(goJsonString))),
    field('isLearner', m.isLearner ? 'true' : undefined),
  ]);
}

export function jsonMemberAdd(r: MemberAddResult): string {
  return jObj([field('header', jsonHeader(r.header)), field('member', jsonMember(r.member)), field('members', jArr(r.members.map(jsonMember)))]);
}

export function jsonMemberChange(r: MemberChangeResult): string {
  return jObj([field('header', jsonHeader(r.header)), field('members', jArr(r.members.map(jsonMember)))]);
}

export function jsonMoveLeader(r: MoveLeaderResult): string {
  return jObj([field('header', r.header ? jsonHeader(r.header) : undefined)]);
}

export function jsonEndpointHealth(list: readonly EndpointHealth[]): string {
  // epHealth's tags: endpoint, health, took, error (the only omitempty one).
  const one = (h: EndpointHealth): string =>
    jObj([
      field('endpoint', goJsonString(h.endpoint)),
      field('health', String(h.health)),
      field('took', goJsonString(h.took)),
      field('error', h.error === '' ? undefined : goJsonString(h.error)),
    ]);
  // json.Marshal of a nil slice is null; etcdctl's list is never nil once an endpoint exists.
  return list.length === 0 ? 'null' : `[${list.map(one).join(',')}]`;
}

export function endpointHealthTable(list: readonly EndpointHealth[]): { header: string[]; rows: string[][] } {
  return { header: ['endpoint', 'health', 'took', 'error'], rows: list.map((h) => [h.endpoint, String(h.health), h.took, h.error]) };
}

// ---- printers -----------------------------------------------------------------------------

const hex16 = (id: bigint): string => id.toString(16).padStart(16, ' ');

class SimpleMembershipPrinter implements MembershipPrinter {
  readonly format = 'simple' as const;
  constructor(private readonly sinks: Sinks) {}

  memberAdd(r: MemberAddResult): void {
    this.sinks.out(`Member ${hex16(r.member.id)} added to cluster ${hex16(r.header.clusterId)}`);
  }

  memberRemove(id: bigint, r: MemberChangeResult): void {
    this.sinks.out(`Member ${hex16(id)} removed from cluster ${hex16(r.header.clusterId)}`);
  }

  memberUpdate(id: bigint, r: MemberChangeResult): void {
    this.sinks.out(`Member ${hex16(id)} updated in cluster ${hex16(r.header.clusterId)}`);
  }

  memberPromote(id: bigint, r: MemberChangeResult): void {
    this.sinks.out(`Member ${hex16(id)} promoted in cluster ${hex16(r.header.clusterId)}`);
  }

  moveLeader(r: MoveLeaderResult): void {
    this.sinks.out(`Leadership transferred from ${r.leader.toString(16)} to ${r.target.toString(16)}`);
  }

  endpointHealth(list: readonly EndpointHealth[]): void {
    for (const h of list) {
      if (h.error === '') this.sinks.err(`${h.endpoint} is healthy: successfully committed proposal: took = ${h.took}`);
      else this.sinks.err(`${h.endpoint} is unhealthy: failed to commit proposal: ${h.error}`);
    }
  }
}

class JsonMembershipPrinter implements MembershipPrinter {
  readonly format = 'json' as const;
  constructor(private readonly out: Sink) {}

  memberAdd(r: MemberAddResult): void {
    this.out(jsonMemberAdd(r));
  }

  memberRemove(_id: bigint, r: MemberChangeResult): void {
    this.out(jsonMemberChange(r));
  }

  memberUpdate(_id: bigint, r: MemberChangeResult): void {
    this.out(jsonMemberChange(r));
  }

  memberPromote(_id: bigint, r: MemberChangeResult): void {
    this.out(jsonMemberChange(r));
  }

  moveLeader(r: MoveLeaderResult): void {
    this.out(jsonMoveLeader(r));
  }

  endpointHealth(list: readonly EndpointHealth[]): void {
    this.out(jsonEndpointHealth(list));
  }
}

/** etcdctl's printerUnsupported: the call has been made; only the printing fails. */
abstract class ChangesUnsupported {
  abstract readonly format: 'fields' | 'table';

  protected unsupported(): never {
    throw badFeature(`${this.format} not supported as output format`, 'use -w simple or json for this command (the change itself was made).');
  }

  memberAdd(): void {
    this.unsupported();
  }

  memberRemove(): void {
    this.unsupported();
  }

  memberUpdate(): void {
    this.unsupported();
  }

  memberPromote(): void {
    this.unsupported();
  }

  moveLeader(): void {
    this.unsupported();
  }
}

class FieldsMembershipPrinter extends ChangesUnsupported implements MembershipPrinter {
  readonly format = 'fields' as const;
  constructor(private readonly out: Sink) {
    super();
  }

  endpointHealth(list: readonly EndpointHealth[]): void {
    for (const h of list) {
      this.out(`"Endpoint" : ${goQuote(h.endpoint)}`);
      this.out(`"Health" : ${h.health}`);
      this.out(`"Took" : ${h.took}`);
      this.out(`"Error" : ${h.error}`);
      this.out('');
    }
  }
}

class TableMembershipPrinter extends ChangesUnsupported implements MembershipPrinter {
  readonly format = 'table' as const;
  constructor(private readonly out: Sink) {
    super();
  }

  endpointHealth(list: readonly EndpointHealth[]): void {
    const t = endpointHealthTable(list);
    for (const line of renderTable(t.header, t.rows)) this.out(line);
  }
}
