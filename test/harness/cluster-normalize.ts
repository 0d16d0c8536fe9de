/**
 * Normalization of etcdctl's cluster views (member list/add/promote/remove, endpoint
 * status/health --cluster, move-leader) so that two independent multi-member clusters can
 * be compared.
 *
 * Goal: two clusters started the same way differ in ports, member names, member and
 * cluster IDs (hashes of URLs, token and time), raft terms and indexes, db sizes, timings,
 * and the order in which etcdctl lists members (by ID) or endpoints answer (concurrently).
 * Erase exactly that, and keep which member is which: "m2 is the leader", "the member
 * promoted is the one added", "the row of m4 says IS LEARNER true" must still compare.
 *
 * Method: unlike normalize.ts (one member per side, placeholders by first appearance),
 * each side names its members by role (m1, m2, ... in the order the test created them):
 * every member's name, client and peer port, and ID (hex as etcdctl prints it in tables,
 * simple output and messages, with or without %16x's padding; decimal in json) become
 * `<m2>`, `<m2.client>`, `<m2.peer>`, `<m2.id>`; the cluster ID becomes `<cluster>`; an
 * ID that is no member's becomes `<unknown-id>`. Numbers by kind as in normalize.ts:
 * terms `<TERM>`, raft indexes `<INDEX>`, sizes `<SIZE>`, durations `<DURATION>`,
 * the patch version `<PATCH>`; revisions stay (both sides make the same writes).
 * Tables must be laid out as etcdctl's tablewriter lays them out (normalize.ts
 * renderTable), then are reduced to cells. Then order is erased: table rows, simple lines,
 * json arrays and the ETCD_INITIAL_CLUSTER list are sorted.
 */
import type { EtcdctlResult } from './etcdctl';
import { bytesToText, Normalized, parseArgs, parseTable, renderTable } from './normalize';

export interface MemberIdentity {
  /** Role label, e.g. "m1". */
  label: string;
  name?: string;
  clientPort?: number;
  peerPort?: number;
  id?: bigint;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const JSON_NUMBER_KIND: Record<string, 'term' | 'index' | 'size'> = {
  raft_term: 'term', raftTerm: 'term',
  raftIndex: 'index', raftAppliedIndex: 'index',
  dbSize: 'size', dbSizeInUse: 'size',
};

export class ClusterNormalizer {
  readonly members: MemberIdentity[] = [];
  clusterId: bigint | undefined;

  /** Adds or updates the member with this label. */
  set(m: MemberIdentity): void {
    const i = this.members.findIndex((x) => x.label === m.label);
    if (i >= 0) this.members[i] = { ...this.members[i], ...m };
    else this.members.push({ ...m });
  }

  private ids(): { id: bigint; label: string }[] {
    const out: { id: bigint; label: string }[] = [];
    for (const m of this.members) if (m.id !== undefined) out.push({ id: m.id, label: `<${m.label}.id>` });
    if (this.clusterId !== undefined) out.push({ id: this.clusterId, label: '<cluster>' });
    return out;
  }

  /** Names, ports and hex IDs in free text; decimal IDs too when `decimal`. */
  literals(s: string, opts: { decimal?: boolean; quoteDecimal?: boolean } = {}): string {
    for (const m of this.members) {
      if (m.name) {
        if (m.name.length < 6) throw new Error(`member name ${JSON.stringify(m.name)} is too short to normalize safely`);
        s = s.replace(new RegExp(`(?<![\\w-])${escapeRe(m.name)}(?![\\w-])`, 'g'), `<${m.label}>`);
      }
      if (m.clientPort) s = s.replace(new RegExp(`127\\.0\\.0\\.1:${m.clientPort}(?!\\d)`, 'g'), `<${m.label}.client>`);
      if (m.peerPort) s = s.replace(new RegExp(`127\\.0\\.0\\.1:${m.peerPort}(?!\\d)`, 'g'), `<${m.label}.peer>`);
    }
    for (const { id, label } of this.ids()) {
      if (opts.decimal) s = s.replace(new RegExp(`(?<![\\w.])${id.toString()}(?![\\w.])`, 'g'), opts.quoteDecimal ? `"${label}"` : label);
      // %16x pads with spaces: " c173a51f2033c64" must read like "6f88804e893a2c6b".
      s = s.replace(new RegExp(`( *)(?<![\\w.])0*${id.toString(16)}(?![\\w.])`, 'g'), (_a, pad: string) => (pad.length > 0 ? ' ' : '') + label);
    }
    // Any other 64-bit hex ID (a member that is not ours).
    s = s.replace(/(?<![\w.<-])[0-9a-f]{13,16}(?![\w.>])/g, '<unknown-id>');
    return s;
  }

  private version(v: string): string {
    const m = /^(\d+)\.(\d+)\.\d+$/.exec(v.trim());
    return m ? `${m[1]}.${m[2]}.<PATCH>` : v;
  }

  /** Free text (messages, zap lines on stderr). */
  text(s: string): string {
    s = this.literals(s);
    s = s.replace(/"ts":"[^"]*"/g, '"ts":"<TS>"');
    s = s.replace(/client-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'client-<UUID>');
    s = s.replace(/took = [0-9.]+[a-zµ]+/g, 'took = <DURATION>');
    s = s.replace(/^(ETCD_INITIAL_CLUSTER=")([^"]*)"/m, (_a, k: string, list: string) => `${k}${list.split(',').sort().join(',')}"`);
    return s;
  }

  /** One cell of a table or of a comma-separated simple line, by column. */
  cell(column: string, v: string): string {
    switch (column) {
      case 'VERSION':
        return this.version(v);
      case 'DB SIZE':
        return v === '' ? v : '<SIZE>';
      case 'RAFT TERM':
        return /^\d+$/.test(v) ? '<TERM>' : v;
      case 'RAFT INDEX':
      case 'RAFT APPLIED INDEX':
        return /^\d+$/.test(v) ? '<INDEX>' : v;
      case 'TOOK':
        return v === '' ? v : '<DURATION>';
      default:
        return this.literals(v).trim();
    }
  }

  private table(raw: string): string {
    const t = parseTable(raw);
    if (!t) return this.text(raw);
    const layout = renderTable(t.header, t.rows) === raw ? '' : `<TABLE LAYOUT DIFFERS FROM ETCDCTL'S>\n${this.text(raw)}\n`;
    const rows = t.rows.map((r) => `| ${r.map((c, i) => this.cell(t.header[i], c)).join(' | ')} |`).sort();
    return layout + [`| ${t.header.join(' | ')} |`, ...rows].join('\n') + '\n';
  }

  private json(raw: string): string {
    let s = this.literals(raw, { decimal: true, quoteDecimal: true });
    s = s.replace(/"([A-Za-z_]+)"(\s*:\s*)(\d+)/g, (all, key: string, sep: string, num: string) => {
      const kind = JSON_NUMBER_KIND[key];
      if (!kind || num === '0') return all;
      return `"${key}"${sep}"<${kind.toUpperCase()}>"`;
    });
    s = s.replace(/"(took)"(\s*:\s*)"[^"]*"/g, '"$1"$2"<DURATION>"');
    s = s.replace(/"(version)"(\s*:\s*)"([^"]*)"/g, (_a, k: string, sep: string, v: string) => `"${k}"${sep}"${this.version(v)}"`);
    try {
      return JSON.stringify(sortArrays(JSON.parse(s))) + '\n';
    } catch {
      return `<NOT JSON> ${this.text(s)}`;
    }
  }

  /** Comma-separated simple lines (member list, endpoint status) and other simple output. */
  private simple(command: string, raw: string): string {
    const cols = SIMPLE_COLUMNS[command];
    const lines = raw.split('\n').map((line) => {
      if (cols) {
        const parts = line.split(', ');
        if (parts.length === cols.length) return parts.map((p, i) => this.cell(cols[i], p)).join(', ');
      }
      return this.text(line);
    });
    return SORTED_SIMPLE.has(command) ? sortNonEmpty(lines) : lines.join('\n');
  }

  normalize(args: string[], r: EtcdctlResult): Normalized {
    const { command, writeOut } = parseArgs(args);
    const raw = bytesToText(r.stdoutBytes);
    let stdout: string;
    if (writeOut === 'json') stdout = this.json(raw);
    else if (writeOut === 'table') stdout = this.table(raw);
    else stdout = this.simple(command, raw);
    // `endpoint health` prints its simple results on stderr, in the order the endpoints answered.
    const errLines = bytesToText(r.stderrBytes).split('\n').map((l) => this.text(l));
    const stderr = command === 'endpoint health' ? sortNonEmpty(errLines) : errLines.join('\n');
    return { code: r.code, stdout, stderr };
  }
}

const SIMPLE_COLUMNS: Record<string, string[]> = {
  'endpoint status': ['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS'],
  'member list': ['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'],
};
const SORTED_SIMPLE = new Set(['endpoint status', 'member list', 'endpoint health']);

function sortNonEmpty(lines: string[]): string {
  const body = lines.filter((l) => l !== '').sort();
  return body.length === 0 ? '' : body.join('\n') + (lines[lines.length - 1] === '' ? '\n' : '');
}

/** Arrays sorted by their elements' JSON text, recursively (objects keep their key order). */
function sortArrays(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortArrays).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sortArrays(x)]));
  return v;
}
