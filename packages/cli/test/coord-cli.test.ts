/**
 * Goal: what coord's CLI does beyond (or deliberately unlike) etcdctl 3.4 works: `--json`
 * results with exact int64 digits, `--count-only` (etcdctl 3.5's flag), txn `lease(...)`
 * compares (etcdctl 3.4 panics), txn input without a final blank line, COORD_ENDPOINTS,
 * "Try this:" hints, `coord server` passing its argv to the server, `coord version`, and a
 * start-up that loads neither gRPC nor the protos for `--help`, `--version` and `version`.
 * Method: run the real binary (node packages/cli/bin/run.js) against a real etcd 3.4, and once
 * against a `coord server` it starts itself; compare with etcdctl where there is a reference.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { COORD_BIN, coord, etcdctl, run } from './helpers/run';
import { freePort, startEtcd, type EtcdProcess } from './helpers/etcd';

jest.setTimeout(60000);

let etcd: EtcdProcess;
let ep: string[];

beforeAll(async () => {
  etcd = await startEtcd();
  ep = ['--endpoints', etcd.endpoint];
  for (const [k, v] of [['c1', 'x'], ['c2', 'y'], ['c3', 'z']]) await etcdctl([...ep, 'put', k, v]);
});

afterAll(async () => {
  await etcd?.stop();
});

describe('--json (oclif): the returned result, int64 as exact decimal strings', () => {
  it('get --json', async () => {
    const r = await coord([...ep, 'get', 'c', '--prefix', '--limit', '2', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout.toString());
    expect(j.kvs.map((kv: { key: string; value: string }) => [kv.key, kv.value])).toEqual([
      ['c1', 'x'],
      ['c2', 'y'],
    ]);
    expect(j.more).toBe(true);
    expect(j.count).toBe('3');
    expect(j.header.revision).toMatch(/^\d+$/);
    expect(typeof j.header.clusterId).toBe('string');
  });

  it('an error with --json is a JSON object with the code, the etcd text and the exit code', async () => {
    const r = await coord([...ep, 'get', 'c1', '--rev', '99999', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout.toString())).toEqual({
      error: expect.objectContaining({
        code: 'ERR_SERVER',
        message: 'etcdserver: mvcc: required revision is a future revision',
        exitCode: 1,
      }),
    });
  });
});

describe('etcdctl 3.5 additions and fixes', () => {
  it('--count-only with -w fields prints the header, More and Count (no kvs)', async () => {
    const [ours, ref] = await Promise.all([
      coord([...ep, 'get', 'c', '--prefix', '--count-only', '-w', 'fields']),
      etcdctl([...ep, 'get', 'c', '--prefix', '-w', 'fields']),
    ]);
    const withoutKvs = ref.stdout
      .toString()
      .split('\n')
      .filter((l) => !/^"(Key|CreateRevision|ModRevision|Version|Value|Lease)"/.test(l))
      .join('\n');
    expect(ours.stdout.toString()).toBe(withoutKvs);
    expect(ours.code).toBe(0);
  });

  it('--count-only with another format exits 128, as etcdctl 3.5', async () => {
    const r = await coord([...ep, 'get', 'c', '--prefix', '--count-only']);
    expect([r.stderr, r.code]).toEqual(['Error: --count-only is only for `--write-out=fields`\n', 128]);
  });

  it('txn lease("k") = "<hex>" compares the lease ID (etcdctl 3.4 panics)', async () => {
    const grant = await run('/usr/bin/etcdctl', [...ep, 'lease', 'grant', '60'], { env: { ETCDCTL_API: '3' } });
    const id = /lease ([0-9a-f]+) granted/.exec(grant.stdout.toString())?.[1] as string;
    expect(id).toBeDefined();
    expect((await coord([...ep, 'put', 'leased', 'v', '--lease', id])).code).toBe(0);
    const ok = await coord([...ep, 'txn'], { input: `lease("leased") = "${id}"\n\nget leased\n\n\n` });
    expect([ok.stdout.toString(), ok.code]).toEqual(['SUCCESS\n\nleased\nv\n', 0]);
    const no = await coord([...ep, 'txn'], { input: `lease("leased") = "0"\n\n\nput other x\n\n` });
    expect([no.stdout.toString(), no.code]).toEqual(['FAILURE\n\nOK\n', 0]);
  });

  it('txn input may end without the final blank line (etcdctl 3.4: "Error: EOF")', async () => {
    const r = await coord([...ep, 'txn'], { input: 'value("c1") = "x"\n\nget c1\n\nget c2' });
    expect([r.stdout.toString(), r.stderr, r.code]).toEqual(['SUCCESS\n\nc1\nx\n', '', 0]);
  });

  it('an unknown compare operator is an error (etcdctl 3.4 panics)', async () => {
    const r = await coord([...ep, 'txn'], { input: 'value("c1") ~ "x"\n\n\n\n' });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('Error: malformed comparison: value("c1") ~ "x" (unknown operator ~; use =, !=, < or >)\n');
  });
});

describe('environment, hints, version', () => {
  it('COORD_ENDPOINTS selects the endpoints', async () => {
    const r = await coord(['get', 'c1', '--print-value-only'], { env: { COORD_ENDPOINTS: etcd.endpoint } });
    expect([r.stdout.toString(), r.code]).toEqual(['x\n', 0]);
  });

  it('COORD_HINTS=1 (or a terminal) adds a "Try this:" line after the error', async () => {
    const r = await coord([...ep, 'get', '--prefix', 'a', 'b'], { env: { COORD_HINTS: '1' } });
    expect(r.code).toBe(128);
    expect(r.stderr).toMatch(/^Error: too many arguments.*\nTry this: /);
    const plain = await coord([...ep, 'get', '--prefix', 'a', 'b']);
    expect(plain.stderr).not.toMatch(/Try this/);
  });

  it('coord version', async () => {
    const r = await coord(['version']);
    expect([r.stdout.toString(), r.code]).toEqual(['coord version: 0.1.0\nAPI version: 3.4\n', 0]);
    const j = await coord(['version', '--json']);
    expect(JSON.parse(j.stdout.toString())).toEqual({ version: '0.1.0', apiVersion: '3.4' });
  });

  it('--help, --version and version load neither gRPC nor the protos', async () => {
    const probe = path.join(os.tmpdir(), `coord-probe-${process.pid}.js`);
    fs.writeFileSync(
      probe,
      `process.on('exit', () => { const heavy = Object.keys(require.cache).filter((k) => /@grpc|protobufjs|@coord\\/(client|proto|server)|packages\\/(client|proto|server)\\//.test(k)); if (heavy.length) process.stderr.write('LOADED ' + heavy[0] + '\\n'); });\n`,
    );
    try {
      const cases = [['--version'], ['version'], ['--help'], ['get', '--help'], ['endpoint', 'status', '--help']];
      const results = await Promise.all(cases.map((args) => run(process.execPath, ['--require', probe, COORD_BIN, ...args])));
      expect(results.map((r, i) => [cases[i].join(' '), r.code, r.stderr])).toEqual(cases.map((c) => [c.join(' '), 0, '']));
    } finally {
      fs.rmSync(probe, { force: true });
    }
  });
});

describe('coord server', () => {
  it('--help is the server\'s own flag list', async () => {
    const r = await coord(['server', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/--data-dir/);
    expect(r.stdout.toString()).toMatch(/--listen-client-urls/);
  });

  it('passes etcd flags to the server: a member that coord put/get and etcdctl can use', async () => {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-cli-server-'));
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const child = spawn(
      process.execPath,
      [COORD_BIN, 'server', '--name', 's1', '--data-dir', path.join(dir, 'data'), '--listen-client-urls', client,
        '--advertise-client-urls', client, '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `s1=${peer}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
    try {
      const e = ['--endpoints', `127.0.0.1:${clientPort}`, '--command-timeout', '10s'];
      const put = await coord([...e, 'put', 'hello', 'world']);
      expect([put.stdout.toString(), put.stderr, put.code]).toEqual(['OK\n', '', 0]);
      const [ours, ref] = await Promise.all([coord([...e, 'get', 'hello', '-w', 'fields']), etcdctl([...e, 'get', 'hello', '-w', 'fields'])]);
      expect(ours.stdout.toString()).toBe(ref.stdout.toString());
      const members = await coord([...e, 'member', 'list']);
      expect(members.stdout.toString()).toMatch(new RegExp(`, started, s1, ${peer}, ${client}, false\\n$`));
    } catch (err) {
      throw new Error(`${(err as Error).message}\nserver log:\n${log}`);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
