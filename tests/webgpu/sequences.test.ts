import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, UnsupportedOpError } from '../../sdk/node.js';
import type { SessionValue } from '../../sdk/values.js';
import { allClose } from '../helpers/compare.js';
import { runModelCpu, runModelWebGpu } from '../helpers/run-model.js';
import { dataLoopSequenceModel, dataPositionModel, optionalIoModel, ortCases, seqIoModel } from '../helpers/sequence-models.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { graphAttr, int, model, vi } from '../importer/model-builder.js';
import { seqVi } from '../helpers/sequence-models.js';

/**
 * Sequence and optional values on WebGPU through the public API, against the CPU reference. A GPU plan holds
 * tensors only: per fed layout (sequence lengths, optional presence) the graph is lowered into tensor ops when the
 * plan is made (ir/passes/sequences.ts, backends/webgpu/sequence-session.ts); a position computed from tensor data
 * is refused then with an UnsupportedOpError naming the node.
 */

beforeAll(async () => {
  await gpuForTests();
});

describe('sequence and optional ops on WebGPU vs the CPU reference', () => {
  for (const c of ortCases(11)) {
    it(c.name, async () => {
      const [gpu, cpu] = await Promise.all([runModelWebGpu(c.bytes, c.feeds), runModelCpu(c.bytes, c.feeds)]);
      expect(Object.keys(gpu).sort()).toEqual(Object.keys(cpu).sort());
      for (const [name, t] of Object.entries(cpu)) {
        const r = allClose(gpu[name] as typeof t & object, t as typeof t & object, { rtol: 1e-5, atol: 1e-6 });
        expect(r.ok, `${name}: ${r.message}`).toBe(true);
      }
    });
  }
});

const f32 = (shape: number[], values: number[]) => new Tensor('float32', Float32Array.from(values), shape);
const data = async (t: SessionValue) => Array.from((await (t as Tensor).getData()) as Float32Array, Number);

describe('sequences and optionals through InferenceSession (webgpu)', () => {
  it('plans per sequence length: the same session runs 0, 1 and 2 fed elements, outputs as arrays', async () => {
    const s = await InferenceSession.create(seqIoModel(), { backend: 'webgpu' });
    const cpu = await InferenceSession.create(seqIoModel(), { backend: 'cpu' });
    expect(s.inputMetadata).toEqual(cpu.inputMetadata);
    expect(s.outputMetadata).toEqual(cpu.outputMetadata);
    const t = f32([1, 3], [7, 8, 9]);
    const seqs = [[], [f32([2, 3], [1, 2, 3, 4, 5, 6])], [f32([1, 3], [1, 2, 3]), f32([3, 3], [0, 0, 0, 1, 1, 1, 2, 2, 2])]];
    for (const seq of [...seqs, seqs[1]!]) {
      const [g, c] = await Promise.all([s.run<Record<string, SessionValue>>({ seq, t }), cpu.run<Record<string, SessionValue>>({ seq, t })]);
      const ge = g.seq_out as Tensor[];
      const ce = c.seq_out as Tensor[];
      expect(ge.length).toBe(seq.length + 1);
      for (let i = 0; i < ce.length; i++) {
        expect(ge[i]!.dims).toEqual(ce[i]!.dims);
        expect(await data(ge[i]!)).toEqual(await data(ce[i]!));
      }
      expect(Number(((await (g.len as Tensor).getData()) as BigInt64Array)[0])).toBe(seq.length + 1);
      expect(await data(g.cat!)).toEqual(await data(c.cat!));
    }
    // The concatenation ran on the GPU: the plan's graph holds a Concat and no sequence op.
    const ops = s.report().nodes.map((n) => n.op);
    expect(ops).toContain('Concat');
    expect(ops.filter((op) => op.startsWith('Sequence'))).toEqual([]);
    await Promise.all([s.release(), cpu.release()]);
  });

  it('an optional input fed a Tensor or null, returned the same way', async () => {
    const s = await InferenceSession.create(optionalIoModel(), { backend: 'webgpu' });
    const some = await s.run<Record<string, SessionValue>>({ maybe: f32([2], [1.5, -2]) });
    expect(Boolean(((await (some.has as Tensor).getData()) as Uint8Array)[0])).toBe(true);
    expect(await data(some.same!)).toEqual([1.5, -2]);
    const none = await s.run<Record<string, SessionValue>>({ maybe: null });
    expect(Boolean(((await (none.has as Tensor).getData()) as Uint8Array)[0])).toBe(false);
    expect(none.same).toBeNull();
    await s.release();
  });

  it('a sequence position computed from tensor data is refused when planning (here at load: fixed input shapes), naming the node and why', async () => {
    const err = await InferenceSession.create(dataPositionModel(), { backend: 'webgpu' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    const u = err as UnsupportedOpError;
    expect(u.nodes.map((n) => [n.op, n.node])).toEqual([['SequenceAt', 'pick']]);
    expect(u.nodes[0]!.reason).toMatch(/position 'p' is computed from tensor data/);
    expect(u.message).toMatch(/backend: 'cpu'/);
  });
});

describe('load-time plan', () => {
  it('a model whose fixed-shape tensor inputs feed sequences is planned inside create: the report shows the lowered plan before any run', async () => {
    const c = ortCases(3)[0]!;
    const s = await InferenceSession.create(c.bytes, { backend: 'webgpu' });
    const ops = s.report().nodes.map((n) => n.op);
    expect(ops).toContain('Concat');
    expect(ops.some((op) => op.startsWith('Sequence') || op === 'SplitToSequence' || op === 'ConcatFromSequence')).toBe(false);
    expect(s.report().gpu?.dispatches).toBeGreaterThan(0);
    await s.release();
  });

  it('a SequenceMap body op without a WebGPU kernel is refused at load, naming the body node', async () => {
    // Strings have no WebGPU form: StringNormalizer runs on the CPU backend only.
    const body = { name: 'b', input: [vi('e', 8, [1])], output: [vi('o', 8, [1])], node: [{ opType: 'StringNormalizer', input: ['e'], output: ['o'], name: 'normalize_in_body' }] };
    const m = model({
      opset: 17,
      nodes: [
        { op: 'SplitToSequence', inputs: ['x'], outputs: ['s'], attrs: [int('axis', 0)] },
        { op: 'SequenceMap', inputs: ['s'], outputs: ['y'], attrs: [graphAttr('body', body)] },
      ],
      inputs: [vi('x', 8, [3])],
      outputs: [seqVi('y', 8)],
    });
    const err = await InferenceSession.create(m, { backend: 'webgpu' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect((err as UnsupportedOpError).nodes.map((n) => [n.op, n.node])).toEqual([['StringNormalizer', 'normalize_in_body']]);
    // The same model runs on the CPU backend.
    const cpu = await InferenceSession.create(m, { backend: 'cpu' });
    const out = await cpu.run<Record<string, SessionValue>>({ x: new Tensor('string', ['a', 'b', 'c'], [3]) });
    expect(await Promise.all((out.y as Tensor[]).map(async (t) => Array.from((await t.getData()) as string[])))).toEqual([['a'], ['b'], ['c']]);
    await cpu.release();
  });

  it('a sequence a Loop builds over a trip count computed from data is refused, naming its reader and the Loop (the CPU runs it)', async () => {
    const m = dataLoopSequenceModel();
    const x = f32([3], [1, 4, 2]);
    const cpu = await InferenceSession.create(m, { backend: 'cpu' });
    expect(await data((await cpu.run({ x })).y!)).toEqual([0, 1, 2, 3]);
    await cpu.release();
    const err = await InferenceSession.create(m, { backend: 'webgpu' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    const u = err as UnsupportedOpError;
    expect(u.nodes.map((n) => [n.op, n.node])).toEqual([['ConcatFromSequence', 'cat']]);
    expect(u.nodes[0]!.reason).toMatch(/input sequence 'seq' is not known when the plan is made \(it comes from Loop node 'loop'\)/);
  });

  it("preferredOutputLocation 'gpu-buffer' keeps a sequence output's computed elements on the GPU; an element two outputs share comes back on the CPU", async () => {
    const m = model({
      opset: 13,
      nodes: [
        { op: 'SplitToSequence', inputs: ['x'], outputs: ['rows'], attrs: [int('axis', 0), int('keepdims', 0)] },
        { op: 'SequenceAt', inputs: ['rows', 'zero'], outputs: ['r0'] },
        { op: 'SequenceConstruct', inputs: ['r0', 'r0'], outputs: ['twice'] },
      ],
      inputs: [vi('x', 1, [3, 2])],
      outputs: [seqVi('rows', 1, [2]), seqVi('twice', 1, [2])],
      initializers: [{ name: 'zero', dims: [], dataType: 7, int64Data: [0] }],
    });
    const x = f32([3, 2], [1, 2, 3, 4, 5, 6]);
    const s = await InferenceSession.create(m, { backend: 'webgpu', preferredOutputLocation: 'gpu-buffer' });
    const out = await s.run<Record<string, SessionValue>>({ x });
    const rows = out.rows as Tensor[];
    const twice = out.twice as Tensor[];
    expect(rows.map((t) => t.location)).toEqual(['gpu-buffer', 'gpu-buffer', 'gpu-buffer']);
    expect(await Promise.all(rows.map(data))).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(twice.map((t) => t.location)).toEqual(['cpu', 'cpu']);
    expect(await Promise.all(twice.map(data))).toEqual([[1, 2], [1, 2]]);
    // GPU-resident elements feed another session's sequence input as they are.
    const cat = await InferenceSession.create(
      model({ opset: 13, nodes: [{ op: 'ConcatFromSequence', inputs: ['seq'], outputs: ['y'], attrs: [int('axis', 0)] }], inputs: [seqVi('seq', 1, [2])], outputs: [vi('y', 1)] }),
      { backend: 'webgpu' },
    );
    expect(await data((await cat.run({ seq: [rows[2]!, rows[0]!] })).y!)).toEqual([5, 6, 1, 2]);
    for (const t of [...rows, ...twice]) t.dispose();
    await Promise.all([s.release(), cat.release()]);
  });
});
