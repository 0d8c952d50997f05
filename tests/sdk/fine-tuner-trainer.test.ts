import { describe, expect, it } from 'vitest';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { DisposedTensorError, InvalidArgumentError } from '../../runtime/errors.js';
import { adam, asyncTrainer, createTrainingProgram, CpuTrainer, sgd, splitGraph, type TrainerOptions } from '../../runtime/train/index.js';
import { mlp, toyData } from '../train/model-fixtures.js';

/** asyncTrainer: the CPU reference behind the backend-neutral Trainer interface the FineTuner drives. */
function setup(opts: TrainerOptions) {
  const split = splitGraph(mlp(7, { hidden: 16 }), 'h');
  const data = toyData(3, 32);
  const h = runGraphCpu(split.trunk, { x: data.x })['h']!;
  const program = createTrainingProgram(split.tail, { loss: { kind: 'cross-entropy' }, trainable: split.trainable });
  const cpu = new CpuTrainer(program, opts);
  return { cpu, trainer: asyncTrainer(cpu), batch: { h, [program.target]: data.labels } };
}

describe('asyncTrainer(CpuTrainer)', () => {
  it('steps like the CpuTrainer it wraps, and saveState/loadState resume bit-exactly', async () => {
    const a = setup({ optimizer: adam({ lr: 0.05 }) });
    const ref = setup({ optimizer: adam({ lr: 0.05 }) });
    for (let k = 0; k < 3; k++) expect(await a.trainer.trainStep(a.batch)).toEqual(ref.cpu.trainStep(ref.batch));
    expect(a.trainer.stepCount).toBe(3);
    const state = await a.trainer.saveState();
    expect(state.slots).toHaveLength(2);
    expect(state).toMatchObject({ step: 3, attempts: 3 });

    const more = await a.trainer.trainStep(a.batch);
    const b = setup({ optimizer: adam({ lr: 0.05 }) });
    await b.trainer.loadState(state);
    expect(b.trainer.stepCount).toBe(3);
    expect(await b.trainer.trainStep(b.batch)).toEqual(more);
    expect(await b.trainer.parameters()).toEqual(await a.trainer.parameters());
    // The state is a copy: stepping on did not change it.
    expect(state.step).toBe(3);
    // evaluate without the target computes the predictions only.
    expect(Object.keys(await b.trainer.evaluate({ h: b.batch.h }))).toEqual(['logits']);
  });

  it('rejects a state of another layout or optimizer with a clear message, writing nothing', async () => {
    const { trainer } = setup({ optimizer: adam({ lr: 0.05 }) });
    const good = await trainer.saveState();
    const before = await trainer.parameters();
    const L = good.params.length;
    const cases: [unknown, RegExp][] = [
      [{ ...good, params: new Float32Array(L + 64) }, new RegExp(`holds ${L + 64} parameter floats, but this program's layout has ${L}`)],
      [{ ...good, slots: [good.slots[0]] }, /1 optimizer slot\(s\), but adam here keeps 2/],
      [{ ...good, slots: [good.slots[0], new Float32Array(3)] }, new RegExp(`slot 1 must be a Float32Array of ${L} floats`)],
      [{ ...good, step: -1 }, /step must be a non-negative integer/],
      [{ ...good, step: 5, attempts: 2 }, /attempts \(2\) cannot be less than step \(5\)/],
      [{ ...good, params: Array.from(good.params) }, /params must be a Float32Array/],
    ];
    for (const [state, msg] of cases) {
      const err = await trainer.loadState(state as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(msg);
    }
    expect(await trainer.parameters()).toEqual(before);
    const { trainer: plain } = setup({ optimizer: sgd({ lr: 0.1 }) });
    await expect(plain.loadState(good)).rejects.toThrow(/2 optimizer slot\(s\), but sgd here keeps 0/);
  });

  it('is disposed idempotently', async () => {
    const { trainer, batch } = setup({ optimizer: sgd({ lr: 0.1 }) });
    trainer.dispose();
    trainer.dispose();
    await expect(trainer.trainStep(batch)).rejects.toThrow(DisposedTensorError);
    expect(() => trainer.stepCount).toThrow(DisposedTensorError);
  });
});
