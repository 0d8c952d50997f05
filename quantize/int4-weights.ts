import { attrFloat, attrInt, type Graph, type Node } from '../runtime/ir/graph.js';
import { OP_SCHEMAS } from '../runtime/ir/ops/index.js';
import { cloneGraph } from '../runtime/ir/passes/index.js';
import { hostTensor } from '../runtime/ir/tensor.js';
import { quantizeInt4Blocks } from './codecs.js';
import { transpose2d } from './dynamic-int8.js';
import { fresh, GraphEditor } from './editor.js';
import type { ResolvedOptions } from './options.js';
import { isFloat32, selectNodes, weightInput, type KeptNode } from './plan.js';
import type { LayerPair } from './report.js';

const MATMUL_NBITS = 'com.microsoft.MatMulNBits';

/**
 * 4-bit weights (weight-only; activations stay float): each MatMul (and Gemm with transA = 0, alpha = 1) with a
 * constant 2-D float32 weight becomes com.microsoft MatMulNBits (bits 4, blocks of `blockSize` along K, one
 * float32 scale per block and column, 4-bit zero points unless symmetric), as onnxruntime's MatMul4BitsQuantizer
 * writes it. A Gemm's bias follows as an Add (beta times C when beta ≠ 1 is left float: such Gemms are kept).
 *
 * Also returns the "fake-quantized" float graph (the same graph with each weight replaced by its dequantized
 * values): the layer table compares against it where the runtime has no MatMulNBits kernel to run the real file.
 */
export function rewriteInt4(src: Graph, opts: ResolvedOptions): { graph: Graph; fake: Graph; layers: LayerPair[]; kept: KeptNode[] } {
  const eligible = (n: Node) =>
    (n.op === 'MatMul' || (n.op === 'Gemm' && attrFloat(n, 'alpha', 1) === 1 && attrFloat(n, 'beta', 1) === 1 && attrInt(n, 'transA', 0) === 0)) &&
    weightInput(src, n) !== undefined &&
    isFloat32(src, n.inputs[0]!) &&
    (src.values[n.inputs[0]!]?.shape?.length ?? 0) >= 2;
  const { selected, kept } = selectNodes(src, eligible, opts, "mode 'int4-weights'");
  const ed = new GraphEditor(src);
  const g = ed.graph;
  const fake = cloneGraph(src);
  const layers: LayerPair[] = [];
  for (const n0 of selected) {
    const n = ed.node(n0);
    const wName = n0.inputs[1]!;
    let w = src.initializers[wName]!;
    const transB = n.op === 'Gemm' && attrInt(n, 'transB', 0) === 1;
    if (transB) w = transpose2d(w);
    const [K, N] = w.shape as [number, number];
    const q = quantizeInt4Blocks(w, opts.blockSize, opts.symmetric);
    const bq = ed.addInitializer(`${wName}_Q4`, hostTensor('uint8', [N, q.blocks, opts.blockSize / 2], q.packed));
    const bs = ed.addInitializer(`${wName}_scales`, hostTensor('float32', [N * q.blocks], q.scales));
    const inputs = [n.inputs[0]!, bq, bs];
    if (q.zeroPoints) inputs.push(ed.addInitializer(`${wName}_zero_points`, hostTensor('uint8', [q.zeroPoints.length], q.zeroPoints)));
    const out = n.outputs[0]!;
    const bias = n.op === 'Gemm' && n.inputs[2] ? n.inputs[2] : undefined;
    const mm = bias ? fresh(g, `${n.name || out}_MatMulNBits_output`) : out;
    ed.addNode(
      {
        name: fresh(g, `${n.name || out}_MatMulNBits`),
        op: MATMUL_NBITS,
        domain: '',
        inputs,
        outputs: [mm],
        attrs: { K: { type: 'int', value: K }, N: { type: 'int', value: N }, bits: { type: 'int', value: 4 }, block_size: { type: 'int', value: opts.blockSize } },
      },
      undefined,
      n0,
    );
    if (bias) ed.addNode({ name: fresh(g, `${n.name || out}_bias_Add`), op: 'Add', domain: '', inputs: [mm, bias], outputs: [out], attrs: {} }, undefined, n0);
    ed.remove(n0);
    const dq = hostTensor('float32', [K, N], q.dequantized);
    fake.initializers[wName] = transB ? transpose2d(dq) : dq;
    layers.push({ node: n0.name, op: n0.op, float: out, quantized: out });
  }
  // MatMulNBits has an IR schema once the runtime supports it; until then the file is written without re-inference.
  const graph = ed.finish(!!OP_SCHEMAS[MATMUL_NBITS]);
  return { graph, fake, layers, kept };
}
