/**
 * The reference: a real etcd (Debian's etcd-server 3.4.x) on loopback.
 *
 * Goal: a fresh single-member etcd per test file, as the oracle for differential tests and
 * as the stand-in target that validates the harness itself (DIFF_TARGET=etcd).
 *
 * Method: spawn /usr/bin/etcd (or $ETCD_BIN) with a temp data dir, a unique name and free
 * client/peer ports (proc.ts); ready when `GET /health` on the client URL answers
 * {"health":"true"} (served only once the member has a leader and has applied its first
 * entries). Stopping is SIGTERM then SIGKILL; destroy() also removes the data dir.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { Member, MemberSpec } from './proc';

export const ETCD_BIN = process.env.ETCD_BIN ?? (fs.existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : 'etcd');

export function httpGet(url: string, timeoutMs = 1000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function healthProbe(m: Member): Promise<boolean> {
  const r = await httpGet(`${m.clientUrl}/health`);
  return r.status === 200 && /"health"\s*:\s*"true"/.test(r.body);
}

export interface EtcdOptions {
  extraArgs?: string[];
  readyTimeoutMs?: number;
  dataDir?: string;
}

export function etcdMember(opts: EtcdOptions = {}): Member {
  const spec: MemberSpec = {
    kind: 'etcd',
    command: [ETCD_BIN],
    // zap logs to stderr: one JSON line per event, captured for failure messages.
    extraArgs: ['--logger=zap', '--log-outputs=stderr', ...(opts.extraArgs ?? [])],
    probe: healthProbe,
    readyTimeoutMs: opts.readyTimeoutMs,
    namePrefix: 'etcd',
    dataDir: opts.dataDir,
  };
  return new Member(spec);
}

/** Start a fresh etcd and wait until it is healthy. */
export async function startEtcd(opts: EtcdOptions = {}): Promise<Member> {
  return etcdMember(opts).start();
}
