import { ShapeError } from '../../../../errors.js';
import { attrFloat, attrInt } from '../../../../ir/graph.js';
import { normalizeAxis } from '../../../../ir/shape.js';
import { sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../../program.js';
import { computeTypeOf } from '../../storage.js';
import { convert, type BindingDecl } from '../../wgsl/builder.js';
import { RowLayout, rowView } from '../rows.js';
import { floatOnly } from './common.js';

/**
 * BatchNormGrad and LayerNormGrad: twins of runtime/train/ops/norm-grad.ts on the row skeleton (rows.ts), each
 * ONE dispatch that reduces what it needs and writes every requested output.
 *   BatchNormGrad(dY, X, scale, mean, var) {epsilon} -> dX, dScale, dB: one row per channel c (reduced over N and
 *     the spatial dims), k = 1 / sqrt(var + eps): dX = dY scale k, dScale = sum dY (x - mean) k, dB = sum dY.
 *   LayerNormGrad(dY, X, Scale) {axis, epsilon} -> dX, dScaleFull: one row per normalized row; the statistics are
 *     recomputed (mean, then mean of squared deviations), r = 1 / sqrt(var + eps), g = dY Scale,
 *     dX = r (g - mean(g) - xhat mean(g xhat)), dScaleFull = dY xhat. Scale broadcasts to X through strides.
 * Omitted outputs ('') are neither bound nor computed.
 */

function batchNormGradProgram(ins: GpuTensorInfo[], outs: (GpuTensorInfo | undefined)[], eps: number): ProgramSpec {
  const [dy, x, scale, mean, variance] = ins as [GpuTensorInfo, GpuTensorInfo, GpuTensorInfo, GpuTensorInfo, GpuTensorInfo];
  const axes = [0, ...Array.from({ length: x.shape.length - 2 }, (_, i) => i + 2)];
  const layout = new RowLayout(rowView(x.shape, axes));
  const [dx, ds, db] = outs;
  const bindings: BindingDecl[] = [
    // X and mean are read for dScale only (an unread binding would not be in the pipeline's layout).
    { name: 'dy', type: dy.storage }, ...(ds ? [{ name: 'x', type: x.storage }] : []), { name: 'scale', type: scale.storage },
    ...(ds ? [{ name: 'mean', type: mean.storage }] : []), { name: 'variance', type: variance.storage },
    ...(dx ? [{ name: 'dx', type: dx.storage }] : []),
    ...(ds ? [{ name: 'dscale', type: ds.storage }] : []),
    ...(db ? [{ name: 'dbias', type: db.storage }] : []),
  ];
  return {
    key: `train:batchnorm-grad:${dx ? 'x' : ''}${ds ? 's' : ''}${db ? 'b' : ''}:${layout.key}`,
    bindings,
    uniforms: [...layout.uniforms(), { name: 'epsilon', type: 'f32' }],
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const dyAt = (off: string) => b.loadAs('dy', off, 'f32');
      const add = (a: string, v: string) => `${a} + ${v}`;
      const lines = [
        ...rc.head(),
        `let k = 1.0 / sqrt(${b.loadAs('variance', 'row', 'f32')} + u.epsilon);`,
        `let s = ${b.loadAs('scale', 'row', 'f32')};`,
      ];
      if (ds) lines.push(`let m = ${b.loadAs('mean', 'row', 'f32')};`);
      if (ds) {
        lines.push(...rc.reduce('ds', 'f32', '0.0', add, (off) => `${dyAt(off)} * (${b.loadAs('x', off, 'f32')} - m) * k`));
        lines.push(rc.once(b.store('dscale', 'row', convert(computeTypeOf(ds.storage), 'f32', 'ds'))));
      }
      if (db) {
        lines.push(...rc.reduce('db', 'f32', '0.0', add, dyAt));
        lines.push(rc.once(b.store('dbias', 'row', convert(computeTypeOf(db.storage), 'f32', 'db'))));
      }
      if (dx) lines.push(...rc.forEach((off) => [b.store('dx', off, convert(computeTypeOf(dx.storage), 'f32', `${dyAt(off)} * s * k`))]));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: { ...layout.values(), epsilon: eps } };
    },
  };
}

const batchNormGrad: GpuKernel = {
  plan(node, inputs, outputs) {
    const names = ['dY', 'X', 'scale', 'mean', 'var'];
    const ins = names.map((n, i) => floatOnly(node.op, n, inputs[i]));
    const x = ins[1]!;
    if (x.shape.length < 2) throw new ShapeError(`BatchNormGrad: X must be [N, C, ...], got [${x.shape.join(', ')}].`);
    const C = x.shape[1]!;
    for (const i of [2, 3, 4]) {
      if (sizeOfShape(ins[i]!.shape) !== C) throw new ShapeError(`BatchNormGrad: ${names[i]} has ${sizeOfShape(ins[i]!.shape)} elements but X has ${C} channels.`);
    }
    const outs = [0, 1, 2].map((i) => outputs[i]);
    if (!outs.some(Boolean) || C === 0) return { calls: [] };
    const tensors: TensorSlot[] = (outs[1] ? [0, 1, 2, 3, 4] : [0, 2, 4]).map((i) => ({ input: i }));
    outs.forEach((o, i) => o && tensors.push({ output: i }));
    return { calls: [{ program: batchNormGradProgram(ins, outs, attrFloat(node, 'epsilon', 1e-5)), tensors }] };
  },
};

/** Strides reading Scale (unidirectionally broadcast to X's shape) at X's coordinates: 0 on broadcast axes. */
function broadcastStrides(s: readonly number[], x: readonly number[]): number[] {
  const lead = x.length - s.length;
  if (lead < 0) throw new ShapeError(`LayerNormGrad: Scale [${s.join(', ')}] has a higher rank than X [${x.join(', ')}].`);
  const own = stridesFor(s);
  return x.map((d, i) => {
    if (i < lead) return 0;
    const sd = s[i - lead]!;
    if (sd !== d && sd !== 1) throw new ShapeError(`LayerNormGrad: Scale [${s.join(', ')}] does not broadcast to X [${x.join(', ')}].`);
    return sd === 1 ? 0 : own[i - lead]!;
  });
}

function layerNormGradProgram(dy: GpuTensorInfo, x: GpuTensorInfo, scale: GpuTensorInfo, dx: GpuTensorInfo | undefined, dsf: GpuTensorInfo | undefined, axis: number, eps: number): ProgramSpec {
  const rank = x.shape.length;
  const layout = new RowLayout(rowView(x.shape, Array.from({ length: rank - axis }, (_, i) => axis + i)));
  const bindings: BindingDecl[] = [
    { name: 'dy', type: dy.storage }, { name: 'x', type: x.storage }, { name: 'scale', type: scale.storage },
    ...(dx ? [{ name: 'dx', type: dx.storage }] : []),
    ...(dsf ? [{ name: 'dscale', type: dsf.storage }] : []),
  ];
  return {
    key: `train:layernorm-grad:${dx ? 'x' : ''}${dsf ? 's' : ''}:r${rank}:${layout.key}`,
    bindings,
    uniforms: [
      ...layout.uniforms(),
      { name: 'epsilon', type: 'f32' },
      { name: 'x_shape', type: 'u32', length: rank },
      { name: 'scale_strides', type: 'u32', length: rank },
    ],
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const coords = b.coordsFn('x_coords', 'x_shape', rank);
      b.helper(`fn scale_offset(i: u32) -> u32 {
  let c = ${coords}(i);
  return ${b.offset('c', 'scale_strides', rank)};
}`);
      const add = (a: string, v: string) => `${a} + ${v}`;
      const xAt = (off: string) => b.loadAs('x', off, 'f32');
      const gAt = (off: string) => `${b.loadAs('dy', off, 'f32')} * ${b.loadAs('scale', `scale_offset(${off})`, 'f32')}`;
      const lines = [
        ...rc.head(),
        ...rc.reduce('x_sum', 'f32', '0.0', add, xAt),
        'let mu = x_sum / f32(u.row_len);',
        ...rc.reduce('sq_sum', 'f32', '0.0', add, (off) => `(${xAt(off)} - mu) * (${xAt(off)} - mu)`),
        'let rstd = 1.0 / sqrt(sq_sum / f32(u.row_len) + u.epsilon);',
        ...rc.reduce('g_sum', 'f32', '0.0', add, gAt),
        ...rc.reduce('gx_sum', 'f32', '0.0', add, (off) => `${gAt(off)} * (${xAt(off)} - mu) * rstd`),
        'let mean_g = g_sum / f32(u.row_len);',
        'let mean_gx = gx_sum / f32(u.row_len);',
      ];
      lines.push(...rc.forEach((off) => {
        const body = [`let xhat = (${xAt(off)} - mu) * rstd;`];
        if (dx) body.push(b.store('dx', off, convert(computeTypeOf(dx.storage), 'f32', `rstd * (${gAt(off)} - mean_g - xhat * mean_gx)`)));
        if (dsf) body.push(b.store('dscale', off, convert(computeTypeOf(dsf.storage), 'f32', `${b.loadAs('dy', off, 'f32')} * xhat`)));
        return body;
      }));
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: layout.workgroups(),
        uniforms: { ...layout.values(), epsilon: eps, x_shape: x.shape, scale_strides: broadcastStrides(scale.shape, x.shape) },
      };
    },
  };
}

const layerNormGrad: GpuKernel = {
  plan(node, [dy, x, scale], [dx, dsf]) {
    floatOnly(node.op, 'dY', dy);
    floatOnly(node.op, 'X', x);
    floatOnly(node.op, 'Scale', scale);
    const axis = normalizeAxis(attrInt(node, 'axis', -1), x!.shape.length, 'LayerNormGrad axis');
    broadcastStrides(scale!.shape, x!.shape);
    if ((!dx && !dsf) || sizeOfShape(x!.shape) === 0) return { calls: [] };
    const tensors: TensorSlot[] = [{ input: 0 }, { input: 1 }, { input: 2 }, ...(dx ? [{ output: 0 }] : []), ...(dsf ? [{ output: 1 }] : [])];
    return { calls: [{ program: layerNormGradProgram(dy!, x!, scale!, dx, dsf, axis, attrFloat(node, 'epsilon', 1e-5)), tensors }] };
  },
};

export const kernels: Record<string, GpuKernel> = { BatchNormGrad: batchNormGrad, LayerNormGrad: layerNormGrad };
