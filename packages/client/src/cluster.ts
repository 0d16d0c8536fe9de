/**
 * The Cluster service: membership. memberList is idempotent, so it fails over. The changes
 * (add, remove, update, promote) are not: once a request is on the wire an UNAVAILABLE answer
 * does not say whether the member set changed, and sending it again elsewhere could add a
 * second member or fail with a misleading "member not found". The caller sees the error and
 * decides (list the members, then retry).
 *
 * Server-side rules a caller meets (etcd 3.4 `etcdserver/server.go`, strict reconfig check on
 * by default):
 * - every change is refused with "etcdserver: unhealthy cluster" until the leader has been
 *   connected to every voting member for 5 s (`HealthInterval`), e.g. just after start-up;
 * - adding a voter needs enough started members ("not enough started members"); at most one
 *   learner may exist ("too many learner members in cluster");
 * - a learner can be promoted only once its log is within 90 % of the leader's ("can only
 *   promote a learner member which is in sync with leader"), a voter never ("can only promote
 *   a learner member");
 * - removing or updating an unknown or removed member: "etcdserver: member not found" (etcd
 *   also sends its internal "ID removed" under this text).
 */
import type { ConnectionPool } from './connection';
import { InvalidPeerURLsError } from './errors';
import { fromWire, uint64ToWire } from './int64';
import { decodeHeader } from './ops';
import type { CallOptions, Int64Input, ResponseHeader } from './types';
import type { WireMember, WireMemberListResponse, WireResponseHeader } from './wire';

const READ = { idempotent: true } as const;
const CHANGE = { idempotent: false } as const;

export interface Member {
  /** uint64 member ID (etcdctl prints it in hex: `id.toString(16)`). */
  id: bigint;
  /** Empty for a member that was added but has not started yet. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface MemberListResult {
  header: ResponseHeader;
  members: Member[];
}

export interface MemberListOptions extends CallOptions {
  /** Ask for a linearizable list (etcd 3.5+; etcd 3.4 ignores it). */
  linearizable?: boolean;
}

export interface MemberAddOptions extends CallOptions {
  /** Add the member as a raft learner (non-voting) to be promoted once it has caught up. */
  isLearner?: boolean;
}

export interface MemberAddResult {
  header: ResponseHeader;
  /** The new member: its ID, peer URLs and learner flag; no name or client URLs until it starts. */
  member: Member;
  /** Every member after the change, the new one included. */
  members: Member[];
}

/** `MemberRemoveResponse`, `MemberUpdateResponse`, `MemberPromoteResponse`: the members after the change. */
export interface MemberChangeResult {
  header: ResponseHeader;
  members: Member[];
}

export type MemberRemoveResult = MemberChangeResult;
export type MemberUpdateResult = MemberChangeResult;
export type MemberPromoteResult = MemberChangeResult;

interface WireMemberAddResponse {
  header: WireResponseHeader | null;
  member: WireMember | null;
  members: WireMember[];
}

interface WireMemberChangeResponse {
  header: WireResponseHeader | null;
  members: WireMember[];
}

export function decodeMember(m: WireMember): Member {
  return {
    id: fromWire(m.ID),
    name: m.name ?? '',
    peerURLs: m.peerURLs ?? [],
    clientURLs: m.clientURLs ?? [],
    isLearner: !!m.isLearner,
  };
}

function decodeChange(r: WireMemberChangeResponse): MemberChangeResult {
  return { header: decodeHeader(r.header), members: (r.members ?? []).map(decodeMember) };
}

function callOf(o: CallOptions | undefined): CallOptions {
  return { signal: o?.signal, timeoutMs: o?.timeoutMs };
}

export class Cluster {
  constructor(private readonly pool: ConnectionPool) {}

  async memberList(options: MemberListOptions = {}): Promise<MemberListResult> {
    const req = { linearizable: options.linearizable };
    const r = await this.pool.unary<typeof req, WireMemberListResponse>('cluster', 'MemberList', req, READ, options);
    return { header: decodeHeader(r.header), members: (r.members ?? []).map(decodeMember) };
  }

  /**
   * Add a member with these peer URLs (checked first as clientv3 does: `InvalidPeerURLsError`
   * with Go's text, nothing sent). The new member must then be started with
   * `--initial-cluster-state existing` and an `--initial-cluster` naming every member.
   */
  async memberAdd(peerURLs: readonly string[], options: MemberAddOptions = {}): Promise<MemberAddResult> {
    checkPeerURLs(peerURLs);
    const req = { peerURLs: [...peerURLs], isLearner: !!options.isLearner };
    const r = await this.pool.unary<typeof req, WireMemberAddResponse>('cluster', 'MemberAdd', req, CHANGE, callOf(options));
    return {
      header: decodeHeader(r.header),
      member: decodeMember(r.member ?? ({ ID: '0', name: '', peerURLs: [], clientURLs: [], isLearner: false } as WireMember)),
      members: (r.members ?? []).map(decodeMember),
    };
  }

  /** Remove the member with this uint64 ID (a learner, or a voter while quorum allows). */
  async memberRemove(id: Int64Input, options: CallOptions = {}): Promise<MemberRemoveResult> {
    const req = { ID: uint64ToWire(id, 'id') };
    return decodeChange(await this.pool.unary<typeof req, WireMemberChangeResponse>('cluster', 'MemberRemove', req, CHANGE, callOf(options)));
  }

  /**
   * Replace a member's peer URLs (checked first, as for memberAdd). etcd 3.4 also clears the
   * member's learner flag in its member list when the member is a learner (fixed in 3.5):
   * update voters only, or expect that.
   */
  async memberUpdate(id: Int64Input, peerURLs: readonly string[], options: CallOptions = {}): Promise<MemberUpdateResult> {
    checkPeerURLs(peerURLs);
    const req = { ID: uint64ToWire(id, 'id'), peerURLs: [...peerURLs] };
    return decodeChange(await this.pool.unary<typeof req, WireMemberChangeResponse>('cluster', 'MemberUpdate', req, CHANGE, callOf(options)));
  }

  /** Make a learner a voting member; refused until it has caught up with the leader. */
  async memberPromote(id: Int64Input, options: CallOptions = {}): Promise<MemberPromoteResult> {
    const req = { ID: uint64ToWire(id, 'id') };
    return decodeChange(await this.pool.unary<typeof req, WireMemberChangeResponse>('cluster', 'MemberPromote', req, CHANGE, callOf(options)));
  }
}

// ---- peer URL checks: etcd's types.NewURLs over Go's net/url, with their error texts ----------

/** Go's strconv.Quote for the ASCII inputs URLs are made of (other runes pass through). */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (c === 0x07) out += '\\a';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x0b) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** net/url unescape's validation of `%XX` escapes; returns Go's error text or undefined. */
function badEscape(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '%') continue;
    if (!isHex(s[i + 1]) || !isHex(s[i + 2])) return `invalid URL escape ${goQuote(s.slice(i, i + 3))}`;
  }
  return undefined;
}

/** url.shouldEscape(c, encodeHost) for ASCII: such a byte makes the host invalid. */
function invalidHostByte(c: string): boolean {
  if (/^[A-Za-z0-9]$/.test(c)) return false;
  if ("!$&'()*+,;=:[]<>\"-_.~%".includes(c)) return false;
  return c.charCodeAt(0) < 0x80;
}

const validOptionalPort = (port: string): boolean => port === '' || /^:[0-9]*$/.test(port);

/** url.parseHost: returns Go's error text or undefined. */
function parseHostError(host: string): string | undefined {
  if (host.startsWith('[')) {
    const i = host.lastIndexOf(']');
    if (i < 0) return "missing ']' in host";
    const colonPort = host.slice(i + 1);
    if (!validOptionalPort(colonPort)) return `invalid port ${goQuote(colonPort)} after host`;
  } else {
    const i = host.lastIndexOf(':');
    if (i >= 0 && !validOptionalPort(host.slice(i))) return `invalid port ${goQuote(host.slice(i))} after host`;
  }
  const escape = badEscape(host);
  if (escape) return escape;
  for (const c of host) if (invalidHostByte(c)) return `invalid character ${goQuote(c)} in host name`;
  return undefined;
}

interface ParsedURL {
  scheme: string;
  host: string;
  path: string;
}

/** Go's url.Parse, as far as NewURLs needs it. Throws Go's `parse "<url>": <why>` text. */
function goParseURL(raw: string): ParsedURL {
  const hash = raw.indexOf('#');
  const u = hash >= 0 ? raw.slice(0, hash) : raw;
  const fail = (why: string): never => {
    throw new InvalidPeerURLsError(`parse ${goQuote(u)}: ${why}`);
  };
  if (/[\x00-\x1f\x7f]/.test(u)) fail('net/url: invalid control character in URL');
  if (u === '*') return { scheme: '', host: '', path: '*' };
  // getScheme
  let scheme = '';
  let rest = u;
  for (let i = 0; i < u.length; i++) {
    const c = u[i];
    if (/[A-Za-z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ':') {
      if (i === 0) fail('missing protocol scheme');
      scheme = u.slice(0, i).toLowerCase();
      rest = u.slice(i + 1);
    }
    break;
  }
  if (rest.endsWith('?') && rest.indexOf('?') === rest.length - 1) rest = rest.slice(0, -1);
  else if (rest.includes('?')) rest = rest.slice(0, rest.indexOf('?'));
  if (!rest.startsWith('/')) {
    if (scheme !== '') return { scheme, host: '', path: '' }; // opaque
    if (rest.split('/')[0].includes(':')) fail('first path segment in URL cannot contain colon');
  }
  let host = '';
  if (rest.startsWith('//') && (scheme !== '' || !rest.startsWith('///'))) {
    let authority = rest.slice(2);
    rest = '';
    const slash = authority.indexOf('/');
    if (slash >= 0) [authority, rest] = [authority.slice(0, slash), authority.slice(slash)];
    const at = authority.lastIndexOf('@');
    host = at < 0 ? authority : authority.slice(at + 1);
    const hostError = parseHostError(host);
    if (hostError) fail(hostError);
    if (at >= 0 && !/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(authority.slice(0, at))) fail('net/url: invalid userinfo');
  }
  const escape = badEscape(rest);
  if (escape) fail(escape);
  return { scheme, host, path: rest };
}

/** net.SplitHostPort succeeds. */
function splitsHostPort(hostport: string): boolean {
  const i = hostport.lastIndexOf(':');
  if (i < 0) return false;
  let j = 0;
  let k = 0;
  if (hostport[0] === '[') {
    const end = hostport.indexOf(']');
    if (end < 0 || end + 1 !== i) return false;
    [j, k] = [1, end + 1];
  } else if (hostport.slice(0, i).includes(':')) return false;
  return !hostport.slice(j).includes('[') && !hostport.slice(k).includes(']');
}

/**
 * etcd's `types.NewURLs`, which clientv3 runs before MemberAdd and MemberUpdate: each URL
 * (trimmed) must parse, use http, https, unix or unixs, have a `host:port` and no path.
 * Throws `InvalidPeerURLsError` with the text etcdctl prints.
 */
export function checkPeerURLs(urls: readonly string[]): void {
  if (!Array.isArray(urls) || urls.length === 0) throw new InvalidPeerURLsError('no valid URLs given');
  for (const original of urls) {
    if (typeof original !== 'string') throw new InvalidPeerURLsError(`peer URL must be a string, got ${typeof original}`);
    const u = original.trim();
    const parsed = goParseURL(u);
    if (!['http', 'https', 'unix', 'unixs'].includes(parsed.scheme)) {
      throw new InvalidPeerURLsError(`URL scheme must be http, https, unix, or unixs: ${u}`);
    }
    if (!splitsHostPort(parsed.host)) throw new InvalidPeerURLsError(`URL address does not have the form "host:port": ${u}`);
    if (parsed.path !== '') throw new InvalidPeerURLsError(`URL must not contain a path: ${u}`);
  }
}
