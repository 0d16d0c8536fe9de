/**
 * What the membership commands (`member add|remove|update|promote`, `move-leader`,
 * `endpoint health`) share: etcdctl's argument parsing with its exact error texts and exit
 * codes (member IDs in hex through strconv.ParseUint, `--peer-urls` split on commas), and the
 * mapping of their failures to CliErrors with a "Try this:" hint for the membership errors.
 * No dependencies beyond the CLI's own modules: loading it never loads gRPC.
 */
import { BaseCommand } from './base-command';
import { CliError, ExitCode, badArgs, toCliError } from './errors';
import type { FlagSpec } from './flags/pflag';
import { goQuote } from './output/go';
import { newMembershipPrinter, type MembershipPrinter } from './output/membership';

export const PEER_URLS_SPEC = (what: string): FlagSpec => ({
  name: 'peer-urls',
  kind: 'string',
  default: '',
  description: `comma separated peer URLs for the ${what} member.`,
});

export const LEARNER_SPEC: FlagSpec = { name: 'learner', kind: 'bool', description: 'indicates if the new member is raft learner' };

const UINT64_MAX = (1n << 64n) - 1n;

/**
 * strconv.ParseUint(s, base, 64). Throws an Error whose message is Go's, e.g.
 * `strconv.ParseUint: parsing "zz": invalid syntax` (no sign accepted, unlike ParseInt).
 */
export function goParseUint(s: string, base: 10 | 16): bigint {
  const fail = (why: string): never => {
    throw new Error(`strconv.ParseUint: parsing ${goQuote(s)}: ${why}`);
  };
  const digits = base === 10 ? /^[0-9]+$/ : /^[0-9a-fA-F]+$/;
  if (!digits.test(s)) fail('invalid syntax');
  const value = BigInt((base === 16 ? '0x' : '') + s);
  if (value > UINT64_MAX) fail('value out of range');
  return value;
}

/** etcdctl's member ID argument: hex, ExitBadArgs with its text otherwise. */
export function memberIdFromArg(arg: string): bigint {
  try {
    return goParseUint(arg, 16);
  } catch (err) {
    throw badArgs(`bad member ID arg (${(err as Error).message}), expecting ID in Hex`, 'pass the member ID in hex, as `coord member list` prints it.');
  }
}

/** `--peer-urls`: required, split on commas as etcdctl does (empty parts are kept, and refused later). */
export function peerURLsFromFlag(value: string): string[] {
  if (value.length === 0) throw badArgs('member peer urls not provided', 'pass --peer-urls=http://HOST:PORT[,...].');
  return value.split(',');
}

const HINTS: Record<string, string> = {
  MemberNotFoundError: 'list the members with `coord member list` and pass the ID in hex as printed there.',
  PeerURLExistsError: 'another member already uses one of these peer URLs: choose another, or remove that member first.',
  MemberNotLearnerError: 'only a learner (`coord member add --learner`) can be promoted; this member already votes.',
  LearnerNotReadyError: 'start the learner (with --initial-cluster-state existing) and retry once it has caught up with the leader.',
  TooManyLearnersError: 'etcd allows one learner at a time: promote or remove the existing learner first.',
  UnhealthyError: 'every voting member must have been connected to the leader for 5 s: check `coord endpoint health --cluster` and retry.',
  MemberNotEnoughStartedError: 'start the members that were added but not started (`coord member list`), or remove them, then retry.',
  BadLeaderTransfereeError: 'the target must be a started voting member: see `coord member list`.',
  NotLeaderError: 'the request must reach the leader: include its endpoint in --endpoints (`coord endpoint status --cluster`).',
  InvalidPeerURLsError: 'peer URLs look like http://HOST:PORT (http, https, unix or unixs; no path).',
};

/**
 * A failure of a membership call as etcdctl prints it (exit 1), with a hint for the errors
 * the membership API adds. Client-side URL checks print Go's text alone, as clientv3 returns it.
 */
export function membershipError(err: unknown, endpoints: readonly string[]): CliError {
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'InvalidPeerURLsError') {
    return new CliError((err as Error).message, ExitCode.Error, { code: 'ERR_BAD_ARGS', hint: HINTS.InvalidPeerURLsError, cause: err });
  }
  const e = toCliError(err, { endpoints });
  const hint = typeof name === 'string' ? HINTS[name] : undefined;
  if (!hint || e.hint) return e;
  return new CliError(e.message, e.exitCode, { code: e.code, hint, cause: err });
}

/**
 * Go's time.Duration.String(): `0s`, `850ns`, `1.5µs`, `6.557467ms`, `5.000393452s`, `1m2.5s`,
 * `1h0m0s` (fraction digits without trailing zeros), as etcdctl prints "took".
 */
export function goDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const negative = ns < 0n;
  let u = negative ? -ns : ns;
  const frac = (v: bigint, prec: number): [string, bigint] => {
    let digits = '';
    let printed = false;
    for (let i = 0; i < prec; i++) {
      const d = v % 10n;
      printed ||= d !== 0n;
      if (printed) digits = d.toString() + digits;
      v /= 10n;
    }
    return [printed ? '.' + digits : '', v];
  };
  let out: string;
  if (u < 1_000_000_000n) {
    const [prec, unit] = u < 1000n ? [0, 'ns'] : u < 1_000_000n ? [3, '\u00b5s'] : [6, 'ms'];
    const [f, whole] = frac(u, prec);
    out = `${whole}${f}${unit}`;
  } else {
    const [f, secs] = frac(u, 9);
    u = secs;
    out = `${u % 60n}${f}s`;
    u /= 60n;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return negative ? `-${out}` : out;
}

/** The base of `member add|remove|update|promote` and `move-leader`. */
export abstract class MembershipCommand extends BaseCommand {
  /** The printer for `-w` (validated first, as etcdctl's mustClientFromCmd does). */
  protected membershipPrinter(): MembershipPrinter {
    this.printer();
    return newMembershipPrinter(this.global().writeOut, { out: this.out, err: (line) => this.logToStderr('%s', line) }) as MembershipPrinter;
  }

  /** Run a membership call; failures as etcdctl prints them (exit 1), with a hint. */
  protected async call<T>(fn: () => Promise<T>, endpoints: readonly string[] = this.endpointList()): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw membershipError(err, endpoints);
    }
  }
}
