/**
 * Goal: the Raft core keeps its safety properties under every fault the simulator injects
 * and makes progress once faults stop (checkers: simulator.ts). Method: the first share of
 * the seed batch (batch.ts); `SIM_SEED=N` replays seed N.
 */
import { defineSimBatch } from './batch';
import { runSeed } from './simulator';

describe('deterministic simulation', () => {
  defineSimBatch(0);

  test('the same seed replays exactly', () => {
    expect(runSeed(7)).toEqual(runSeed(7));
  });
});
