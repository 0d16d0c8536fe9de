/**
 * The tables etcdctl draws with olekukonko/tablewriter (v0.0.x as vendored by etcd 3.4):
 * headers upper-cased (`Title`) and centred, cells aligned right (etcdctl calls
 * `SetAlignment(ALIGN_RIGHT)`), one space of padding, `+---+` borders.
 *
 * Not reproduced: tablewriter wraps cells longer than 30 columns at spaces. etcdctl's cells
 * (IDs, URLs joined with ",", versions, sizes) have no spaces, except the "errors" column.
 */

/** Terminal width of a string: wide East Asian characters count 2 (go-runewidth, simplified). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) continue;
    if (/\p{M}/u.test(ch)) continue;
    const wide =
      (c >= 0x1100 && c <= 0x115f) ||
      (c >= 0x2e80 && c <= 0xa4cf) ||
      (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) ||
      (c >= 0x1f300 && c <= 0x1faff) ||
      (c >= 0x20000 && c <= 0x3fffd);
    w += wide ? 2 : 1;
  }
  return w;
}

/** tablewriter.Title: `_` becomes a space, `.` too unless between digits/spaces; upper-case. */
export function title(name: string): string {
  const rs = [...name];
  const numOrSpace = (c: string | undefined): boolean => c !== undefined && /[0-9 ]/.test(c);
  for (let i = 0; i < rs.length; i++) {
    if (rs[i] === '_') rs[i] = ' ';
    else if (rs[i] === '.') {
      if ((i !== 0 && !numOrSpace(rs[i - 1])) || (i !== rs.length - 1 && !numOrSpace(rs[i + 1]))) rs[i] = ' ';
    }
  }
  let out = rs.join('').trim();
  if (out.length === 0 && name.length > 0) out = ' ';
  return out.toUpperCase();
}

/** tablewriter.Pad: centre, the odd space going right. */
function center(s: string, width: number): string {
  const gap = width - displayWidth(s);
  if (gap <= 0) return s;
  const left = Math.floor(gap / 2);
  return ' '.repeat(left) + s + ' '.repeat(gap - left);
}

function right(s: string, width: number): string {
  const gap = width - displayWidth(s);
  return gap > 0 ? ' '.repeat(gap) + s : s;
}

/** Render a table as etcdctl does; returns its lines (without trailing newlines). */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const heads = header.map(title);
  const widths = heads.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ''))));
  const border = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const lines = [border, '|' + heads.map((h, i) => ` ${center(h, widths[i])} `).join('|') + '|', border];
  for (const row of rows) lines.push('|' + widths.map((w, i) => ` ${right(row[i] ?? '', w)} `).join('|') + '|');
  lines.push(border);
  return lines;
}
