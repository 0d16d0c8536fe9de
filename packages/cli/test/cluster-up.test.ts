/**
 * Goal: `coord cluster up` starts a working local cluster in one command: every member
 * serves, one leads, a write through one member is read through another, killing the
 * leader's process gets a new leader, and Ctrl-C (SIGINT) stops every member, exiting 0.
 * Method: the real command as a child process (ports given, so it never takes the
 * developer's 2379), its members as its own children; `coord endpoint status` and
 * put/get through the real CLI.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { COORD_BIN, coord as runCoord } from './helpers/run';
import { freePort, waitFor } from './helpers/etcd-cluster';

test('three members on loopback: serve, replicate, fail over, stop on SIGINT', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-cluster-up-'));
  const clientPorts = [await freePort(), await freePort(), await freePort()];
  const peerPorts = [await freePort(), await freePort(), await freePort()];
  const up = spawn(process.execPath, [COORD_BIN, 'cluster', 'up', '--data-dir', dir, '--client-ports', clientPorts.join(','), '--peer-ports', peerPorts.join(',')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  up.stdout.on('data', (c: Buffer) => (out += c.toString()));
  up.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => up.on('exit', (code) => resolve(code)));
  const endpoints = clientPorts.map((p) => `127.0.0.1:${p}`);
  try {
    const leaderOf = async (): Promise<string | undefined> => {
      const r = await runCoord(['endpoint', 'status', '--endpoints', endpoints.join(','), '-w', 'json']);
      if (r.code !== 0) return undefined;
      const rows = JSON.parse(r.stdout.toString()) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
      const leaders = rows.filter((x) => x.Status.leader === x.Status.header.member_id);
      return leaders.length === 1 && rows.length === 3 ? leaders[0].Endpoint : undefined;
    };
    const leader = await waitFor('a leader among the three', leaderOf, 30_000, 200);
    expect(out).toContain(`cluster of 3: n1 http://127.0.0.1:${clientPorts[0]}`);
    expect((await runCoord(['put', 'k', 'v', '--endpoints', endpoints[0]])).stdout.toString()).toBe('OK\n');
    expect((await runCoord(['get', 'k', '--endpoints', endpoints[2]])).stdout.toString()).toBe('k\nv\n');

    // Kill the leader's process: the other two elect a new leader and keep serving.
    const name = `n${endpoints.indexOf(leader) + 1}`;
    const pids = fs.readFileSync(`/proc/${up.pid}/task/${up.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const leaderPid = pids.find((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(path.join(dir, name)));
    expect(leaderPid).toBeDefined();
    process.kill(leaderPid!, 'SIGKILL');
    const others = endpoints.filter((e) => e !== leader);
    await waitFor('a write through a survivor', async () => ((await runCoord(['put', 'k2', 'v2', '--endpoints', others.join(','), '--command-timeout', '2s'])).code === 0 ? true : undefined), 30_000, 200);
    expect((await runCoord(['get', 'k2', '--endpoints', others[1]])).stdout.toString()).toBe('k2\nv2\n');
  } finally {
    up.kill('SIGINT');
    expect(await exited).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  expect(out).toMatch(/n\d \| exited/);
}, 120_000);
