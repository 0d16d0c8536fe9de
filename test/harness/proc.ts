/**
 * A server process under test (real etcd or real coord), shared by etcd.ts and coord.ts.
 *
 * Goal: start a member with etcd's flags on loopback, know when it is ready, stop it
 * gracefully or with SIGKILL, restart it on the same data directory, and have its output
 * at hand when something fails.
 *
 * Method: spawn the binary with `--name --data-dir --listen-client-urls ...` on ports from
 * ports.ts; keep the last LOG_BYTES_MAX of stdout+stderr in memory; poll a readiness probe
 * (supplied by the caller) until it passes, the process exits, or the deadline passes. If
 * the first start fails because a port was taken meanwhile, retry with fresh ports. Every
 * live child is SIGKILLed when the test process exits, so a crashed jest worker leaves no
 * servers behind.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';

const LOG_BYTES_MAX = 256 * 1024;
const READY_TIMEOUT_MS_DEFAULT = 30_000;
const STOP_TIMEOUT_MS_DEFAULT = 10_000;
const START_ATTEMPTS_MAX = 3;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export type MemberKind = 'etcd' | 'coord';

/** What a started member is: ports, URLs and identity; the same for etcd and coord. */
export interface MemberLayout {
  readonly name: string;
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
}

export interface MemberSpec {
  kind: MemberKind;
  /** Executable and its leading arguments, e.g. ['node', '.../main.js']. */
  command: string[];
  /** Extra flags appended after the standard etcd flags (e.g. ['--snapshot-count', '100']). */
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Probe that resolves true once the member serves requests. */
  probe: (m: Member) => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Name prefix; a unique suffix is added. */
  namePrefix?: string;
  /** Use this data dir instead of a fresh temporary one (not removed by destroy()). */
  dataDir?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

let nameCounter = 0;

function uniqueName(prefix: string): string {
  nameCounter += 1;
  const rand = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0');
  return `${prefix}-${process.pid}-${nameCounter}-${rand}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The standard etcd flags for a single-member cluster at `layout`. */
export function etcdFlags(layout: MemberLayout): string[] {
  const client = `http://127.0.0.1:${layout.clientPort}`;
  const peer = `http://127.0.0.1:${layout.peerPort}`;
  return [
    '--name', layout.name,
    '--data-dir', layout.dataDir,
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `${layout.name}=${peer}`,
  ];
}

export class Member implements MemberLayout {
  readonly kind: MemberKind;
  name: string;
  readonly dataDir: string;
  clientPort = 0;
  peerPort = 0;
  private child: ChildProcess | undefined;
  private exitPromise: Promise<ExitInfo> | undefined;
  private lastExit: ExitInfo | undefined;
  private log = '';
  private readonly ownsDataDir: boolean;
  private starts = 0;

  constructor(private readonly spec: MemberSpec) {
    this.kind = spec.kind;
    this.name = uniqueName(spec.namePrefix ?? spec.kind);
    this.ownsDataDir = spec.dataDir === undefined;
    this.dataDir = spec.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `${spec.kind}-test-`));
  }

  get clientUrl(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }
  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }
  /** `host:port` as etcdctl's --endpoints wants it. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return this.child !== undefined && this.lastExit === undefined;
  }
  /** The exit of the most recent run, once it has exited. */
  get exitInfo(): ExitInfo | undefined {
    return this.lastExit;
  }

  /** Captured output (tail), each run separated by a banner. */
  logs(): string {
    return this.log;
  }
  logTail(chars = 4000): string {
    return this.log.length > chars ? '…' + this.log.slice(-chars) : this.log;
  }

  private append(chunk: string): void {
    this.log += chunk;
    if (this.log.length > LOG_BYTES_MAX) this.log = this.log.slice(-LOG_BYTES_MAX);
  }

  private argv(): string[] {
    // An empty mkdtemp dir is accepted as a fresh data dir by etcd (and must be by coord).
    return [...this.spec.command.slice(1), ...etcdFlags(this), ...(this.spec.extraArgs ?? [])];
  }

  private spawnOnce(): void {
    this.starts += 1;
    this.lastExit = undefined;
    const [cmd] = this.spec.command;
    const args = this.argv();
    this.append(`\n===== start #${this.starts}: ${cmd} ${args.join(' ')}\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.spec.env };
    for (const k of Object.keys(env)) if (k.startsWith('ETCD_') || k.startsWith('ETCDCTL_')) delete env[k];
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    installExitHook();
    live.add(child);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.append(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => this.append(d));
    this.exitPromise = new Promise<ExitInfo>((resolve) => {
      child.once('error', (err) => {
        this.append(`\n===== spawn error: ${err.message}\n`);
        live.delete(child);
        this.lastExit = { code: -1, signal: null };
        resolve(this.lastExit);
      });
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.append(`\n===== exited code=${code} signal=${signal}\n`);
        this.lastExit = { code, signal };
        resolve(this.lastExit);
      });
    });
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT);
    for (;;) {
      if (this.lastExit) {
        throw new Error(
          `${this.kind} member ${this.name} exited before it was ready ` +
            `(code=${this.lastExit.code} signal=${this.lastExit.signal}). Output:\n${this.logTail()}`,
        );
      }
      let ok = false;
      try {
        ok = await this.spec.probe(this);
      } catch {
        ok = false;
      }
      if (ok) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.kind} member ${this.name} not ready after ${this.spec.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT} ms. Output:\n${this.logTail()}`);
      }
      await sleep(50);
    }
  }

  /**
   * First start: allocate ports, spawn, wait until ready. A bind failure (another process
   * took the port between allocation and bind) is retried with new ports and a new name.
   */
  async start(): Promise<this> {
    if (this.running) throw new Error(`${this.name} is already running`);
    for (let attempt = 1; ; attempt++) {
      if (this.starts === 0 || this.clientPort === 0) {
        this.clientPort = await freePort();
        this.peerPort = await freePort();
      }
      this.spawnOnce();
      try {
        await this.waitReady();
        return this;
      } catch (err) {
        const portTaken = /address already in use|EADDRINUSE/i.test(this.log);
        await this.kill();
        if (!portTaken || attempt >= START_ATTEMPTS_MAX || !this.ownsDataDir) throw err;
        // A fresh identity on a fresh, empty data dir.
        fs.rmSync(this.dataDir, { recursive: true, force: true });
        fs.mkdirSync(this.dataDir, { recursive: true });
        this.clientPort = 0;
        this.name = uniqueName(this.spec.namePrefix ?? this.spec.kind);
      }
    }
  }

  /** Start again on the same ports, name and data dir, and wait until ready. */
  async restart(opts: { kill?: boolean } = {}): Promise<this> {
    if (this.running) {
      if (opts.kill) await this.kill();
      else await this.stop();
    }
    this.spawnOnce();
    await this.waitReady();
    return this;
  }

  /** Start after a stop/kill without waiting for readiness (for tests of a failed start). */
  spawnNoWait(): Promise<ExitInfo> {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.spawnOnce();
    return this.exitPromise!;
  }

  /** Resolves when the current run exits (immediately if it has). */
  waitExit(): Promise<ExitInfo> {
    if (!this.exitPromise) return Promise.resolve({ code: null, signal: null });
    return this.exitPromise;
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`. Resolves with the exit. */
  async stop(timeoutMs = STOP_TIMEOUT_MS_DEFAULT): Promise<ExitInfo> {
    const child = this.child;
    if (!child || this.lastExit) return this.lastExit ?? { code: null, signal: null };
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exitPromise!;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send a signal now (SIGKILL by default) and wait for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitInfo> {
    const child = this.child;
    if (!child || this.lastExit) return this.lastExit ?? { code: null, signal: null };
    child.kill(signal);
    return this.exitPromise!;
  }

  /** Stop and remove the data dir (when the harness created it). */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.ownsDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
