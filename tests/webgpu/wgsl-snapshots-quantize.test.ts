import { afterEach, describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { setNBitsForm } from '../../runtime/backends/webgpu/kernels/matmul-nbits.js';
import { setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo, type KernelEnv } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { msOp } from '../../runtime/ir/ops/contrib.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, node } from '../helpers/ir-builder.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';

/**
 * The generated WGSL of the quantized kernel keys (issue #11), for both dot-product paths where the key has them.
 * Each case is one representative shape of its keys; every program stays within WebGPU's default of 8 storage
 * buffers per shader stage.
 */

type Spec = [DType, number[]];

afterEach(() => setQuantDotPath(undefined));

function sources(n: Node, inputs: (Spec | undefined)[]): [string, string, number][] {
  const infos = inputs.map((s): GpuTensorInfo | undefined => s && { dtype: s[0], shape: s[1], storage: storageFor(s[0], SNAPSHOT_ENV.f16, true) });
  const outs = OP_SCHEMAS[n.op]!.infer({ node: n, inputs: infos.map((i) => i && { dtype: i.dtype, shape: i.shape }), symbol: (h) => h });
  const outputs = outs.map((o) => ({ dtype: o.dtype, shape: o.shape as number[], storage: storageFor(o.dtype, SNAPSHOT_ENV.f16, false) }));
  return GPU_KERNELS[n.op]!.plan(n, infos, outputs, SNAPSHOT_ENV).calls.map((c) => [fullKey(c.program), generateSource(c.program, SNAPSHOT_ENV.f16), c.program.bindings.length]);
}

function snapshot(title: string, op: string, inputs: (Spec | undefined)[], attrs: Record<string, Attr> = {}, paths: QuantDotPath[] = ['unpacked']) {
  for (const path of paths) {
    it(`${title} (${path})`, () => {
      setQuantDotPath(path);
      const n = node(op, inputs.map((s, i) => (s ? `x${i}` : '')), op === 'DynamicQuantizeLinear' ? ['y', 's', 'z'] : ['y'], attrs);
      for (const [key, src, bindings] of sources(n, inputs)) {
        expect(bindings, key).toBeLessThanOrEqual(8);
        expect(src).toMatchSnapshot(key);
      }
    });
  }
}

const BOTH: QuantDotPath[] = ['packed', 'unpacked'];

/** Kernels that read constants at plan time (packed weights, parameters): inputs with values, outputs given. */
function snapshotPlan(title: string, n: Node, inputs: (HostTensor | GpuTensorInfo | undefined)[], out: GpuTensorInfo, paths: QuantDotPath[] = ['unpacked'], env: KernelEnv = SNAPSHOT_ENV) {
  const info = (t: HostTensor | GpuTensorInfo | undefined): GpuTensorInfo | undefined =>
    t && ('storage' in t ? t : { dtype: t.dtype, shape: t.shape, storage: storageFor(t.dtype, SNAPSHOT_ENV.f16, true), value: t });
  for (const path of paths) {
    it(`${title} (${path})`, () => {
      setQuantDotPath(path);
      for (const c of GPU_KERNELS[n.op]!.plan(n, inputs.map(info), [out], env).calls) {
        expect(c.program.bindings.length, c.program.key).toBeLessThanOrEqual(8);
        expect(generateSource(c.program, SNAPSHOT_ENV.f16)).toMatchSnapshot(fullKey(c.program));
      }
    });
  }
}

const act = (dtype: DType, shape: number[]): GpuTensorInfo => ({ dtype, shape, storage: storageFor(dtype, SNAPSHOT_ENV.f16, true) });
const res = (dtype: DType, shape: number[]): GpuTensorInfo => ({ dtype, shape, storage: storageFor(dtype, SNAPSHOT_ENV.f16, false) });
const c = (dtype: DType, shape: number[], v?: number[]) => tensorFromNumbers(dtype, shape, v ?? new Array<number>(shape.reduce((a, b) => a * b, 1)).fill(1));

describe('quantization WGSL', () => {
  snapshot('QuantizeLinear int8 per axis', 'QuantizeLinear', [['float32', [2, 4]], ['float32', [4]], ['int8', [4]]]);
  snapshot('QuantizeLinear without a zero point (uint8)', 'QuantizeLinear', [['float32', [2, 4]], ['float32', []]]);
  snapshot('DequantizeLinear uint8 blocked', 'DequantizeLinear', [['uint8', [2, 4]], ['float32', [2, 2]], ['uint8', [2, 2]]], { axis: attr(1), block_size: attr(2) });
  snapshot('DequantizeLinear int32 without a zero point', 'DequantizeLinear', [['int32', [5]], ['float32', []]]);
  snapshot('DynamicQuantizeLinear', 'DynamicQuantizeLinear', [['float32', [3, 5]]]);
  snapshot('MatMulInteger uint8 x int8 batched', 'MatMulInteger', [['uint8', [2, 3, 8]], ['int8', [8, 4]], ['uint8', []], ['int8', [4]]], {}, BOTH);
  snapshot('MatMulInteger without zero points', 'MatMulInteger', [['int8', [3, 8]], ['int8', [8, 4]]]);
  snapshot('QLinearMatMul uint8', 'QLinearMatMul', [
    ['uint8', [3, 8]], ['float32', []], ['uint8', []], ['uint8', [8, 4]], ['float32', [4]], ['uint8', [4]], ['float32', []], ['uint8', []],
  ], {}, BOTH);
  snapshot('ConvInteger uint8', 'ConvInteger', [['uint8', [1, 2, 5, 5]], ['uint8', [3, 2, 3, 3]], ['uint8', []], ['uint8', []]], { pads: attr([1, 1, 1, 1]) }, BOTH);
  snapshot('QLinearConv int8 per channel with bias', 'QLinearConv', [
    ['int8', [1, 2, 5, 5]], ['float32', []], ['int8', []], ['int8', [3, 2, 3, 3]], ['float32', [3]], ['int8', [3]], ['float32', []], ['int8', []], ['int32', [3]],
  ], { strides: attr([2, 2]) }, BOTH);
  // Constant weights (int8-dynamic files): packed at plan time, register-blocked ConvInteger / MatMulInteger.
  snapshotPlan('ConvInteger packed weights, zero point 128', node('ConvInteger', ['x', 'w', 'zx', 'zw'], ['y'], { pads: attr([1, 1, 1, 1]) }), [
    act('uint8', [1, 2, 5, 5]), c('uint8', [3, 2, 3, 3]), act('uint8', []), c('uint8', [], [128]),
  ], res('int32', [1, 3, 5, 5]), BOTH);
  snapshotPlan('ConvInteger packed weights, 6 input channels, zero point 3', node('ConvInteger', ['x', 'w', 'zx', 'zw'], ['y'], { pads: attr([1, 1, 1, 1]) }), [
    act('uint8', [1, 6, 5, 5]), c('uint8', [3, 6, 3, 3]), act('uint8', []), c('uint8', [], [3]),
  ], res('int32', [1, 3, 5, 5]), BOTH);
  snapshotPlan('MatMulInteger packed weights, per-column zero points', node('MatMulInteger', ['a', 'b', 'za', 'zb'], ['y'], {}), [
    act('uint8', [2, 10]), c('int8', [10, 5]), act('uint8', []), c('int8', [5], [1, 0, -1, 2, 3]),
  ], res('int32', [2, 5]), BOTH);
  snapshot('QuantizeLinear int4 (output_dtype 22)', 'QuantizeLinear', [['float32', [2, 4]], ['float32', []]], { output_dtype: attr(22) });
  const nbits = (bits: number, zp: HostTensor | undefined, bias: boolean) =>
    node(msOp('MatMulNBits'), ['a', 'b', 's', zp ? 'z' : '', '', bias ? 'bias' : ''], ['y'], { K: attr(64), N: attr(8), bits: attr(bits), block_size: attr(32) });
  snapshotPlan('MatMulNBits 4 bits, packed zero points, bias', nbits(4, c('uint8', [8]), true), [
    act('float32', [2, 64]), c('uint8', [8, 2, 16]), c('float32', [16]), c('uint8', [8]), undefined, c('float32', [8]),
  ], res('float32', [2, 8]));
  snapshotPlan('MatMulNBits 8 bits, no zero points', nbits(8, undefined, false), [act('float32', [2, 64]), c('uint8', [8, 2, 32]), c('float32', [16])], res('float32', [2, 8]));
  snapshotPlan('MatMulNBits 4 bits, float zero points, float16', nbits(4, c('float16', [16]), false), [
    act('float16', [2, 64]), c('uint8', [8, 2, 16]), c('float16', [16]), c('float16', [16]),
  ], res('float16', [2, 8]));
  // 40 rows: the workgroup-tiled prefill form; the direct form (CPU adapters) forced, 4 rows per invocation.
  snapshotPlan('MatMulNBits 4 bits tiled, packed zero points, bias', nbits(4, c('uint8', [8]), true), [
    act('float32', [40, 64]), c('uint8', [8, 2, 16]), c('float32', [16]), c('uint8', [8]), undefined, c('float32', [8]),
  ], res('float32', [40, 8]));
  // The direct form forced (8 rows: 4 per invocation), and the GEMV's subgroup reduction on a device with subgroups.
  for (const [title, form, rows, env] of [['direct', 'direct', 8, SNAPSHOT_ENV], ['GEMV with subgroups', 'gemv', 1, { ...SNAPSHOT_ENV, subgroups: true }]] as const) {
    it(`MatMulNBits 8 bits ${title}, packed zero points`, () => {
      setNBitsForm(form);
      try {
        const n = nbits(8, c('uint8', [16]), false);
        const ins = [act('float32', [rows, 64]), c('uint8', [8, 2, 32]), c('float32', [16]), c('uint8', [16])];
        const infos = ins.map((t) => ('storage' in t ? t : { dtype: t.dtype, shape: t.shape, storage: storageFor(t.dtype, SNAPSHOT_ENV.f16, true), value: t }));
        for (const call of GPU_KERNELS[n.op]!.plan(n, infos, [res('float32', [rows, 8])], env).calls) {
          expect(generateSource(call.program, SNAPSHOT_ENV.f16)).toMatchSnapshot(fullKey(call.program));
        }
      } finally {
        setNBitsForm(undefined);
      }
    });
  }
  const qdqInputs = (w: HostTensor, C: number) => [
    act('uint8', [1, 2, 5, 5]), c('float32', [], [0.1]), c('uint8', [], [128]), w, c('float32', [C], new Array<number>(C).fill(0.01)), c('int8', [C]),
    c('float32', [], [0.2]), c('uint8', [], [128]), c('int32', [C]), c('float32', [C], new Array<number>(C).fill(0.001)),
  ];
  // QdqConv/QdqMatMul: the workgroup-tiled kernels a GPU adapter plans, and the direct ones of a CPU adapter.
  const CPU_ENV: KernelEnv = { ...SNAPSHOT_ENV, cpuAdapter: true };
  const qdqConv3x3 = node('QdqConv', Array.from({ length: 10 }, (_, i) => `x${i}`), ['y'], {
    kernel_shape: attr([3, 3]), pads: attr([1, 1, 1, 1]), clip_min: attr(0, true), clip_max: attr(6, true),
  });
  snapshotPlan('QdqConv uint8 x int8 w, int32 bias, Clip', qdqConv3x3, qdqInputs(c('int8', [3, 2, 3, 3]), 3), res('uint8', [1, 3, 5, 5]), BOTH);
  snapshotPlan('QdqConv uint8 x int8 w, int32 bias, Clip, CPU adapter', qdqConv3x3, qdqInputs(c('int8', [3, 2, 3, 3]), 3), res('uint8', [1, 3, 5, 5]), BOTH, CPU_ENV);
  snapshotPlan('QdqMatMul Gemm transB', node('QdqMatMul', Array.from({ length: 10 }, (_, i) => `x${i}`), ['y'], { transB: attr(1) }), [
    act('uint8', [4, 50]), ...qdqInputs(c('int8', [6, 50]), 6).slice(1),
  ], res('uint8', [4, 6]), BOTH);
  // The c4 layout (qdq-layout.ts): x and y packed four codes per u32, as uint32 [N, ceil(C / 4), H, W].
  const c4 = { x_layout: attr('c4'), x_qtype: attr('uint8'), y_layout: attr('c4'), y_qtype: attr('uint8') };
  const qdqDepthwise = (C: number, strides: number[], dilations: number[]) => node('QdqConv', Array.from({ length: 10 }, (_, i) => `x${i}`), ['y'], {
    kernel_shape: attr([3, 3]), pads: attr([1, 1, 1, 1]), strides: attr(strides), dilations: attr(dilations), group: attr(C), clip_min: attr(0, true), clip_max: attr(6, true), ...c4,
  });
  const dwInputs = (C: number) => [act('uint32', [1, C / 4, 9, 9]), ...qdqInputs(c('int8', [C, 1, 3, 3]), C).slice(1)];
  snapshotPlan('QdqConv depthwise c4, row window, stride 1, CPU adapter', qdqDepthwise(8, [1, 1], [1, 1]), dwInputs(8), res('uint32', [1, 2, 9, 9]), ['unpacked'], CPU_ENV);
  snapshotPlan('QdqConv depthwise c4, row window, stride 2, CPU adapter', qdqDepthwise(8, [2, 2], [1, 1]), dwInputs(8), res('uint32', [1, 2, 5, 5]), ['unpacked'], CPU_ENV);
  snapshotPlan('QdqConv depthwise c4, column dilation 2, CPU adapter', qdqDepthwise(8, [1, 1], [1, 2]), dwInputs(8), res('uint32', [1, 2, 9, 7]), ['unpacked'], CPU_ENV);
  const qdq1x1 = node('QdqConv', Array.from({ length: 10 }, (_, i) => `x${i}`), ['y'], { kernel_shape: attr([1, 1]), ...c4 });
  const pwInputs = [act('uint32', [1, 2, 5, 5]), ...qdqInputs(c('int8', [16, 8, 1, 1]), 16).slice(1)];
  snapshotPlan('QdqConv 1x1 c4, CPU adapter', qdq1x1, pwInputs, res('uint32', [1, 4, 5, 5]), BOTH, CPU_ENV);
  snapshotPlan('QdqConv 1x1 c4, tiled', qdq1x1, pwInputs, res('uint32', [1, 4, 5, 5]), BOTH);
  // 4-bit weights (w_bits = 4, kernels/qdq-weights.ts): two quads per word, unpacked by shifts.
  const w4 = (shape: number[]) => c('int8', shape, Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => (i % 16) - 8));
  const qdqConv4 = { ...qdqConv3x3, attrs: { ...qdqConv3x3.attrs, w_bits: attr(4) } };
  snapshotPlan('QdqConv 4-bit w, CPU adapter', qdqConv4, qdqInputs(w4([3, 2, 3, 3]), 3), res('uint8', [1, 3, 5, 5]), BOTH, CPU_ENV);
  snapshotPlan('QdqConv 4-bit w, tiled', qdqConv4, qdqInputs(w4([3, 2, 3, 3]), 3), res('uint8', [1, 3, 5, 5]), BOTH);
  const dw4 = qdqDepthwise(8, [1, 1], [1, 1]);
  snapshotPlan('QdqConv depthwise c4, 4-bit w, row window, CPU adapter', { ...dw4, attrs: { ...dw4.attrs, w_bits: attr(4) } },
    [act('uint32', [1, 2, 9, 9]), ...qdqInputs(w4([8, 1, 3, 3]), 8).slice(1)], res('uint32', [1, 2, 9, 9]), ['unpacked'], CPU_ENV);
  // QuantizeLinear writing c4 (quantizeC4Program): a 3-channel image quantized for its first conv.
  snapshotPlan('QuantizeLinear per tensor into c4', node('QuantizeLinear', ['x', 's', 'z'], ['y'], { y_layout: attr('c4'), y_qtype: attr('uint8') }),
    [act('float32', [1, 3, 4, 4]), c('float32', [], [0.02]), c('uint8', [], [120])], res('uint32', [1, 1, 4, 4]));
  // QdqAdd (fuse-qdq-add.ts): every operand c4, and every operand one code per word.
  const addInputs = (x: GpuTensorInfo) => [x, c('float32', [], [0.1]), c('uint8', [], [128]), x, c('float32', [], [0.05]), c('uint8', [], [120]), c('float32', [], [0.2]), c('uint8', [], [125])];
  const qdqAdd = (attrs: Record<string, Attr>) => node('QdqAdd', Array.from({ length: 8 }, (_, i) => `x${i}`), ['y'], attrs);
  snapshotPlan('QdqAdd, a, b and y c4', qdqAdd({ a_layout: attr('c4'), a_qtype: attr('uint8'), b_layout: attr('c4'), b_qtype: attr('uint8'), y_layout: attr('c4'), y_qtype: attr('uint8') }),
    addInputs(act('uint32', [1, 2, 3, 3])), res('uint32', [1, 2, 3, 3]));
  snapshotPlan('QdqAdd, one code per word, Relu', qdqAdd({ clip_min: attr(0, true) }), addInputs(act('uint8', [1, 6, 3, 3])), res('uint8', [1, 6, 3, 3]));
  // The dynamic int8 chain (fuse-dynamic-int8.ts): packed ConvInteger with the float epilogue, x scale read on the GPU.
  snapshotPlan('ConvIntegerToFloat packed weights, per-channel w scale, bias, Relu', node('ConvIntegerToFloat', ['x', 'w', 'zx', 'zw', 'xs', 'ws', 'b'], ['y'], {
    pads: attr([1, 1, 1, 1]), activation: attr('Relu'),
  }), [act('uint8', [1, 2, 5, 5]), c('uint8', [3, 2, 3, 3]), act('uint8', []), c('uint8', [], [128]), act('float32', []), c('float32', [3], [0.01, 0.02, 0.03]), c('float32', [3])],
  res('float32', [1, 3, 5, 5]), BOTH);
  snapshotPlan('QdqMatMul Gemm transB, 8 rows', node('QdqMatMul', Array.from({ length: 10 }, (_, i) => `x${i}`), ['y'], { transB: attr(1) }), [
    act('uint8', [8, 50]), ...qdqInputs(c('int8', [6, 50]), 6).slice(1),
  ], res('uint8', [8, 6]), BOTH);
});
