/**
 * Goal: the exit codes of `lock`, `elect`, `service` and `config` are documented exactly as
 * the code defines them, and the argument checks that need no server exit with the documented
 * 128 before connecting anywhere.
 *
 * Method: parse the table under "## Exit codes" in docs/EXIT-CODES.md and compare it row by row
 * with SUPERVISED_EXIT_CODES (src/supervise/exit-codes.ts); run the real binary with bad
 * arguments and an endpoint nobody listens on (a connection attempt would end in 121, not 128).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SUPERVISED_EXIT_CODES, SupervisedExit } from '../src/supervise/exit-codes';
import { lossTiming } from '../src/supervise/timing';
import { coord } from './helpers/run';

const DOC = path.join(__dirname, '..', 'docs', 'EXIT-CODES.md');

function documentedRows(): { code: number; errorCode: string; meaning: string }[] {
  const text = fs.readFileSync(DOC, 'utf8');
  const section = text.slice(text.indexOf('## Exit codes'));
  const body = section.slice(0, section.indexOf('\n## ', 5) < 0 ? undefined : section.indexOf('\n## ', 5));
  return body
    .split('\n')
    .filter((l) => /^\| \d+ \|/.test(l))
    .map((l) => {
      const [code, errorCode, meaning] = l.split('|').slice(1, -1).map((c) => c.trim());
      return { code: Number(code), errorCode, meaning };
    });
}

describe('docs/EXIT-CODES.md', () => {
  it('lists every exit code, error code and meaning of SUPERVISED_EXIT_CODES, in order', () => {
    expect(documentedRows()).toEqual(SUPERVISED_EXIT_CODES.map((r) => ({ ...r })));
  });

  it('the codes are distinct and clear of 0-2 and the shell\'s 128+N', () => {
    const own = Object.values(SupervisedExit);
    expect(new Set(own).size).toBe(own.length);
    for (const c of own) expect(c > 2 && c < 128).toBe(true);
  });

  it('the documented timing table matches lossTiming', () => {
    const text = fs.readFileSync(DOC, 'utf8');
    for (const [ttl, grace, margin] of [
      [2, '200 ms', '400 ms'],
      [10, '1 s', '1.5 s'],
      [60, '2 s', '2.5 s'],
    ] as const) {
      const t = lossTiming(ttl);
      const ms = (s: string): number => (s.endsWith(' ms') ? Number(s.slice(0, -3)) : Number(s.slice(0, -2)) * 1000);
      expect([t.graceMs, t.safetyMarginMs]).toEqual([ms(grace), ms(margin)]);
      expect(text).toContain(`| ${ttl}${ttl === 10 ? ' (default)' : ''} | ${grace} | ${margin} |`);
    }
  });
});

describe('argument errors exit 128 before connecting', () => {
  const nowhere = ['--endpoints', '127.0.0.1:1'];
  const cases: [string[], string][] = [
    [['lock'], 'Error: lock takes a lock name argument and an optional command to execute\n'],
    [['lock', '--try', '--timeout', '1', 'x'], 'Error: --try and --timeout are mutually exclusive\n'],
    [['lock', '--timeout', 'soon', 'x'], 'Error: invalid value "soon" for --timeout: want seconds (5, 0.5) or a duration (1500ms, 2s)\n'],
    [['elect', 'e'], 'Error: no proposal argument but -l not set\n'],
    [['elect', '-l', 'e', '--', 'true'], 'Error: -l does not run a command\n'],
    [['service', 'register', 'api', '--addr', 'nohost'], 'Error: --addr must be HOST:PORT (or [IPV6]:PORT), got "nohost"\n'],
    [['config', 'watch', 'app/', '--signal', 'HUP'], 'Error: --signal needs a command after --\n'],
  ];
  it('bad arguments of lock, elect, service register and config watch (run in parallel)', async () => {
    const results = await Promise.all(cases.map(([args]) => coord([...nowhere, ...args])));
    expect(results.map((r, i) => [cases[i][0].join(' '), r.code, r.stderr])).toEqual(cases.map(([args, stderr]) => [args.join(' '), 128, stderr]));
  });

  it('a grace period too long for the TTL is refused', async () => {
    const r = await coord([...nowhere, 'lock', '--ttl', '2', '--grace', '2s', 'x', '--', 'true']);
    expect(r.code).toBe(128);
    expect(r.stderr).toMatch(/^Error: --grace 2000ms is too long for --ttl 2: /);
  });
});
