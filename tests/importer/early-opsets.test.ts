import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { UnsupportedOpError } from '../../runtime/errors.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { randomTensor, Rng } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { float, int, ints, model, nodeModel, P, str, vi, type PAttr, type ValueSpec } from './model-builder.js';

/**
 * Opsets 1..6, which onnxruntime no longer runs: expected values come from the operator definitions of the time,
 * computed here by hand. Each imported model runs on the CPU backend, and exported (opset 21) in onnxruntime-node.
 */

const rng = new Rng(3);
const rand = (shape: number[]) => randomTensor(rng, 'float32', shape, { lo: -2, hi: 2 });
const feed = (name: string, value: HostTensor): ValueSpec => ({ name, value });
const init = (name: string, value: HostTensor): ValueSpec => ({ name, value, as: 'init' });
const at = (t: HostTensor, ...idx: number[]) => {
  let flat = 0;
  idx.forEach((v, d) => (flat = flat * t.shape[d]! + v));
  return Number(t.data[flat]);
};
const T = P.AttributeProto.AttributeType;

/** y[idx] = f(idx) over `shape`, as a float32 tensor. */
function build(shape: number[], f: (...idx: number[]) => number): HostTensor {
  const values: number[] = [];
  const walk = (prefix: number[]) => {
    if (prefix.length === shape.length) return void values.push(f(...prefix));
    for (let i = 0; i < shape[prefix.length]!; i++) walk([...prefix, i]);
  };
  walk([]);
  return tensorFromNumbers('float32', shape, values);
}

async function expectResult(bytes: Uint8Array, feeds: Record<string, HostTensor>, want: HostTensor, output = 'y') {
  const m = await importOnnx(bytes);
  const cpu = runGraphCpu(m.graph, feeds)[output]!;
  expect(allClose(cpu, want, { rtol: 1e-5, atol: 1e-6 })).toEqual({ ok: true });
  const ort = (await runModelOrt(exportOnnx(m.graph), feeds))[output]!;
  expect(allClose(ort, want, { rtol: 1e-5, atol: 1e-6 })).toEqual({ ok: true });
  return m;
}

const one = (op: string, opset: number, inputs: ValueSpec[], attrs: PAttr[] = [], elemType = 1) =>
  nodeModel({ op, opset, attrs, inputs, outputs: [{ name: 'y', elemType }] });

describe('binary ops with broadcast/axis (opsets 1..6)', () => {
  const a = rand([2, 3, 4]);

  it('Add-6 broadcast=1 axis=1 aligns B [3] with A\'s axis 1', async () => {
    const b = rand([3]);
    const { bytes, feeds } = one('Add', 6, [feed('a', a), init('b', b)], [int('broadcast', 1), int('axis', 1)]);
    const m = await expectResult(bytes, feeds, build([2, 3, 4], (i, j, k) => at(a, i, j, k) + at(b, j)));
    expect(m.graph.nodes.map((n) => n.op)).toEqual(['Unsqueeze', 'Add']);
  });

  it('Mul-1 broadcast=1 axis=0 with consumed_inputs, B [2, 3] on A [2, 3, 4]', async () => {
    const b = rand([2, 3]);
    const { bytes, feeds } = one('Mul', 1, [feed('a', a), feed('b', b)], [int('broadcast', 1), int('axis', 0), ints('consumed_inputs', [0, 0])]);
    await expectResult(bytes, feeds, build([2, 3, 4], (i, j, k) => at(a, i, j, k) * at(b, i, j)));
  });

  it('Sub-6 broadcast=1 without axis is suffix (numpy) alignment; Div-6 broadcast=0 takes equal shapes', async () => {
    const b = rand([4]);
    let r = one('Sub', 6, [feed('a', a), feed('b', b)], [int('broadcast', 1)]);
    await expectResult(r.bytes, r.feeds, build([2, 3, 4], (i, j, k) => at(a, i, j, k) - at(b, k)));
    const c = randomTensor(rng, 'float32', [2, 3, 4], { lo: 0.5, hi: 2 });
    r = one('Div', 6, [feed('a', a), feed('c', c)]);
    await expectResult(r.bytes, r.feeds, build([2, 3, 4], (i, j, k) => at(a, i, j, k) / at(c, i, j, k)));
  });

  it('negative axis counts from the end of A', async () => {
    const b = rand([3]);
    const { bytes, feeds } = one('Add', 6, [feed('a', a), feed('b', b)], [int('broadcast', 1), int('axis', -2)]);
    await expectResult(bytes, feeds, build([2, 3, 4], (i, j, k) => at(a, i, j, k) + at(b, j)));
  });

  it('an axis on inputs of unknown rank is reported as unsupported, naming the node', async () => {
    const bytes = model({
      opset: 6,
      nodes: [{ op: 'Add', inputs: ['a', 'b'], outputs: ['y'], name: 'legacy_add', attrs: [int('broadcast', 1), int('axis', 1)] }],
      inputs: [vi('a', 1), vi('b', 1, [3])], outputs: [vi('y')],
    });
    const err = (await importOnnx(bytes).catch((e: unknown) => e)) as UnsupportedOpError;
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect(err.nodes).toEqual([expect.objectContaining({ op: 'Add', opset: 6, node: 'legacy_add', reason: expect.stringMatching(/unknown rank/) })]);
  });
});

describe('other forms of opsets 1..6', () => {
  it('PRelu-6 applies a [C] slope per channel of [N, C, H, W]', async () => {
    const x = rand([2, 3, 2, 2]);
    const slope = tensorFromNumbers('float32', [3], [0.1, -0.5, 2]);
    const { bytes, feeds } = one('PRelu', 6, [feed('x', x), init('slope', slope)]);
    await expectResult(bytes, feeds, build([2, 3, 2, 2], (n, c, h, w) => {
      const v = at(x, n, c, h, w);
      return v < 0 ? v * at(slope, c) : v;
    }));
  });

  it('Relu-1 and Sum-1 drop consumed_inputs (an optimization hint)', async () => {
    const x = rand([5]);
    const r = one('Relu', 1, [feed('x', x)], [ints('consumed_inputs', [1])]);
    const m = await expectResult(r.bytes, r.feeds, build([5], (i) => Math.max(0, at(x, i))));
    expect(m.graph.nodes[0]!.attrs).toEqual({});
    const y = rand([5]);
    const s = one('Sum', 1, [feed('x', x), feed('z', y)], [ints('consumed_inputs', [0, 0])]);
    await expectResult(s.bytes, s.feeds, build([5], (i) => at(x, i) + at(y, i)));
  });

  it('Gemm-6 drops broadcast (C broadcast to [M, N] as in Gemm-7)', async () => {
    const a = rand([2, 3]);
    const b = rand([3, 4]);
    const c = rand([4]);
    const { bytes, feeds } = one('Gemm', 6, [feed('a', a), init('b', b), init('c', c)], [int('broadcast', 1), float('beta', 0.5)]);
    await expectResult(bytes, feeds, build([2, 4], (i, j) => [0, 1, 2].reduce((acc, k) => acc + at(a, i, k) * at(b, k, j), 0.5 * at(c, j))));
  });

  it('Cast-1 names its target type as a string', async () => {
    const x = tensorFromNumbers('float32', [4], [-2.7, -0.5, 0.5, 3.9]);
    const { bytes, feeds } = one('Cast', 1, [feed('x', x)], [str('to', 'INT32')], 6);
    const m = await importOnnx(bytes);
    expect(m.graph.nodes[0]!.attrs.to).toEqual({ type: 'int', value: 6 });
    // Cast truncates toward zero.
    expect(Array.from(runGraphCpu(m.graph, feeds).y!.data as Int32Array)).toEqual([-2, 0, 0, 3]);
  });

  it('Reshape-1 takes its shape as an attribute; Concat-1 defaults to axis 1; Pad-1 calls pads "paddings"', async () => {
    const x = rand([2, 6]);
    let r = one('Reshape', 1, [feed('x', x)], [ints('shape', [3, -1])]);
    await expectResult(r.bytes, r.feeds, build([3, 4], (i, j) => Number(x.data[i * 4 + j])));
    const y = rand([2, 1]);
    r = one('Concat', 1, [feed('x', x), feed('z', y)]);
    await expectResult(r.bytes, r.feeds, build([2, 7], (i, j) => (j < 6 ? at(x, i, j) : at(y, i, 0))));
    r = one('Pad', 1, [feed('x', x)], [ints('paddings', [1, 0, 0, 2]), float('value', 9)]);
    await expectResult(r.bytes, r.feeds, build([3, 8], (i, j) => (i >= 1 && j < 6 ? at(x, i - 1, j) : 9)));
  });

  it('BatchNormalization-6 runs with is_test=1 and is refused in training mode (is_test absent or 0)', async () => {
    const x = rand([2, 3, 2]);
    const [s, b, mean] = [rand([3]), rand([3]), rand([3])];
    const v = randomTensor(rng, 'float32', [3], { lo: 0.5, hi: 2 });
    const bn = (attrs: PAttr[]) => one('BatchNormalization', 6, [feed('x', x), init('s', s), init('b', b), init('m', mean), init('v', v)], attrs);
    const { bytes, feeds } = bn([int('is_test', 1), float('epsilon', 1e-3)]);
    await expectResult(bytes, feeds, build([2, 3, 2], (n, c, w) => ((at(x, n, c, w) - at(mean, c)) / Math.sqrt(at(v, c) + 1e-3)) * at(s, c) + at(b, c)));
    for (const attrs of [[], [int('is_test', 0)]]) {
      await expect(importOnnx(bn(attrs).bytes)).rejects.toThrow(/is_test=0 \(training mode/);
    }
  });

  it('an attribute without a type in an IR v3 model (untyped, as old exporters wrote it)', async () => {
    const x = rand([2, 3]);
    const { bytes, feeds } = one('Softmax', 1, [feed('x', x)], [{ name: 'axis', i: 0 }]);
    // Softmax-1 with axis 0 coerces [2, 3] to [1, 6]: one softmax over all six values.
    const e = Array.from(x.data as Float32Array).map(Math.exp);
    const sum = e.reduce((p, q) => p + q, 0);
    expect(P.ModelProto.decode(bytes).graph!.node![0]!.attribute![0]!.type).toBe(T.UNDEFINED);
    await expectResult(bytes, feeds, build([2, 3], (i, j) => e[i * 3 + j]! / sum));
  });
});
