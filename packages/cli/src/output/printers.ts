/**
 * etcdctl's output formats (`-w simple|json|fields|table`), ported from etcd 3.4's
 * `etcdctl/ctlv3/command/printer*.go`. Each printer writes lines to a sink; the base command
 * owns the sink (stdout via `this.log`). Only type imports from @coord/client: loading this file
 * never loads gRPC.
 *
 * Where etcdctl refuses a format for a command (e.g. `get -w table`), the printer throws the
 * same error with the same exit code (ExitBadFeature), after the request was sent, as etcdctl.
 */
import type {
  DeleteResult,
  HashKVResult,
  KeyValue,
  MemberListResult,
  OpResult,
  PutResult,
  RangeResult,
  ResponseHeader,
  StatusResult,
  TxnResult,
} from '@coord/client';
import { badFeature } from '../errors';
import { goJsonString, goQuote, goStringSlice, hexEscape, humanizeBytes } from './go';
import { renderTable } from './table';

/** One line of output, without its newline. Buffers carry raw key/value bytes. */
export type Sink = (line: string | Buffer) => void;

/** `epStatus` of etcdctl: an endpoint and its Status answer. */
export interface EndpointStatus {
  endpoint: string;
  status: StatusResult;
}

/** `epHashKV` of etcdctl: an endpoint and its HashKV answer. */
export interface EndpointHashKV {
  endpoint: string;
  hashKV: HashKVResult;
}

export interface Printer {
  readonly format: OutputFormat;
  get(r: RangeResult): void;
  put(r: PutResult): void;
  del(r: DeleteResult): void;
  txn(r: TxnResult): void;
  memberList(r: MemberListResult): void;
  endpointStatus(list: readonly EndpointStatus[]): void;
  endpointHashKV(list: readonly EndpointHashKV[]): void;
}

export const OUTPUT_FORMATS = ['simple', 'json', 'fields', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface PrinterOptions {
  /** `--hex`: print keys and values as `\x..` escapes (simple format). */
  hex?: boolean;
  /** `--print-value-only` (simple format). */
  valueOnly?: boolean;
}

/** etcdctl's NewPrinter: undefined for an unknown format (the caller reports it). */
export function newPrinter(format: string, sink: Sink, options: PrinterOptions = {}): Printer | undefined {
  switch (format) {
    case 'simple':
      return new SimplePrinter(sink, options);
    case 'json':
      return new JsonPrinter(sink);
    case 'fields':
      return new FieldsPrinter(sink);
    case 'table':
      return new TablePrinter(sink);
    default:
      return undefined;
  }
}

// ---- tables shared by simple and table (printer.go) -------------------------------------

export function memberListTable(r: MemberListResult): { header: string[]; rows: string[][] } {
  const header = ['ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner'];
  const rows = r.members.map((m) => [
    m.id.toString(16),
    m.name.length === 0 ? 'unstarted' : 'started',
    m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    String(m.isLearner),
  ]);
  return { header, rows };
}

export function endpointStatusTable(list: readonly EndpointStatus[]): { header: string[]; rows: string[][] } {
  const header = [
    'endpoint',
    'ID',
    'version',
    'db size',
    'is leader',
    'is learner',
    'raft term',
    'raft index',
    'raft applied index',
    'errors',
  ];
  const rows = list.map(({ endpoint, status: s }) => [
    endpoint,
    s.header.memberId.toString(16),
    s.version,
    humanizeBytes(s.dbSize),
    String(s.leader === s.header.memberId),
    String(s.isLearner),
    s.raftTerm.toString(),
    s.raftIndex.toString(),
    s.raftAppliedIndex.toString(),
    s.errors.join(', '),
  ]);
  return { header, rows };
}

export function endpointHashKVTable(list: readonly EndpointHashKV[]): { header: string[]; rows: string[][] } {
  return { header: ['endpoint', 'hash'], rows: list.map((h) => [h.endpoint, String(h.hashKV.hash)]) };
}

// ---- printer_simple.go --------------------------------------------------------------------

class SimplePrinter implements Printer {
  readonly format = 'simple' as const;
  constructor(
    private readonly out: Sink,
    private readonly options: PrinterOptions,
  ) {}

  /** util.go printKV: the key (unless value-only), then the value, raw bytes or `\x..`. */
  private kv(kv: KeyValue): void {
    const hex = this.options.hex;
    if (!this.options.valueOnly) this.out(hex ? hexEscape(kv.key) : kv.key);
    this.out(hex ? hexEscape(kv.value) : kv.value);
  }

  get(r: RangeResult): void {
    for (const kv of r.kvs) this.kv(kv);
  }

  put(r: PutResult): void {
    this.out('OK');
    if (r.prevKv) this.kv(r.prevKv);
  }

  del(r: DeleteResult): void {
    this.out(r.deleted.toString());
    for (const kv of r.prevKvs) this.kv(kv);
  }

  txn(r: TxnResult): void {
    this.out(r.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const op of r.responses) {
      this.out('');
      switch (op.op) {
        case 'delete':
          this.del(op);
          break;
        case 'put':
          this.put(op);
          break;
        case 'range':
          this.get(op);
          break;
        default:
          // etcdctl: fmt.Printf("unexpected response %+v\n", r) for a nested txn.
          this.out(`unexpected response ${op.op}`);
      }
    }
  }

  memberList(r: MemberListResult): void {
    for (const row of memberListTable(r).rows) this.out(row.join(', '));
  }

  endpointStatus(list: readonly EndpointStatus[]): void {
    for (const row of endpointStatusTable(list).rows) this.out(row.join(', '));
  }

  endpointHashKV(list: readonly EndpointHashKV[]): void {
    for (const row of endpointHashKVTable(list).rows) this.out(row.join(', '));
  }
}

// ---- printer_fields.go --------------------------------------------------------------------

class FieldsPrinter implements Printer {
  readonly format = 'fields' as const;
  constructor(private readonly out: Sink) {}

  private kv(prefix: string, kv: KeyValue): void {
    this.out(`"${prefix}Key" : ${goQuote(kv.key)}`);
    this.out(`"${prefix}CreateRevision" : ${kv.createRevision}`);
    this.out(`"${prefix}ModRevision" : ${kv.modRevision}`);
    this.out(`"${prefix}Version" : ${kv.version}`);
    this.out(`"${prefix}Value" : ${goQuote(kv.value)}`);
    this.out(`"${prefix}Lease" : ${kv.lease}`);
  }

  private hdr(h: ResponseHeader): void {
    this.out(`"ClusterID" : ${h.clusterId}`);
    this.out(`"MemberID" : ${h.memberId}`);
    this.out(`"Revision" : ${h.revision}`);
    this.out(`"RaftTerm" : ${h.raftTerm}`);
  }

  get(r: RangeResult): void {
    this.hdr(r.header);
    for (const kv of r.kvs) this.kv('', kv);
    this.out(`"More" : ${r.more}`);
    this.out(`"Count" : ${r.count}`);
  }

  put(r: PutResult): void {
    this.hdr(r.header);
    if (r.prevKv) this.kv('Prev', r.prevKv);
  }

  del(r: DeleteResult): void {
    this.hdr(r.header);
    this.out(`"Deleted" : ${r.deleted}`);
    for (const kv of r.prevKvs) this.kv('Prev', kv);
  }

  txn(r: TxnResult): void {
    this.hdr(r.header);
    this.out(`"Succeeded" : ${r.succeeded}`);
    for (const op of r.responses) {
      switch (op.op) {
        case 'delete':
          this.del(op);
          break;
        case 'put':
          this.put(op);
          break;
        case 'range':
          this.get(op);
          break;
        default:
          this.out(`"Unknown" : ${goQuote(op.op)}`);
      }
    }
  }

  memberList(r: MemberListResult): void {
    this.hdr(r.header);
    for (const m of r.members) {
      this.out(`"ID" : ${m.id}`);
      this.out(`"Name" : ${goQuote(m.name)}`);
      for (const u of m.peerURLs) this.out(`"PeerURL" : ${goQuote(u)}`);
      for (const u of m.clientURLs) this.out(`"ClientURL" : ${goQuote(u)}`);
      this.out(`"IsLearner" : ${m.isLearner}`);
      this.out('');
    }
  }

  endpointStatus(list: readonly EndpointStatus[]): void {
    for (const { endpoint, status: s } of list) {
      this.hdr(s.header);
      this.out(`"Version" : ${goQuote(s.version)}`);
      this.out(`"DBSize" : ${s.dbSize}`);
      this.out(`"Leader" : ${s.leader}`);
      this.out(`"IsLearner" : ${s.isLearner}`);
      this.out(`"RaftIndex" : ${s.raftIndex}`);
      this.out(`"RaftTerm" : ${s.raftTerm}`);
      this.out(`"RaftAppliedIndex" : ${s.raftAppliedIndex}`);
      this.out(`"Errors" : ${goStringSlice(s.errors)}`);
      this.out(`"Endpoint" : ${goQuote(endpoint)}`);
      this.out('');
    }
  }

  endpointHashKV(list: readonly EndpointHashKV[]): void {
    for (const { endpoint, hashKV } of list) {
      this.hdr(hashKV.header);
      this.out(`"Endpoint" : ${goQuote(endpoint)}`);
      this.out(`"Hash" : ${hashKV.hash}`);
      this.out('');
    }
  }
}

// ---- printer_json.go: Go's json.Marshal of the gogoproto structs ----------------------------
//
// Field names come from the Go json tags (snake_case for most messages, camelCase where the
// .proto is camelCase), every field is `omitempty`, int64/uint64 are JSON numbers (printed
// from the bigint's exact digits), bytes are standard base64. The oneof in ResponseOp has no
// json tag, hence `{"Response":{"ResponsePut":{...}}}`.

type Field = readonly [string, string | undefined];

const jObj = (fields: readonly Field[]): string =>
  '{' +
  fields
    .filter((f) => f[1] !== undefined)
    .map(([k, v]) => `"${k}":${v}`)
    .join(',') +
  '}';
const jInt = (n: bigint | number): string | undefined => (BigInt(n) === 0n ? undefined : BigInt(n).toString());
const jBool = (b: boolean): string | undefined => (b ? 'true' : undefined);
const jBytes = (b: Buffer): string | undefined => (b.length === 0 ? undefined : `"${b.toString('base64')}"`);
const jStr = (s: string): string | undefined => (s === '' ? undefined : goJsonString(s));
const jArr = (xs: readonly string[]): string | undefined => (xs.length === 0 ? undefined : `[${xs.join(',')}]`);

export function jsonHeader(h: ResponseHeader): string {
  return jObj([
    ['cluster_id', jInt(h.clusterId)],
    ['member_id', jInt(h.memberId)],
    ['revision', jInt(h.revision)],
    ['raft_term', jInt(h.raftTerm)],
  ]);
}

export function jsonKeyValue(kv: KeyValue): string {
  return jObj([
    ['key', jBytes(kv.key)],
    ['create_revision', jInt(kv.createRevision)],
    ['mod_revision', jInt(kv.modRevision)],
    ['version', jInt(kv.version)],
    ['value', jBytes(kv.value)],
    ['lease', jInt(kv.lease)],
  ]);
}

export function jsonRange(r: RangeResult): string {
  return jObj([
    ['header', jsonHeader(r.header)],
    ['kvs', jArr(r.kvs.map(jsonKeyValue))],
    ['more', jBool(r.more)],
    ['count', jInt(r.count)],
  ]);
}

export function jsonPut(r: PutResult): string {
  return jObj([
    ['header', jsonHeader(r.header)],
    ['prev_kv', r.prevKv ? jsonKeyValue(r.prevKv) : undefined],
  ]);
}

export function jsonDelete(r: DeleteResult): string {
  return jObj([
    ['header', jsonHeader(r.header)],
    ['deleted', jInt(r.deleted)],
    ['prev_kvs', jArr(r.prevKvs.map(jsonKeyValue))],
  ]);
}

function jsonResponseOp(op: OpResult): string {
  let inner: string;
  switch (op.op) {
    case 'range':
      inner = jObj([['ResponseRange', jsonRange(op)]]);
      break;
    case 'put':
      inner = jObj([['ResponsePut', jsonPut(op)]]);
      break;
    case 'delete':
      inner = jObj([['ResponseDeleteRange', jsonDelete(op)]]);
      break;
    case 'txn':
      inner = jObj([['ResponseTxn', jsonTxn(op)]]);
      break;
  }
  return jObj([['Response', inner]]);
}

export function jsonTxn(r: TxnResult): string {
  return jObj([
    ['header', jsonHeader(r.header)],
    ['succeeded', jBool(r.succeeded)],
    ['responses', jArr(r.responses.map(jsonResponseOp))],
  ]);
}

export function jsonMemberList(r: MemberListResult): string {
  return jObj([
    ['header', jsonHeader(r.header)],
    [
      'members',
      jArr(
        r.members.map((m) =>
          jObj([
            ['ID', jInt(m.id)],
            ['name', jStr(m.name)],
            ['peerURLs', jArr(m.peerURLs.map(goJsonString))],
            ['clientURLs', jArr(m.clientURLs.map(goJsonString))],
            ['isLearner', jBool(m.isLearner)],
          ]),
        ),
      ),
    ],
  ]);
}

export function jsonStatus(s: StatusResult): string {
  return jObj([
    ['header', jsonHeader(s.header)],
    ['version', jStr(s.version)],
    ['dbSize', jInt(s.dbSize)],
    ['leader', jInt(s.leader)],
    ['raftIndex', jInt(s.raftIndex)],
    ['raftTerm', jInt(s.raftTerm)],
    ['raftAppliedIndex', jInt(s.raftAppliedIndex)],
    ['errors', jArr(s.errors.map(goJsonString))],
    ['dbSizeInUse', jInt(s.dbSizeInUse)],
    ['isLearner', jBool(s.isLearner)],
  ]);
}

export function jsonHashKV(h: HashKVResult): string {
  return jObj([
    ['header', jsonHeader(h.header)],
    ['hash', jInt(h.hash)],
    ['compact_revision', jInt(h.compactRevision)],
  ]);
}

class JsonPrinter implements Printer {
  readonly format = 'json' as const;
  constructor(private readonly out: Sink) {}

  get(r: RangeResult): void {
    this.out(jsonRange(r));
  }

  put(r: PutResult): void {
    this.out(jsonPut(r));
  }

  del(r: DeleteResult): void {
    this.out(jsonDelete(r));
  }

  txn(r: TxnResult): void {
    this.out(jsonTxn(r));
  }

  memberList(r: MemberListResult): void {
    this.out(jsonMemberList(r));
  }

  endpointStatus(list: readonly EndpointStatus[]): void {
    // json.Marshal([]epStatus): {"Endpoint": ..., "Status": ...}
    this.out(`[${list.map((e) => jObj([['Endpoint', goJsonString(e.endpoint)], ['Status', jsonStatus(e.status)]])).join(',')}]`);
  }

  endpointHashKV(list: readonly EndpointHashKV[]): void {
    this.out(`[${list.map((e) => jObj([['Endpoint', goJsonString(e.endpoint)], ['HashKV', jsonHashKV(e.hashKV)]])).join(',')}]`);
  }
}

// ---- printer_table.go ---------------------------------------------------------------------

class TablePrinter implements Printer {
  readonly format = 'table' as const;
  constructor(private readonly out: Sink) {}

  private unsupported(): never {
    throw badFeature('table not supported as output format', 'use -w simple, json or fields for this command.');
  }

  get(): void {
    this.unsupported();
  }

  put(): void {
    this.unsupported();
  }

  del(): void {
    this.unsupported();
  }

  txn(): void {
    this.unsupported();
  }

  private table(t: { header: string[]; rows: string[][] }): void {
    for (const line of renderTable(t.header, t.rows)) this.out(line);
  }

  memberList(r: MemberListResult): void {
    this.table(memberListTable(r));
  }

  endpointStatus(list: readonly EndpointStatus[]): void {
    this.table(endpointStatusTable(list));
  }

  endpointHashKV(list: readonly EndpointHashKV[]): void {
    this.table(endpointHashKVTable(list));
  }
}
