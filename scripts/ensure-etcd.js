#!/usr/bin/env node
/**
 * Makes sure the reference etcd and etcdctl (Debian's etcd-server and etcd-client, 3.4.x)
 * are installed before the tests run, and that no packaged etcd service is running.
 *
 * `npm test` runs this between the build and jest. The differential and crash suites
 * compare coord with the real etcd; they must never be skipped silently, so when etcd
 * cannot be had this prints a loud error and exits 1.
 *
 * - etcd / etcdctl missing: when running as root with apt-get available, runs
 *   `apt-get update` (once) and `apt-get install -y etcd-server etcd-client`; otherwise, or
 *   if that fails, error.
 * - version: must be 3.4.x, the reference the suites were written against
 *   (ETCD_VERSION_ANY=1 to accept another version anyway).
 * - the Debian package starts an etcd service on 127.0.0.1:2379/2380. Tests use random
 *   ports, but a stray member there confuses anyone running etcdctl by hand, so it is
 *   stopped and disabled (systemctl, else service), and a /usr/bin/etcd process of the
 *   `etcd` system user still listening on 2379/2380 is terminated. Another user's etcd on
 *   those ports is left alone, with a warning.
 *
 * Plain Node, no dependencies: it runs before `npm ci` has necessarily succeeded.
 */
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const PACKAGES = ['etcd-server', 'etcd-client'];
const REQUIRED_MINOR = '3.4';
const PACKAGE_PORTS = [2379, 2380];

function log(msg) {
  console.log(`[ensure-etcd] ${msg}`);
}

function fail(msg) {
  const bar = '!'.repeat(78);
  console.error(`\n${bar}\n[ensure-etcd] ERROR: ${msg}\n` +
    '[ensure-etcd] The differential and crash tests need the real etcd 3.4 and etcdctl.\n' +
    '[ensure-etcd] Install them with:  sudo apt-get install -y etcd-server etcd-client\n' +
    `[ensure-etcd] (or set ETCD_BIN / ETCDCTL_BIN to their paths).\n${bar}\n`);
  process.exit(1);
}

/** Absolute path of an executable found on PATH, or undefined. */
function which(cmd) {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : undefined;
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function run(cmd, args, opts = {}) {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) log(`  could not run ${cmd}: ${r.error.message}`);
  return r.status === 0;
}

function quiet(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout || ''}${r.stderr || ''}` };
}

function binaries() {
  // The harness prefers /usr/bin/etcd (test/harness/etcd.ts); ETCD_BIN / ETCDCTL_BIN override.
  const etcd = process.env.ETCD_BIN || (isExecutable('/usr/bin/etcd') ? '/usr/bin/etcd' : which('etcd'));
  const etcdctl = process.env.ETCDCTL_BIN || which('etcdctl');
  return { etcd: etcd && isExecutable(etcd) ? etcd : undefined, etcdctl: etcdctl && isExecutable(etcdctl) ? etcdctl : undefined };
}

function install() {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const aptGet = which('apt-get');
  if (!isRoot || !aptGet) {
    fail(`etcd/etcdctl not found on PATH, and cannot install them automatically (${isRoot ? 'no apt-get' : 'not root'}).`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!run(aptGet, ['update'], { env })) log('apt-get update failed; trying the install anyway');
  if (!run(aptGet, ['install', '-y', '--no-install-recommends', ...PACKAGES], { env })) {
    fail(`apt-get install ${PACKAGES.join(' ')} failed.`);
  }
}

function versionOf(bin, args, re) {
  const r = quiet(bin, args);
  const m = re.exec(r.out);
  return m ? m[1] : undefined;
}

function checkVersions(b) {
  const etcdVersion = versionOf(b.etcd, ['--version'], /etcd Version:\s*(\S+)/);
  const ctlVersion = versionOf(b.etcdctl, ['version'], /etcdctl version:\s*(\S+)/);
  log(`etcd ${etcdVersion || '?'} at ${b.etcd}; etcdctl ${ctlVersion || '?'} at ${b.etcdctl}`);
  for (const [what, v] of [['etcd', etcdVersion], ['etcdctl', ctlVersion]]) {
    if (!v) fail(`cannot read the version of ${what}.`);
    if (!v.startsWith(`${REQUIRED_MINOR}.`)) {
      if (process.env.ETCD_VERSION_ANY === '1') log(`WARNING: ${what} is ${v}, not ${REQUIRED_MINOR}.x; continuing (ETCD_VERSION_ANY=1)`);
      else fail(`${what} is version ${v}; the reference is ${REQUIRED_MINOR}.x (Debian's etcd-server/etcd-client). Set ETCD_VERSION_ANY=1 to run anyway.`);
    }
  }
}

// ------------------------------------------------------------ the packaged service

function stopService() {
  const systemd = fs.existsSync('/run/systemd/system') && which('systemctl');
  if (systemd) {
    const unit = quiet('systemctl', ['list-unit-files', 'etcd.service']);
    if (unit.ok && /etcd\.service/.test(unit.out)) {
      run('systemctl', ['stop', 'etcd']);
      run('systemctl', ['disable', 'etcd']);
    }
  } else if (which('service') && fs.existsSync('/etc/init.d/etcd')) {
    const st = quiet('service', ['etcd', 'status']);
    if (st.ok) run('service', ['etcd', 'stop']);
  }
}

/** inode -> port for LISTEN sockets on the given ports (/proc/net/tcp and tcp6). */
function listeningInodes(ports) {
  const found = new Map();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A = LISTEN
      const port = parseInt(f[1].split(':').pop(), 16);
      if (ports.includes(port)) found.set(f[9], port);
    }
  }
  return found;
}

function pidsOwning(inodes) {
  const pids = new Map();
  if (inodes.size === 0) return pids;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds;
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target;
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1])) pids.set(Number(pid), inodes.get(m[1]));
    }
  }
  return pids;
}

function uidOfUser(name) {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name) return Number(f[2]);
    }
  } catch {
    // no passwd
  }
  return undefined;
}

function processUid(pid) {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function killPackagedEtcd() {
  const pids = pidsOwning(listeningInodes(PACKAGE_PORTS));
  const etcdUid = uidOfUser('etcd');
  for (const [pid, port] of pids) {
    let exe = '';
    try {
      exe = fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // exited meanwhile, or not ours to read
    }
    if (exe !== '/usr/bin/etcd') {
      log(`note: port ${port} is used by pid ${pid} (${exe || 'unknown'}); tests use random ports, leaving it alone`);
      continue;
    }
    const uid = processUid(pid);
    if (etcdUid === undefined || uid !== etcdUid) {
      log(`WARNING: /usr/bin/etcd pid ${pid} (uid ${uid}) listens on ${port}; it is not the package's service, leaving it alone`);
      continue;
    }
    log(`stopping the packaged etcd service process ${pid} listening on ${port}`);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    for (let i = 0; i < 50 && alive(pid); i++) sleepMs(100);
    if (alive(pid)) {
      log(`pid ${pid} ignored SIGTERM for 5 s; sending SIGKILL`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

function main() {
  let b = binaries();
  if (!b.etcd || !b.etcdctl) {
    log(`missing: ${[!b.etcd && 'etcd', !b.etcdctl && 'etcdctl'].filter(Boolean).join(', ')}; installing ${PACKAGES.join(' ')}`);
    install();
    b = binaries();
    if (!b.etcd || !b.etcdctl) fail('etcd/etcdctl still not found after installing the packages.');
  }
  checkVersions(b);
  stopService();
  killPackagedEtcd();
  log('ok');
}

main();
