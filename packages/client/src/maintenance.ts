/** The Maintenance service: status and hashKV (both idempotent, so they fail over). */
import type { ConnectionPool } from './connection';
import { fromWire, int64ToWire } from './int64';
import { decodeHeader } from './ops';
import type { CallOptions, Int64Input, ResponseHeader } from './types';
import type { WireHashKVResponse, WireStatusResponse } from './wire';

const READ = { idempotent: true } as const;

export interface StatusResult {
  header: ResponseHeader;
  /** Server version, e.g. "3.4.23". */
  version: string;
  dbSize: bigint;
  /** Member ID of the current leader (0n when there is none). */
  leader: bigint;
  raftIndex: bigint;
  raftTerm: bigint;
  raftAppliedIndex: bigint;
  errors: string[];
  dbSizeInUse: bigint;
  isLearner: boolean;
}

export interface HashKVResult {
  header: ResponseHeader;
  /** Hash of the key-value store up to the revision (uint32). */
  hash: number;
  compactRevision: bigint;
}

export class Maintenance {
  constructor(private readonly pool: ConnectionPool) {}

  /** Status of the member that answers (the active endpoint). */
  async status(options: CallOptions = {}): Promise<StatusResult> {
    const r = await this.pool.unary<object, WireStatusResponse>('maintenance', 'Status', {}, READ, options);
    return {
      header: decodeHeader(r.header),
      version: r.version,
      dbSize: fromWire(r.dbSize),
      leader: fromWire(r.leader),
      raftIndex: fromWire(r.raftIndex),
      raftTerm: fromWire(r.raftTerm),
      raftAppliedIndex: fromWire(r.raftAppliedIndex),
      errors: r.errors ?? [],
      dbSizeInUse: fromWire(r.dbSizeInUse),
      isLearner: !!r.isLearner,
    };
  }

  /** Hash of the KV store at `revision` (0 or absent: latest), for consistency checks between members. */
  async hashKV(revision: Int64Input = 0, options: CallOptions = {}): Promise<HashKVResult> {
    const req = { revision: int64ToWire(revision, 'revision') };
    const r = await this.pool.unary<typeof req, WireHashKVResponse>('maintenance', 'HashKV', req, READ, options);
    return { header: decodeHeader(r.header), hash: r.hash >>> 0, compactRevision: fromWire(r.compact_revision) };
  }
}
