/**
 * Service discovery: a service registers itself with a TTL heartbeat; a client discovers it,
 * follows every change and spreads its requests round-robin.
 *
 * How it works (@coord/recipes ServiceRegistry):
 * - An instance is one key, `/coord/services/<service>/<id>`, holding JSON
 *   `{ service, id, address, port, metadata }`, attached to a lease. The registry keeps the lease
 *   alive in the background (a keep-alive every TTL/3): that is the heartbeat. When the process
 *   stops cleanly it deletes its key; when it dies, nobody renews the lease and the server
 *   deletes the key when the lease expires, at most one TTL later.
 * - The client follows the service with `registry.watch(service)`: list-then-watch, i.e. a
 *   snapshot at revision R, then every change from R + 1 (no gap, no duplicate, re-listed after
 *   a compaction). Each change carries the full set of instances, which feeds a round-robin
 *   `Picker`. (`registry.discover(service)` is the one-shot read; `registry.picker(service)`
 *   bundles watch + picker in one call.)
 *
 * Roles (--role):
 *   service  one instance: an HTTP server on 127.0.0.1 answering "hello from <id>", registered
 *            until SIGTERM/SIGINT or the end of --duration, then deregistered.
 *   client   follows the service and sends a request every --interval-ms to the next instance,
 *            for --duration seconds.
 *   demo     (default) a client in this process and three `--role service` child processes:
 *            instances come and go, one stops cleanly, one is killed with SIGKILL and vanishes
 *            from the client's view within its TTL. Exits 0 when everything happened as shown.
 *
 * Run (from the repository root, with a server on COORD_ENDPOINTS, default 127.0.0.1:2379):
 *   npm run build && npx tsc -p examples
 *   node examples/dist/service-discovery.js                                   # the demo
 *   node examples/dist/service-discovery.js --role service --id api-1 --duration 60 &
 *   node examples/dist/service-discovery.js --role client --duration 10
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Client } from '@coord/client';
import { Picker, ServiceRegistry, type Registration, type ServiceEntry } from '@coord/recipes';

// ---- small helpers (each example is standalone, so each has its own) ----------------------

/** COORD_ENDPOINTS: comma-separated host:port list. */
const endpoints = (process.env.COORD_ENDPOINTS ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);

function log(who: string, message: string): void {
  console.log(`[${who}] ${message}`);
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** An AbortSignal that aborts on SIGTERM, SIGINT or after `ms`; `dispose()` removes the hooks. */
function stopSignal(ms: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  const timer = setTimeout(stop, ms);
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    },
  };
}

// ---- options -------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'demo' },
    service: { type: 'string', default: 'example-echo' },
    id: { type: 'string', default: `instance-${process.pid}` },
    /** Lease TTL in seconds: how long a dead instance may stay listed. */
    ttl: { type: 'string', default: '3' },
    /** How long `service` and `client` run, in seconds. */
    duration: { type: 'string', default: '30' },
    'interval-ms': { type: 'string', default: '1000' },
  },
});
const SERVICE = args.service!;
const TTL_SECONDS = Number(args.ttl);
const DURATION_MS = Number(args.duration) * 1000;

// ---- the service ---------------------------------------------------------------------------

async function runService(id: string): Promise<void> {
  const stop = stopSignal(DURATION_MS);

  // The service itself: any server will do; this one says who answered.
  const server = http.createServer((_req, res) => {
    res.setHeader('connection', 'close');
    res.end(`hello from ${id}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const client = new Client({ endpoints });
  // The registry creates its own session on the first register(): a lease of TTL_SECONDS,
  // renewed in the background. That renewal is the heartbeat.
  const registry = new ServiceRegistry(client, { ttl: TTL_SECONDS });
  try {
    while (!stop.signal.aborted) {
      let reg: Registration;
      try {
        reg = await registry.register({ service: SERVICE, id, address: '127.0.0.1', port, metadata: { pid: String(process.pid) } });
      } catch (err) {
        log(id, `cannot register (${errText(err)}); retrying in 1 s`);
        await sleep(1000, stop.signal);
        continue;
      }
      log(id, `registered ${reg.key} -> 127.0.0.1:${port} (lease ${reg.session.leaseHex}, TTL ${reg.session.ttl} s)`);
      // Serve until told to stop, or until the registration is lost: heartbeats failed for
      // too long (the server may have expired the lease) or somebody deleted our key.
      await Promise.race([aborted(stop.signal), aborted(reg.signal)]);
      if (stop.signal.aborted) break;
      log(id, `registration lost (${errText(reg.signal.reason)}); registering again`);
    }
  } finally {
    // Deregister (delete our key) and revoke the lease: clients see us go at once.
    await registry.close();
    log(id, 'deregistered; bye');
    client.close();
    server.close();
    stop.dispose();
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
}

// ---- the client ----------------------------------------------------------------------------

/**
 * Follows one service: keeps a round-robin picker current from `registry.watch()` and lets
 * callers wait for a given set of instances (the demo uses that to pace itself).
 */
class ServiceFollower {
  readonly picker = new Picker<ServiceEntry>('round-robin', (e) => e.key);
  private readonly listeners = new Set<() => void>();
  private done: Promise<void> | undefined;

  constructor(
    private readonly registry: ServiceRegistry,
    private readonly service: string,
    private readonly signal: AbortSignal,
  ) {}

  /** IDs of the instances known now, in key order. */
  ids(): string[] {
    return this.picker.all.map((e) => e.id);
  }

  /** Start following; resolves once the first snapshot (the discovery) is in. */
  async start(): Promise<void> {
    let ready!: () => void;
    const first = new Promise<void>((resolve) => (ready = resolve));
    this.done = (async () => {
      for await (const change of this.registry.watch(this.service, { signal: this.signal })) {
        this.picker.update(change.instances);
        const now = this.ids().join(', ') || '(none)';
        if (change.type === 'snapshot') {
          log('client', `discovered ${change.instances.length} instance(s) of ${this.service} at revision ${change.revision}: ${now}`);
          ready();
        } else {
          const i = change.instance;
          log('client', `${change.type} ${i.id} (${i.address}:${i.port}) at revision ${change.revision}; now: ${now}`);
        }
        for (const l of this.listeners) l();
      }
    })();
    // If the watch fails before its first snapshot (server unreachable), fail here.
    await Promise.race([first, this.done]);
  }

  /** Ends when the signal aborted; throws the watch's error if it failed. */
  async finished(): Promise<void> {
    await this.done;
  }

  /** Wait until `predicate(ids)` holds, at most `timeoutMs`. */
  waitUntil(what: string, predicate: (ids: string[]) => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(this.ids())) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting until ${what}; instances: ${this.ids().join(', ') || '(none)'}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /**
   * Send request number `n` to the next instance. An instance that fails (its process died
   * and its lease has not expired yet) is skipped: try the next one, once per instance.
   */
  async request(n: number): Promise<string | undefined> {
    for (let attempt = 0; attempt < Math.max(1, this.picker.size); attempt++) {
      const target = this.picker.pick();
      if (!target) {
        log('client', `request ${n}: no instance available`);
        return undefined;
      }
      try {
        const answer = await httpGet(target.address, target.port);
        log('client', `request ${n} -> ${target.id}: ${answer}`);
        return target.id;
      } catch (err) {
        log('client', `request ${n} -> ${target.id} failed (${errText(err)}); trying the next instance`);
      }
    }
    return undefined;
  }
}

function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function runClient(): Promise<void> {
  const stop = stopSignal(DURATION_MS);
  const client = new Client({ endpoints });
  // Reading needs no session: the registry only creates one when something registers.
  const registry = new ServiceRegistry(client);
  const follower = new ServiceFollower(registry, SERVICE, stop.signal);
  try {
    await follower.start();
    for (let n = 1; !stop.signal.aborted; n++) {
      await follower.request(n);
      await sleep(Number(args['interval-ms']), stop.signal);
    }
    await follower.finished();
  } finally {
    stop.dispose();
    client.close();
  }
}

// ---- the demo ------------------------------------------------------------------------------

/** A `--role service` child process, printing to our stdout. */
class Instance {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly id: string) {
    this.child = spawn(
      process.execPath,
      [__filename, '--role', 'service', '--service', SERVICE, '--id', id, '--ttl', String(TTL_SECONDS), '--duration', '120'],
      { env: { ...process.env, COORD_ENDPOINTS: endpoints.join(',') }, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }
}

async function runDemo(): Promise<void> {
  const client = new Client({ endpoints });
  const registry = new ServiceRegistry(client);
  const stop = new AbortController();
  const instances: Instance[] = [];
  const deadline = (TTL_SECONDS + 10) * 1000; // for each step below
  const start = (id: string) => {
    const i = new Instance(id);
    instances.push(i);
    return i;
  };
  try {
    // Instances left over by an interrupted earlier demo would disturb the round-robin below.
    await client.delete(`${registry.prefix}${SERVICE}/`, { prefix: true });
    const follower = new ServiceFollower(registry, SERVICE, stop.signal);
    await follower.start();
    let n = 0; // request counter

    log('demo', 'starting instances api-1 and api-2');
    const [api1, api2] = [start('api-1'), start('api-2')];
    await follower.waitUntil('api-1 and api-2 are registered', (ids) => ids.join() === 'api-1,api-2', deadline);

    log('demo', 'four requests, round-robin');
    for (let i = 0; i < 4; i++) await follower.request(++n);

    log('demo', 'starting api-3: the client follows without restarting');
    const api3 = start('api-3');
    await follower.waitUntil('api-3 is registered', (ids) => ids.includes('api-3'), deadline);
    for (let i = 0; i < 3; i++) await follower.request(++n);

    log('demo', 'stopping api-1 with SIGTERM: it deregisters itself');
    api1.child.kill('SIGTERM');
    await follower.waitUntil('api-1 is gone', (ids) => !ids.includes('api-1'), deadline);
    const exit1 = await api1.exited;
    if (exit1.code !== 0) throw new Error(`api-1 exited with ${exit1.code ?? exit1.signal}`);

    log('demo', `killing api-2 with SIGKILL: no deregistration; its lease expires within ${TTL_SECONDS} s`);
    const killedAt = Date.now();
    api2.child.kill('SIGKILL');
    await api2.exited;
    // Until the lease expires, api-2 is still listed: requests to it fail and go to api-3.
    const gone = follower.waitUntil('api-2 is gone', (ids) => !ids.includes('api-2'), deadline);
    let stillListed = true;
    void gone.then(() => (stillListed = false), () => undefined);
    while (stillListed) {
      await follower.request(++n);
      await Promise.race([sleep(700), gone.catch(() => undefined)]);
    }
    await gone;
    const seconds = (Date.now() - killedAt) / 1000;
    log('demo', `api-2 vanished ${seconds.toFixed(1)} s after its process was killed (TTL ${TTL_SECONDS} s)`);

    for (let i = 0; i < 2; i++) await follower.request(++n);

    log('demo', 'stopping api-3');
    api3.child.kill('SIGTERM');
    await follower.waitUntil('no instance is left', (ids) => ids.length === 0, deadline);
    await api3.exited;

    stop.abort();
    await follower.finished();
    log('demo', 'done');
  } finally {
    stop.abort();
    for (const i of instances) if (i.child.exitCode === null && i.child.signalCode === null) i.child.kill('SIGKILL');
    await Promise.all(instances.map((i) => i.exited));
    client.close();
  }
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  switch (args.role) {
    case 'service':
      return runService(args.id!);
    case 'client':
      return runClient();
    case 'demo':
      return runDemo();
    default:
      throw new Error(`--role must be service, client or demo, got ${args.role}`);
  }
}

main().catch((err) => {
  console.error(`service-discovery: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
