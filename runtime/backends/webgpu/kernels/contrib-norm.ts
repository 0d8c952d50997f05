import { attrFloat, attrInt, type Node } from '../../../ir/graph.js';
import { msOp, SKIP_LN_EPSILON } from '../../../ir/ops/contrib.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert, type BindingDecl } from '../wgsl/builder.js';
import { kindOf } from './elementwise.js';
import { RowLayout, rowView, type RowView } from './rows.js';

/**
 * com.microsoft SkipLayerNormalization, SkipSimplifiedLayerNormalization and SimplifiedLayerNormalization (RMSNorm)
 * on the row skeleton (rows.ts), as normalization.ts does LayerNormalization: one row per token, the value
 * s = input + skip + bias recomputed in f32 on each pass (never stored and re-read), mean then the mean of squared
 * deviations (two passes), or for the simplified forms the mean of squares alone. Optional outputs: mean (zeros for
 * the simplified form), inv_std_var and the sum s.
 */

interface SkipNormSpec {
  simplified: boolean;
  x: GpuTensorInfo;
  skip?: GpuTensorInfo;
  gamma: GpuTensorInfo;
  beta?: GpuTensorInfo;
  bias?: GpuTensorInfo;
  /** gamma is one value for the whole row (SimplifiedLayerNormalization with a size-1 scale). */
  scalarGamma: boolean;
  y: GpuTensorInfo;
  mean?: GpuTensorInfo;
  invStd?: GpuTensorInfo;
  sum?: GpuTensorInfo;
  view: RowView;
  epsilon: number;
}

function skipNormProgram(s: SkipNormSpec): ProgramSpec {
  const layout = new RowLayout(s.view);
  const opt = (name: string, t?: GpuTensorInfo): BindingDecl[] => (t ? [{ name, type: t.storage }] : []);
  const bindings: BindingDecl[] = [
    { name: 'x', type: s.x.storage }, ...opt('skip', s.skip), { name: 'gamma', type: s.gamma.storage }, ...opt('beta', s.beta), ...opt('bias', s.bias),
    { name: 'y', type: s.y.storage }, ...opt('mean_out', s.mean), ...opt('inv_std_out', s.invStd), ...opt('sum_out', s.sum),
  ];
  const parts = [s.simplified ? 'rms' : 'ln', s.skip && 'skip', s.beta && 'beta', s.bias && 'bias', s.scalarGamma && 'gamma1', s.mean && 'mean', s.invStd && 'invstd', s.sum && 'sum'];
  return {
    key: `ms-norm:${parts.filter(Boolean).join(':')}:${layout.key}`,
    bindings,
    uniforms: [...layout.uniforms(), { name: 'epsilon', type: 'f32' }, ...(s.skip ? [{ name: 'skip_size', type: 'u32' as const }] : [])],
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
      // s = input + skip (broadcast over leading dims: element i reads skip[i % size]) + bias[r].
      const value = (off: string, r: string) =>
        `(${f('x', off)}${s.skip ? ` + ${f('skip', `(${off}) % u.skip_size`)}` : ''}${s.bias ? ` + ${f('bias', r)}` : ''})`;
      const lines = [...rc.head()];
      if (s.simplified) lines.push('let mean = 0.0;');
      else lines.push(...rc.reduce('total', 'f32', '0.0', (a, v) => `${a} + ${v}`, value), 'let mean = total / f32(u.row_len);');
      lines.push(
        ...rc.reduce('sq', 'f32', '0.0', (a, v) => `${a} + ${v}`, (off, r) => `(${value(off, r)} - mean) * (${value(off, r)} - mean)`),
        'let inv_std = 1.0 / sqrt(sq / f32(u.row_len) + u.epsilon);',
        ...rc.forEach((off, r) => {
          const out = [`let v = ${value(off, r)};`];
          const beta = s.beta ? ` + ${f('beta', r)}` : '';
          out.push(b.store('y', off, convert(computeTypeOf(s.y.storage), 'f32', `(v - mean) * inv_std * ${f('gamma', s.scalarGamma ? '0u' : r)}${beta}`)));
          if (s.sum) out.push(b.store('sum_out', off, convert(computeTypeOf(s.sum.storage), 'f32', 'v')));
          return out;
        }),
      );
      if (s.mean) lines.push(rc.once(b.store('mean_out', 'row', convert(computeTypeOf(s.mean.storage), 'f32', 'mean'))));
      if (s.invStd) lines.push(rc.once(b.store('inv_std_out', 'row', convert(computeTypeOf(s.invStd.storage), 'f32', 'inv_std'))));
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: layout.workgroups(),
        uniforms: { ...layout.values(), epsilon: s.epsilon, ...(s.skip ? { skip_size: sizeOfShape(s.skip.shape) } : {}) },
      };
    },
  };
}

function floatOnly(op: string, ts: (GpuTensorInfo | undefined)[]): void {
  for (const t of ts) if (t && kindOf(t.dtype) !== 'f') throw new GpuUnsupported(`${op} on ${t.dtype} has no WebGPU kernel`);
}

/** Bindings in program order for the tensors that are present. */
function slots(entries: [GpuTensorInfo | undefined, TensorSlot][]): TensorSlot[] {
  return entries.filter(([t]) => !!t).map(([, slot]) => slot);
}

function skipNorm(simplified: boolean): GpuKernel {
  const op = msOp(simplified ? 'SkipSimplifiedLayerNormalization' : 'SkipLayerNormalization');
  return {
    plan(node: Node, inputs, outputs) {
      const [x, skip, gamma] = inputs;
      const beta = simplified ? undefined : inputs[3];
      const bias = inputs[simplified ? 3 : 4];
      floatOnly(op, inputs);
      const [y, mean, invStd, sum] = outputs;
      if (sizeOfShape(x!.shape) === 0) return { calls: [] };
      const rank = x!.shape.length;
      const spec: SkipNormSpec = {
        simplified, x: x!, skip, gamma: gamma!, beta, bias, scalarGamma: false, y: y!, mean, invStd, sum,
        view: rowView(x!.shape, [rank - 1]), epsilon: attrFloat(node, 'epsilon', SKIP_LN_EPSILON),
      };
      const tensors = slots([
        [x, { input: 0 }], [skip, { input: 1 }], [gamma, { input: 2 }], [beta, { input: 3 }], [bias, { input: simplified ? 3 : 4 }],
        [y, { output: 0 }], [mean, { output: 1 }], [invStd, { output: 2 }], [sum, { output: 3 }],
      ]);
      return { calls: [{ program: skipNormProgram(spec), tensors }] };
    },
  };
}

/** SimplifiedLayerNormalization: rows over [axis, rank); the scale must be one value or the normalized shape. */
const simplifiedLayerNorm: GpuKernel = {
  plan(node, [x, scale], [y, invStd]) {
    const op = msOp('SimplifiedLayerNormalization');
    floatOnly(op, [x, scale]);
    const shape = x!.shape;
    const axis = normalizeAxis(attrInt(node, 'axis', -1), shape.length);
    const aligned = [...new Array<number>(Math.max(0, shape.length - scale!.shape.length)).fill(1), ...scale!.shape];
    const scalarGamma = sizeOfShape(scale!.shape) === 1;
    if (!scalarGamma && !aligned.every((d, i) => (i < axis ? d === 1 : d === shape[i]))) {
      throw new GpuUnsupported(`${op} with a scale of shape [${scale!.shape.join(', ')}] that varies outside the normalized axes has no WebGPU kernel`);
    }
    if (sizeOfShape(shape) === 0) return { calls: [] };
    const spec: SkipNormSpec = {
      simplified: true, x: x!, gamma: scale!, scalarGamma, y: y!, invStd,
      view: rowView(shape, Array.from({ length: shape.length - axis }, (_, i) => axis + i)), epsilon: attrFloat(node, 'epsilon', 1e-5),
    };
    const tensors = slots([[x, { input: 0 }], [scale, { input: 1 }], [y, { output: 0 }], [invStd, { output: 1 }]]);
    return { calls: [{ program: skipNormProgram(spec), tensors }] };
  },
};

export const kernels: Record<string, GpuKernel> = {
  [msOp('SkipLayerNormalization')]: skipNorm(false),
  [msOp('SkipSimplifiedLayerNormalization')]: skipNorm(true),
  [msOp('SimplifiedLayerNormalization')]: simplifiedLayerNorm,
};
