#!/usr/bin/env node
// The oclif manifest (oclif.manifest.json): the command list with flags and help, so that oclif
// need not load every command file at start-up (`coord --version` then loads no command code).
// `node bin/manifest.js` writes it (the package build runs it); bin/run.js calls
// `ensureManifest()`, which rebuilds it when it is missing or stale (a command file added,
// removed or newer than the manifest), because a stale manifest silently hides commands.
// The `oclif` dev package would also build it but pulls in hundreds of packages; @oclif/core
// has what it takes.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const MANIFEST = path.join(ROOT, 'oclif.manifest.json');
const COMMANDS = path.join(ROOT, 'dist', 'commands');

/** Every compiled command file under dist/commands, as "dist/commands/x/y.js", with its mtime. */
function commandFiles(dir = COMMANDS, out = new Map()) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) commandFiles(full, out);
    else if (e.name.endsWith('.js')) out.set(path.relative(ROOT, full).split(path.sep).join('/'), fs.statSync(full).mtimeMs);
  }
  return out;
}

/** True when the manifest lists exactly the command files there are and is newer than all. */
function manifestIsFresh() {
  let text;
  let mtime;
  try {
    text = fs.readFileSync(MANIFEST, 'utf8');
    mtime = fs.statSync(MANIFEST).mtimeMs;
  } catch {
    return false;
  }
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch {
    return false;
  }
  const version = require(path.join(ROOT, 'package.json')).version;
  if (manifest.version !== version) return false;
  const listed = new Set(Object.values(manifest.commands || {}).map((c) => (c.relativePath || []).join('/')));
  const files = commandFiles();
  if (files.size !== listed.size) return false;
  for (const [file, fileMtime] of files) if (!listed.has(file) || fileMtime > mtime) return false;
  return true;
}

/** Build the manifest with @oclif/core's Plugin (loads every command once) and write it atomically. */
async function writeManifest() {
  const { Plugin } = require('@oclif/core/config');
  const plugin = new Plugin({ root: ROOT, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true });
  await plugin.load();
  const tmp = `${MANIFEST}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(plugin.manifest, null, 2) + '\n');
  fs.renameSync(tmp, MANIFEST);
  return plugin.manifest;
}

/** Rebuild a missing or stale manifest; best effort (a read-only install just runs slower). */
async function ensureManifest() {
  if (manifestIsFresh()) return;
  try {
    await writeManifest();
  } catch {
    try {
      fs.rmSync(MANIFEST, { force: true }); // never run with a stale one
    } catch {
      // read-only: oclif warns about nothing; commands added since are hidden until rebuilt
    }
  }
}

module.exports = { ensureManifest, manifestIsFresh, writeManifest };

if (require.main === module) {
  writeManifest().then(
    (m) => process.stdout.write(`oclif.manifest.json: ${Object.keys(m.commands).length} commands\n`),
    (err) => {
      process.stderr.write(`manifest: ${err.stack || err}\n`);
      process.exitCode = 1;
    },
  );
}
