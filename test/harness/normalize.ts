/**
 * Normalization of etcdctl output, so that answers from two independent servers can be
 * compared with toEqual.
 *
 * Goal: erase exactly what legitimately differs between two fresh single-member clusters
 * (random ports and names, cluster/member/lease IDs, raft term and index, db size, patch
 * version, timings, etcdctl's own timestamps and client UUIDs) and keep everything a
 * client could observe and depend on (values, versions, counts, flags, error texts, gRPC
 * codes, exit codes, the relation between IDs, table layout).
 *
 * Method: one Normalizer per side per scenario, because placeholders are assigned in order
 * of first appearance: the first distinct ID a side prints becomes <ID1>, the second <ID2>,
 * and so on, so "the leader is the member that answered" or "the lease on the key is the
 * lease we granted" still compares equal, while "a different ID" does not. IDs are matched
 * by value whether printed in decimal (json, fields) or hex (table, simple, lease grant).
 * Revisions are printed relative to a base revision measured at the start of the scenario
 * (<R+3> = base + 3), so a test is independent of how many revisions earlier tests in the
 * same file made; with base 0 revisions are absolute (used to check that a fresh member is
 * at revision 1). Tables are first checked to be laid out exactly as etcdctl's tablewriter
 * lays them out (a layout difference is reported as such), then reduced to their cells.
 * `-w protobuf` output is decoded with etcd's .proto into JSON and normalized like json.
 */
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import type { EtcdctlResult } from './etcdctl';

/** Where a side's member listens and what it is called; replaced by placeholders. */
export interface SideIdentity {
  clientPort: number;
  peerPort: number;
  name: string;
}

export interface Normalized {
  code: number;
  stdout: string;
  stderr: string;
}

// ---------------------------------------------------------------- command line parsing

/** Flags of etcdctl that take a separate value (`--flag value`). */
const VALUE_FLAGS = new Set([
  '-w', '--write-out', '--endpoints', '--dial-timeout', '--command-timeout', '--user', '--password',
  '--cacert', '--cert', '--key', '--keepalive-time', '--keepalive-timeout', '-d', '--discovery-srv',
  '--discovery-srv-name', '--rev', '--limit', '--sort-by', '--order', '--consistency', '--lease',
]);

export interface ParsedArgs {
  /** Command words, e.g. "get" or "endpoint status". */
  command: string;
  writeOut: string;
}

export function parseArgs(args: string[]): ParsedArgs {
  const words: string[] = [];
  let writeOut = 'simple';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') break;
    if (a.startsWith('-')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(0, eq) : a;
      const value = eq >= 0 ? a.slice(eq + 1) : VALUE_FLAGS.has(name) ? args[++i] : undefined;
      if ((name === '-w' || name === '--write-out') && value !== undefined) writeOut = value;
      continue;
    }
    words.push(a);
  }
  const multi = ['endpoint', 'member', 'lease', 'alarm', 'auth', 'user', 'role', 'snapshot', 'check', 'move-leader'];
  const command = words.length >= 2 && multi.includes(words[0]) ? `${words[0]} ${words[1]}` : words[0] ?? '';
  return { command, writeOut };
}

// ---------------------------------------------------------------- bytes

/** UTF-8 text as is; otherwise bytes >= 0x80 that are not valid UTF-8 become \xNN. */
export function bytesToText(buf: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    let s = '<non-utf8>';
    for (const b of buf) s += b >= 0x80 ? `\\x${b.toString(16).padStart(2, '0')}` : String.fromCharCode(b);
    return s;
  }
}

// ---------------------------------------------------------------- protobuf

let pbRoot: protobuf.Root | undefined;
function root(): protobuf.Root {
  if (!pbRoot) {
    const dir = path.resolve(__dirname, '..', '..', 'packages', 'proto', 'proto');
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
    r.loadSync(['etcdserverpb/rpc.proto', 'mvccpb/kv.proto', 'authpb/auth.proto'], { keepCase: true });
    r.resolveAll();
    pbRoot = r;
  }
  return pbRoot;
}

const PROTOBUF_TYPES: Record<string, string> = {
  get: 'etcdserverpb.RangeResponse',
  put: 'etcdserverpb.PutResponse',
  del: 'etcdserverpb.DeleteRangeResponse',
  txn: 'etcdserverpb.TxnResponse',
  'member list': 'etcdserverpb.MemberListResponse',
  // etcdctl 3.4's protobuf printer writes only the response header for these two.
  'lease grant': 'etcdserverpb.ResponseHeader',
  'lease revoke': 'etcdserverpb.LeaseRevokeResponse',
  'lease timetolive': 'etcdserverpb.ResponseHeader',
  'alarm list': 'etcdserverpb.AlarmResponse',
};

/** etcdctl -w protobuf output decoded as JSON text (bytes as base64, int64 as strings). */
export function decodeProtobuf(command: string, buf: Buffer): string {
  const typeName = PROTOBUF_TYPES[command];
  if (!typeName) return `<protobuf ${command}: ${buf.toString('base64')}>`;
  try {
    const t = root().lookupType(typeName);
    const msg = t.decode(buf);
    return `<protobuf ${typeName}> ` + JSON.stringify(t.toObject(msg, { longs: String, bytes: String, enums: String, defaults: false }));
  } catch (err) {
    return `<undecodable protobuf ${typeName}: ${(err as Error).message}: ${buf.toString('base64')}>`;
  }
}

// ---------------------------------------------------------------- tables

/**
 * Renders rows the way etcdctl's tablewriter does (etcdctl sets ALIGN_RIGHT; headers are
 * centred, left gap = floor(gap/2)).
 */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const border = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const center = (s: string, w: number) => {
    const gap = w - s.length;
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  };
  const line = (cells: string[], fmt: (s: string, w: number) => string) =>
    '|' + cells.map((c, i) => ` ${fmt(c, widths[i])} `).join('|') + '|';
  const out = [border, line(header, center), border];
  for (const r of rows) out.push(line(r, (s, w) => s.padStart(w)));
  out.push(border);
  return out.join('\n') + '\n';
}

/** Parses a tablewriter table; undefined when `text` is not one. */
export function parseTable(text: string): { header: string[]; rows: string[][] } | undefined {
  const lines = text.replace(/\n$/, '').split('\n');
  if (lines.length < 4 || !/^\+(-+\+)+$/.test(lines[0])) return undefined;
  const cells = (l: string) => l.slice(1, -1).split('|').map((c) => c.trim());
  const header = cells(lines[1]);
  const rows = lines.slice(3, -1).map(cells);
  return { header, rows };
}

// ---------------------------------------------------------------- the normalizer

type Kind = 'id' | 'term' | 'index' | 'rev' | 'size' | 'hash';

const JSON_KEY_KIND: Record<string, Kind> = {
  cluster_id: 'id', member_id: 'id', leader: 'id', ID: 'id', ClusterID: 'id', MemberID: 'id', Leader: 'id',
  lease: 'id', Lease: 'id', memberID: 'id', member_ids: 'id',
  // etcdctl's json printer for `lease timetolive` and `lease list` spells the lease ID "id".
  id: 'id',
  raft_term: 'term', raftTerm: 'term', RaftTerm: 'term',
  raftIndex: 'index', raftAppliedIndex: 'index', RaftIndex: 'index', RaftAppliedIndex: 'index',
  raft_index: 'index', raft_applied_index: 'index',
  revision: 'rev', create_revision: 'rev', mod_revision: 'rev', compact_revision: 'rev',
  Revision: 'rev', CreateRevision: 'rev', ModRevision: 'rev', CompactRevision: 'rev',
  PrevCreateRevision: 'rev', PrevModRevision: 'rev', PrevLease: 'id',
  dbSize: 'size', dbSizeInUse: 'size', db_size: 'size', db_size_in_use: 'size', DBSize: 'size', DBSizeInUse: 'size',
  hash: 'hash', Hash: 'hash',
};

/** Columns of etcdctl's tables and of the matching comma-separated "simple" lines. */
const COLUMNS: Record<string, string[]> = {
  'endpoint status': ['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS'],
  'member list': ['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'],
  'endpoint hashkv': ['ENDPOINT', 'HASH'],
};

export class Normalizer {
  private readonly maps: Record<'id' | 'term' | 'hash', Map<string, string>> = {
    id: new Map(),
    term: new Map(),
    hash: new Map(),
  };

  /** Revisions are shown relative to this (see class comment). */
  revisionBase = 0n;

  constructor(private readonly sides: SideIdentity[]) {}

  private placeholder(kind: 'id' | 'term' | 'hash', dec: string): string {
    const m = this.maps[kind];
    let p = m.get(dec);
    if (p === undefined) {
      p = `<${kind.toUpperCase()}${m.size + 1}>`;
      m.set(dec, p);
    }
    return p;
  }

  /** A decimal number of the given kind, as its placeholder. Zero and negatives are sentinels and stay. */
  value(kind: Kind, dec: string): string {
    let n: bigint;
    try {
      n = BigInt(dec);
    } catch {
      return dec;
    }
    if (n <= 0n) return dec;
    switch (kind) {
      case 'id':
      case 'term':
      case 'hash':
        return this.placeholder(kind, n.toString());
      case 'index':
        return '<INDEX>';
      case 'size':
        return '<SIZE>';
      case 'rev': {
        const d = n - this.revisionBase;
        return this.revisionBase === 0n ? `<R${n}>` : d >= 0n ? `<R+${d}>` : `<R${d}>`;
      }
    }
  }

  /** A hex ID (as etcdctl prints member and lease IDs), as the same placeholder as its decimal form. */
  hexId(hex: string): string {
    if (!/^[0-9a-f]{1,16}$/.test(hex)) return hex;
    return this.value('id', BigInt('0x' + hex).toString());
  }

  /** Ports and member names of this side, as placeholders. */
  literals(s: string): string {
    for (const side of this.sides) {
      // Harness names are long and unique (proc.ts), so replacing them anywhere is safe.
      if (side.name.length < 6) throw new Error(`member name ${JSON.stringify(side.name)} is too short to normalize safely`);
      s = s.replace(new RegExp(`(?<![\\w-])${side.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`, 'g'), '<NAME>');
    }
    return s.replace(/127\.0\.0\.1:(\d+)/g, (all, port: string) => {
      const p = Number(port);
      if (this.sides.some((x) => x.clientPort === p)) return '127.0.0.1:<CLIENT_PORT>';
      if (this.sides.some((x) => x.peerPort === p)) return '127.0.0.1:<PEER_PORT>';
      return all;
    });
  }

  private version(v: string): string {
    const m = /^(\d+)\.(\d+)\.\d+/.exec(v);
    return m ? `${m[1]}.${m[2]}.<PATCH>` : v;
  }

  /** One table or CSV cell, by its column name. */
  cell(column: string, v: string): string {
    v = this.literals(v);
    switch (column) {
      case 'ID':
        return this.hexId(v);
      case 'VERSION':
        return this.version(v);
      case 'DB SIZE':
        return v === '' ? v : '<SIZE>';
      case 'RAFT TERM':
        return this.value('term', v);
      case 'RAFT INDEX':
      case 'RAFT APPLIED INDEX':
        return this.value('index', v);
      case 'HASH':
        return this.value('hash', v);
      case 'TOOK':
        return v === '' ? v : '<DURATION>';
      default:
        return v;
    }
  }

  /** json, fields and decoded-protobuf text. */
  structured(s: string): string {
    s = this.literals(s);
    s = s.replace(/"([A-Za-z_]+)"(\s*:\s*)("?)(-?\d+)("?)/g, (all, key: string, sep: string, q1: string, num: string, q2: string) => {
      const kind = JSON_KEY_KIND[key];
      if (!kind || q1 !== q2) return all;
      return `"${key}"${sep}${q1}${this.value(kind, num)}${q2}`;
    });
    // "member_ids" style arrays are not printed by etcdctl 3.4; leases list prints "ID" objects.
    // json quotes durations ("took":"1.4ms"); fields does not ("Took" : 1.4ms).
    s = s.replace(/"(took|Took)"(\s*:\s*)("[^"]*"|[0-9.]+[a-zµ]+)/g, (_a, k: string, sep: string, v: string) =>
      `"${k}"${sep}${v.startsWith('"') ? '"<DURATION>"' : '<DURATION>'}`);
    s = s.replace(/"(version|Version)"(\s*:\s*)"([^"]*)"/g, (_a, k: string, sep: string, v: string) => `"${k}"${sep}"${this.version(v)}"`);
    return s;
  }

  /** Free text: etcdctl's messages, zap log lines on stderr. */
  text(s: string): string {
    s = this.literals(s);
    s = s.replace(/"ts":"[^"]*"/g, '"ts":"<TS>"');
    s = s.replace(/client-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'client-<UUID>');
    s = s.replace(/took = [0-9.]+[a-zµ]+/g, 'took = <DURATION>');
    s = s.replace(/compacted revision (\d+)/g, (_a, n: string) => `compacted revision ${this.value('rev', n)}`);
    s = s.replace(/\blease ([0-9a-f]{16})\b/g, (_a, h: string) => `lease ${this.hexId(h)}`);
    // watch -i `progress` and the ETCD_WATCH_REVISION a `watch -- CMD` sees are revisions.
    s = s.replace(/^progress notify: (\d+)$/gm, (_a, n: string) => `progress notify: ${this.value('rev', n)}`);
    s = s.replace(/\bETCD_WATCH_REVISION=(\d+)/g, (_a, n: string) => `ETCD_WATCH_REVISION=${this.value('rev', n)}`);
    // etcd lists a lease's keys in Go map order (random): compare them as a set.
    s = s.replace(/attached keys\(\[([^\]\n]*)\]\)/g, (_a, keys: string) => `attached keys([${keys === '' ? '' : keys.split(' ').sort().join(' ')}])`);
    return s;
  }

  /** The comma-separated "simple" lines of endpoint status / member list / endpoint hashkv. */
  private csv(command: string, s: string): string {
    const cols = COLUMNS[command];
    return s
      .split('\n')
      .map((line) => {
        if (line === '') return line;
        const parts = line.split(', ');
        if (parts.length !== cols.length) return this.text(line);
        return parts.map((p, i) => this.cell(cols[i], p)).join(', ');
      })
      .join('\n');
  }

  private table(s: string): string {
    const t = parseTable(s);
    if (!t) return this.text(s);
    const canonical = renderTable(t.header, t.rows);
    const layout = canonical === s ? '' : `<TABLE LAYOUT DIFFERS FROM ETCDCTL'S>\n${this.text(s)}\n`;
    const rows = t.rows.map((r) => r.map((c, i) => this.cell(t.header[i], c)));
    return layout + [t.header, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n') + '\n';
  }

  /** Normalizes one etcdctl run; `args` are the command's own arguments (no global flags). */
  normalize(args: string[], r: EtcdctlResult): Normalized {
    const { command, writeOut } = parseArgs(args);
    let stdout: string;
    if (writeOut === 'protobuf' && r.code === 0 && r.stdoutBytes.length > 0 && PROTOBUF_TYPES[command]) {
      stdout = this.structured(decodeProtobuf(command, r.stdoutBytes));
    } else {
      const raw = bytesToText(r.stdoutBytes);
      if (writeOut === 'json' || writeOut === 'fields') stdout = this.text(this.structured(raw));
      else if (writeOut === 'table') stdout = this.table(raw);
      else if (COLUMNS[command]) stdout = this.csv(command, raw);
      else if (command === 'lease list') stdout = sortLines(this.text(raw.replace(/^[0-9a-f]{1,16}$/gm, (h) => this.hexId(h))), /^<ID\d+>$/);
      else stdout = this.text(raw);
      // etcd's LeaseTimeToLive keys and LeaseLeases come in Go map order (random).
      if (command === 'lease timetolive' && writeOut === 'json') stdout = stdout.replace(/"keys":\[([^\]]*)\]/g, (_a, ks: string) => `"keys":[${ks === '' ? '' : ks.split(',').sort().join(',')}]`);
      if (command === 'lease list' && writeOut === 'json') stdout = stdout.replace(/"leases":\[([^\]]*)\]/g, (_a, ls: string) => `"leases":[${ls === '' ? '' : ls.split(',').sort().join(',')}]`);
      if (command === 'lease list' && writeOut === 'fields') stdout = sortLines(stdout, /^"ID" : /);
      if (command === 'lease timetolive' && writeOut === 'fields') stdout = sortLines(stdout, /^"Key" : /);
    }
    const stderr = this.text(this.structured(bytesToText(r.stderrBytes)));
    return { code: r.code, stdout, stderr };
  }
}

/** Sorts, among themselves, the lines matching `re` (others stay where they are). */
export function sortLines(text: string, re: RegExp): string {
  const lines = text.split('\n');
  const sorted = lines.filter((l) => re.test(l)).sort();
  let j = 0;
  return lines.map((l) => (re.test(l) ? sorted[j++] : l)).join('\n');
}

/**
 * A lease's remaining TTL depends on when it was asked. Within `slackSeconds` below the
 * granted TTL it becomes `<G-slack..G>`; anything else (expired early, or more than
 * granted) stays a number, so the difference shows. Covers the simple, json and fields
 * outputs of `lease timetolive`.
 */
export function leaseRemaining(slackSeconds = 3): (n: Normalized) => Normalized {
  const near = (remaining: string, granted: string): string => {
    const r = Number(remaining);
    const g = Number(granted);
    return r <= g && r >= g - slackSeconds && r >= 0 ? `<${g}-${slackSeconds}..${g}>` : remaining;
  };
  const fix = (s: string): string =>
    s
      .replace(/granted with TTL\((\d+)s\), remaining\((-?\d+)s\)/g, (_a, g: string, r: string) => `granted with TTL(${g}s), remaining(${near(r, g)}s)`)
      .replace(/"ttl":(-?\d+),"granted-ttl":(\d+)/g, (_a, r: string, g: string) => `"ttl":${near(r, g)},"granted-ttl":${g}`)
      .replace(/"TTL" : (-?\d+)\n"GrantedTTL" : (\d+)/g, (_a, r: string, g: string) => `"TTL" : ${near(r, g)}\n"GrantedTTL" : ${g}`);
  return (n) => ({ ...n, stdout: fix(n.stdout) });
}

/** The header revision in `etcdctl ... -w json` output. */
export function headerRevision(jsonText: string): bigint {
  const m = /"revision":(\d+)/.exec(jsonText);
  if (!m) throw new Error(`no header revision in ${JSON.stringify(jsonText)}`);
  return BigInt(m[1]);
}
