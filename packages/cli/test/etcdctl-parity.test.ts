/**
 * Goal: coord's CLI is etcdctl. For the same command against the same etcd answer, coord
 * prints the same bytes on stdout and stderr and exits with the same code, in every output
 * format (simple, json, fields, table), for reads, writes, txn from stdin and error cases.
 *
 * Method: two real etcd 3.4 members, A and B, start empty and get the same seed writes.
 * - "same" cases (reads, bad arguments) run etcdctl and coord against B: byte-for-byte equal.
 * - "lockstep" cases (writes) run etcdctl against A and coord against B, in the same order,
 *   so both see the same keys and revisions; they must be equal once A's cluster and member
 *   IDs are replaced by B's (the brief's "IDs aside").
 * - flag-syntax errors compare stderr and exit code only: etcdctl (cobra) also dumps its whole
 *   usage on stdout there; coord deliberately keeps stdout clean.
 * Global flags are passed before the command (`--endpoints X get k`), as etcdctl users do.
 */
import { coord, etcdctl, type RunResult } from './helpers/run';
import { startEtcd, type EtcdProcess } from './helpers/etcd';

jest.setTimeout(60000);

type Mode = 'same' | 'lockstep';

interface Case {
  readonly args: readonly string[];
  readonly input?: string | Buffer;
  readonly mode?: Mode;
  /** Compare stderr and exit code only (cobra prints usage on stdout after a flag error). */
  readonly stderrOnly?: boolean;
  /** Do not prepend `--endpoints`: the case sets its own. */
  readonly ownEndpoints?: boolean;
}

let a: EtcdProcess;
let b: EtcdProcess;
const ids = { a: { cluster: '', member: '' }, b: { cluster: '', member: '' } };

async function readIds(endpoint: string): Promise<{ cluster: string; member: string }> {
  const r = await etcdctl(['--endpoints', endpoint, 'endpoint', 'status', '-w', 'json']);
  const m = /"cluster_id":(\d+),"member_id":(\d+)/.exec(r.stdout.toString());
  if (!m) throw new Error(`no ids in ${r.stdout.toString()} ${r.stderr}`);
  return { cluster: m[1], member: m[2] };
}

/** Bytes as text for readable diffs: UTF-8 when it round-trips, else latin1 (still exact). */
function text(b: Buffer): string {
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : `(latin1) ${b.toString('latin1')}`;
}

function aToB(s: string): string {
  return s
    .split(a.endpoint)
    .join(b.endpoint)
    .split(ids.a.cluster)
    .join(ids.b.cluster)
    .split(ids.a.member)
    .join(ids.b.member)
    .split(BigInt(ids.a.member).toString(16))
    .join(BigInt(ids.b.member).toString(16));
}

function view(r: RunResult, stderrOnly: boolean, normalize: (s: string) => string = (s) => s) {
  return stderrOnly
    ? { stderr: normalize(r.stderr), code: r.code }
    : { stdout: normalize(text(r.stdout)), stderr: normalize(r.stderr), code: r.code };
}

interface Outcome {
  ours: ReturnType<typeof view>;
  ref: ReturnType<typeof view>;
}

/** Run one case: etcdctl and coord side by side. */
async function runCase(c: Case): Promise<Outcome> {
  const mode = c.mode ?? 'same';
  const withEp = (ep: string): string[] => (c.ownEndpoints ? [...c.args] : ['--endpoints', ep, ...c.args]);
  const [ref, ours] = await Promise.all([
    etcdctl(withEp(mode === 'lockstep' ? a.endpoint : b.endpoint), { input: c.input }),
    coord(withEp(b.endpoint), { input: c.input }),
  ]);
  const normalize = mode === 'lockstep' ? aToB : undefined;
  return { ours: view(ours, !!c.stderrOnly), ref: view(ref, !!c.stderrOnly, normalize) };
}

async function check(c: Case): Promise<void> {
  const { ours, ref } = await runCase(c);
  expect(ours).toEqual(ref);
}

/**
 * Independent cases (reads and errors against B) run a few at a time: each coord process
 * spends most of its ~0.3-0.5 s loading node, oclif and gRPC, so running them side by side
 * keeps the suite short. Each `it` then awaits its own case, so failures are reported per case.
 */
function parallelCases(cases: readonly Case[], concurrency = 4): void {
  const outcomes = new Map<Case, Promise<Outcome>>();
  beforeAll(() => {
    const queue = [...cases];
    const slots: Promise<void>[] = [];
    const started = new Map<Case, (o: Promise<Outcome>) => void>();
    for (const c of cases) outcomes.set(c, new Promise((resolve) => started.set(c, resolve as (o: Promise<Outcome>) => void)));
    const worker = async (): Promise<void> => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const p = runCase(c);
        (started.get(c) as (o: Promise<Outcome>) => void)(p);
        await p.catch(() => undefined);
      }
    };
    for (let i = 0; i < concurrency; i++) slots.push(worker());
    // Do not wait here: the tests below await their own case.
  });
  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const { ours, ref } = await (outcomes.get(c) as Promise<Outcome>);
    expect(ours).toEqual(ref);
  });
}

const name = (c: Case): string =>
  `${c.args.map((x) => (x === '' ? "''" : x)).join(' ')}${c.input !== undefined ? ` <<< ${JSON.stringify(c.input.toString())}` : ''}`;

beforeAll(async () => {
  [a, b] = await Promise.all([startEtcd(), startEtcd()]);
  [ids.a, ids.b] = await Promise.all([readIds(a.endpoint), readIds(b.endpoint)]);
  // The same seed on both, through etcdctl: revisions 2..12.
  const seed: [string[], (string | Buffer)?][] = [
    [['put', 'k1', 'v1']],
    [['put', 'k2', 'v2']],
    [['put', 'k3', 'v3']],
    [['put', 'k4', 'a4']],
    [['put', 'k5', 'v5']],
    [['put', 'k2', 'v2b']],
    [['put', 'ключ', 'значение\tс табом']],
    [['put', 'bin'], Buffer.from([0xff, 0x00, 0x01, 0x61, 0x0a])],
    [['put', 'quote"key', 'back\\slash "q"']],
    [['put', 'z', '<&> \u2028']],
    [['put', 'k3', 'v3b']],
  ];
  for (const ep of [a.endpoint, b.endpoint]) {
    for (const [args, input] of seed) {
      const r = await etcdctl(['--endpoints', ep, ...args], { input });
      if (r.code !== 0) throw new Error(`seed ${args.join(' ')}: ${r.stderr}`);
    }
  }
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

describe('reads: get in every format', () => {
  parallelCases([
    { args: ['get', 'k1'] },
    { args: ['get', 'k1', '-w', 'json'] },
    { args: ['get', 'k1', '-w', 'fields'] },
    { args: ['get', 'k', '--prefix'] },
    { args: ['get', 'k', '--prefix', '--keys-only', '-w', 'json'] },
    { args: ['get', 'k', '--prefix', '--limit', '2', '-w', 'fields'] },
    { args: ['get', 'k3', '--from-key', '-w', 'json'] },
    { args: ['get', 'k1', 'k3', '--sort-by', 'create', '--order', 'ascend', '--keys-only'] },
    { args: ['get', 'k', '--prefix', '--sort-by', 'VALUE', '--order', 'DESCEND'] },
    { args: ['get', 'k', '--prefix', '--sort-by=modify', '--limit=3', '-w', 'json'] },
    { args: ['get', 'k2', '--rev', '3', '-w', 'json'] },
    { args: ['get', 'k2', '--consistency', 's', '-w', 'fields'] },
    { args: ['get', 'k', '--prefix', '--print-value-only'] },
    { args: ['get', 'k1', '--hex'] },
    { args: ['get', '', '--prefix', '--keys-only'] },
    { args: ['get', 'nope', '-w', 'json'] },
    { args: ['get', 'bin'] },
    { args: ['get', 'bin', '-w', 'fields'] },
    { args: ['get', 'ключ', '-w', 'fields'] },
    { args: ['get', 'quote"key', '--from-key', '-w', 'fields'] },
  ]);
});

describe('reads: member list, endpoint status, endpoint hashkv', () => {
  const cases: Case[] = [];
  for (const w of ['simple', 'json', 'fields', 'table']) {
    cases.push({ args: ['member', 'list', '-w', w] });
    cases.push({ args: ['endpoint', 'status', '-w', w] });
    cases.push({ args: ['endpoint', 'hashkv', '-w', w] });
  }
  cases.push({ args: ['endpoint', 'hashkv', '--rev', '4', '--cluster'] });
  parallelCases(cases);
});

describe('errors: arguments, output formats, server errors', () => {
  const cases: Case[] = [
    { args: ['get'] },
    { args: ['get', '--prefix', '--from-key', 'a'] },
    { args: ['get', '--prefix', 'a', 'b'] },
    { args: ['get', 'a', '--consistency', 'x'] },
    { args: ['get', 'a', '--sort-by', 'size'] },
    { args: ['get', 'a', '-w', 'xml'] },
    { args: ['get', 'k1', '-w', 'table'] },
    { args: ['get', 'k1', '--print-value-only', '-w', 'json'] },
    { args: ['get', 'k2', '--rev', '100000'] },
    { args: ['put'] },
    { args: ['put', 'a', 'b', '--ignore-value'] },
    { args: ['put', 'a', 'b', '--lease', 'zz'] },
    { args: ['put', '', 'v'] },
    { args: ['put', 'nokey', '--ignore-value'] },
    { args: ['del', 'a', 'b', 'c'] },
    { args: ['compaction'] },
    { args: ['compaction', 'abc'] },
    { args: ['compaction', '100000'] },
    { args: ['txn', 'x'] },
    { args: ['get', 'a', '--bogus'], stderrOnly: true },
    { args: ['get', 'a', '-x'], stderrOnly: true },
    { args: ['get', 'a', '--limit', 'abc'], stderrOnly: true },
    { args: ['get', 'a', '--limit'], stderrOnly: true },
    { args: ['get', '--prefix=maybe', 'k'], stderrOnly: true },
    { args: ['--dial-timeout=soon', 'get', 'a'], stderrOnly: true },
    { args: ['--command-timeout', '5x', 'get', 'a'], stderrOnly: true },
  ];
  parallelCases(cases);

  it('unknown command: cobra\'s message with the binary name', async () => {
    const [ref, ours] = await Promise.all([etcdctl(['frobnicate']), coord(['frobnicate'])]);
    expect(view(ours, false)).toEqual(view(ref, false, (s) => s.split('etcdctl').join('coord')));
  });

  it('unreachable endpoint: "context deadline exceeded" after --command-timeout, exit 1', async () => {
    await check({ args: ['--endpoints', '127.0.0.1:1', '--command-timeout', '300ms', 'get', 'a'], ownEndpoints: true });
  });

  it('endpoint status with one endpoint down: stderr line, the others printed, exit 1', async () => {
    const eps = `127.0.0.1:1,${b.endpoint}`;
    await Promise.all([
      check({ args: ['--endpoints', eps, '--command-timeout', '300ms', 'endpoint', 'status'], ownEndpoints: true }),
      check({ args: ['--endpoints', eps, '--command-timeout', '300ms', 'endpoint', 'hashkv', '-w', 'json'], ownEndpoints: true }),
    ]);
  });

  it('repeated --endpoints append, as pflag string slices do', async () => {
    await check({ args: ['--endpoints', '127.0.0.1:1', '--endpoints', b.endpoint, '--command-timeout', '2s', 'get', 'k1'], ownEndpoints: true });
  });
});

describe('txn from stdin: grammar errors', () => {
  const inputs = [
    '\n\n\n',
    '\n\nput a\n\n',
    '\n\nfoo a\n\n',
    'foo("a") = "2"\n\n',
    'value(a) = "2"\n\n',
    'mod("a") = "x"\n\n',
    'mod("a")>"1"\n\n',
    '',
  ];
  parallelCases(inputs.map((input) => ({ args: ['txn'], input })));
});

describe('writes (etcdctl on A, coord on B, in lockstep)', () => {
  const w = (args: string[], input?: string | Buffer): Case => ({ args, input, mode: 'lockstep' });
  const cases: Case[] = [
    w(['put', 'foo', 'bar']),
    w(['put', 'foo', 'bar3', '--prev-kv', '-w', 'json']),
    w(['put', 'foo', 'bar4', '--prev-kv', '-w', 'fields']),
    w(['put', 'foo', '--ignore-value', '--ignore-lease', '--prev-kv']),
    w(['put', 'stdin-key'], 'line one\nline two\n'),
    w(['put', 'stdin-bin', '--prev-kv'], Buffer.from([0x00, 0xfe, 0x0a, 0x80])),
    w(['put', 'foo', 'x', '-w', 'table']),
    w(['put', 'leased', 'v', '--lease', '694d6280d047720f']),
    w(['put', '--', '-dash', 'value']),
    w(['get', '-w', 'json', '--', '-dash']),
    w(['del', 'foo', '--prev-kv']),
    w(['del', 'k1', 'k3', '--prev-kv', '-w', 'fields']),
    w(['del', 'stdin', '--prefix', '--prev-kv', '-w', 'json']),
    w(['txn'], 'mod("k2") > "0"\nvalue("k2") = "v2b"\n\nput k2 v2c\nget k2\ndel k5\n\nput kf f\n\n'),
    w(['txn', '-w', 'json'], 'version("nope") = "1"\n\nput k2 x\n\nput kf f --prev-kv\nget k --prefix --keys-only\n\n'),
    w(['txn', '-w', 'fields'], 'create("k2") > "0"\nver("k2") != "0"\nval("k2") < "zzz"\nc("k2") > "0"\nm("k2")   >   "0"\n\nget k2 --print-value-only\nput "x y" "a\\tb"\ndel kf --prev-kv\n\n\n'),
    w(['txn', '-i'], 'value("k2") = "v2c"\n\nget k2\n\nget kf\n\n'),
    w(['txn', '-w', 'table'], '\n\nput tbl v\n\n'),
    w(['compaction', '5']),
    w(['get', 'k2', '--rev', '3']),
    w(['compaction', '4']),
    w(['compaction', '8', '--physical']),
    w(['del', '', '--from-key', '-w', 'json']),
  ];
  it.each(cases.map((c) => [name(c), c] as const))('%s', async (_n, c) => check(c));
});

describe('environment', () => {
  it('ETCDCTL_ENDPOINTS selects the endpoint when --endpoints is absent', async () => {
    const env = { ETCDCTL_ENDPOINTS: b.endpoint };
    const [ref, ours] = await Promise.all([
      etcdctl(['get', 'k2', '-w', 'json'], { env }),
      coord(['get', 'k2', '-w', 'json'], { env }),
    ]);
    expect(view(ours, false)).toEqual(view(ref, false));
    expect(ours.code).toBe(0);
  });
});
