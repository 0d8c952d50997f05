import onnx from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, ShapeError, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { singleNodeModel, tensorProto } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * RNN / GRU / LSTM on WebGPU through the public API (InferenceSession.create(bytes, { backend: 'webgpu' })), against
 * the CPU reference session and onnxruntime-node on the same model bytes. Batch and sequence axes are symbolic in the
 * model; weights are initializers; sequence_lens (where used) is a graph input fed at run time.
 */

type Op = 'RNN' | 'GRU' | 'LSTM';
const GATES: Record<Op, number> = { RNN: 1, GRU: 3, LSTM: 4 };
const P = onnx.onnx;

interface Spec {
  op: Op;
  direction?: 'forward' | 'reverse' | 'bidirectional';
  layout?: 0 | 1;
  I: number;
  H: number;
  bias?: boolean;
  seqLens?: boolean;
  initial?: boolean;
  peepholes?: boolean;
  /** Output names; '' omits that output. Default: all. */
  outputs?: string[];
  attrs?: onnx.onnx.IAttributeProto[];
  opset?: number;
}

const intAttr = (name: string, i: number): onnx.onnx.IAttributeProto => ({ name, type: P.AttributeProto.AttributeType.INT, i });
const floatAttr = (name: string, f: number): onnx.onnx.IAttributeProto => ({ name, type: P.AttributeProto.AttributeType.FLOAT, f });
const floatsAttr = (name: string, floats: number[]): onnx.onnx.IAttributeProto => ({ name, type: P.AttributeProto.AttributeType.FLOATS, floats });
const stringsAttr = (name: string, v: string[]): onnx.onnx.IAttributeProto => ({ name, type: P.AttributeProto.AttributeType.STRINGS, strings: v.map((s) => new TextEncoder().encode(s)) });

/** A one-node model: X (and sequence_lens, initial states) as inputs with symbolic batch/sequence dims. */
function model(rng: Rng, s: Spec): Uint8Array {
  const D = s.direction === 'bidirectional' ? 2 : 1;
  const G = GATES[s.op];
  const w = (shape: number[]) => randomTensor(rng, 'float32', shape, { lo: -0.5, hi: 0.5 });
  const inits: onnx.onnx.ITensorProto[] = [tensorProto('W', w([D, G * s.H, s.I])), tensorProto('R', w([D, G * s.H, s.H]))];
  if (s.bias) inits.push(tensorProto('B', w([D, 2 * G * s.H])));
  if (s.peepholes) inits.push(tensorProto('P', w([D, 3 * s.H])));
  const dim = (d: number | string) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d });
  const vi = (name: string, elemType: number, dims: (number | string)[]) => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map(dim) } } } });
  const bf = s.layout === 1;
  const inputs = [vi('X', 1, bf ? ['batch', 'seq', s.I] : ['seq', 'batch', s.I])];
  if (s.seqLens) inputs.push(vi('lens', 6, ['batch']));
  const state = bf ? ['batch', D, s.H] : [D, 'batch', s.H];
  if (s.initial) inputs.push(vi('h0', 1, state));
  if (s.initial && s.op === 'LSTM') inputs.push(vi('c0', 1, state));
  const nodeInputs = ['X', 'W', 'R', s.bias ? 'B' : '', s.seqLens ? 'lens' : '', s.initial ? 'h0' : ''];
  if (s.op === 'LSTM') nodeInputs.push(s.initial ? 'c0' : '', s.peepholes ? 'P' : '');
  while (nodeInputs[nodeInputs.length - 1] === '') nodeInputs.pop();
  const outs = s.outputs ?? (s.op === 'LSTM' ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h']);
  const attrs = [intAttr('hidden_size', s.H), ...(s.direction ? [{ name: 'direction', type: P.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(s.direction) }] : []),
    ...(s.layout ? [intAttr('layout', 1)] : []), ...(s.attrs ?? [])];
  return P.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: s.opset ?? 21 }],
    graph: {
      name: 'rnn',
      node: [{ opType: s.op, name: 'rnn0', input: nodeInputs, output: outs, attribute: attrs }],
      input: inputs,
      initializer: inits,
      output: outs.filter(Boolean).map((name) => ({ name })),
    },
  }).finish();
}

function feedsFor(rng: Rng, s: Spec, T: number, B: number, lens?: number[]): Record<string, HostTensor> {
  const D = s.direction === 'bidirectional' ? 2 : 1;
  const feeds: Record<string, HostTensor> = { X: randomTensor(rng, 'float32', s.layout === 1 ? [B, T, s.I] : [T, B, s.I], { lo: -1.5, hi: 1.5 }) };
  if (s.seqLens) feeds.lens = { dtype: 'int32', shape: [B], data: Int32Array.from(lens ?? Array.from({ length: B }, (_, b) => Math.max(1, T - (b % T)))) };
  const state = s.layout === 1 ? [B, D, s.H] : [D, B, s.H];
  if (s.initial) feeds.h0 = randomTensor(rng, 'float32', state);
  if (s.initial && s.op === 'LSTM') feeds.c0 = randomTensor(rng, 'float32', state);
  return feeds;
}

const toTensor = (t: HostTensor) => new Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);

async function runSession(session: InferenceSession, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)])));
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dtype: t.type, shape: [...t.dims], data: t.data } as HostTensor]));
}

async function runOrt(bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const s = await ort.InferenceSession.create(bytes);
  try {
    const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor(v.dtype as 'float32', v.data as Float32Array, v.shape)])));
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dtype: t.type, shape: [...t.dims], data: t.data } as HostTensor]));
  } finally {
    await s.release();
  }
}

function expectClose(got: Record<string, HostTensor>, want: Record<string, HostTensor>, what: string, tol = 1e-4): void {
  expect(Object.keys(got).sort(), what).toEqual(Object.keys(want).sort());
  for (const [k, e] of Object.entries(want)) {
    const r = allClose(got[k]!, e, { rtol: tol, atol: tol });
    expect(r.ok, `${what} ${k}: ${r.ok ? '' : r.message}`).toBe(true);
  }
}

beforeAll(async () => {
  await gpuForTests();
});

describe('RNN/GRU/LSTM on WebGPU match the CPU reference and onnxruntime', () => {
  const rng = new Rng(31);
  const specs: Spec[] = [];
  for (const op of ['RNN', 'GRU', 'LSTM'] as Op[]) {
    specs.push({ op, I: 3, H: 5 });
    specs.push({ op, direction: 'reverse', I: 4, H: 3, bias: true, initial: true, peepholes: true });
    specs.push({ op, direction: 'bidirectional', I: 2, H: 6, bias: true, seqLens: true, initial: true, peepholes: true });
    specs.push({ op, direction: 'bidirectional', layout: 1, I: 3, H: 4, bias: true, seqLens: true, initial: true });
  }
  specs.push({ op: 'GRU', direction: 'bidirectional', I: 3, H: 7, bias: true, seqLens: true, attrs: [intAttr('linear_before_reset', 1)] });
  specs.push({ op: 'LSTM', I: 3, H: 4, bias: true, peepholes: true, attrs: [intAttr('input_forget', 1), floatAttr('clip', 0.5)] });
  specs.push({ op: 'GRU', I: 3, H: 4, bias: true, attrs: [floatAttr('clip', 0.3)] });
  specs.push({
    op: 'LSTM', direction: 'bidirectional', I: 2, H: 3, bias: true,
    attrs: [stringsAttr('activations', ['HardSigmoid', 'Elu', 'Softsign', 'Sigmoid', 'ScaledTanh', 'Affine']), floatsAttr('activation_alpha', [0.3, 0.9, 1.2, 0.7]), floatsAttr('activation_beta', [0.45, 0.8, 0.2])],
  });
  specs.push({ op: 'RNN', direction: 'bidirectional', I: 2, H: 3, attrs: [stringsAttr('activations', ['LeakyRelu', 'ThresholdedRelu']), floatsAttr('activation_alpha', [0.2, 0.1])] });
  specs.push({ op: 'GRU', I: 2, H: 3, bias: true, attrs: [stringsAttr('activations', ['Sigmoid', 'Softplus'])] });
  specs.push({ op: 'RNN', I: 2, H: 3, bias: true, attrs: [stringsAttr('activations', ['Relu'])] });
  // Omitted optional outputs (empty names).
  specs.push({ op: 'LSTM', I: 3, H: 4, bias: true, outputs: ['', 'Y_h', ''] });
  specs.push({ op: 'GRU', direction: 'bidirectional', I: 3, H: 4, bias: true, outputs: ['Y', ''] });
  // An opset 7 model (no layout attribute).
  specs.push({ op: 'LSTM', direction: 'bidirectional', I: 3, H: 4, bias: true, seqLens: true, opset: 7 });

  for (const s of specs) {
    const label = `${s.op} ${s.direction ?? 'forward'}${s.layout ? ' layout1' : ''} I${s.I} H${s.H}${s.bias ? ' +B' : ''}${s.seqLens ? ' +lens' : ''}` +
      `${s.initial ? ' +init' : ''}${s.peepholes && s.op === 'LSTM' ? ' +P' : ''}${s.attrs ? ' ' + s.attrs.map((a) => a.name).join(',') : ''}` +
      `${s.outputs ? ` outputs[${s.outputs.join(',')}]` : ''}${s.opset ? ` opset${s.opset}` : ''}`;
    it(label, async () => {
      const bytes = model(rng, s);
      const gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
      const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
      try {
        // Three shapes through one session (the symbolic dims bind per run); batch 3 and 6 leave ragged row blocks.
        for (const [T, B] of [[5, 3], [2, 1], [3, 6]] as const) {
          const feeds = feedsFor(rng, s, T, B);
          const onCpu = await runSession(cpu, feeds);
          const onGpu = await runSession(gpu, feeds);
          expectClose(onGpu, onCpu, `gpu vs cpu T${T} B${B}`);
          // onnxruntime's CPU kernels refuse layout 1 ("Batchwise recurrent operations are not supported"); the CPU
          // reference's layout 1 is checked against layout 0 transposed in tests/reference/rnn.test.ts.
          if (s.layout === 1) continue;
          const want = await runOrt(bytes, feeds);
          expectClose(onCpu, want, `cpu T${T} B${B}`);
          expectClose(onGpu, want, `gpu vs ort T${T} B${B}`);
        }
      } finally {
        await gpu.release();
        await cpu.release();
      }
    });
  }

  it('float16 LSTM (weights packed two per u32 without shader-f16) matches the CPU reference', async () => {
    const f16 = (shape: number[], scale: number) => randomTensor(rng, 'float16', shape, { lo: -scale, hi: scale });
    const ins = [f16([4, 3, 3], 1.5), f16([2, 16, 3], 0.5), f16([2, 16, 4], 0.5), f16([2, 32], 0.5)];
    const bytes = singleNodeModel('LSTM', { hidden_size: { type: 'int', value: 4 }, direction: { type: 'string', value: 'bidirectional' } }, ins, { outputs: 3, constants: [1, 2, 3] });
    const gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
    const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
    try {
      const feeds = { in0: ins[0]! };
      const onGpu = await runSession(gpu, feeds);
      expect(onGpu.out0!.dtype).toBe('float16');
      expectClose(onGpu, await runSession(cpu, feeds), 'float16 gpu vs cpu', 2e-3);
    } finally {
      await gpu.release();
      await cpu.release();
    }
  });

  it('weights inconsistent with hidden_size are a ShapeError at load', async () => {
    const bytes = model(rng, { op: 'GRU', I: 3, H: 4 });
    // The same file with hidden_size 5: W [1, 12, 3] and R [1, 12, 4] no longer fit.
    const m = P.ModelProto.decode(bytes);
    m.graph!.node![0]!.attribute!.find((a) => a.name === 'hidden_size')!.i = 5;
    await expect(InferenceSession.create(P.ModelProto.encode(m).finish(), { backend: 'webgpu' })).rejects.toThrow(ShapeError);
  });

  it('a sequence_lens entry past the sequence length is a typed error at run', async () => {
    const s: Spec = { op: 'GRU', I: 2, H: 3, seqLens: true };
    const gpu = await InferenceSession.create(model(rng, s), { backend: 'webgpu' });
    try {
      await expect(runSession(gpu, feedsFor(rng, s, 3, 2, [3, 4]))).rejects.toThrow(ShapeError);
      await expect(runSession(gpu, feedsFor(rng, s, 3, 2, [3, 4]))).rejects.toThrow(/sequence_lens\[1\] is 4/);
      // The session still runs valid lengths afterwards.
      const ok = await runSession(gpu, feedsFor(rng, s, 3, 2, [3, 1]));
      expect(ok.Y!.shape).toEqual([3, 1, 2, 3]);
    } finally {
      await gpu.release();
    }
  });
});
