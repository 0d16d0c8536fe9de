/**
 * A real multi-member cluster on loopback for membership tests: three members (by default)
 * with client and peer URLs on free ports, a unique --initial-cluster-token, data dirs in one
 * temporary directory; everything killed and removed by `stop()`.
 *
 * Target-switchable: `CLUSTER_TEST_TARGET=coord` (default) runs `node packages/server/dist/main.js`;
 * `CLUSTER_TEST_TARGET=etcd` runs /usr/bin/etcd (or $ETCD_BIN) with exactly the same
 * etcd flags (coord takes etcd's flag names). Used by packages/cli/test/cluster-membership.test.ts
 * and packages/client/test/cluster-membership.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export type ClusterTarget = 'etcd' | 'coord';

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';
export const COORD_SERVER_MAIN = path.resolve(__dirname, '..', '..', '..', 'server', 'dist', 'main.js');

/** The implementation under test, from CLUSTER_TEST_TARGET. */
export function clusterTarget(): ClusterTarget {
  const t = process.env.CLUSTER_TEST_TARGET || 'coord';
  if (t !== 'etcd' && t !== 'coord') throw new Error(`CLUSTER_TEST_TARGET must be etcd or coord, got ${JSON.stringify(t)}`);
  return t;
}

export interface ClusterMember {
  readonly name: string;
  /** `127.0.0.1:P`: a client endpoint. */
  readonly endpoint: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
  hasExited(): boolean;
  /** The last 20,000 characters the member printed. */
  output(): string;
  /** SIGKILL (if still running), wait for the exit; the data dir stays until the cluster stops. */
  kill(): Promise<void>;
}

export interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
}

export interface TestCluster {
  readonly target: ClusterTarget;
  readonly token: string;
  readonly dir: string;
  /** The initial members, in start order. */
  readonly members: readonly ClusterMember[];
  /** Their client endpoints (`127.0.0.1:P`), comma-joined for --endpoints. */
  readonly endpoints: string;
  /**
   * Start one more member with the given --initial-cluster (as `member add` printed it) and
   * `--initial-cluster-state existing`. Its ports come from `spec` (its peer URL must be the one
   * that was added).
   */
  startMember(spec: MemberSpec, initialCluster: string): ClusterMember;
  /** Kill every member and remove the data directory. */
  stop(): Promise<void>;
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Thrown from a `waitFor` check: stop polling and reject with `reason`. */
export class StopWaiting extends Error {
  constructor(readonly reason: unknown) {
    super(reason instanceof Error ? reason.message : String(reason));
  }
}

/**
 * Poll `check` (every `intervalMs`) until it returns a value other than undefined/false. A
 * check that throws is retried (the last error is reported on timeout), except StopWaiting.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (err instanceof StopWaiting) throw err.reason;
      last = err;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(intervalMs);
  }
}

/** GET /health answers {"health":"true"} (the member has a leader and serves). */
export async function memberHealthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

function command(target: ClusterTarget): { file: string; prefix: string[] } {
  if (target === 'etcd') {
    if (!fs.existsSync(ETCD_BIN)) throw new Error(`etcd not found at ${ETCD_BIN} (install the etcd-server package)`);
    return { file: ETCD_BIN, prefix: [] };
  }
  if (!fs.existsSync(COORD_SERVER_MAIN)) throw new Error(`coord server not built: ${COORD_SERVER_MAIN} (run npx tsc -b packages/server)`);
  return { file: process.execPath, prefix: [COORD_SERVER_MAIN] };
}

/** A child environment without ETCD_* variables (etcd and coord read them as flags). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_') && k !== 'NODE_OPTIONS') env[k] = v;
  return env;
}

let launches = 0;

function launch(target: ClusterTarget, dir: string, token: string, spec: MemberSpec, initialCluster: string, state: 'new' | 'existing'): ClusterMember {
  const clientUrl = `http://127.0.0.1:${spec.clientPort}`;
  const peerUrl = `http://127.0.0.1:${spec.peerPort}`;
  // A fresh data dir per start: a member started again under the same name (after it was
  // removed) must not find the old member's data.
  const dataDir = path.join(dir, `${spec.name}.${++launches}.data`);
  const flags = [
    '--name', spec.name,
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', initialCluster,
    '--initial-cluster-state', state,
    '--initial-cluster-token', token,
    '--logger', 'zap',
    '--log-level', 'warn',
  ];
  const { file, prefix } = command(target);
  const child = spawn(file, [...prefix, ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-20000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      done = true;
      resolve(code);
    }),
  );
  return {
    name: spec.name,
    endpoint: `127.0.0.1:${spec.clientPort}`,
    clientUrl,
    peerUrl,
    dataDir,
    process: child,
    exited,
    hasExited: () => done,
    output: () => output,
    kill: async () => {
      if (!done) child.kill('SIGKILL');
      await exited;
    },
  };
}

async function startOnce(size: number, readyTimeoutMs: number): Promise<TestCluster> {
  const target = clusterTarget();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `coord-${target}-cluster-`));
  const token = `cm-${path.basename(dir)}`;
  const specs: MemberSpec[] = [];
  for (let i = 1; i <= size; i++) specs.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort() });
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
  const members: ClusterMember[] = specs.map((s) => launch(target, dir, token, s, initialCluster, 'new'));
  const extra: ClusterMember[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all([...members, ...extra].map((m) => m.kill()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'every member to answer /health',
      async () => {
        const dead = members.find((m) => m.hasExited());
        if (dead) throw new StopWaiting(new Error(`${dead.name} exited:\n${dead.output()}`));
        return (await Promise.all(members.map((m) => memberHealthy(m.clientUrl)))).every(Boolean);
      },
      readyTimeoutMs,
    );
  } catch (err) {
    const logs = members.map((m) => `--- ${m.name}:\n${m.output()}`).join('\n');
    await stop();
    throw new Error(`${target} cluster did not become healthy: ${(err as Error).message}\n${logs}`);
  }
  return {
    target,
    token,
    dir,
    members,
    endpoints: members.map((m) => m.endpoint).join(','),
    startMember: (spec, cluster) => {
      const m = launch(target, dir, token, spec, cluster, 'existing');
      extra.push(m);
      return m;
    },
    stop,
  };
}

/**
 * Start a cluster of `size` members. Retried (three tries in all) only when a member could
 * not bind a port we picked (another process took it in between); any other failure is
 * reported at once with every member's output.
 */
export async function startCluster(size = 3, readyTimeoutMs = 15000): Promise<TestCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(size, readyTimeoutMs);
    } catch (err) {
      const portTaken = /address already in use|EADDRINUSE/i.test((err as Error).message);
      if (!portTaken || attempt === 3) throw err;
    }
  }
}
