/**
 * Single-server membership changes (thesis §4.1: "adding or removing a single server at a
 * time" keeps any majority of the old configuration overlapping any majority of the new
 * one, so no joint consensus is needed), and their encoding in a `confChange` entry.
 *
 * Encoding (big-endian): u8 type (0 addNode, 1 removeNode, 2 addLearner), u64 nodeId,
 * then the context bytes.
 */
import { assert } from '../util/assert';
import { RaftError } from './errors';
import type { ConfChange, ConfChangeType, ConfState, NodeId } from './types';

const TYPE_CODES: Record<ConfChangeType, number> = { addNode: 0, removeNode: 1, addLearner: 2 };
const TYPES_BY_CODE: ConfChangeType[] = ['addNode', 'removeNode', 'addLearner'];

export function encodeConfChange(cc: ConfChange): Uint8Array {
  assert(cc.nodeId > 0n, 'conf change names a node');
  assert(cc.nodeId < 1n << 64n, 'node id fits in 64 bits');
  const out = new Uint8Array(9 + cc.context.byteLength);
  const view = new DataView(out.buffer);
  out[0] = TYPE_CODES[cc.type];
  view.setBigUint64(1, cc.nodeId);
  out.set(cc.context, 9);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength < 9) throw new RaftError('ERR_CONF_CHANGE_INVALID', `conf change entry of ${data.byteLength} bytes`);
  const type = TYPES_BY_CODE[data[0]];
  if (type === undefined) throw new RaftError('ERR_CONF_CHANGE_INVALID', `unknown conf change type ${data[0]}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nodeId = view.getBigUint64(1);
  return { type, nodeId, context: data.slice(9) };
}

/**
 * Check a change against the configuration it would apply to; returns a reason when it is
 * refused, null when it is valid. The leader checks at proposal time, every member checks
 * again at apply time (where an invalid change is a no-op, as etcd does).
 */
export function confChangeRefusal(cs: ConfState, cc: ConfChange): string | null {
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case 'addNode':
      return isVoter ? `node ${cc.nodeId} is already a voter` : null;
    case 'addLearner':
      if (isVoter) return `node ${cc.nodeId} is a voter (demotion is not supported)`;
      return isLearner ? `node ${cc.nodeId} is already a learner` : null;
    case 'removeNode':
      if (!isVoter && !isLearner) return `node ${cc.nodeId} is not a member`;
      if (isVoter && cs.voters.length === 1) return 'cannot remove the last voter';
      return null;
  }
}

/** The configuration after a (valid) change. Lists are kept sorted so configurations compare by value. */
export function applyToConfState(cs: ConfState, cc: ConfChange): ConfState {
  const refusal = confChangeRefusal(cs, cc);
  assert(refusal === null, `conf change is valid: ${refusal}`);
  const voters = cs.voters.filter((id) => id !== cc.nodeId);
  const learners = cs.learners.filter((id) => id !== cc.nodeId);
  if (cc.type === 'addNode') voters.push(cc.nodeId);
  if (cc.type === 'addLearner') learners.push(cc.nodeId);
  const out = { voters: sortIds(voters), learners: sortIds(learners) };
  assert(!out.voters.some((v) => out.learners.includes(v)), 'a node is a voter or a learner, not both');
  return out;
}

export function sortIds(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
