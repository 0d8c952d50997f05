import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import type { SessionValue } from '../../sdk/values.js';
import { allClose } from '../helpers/compare.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';
import { dataPositionModel, optionalIoModel, ortCases, seqIoModel } from '../helpers/sequence-models.js';
import { int, model, vi } from '../importer/model-builder.js';
import { seqVi } from '../helpers/sequence-models.js';

/**
 * Sequence and optional values on the CPU reference: every sequence/optional op against onnxruntime-node (models
 * with tensor inputs and outputs, which is all onnxruntime-node takes), then the public API with sequence and
 * optional inputs and outputs (arrays of Tensors, null), its metadata and its typed errors.
 */

describe('sequence and optional ops: CPU reference vs onnxruntime-node', () => {
  for (const c of ortCases()) {
    it(c.name, async () => {
      const [ours, ref] = await Promise.all([runModelCpu(c.bytes, c.feeds), runModelOrt(c.bytes, c.feeds)]);
      expect(Object.keys(ours).sort()).toEqual(Object.keys(ref).sort());
      for (const [name, t] of Object.entries(ref)) {
        const r = allClose(ours[name] as typeof t, t, { rtol: 1e-6, atol: 1e-7 });
        expect(r.ok, `${name}: ${r.message}`).toBe(true);
      }
    });
  }
});

const f32 = (shape: number[], values: number[]) => new Tensor('float32', Float32Array.from(values), shape);
const data = async (t: SessionValue) => Array.from((await (t as Tensor).getData()) as Float32Array, Number);

describe('export', () => {
  it('exportOnnx keeps sequence and optional kinds, Optional\'s type attribute and SequenceEmpty\'s dtype; the re-imported model runs the same', async () => {
    for (const bytes of [seqIoModel(), optionalIoModel()]) {
      const a = await importOnnx(bytes);
      const b = await importOnnx(exportOnnx(a.graph));
      expect(b.graph.inputs).toEqual(a.graph.inputs);
      expect(b.graph.outputs.map((o) => [o.name, o.kind, o.dtype])).toEqual(a.graph.outputs.map((o) => [o.name, o.kind, o.dtype]));
    }
    for (const c of ortCases(8).slice(3)) {
      const again = exportOnnx((await importOnnx(c.bytes)).graph);
      const [x, y] = await Promise.all([runModelCpu(c.bytes, c.feeds), runModelOrt(again, c.feeds)]);
      for (const [name, t] of Object.entries(y)) expect(allClose(x[name] as typeof t, t).ok, name).toBe(true);
    }
  });

  it('SequenceEmpty keeps its element type (int64 here): inserting an int64 tensor is fine, a float one a DTypeError', async () => {
    const m = (elem: number) =>
      model({
        opset: 13,
        nodes: [
          { op: 'SequenceEmpty', inputs: [], outputs: ['e'], attrs: [int('dtype', 7)] },
          { op: 'SequenceInsert', inputs: ['e', 't'], outputs: ['s'] },
          { op: 'ConcatFromSequence', inputs: ['s'], outputs: ['y'], attrs: [int('axis', 0)] },
        ],
        inputs: [vi('t', elem, [2])],
        outputs: [vi('y', elem)],
      });
    const s = await InferenceSession.create(m(7), { backend: 'cpu' });
    const y = (await s.run({ t: new Tensor('int64', BigInt64Array.of(4n, 5n), [2]) })).y!;
    expect(Array.from((await y.getData()) as BigInt64Array, Number)).toEqual([4, 5]);
    await expect(InferenceSession.create(m(1), { backend: 'cpu' })).rejects.toThrow(DTypeError);
  });
});

describe('sequences and optionals through InferenceSession (cpu)', () => {
  it('takes a sequence as an array of Tensors and returns sequences as arrays; one plan serves every length', async () => {
    const s = await InferenceSession.create(seqIoModel(), { backend: 'cpu' });
    expect(s.inputMetadata[0]).toEqual({ name: 'seq', isTensor: false, type: 'float32', shape: ['n', 3], kind: 'sequence' });
    expect(s.inputMetadata[1]).toMatchObject({ name: 't', isTensor: true, kind: 'tensor' });
    expect(s.outputMetadata[0]).toMatchObject({ name: 'seq_out', isTensor: false, kind: 'sequence' });
    const t = f32([1, 3], [7, 8, 9]);
    for (const seq of [[], [f32([2, 3], [1, 2, 3, 4, 5, 6])], [f32([1, 3], [1, 2, 3]), f32([3, 3], [0, 0, 0, 1, 1, 1, 2, 2, 2])]]) {
      const out = await s.run<Record<string, SessionValue>>({ seq, t });
      const elems = out.seq_out as Tensor[];
      expect(Array.isArray(elems)).toBe(true);
      expect(elems.map((e) => e.dims)).toEqual([[1, 3], ...seq.map((e) => e.dims)]);
      expect(await data(elems[0]!)).toEqual([7, 8, 9]);
      expect(Number(((await (out.len as Tensor).getData()) as BigInt64Array)[0])).toBe(seq.length + 1);
      expect((out.cat as Tensor).dims).toEqual([1 + seq.reduce((n, e) => n + e.dims[0]!, 0), 3]);
    }
    await s.release();
  });

  it('takes an optional as a Tensor or null and returns it the same way', async () => {
    const s = await InferenceSession.create(optionalIoModel(), { backend: 'cpu' });
    expect(s.inputMetadata[0]).toEqual({ name: 'maybe', isTensor: false, type: 'float32', shape: [2], kind: 'optional-tensor' });
    const some = await s.run<Record<string, SessionValue>>({ maybe: f32([2], [1.5, -2]) });
    expect(Boolean(((await (some.has as Tensor).getData()) as Uint8Array)[0])).toBe(true);
    expect(await data(some.same!)).toEqual([1.5, -2]);
    const none = await s.run<Record<string, SessionValue>>({ maybe: null });
    expect(Boolean(((await (none.has as Tensor).getData()) as Uint8Array)[0])).toBe(false);
    expect(none.same).toBeNull();
    await s.release();
  });

  it('refuses values of the wrong kind with typed errors', async () => {
    const s = await InferenceSession.create(seqIoModel(), { backend: 'cpu' });
    const t = f32([1, 3], [1, 2, 3]);
    await expect(s.run({ seq: t, t })).rejects.toThrow(InvalidArgumentError);
    await expect(s.run({ seq: t, t })).rejects.toThrow(/sequence.*array of Tensors/);
    await expect(s.run({ seq: [t], t: [t] })).rejects.toThrow(InvalidArgumentError);
    await expect(s.run({ seq: null, t })).rejects.toThrow(/only for optional inputs/);
    await expect(s.run({ seq: [new Tensor('int32', Int32Array.of(1, 2, 3), [1, 3])], t })).rejects.toThrow(DTypeError);
    await expect(s.run({ seq: [t, 'x' as unknown as Tensor], t })).rejects.toThrow(/element 1 must be a Tensor/);
    await expect(s.run({ seq: [f32([2, 2], [1, 2, 3, 4])], t })).rejects.toThrow(ShapeError); // Concat of [1,3] and [2,2]
    await s.release();
    const o = await InferenceSession.create(optionalIoModel(), { backend: 'cpu' });
    await expect(o.run({ maybe: [f32([2], [1, 2])] })).rejects.toThrow(/cannot be fed an array/);
    await expect(o.run({ maybe: f32([3], [1, 2, 3]) })).rejects.toThrow(ShapeError);
    await o.release();
  });

  it('a sequence fed to a tensor op is a DTypeError at load; positions out of range are InvalidArgumentErrors at run', async () => {
    const bad = model({ opset: 13, nodes: [{ op: 'Relu', inputs: ['seq'], outputs: ['y'] }], inputs: [seqVi('seq', 1, [3])], outputs: [vi('y', 1)] });
    await expect(InferenceSession.create(bad, { backend: 'cpu' })).rejects.toThrow(DTypeError);
    const s = await InferenceSession.create(dataPositionModel(), { backend: 'cpu' });
    // Row 2 has the largest sum: ArgMax picks it on the CPU.
    const out = await s.run({ x: f32([3, 4], [0, 0, 0, 1, 1, 1, 1, 1, 5, 5, 5, 5]) });
    expect(await data(out.row!)).toEqual([5, 5, 5, 5]);
    await s.release();
    const at = model({
      opset: 13,
      nodes: [{ op: 'SequenceAt', inputs: ['seq', 'p'], outputs: ['y'] }],
      inputs: [seqVi('seq', 1, [2]), vi('p', 7, [])],
      outputs: [vi('y', 1)],
    });
    const a = await InferenceSession.create(at, { backend: 'cpu' });
    const p = (v: number) => new Tensor('int64', BigInt64Array.of(BigInt(v)), []);
    const seq = [f32([2], [1, 2]), f32([2], [3, 4])];
    expect(await data((await a.run({ seq, p: p(-1) })).y!)).toEqual([3, 4]);
    await expect(a.run({ seq, p: p(2) })).rejects.toThrow(InvalidArgumentError);
    await expect(a.run({ seq, p: p(2) })).rejects.toThrow(/position 2 is out of range for a sequence of 2/);
    await a.release();
    const split = model({
      opset: 13,
      nodes: [{ op: 'SplitToSequence', inputs: ['x'], outputs: ['s'], attrs: [int('axis', 2)] }],
      inputs: [vi('x', 1, [2, 2])],
      outputs: [seqVi('s', 1)],
    });
    await expect(InferenceSession.create(split, { backend: 'cpu' })).rejects.toThrow(/axis/);
  });
});
