/**
 * Goal: the Raft core stays pure (DESIGN.md §3.1): no Node modules, no npm packages, no
 * clock, no timers, no Math.random. (The repository has no ESLint; this test plays the
 * part of `no-restricted-imports`.)
 * Method: scan every source file under src/raft for imports and forbidden globals.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = path.join(__dirname, '../../src/raft');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));

describe('the raft core is pure', () => {
  test.each(files)('%s imports only ./ raft modules and ../util/assert', (f) => {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    const imports = [...src.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
    for (const i of imports) expect(i === '../util/assert' || i.startsWith('./')).toBe(true);
    expect(src).not.toMatch(/\brequire\(/);
  });

  test.each(files)('%s uses no clock, timer, randomness or process state', (f) => {
    const code = fs
      .readFileSync(path.join(dir, f), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    for (const bad of [/Date\.now/, /new Date\(/, /Math\.random/, /setTimeout/, /setInterval/, /setImmediate/, /process\./, /performance\./, /\bBuffer\b/]) {
      expect(code).not.toMatch(bad);
    }
  });
});
