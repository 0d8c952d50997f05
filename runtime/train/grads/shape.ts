import { attrInt } from '../../ir/graph.js';
import { transposePerm } from '../../ir/ops/movement.js';
import { normalizeAxis } from '../../ir/shape.js';
import { A, type GradRule } from './rule.js';

/**
 * Data-movement ops: their gradients move dY back. Reshape-like ops (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity) reshape dY to X's shape; Transpose applies the inverse permutation; Concat splits dY at the inputs'
 * sizes along the axis.
 */
const reshapeBack: GradRule = {
  differentiable: [0],
  saves: {},
  backward: (ctx) => [ctx.emit('Reshape', [ctx.dy()!, ctx.shapeOf(0)])[0]!],
};

const identity: GradRule = {
  differentiable: [0],
  saves: {},
  backward: (ctx) => [ctx.dy()!],
};

const transpose: GradRule = {
  differentiable: [0],
  saves: {},
  backward(ctx) {
    const perm = transposePerm(ctx.node, ctx.inputShape(0).length);
    const inverse = new Array<number>(perm.length);
    perm.forEach((p, i) => (inverse[p] = i));
    return [ctx.emit('Transpose', [ctx.dy()!], { perm: A.ints(inverse) })[0]!];
  },
};

/**
 * Concat-13: Split(dY, sizes) along the axis. The sizes are a constant when every input's extent along the axis is
 * known when the graph is built; otherwise they are sliced from the inputs' saved shapes.
 */
const concat: GradRule = {
  differentiable: 'all',
  saves: {},
  backward(ctx) {
    const n = ctx.node.inputs.length;
    const rank = ctx.outputShape(0).length;
    const axis = normalizeAxis(attrInt(ctx.node, 'axis', 0), rank, 'Concat axis');
    const extents = ctx.node.inputs.map((_, i) => ctx.inputShape(i)[axis]!);
    let sizes: string;
    if (extents.every((d): d is number => typeof d === 'number')) sizes = ctx.ints(extents);
    else {
      const parts = ctx.node.inputs.map((_, i) => ctx.emit('Slice', [ctx.shapeOf(i), ctx.ints([axis]), ctx.ints([axis + 1])])[0]!);
      sizes = ctx.emit('Concat', parts, { axis: A.int(0) })[0]!;
    }
    const wanted = ctx.node.inputs.map((_, i) => ctx.wants(i));
    const outs = ctx.emit('Split', [ctx.dy()!, sizes], { axis: A.int(axis) }, { outputs: wanted });
    return Array.from({ length: n }, (_, i) => outs[i] || undefined);
  },
};

export const rules: Record<string, GradRule> = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Identity: identity,
  Transpose: transpose,
  Concat: concat,
};
