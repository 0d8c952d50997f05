import { describe, expect, it } from 'vitest';
import type { Attr, Graph } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { buildBackward } from '../../runtime/train/autodiff.js';
import { attachLoss, type LossOptions, type LossSpec } from '../../runtime/train/losses.js';
import { runTrainGraphCpu } from '../../runtime/train/run-cpu.js';
import { checkGradients, n, randomTensor, Rng } from './grad-check.js';
import { TORCH } from './torch-reference.js';

const L = TORCH.losses;
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);
const shapeOf = (x: unknown): number[] => (Array.isArray(x) ? [x.length, ...shapeOf(x[0])] : []);
const f32 = (x: unknown) => tensorFromNumbers('float32', shapeOf(x), flat(x));
const i64 = (x: unknown) => tensorFromNumbers('int64', shapeOf(x), flat(x));

/** Loss and d loss / d logits through attachLoss + autodiff, on a one-node model (logits -> Identity -> y). */
function lossAndGrad(logits: HostTensor, target: HostTensor, spec: LossSpec & LossOptions): { loss: number; grad: number[] } {
  const model: Graph = {
    name: 'm', inputs: [{ name: 'x', dtype: 'float32', shape: logits.shape }], outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: {}, nodes: [n('Identity', ['x'], ['y'])], values: {},
  };
  const { graph, loss, target: tName } = attachLoss(model, spec, spec);
  const bw = buildBackward(graph, { loss, wrt: ['x'] });
  const feeds = { x: logits, [tName]: target };
  const out = runTrainGraphCpu(bw.forward, feeds);
  const grads = runTrainGraphCpu(bw.backward, Object.fromEntries(bw.saved.map((v) => [v, out[v] ?? feeds[v]!])));
  return { loss: tensorToNumbers(out[loss]!)[0]!, grad: Array.from(tensorToNumbers(grads[bw.grads.x!]!)) };
}

describe(`losses vs torch ${TORCH.torch}`, () => {
  const cases: [string, () => [HostTensor, HostTensor, LossSpec & LossOptions]][] = [
    ['ce', () => [f32(L.logits), i64(L.labels), { kind: 'cross-entropy' }]],
    ['ce_smooth', () => [f32(L.logits), i64(L.labels), { kind: 'cross-entropy', labelSmoothing: 0.15 }]],
    ['ce_sum', () => [f32(L.logits), i64(L.labels), { kind: 'cross-entropy', reduction: 'sum' }]],
    ['ce_ignore', () => [f32(L.logits), i64([1, -100, 0, 2]), { kind: 'cross-entropy', labelSmoothing: 0.1 }]],
    ['ce_probs', () => [f32(L.logits), f32(L.probs), { kind: 'cross-entropy', targets: 'probabilities', labelSmoothing: 0.05 }]],
    ['ce_kdim', () => [f32(L.logits3), i64(L.labels3), { kind: 'cross-entropy', labelSmoothing: 0.2 }]],
    ['bce', () => [f32(L.logits), f32(L.binary), { kind: 'bce-with-logits' }]],
    ['bce_sum', () => [f32(L.logits), f32(L.binary), { kind: 'bce-with-logits', reduction: 'sum' }]],
    ['mse', () => [f32(L.logits), f32(L.binary), { kind: 'mse' }]],
  ];
  for (const [name, make] of cases) {
    it(name, () => {
      const want = L.cases.find((c) => c.name === name)!;
      const [x, t, spec] = make();
      const got = lossAndGrad(x, t, spec);
      expect(got.loss).toBeCloseTo(want.loss, 5);
      flat(want.grad).forEach((w, i) => expect(got.grad[i]!, `grad[${i}]`).toBeCloseTo(w, 6));
    });
  }

  it('cross-entropy with every position ignored is NaN (0/0), as torch', () => {
    const got = lossAndGrad(f32(L.logits), i64([-100, -100, -100, -100]), { kind: 'cross-entropy' });
    expect(got.loss).toBeNaN();
  });

  it('rejects class indices out of range', () => {
    expect(() => lossAndGrad(f32(L.logits), i64([1, 5, 0, 2]), { kind: 'cross-entropy' })).toThrow(/outside \[0, 5\)/);
  });
});

describe('loss gradients by finite differences', () => {
  const rng = new Rng(5);
  const str = (value: string): Attr => ({ type: 'string', value });
  const fl = (value: number): Attr => ({ type: 'float', value });
  const ce = (attrs: Record<string, Attr>, target: HostTensor, shape: number[]) =>
    checkGradients({
      inputs: { x: [shape, randomTensor(rng, 'float32', shape, { lo: -2, hi: 2 })], t: [target.shape, target] },
      nodes: [n('CrossEntropyLoss', ['x', 't'], ['l'], attrs, 'edgekit.train')],
      output: 'l',
      lossIsOutput: true,
      wrt: ['x'],
    });
  it('CrossEntropyLoss, class indices, label smoothing', () => ce({ label_smoothing: fl(0.1) }, i64([2, 0, 1]), [3, 4]));
  it('CrossEntropyLoss, K-dim, sum', () => ce({ reduction: str('sum') }, i64([[0, 2], [1, 1]]), [2, 3, 2]));
  it('CrossEntropyLoss, probabilities', () => ce({ label_smoothing: fl(0.2) }, f32([[0.2, 0.8, 0], [0.5, 0.25, 0.25]]), [2, 3]));
  it('BCEWithLogitsLoss', () =>
    checkGradients({
      inputs: { x: [[3, 2], randomTensor(rng, 'float32', [3, 2], { lo: -3, hi: 3 })], t: [[3, 2], f32([[1, 0], [0, 1], [0.3, 0.9]])] },
      nodes: [n('BCEWithLogitsLoss', ['x', 't'], ['l'], {}, 'edgekit.train')],
      output: 'l',
      lossIsOutput: true,
      wrt: ['x'],
    }));
});
