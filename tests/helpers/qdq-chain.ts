import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { int, ints, model, vi, type NodeSpec } from '../importer/model-builder.js';
import { fourBitProto } from './quant-contrib-cases.js';
import { tensorProto } from './ort-single-node.js';
import { Rng } from './random.js';

/**
 * Statically quantized conv chains as onnxruntime's quantizer writes a CNN, for the int8 kernel suites
 * (tests/webgpu/qdq-packed.test.ts, tests/webgpu/qdq-conv-int4.test.ts).
 */

/** The weights of every conv: int8 (the default), uint8, or 4 bits (opset 21); as8 writes 4-bit values as 8-bit types. */
export interface ChainWeights {
  type?: 'int8' | 'uint8' | 'int4' | 'uint4';
  as8?: boolean;
}

export interface ConvSpec {
  kind: 'conv';
  out: number;
  k: number;
  stride?: number;
  pad?: number;
  dil?: number;
  group?: number;
  act?: 'relu' | 'clip';
}
/** The residual sum of the previous layer's output and layer `from`'s (same shape). */
export interface AddSpec {
  kind: 'add';
  from: number;
}
export type Layer = ConvSpec | AddSpec;

/**
 * mobilenet_v2's inverted residual on 7 channels (a partial word of channels): 1x1 -> 1x1 expand -> depthwise -> 1x1
 * + Add (QdqAdd), then a 3x3 conv.
 */
export const INVERTED_RESIDUAL: Layer[] = [
  { kind: 'conv', out: 7, k: 1 },
  { kind: 'conv', out: 18, k: 1, act: 'clip' },
  { kind: 'conv', out: 18, k: 3, pad: 1, group: 18, act: 'clip' },
  { kind: 'conv', out: 7, k: 1 },
  { kind: 'add', from: 0 },
  { kind: 'conv', out: 4, k: 3, pad: 1 },
];

/**
 * x [shape] float -> QuantizeLinear -> per layer DequantizeLinear -> Conv (int8 w per channel, int32 bias) (-> Relu |
 * Clip) -> QuantizeLinear, or DequantizeLinear x2 -> Add -> QuantizeLinear -> ... -> DequantizeLinear -> y, as
 * onnxruntime's quantizer writes a CNN. Zero points of the activations vary per layer, the weights' are 0 or not.
 */
export function chain(shape: number[], layers: Layer[], act: 'int8' | 'uint8', zwNonZero: boolean, seed = 3, weights: ChainWeights = {}): { bytes: Uint8Array; x: HostTensor; step: number } {
  const four = weights.type === 'int4' || weights.type === 'uint4';
  const signed = weights.type !== 'uint4' && weights.type !== 'uint8';
  // A 4-bit weight's initializers as INT4 / UINT4, or (as8) the same values as int8 / uint8: the twin model.
  const weightProto = (name: string, dims: number[], v: number[]) => (four && !weights.as8
    ? fourBitProto(name, signed, dims, v)
    : tensorProto(name, tensorFromNumbers(signed ? 'int8' : 'uint8', dims, v)));
  const [wlo, whi] = four ? (signed ? [-8, 7] : [0, 15]) : signed ? [-127, 127] : [0, 255];
  const zwMid = signed ? 0 : four ? 8 : 128;
  const zwSpread = four ? 3 : 9;
  const rng = new Rng(seed);
  const nodes: NodeSpec[] = [];
  const inits = new Map<string, HostTensor>();
  const protos: ReturnType<typeof fourBitProto>[] = [];
  const init = (name: string, t: HostTensor) => (inits.set(name, t), name);
  const [lo, hi] = act === 'uint8' ? [100, 150] : [-20, 20];
  const q = (name: string, scale: number) => [init(`${name}_s`, tensorFromNumbers('float32', [], [scale])), init(`${name}_z`, tensorFromNumbers(act, [], [rng.int(lo, hi)]))];
  let [xs, xz] = q('in', 0.02);
  nodes.push({ op: 'QuantizeLinear', inputs: ['x', xs!, xz!], outputs: ['q_in'], name: 'quant_in' });
  let cur = 'q_in';
  let C = shape[1]!;
  let step = 0.02;
  const outs: [string, string, string][] = [];
  layers.forEach((l, i) => {
    const p = `l${i}`;
    step = 0.03 + 0.01 * (i % 3);
    const [ys, yz] = q(p, step);
    let y = `${p}_f`;
    nodes.push({ op: 'DequantizeLinear', inputs: [cur, xs!, xz!], outputs: [`${p}_x`], name: `${p}_dq_x` });
    if (l.kind === 'add') {
      const [a, as, az] = outs[l.from]!;
      nodes.push({ op: 'DequantizeLinear', inputs: [a, as, az], outputs: [`${p}_r`], name: `${p}_dq_r` });
      nodes.push({ op: 'Add', inputs: [`${p}_x`, `${p}_r`], outputs: [y], name: `${p}_add` });
    } else {
      const g = l.group ?? 1;
      const [k, s, pad, d] = [l.k, l.stride ?? 1, l.pad ?? 0, l.dil ?? 1];
      const K = (C / g) * k * k;
      const wShape = [l.out, C / g, k, k];
      const n = wShape.reduce((a, b) => a * b, 1);
      protos.push(weightProto(`${p}_w`, wShape, Array.from({ length: n }, () => rng.int(wlo, whi))));
      const ws = Array.from({ length: l.out }, () => rng.uniform(0.5, 1.5) / (K * (four ? 3 : 40)));
      init(`${p}_ws`, tensorFromNumbers('float32', [l.out], ws));
      protos.push(weightProto(`${p}_wz`, [l.out], Array.from({ length: l.out }, () => zwMid + (zwNonZero ? rng.int(-zwSpread, zwSpread) : 0))));
      const bs = ws.map((v) => Math.fround(Number(inits.get(xs!)!.data[0]) * v));
      init(`${p}_bq`, tensorFromNumbers('int32', [l.out], bs.map((v) => Math.round(rng.uniform(-0.3, 0.3) / v))));
      init(`${p}_bs`, tensorFromNumbers('float32', [l.out], bs));
      nodes.push({ op: 'DequantizeLinear', inputs: [`${p}_w`, `${p}_ws`, `${p}_wz`], outputs: [`${p}_wf`], name: `${p}_dq_w`, attrs: [int('axis', 0)] });
      nodes.push({ op: 'DequantizeLinear', inputs: [`${p}_bq`, `${p}_bs`], outputs: [`${p}_bf`], name: `${p}_dq_b`, attrs: [int('axis', 0)] });
      nodes.push({
        op: 'Conv', inputs: [`${p}_x`, `${p}_wf`, `${p}_bf`], outputs: [y], name: `${p}_conv`,
        attrs: [ints('kernel_shape', [k, k]), ints('strides', [s, s]), ints('pads', [pad, pad, pad, pad]), ints('dilations', [d, d]), int('group', g)],
      });
      if (l.act) {
        const bounds = l.act === 'clip' ? [init(`${p}_lo`, tensorFromNumbers('float32', [], [0])), init(`${p}_hi`, tensorFromNumbers('float32', [], [0.6]))] : [];
        nodes.push({ op: l.act === 'relu' ? 'Relu' : 'Clip', inputs: [y, ...bounds], outputs: [`${p}_a`], name: `${p}_act` });
        y = `${p}_a`;
      }
      C = l.out;
    }
    nodes.push({ op: 'QuantizeLinear', inputs: [y, ys!, yz!], outputs: [`${p}_q`], name: `${p}_quant` });
    [cur, xs, xz] = [`${p}_q`, ys!, yz!];
    outs.push([cur, xs, xz]);
  });
  nodes.push({ op: 'DequantizeLinear', inputs: [cur, xs!, xz!], outputs: ['y'], name: 'dq_out' });
  const bytes = model({
    opset: four ? 21 : 13,
    nodes,
    inputs: [vi('x', 1, shape)],
    outputs: [vi('y', 1)],
    initializers: [...[...inits].map(([name, t]) => tensorProto(name, t)), ...protos],
  });
  const x = tensorFromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)));
  return { bytes, x, step };
}

