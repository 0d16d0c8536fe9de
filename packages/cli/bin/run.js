#!/usr/bin/env node
// coord: the oclif entry point.
// - `coord --version` and a bare `coord version` are answered here, without loading oclif
//   (~100 ms of module loading): same text as oclif's and as the version command.
// - Global flags may precede the command, as with etcdctl (`coord --endpoints h:p get k`):
//   normalizeArgv moves them after it, where oclif expects them.
// - ensureManifest keeps oclif.manifest.json in step with dist/commands, so start-up loads
//   only the command that runs (see manifest.js).
'use strict';
const argv = process.argv.slice(2);

// `coord get --prefix '' | head -1`: a closed pipe ends the output quietly, as it would a Go
// program (killed by SIGPIPE), instead of crashing with an EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err && err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

if (argv.length === 1 && (argv[0] === '--version' || argv[0] === 'version')) {
  const pjson = require('../package.json');
  process.stdout.write(
    argv[0] === '--version'
      ? `${pjson.name}/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`
      : `coord version: ${pjson.version}\nAPI version: ${require('../dist/api-version').API_VERSION}\n`,
  );
} else {
  const { normalizeArgv } = require('../dist/flags/global');
  require('./manifest')
    .ensureManifest()
    .then(() => require('@oclif/core/execute').execute({ dir: __dirname, args: normalizeArgv(argv) }))
    .catch((err) => {
      process.stderr.write(`Error: ${err && err.message ? err.message : String(err)}\n`);
      process.exitCode = 1;
    });
}
