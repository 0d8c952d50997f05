import { describe, expect, it, vi } from 'vitest';
import { FineTuner } from '../../sdk/node.js';
import { heldSet, range, session, trainSet } from './fine-tuner-helpers.js';

/** The frozen trunk runs once per example per fit() call when features are cached, on every batch otherwise. */
const trunkRows = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../sdk/fine-tuner/backend.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../sdk/fine-tuner/backend.js')>();
  return {
    ...real,
    runTrunk: (...args: Parameters<typeof real.runTrunk>) => {
      trunkRows.count += args[2];
      return real.runTrunk(...args);
    },
  };
});

describe('FineTuner trunk-feature cache', () => {
  const data = trainSet(range(100));
  const validation = heldSet(range(30));

  it('runs the trunk once per example, then only the tail', async () => {
    const s = await session();
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 } });
    trunkRows.count = 0;
    const r = await tuner.fit(data, { epochs: 4, batchSize: 16, validation });
    expect(trunkRows.count).toBe(100 + 30);
    expect(r.cachedFeatureBytes).toBe(130 * 64 * 4);
    await s.release();
  });

  it('with cacheFeatures: false runs it for every batch of every epoch (and every validation pass)', async () => {
    const s = await session();
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 }, cacheFeatures: false });
    trunkRows.count = 0;
    await tuner.fit(data, { epochs: 4, batchSize: 16, validation });
    expect(trunkRows.count).toBe(4 * (100 + 30));
    await s.release();
  });
});
