/**
 * Goal: `coord lease grant|revoke|timetolive [--keys]|list|keep-alive [--once]` and
 * `coord put --lease` are etcdctl 3.4's: the same bytes on stdout and stderr and the same exit
 * status, in every output format (simple, json, fields, table), IDs in hex as `%016x`, and
 * etcdctl's error texts and exit codes (bad TTL or ID: 128; failed grant or revoke: 1;
 * timetolive, list, keep-alive failures: 2; `-w table`: 4 after the request).
 *
 * Method: the real binaries (`node packages/cli/bin/run.js`, /usr/bin/etcdctl) against the same
 * server, a real etcd 3.4 and then a `coord server` (a representative subset there). Reads run
 * side by side and must be equal byte for byte, except where the server itself moves between
 * the two runs: a lease's remaining TTL (normalised, and checked to differ by no more than
 * the pair of runs took) and the order of attached keys (etcd returns them in Go map order; sorted).
 * Grants and revokes give each binary its own lease and are compared with the IDs
 * normalised; `lease list` and a put run alone, after everything else. `lease keep-alive` runs until the lease is revoked;
 * the number of renewals depends on timing, so the distinct lines, the last line and the exit
 * status are compared. Nothing asserts speed.
 */
import { coord, etcdctl, type RunResult } from './helpers/run';
import { CasePool, both, ctl, startTarget, type Target } from './watch-lease-harness';

jest.setTimeout(60000);

const view = (r: RunResult) => ({ stdout: r.stdout.toString('latin1'), stderr: r.stderr, code: r.code });

/** Remaining TTLs as placeholders, and the values found (for the ±2 s check). */
function normalizeRemaining(text: string): { text: string; ttls: number[] } {
  const ttls: number[] = [];
  const keep = (prefix: string, n: string, suffix = ''): string => {
    ttls.push(Number(n));
    return `${prefix}<ttl>${suffix}`;
  };
  const out = text
    .replace(/remaining\((-?\d+)s\)/g, (_m, n: string) => keep('remaining(', n, 's)'))
    .replace(/"ttl":(-?\d+)/g, (_m, n: string) => keep('"ttl":', n))
    .replace(/"TTL" : (-?\d+)/g, (_m, n: string) => keep('"TTL" : ', n))
    // attached keys([b a]) / "keys":["..","."] / "Key" lines: Go map order on the server
    .replace(/attached keys\(\[([^\]]*)\]\)/g, (_m, ks: string) => `attached keys([${ks.split(' ').sort().join(' ')}])`)
    .replace(/"keys":\[([^\]]*)\]/g, (_m, ks: string) => `"keys":[${ks.split(',').sort().join(',')}]`);
  const lines = out.split('\n');
  const keyLines = lines.filter((l) => l.startsWith('"Key" : ')).sort();
  let k = 0;
  return { text: lines.map((l) => (l.startsWith('"Key" : ') ? keyLines[k++] : l)).join('\n'), ttls };
}

/** Replace one lease ID (hex and decimal) by a placeholder. */
function hideId(text: string, hexId: string): string {
  if (hexId === '') return text;
  return text.split(hexId).join('<id>').split(BigInt('0x' + hexId).toString()).join('<id>');
}

describe.each(['etcd', 'coord'] as const)('against %s', (targetName) => {
  let target: Target;
  let ep: string[];
  const pool = new CasePool(4);
  /** Leases made in beforeAll: `one` (one key; renewed by the keep-alive cases), `two` (two keys; never renewed). */
  const ids = { one: '', two: '' };

  function kase(name: string, fn: () => Promise<void>, onCoord = false, skip = false): void {
    if (skip || (targetName === 'coord' && !onCoord)) return;
    pool.pooled(name, fn);
    it(name, () => pool.result(name));
  }

  async function grant(ttl: number): Promise<string> {
    const r = await ctl(target.endpoint, ['lease', 'grant', String(ttl)]);
    const m = /^lease ([0-9a-f]{16}) granted/.exec(r.stdout.toString());
    if (!m) throw new Error(`grant: ${r.stdout} ${r.stderr}`);
    return m[1];
  }

  beforeAll(async () => {
    target = await startTarget(targetName);
    ep = ['--endpoints', target.endpoint];
    ids.one = await grant(600);
    ids.two = await grant(600);
    for (const [k, id] of [['k1', ids.one], ['k2a', ids.two], ['k2b', ids.two]]) {
      const r = await ctl(target.endpoint, ['put', k, 'v', '--lease', id]);
      if (r.code !== 0) throw new Error(`put --lease: ${r.stderr}`);
    }
  });

  beforeAll(() => pool.start());

  afterAll(async () => {
    await target?.stop();
  });

  async function pair(args: string[]): Promise<[RunResult, RunResult]> {
    return Promise.all([etcdctl([...ep, ...args]), coord([...ep, ...args])]);
  }

  /** Same command, both binaries, byte-identical result. */
  async function same(args: string[]): Promise<RunResult> {
    const [ref, ours] = await pair(args);
    expect(view(ours)).toEqual(view(ref));
    return ref;
  }

  describe('lease timetolive', () => {
    for (const format of ['simple', 'json', 'fields', 'table']) {
      for (const keys of format === 'table' ? [true] : [false, true]) {
        kase(
          `timetolive -w ${format}${keys ? ' --keys (two keys)' : ''}`,
          async () => {
            // Lease `two` is never renewed, so its remaining TTL only goes down while the two
            // binaries run: at most by the time the pair took (plus the second it rounds to).
            const args = ['lease', 'timetolive', ids.two, '-w', format, ...(keys ? ['--keys'] : [])];
            const started = Date.now();
            const [ref, ours] = await pair(args);
            const tookS = Math.ceil((Date.now() - started) / 1000);
            const [r, o] = [normalizeRemaining(view(ref).stdout), normalizeRemaining(view(ours).stdout)];
            expect({ ...view(ours), stdout: o.text }).toEqual({ ...view(ref), stdout: r.text });
            expect(o.ttls.length).toBe(r.ttls.length);
            o.ttls.forEach((t, i) => expect(Math.abs(t - r.ttls[i])).toBeLessThanOrEqual(tookS + 1));
            if (format === 'simple') expect(r.text).toMatch(keys ? /^lease [0-9a-f]{16} granted with TTL\(600s\), remaining\(<ttl>s\), attached keys\(\[k2a k2b\]\)\n$/ : /remaining\(<ttl>s\)\n$/);
          },
          format === 'json' && keys,
        );
      }
      kase(
        `timetolive of an unknown lease, -w ${format}: "already expired"`,
        async () => {
          const r = await same(['lease', 'timetolive', '1234', '-w', format, '--keys']);
          if (format === 'simple') expect(r.stdout.toString()).toBe('lease 0000000000001234 already expired\n');
        },
        format === 'simple',
        format !== 'simple' && format !== 'json',
      );
    }
  });

  describe('lease keep-alive --once', () => {
    for (const format of ['simple', 'json', 'fields', 'table']) {
      kase(`keep-alive --once -w ${format}`, async () => {
        await same(['lease', 'keep-alive', '--once', ids.one, '-w', format]);
      });
    }
    kase(
      'unknown lease: exit 2',
      async () => {
        const r = await same(['lease', 'keep-alive', '--once', '1234']);
        expect([r.stderr, r.code]).toEqual(['Error: etcdserver: requested lease not found\n', 2]);
      },
      true,
    );
    kase(
      'without --once, an unknown lease: "expired or revoked." at once, exit 0',
      async () => {
        const r = await same(['lease', 'keep-alive', '1234']);
        expect([r.stdout.toString(), r.code]).toEqual(['lease 0000000000001234 expired or revoked.\n', 0]);
      },
      true,
    );
  });

  describe('errors', () => {
    const cases: [string, string[], number][] = [
      ['grant with two arguments', ['lease', 'grant', '1', '2'], 128],
      ['grant x', ['lease', 'grant', 'x'], 128],
      ['grant a TTL too large', ['lease', 'grant', '9999999999'], 1],
      ['revoke a b', ['lease', 'revoke', 'a', 'b'], 128],
      ['revoke zz', ['lease', 'revoke', 'zz'], 128],
      ['revoke 0x12 (base 16 has no prefix)', ['lease', 'revoke', '0x12'], 128],
      ['revoke zz -w bogus (the ID is checked first)', ['lease', 'revoke', 'zz', '-w', 'bogus'], 128],
      ['revoke an unknown lease', ['lease', 'revoke', '1234'], 1],
      ['timetolive zz -w bogus (the format is checked first)', ['lease', 'timetolive', 'zz', '-w', 'bogus'], 4],
      ['timetolive 8000000000000000 (out of range)', ['lease', 'timetolive', '8000000000000000'], 128],
      ['keep-alive without ID', ['lease', 'keep-alive'], 128],
      ['put --lease zz', ['put', 'k', 'v', '--lease', 'zz'], 128],
      ['put --lease of an unknown lease', ['put', 'k', 'v', '--lease', '1234'], 1],
    ];
    for (const [name, args, code] of cases) {
      kase(
        name,
        async () => {
          expect((await same(args)).code).toBe(code);
        },
        name === 'revoke an unknown lease' || name === 'put --lease of an unknown lease',
      );
    }
  });

  // Grants and revokes of leases without keys do not move the store revision, so they share
  // the pool with the reads; each binary gets its own lease.

  describe('lease grant (IDs aside)', () => {
    for (const format of ['simple', 'json', 'fields', 'table']) {
      kase(
        `grant -w ${format}`,
        async () => {
          const [ref, ours] = await pair(['lease', 'grant', '600', '-w', format]);
          const idOf = (r: RunResult): string => {
            const text = r.stdout.toString();
            const hex = /^lease ([0-9a-f]{16})/.exec(text);
            if (hex) return hex[1];
            const dec = /"ID" ?: ?(\d+)/.exec(text);
            return dec ? BigInt(dec[1]).toString(16).padStart(16, '0') : '';
          };
          const [a, b] = [view(ref), view(ours)];
          expect({ ...b, stdout: hideId(b.stdout, idOf(ours)) }).toEqual({ ...a, stdout: hideId(a.stdout, idOf(ref)) });
          if (format === 'simple') expect(hideId(a.stdout, idOf(ref))).toBe('lease <id> granted with TTL(600s)\n');
          if (format === 'table') expect(a.code).toBe(4); // after granting, as etcdctl
        },
        format === 'json',
      );
    }
  });

  describe('lease revoke (each binary its own lease; IDs aside)', () => {
    for (const format of ['simple', 'json', 'fields', 'table']) {
      kase(
        `revoke -w ${format}`,
        async () => {
          const [x, y] = [await grant(60), await grant(60)];
          const [ref, ours] = await Promise.all([etcdctl([...ep, 'lease', 'revoke', x, '-w', format]), coord([...ep, 'lease', 'revoke', y, '-w', format])]);
          const [a, b] = [view(ref), view(ours)];
          expect({ ...b, stdout: hideId(b.stdout, y) }).toEqual({ ...a, stdout: hideId(a.stdout, x) });
          const gone = await ctl(target.endpoint, ['lease', 'timetolive', y]);
          expect(gone.stdout.toString()).toBe(`lease ${y} already expired\n`);
        },
        format === 'json',
      );
    }
  });

  describe('lease keep-alive (until revoked)', () => {
    for (const format of ['simple', 'json']) {
      kase(
        `keep-alive -w ${format}: renewals until revoked, then exit 0`,
        async () => {
          const id = await grant(3); // renewed about every second
          const [ref, ours] = both([...ep, 'lease', 'keep-alive', id, '-w', format]);
          try {
            const renewed = (p: typeof ref): boolean => p.stdout.split('\n').length > 1;
            await Promise.all([ref.waitFor(renewed, 'a renewal'), ours.waitFor(renewed, 'a renewal')]);
            const rev = await ctl(target.endpoint, ['lease', 'revoke', id]);
            expect(rev.code).toBe(0);
            await Promise.all([ref.waitExit(), ours.waitExit()]);
          } finally {
            await Promise.all([ref.kill(), ours.kill()]);
          }
          const distinct = (s: string): string[] => [...new Set(s.split('\n').filter((l) => l !== ''))].sort();
          const lastLine = (s: string): string => s.trimEnd().split('\n').pop() as string;
          expect([ours.exitCode, ours.stderr, distinct(ours.stdout), lastLine(ours.stdout)]).toEqual([ref.exitCode, ref.stderr, distinct(ref.stdout), lastLine(ref.stdout)]);
          expect(ref.exitCode).toBe(0);
          if (format === 'simple') {
            expect(distinct(ref.stdout)).toEqual([`lease ${id} expired or revoked.`, `lease ${id} keepalived with TTL(3)`]);
            expect(lastLine(ref.stdout)).toBe(`lease ${id} expired or revoked.`);
          }
        },
        format === 'simple',
      );
    }
  });

  // After the pool: the lease list must not change between the two runs, and a put moves the
  // revision that the reads above print.

  it.each(['simple', 'json', 'fields'])('lease list -w %s', async (format) => {
    await pool.settled();
    if (targetName === 'coord' && format !== 'json') return;
    const r = await same(['lease', 'list', '-w', format]);
    if (format === 'simple') expect(r.stdout.toString()).toMatch(/^found \d+ leases\n([0-9a-f]{16}\n)+$/);
  });

  it('put --lease attaches the key (revoke deletes it)', async () => {
    await pool.settled();
    const id = await grant(60);
    const [ref, ours] = await Promise.all([etcdctl([...ep, 'put', 'pa', 'v', '--lease', id]), coord([...ep, 'put', 'pb', 'v', '--lease', id])]);
    expect(view(ours)).toEqual(view(ref));
    const ttl = await coord([...ep, 'lease', 'timetolive', id, '--keys']);
    expect(ttl.stdout.toString()).toMatch(/attached keys\(\[(pa pb|pb pa)\]\)\n$/);
    await coord([...ep, 'lease', 'revoke', id]);
    expect((await coord([...ep, 'get', 'p', '--prefix'])).stdout.toString()).toBe('');
  });
});
