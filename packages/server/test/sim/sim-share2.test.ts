/**
 * Goal: as sim-share1.test.ts. Method: the second share of the seed batch (batch.ts).
 */
import { defineSimBatch } from './batch';

describe('deterministic simulation', () => {
  defineSimBatch(1);
});
