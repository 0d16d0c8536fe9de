/**
 * `coord cluster up`: a local cluster on loopback in one command, to try replication and
 * failover. Ports follow etcd's Procfile (member i listens for clients on <i>2379 and for
 * peers on <i>2380: 2379, 22379, 32379, ...). Each member is a real `coord server`
 * process; their output is prefixed with the member's name. Ctrl-C stops them all; the
 * data stays in --data-dir, so the next `cluster up` restarts the same cluster.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Command, Flags } from '@oclif/core';

const portFor = (i: number, base: number): number => (i === 1 ? base : Number(`${i}${base}`));

export default class ClusterUp extends Command {
  static override summary = 'Starts a local multi-member coord cluster on loopback (Ctrl-C stops it)';
  static override examples = [
    '<%= config.bin %> cluster up',
    '<%= config.bin %> cluster up --size 5 --data-dir /tmp/c5',
  ];
  static override flags = {
    size: Flags.integer({ description: 'number of members (1 to 5)', default: 3, min: 1, max: 5 }),
    'data-dir': Flags.string({ description: 'directory holding one data dir per member', default: './cluster.coord' }),
    'heartbeat-interval': Flags.integer({ description: 'passed to every member (ms)', default: 100 }),
    'election-timeout': Flags.integer({ description: 'passed to every member (ms)', default: 1000 }),
    'client-ports': Flags.string({ description: 'comma-separated client ports, one per member (default 2379,22379,32379,...)' }),
    'peer-ports': Flags.string({ description: 'comma-separated peer ports, one per member (default 2380,22380,32380,...)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ClusterUp);
    const ports = (flag: 'client-ports' | 'peer-ports', base: number): number[] => {
      const given = flags[flag];
      if (given === undefined) return Array.from({ length: flags.size }, (_, k) => portFor(k + 1, base));
      const list = given.split(',').map((p) => Number(p.trim()));
      if (list.length !== flags.size || list.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
        this.error(`--${flag} needs ${flags.size} port numbers (one per member), got ${JSON.stringify(given)}`, { exit: 1 });
      }
      return list;
    };
    const clientPorts = ports('client-ports', 2379);
    const peerPorts = ports('peer-ports', 2380);
    const members = Array.from({ length: flags.size }, (_, k) => ({
      name: `n${k + 1}`,
      client: `http://127.0.0.1:${clientPorts[k]}`,
      peer: `http://127.0.0.1:${peerPorts[k]}`,
    }));
    const initialCluster = members.map((m) => `${m.name}=${m.peer}`).join(',');
    const serverMain = require.resolve('@coord/server/dist/main.js');
    const children: ChildProcess[] = [];
    let stopping = false;
    const stopAll = (signal: NodeJS.Signals): void => {
      stopping = true;
      for (const c of children) if (c.exitCode === null) c.kill(signal);
    };
    for (const m of members) {
      const args = [
        serverMain,
        '--name', m.name,
        '--data-dir', path.join(flags['data-dir'], m.name),
        '--listen-client-urls', m.client,
        '--advertise-client-urls', m.client,
        '--listen-peer-urls', m.peer,
        '--initial-advertise-peer-urls', m.peer,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', 'coord-local-cluster',
        '--initial-cluster-state', 'new',
        '--heartbeat-interval', String(flags['heartbeat-interval']),
        '--election-timeout', String(flags['election-timeout']),
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const prefix = (chunk: Buffer): string =>
        chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => `${m.name} | ${l}\n`)
          .join('');
      child.stdout!.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
      child.stderr!.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
      child.on('exit', (code, signal) => {
        process.stdout.write(`${m.name} | exited (${signal ?? `code ${code}`})\n`);
        if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(stopping ? 0 : 1);
      });
    }
    const endpoints = members.map((m) => m.client.replace('http://', '')).join(',');
    this.log(`cluster of ${flags.size}: ${members.map((m) => `${m.name} ${m.client}`).join(', ')}`);
    this.log(`try: coord --endpoints=${endpoints} endpoint status -w table`);
    this.log(`     kill the leader's process (or Ctrl-Z it) and watch the others elect a new one`);
    process.on('SIGINT', () => stopAll('SIGTERM'));
    process.on('SIGTERM', () => stopAll('SIGTERM'));
    await new Promise<never>(() => undefined);
  }
}
