import { attrInt, attrString, type Node } from '../../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../../runtime/ir/tensor.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { without } from './helpers.js';

/** DFT-17 has `axis` as an attribute (default 1); the IR is DFT-20, which takes it as an optional scalar input. */
function dft17(n: Node, ctx: AdapterContext): Node[] {
  const inputs = [n.inputs[0] ?? '', n.inputs[1] ?? '', i64Scalar(ctx, `${n.name}_axis`, attrInt(n, 'axis', 1))];
  return [{ ...n, inputs, attrs: without(n, 'axis') }];
}

const i64Scalar = (ctx: AdapterContext, hint: string, v: number) => ctx.constant(hint, tensorFromNumbers('int64', [], [v]));

/** GridSample-16 names the interpolations bilinear and bicubic; the IR is GridSample-20 (linear, cubic). */
function gridSample16(n: Node): Node[] {
  const m = attrString(n, 'mode', 'bilinear');
  const mode = ({ bilinear: 'linear', bicubic: 'cubic' } as Record<string, string>)[m] ?? m;
  return [{ ...n, attrs: { ...n.attrs, mode: { type: 'string', value: mode } } }];
}

/**
 * The rest of the default ONNX domain (issue #9 §4): indexing, math/layout, losses, vision and signal ops. Most are
 * already in IR form from their first version on (later versions only added types or attributes with compatible
 * defaults); the deprecated ones are rewritten to their successors.
 */
export const DEFAULT_DOMAIN_ADAPTERS: OpAdapter[] = [
  // GatherND-12 added batch_dims (default 0); ScatterND-16/18 and ScatterElements-16/18 added `reduction` (default none).
  { op: 'GatherND', since: 11, until: MAX_OPSET },
  { op: 'ScatterND', since: 11, until: MAX_OPSET },
  { op: 'ScatterElements', since: 11, until: MAX_OPSET },
  // Scatter-9/11 (deprecated by ScatterElements-11) has the same inputs and `axis`; 11 only allowed negative indices.
  { op: 'Scatter', since: 9, until: MAX_OPSET, targets: ['ScatterElements'], map: (n) => [{ ...n, op: 'ScatterElements' }] },
  // OneHot-11 only added negative indices (counted from the back), which OneHot-9 leaves undefined.
  { op: 'OneHot', since: 9, until: MAX_OPSET },
  { op: 'EyeLike', since: 9, until: MAX_OPSET },
  { op: 'Trilu', since: 14, until: MAX_OPSET },
  { op: 'BitShift', since: 11, until: MAX_OPSET },
  { op: 'Einsum', since: 12, until: MAX_OPSET },
  // MVN-13, LRN-13 only added bfloat16; MaxUnpool-11 only added the output_shape-with-pads clarification.
  { op: 'MeanVarianceNormalization', since: 9, until: MAX_OPSET },
  { op: 'LRN', since: 1, until: MAX_OPSET },
  { op: 'ReverseSequence', since: 10, until: MAX_OPSET },
  { op: 'Det', since: 11, until: MAX_OPSET },
  { op: 'MaxUnpool', since: 9, until: MAX_OPSET },
  // GridSample-20 renamed the modes (linear, cubic) and allowed N-D (EdgeKit samples 2-D and 3-D; cubic 2-D only).
  { op: 'GridSample', since: 16, until: 19, map: gridSample16 },
  { op: 'GridSample', since: 20, until: MAX_OPSET },
  // RoiAlign-10 behaves as coordinate_transformation_mode=output_half_pixel, the attribute RoiAlign-16 added.
  { op: 'RoiAlign', since: 16, until: MAX_OPSET },
  {
    op: 'RoiAlign', since: 10, until: 15,
    map: (n) => [{ ...n, attrs: { ...n.attrs, coordinate_transformation_mode: { type: 'string', value: 'output_half_pixel' } } }],
  },
  // Signal ops in their opset-17 form, DFT in its opset-20 form (DFT-17's axis attribute becomes the axis input).
  { op: 'HannWindow', since: 17, until: MAX_OPSET },
  { op: 'HammingWindow', since: 17, until: MAX_OPSET },
  { op: 'BlackmanWindow', since: 17, until: MAX_OPSET },
  { op: 'DFT', since: 17, until: 19, map: dft17 },
  { op: 'DFT', since: 20, until: MAX_OPSET },
  { op: 'STFT', since: 17, until: MAX_OPSET },
  { op: 'MelWeightMatrix', since: 17, until: MAX_OPSET },
  // NegativeLogLikelihoodLoss-13 / SoftmaxCrossEntropyLoss-13 only added float16/float64 to the -12 forms.
  { op: 'NegativeLogLikelihoodLoss', since: 12, until: MAX_OPSET },
  { op: 'SoftmaxCrossEntropyLoss', since: 12, until: MAX_OPSET },
];
