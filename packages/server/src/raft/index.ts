/**
 * The pure Raft consensus core. Imports nothing from Node and no npm package: time,
 * randomness, disk and network are the driver's (DESIGN.md §3.1).
 */
export * from './types';
export * from './errors';
export { SeededRand, type Rand } from './rand';
export { encodeConfChange, decodeConfChange, confChangeRefusal, applyToConfState } from './confchange';
export { MemoryStorage, type LogStorage, type InitialState } from './storage';
export { RawNode, type Ready, type SnapshotStatus } from './rawnode';
export type { RaftConfig, Status, BasicStatus, ProgressStatus } from './raft';
