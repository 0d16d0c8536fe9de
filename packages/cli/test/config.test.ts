/**
 * Goal: `coord config set|get` round-trip a configuration under a prefix (pairs stored as
 * given, a JSON object from stdin stored as JSON with null deleting), and `coord config watch`
 * prints each snapshot, re-runs CMD with the new configuration on every change, and with
 * `--signal HUP` signals a long-running CMD (which re-reads COORD_CONFIG_FILE) instead of
 * restarting it.
 *
 * Method: the real binary against a real etcd 3.4; CMDs are `sh -c` scripts appending what
 * they see to a file the test reads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startEtcd, type EtcdProcess } from './helpers/etcd';
import { coord } from './helpers/run';
import { coordBg, tmpDir, waitFor } from './helpers/supervise';

jest.setTimeout(90000);

let etcd: EtcdProcess;
let ep: string[];
let dir: string;

beforeAll(async () => {
  etcd = await startEtcd();
  ep = ['--endpoints', etcd.endpoint];
  dir = tmpDir('config-test');
});

afterAll(async () => {
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const lines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);

describe('coord config', () => {
  it('set (pairs, then JSON on stdin with null deleting) and get', async () => {
    expect((await coord([...ep, 'config', 'set', 'app/', 'db/host=db1', 'db/port=5432', 'name=x'])).stdout.toString()).toBe('OK\n');
    const fromJson = await coord([...ep, 'config', 'set', 'app/', '-w', 'json'], { input: '{"flags": {"beta": true}, "label": "5432", "name": null}' });
    expect(JSON.parse(fromJson.stdout.toString())).toEqual(expect.objectContaining({ set: ['flags', 'label'], deleted: ['name'] }));
    const get = await coord([...ep, 'config', 'get', 'app/']);
    expect(JSON.parse(get.stdout.toString())).toEqual({ 'db/host': 'db1', 'db/port': 5432, flags: { beta: true }, label: '5432' });
    const json = JSON.parse((await coord([...ep, 'config', 'get', 'app/', '-w', 'json'])).stdout.toString());
    expect(json.revision).toBe(JSON.parse(fromJson.stdout.toString()).revision);
  });

  it('watch prints snapshots; watch -- CMD re-runs CMD with each new configuration', async () => {
    const out = path.join(dir, 'runs.log');
    const printer = coordBg([...ep, 'config', 'watch', 'svc/']);
    const runner = coordBg([...ep, 'config', 'watch', 'svc/', '--', 'sh', '-c', `echo "$COORD_CONFIG_REVISION $COORD_CONFIG" >> ${out}`]);
    await printer.waitOut(/^\{\}\n$/);
    await waitFor('the first run', () => lines(out).length === 1);
    expect(lines(out)[0]).toMatch(/^\d+ \{\}$/);

    await coord([...ep, 'config', 'set', 'svc/', 'port=80']);
    await waitFor('the second run', () => lines(out).length === 2);
    await coord([...ep, 'config', 'set', 'svc/', 'port=81', 'host=h']);
    await waitFor('the third run', () => lines(out).length === 3);
    expect(lines(out).map((l) => l.replace(/^\d+ /, ''))).toEqual(['{}', '{"port":80}', '{"host":"h","port":81}']);
    const revs = lines(out).map((l) => BigInt(l.split(' ')[0]));
    expect(revs[1] > revs[0] && revs[2] > revs[1]).toBe(true);
    await printer.waitOut(/\{"host":"h","port":81\}\n$/);
    expect(printer.stdout()).toBe('{}\n{"port":80}\n{"host":"h","port":81}\n');

    printer.kill('SIGINT');
    runner.kill('SIGINT');
    expect([await printer.exited, await runner.exited]).toEqual([0, 0]);
  });

  it('watch --signal HUP -- CMD: the running CMD gets SIGHUP and reads the new config from COORD_CONFIG_FILE', async () => {
    const out = path.join(dir, 'hup.log');
    const script = `echo "start $$ $(cat "$COORD_CONFIG_FILE")" >> ${out}; trap 'echo "hup $$ $(cat "$COORD_CONFIG_FILE")" >> ${out}' HUP; while :; do sleep 0.05; done`;
    const p = coordBg([...ep, 'config', 'watch', 'hup/', '--signal', 'HUP', '--', 'sh', '-c', script]);
    await waitFor('CMD to start', () => lines(out).length === 1);
    await coord([...ep, 'config', 'set', 'hup/', 'level=debug']);
    await waitFor('the HUP', () => lines(out).length === 2);
    const [start, hup] = lines(out);
    const pid = start.split(' ')[1];
    expect([start, hup]).toEqual([`start ${pid} {}`, `hup ${pid} {"level":"debug"}`]);
    p.kill('SIGINT');
    expect(await p.exited).toBe(130); // the shell died of the forwarded SIGINT
  });
});
