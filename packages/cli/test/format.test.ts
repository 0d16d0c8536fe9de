/**
 * Goal: the pure pieces behind etcdctl-identical output behave as their Go originals:
 * strconv.Quote (`%q`), encoding/json strings, go-humanize Bytes, strconv.ParseInt/ParseBool
 * and time.ParseDuration errors, the error catalogue (and its docs), pflag parsing and its error texts, tablewriter tables, the
 * txn grammar (Sscanf `%q) %s %q`, argify), and the argv rewrite for leading global flags.
 * Method: unit tests with expected values taken from Go's documented behaviour and from real
 * etcdctl 3.4.23 output (the end-to-end comparison is etcdctl-parity.test.ts).
 */
import { normalizeArgv } from '../src/flags/global';
import { parseArgv, type FlagSpec } from '../src/flags/pflag';
import { goJsonString, goParseDurationMs, goParseInt, goQuote, humanizeBytes, hexEscape, scanQuoted } from '../src/output/go';
import { renderTable } from '../src/output/table';
import { argify, parseCompare } from '../src/txn/grammar';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, ERROR_CODES, toCliError } from '../src/errors';

describe('Go formatting', () => {
  it.each([
    ['foo', '"foo"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['tab\there\n', '"tab\\there\\n"'],
    ['\x00\x07\x7f', '"\\x00\\a\\x7f"'],
    ['ключ', '"ключ"'],
    ['\u2028\u00a0', '"\\u2028\\u00a0"'],
    ['😀', '"😀"'],
  ])('goQuote(%j) = %s', (input, out) => expect(goQuote(input)).toBe(out));

  it('goQuote escapes invalid UTF-8 byte by byte', () => {
    expect(goQuote(Buffer.from([0xff, 0x00, 0x01, 0x61, 0x0a]))).toBe('"\\xff\\x00\\x01a\\n"');
    expect(goQuote(Buffer.from([0xed, 0xa0, 0x80]))).toBe('"\\xed\\xa0\\x80"'); // a UTF-16 surrogate
    expect(goQuote(Buffer.from([0xc0, 0xaf]))).toBe('"\\xc0\\xaf"'); // overlong
  });

  it('goJsonString escapes like encoding/json (HTML-safe)', () => {
    expect(goJsonString('<a&b>\u2028"\\\n\x01')).toBe('"\\u003ca\\u0026b\\u003e\\u2028\\"\\\\\\n\\u0001"');
  });

  it.each([
    [0n, '0 B'],
    [9n, '9 B'],
    [10n, '10 B'],
    [999n, '999 B'],
    [1000n, '1.0 kB'],
    [16384n, '16 kB'],
    [20480n, '20 kB'],
    [24576n, '25 kB'],
    [1_500_000n, '1.5 MB'],
    [12_500_000n, '12 MB'],
    [2_147_483_648n, '2.1 GB'],
  ])('humanizeBytes(%s) = %s', (n, s) => expect(humanizeBytes(n)).toBe(s));

  it('hexEscape', () => expect(hexEscape(Buffer.from('k1'))).toBe('\\x6b\\x31'));

  it('goParseInt: values and strconv error texts', () => {
    expect(goParseInt('694d6280d047720f', 16)).toBe(0x694d6280d047720fn);
    expect(goParseInt('-5', 10)).toBe(-5n);
    expect(() => goParseInt('zz', 16)).toThrow('strconv.ParseInt: parsing "zz": invalid syntax');
    expect(() => goParseInt('', 10)).toThrow('strconv.ParseInt: parsing "": invalid syntax');
    expect(() => goParseInt('8000000000000000', 16)).toThrow('strconv.ParseInt: parsing "8000000000000000": value out of range');
  });

  it('goParseDurationMs: values and time.ParseDuration error texts', () => {
    expect(goParseDurationMs('5s')).toBe(5000);
    expect(goParseDurationMs('500ms')).toBe(500);
    expect(goParseDurationMs('1m30s')).toBe(90000);
    expect(goParseDurationMs('1.5h')).toBe(5_400_000);
    expect(goParseDurationMs('0')).toBe(0);
    expect(() => goParseDurationMs('5')).toThrow('time: missing unit in duration "5"');
    expect(() => goParseDurationMs('5x')).toThrow('time: unknown unit "x" in duration "5x"');
    expect(() => goParseDurationMs('soon')).toThrow('time: invalid duration "soon"');
  });

  it('scanQuoted reads Go double- and back-quoted strings', () => {
    expect(scanQuoted('"a\\x00\\u00e9" rest')).toEqual({ value: Buffer.from([0x61, 0x00, 0xc3, 0xa9]), end: 13 });
    expect(scanQuoted('  `raw\\n`')?.value.toString()).toBe('raw\\n');
    expect(scanQuoted('"open')).toBeUndefined();
    expect(scanQuoted('bare')).toBeUndefined();
  });
});

describe('pflag parsing', () => {
  const specs: FlagSpec[] = [
    { name: 'limit', kind: 'int64', description: '' },
    { name: 'prefix', kind: 'bool', description: '' },
    { name: 'write-out', char: 'w', kind: 'string', description: '' },
    { name: 'interactive', char: 'i', kind: 'bool', description: '' },
    { name: 'endpoints', kind: 'string', description: '', slice: true },
  ];
  const parse = (...argv: string[]) => {
    const p = parseArgv(argv, specs);
    return { args: p.args, flags: Object.fromEntries(p.given) };
  };

  it('interspersed flags, = and space forms, shorthand forms, --', () => {
    expect(parse('a', '--limit', '5', 'b', '--prefix', '-wjson', '--', '--limit')).toEqual({
      args: ['a', 'b', '--limit'],
      flags: { limit: 5n, prefix: true, 'write-out': 'json' },
    });
    expect(parse('-iw', 'table', '--prefix=false', '-')).toEqual({
      args: ['-'],
      flags: { interactive: true, 'write-out': 'table', prefix: false },
    });
  });

  it('a string slice appends', () => {
    expect(parse('--endpoints', 'a', '--endpoints=b,c').flags).toEqual({ endpoints: 'a,b,c' });
  });

  it.each([
    [['--bogus'], 'unknown flag: --bogus'],
    [['-x'], "unknown shorthand flag: 'x' in -x"],
    [['-ix'], "unknown shorthand flag: 'x' in -x"],
    [['--limit'], 'flag needs an argument: --limit'],
    [['-w'], "flag needs an argument: 'w' in -w"],
    [['--limit', 'abc'], 'invalid argument "abc" for "--limit" flag: strconv.ParseInt: parsing "abc": invalid syntax'],
    [['--prefix=maybe'], 'invalid argument "maybe" for "--prefix" flag: strconv.ParseBool: parsing "maybe": invalid syntax'],
    [['-i=2'], 'invalid argument "2" for "-i, --interactive" flag: strconv.ParseBool: parsing "2": invalid syntax'],
  ])('%j fails: %s', (argv, message) => {
    expect(() => parseArgv(argv, specs)).toThrow(message);
  });

  it('--limit --prefix takes "--prefix" as the value, as pflag does', () => {
    expect(() => parseArgv(['--limit', '--prefix'], specs)).toThrow('invalid argument "--prefix" for "--limit" flag');
  });
});

describe('argv rewrite for global flags before the command', () => {
  it.each([
    [['--endpoints', 'h:1', 'get', 'k'], ['get', 'k', '--endpoints', 'h:1']],
    [['-w', 'json', '--hex', 'get', 'k', '--limit'], ['get', 'k', '-w', 'json', '--hex', '--limit']],
    [['--endpoints=h:1', 'endpoint', 'status', '--', '-x'], ['endpoint', 'status', '--endpoints=h:1', '--', '-x']],
    [['get', 'k'], ['get', 'k']],
    [['--version'], ['--version']],
    [['--bogus', 'get', 'k'], ['get', 'k', '--bogus']],
    [['--endpoints', 'h:1', '--help'], ['--endpoints', 'h:1', '--help']],
    [['server', '--name', 'n', '--help'], ['server', '--', '--name', 'n', '--help']],
  ])('%j -> %j', (input, output) => expect(normalizeArgv(input)).toEqual(output));
});

describe('tables (tablewriter as etcdctl configures it)', () => {
  it('centred upper-case headers, right-aligned cells', () => {
    expect(renderTable(['endpoint', 'hash'], [['127.0.0.1:23790', '3305255506']])).toEqual([
      '+-----------------+------------+',
      '|    ENDPOINT     |    HASH    |',
      '+-----------------+------------+',
      '| 127.0.0.1:23790 | 3305255506 |',
      '+-----------------+------------+',
    ]);
  });

  it('no rows: header only, between borders', () => {
    expect(renderTable(['ID', 'errors'], [])).toEqual(['+----+--------+', '| ID | ERRORS |', '+----+--------+', '+----+--------+']);
  });
});

describe('txn grammar', () => {
  it('parses every target and operator', () => {
    expect(parseCompare('mod("key") > "5"')).toEqual({ target: 'mod', key: Buffer.from('key'), operator: '>', value: 5n });
    expect(parseCompare('val("k") != "v w"')).toEqual({ target: 'value', key: Buffer.from('k'), operator: '!=', value: Buffer.from('v w') });
    expect(parseCompare('ver("k") = "0"').target).toBe('version');
    expect(parseCompare('c("k") < "9"').target).toBe('create');
    expect(parseCompare('lease("k") = "694d6280d047720f"').value).toBe(0x694d6280d047720fn);
    expect(parseCompare('value(`k`) = "\\x00"').value).toEqual(Buffer.from([0]));
  });

  it.each([
    ['mod "a"', 'malformed comparison: mod "a"'],
    ['mod("a")', 'malformed comparison: mod("a"); got mod("a")  ""'],
    ['mod("a")>"1"', 'malformed comparison: mod("a")>"1"; got mod("a")  ""'],
    ['mod("a") >"1"', 'malformed comparison: mod("a") >"1"; got mod("a") >"1" ""'],
    ['foo("a") = "1"', 'malformed comparison: foo("a") = "1" (unknown target foo)'],
    ['mod("a") = "x"', 'invalid txn compare request: mod("a") = "x"'],
  ])('%s fails: %s', (line, message) => {
    let err: unknown;
    try {
      parseCompare(line);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toBe(message);
    expect((err as CliError).exitCode).toBe(3);
  });

  it('argify splits words, unquoting Go and single quotes', () => {
    expect(argify(`put "a b" 'c d' e\\tf "x\\ty"`)).toEqual(['put', 'a b', 'c d', 'e\\tf', 'x\ty']);
  });
});

describe('error catalogue', () => {
  it('README.md documents exactly the error codes of src/errors.ts', () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    const documented = new Set([...readme.matchAll(/`(ERR_[A-Z_]+)`/g)].map((m) => m[1]));
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort());
  });

  it('client errors print as etcdctl prints them', () => {
    const clientError = (name: string, code: number, details: string) => Object.assign(new Error(details), { name, code, details });
    expect(toCliError(clientError('CompactedError', 11, 'etcdserver: mvcc: required revision has been compacted'))).toMatchObject({
      message: 'etcdserver: mvcc: required revision has been compacted',
      exitCode: 1,
      code: 'ERR_SERVER',
    });
    expect(toCliError(clientError('UnavailableError', 14, 'no endpoint is available (127.0.0.1:1: connection failed)'))).toMatchObject({
      message: 'context deadline exceeded',
      code: 'ERR_UNAVAILABLE',
    });
    expect(toCliError(clientError('EtcdError', 12, 'unknown service etcdserverpb.Foo')).message).toBe(
      'rpc error: code = Unimplemented desc = unknown service etcdserverpb.Foo',
    );
  });
});
