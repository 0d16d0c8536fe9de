/**
 * Free loopback TCP ports for test servers.
 *
 * Goal: hand out ports that are free now, and never the same port twice in one process.
 *
 * Method: the classic trick is "bind to port 0, read the port, close". Its weakness is that
 * port 0 draws from the kernel's ephemeral range (net.ipv4.ip_local_port_range), which is
 * exactly where the kernel also picks source ports for outgoing connections: between our
 * close() and etcd's bind() another socket may take the port. So we first try random ports
 * *below* the ephemeral range (the kernel never hands those out on its own), checking each
 * by binding to it, and fall back to port 0 only if that fails. Ports handed out are
 * remembered for the life of the process. Separate jest workers are separate processes, so
 * collisions between them are possible but rare (random draws over ~15k ports); callers
 * that start servers retry with fresh ports when a bind fails (see proc.ts).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

const handedOut = new Set<number>();
const LOW_PORT_MIN = 15000;
const ATTEMPTS_MAX = 64;

function ephemeralLow(): number {
  try {
    const [lo] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const n = Number(lo);
    if (Number.isInteger(n) && n > LOW_PORT_MIN + 1000) return n;
  } catch {
    // not Linux: fall through
  }
  return 32768;
}

/** Resolves to the port if `port` (0 = any) can be bound on 127.0.0.1 right now, else undefined. */
function tryBind(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const got = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(got));
    });
  });
}

/** One free loopback port, never returned before by this process. */
export async function freePort(): Promise<number> {
  const hi = ephemeralLow();
  for (let i = 0; i < ATTEMPTS_MAX; i++) {
    const candidate = LOW_PORT_MIN + Math.floor(Math.random() * (hi - LOW_PORT_MIN));
    if (handedOut.has(candidate)) continue;
    // Also require candidate+0 to be bindable; etcd binds exactly this port.
    const got = await tryBind(candidate);
    if (got === candidate) {
      handedOut.add(candidate);
      return candidate;
    }
  }
  for (let i = 0; i < ATTEMPTS_MAX; i++) {
    const got = await tryBind(0);
    if (got !== undefined && !handedOut.has(got)) {
      handedOut.add(got);
      return got;
    }
  }
  throw new Error('freePort: no free loopback port found');
}

/** `n` distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await freePort());
  return out;
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}
