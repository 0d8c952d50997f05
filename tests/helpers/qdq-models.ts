import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { int, ints, model, vi, type NodeSpec, type PAttr } from '../importer/model-builder.js';
import { tensorProto } from './ort-single-node.js';
import { Rng } from './random.js';

/**
 * Small statically quantized (QDQ) models written directly, as onnxruntime's quantizer lays them out:
 * QuantizeLinear on activations, DequantizeLinear before every Conv/MatMul/Gemm input, int8 weights quantized per
 * output channel or per tensor, biases as DequantizeLinear(int32, x_scale * w_scale) or float. Used by the QDQ
 * rewrite tests (tests/webgpu/qdq-fusion.test.ts); the weights are random but fixed by the seed.
 */

export interface LayerSpec {
  kind: 'conv' | 'matmul' | 'gemm';
  /** Output channels (conv) or columns (matmul/gemm). */
  out: number;
  kernel?: number;
  stride?: number;
  pad?: number;
  group?: number;
  wType: 'int8' | 'uint8';
  perChannel: boolean;
  bias: 'none' | 'int32' | 'float';
  act: 'none' | 'relu' | 'clip';
  /** Gemm's B as [N, K]. */
  transB?: boolean;
  /** Output scale; the activation scale of the next layer. */
  yScale: number;
  /** The last layer's float output is the model's output (no QuantizeLinear after it: logits). */
  floatOut?: boolean;
}

export interface QdqModel {
  bytes: Uint8Array;
  feeds: Record<string, HostTensor>;
  /** Bytes the int8 weights would take as float32. */
  floatWeightBytes: number;
  /** Output quantization step (the last layer's y scale). */
  step: number;
}

/** x [inputShape] float -> Q (act type) -> layers -> DQ -> y float. */
export function qdqModel(inputShape: number[], layers: LayerSpec[], actType: 'uint8' | 'int8', seed = 7): QdqModel {
  const rng = new Rng(seed);
  const nodes: NodeSpec[] = [];
  const inits: HostTensor[] = [];
  const names: string[] = [];
  const init = (name: string, t: HostTensor) => (inits.push(t), names.push(name), name);
  const zpAct = actType === 'uint8' ? 128 : 0;
  let xScale = 0.02;
  let shape = [...inputShape];
  let floatWeightBytes = 0;
  init('x_scale', tensorFromNumbers('float32', [], [xScale]));
  init('x_zp', tensorFromNumbers(actType, [], [zpAct]));
  nodes.push({ op: 'QuantizeLinear', inputs: ['x', 'x_scale', 'x_zp'], outputs: ['x_q'], name: 'quant_in' });
  let cur = 'x_q';
  let curScale = 'x_scale';
  let curZp = 'x_zp';
  layers.forEach((l, i) => {
    const p = `l${i}`;
    nodes.push({ op: 'DequantizeLinear', inputs: [cur, curScale, curZp], outputs: [`${p}_x`], name: `${p}_dq_x` });
    const K = l.kind === 'conv' ? (shape[1]! / (l.group ?? 1)) * (l.kernel ?? 1) ** 2 : shape[shape.length - 1]!;
    const wShape = l.kind === 'conv' ? [l.out, shape[1]! / (l.group ?? 1), l.kernel ?? 1, l.kernel ?? 1] : l.transB ? [l.out, K] : [K, l.out];
    const n = wShape.reduce((a, b) => a * b, 1);
    floatWeightBytes += n * 4;
    const [lo, hi] = l.wType === 'int8' ? [-127, 127] : [0, 255];
    init(`${p}_w`, tensorFromNumbers(l.wType, wShape, Array.from({ length: n }, () => rng.int(lo, hi))));
    const C = l.out;
    const wScale = Array.from({ length: l.perChannel ? C : 1 }, () => rng.uniform(0.5, 1.5) / (K * 40));
    init(`${p}_ws`, tensorFromNumbers('float32', l.perChannel ? [C] : [], wScale));
    const wzp = l.wType === 'int8' ? 0 : 128;
    init(`${p}_wz`, tensorFromNumbers(l.wType, l.perChannel ? [C] : [], Array.from({ length: l.perChannel ? C : 1 }, () => wzp)));
    const axis = l.kind === 'conv' || l.transB ? 0 : 1;
    nodes.push({ op: 'DequantizeLinear', inputs: [`${p}_w`, `${p}_ws`, `${p}_wz`], outputs: [`${p}_wf`], name: `${p}_dq_w`, attrs: l.perChannel ? [int('axis', axis)] : [] });
    let bias = '';
    if (l.bias === 'float') bias = init(`${p}_b`, tensorFromNumbers('float32', [C], Array.from({ length: C }, () => rng.uniform(-0.5, 0.5))));
    if (l.bias === 'int32') {
      const bs = Array.from({ length: C }, (_, c) => Math.fround(xScale * wScale[l.perChannel ? c : 0]!));
      init(`${p}_bq`, tensorFromNumbers('int32', [C], Array.from({ length: C }, (_, c) => Math.round(rng.uniform(-0.5, 0.5) / bs[c]!))));
      init(`${p}_bs`, tensorFromNumbers('float32', [C], bs));
      nodes.push({ op: 'DequantizeLinear', inputs: [`${p}_bq`, `${p}_bs`], outputs: [`${p}_bf`], name: `${p}_dq_b`, attrs: [int('axis', 0)] });
      bias = `${p}_bf`;
    }
    let out = `${p}_y`;
    if (l.kind === 'conv') {
      const k = l.kernel ?? 1;
      const s = l.stride ?? 1;
      const pad = l.pad ?? 0;
      nodes.push({
        op: 'Conv', inputs: bias ? [`${p}_x`, `${p}_wf`, bias] : [`${p}_x`, `${p}_wf`], outputs: [out], name: `${p}_conv`,
        attrs: [ints('kernel_shape', [k, k]), ints('strides', [s, s]), ints('pads', [pad, pad, pad, pad]), int('group', l.group ?? 1)],
      });
      shape = [shape[0]!, C, Math.floor((shape[2]! + 2 * pad - k) / s) + 1, Math.floor((shape[3]! + 2 * pad - k) / s) + 1];
    } else if (l.kind === 'gemm') {
      const attrs: PAttr[] = l.transB ? [int('transB', 1)] : [];
      nodes.push({ op: 'Gemm', inputs: bias ? [`${p}_x`, `${p}_wf`, bias] : [`${p}_x`, `${p}_wf`], outputs: [out], name: `${p}_gemm`, attrs });
      shape = [shape[0]!, C];
    } else {
      nodes.push({ op: 'MatMul', inputs: [`${p}_x`, `${p}_wf`], outputs: [bias ? `${p}_mm` : out], name: `${p}_matmul` });
      if (bias) nodes.push({ op: 'Add', inputs: [`${p}_mm`, bias], outputs: [out], name: `${p}_bias` });
      shape = [...shape.slice(0, -1), C];
    }
    if (l.act === 'relu') {
      nodes.push({ op: 'Relu', inputs: [out], outputs: [`${p}_act`], name: `${p}_relu` });
      out = `${p}_act`;
    } else if (l.act === 'clip') {
      init(`${p}_lo`, tensorFromNumbers('float32', [], [0]));
      init(`${p}_hi`, tensorFromNumbers('float32', [], [1.5]));
      nodes.push({ op: 'Clip', inputs: [out, `${p}_lo`, `${p}_hi`], outputs: [`${p}_act`], name: `${p}_clip` });
      out = `${p}_act`;
    }
    if (l.floatOut) {
      nodes.push({ op: 'Identity', inputs: [out], outputs: ['y'], name: `${p}_out` });
      cur = '';
      return;
    }
    xScale = l.yScale;
    init(`${p}_ys`, tensorFromNumbers('float32', [], [l.yScale]));
    init(`${p}_yz`, tensorFromNumbers(actType, [], [zpAct]));
    nodes.push({ op: 'QuantizeLinear', inputs: [out, `${p}_ys`, `${p}_yz`], outputs: [`${p}_q`], name: `${p}_quant` });
    [cur, curScale, curZp] = [`${p}_q`, `${p}_ys`, `${p}_yz`];
    // Between a conv stack and a matrix layer: flatten (on the quantized tensor, as quantizers leave it).
    const nextKind = layers[i + 1]?.kind;
    if (l.kind === 'conv' && nextKind && nextKind !== 'conv') {
      nodes.push({ op: 'Flatten', inputs: [cur], outputs: [`${p}_flat`], name: `${p}_flatten` });
      cur = `${p}_flat`;
      shape = [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)];
    }
  });
  if (cur) nodes.push({ op: 'DequantizeLinear', inputs: [cur, curScale, curZp], outputs: ['y'], name: 'dq_out' });
  const x = tensorFromNumbers('float32', inputShape, Array.from({ length: inputShape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)));
  const bytes = model({
    opset: 13,
    nodes,
    inputs: [vi('x', 1, inputShape)],
    outputs: [vi('y', 1)],
    initializers: inits.map((t, i) => tensorProto(names[i]!, t)),
  });
  return { bytes, feeds: { x }, floatWeightBytes, step: layers[layers.length - 1]!.yScale };
}
