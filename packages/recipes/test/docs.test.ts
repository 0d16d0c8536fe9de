/**
 * Goal: docs/RECIPES.md stays true to the tests: every ✔ in the coord column of its feature
 * table names at least one test reference, every reference is listed, and every listed test
 * exists (file and title) in this directory.
 * Method: parse the markdown table and the reference list; look each title up in the named
 * test file's source (titles are plain string literals in `it(...)`/`describe(...)`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const DOC = path.resolve(__dirname, '../../../docs/RECIPES.md');

it('every coord ✔ in docs/RECIPES.md names tests that exist', () => {
  const doc = fs.readFileSync(DOC, 'utf8');
  const rows = doc.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ---') && !l.startsWith('| Feature') && !l.startsWith('| Recipe'));
  const refsUsed = new Set<string>();
  let checked = 0;
  for (const row of rows) {
    const cells = row.split('|').map((c) => c.trim());
    if (cells.length < 8) continue; // the key-layout table has fewer columns
    const coord = cells[2];
    if (!coord.startsWith('✔')) continue;
    const refs = [...coord.matchAll(/\[([A-Z]+\d+)\]/g)].map((m) => m[1]);
    expect({ row: cells[1], refs: refs.length > 0 }).toEqual({ row: cells[1], refs: true });
    refs.forEach((r) => refsUsed.add(r));
    checked++;
  }
  expect(checked).toBeGreaterThan(20);
  const listed = new Map<string, string>();
  for (const m of doc.matchAll(/^- \*\*([A-Z]+\d+)\*\* (.+)$/gm)) listed.set(m[1], m[2]);
  for (const ref of refsUsed) {
    const entry = listed.get(ref);
    expect({ ref, listed: entry !== undefined }).toEqual({ ref, listed: true });
    // "`file.test.ts` › [describe ›] title; › other title"
    const file = /`([\w.-]+\.test\.ts)`/.exec(entry!)![1];
    const source = fs.readFileSync(path.join(__dirname, file), 'utf8').replace(/\\'/g, "'");
    for (const part of entry!.replace(/`[^`]+`/, '').split(';')) {
      const title = part.split('›').map((t) => t.trim()).filter(Boolean).pop()!;
      expect({ ref, title, found: source.includes(title) }).toEqual({ ref, title, found: true });
    }
  }
});
