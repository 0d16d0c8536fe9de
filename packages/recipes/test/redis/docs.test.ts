/**
 * Goal: the "coord on Redis" column of docs/RECIPES.md stays true to the tests: every ✔ or ~ in
 * it names at least one test reference, every reference is listed, and every listed test exists
 * (file and title) under packages/recipes/test/. (../docs.test.ts does the same for the coord
 * column.)
 * Method: find the column by its header, parse the reference list, look each title up in the
 * named test file's source.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const DOC = path.resolve(__dirname, '../../../../docs/RECIPES.md');
const TESTS = path.resolve(__dirname, '..');

it('every ✔ and ~ of the Redis column in docs/RECIPES.md names tests that exist', () => {
  const doc = fs.readFileSync(DOC, 'utf8');
  const lines = doc.split('\n');
  const header = lines.find((l) => l.startsWith('| Feature |'))!;
  const column = header.split('|').map((c) => c.trim()).indexOf('coord on Redis');
  expect(column).toBeGreaterThan(0);
  const rows = lines.filter((l) => l.startsWith('| ') && !l.startsWith('| ---') && !l.startsWith('| Feature'));
  const refsUsed = new Set<string>();
  let checked = 0;
  for (const row of rows) {
    const cells = row.split('|').map((c) => c.trim());
    if (cells.length !== header.split('|').length) continue; // other tables
    const cell = cells[column];
    if (!cell.startsWith('✔') && !cell.startsWith('~')) continue;
    const refs = [...cell.matchAll(/\[(R[A-Z]\d+)\]/g)].map((m) => m[1]);
    expect({ row: cells[1], refs: refs.length > 0 }).toEqual({ row: cells[1], refs: true });
    refs.forEach((r) => refsUsed.add(r));
    checked++;
  }
  expect(checked).toBeGreaterThan(20);
  const listed = new Map<string, string>();
  for (const m of doc.matchAll(/^- \*\*(R[A-Z]\d+)\*\* (.+)$/gm)) listed.set(m[1], m[2]);
  for (const ref of refsUsed) {
    const entry = listed.get(ref);
    expect({ ref, listed: entry !== undefined }).toEqual({ ref, listed: true });
    const file = /`(redis\/[\w.-]+\.test\.ts)`/.exec(entry!)![1];
    const source = fs.readFileSync(path.join(TESTS, file), 'utf8').replace(/\\'/g, "'");
    for (const part of entry!.replace(/`[^`]+`/, '').split(';')) {
      const title = part.split('›').map((t) => t.trim()).filter(Boolean).pop()!;
      expect({ ref, title, found: source.includes(title) }).toEqual({ ref, title, found: true });
    }
  }
  // and nothing listed is unused
  expect([...listed.keys()].filter((r) => !refsUsed.has(r))).toEqual([]);
});
