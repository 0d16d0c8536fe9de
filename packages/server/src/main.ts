#!/usr/bin/env node
/**
 * `coord server` as a standalone process: etcd's flags in, a serving member out.
 * Exit codes: 0 after a clean shutdown, 1 for bad flags, 2 for a fatal storage error
 * (e.g. a corrupt WAL, which is reported and never repaired by discarding data).
 */
import { ConfigError, parseFlags, usage } from './member/config';
import { startServer } from './server';

export async function runServer(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage() + '\n');
    return;
  }
  const log = (msg: string): void => void process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
  let config;
  try {
    config = parseFlags(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`coord server: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  let running: Awaited<ReturnType<typeof startServer>>;
  // etcd: a member removed from the cluster stops ("the member has been permanently removed from the cluster").
  const onRemoved = (): void => {
    // Possibly before startServer returned (a removed member restarted): then there is nothing to stop gracefully.
    const stopping = running ? running.stop() : Promise.resolve();
    void stopping.finally(() => process.exit(0));
  };
  try {
    running = await startServer(config, log, { onRemoved });
  } catch (err) {
    process.stderr.write(`coord server: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`received ${signal}, shutting down`);
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (require.main === module) {
  runServer(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`coord server: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  });
}
