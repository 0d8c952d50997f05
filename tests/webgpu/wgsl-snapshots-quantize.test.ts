import { afterEach, describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
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
});
