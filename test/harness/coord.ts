/**
 * The system under test: a real `coord server` process on loopback.
 *
 * Goal: start `node packages/server/dist/main.js` exactly as an operator would start etcd
 * (same flag names), know when it serves requests, stop it gracefully or SIGKILL it, and
 * restart it on the same data dir, with its output at hand for failure messages.
 *
 * Method: proc.ts does the process work. Readiness is two steps: the client port accepts
 * TCP connections, then `etcdctl endpoint status` succeeds (a real gRPC Maintenance.Status
 * round trip, which needs a leader). The entry point can be overridden with $COORD_MAIN
 * (path to a .js file) for experiments.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { etcdctl } from './etcdctl';
import { canConnect } from './ports';
import { Member, MemberSpec } from './proc';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const COORD_MAIN = process.env.COORD_MAIN ?? path.join(REPO_ROOT, 'packages', 'server', 'dist', 'main.js');

export async function coordProbe(m: Member): Promise<boolean> {
  if (!(await canConnect(m.clientPort))) return false;
  const r = await etcdctl(m.endpoint, ['endpoint', 'status'], { dialTimeout: '1s', commandTimeout: '2s', timeoutMs: 5000 });
  return r.code === 0;
}

export interface CoordOptions {
  extraArgs?: string[];
  readyTimeoutMs?: number;
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
}

export function coordMember(opts: CoordOptions = {}): Member {
  if (!fs.existsSync(COORD_MAIN)) {
    throw new Error(
      `coord server entry point ${COORD_MAIN} does not exist: build it first (npm run build), ` +
        `or run the differential suite against a second etcd with DIFF_TARGET=etcd`,
    );
  }
  const spec: MemberSpec = {
    kind: 'coord',
    command: [process.execPath, COORD_MAIN],
    extraArgs: opts.extraArgs,
    // NODE_OPTIONS from jest (e.g. --experimental-vm-modules from .npmrc) must not leak into the server.
    env: { NODE_OPTIONS: '', ...opts.env },
    probe: coordProbe,
    readyTimeoutMs: opts.readyTimeoutMs,
    namePrefix: 'coord',
    dataDir: opts.dataDir,
  };
  return new Member(spec);
}

/** Start a fresh coord server and wait until it serves gRPC. */
export async function startCoord(opts: CoordOptions = {}): Promise<Member> {
  return coordMember(opts).start();
}
