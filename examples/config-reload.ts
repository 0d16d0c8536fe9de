/**
 * Config hot reload: an application follows a JSON config stored in one key, validates every
 * new version with its own parser, applies the valid ones at once and keeps running on the last
 * good config when somebody stores a broken one.
 *
 * How it works (@coord/recipes ConfigWatcher):
 * - `new ConfigWatcher(client, { key, parse, fallback })` reads the key and then watches it
 *   (list-then-watch: no change is missed, none is seen twice).
 * - Each stored value is decoded as JSON and handed to `parse(value)`, which returns the typed
 *   config or throws. Any validator fits (a zod schema's `parse`, io-ts, ajv...); here it is a
 *   small hand-written one, so the example needs no extra package. `parse` gets `undefined`
 *   when the key does not exist: this one answers with the defaults.
 * - A valid new version emits `change` (new and previous snapshot, each at one store revision).
 *   A value that is not JSON, or that `parse` rejects, emits `invalid` (a ConfigInvalidError
 *   naming the revision and the reason) and the watcher keeps the last good snapshot:
 *   `config.value` never holds an unvalidated config.
 * - `fallback` is used if the value stored at start is already invalid: the application starts
 *   with it (and gets `invalid`) instead of failing to start.
 *
 * Roles (--role):
 *   watch   print the config and every reload or rejection for --duration seconds.
 *   set     store --value (any text, valid or not) in the key.
 *   demo    (default) a watcher and an "admin" in this process: the admin stores two good
 *           configs, three broken ones (bad JSON, wrong type, unknown log level) and a good one
 *           again; the watcher reloads, rejects and keeps its last good config as it should.
 *
 * Run (from the repository root, with a server on COORD_ENDPOINTS, default 127.0.0.1:2379):
 *   npm run build && npx tsc -p examples
 *   node examples/dist/config-reload.js                                       # the demo
 *   node examples/dist/config-reload.js --role watch --duration 60 &
 *   node examples/dist/config-reload.js --role set --value '{"port":9000,"logLevel":"debug"}'
 *   node examples/dist/config-reload.js --role set --value '{"port":"nine thousand"}'
 */
import { parseArgs } from 'node:util';
import { Client } from '@coord/client';
import { ConfigWatcher, type ConfigInvalidError, type ConfigSnapshot } from '@coord/recipes';

// ---- small helpers (each example is standalone, so each has its own) ----------------------

/** COORD_ENDPOINTS: comma-separated host:port list. */
const endpoints = (process.env.COORD_ENDPOINTS ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);

function log(who: string, message: string): void {
  console.log(`[${who}] ${message}`);
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

// ---- options -------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'demo' },
    key: { type: 'string', default: 'examples/config-reload/app.json' },
    value: { type: 'string' },
    /** watch: how long to follow, in seconds. */
    duration: { type: 'string', default: '30' },
  },
});
const KEY = args.key!;

// ---- the config and its validating parser ---------------------------------------------------

const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

interface AppConfig {
  readonly port: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly features: readonly string[];
}

const DEFAULTS: AppConfig = Object.freeze({ port: 8080, logLevel: 'info', features: Object.freeze([]) });

/**
 * Validate a decoded JSON value and return the typed config; throw with a readable reason
 * otherwise. Missing fields take their defaults; unknown fields are refused (a typo such as
 * "logLvel" should not silently do nothing).
 */
function parseAppConfig(value: unknown): AppConfig {
  if (value === undefined) return DEFAULTS; // no config stored
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('the config must be a JSON object');
  const o = value as Record<string, unknown>;
  for (const field of Object.keys(o)) {
    if (!(field in DEFAULTS)) throw new Error(`unknown field "${field}"`);
  }
  const port = o.port ?? DEFAULTS.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`port must be an integer in 1..65535, got ${JSON.stringify(o.port)}`);
  }
  const logLevel = o.logLevel ?? DEFAULTS.logLevel;
  if (typeof logLevel !== 'string' || !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new Error(`logLevel must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(o.logLevel)}`);
  }
  const features = o.features ?? DEFAULTS.features;
  if (!Array.isArray(features) || !features.every((f) => typeof f === 'string')) {
    throw new Error(`features must be an array of strings, got ${JSON.stringify(o.features)}`);
  }
  return Object.freeze({ port, logLevel: logLevel as AppConfig['logLevel'], features: Object.freeze([...features]) });
}

// ---- the application side --------------------------------------------------------------------

/** Start following the config; log every reload and every rejected version. */
async function startWatching(client: Client): Promise<ConfigWatcher<AppConfig>> {
  const config = new ConfigWatcher(client, { key: KEY, parse: parseAppConfig, fallback: DEFAULTS });

  config.on('change', (next: ConfigSnapshot<AppConfig>, prev: ConfigSnapshot<AppConfig> | undefined) => {
    // A real application would reconfigure itself here: reopen its listener if the port
    // changed, set its logger's level, toggle features...
    log('app', `reloaded config of revision ${next.revision}: ${JSON.stringify(next.value)}`);
    if (prev && prev.value.port !== next.value.port) log('app', `  port changed ${prev.value.port} -> ${next.value.port}`);
  });
  config.on('invalid', (err: ConfigInvalidError) => {
    log('app', `rejected revision ${err.revision} (${errText(err.cause ?? err)}); keeping the config of revision ${config.current?.revision}`);
  });
  // The watch failing for good (e.g. the client was closed) would be reported here.
  config.on('error', (err: unknown) => log('app', `config watch failed: ${errText(err)}`));

  const first = await config.start();
  if (first.revision === 0n) log('app', `the stored config is invalid; starting with the defaults: ${JSON.stringify(first.value)}`);
  else if (first.raw === undefined) log('app', `no config stored yet; starting with the defaults: ${JSON.stringify(first.value)}`);
  else log('app', `started with the config of revision ${first.revision}: ${JSON.stringify(first.value)}`);
  return config;
}

// ---- the demo ------------------------------------------------------------------------------

async function runDemo(): Promise<void> {
  const appClient = new Client({ endpoints });
  const admin = new Client({ endpoints });
  let config: ConfigWatcher<AppConfig> | undefined;
  try {
    await admin.delete(KEY); // start from "no config"
    config = await startWatching(appClient);
    const watcher = config;

    // Each write is answered by exactly one event: a reload or a rejection.
    const nextEvent = () =>
      new Promise<'change' | 'invalid'>((resolve, reject) => {
        const onChange = () => done('change');
        const onInvalid = () => done('invalid');
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error('no reaction of the watcher within 10 s'));
        }, 10_000);
        const cleanup = () => {
          clearTimeout(timer);
          watcher.off('change', onChange);
          watcher.off('invalid', onInvalid);
        };
        const done = (what: 'change' | 'invalid') => {
          cleanup();
          resolve(what);
        };
        watcher.on('change', onChange);
        watcher.on('invalid', onInvalid);
      });

    const steps: { value: string; expect: 'change' | 'invalid' }[] = [
      { value: '{"port":8080,"logLevel":"info","features":["search"]}', expect: 'change' },
      { value: '{"port":8081,"logLevel":"debug","features":["search","beta-ui"]}', expect: 'change' },
      { value: '{"port":8082,"logLevel":"debug",', expect: 'invalid' }, // cut short: not JSON
      { value: '{"port":"8082","logLevel":"debug"}', expect: 'invalid' }, // port is a string
      { value: '{"port":8082,"logLevel":"verbose"}', expect: 'invalid' }, // no such level
      { value: '{"port":8082,"logLevel":"warn","features":[]}', expect: 'change' },
    ];
    let lastGood = '';
    for (const step of steps) {
      const reaction = nextEvent();
      log('admin', `storing ${step.value}`);
      await admin.put(KEY, step.value);
      const got = await reaction;
      if (got !== step.expect) throw new Error(`expected ${step.expect} for ${step.value}, got ${got}`);
      if (got === 'change') lastGood = step.value;
      // Whatever happened, the application's config is the last valid one.
      const now = JSON.stringify(watcher.value);
      if (now !== JSON.stringify(parseAppConfig(JSON.parse(lastGood)))) throw new Error(`config is ${now}, expected ${lastGood}`);
    }
    log('demo', `final config of revision ${watcher.current!.revision}: ${JSON.stringify(watcher.value)}`);
    log('demo', 'done: 3 reloads, 3 rejected versions, never an invalid config in use');
  } finally {
    config?.close();
    appClient.close();
    admin.close();
  }
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  switch (args.role) {
    case 'watch': {
      const client = new Client({ endpoints });
      const config = await startWatching(client);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Number(args.duration) * 1000);
        const stop = () => {
          clearTimeout(timer);
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      config.close();
      client.close();
      return;
    }
    case 'set': {
      if (args.value === undefined) throw new Error('--role set needs --value TEXT');
      const client = new Client({ endpoints });
      try {
        const { header } = await client.put(KEY, args.value);
        log('admin', `stored ${KEY} at revision ${header.revision}`);
      } finally {
        client.close();
      }
      return;
    }
    case 'demo':
      return runDemo();
    default:
      throw new Error(`--role must be watch, set or demo, got ${args.role}`);
  }
}

main().catch((err) => {
  console.error(`config-reload: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
