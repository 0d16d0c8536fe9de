/**
 * Flags shared by the `coord bench` commands (named and defaulted as in etcd's `benchmark`)
 * and their validation into RunOptions.
 */
import { Flags } from '@oclif/core';
import { parseEndpoints, TRANSPORTS, TransportKind } from './conn';
import { checkKeySpace } from './keys';
import type { RunOptions } from './runner';

export const DEFAULT_TOTAL = 10_000;

export const commonFlags = {
  endpoints: Flags.string({ description: 'comma-separated gRPC endpoints (host:port or http://host:port)', default: '127.0.0.1:2379' }),
  clients: Flags.integer({ description: 'concurrent requests in flight (closed-loop clients)', default: 1, min: 1 }),
  conns: Flags.integer({ description: 'gRPC connections (separate HTTP/2 channels); clients are spread over them', default: 1, min: 1 }),
  total: Flags.integer({ description: `total requests [default: ${DEFAULT_TOTAL} unless --duration]`, min: 1 }),
  duration: Flags.string({ description: 'run for this long instead of --total, e.g. 10s, 500ms, 1m30s' }),
  'dial-timeout': Flags.string({ description: 'how long to wait for every connection to be up', default: '5s' }),
  transport: Flags.string({
    description: 'h2: built-in lean HTTP/2 client (default); grpc-js: @grpc/grpc-js (about 10x more client CPU per request)',
    options: [...TRANSPORTS],
    default: 'h2',
  }),
};

export const keyFlags = {
  'key-size': Flags.integer({ description: 'key size in bytes', default: 8, min: 1 }),
  'val-size': Flags.integer({ description: 'value size in bytes', default: 8, min: 0 }),
  'key-space-size': Flags.integer({ description: 'number of distinct keys', default: 1, min: 1 }),
};

export const sequentialKeysFlag = {
  'sequential-keys': Flags.boolean({ description: 'use sequential keys (i % key-space-size) instead of random ones', default: false }),
};

/** Go-like durations: "10s", "500ms", "1m30s", "2h", or a bare number of seconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let ms = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    ms += Number(m[1]) * unitMs[m[2]];
    matched = re.lastIndex;
  }
  if (matched !== s.length || s.length === 0) throw new Error(`invalid duration "${text}" (use e.g. 10s, 500ms, 1m30s)`);
  return ms;
}

export interface CommonValues {
  endpoints: string;
  clients: number;
  conns: number;
  total?: number;
  duration?: string;
  'dial-timeout': string;
  transport: string;
}

export function runOptions(f: CommonValues): RunOptions {
  if (f.total !== undefined && f.duration !== undefined) throw new Error('--total and --duration are mutually exclusive');
  const durationMs = f.duration !== undefined ? parseDuration(f.duration) : undefined;
  if (durationMs !== undefined && durationMs <= 0) throw new Error('--duration must be positive');
  return {
    endpoints: parseEndpoints(f.endpoints),
    clients: f.clients,
    conns: f.conns,
    total: durationMs === undefined ? (f.total ?? DEFAULT_TOTAL) : undefined,
    durationMs,
    dialTimeoutMs: parseDuration(f['dial-timeout']),
    transport: f.transport as TransportKind,
  };
}

export interface KeyValues {
  'key-size': number;
  'val-size': number;
  'key-space-size': number;
}

export function checkKeys(f: KeyValues): void {
  checkKeySpace(f['key-space-size'], f['key-size']);
}
