import { toNumbers } from '../../../runtime/ir/dtype.js';
import { attrFloats, attrString, type Attr, type Node } from '../../../runtime/ir/graph.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { f32, trimInputs } from './helpers.js';

/**
 * Upsample-7..9 and Resize-10..21 onto the Resize-19 form (X, roi?, scales?, sizes?).
 *
 * Before Resize-11 there was no coordinate_transformation_mode or nearest_mode: output = floor(input * scale) and
 * x_original = x_resized / scale ("asymmetric"). The nearest pixel of those versions is floor(x_original) when
 * upsampling, which Upsample's own example shows ([1, 2] ×3 → [1, 1, 1, 2, 2, 2]); for Resize-10 downsampling the
 * ONNX test (test_resize_downsample_nearest, opset 10: [1, 2, 3, 4] ×0.6 → [1, 3]) and onnxruntime take
 * ceil(x_original). Nearest resizing is separable per axis, so a Resize-10 that downsamples some axes and
 * upsamples others becomes two Resize nodes, each with one rounding rule.
 */

const str = (value: string): Attr => ({ type: 'string', value });

function oldResize(n: Node, x: string, scales: string, output: string, nearest: 'floor' | 'ceil', name = n.name): Node {
  const mode = attrString(n, 'mode', 'nearest');
  const attrs: Record<string, Attr> = {
    mode: str(mode === 'bilinear' ? 'linear' : mode),
    coordinate_transformation_mode: str('asymmetric'),
  };
  if (attrs.mode!.value === 'nearest') attrs.nearest_mode = str(nearest);
  return { ...n, name, op: 'Resize', inputs: [x, '', scales], outputs: [output], attrs };
}

/** Upsample-7 (`scales` attribute) and Upsample-9 (`scales` input): every scale is ≥ 1, so nearest is floor. */
function upsample(n: Node, ctx: AdapterContext): Node[] {
  const attr = attrFloats(n, 'scales');
  const scales = attr ? f32(ctx, `${n.name}_scales`, attr) : n.inputs[1]!;
  return [oldResize(n, n.inputs[0]!, scales, n.outputs[0]!, 'floor')];
}

/** Resize-10: scales as an input; rounding depends on the direction of each axis (see above). */
function resize10(n: Node, ctx: AdapterContext): Node[] {
  const scalesName = n.inputs[1]!;
  const c = ctx.constantValue(scalesName);
  const scales = c ? Array.from(toNumbers(c.dtype, c.data)) : undefined;
  // Runtime scales: assume upsampling, the common use (and Upsample's semantics).
  if (!scales || attrString(n, 'mode', 'nearest') !== 'nearest' || scales.every((s) => s >= 1)) {
    return [oldResize(n, n.inputs[0]!, scalesName, n.outputs[0]!, 'floor')];
  }
  if (scales.every((s) => s <= 1)) return [oldResize(n, n.inputs[0]!, scalesName, n.outputs[0]!, 'ceil')];
  const down = f32(ctx, `${n.name}_down_scales`, scales.map((s) => Math.min(s, 1)));
  const up = f32(ctx, `${n.name}_up_scales`, scales.map((s) => Math.max(s, 1)));
  const mid = ctx.fresh(`${n.name}_downsampled`);
  return [
    oldResize(n, n.inputs[0]!, down, mid, 'ceil', `${n.name}_down`),
    oldResize(n, mid, up, n.outputs[0]!, 'floor', `${n.name}_up`),
  ];
}

/**
 * Resize-11..21 already has the Resize-19 inputs and attribute defaults (half_pixel, round_prefer_floor,
 * cubic_coeff_a -0.75). Resize-11 required roi and scales, written as empty tensors when unused; an empty
 * constant there means "absent" in the newest form.
 */
function resizeDropEmpty(n: Node, ctx: AdapterContext): Node[] {
  const inputs = n.inputs.map((v, i) => {
    if (i === 0 || !v) return v;
    const c = ctx.constantValue(v);
    return c && c.data.length === 0 ? '' : v;
  });
  return [{ ...n, inputs: trimInputs(inputs) }];
}

export const RESIZE_ADAPTERS: OpAdapter[] = [
  { op: 'Upsample', since: 7, until: 9, targets: ['Resize'], map: upsample },
  { op: 'Resize', since: 10, until: 10, map: resize10 },
  { op: 'Resize', since: 11, until: 12, map: resizeDropEmpty },
  // From Resize-13 on, roi and scales are optional: omitting them is valid as it stands.
  { op: 'Resize', since: 13, until: MAX_OPSET, map: resizeDropEmpty, sameForm: true },
];
