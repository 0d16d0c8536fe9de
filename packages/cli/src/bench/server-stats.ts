/**
 * The server's own cost, read from /proc when the bench is told its pid (--server-pid; the
 * server must run on the same machine): resident memory (VmRSS in /proc/<pid>/status) at
 * named points and its peak sampled every 100 ms in between, and CPU time (utime + stime in
 * /proc/<pid>/stat) over the measured phase.
 */
import * as fs from 'node:fs';

/** Linux's USER_HZ (clock ticks per second in /proc/<pid>/stat); 100 on every common platform. */
const CLK_TCK = 100;
const SAMPLE_MS = 100;

export interface ServerStats {
  pid: number;
  /** VmRSS in KiB at named points of the run (e.g. before, watchersCreated, after). */
  rssKiB: Record<string, number>;
  /** Highest VmRSS sampled (every 100 ms) during the measured phase, and at the named points. */
  rssPeakKiB: number;
  /** CPU time the server used during the measured phase. */
  cpuUserMs: number;
  cpuSystemMs: number;
  cpuPercentOfOneCore: number;
}

export function readRssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

function readCpuTicks(pid: number): { user: number; system: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]), system: Number(rest[12]) };
}

/** Watches one process; every method is a no-op without a pid. */
export class ServerWatch {
  private readonly rss: Record<string, number> = {};
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;
  private cpu0: { user: number; system: number } | undefined;
  private t0 = 0;
  private cpu: { user: number; system: number; seconds: number } | undefined;

  constructor(readonly pid: number | undefined) {
    if (pid !== undefined) {
      try {
        readRssKiB(pid);
        readCpuTicks(pid);
      } catch (err) {
        throw new Error(`--server-pid ${pid}: cannot read /proc/${pid} (${(err as Error).message}); the server must run on this machine`);
      }
    }
  }

  /** Records VmRSS now under `name`. */
  mark(name: string): void {
    if (this.pid === undefined) return;
    const kib = this.tryRss();
    if (kib === undefined) return;
    this.rss[name] = kib;
    if (kib > this.peak) this.peak = kib;
  }

  /** Starts the measured phase: CPU baseline and RSS sampling. */
  start(): void {
    if (this.pid === undefined) return;
    this.cpu0 = this.tryCpu();
    this.t0 = Date.now();
    this.timer = setInterval(() => {
      const kib = this.tryRss();
      if (kib !== undefined && kib > this.peak) this.peak = kib;
    }, SAMPLE_MS);
    this.timer.unref();
  }

  /** Ends the measured phase. */
  stop(): void {
    if (this.pid === undefined) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const c1 = this.tryCpu();
    if (this.cpu0 && c1) this.cpu = { user: c1.user - this.cpu0.user, system: c1.system - this.cpu0.system, seconds: (Date.now() - this.t0) / 1000 };
  }

  result(): ServerStats | null {
    if (this.pid === undefined) return null;
    const c = this.cpu ?? { user: 0, system: 0, seconds: 0 };
    const toMs = (ticks: number): number => (ticks * 1000) / CLK_TCK;
    return {
      pid: this.pid,
      rssKiB: { ...this.rss },
      rssPeakKiB: this.peak,
      cpuUserMs: toMs(c.user),
      cpuSystemMs: toMs(c.system),
      cpuPercentOfOneCore: c.seconds > 0 ? ((toMs(c.user + c.system) / 1000) / c.seconds) * 100 : 0,
    };
  }

  private tryRss(): number | undefined {
    try {
      return readRssKiB(this.pid!);
    } catch {
      return undefined;
    }
  }

  private tryCpu(): { user: number; system: number } | undefined {
    try {
      return readCpuTicks(this.pid!);
    } catch {
      return undefined;
    }
  }
}

export function mib(kib: number | undefined): string {
  return kib === undefined ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`;
}
