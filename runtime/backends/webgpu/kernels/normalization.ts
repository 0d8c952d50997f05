import { attrFloat, attrInt, type Node } from '../../../ir/graph.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert, type BindingDecl, type ShaderBuilder, type UniformDecl } from '../wgsl/builder.js';
import { kindOf } from './elementwise.js';
import { RowLayout, rowView, type RowView } from './rows.js';

/**
 * Softmax-13 / LogSoftmax-13 / Hardmax-13 and the normalizations (LayerNormalization-17, InstanceNormalization-6,
 * GroupNormalization-21, BatchNormalization-15 in inference and training) on the row skeleton (rows.ts). Statistics are two
 * passes (mean, then the mean of squared deviations), never E[x^2] - E[x]^2, which cancels badly in f32.
 * Softmax subtracts the row maximum before exponentiating; LogSoftmax is x - max - log(sum), not log(softmax).
 */

function floatOnly(op: string, x: GpuTensorInfo): void {
  if (kindOf(x.dtype) !== 'f') throw new GpuUnsupported(`${op} on ${x.dtype} has no WebGPU kernel`);
}

function maxHelper(b: ShaderBuilder): (a: string, v: string) => string {
  // The first NaN is the maximum (as the CPU reference's numpy.argmax rule): a NaN row stays NaN.
  b.helper(`fn max_nan(a: f32, v: f32) -> f32 {
  let a_nan = (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u;
  let v_nan = (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
  return select(max(a, v), select(v, a, a_nan), a_nan || v_nan);
}`);
  return (a, v) => `max_nan(${a}, ${v})`;
}

function softmaxProgram(op: 'Softmax' | 'LogSoftmax' | 'Hardmax', x: GpuTensorInfo, y: GpuTensorInfo, view: RowView): ProgramSpec {
  const layout = new RowLayout(view);
  return {
    key: `${op.toLowerCase()}:${layout.key}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: layout.uniforms(),
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const T = computeTypeOf(y.storage);
      const load = (off: string) => b.loadAs('x', off, 'f32');
      const lines = [...rc.head(), ...rc.reduce('m', 'f32', b.infinity(true), maxHelper(b), load)];
      if (op === 'Hardmax') {
        // The first position holding the maximum (a NaN maximum matches through its bits).
        lines.push(...rc.reduce('arg', 'u32', 'u.row_len', (a, v) => `min(${a}, ${v})`, (off, r) => `select(u.row_len, ${r}, bitcast<u32>(${load(off)}) == bitcast<u32>(m))`));
        lines.push(...rc.forEach((off, r) => [b.store('y', off, convert(T, 'f32', `select(0.0, 1.0, ${r} == arg)`))]));
      } else {
        lines.push(...rc.reduce('s', 'f32', '0.0', (a, v) => `${a} + ${v}`, (off) => `exp(${load(off)} - m)`));
        if (op === 'LogSoftmax') lines.push('let log_s = log(s);');
        const value = op === 'Softmax' ? `exp(${load('off')} - m) / s` : `${load('off')} - m - log_s`;
        lines.push(...rc.forEach((off) => [b.store('y', off, convert(T, 'f32', value.replace(/\boff\b/g, off)))]));
      }
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: layout.values() };
    },
  };
}

function softmax(op: 'Softmax' | 'LogSoftmax' | 'Hardmax'): GpuKernel {
  return {
    plan(node, [x], [y]) {
      floatOnly(op, x!);
      const axis = normalizeAxis(attrInt(node, 'axis', -1), x!.shape.length);
      if (sizeOfShape(x!.shape) === 0) return { calls: [] };
      return { calls: [{ program: softmaxProgram(op, x!, y!, rowView(x!.shape, [axis])), tensors: [{ input: 0 }, { output: 0 }] }] };
    },
  };
}

/**
 * Where a normalization reads its per-element scale and bias:
 * - 'row': element r of the row (LayerNorm with Scale of the normalized shape);
 * - 'one': a single value;
 * - 'bcast': LayerNorm's general unidirectional broadcast, through X's coordinates;
 * - 'channel': per channel c = (row % C) (InstanceNorm: rows are [N, C]);
 * - 'group': per channel c = (row % G) * C/G + r / spatial (GroupNorm: rows are [N, G], a row spans C/G channels).
 */
type ParamMode = 'row' | 'one' | 'bcast' | 'channel' | 'group';

interface NormSpec {
  kind: string;
  x: GpuTensorInfo;
  scale: GpuTensorInfo;
  bias?: GpuTensorInfo;
  y: GpuTensorInfo;
  view: RowView;
  mode: ParamMode;
  epsilon: number;
  /** Extra uniforms of the mode (channels, groups, spatial size, broadcast strides). */
  uniforms: UniformDecl[];
  values: Record<string, number | number[]>;
  /** LayerNorm's optional Mean / InvStdDev outputs. */
  stats: { mean?: GpuTensorInfo; invStd?: GpuTensorInfo };
}

function normProgram(s: NormSpec): ProgramSpec {
  const layout = new RowLayout(s.view);
  const bindings: BindingDecl[] = [
    { name: 'x', type: s.x.storage },
    { name: 'scale', type: s.scale.storage },
    ...(s.bias ? [{ name: 'bias', type: s.bias.storage }] : []),
    { name: 'y', type: s.y.storage },
    ...(s.stats.mean ? [{ name: 'mean_out', type: s.stats.mean.storage }] : []),
    ...(s.stats.invStd ? [{ name: 'inv_std_out', type: s.stats.invStd.storage }] : []),
  ];
  return {
    key: `norm:${s.kind}:${s.mode}:${s.bias ? 'bias' : 'nobias'}${s.stats.mean ? ':mean' : ''}${s.stats.invStd ? ':invstd' : ''}:${layout.key}`,
    bindings,
    uniforms: [...layout.uniforms(), { name: 'epsilon', type: 'f32' }, ...s.uniforms],
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const T = computeTypeOf(s.y.storage);
      const load = (off: string) => b.loadAs('x', off, 'f32');
      const rank = s.x.shape.length;
      // Lines computing `p`, the scale/bias index of element r (at offset `off`) of the row.
      const param = (off: string, r: string): string[] => {
        switch (s.mode) {
          case 'row': return [`let p = ${r};`];
          case 'one': return ['let p = 0u;'];
          case 'channel': return ['let p = row % u.channels;'];
          case 'group': return [`let p = (row % u.groups) * u.group_channels + ${r} / u.spatial;`];
          case 'bcast': return [`let pc = ${b.coordsFn('x_coords', 'x_shape', rank)}(${off});`, `let p = ${b.offset('pc', 'param_strides', rank)};`];
        }
      };
      const lines = [
        ...rc.head(),
        ...rc.reduce('sum', 'f32', '0.0', (a, v) => `${a} + ${v}`, load),
        'let mean = sum / f32(u.row_len);',
        ...rc.reduce('sq', 'f32', '0.0', (a, v) => `${a} + ${v}`, (off) => `(${load(off)} - mean) * (${load(off)} - mean)`),
        'let inv_std = 1.0 / sqrt(sq / f32(u.row_len) + u.epsilon);',
        ...rc.forEach((off, r) => {
          const bias = s.bias ? ` + ${b.loadAs('bias', 'p', 'f32')}` : '';
          return [...param(off, r), b.store('y', off, convert(T, 'f32', `(${load(off)} - mean) * inv_std * ${b.loadAs('scale', 'p', 'f32')}${bias}`))];
        }),
      ];
      if (s.stats.mean) lines.push(rc.once(b.store('mean_out', 'row', convert(computeTypeOf(s.stats.mean.storage), 'f32', 'mean'))));
      if (s.stats.invStd) lines.push(rc.once(b.store('inv_std_out', 'row', convert(computeTypeOf(s.stats.invStd.storage), 'f32', 'inv_std'))));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: { ...layout.values(), epsilon: s.epsilon, ...s.values } };
    },
  };
}

function normPlan(s: NormSpec, inputs: TensorSlot[]): KernelPlan {
  if (sizeOfShape(s.x.shape) === 0) return { calls: [] };
  const tensors: TensorSlot[] = [...inputs, { output: 0 }];
  if (s.stats.mean) tensors.push({ output: 1 });
  if (s.stats.invStd) tensors.push({ output: 2 });
  return { calls: [{ program: normProgram(s), tensors }] };
}

/** LayerNormalization: rows over the trailing axes [axis, rank). */
const layerNorm: GpuKernel = {
  plan(node: Node, [x, scale, bias], outputs) {
    floatOnly('LayerNormalization', x!);
    const shape = x!.shape;
    const axis = normalizeAxis(attrInt(node, 'axis', -1), shape.length);
    const view = rowView(shape, Array.from({ length: shape.length - axis }, (_, i) => axis + i));
    const modeOf = (p: GpuTensorInfo): ParamMode => {
      const n = sizeOfShape(p.shape);
      if (n === 1) return 'one';
      const aligned = [...new Array<number>(shape.length - p.shape.length).fill(1), ...p.shape];
      const rowShaped = aligned.every((d, i) => (i < axis ? d === 1 : d === shape[i]));
      return rowShaped ? 'row' : 'bcast';
    };
    // Scale and bias share one mode; where they differ, the general broadcast serves both.
    let mode = modeOf(scale!);
    if (bias && modeOf(bias) !== mode) mode = 'bcast';
    const values: Record<string, number | number[]> = {};
    const uniforms: UniformDecl[] = [];
    if (mode === 'bcast') {
      if (bias && bias.shape.join() !== scale!.shape.join()) throw new GpuUnsupported('LayerNormalization with Scale and B of different broadcast shapes has no WebGPU kernel');
      const aligned = [...new Array<number>(shape.length - scale!.shape.length).fill(1), ...scale!.shape];
      const st = stridesFor(aligned);
      uniforms.push({ name: 'x_shape', type: 'u32', length: shape.length }, { name: 'param_strides', type: 'u32', length: shape.length });
      values.x_shape = shape;
      values.param_strides = aligned.map((d, i) => (d === 1 ? 0 : st[i]!));
    }
    const [, mean, invStd] = outputs;
    return normPlan(
      { kind: 'layer', x: x!, scale: scale!, bias, y: outputs[0]!, view, mode, epsilon: attrFloat(node, 'epsilon', 1e-5), uniforms, values, stats: { mean, invStd } },
      [{ input: 0 }, { input: 1 }, ...(bias ? [{ input: 2 }] : [])],
    );
  },
};

const instanceNorm: GpuKernel = {
  plan(node, [x, scale, bias], [y]) {
    floatOnly('InstanceNormalization', x!);
    const shape = x!.shape;
    const rows = shape[0]! * shape[1]!;
    const rowLen = sizeOfShape(shape.slice(2));
    const view: RowView = { rows, rowLen, keptShape: [rows], keptStrides: [rowLen], redShape: [rowLen], redStrides: [1] };
    return normPlan(
      {
        kind: 'instance', x: x!, scale: scale!, bias, y: y!, view, mode: 'channel', epsilon: attrFloat(node, 'epsilon', 1e-5),
        uniforms: [{ name: 'channels', type: 'u32' }], values: { channels: shape[1]! }, stats: {},
      },
      [{ input: 0 }, { input: 1 }, { input: 2 }],
    );
  },
};

const groupNorm: GpuKernel = {
  plan(node, [x, scale, bias], [y]) {
    floatOnly('GroupNormalization', x!);
    const shape = x!.shape;
    const groups = attrInt(node, 'num_groups', 1);
    const [n, c] = [shape[0]!, shape[1]!];
    const spatial = sizeOfShape(shape.slice(2));
    const rowLen = (c / groups) * spatial;
    const view: RowView = { rows: n * groups, rowLen, keptShape: [n * groups], keptStrides: [rowLen], redShape: [rowLen], redStrides: [1] };
    return normPlan(
      {
        kind: 'group', x: x!, scale: scale!, bias, y: y!, view, mode: 'group', epsilon: attrFloat(node, 'epsilon', 1e-5),
        uniforms: [{ name: 'groups', type: 'u32' }, { name: 'group_channels', type: 'u32' }, { name: 'spatial', type: 'u32' }],
        values: { groups, group_channels: c / groups, spatial: Math.max(spatial, 1) },
        stats: {},
      },
      [{ input: 0 }, { input: 1 }, { input: 2 }],
    );
  },
};

/** BatchNormalization in inference: per channel y = (x - mean) * scale / sqrt(var + epsilon) + B, elementwise. */
function batchNormProgram(x: GpuTensorInfo, params: GpuTensorInfo[], y: GpuTensorInfo, epsilon: number): ProgramSpec {
  const size = sizeOfShape(x.shape);
  const WG = 64;
  return {
    key: 'batchnorm',
    bindings: [{ name: 'x', type: x.storage }, ...['scale', 'bias', 'input_mean', 'input_var'].map((name, i) => ({ name, type: params[i]!.storage })), { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'channels', type: 'u32' }, { name: 'inner', type: 'u32' }, { name: 'epsilon', type: 'f32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
      b.main(`${b.linearIndex('u.size')}
  let c = (index / u.inner) % u.channels;
  let k = ${f('scale', 'c')} / sqrt(${f('input_var', 'c')} + u.epsilon);
  ${b.store('y', 'index', convert(computeTypeOf(y.storage), 'f32', `(${f('x', 'index')} - ${f('input_mean', 'c')}) * k + ${f('bias', 'c')}`))}`);
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: { size, channels: x.shape[1] ?? 1, inner: sizeOfShape(x.shape.slice(2)), epsilon },
      };
    },
  };
}

/**
 * BatchNormalization-15 with training_mode=1, pass 1: per channel (rows of X [N, C, inner] reduced over N and
 * inner) the batch mean and population variance, two passes as above, into f32 scratch; with the optional outputs,
 * running_mean = input_mean * momentum + mean * (1 - momentum), and the same for the variance (ONNX spec).
 */
function batchStatsProgram(x: GpuTensorInfo, view: RowView, running: { mean: GpuTensorInfo; input: GpuTensorInfo }[], momentum: number): ProgramSpec {
  const layout = new RowLayout(view);
  const names = [['input_mean', 'running_mean'], ['input_var', 'running_var']] as const;
  return {
    key: `batchnorm-stats:${running.length}:${layout.key}`,
    bindings: [
      { name: 'x', type: x.storage },
      { name: 'batch_mean', type: 'f32' },
      { name: 'batch_var', type: 'f32' },
      ...running.flatMap((r, i) => [{ name: names[i]![0], type: r.input.storage }, { name: names[i]![1], type: r.mean.storage }]),
    ],
    uniforms: [...layout.uniforms(), { name: 'momentum', type: 'f32' }],
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const load = (off: string) => b.loadAs('x', off, 'f32');
      const lines = [
        ...rc.head(),
        ...rc.reduce('sum', 'f32', '0.0', (a, v) => `${a} + ${v}`, load),
        'let mean = sum / f32(u.row_len);',
        ...rc.reduce('sq', 'f32', '0.0', (a, v) => `${a} + ${v}`, (off) => `(${load(off)} - mean) * (${load(off)} - mean)`),
        'let variance = sq / f32(u.row_len);',
        rc.once('batch_mean[row] = mean;'),
        rc.once('batch_var[row] = variance;'),
      ];
      running.forEach((r, i) => {
        const [input, out] = names[i]!;
        const batch = i === 0 ? 'mean' : 'variance';
        const value = `${b.loadAs(input, 'row', 'f32')} * u.momentum + ${batch} * (1.0 - u.momentum)`;
        lines.push(rc.once(b.store(out, 'row', convert(computeTypeOf(r.mean.storage), 'f32', value))));
      });
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: { ...layout.values(), momentum } };
    },
  };
}

const batchNorm: GpuKernel = {
  plan(node, [x, ...params], outputs) {
    floatOnly('BatchNormalization', x!);
    const training = attrInt(node, 'training_mode', 0) !== 0;
    if (!training && outputs.slice(1).some(Boolean)) {
      throw new GpuUnsupported('BatchNormalization with running_mean/running_var outputs but training_mode=0 has no WebGPU kernel');
    }
    if (outputs.length > 3) throw new GpuUnsupported('BatchNormalization with saved_mean/saved_var outputs (opset < 14) has no WebGPU kernel');
    if (x!.shape.length < 2) throw new GpuUnsupported('BatchNormalization needs an input of rank 2 or more');
    if (sizeOfShape(x!.shape) === 0) return { calls: [] };
    const epsilon = attrFloat(node, 'epsilon', 1e-5);
    if (!training) {
      const program = batchNormProgram(x!, params as GpuTensorInfo[], outputs[0]!, epsilon);
      return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { input: 3 }, { input: 4 }, { output: 0 }] }] };
    }
    // Training: statistics into scratch [C] (f32), then the inference kernel normalizes with them.
    const [n, c] = [x!.shape[0]!, x!.shape[1]!];
    const inner = sizeOfShape(x!.shape.slice(2));
    const view = rowView([n, c, inner], [0, 2]);
    const running: { mean: GpuTensorInfo; input: GpuTensorInfo }[] = [];
    const runningSlots: TensorSlot[] = [];
    const [, runMean, runVar] = outputs;
    if (runVar && !runMean) throw new GpuUnsupported('BatchNormalization with running_var but no running_mean output has no WebGPU kernel');
    if (runMean) {
      running.push({ mean: runMean, input: params[2]! });
      runningSlots.push({ input: 3 }, { output: 1 });
    }
    if (runVar) {
      running.push({ mean: runVar, input: params[3]! });
      runningSlots.push({ input: 4 }, { output: 2 });
    }
    const stat: GpuTensorInfo = { dtype: 'float32', shape: [c], storage: 'f32' };
    const stats = batchStatsProgram(x!, view, running, attrFloat(node, 'momentum', 0.9));
    const norm = batchNormProgram(x!, [params[0]!, params[1]!, stat, stat], outputs[0]!, epsilon);
    return {
      scratch: [stat, { ...stat }],
      calls: [
        { program: stats, tensors: [{ input: 0 }, { scratch: 0 }, { scratch: 1 }, ...runningSlots] },
        { program: norm, tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { scratch: 0 }, { scratch: 1 }, { output: 0 }] },
      ],
    };
  },
};

export const kernels: Record<string, GpuKernel> = {
  Softmax: softmax('Softmax'),
  LogSoftmax: softmax('LogSoftmax'),
  Hardmax: softmax('Hardmax'),
  LayerNormalization: layerNorm,
  InstanceNormalization: instanceNorm,
  GroupNormalization: groupNorm,
  BatchNormalization: batchNorm,
};
