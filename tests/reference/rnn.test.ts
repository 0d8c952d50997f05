import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { runNodeCpu } from '../../runtime/backends/cpu/executor.js';
import { DEFAULT_MAX_ELEMENTS, tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode, runOrtNode, singleNodeModel } from '../helpers/ort-single-node.js';
import { allClose } from '../helpers/compare.js';
import { runModelCpu } from '../helpers/run-model.js';
import { InferenceSession } from '../../sdk/node.js';
import { randomTensor, Rng } from '../helpers/random.js';

/**
 * RNN / GRU / LSTM on the CPU reference against onnxruntime-node over directions, optional inputs, sequence_lens,
 * activations with alpha/beta, clip, linear_before_reset and input_forget; layout 1 against layout 0 transposed;
 * shape inference on symbolic dims; and the typed errors for inconsistent weights and bad sequence_lens.
 */

type Op = 'RNN' | 'GRU' | 'LSTM';
const GATES: Record<Op, number> = { RNN: 1, GRU: 3, LSTM: 4 };

interface Case {
  op: Op;
  direction?: 'forward' | 'reverse' | 'bidirectional';
  T: number;
  B: number;
  I: number;
  H: number;
  bias?: boolean;
  lens?: number[];
  initialH?: boolean;
  initialC?: boolean;
  peepholes?: boolean;
  attrs?: Record<string, Attr>;
}

/** Inputs X, W, R, B, sequence_lens, initial_h, initial_c, P (undefined where omitted; trailing ones trimmed). */
function makeInputs(rng: Rng, c: Case): (HostTensor | undefined)[] {
  const D = c.direction === 'bidirectional' ? 2 : 1;
  const G = GATES[c.op];
  const r = (shape: number[], scale = 0.6) => randomTensor(rng, 'float32', shape, { lo: -scale, hi: scale });
  const ins: (HostTensor | undefined)[] = [
    r([c.T, c.B, c.I], 1.5),
    r([D, G * c.H, c.I]),
    r([D, G * c.H, c.H]),
    c.bias ? r([D, 2 * G * c.H]) : undefined,
    c.lens ? tensorFromNumbers('int32', [c.B], c.lens) : undefined,
    c.initialH ? r([D, c.B, c.H], 1) : undefined,
  ];
  if (c.op === 'LSTM') ins.push(c.initialC ? r([D, c.B, c.H], 1) : undefined, c.peepholes ? r([D, 3 * c.H]) : undefined);
  while (ins.length && ins[ins.length - 1] === undefined) ins.pop();
  return ins;
}

function attrsOf(c: Case): Record<string, Attr> {
  return { hidden_size: attr(c.H), ...(c.direction ? { direction: attr(c.direction) } : {}), ...c.attrs };
}

const acts = (names: string[]): Attr => ({ type: 'strings', value: names });
const outputsOf = (op: Op) => (op === 'LSTM' ? 3 : 2);

describe('RNN/GRU/LSTM CPU reference matches onnxruntime', () => {
  const rng = new Rng(2024);
  const cases: Case[] = [];
  for (const op of ['RNN', 'GRU', 'LSTM'] as Op[]) {
    for (const direction of ['forward', 'reverse', 'bidirectional'] as const) {
      cases.push({ op, direction, T: 5, B: 3, I: 4, H: 6 });
      cases.push({ op, direction, T: 4, B: 2, I: 3, H: 5, bias: true, initialH: true, initialC: true, peepholes: true });
      cases.push({ op, direction, T: 6, B: 4, I: 2, H: 3, bias: true, lens: [6, 3, 1, 4], initialH: true, initialC: true });
    }
    cases.push({ op, T: 3, B: 2, I: 3, H: 4, bias: true, attrs: { clip: attr(0.4, true) } });
    cases.push({ op, T: 1, B: 1, I: 1, H: 1, bias: true });
  }
  cases.push({ op: 'GRU', direction: 'bidirectional', T: 5, B: 2, I: 3, H: 4, bias: true, initialH: true, attrs: { linear_before_reset: attr(1) } });
  cases.push({ op: 'GRU', T: 4, B: 3, I: 2, H: 5, bias: true, lens: [2, 4, 1], attrs: { linear_before_reset: attr(1) } });
  cases.push({ op: 'LSTM', direction: 'bidirectional', T: 4, B: 2, I: 3, H: 4, bias: true, peepholes: true, attrs: { input_forget: attr(1) } });
  cases.push({ op: 'LSTM', direction: 'bidirectional', T: 3, B: 3, I: 2, H: 3, bias: true, lens: [3, 0, 1], initialH: true, initialC: true });
  // Activations with parameters, one list per direction, consumed in order by the functions that take them.
  cases.push({
    op: 'RNN', direction: 'bidirectional', T: 4, B: 2, I: 3, H: 4, bias: true,
    attrs: { activations: acts(['LeakyRelu', 'HardSigmoid']), activation_alpha: attr([0.3, 0.25], true), activation_beta: attr([0.45], true) },
  });
  cases.push({
    op: 'GRU', direction: 'bidirectional', T: 3, B: 2, I: 3, H: 3, bias: true,
    attrs: { activations: acts(['HardSigmoid', 'ScaledTanh', 'Sigmoid', 'Affine']), activation_alpha: attr([0.3, 1.5, 0.7], true), activation_beta: attr([0.4, 0.8, 0.1], true) },
  });
  cases.push({
    op: 'LSTM', T: 3, B: 2, I: 3, H: 3, bias: true,
    attrs: { activations: acts(['Sigmoid', 'Elu', 'Softsign']), activation_alpha: attr([0.8], true) },
  });
  cases.push({
    op: 'LSTM', direction: 'reverse', T: 3, B: 2, I: 3, H: 3, bias: true,
    attrs: { activations: acts(['HardSigmoid', 'Softplus', 'Relu']), activation_alpha: attr([0.3], true), activation_beta: attr([0.5], true) },
  });
  cases.push({
    op: 'RNN', T: 4, B: 2, I: 3, H: 4, bias: true,
    attrs: { activations: acts(['ThresholdedRelu']), activation_alpha: attr([0.1], true) },
  });
  cases.push({ op: 'RNN', T: 4, B: 2, I: 3, H: 4, bias: true, attrs: { activations: acts(['Relu']) } });

  for (const c of cases) {
    const label = `${c.op} ${c.direction ?? 'forward'} T${c.T} B${c.B} I${c.I} H${c.H}` +
      `${c.bias ? ' +B' : ''}${c.lens ? ` lens[${c.lens}]` : ''}${c.initialH ? ' +h0' : ''}${c.peepholes ? ' +P' : ''}` +
      `${c.attrs ? ' ' + Object.keys(c.attrs).join(',') : ''}`;
    it(label, async () => {
      const inputs = makeInputs(rng, c);
      expect(await compareWithOrt(c.op, attrsOf(c), inputs, { outputs: outputsOf(c.op), rtol: 1e-4, atol: 1e-5 })).toEqual([]);
    });
  }
});

/** Moves axis `from` of a 3- or 4-D float32 tensor into batch-first order (layout 0 → layout 1 for X, Y, states). */
function permute(t: HostTensor, perm: number[]): HostTensor {
  const shape = perm.map((p) => t.shape[p]!);
  const src = t.data as Float32Array;
  const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(src.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < out.length; k++) {
    let off = 0;
    for (let d = 0; d < shape.length; d++) off += idx[d]! * strides[perm[d]!]!;
    out[k] = src[off]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { dtype: 'float32', shape, data: out };
}

describe('layout 1 (batch first) equals layout 0 transposed', () => {
  const rng = new Rng(7);
  for (const op of ['RNN', 'GRU', 'LSTM'] as Op[]) {
    it(`${op} bidirectional with sequence_lens and initial state`, () => {
      const c: Case = { op, direction: 'bidirectional', T: 5, B: 3, I: 2, H: 4, bias: true, lens: [5, 2, 3], initialH: true, initialC: true, peepholes: true };
      const ins = makeInputs(rng, c);
      const n = outputsOf(op);
      const ref = runCpuNode(op, attrsOf(c), ins, n);
      const batchFirst = [...ins];
      batchFirst[0] = permute(ins[0]!, [1, 0, 2]); // X [T, B, I] → [B, T, I]
      batchFirst[5] = permute(ins[5]!, [1, 0, 2]); // initial_h [D, B, H] → [B, D, H]
      if (op === 'LSTM') batchFirst[6] = permute(ins[6]!, [1, 0, 2]);
      const got = runCpuNode(op, { ...attrsOf(c), layout: attr(1) }, batchFirst, n);
      expect(got[0]).toEqual(permute(ref[0]!, [2, 0, 1, 3])); // Y [T, D, B, H] → [B, T, D, H]
      for (let i = 1; i < n; i++) expect(got[i]).toEqual(permute(ref[i]!, [1, 0, 2]));
    });
  }
});

describe('sequence_lens and omitted outputs', () => {
  const rng = new Rng(99);
  it('Y is zero past each row length; Y_h is the state at the last valid step', () => {
    const c: Case = { op: 'GRU', direction: 'bidirectional', T: 4, B: 2, I: 2, H: 3, bias: true, lens: [4, 2] };
    const ins = makeInputs(rng, c);
    const [y, yh] = runCpuNode('GRU', attrsOf(c), ins, 2);
    const Y = y!.data as Float32Array;
    const at = (t: number, d: number, b: number, j: number) => Y[((t * 2 + d) * 2 + b) * 3 + j]!;
    for (const t of [2, 3]) for (const d of [0, 1]) for (let j = 0; j < 3; j++) expect(at(t, d, 1, j)).toBe(0);
    // forward: last valid step t = 1; reverse: the last step it runs is t = 0.
    for (let j = 0; j < 3; j++) {
      expect((yh!.data as Float32Array)[(0 * 2 + 1) * 3 + j]).toBe(at(1, 0, 1, j));
      expect((yh!.data as Float32Array)[(1 * 2 + 1) * 3 + j]).toBe(at(0, 1, 1, j));
    }
  });

  it('omitted outputs (empty names) leave the named ones unchanged', () => {
    const c: Case = { op: 'LSTM', T: 3, B: 2, I: 2, H: 3, bias: true, initialH: true, initialC: true };
    const ins = makeInputs(rng, c);
    const full = runCpuNode('LSTM', attrsOf(c), ins, 3);
    const node = { name: 'n', op: 'LSTM', domain: '', inputs: ins.map((t, i) => (t ? `in${i}` : '')), outputs: ['', '', 'yc'], attrs: attrsOf(c) };
    const got = runNodeCpu(node, ins, { maxElements: DEFAULT_MAX_ELEMENTS });
    expect(got[2]).toEqual(full[2]);
    const onlyY = runNodeCpu({ ...node, outputs: ['y'] }, ins, { maxElements: DEFAULT_MAX_ELEMENTS });
    expect(onlyY).toEqual([full[0]]);
  });

  it('a length larger than the sequence is a typed error at run', () => {
    const c: Case = { op: 'RNN', T: 3, B: 2, I: 2, H: 3, lens: [3, 4] };
    expect(() => runCpuNode('RNN', attrsOf(c), makeInputs(rng, c), 2)).toThrow(InvalidArgumentError);
    expect(() => runCpuNode('RNN', attrsOf(c), makeInputs(rng, c), 2)).toThrow(/sequence_lens\[1\] is 4/);
  });
});

describe('RNN shape inference', () => {
  const f = (shape: (number | string)[]) => ({ dtype: 'float32' as const, shape });
  it('symbolic batch and sequence dims flow to Y, Y_h, Y_c in both layouts', () => {
    const ins = [f(['T', 'N', 8]), f([2, 16, 8]), f([2, 16, 4]), f([2, 32])];
    expect(inferNode('LSTM', { hidden_size: attr(4), direction: attr('bidirectional') }, ins, 3).map((o) => o.shape)).toEqual([
      ['T', 2, 'N', 4], [2, 'N', 4], [2, 'N', 4],
    ]);
    const bf = [f(['N', 'T', 8]), f([1, 12, 8]), f([1, 12, 4])];
    expect(inferNode('GRU', { layout: attr(1) }, bf, 2).map((o) => o.shape)).toEqual([['N', 'T', 1, 4], ['N', 1, 4]]);
  });

  it('weights inconsistent with hidden_size are a ShapeError at load', () => {
    expect(() => inferNode('LSTM', { hidden_size: attr(5) }, [f(['T', 'N', 8]), f([1, 16, 8]), f([1, 16, 4])], 3)).toThrow(ShapeError);
    expect(() => inferNode('GRU', { hidden_size: attr(4) }, [f(['T', 'N', 8]), f([1, 12, 8]), f([1, 12, 5])], 2)).toThrow(/R has shape \[1, 12, 5\]/);
    expect(() => inferNode('RNN', { direction: attr('bidirectional') }, [f(['T', 'N', 8]), f([1, 4, 8]), f([1, 4, 4])], 2)).toThrow(/W has shape/);
    expect(() => inferNode('RNN', {}, [f(['T', 'N', 8]), f([1, 4, 7]), f([1, 4, 4])], 2)).toThrow(ShapeError);
    expect(() => inferNode('LSTM', {}, [f(['T', 'N', 8]), f([1, 16, 8]), f([1, 16, 4]), f([1, 30])], 3)).toThrow(/B has shape/);
    expect(() => inferNode('LSTM', {}, [f(['T', 'N', 8]), f([1, 16, 8]), f([1, 16, 4]), undefined, undefined, undefined, undefined, f([1, 8])], 3)).toThrow(/P has shape/);
  });

  it('rejects unknown activations, bad directions and mixed types', () => {
    const ins = [f(['T', 'N', 8]), f([1, 4, 8]), f([1, 4, 4])];
    expect(() => inferNode('RNN', { activations: acts(['Gelu']) }, ins, 2)).toThrow(InvalidArgumentError);
    expect(() => inferNode('RNN', { direction: attr('sideways') }, ins, 2)).toThrow(/direction/);
    expect(() => inferNode('RNN', { activations: acts(['Tanh']), direction: attr('bidirectional') }, [f(['T', 'N', 8]), f([2, 4, 8]), f([2, 4, 4])], 2)).not.toThrow();
    expect(() => inferNode('RNN', {}, [f(['T', 'N', 8]), { dtype: 'float16', shape: [1, 4, 8] }, f([1, 4, 4])], 2)).toThrow(DTypeError);
  });
});

describe('importer and load-time checks', () => {
  const rng = new Rng(5);
  it('opset 1-6 forms (output_sequence) import as the newest form', async () => {
    for (const op of ['RNN', 'GRU', 'LSTM'] as Op[]) {
      const c: Case = { op, direction: 'bidirectional', T: 3, B: 2, I: 2, H: 3, bias: true, initialH: true };
      const ins = makeInputs(rng, c);
      const feeds = Object.fromEntries(ins.flatMap((t, i) => (t ? [[`in${i}`, t]] : [])));
      const n = outputsOf(op);
      const newest = await runModelCpu(singleNodeModel(op, attrsOf(c), ins, { outputs: n, opset: 14 }), feeds);
      const old = await runModelCpu(singleNodeModel(op, { ...attrsOf(c), output_sequence: attr(1) }, ins, { outputs: n, opset: 6 }), feeds);
      expect(old).toEqual(newest);
      const ort = await runOrtNode(op, attrsOf(c), ins, { outputs: n, opset: 7 });
      for (let i = 0; i < n; i++) expect(allClose(old[`out${i}`]!, ort[i]!, { rtol: 1e-4, atol: 1e-5 }).ok).toBe(true);
    }
  });

  it('weights inconsistent with hidden_size fail InferenceSession.create with a ShapeError (tests/webgpu/rnn.test.ts: WebGPU)', async () => {
    const c: Case = { op: 'LSTM', T: 3, B: 2, I: 2, H: 4 };
    const ins = makeInputs(rng, c);
    const bytes = singleNodeModel('LSTM', { hidden_size: attr(5) }, ins, { outputs: 3, constants: [1, 2] });
    await expect(InferenceSession.create(bytes, { backend: 'cpu' })).rejects.toThrow(/LSTM W has shape \[1, 16, 2\]; it must be \[1, 20, 2\]/);
    await expect(InferenceSession.create(bytes, { backend: 'cpu' })).rejects.toThrow(ShapeError);
  });
});
