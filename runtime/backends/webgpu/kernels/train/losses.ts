import { DTypeError, InvalidArgumentError, ShapeError } from '../../../../errors.js';
import { attrFloat, attrInt, attrString, type Node } from '../../../../ir/graph.js';
import { dispatchLinear, sizeOfShape, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramSpec } from '../../program.js';
import { computeTypeOf } from '../../storage.js';
import { convert, type ShaderBuilder } from '../../wgsl/builder.js';
import { mathHelper } from '../../wgsl/math.js';
import { kindOf } from '../elementwise.js';
import { RowLayout } from '../rows.js';
import { floatOnly, nanValue, singleRow } from './common.js';

/**
 * The losses and their gradients: twins of runtime/train/ops/losses.ts (PyTorch semantics).
 *   CrossEntropyLoss(logits [N, C, d..], target): one workgroup reduces the per-position losses (each position
 *     computes its log-sum-exp over C) and counts the positions that are not ignore_index; mean divides by that
 *     count (index targets) or by N * prod(d) (probability targets).
 *   CrossEntropyLossGrad(dLoss, logits, target): a one-workgroup dispatch computes the divisor into a scratch
 *     scalar, then one invocation per position writes (p_c sum(t') - t'_c) dLoss / divisor over its C logits.
 *   BCEWithLogitsLoss: one workgroup sums max(x, 0) - x t + log(1 + exp(-|x|)); its grad is elementwise
 *     (sigmoid(x) - t) dLoss / divisor.
 * One difference from the CPU: a class index outside [0, C) (and not ignore_index) cannot throw inside a shader, so
 * it makes the loss and its position's gradient NaN, which the trainer's NaN guard reports and skips.
 */

type Reduction = 'mean' | 'sum';

function reduction(node: Node): Reduction {
  const r = attrString(node, 'reduction', 'mean');
  if (r !== 'mean' && r !== 'sum') throw new InvalidArgumentError(`${node.op} reduction must be 'mean' or 'sum' (a scalar loss), got '${r}'.`);
  return r;
}

interface CeGeometry {
  n: number; c: number; inner: number; positions: number;
  probs: boolean; eps: number; ignore: number; red: Reduction;
}

function ceGeometry(node: Node, x: GpuTensorInfo, t: GpuTensorInfo): CeGeometry {
  floatOnly(node.op, 'logits', x);
  if (x.shape.length < 2) throw new ShapeError(`${node.op} logits must be [N, C, ...], got [${x.shape.join(', ')}].`);
  const kind = kindOf(t.dtype);
  if (kind === 'b') throw new DTypeError(`${node.op} target must hold class indices (int) or probabilities (float), got ${t.dtype}.`);
  const probs = kind === 'f';
  const want = probs ? x.shape : [x.shape[0]!, ...x.shape.slice(2)];
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${node.op} target [${t.shape.join(', ')}] does not fit logits [${x.shape.join(', ')}].`);
  }
  const eps = attrFloat(node, 'label_smoothing', 0);
  if (!(eps >= 0 && eps <= 1)) throw new InvalidArgumentError(`${node.op} label_smoothing must be in [0, 1], got ${eps}.`);
  const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
  return { n: x.shape[0]!, c: x.shape[1]!, inner, positions: x.shape[0]! * inner, probs, eps, ignore: attrInt(node, 'ignore_index', -100), red: reduction(node) };
}

const CE_UNIFORMS = [
  { name: 'classes', type: 'u32' as const }, { name: 'inner', type: 'u32' as const }, { name: 'positions', type: 'u32' as const },
  { name: 'eps', type: 'f32' as const }, { name: 'ignore_index', type: 'i32' as const },
];
const ceValues = (g: CeGeometry) => ({ classes: g.c, inner: g.inner, positions: g.positions, eps: g.eps, ignore_index: g.ignore });

/**
 * WGSL helpers of one cross-entropy position `pos` (n = pos / inner, i = pos % inner; logit c at
 * (n C + c) inner + i): `ce_label(pos)` (index targets: the class, -1 when ignored, C when out of range) and
 * `ce_loss(pos)` = -sum_c t'_c log softmax(x)_c (0 for an ignored position, NaN for a bad label).
 */
function ceHelpers(b: ShaderBuilder, probs: boolean): void {
  const nan = nanValue(b);
  b.helper(`fn ce_at(pos: u32, c: u32) -> u32 {
  return ((pos / u.inner) * u.classes + c) * u.inner + pos % u.inner;
}`);
  b.helper(`fn ce_lse(pos: u32) -> f32 {
  var m = ${b.infinity(true)};
  for (var c = 0u; c < u.classes; c = c + 1u) { m = max(m, ${b.loadAs('x', 'ce_at(pos, c)', 'f32')}); }
  var s = 0.0;
  for (var c = 0u; c < u.classes; c = c + 1u) { s = s + exp(${b.loadAs('x', 'ce_at(pos, c)', 'f32')} - m); }
  return m + log(s);
}`);
  if (probs) {
    b.helper(`fn ce_target(pos: u32, c: u32) -> f32 {
  return (1.0 - u.eps) * ${b.loadAs('t', 'ce_at(pos, c)', 'f32')} + u.eps / f32(u.classes);
}`);
    b.helper(`fn ce_loss(pos: u32) -> f32 {
  let lse = ce_lse(pos);
  var total = 0.0;
  for (var c = 0u; c < u.classes; c = c + 1u) { total = total - ce_target(pos, c) * (${b.loadAs('x', 'ce_at(pos, c)', 'f32')} - lse); }
  return total;
}`);
  } else {
    b.helper(`fn ce_label(pos: u32) -> i32 {
  let y = ${b.loadAs('t', 'pos', 'i32')};
  if (y == u.ignore_index) { return -1; }
  return select(y, i32(u.classes), y < 0 || y >= i32(u.classes));
}`);
    b.helper(`fn ce_target(label: i32, c: u32) -> f32 {
  return select(0.0, 1.0 - u.eps, i32(c) == label) + u.eps / f32(u.classes);
}`);
    b.helper(`fn ce_loss(pos: u32) -> f32 {
  let label = ce_label(pos);
  if (label < 0) { return 0.0; }
  if (label >= i32(u.classes)) { return ${nan}; }
  let lse = ce_lse(pos);
  var total = 0.0;
  for (var c = 0u; c < u.classes; c = c + 1u) { total = total - ce_target(label, c) * (${b.loadAs('x', 'ce_at(pos, c)', 'f32')} - lse); }
  return total;
}`);
  }
}

/** The divisor of a mean (count of counted positions), as an f32 expression inside a single-row program. */
function ceDivisorLines(b: ShaderBuilder, layout: RowLayout, g: CeGeometry): string[] {
  const rc = layout.code(b);
  if (g.red === 'sum') return ['let divisor = 1.0;'];
  if (g.probs) return ['let divisor = f32(u.positions);'];
  return [...rc.reduce('counted', 'u32', '0u', (a, v) => `${a} + ${v}`, (_off, r) => `select(1u, 0u, ce_label(${r}) < 0)`), 'let divisor = f32(counted);'];
}

function ceLossProgram(g: CeGeometry, x: GpuTensorInfo, t: GpuTensorInfo, y: GpuTensorInfo): ProgramSpec {
  const layout = new RowLayout(singleRow(g.positions), 'group');
  return {
    key: `train:cross-entropy:${g.probs ? 'probs' : 'index'}:${g.red}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 't', type: t.storage }, { name: 'y', type: y.storage }],
    uniforms: [...layout.uniforms(), ...CE_UNIFORMS],
    workgroupSize: layout.workgroupSize,
    source(b) {
      ceHelpers(b, g.probs);
      const rc = layout.code(b);
      const lines = [...rc.head(), ...rc.reduce('total', 'f32', '0.0', (a, v) => `${a} + ${v}`, (_off, r) => `ce_loss(${r})`)];
      lines.push(...ceDivisorLines(b, layout, g));
      // 0 counted positions: 0 / 0, NaN as in PyTorch (written explicitly: WGSL need not produce it).
      lines.push(rc.once(b.store('y', '0u', convert(computeTypeOf(y.storage), 'f32', `select(total / divisor, ${nanValue(b)}, divisor == 0.0)`))));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: { ...layout.values(), ...ceValues(g) } };
    },
  };
}

/** Whether the divisor depends on the target (a mean over index targets counts the positions not ignored). */
const countsTarget = (g: CeGeometry) => !g.probs && g.red === 'mean';

function ceDivisorProgram(g: CeGeometry, t: GpuTensorInfo): ProgramSpec {
  const layout = new RowLayout(singleRow(g.positions), 'group');
  return {
    key: `train:cross-entropy-divisor:${g.probs ? 'probs' : 'index'}:${g.red}`,
    bindings: [...(countsTarget(g) ? [{ name: 't', type: t.storage }] : []), { name: 'divisor_out', type: 'f32' }],
    uniforms: [...layout.uniforms(), ...CE_UNIFORMS],
    workgroupSize: layout.workgroupSize,
    source(b) {
      if (countsTarget(g)) {
        b.helper(`fn ce_label(pos: u32) -> i32 {
  let y = ${b.loadAs('t', 'pos', 'i32')};
  if (y == u.ignore_index) { return -1; }
  return select(y, i32(u.classes), y < 0 || y >= i32(u.classes));
}`);
      }
      const rc = layout.code(b);
      const lines = [...rc.head(), ...ceDivisorLines(b, layout, g), rc.once(b.store('divisor_out', '0u', 'divisor'))];
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: { ...layout.values(), ...ceValues(g) } };
    },
  };
}

const WG = 64;

function ceGradProgram(g: CeGeometry, d: GpuTensorInfo, x: GpuTensorInfo, t: GpuTensorInfo, dx: GpuTensorInfo): ProgramSpec {
  return {
    key: `train:cross-entropy-grad:${g.probs ? 'probs' : 'index'}`,
    bindings: [{ name: 'dloss', type: d.storage }, { name: 'x', type: x.storage }, { name: 't', type: t.storage }, { name: 'divisor', type: 'f32' }, { name: 'dx', type: dx.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, ...CE_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(b) {
      ceHelpers(b, g.probs);
      const T = computeTypeOf(dx.storage);
      const lines = [b.linearIndex('u.size'), 'let pos = index;', `let k = ${b.loadAs('dloss', '0u', 'f32')} / divisor[0];`];
      if (g.probs) {
        lines.push(
          'let lse = ce_lse(pos);',
          'var t_sum = 0.0;',
          'for (var c = 0u; c < u.classes; c = c + 1u) { t_sum = t_sum + ce_target(pos, c); }',
          'for (var c = 0u; c < u.classes; c = c + 1u) {',
          `  let p = exp(${b.loadAs('x', 'ce_at(pos, c)', 'f32')} - lse);`,
          `  ${b.store('dx', 'ce_at(pos, c)', convert(T, 'f32', '(p * t_sum - ce_target(pos, c)) * k'))}`,
          '}',
        );
      } else {
        lines.push(
          'let label = ce_label(pos);',
          'let bad = label >= i32(u.classes);',
          'let lse = ce_lse(pos);',
          'let t_sum = 1.0 - u.eps + u.eps; // sum of the smoothed one-hot target',
          'for (var c = 0u; c < u.classes; c = c + 1u) {',
          `  let p = exp(${b.loadAs('x', 'ce_at(pos, c)', 'f32')} - lse);`,
          `  var v = (p * t_sum - ce_target(label, c)) * k;`,
          '  if (label < 0) { v = 0.0; }',
          `  if (bad) { v = ${nanValue(b)}; }`,
          `  ${b.store('dx', 'ce_at(pos, c)', convert(T, 'f32', 'v'))}`,
          '}',
        );
      }
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: dispatchLinear(g.positions, WG), uniforms: { size: g.positions, ...ceValues(g) } };
    },
  };
}

const crossEntropy: GpuKernel = {
  plan(node, [x, t], [y]) {
    const g = ceGeometry(node, x!, t!);
    return { calls: [{ program: ceLossProgram(g, x!, t!, y!), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

const crossEntropyGrad: GpuKernel = {
  plan(node, [d, x, t], [dx]): KernelPlan {
    floatOnly(node.op, 'dLoss', d);
    const g = ceGeometry(node, x!, t!);
    if (sizeOfShape(x!.shape) === 0) return { calls: [] };
    return {
      scratch: [{ dtype: 'float32', shape: [1], storage: 'f32' }],
      calls: [
        { program: ceDivisorProgram(g, t!), tensors: [...(countsTarget(g) ? [{ input: 2 }] : []), { scratch: 0 }] },
        { program: ceGradProgram(g, d!, x!, t!, dx!), tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { scratch: 0 }, { output: 0 }] },
      ],
    };
  },
};

function bceCheck(node: Node, x: GpuTensorInfo | undefined, t: GpuTensorInfo | undefined): void {
  floatOnly(node.op, 'logits', x);
  if (!t || kindOf(t.dtype) !== 'f') throw new DTypeError(`${node.op} target must be a float tensor of 0/1 (or soft) labels, got ${t?.dtype}.`);
  if (t.shape.length !== x!.shape.length || t.shape.some((d, i) => d !== x!.shape[i])) {
    throw new ShapeError(`${node.op} target [${t.shape.join(', ')}] must have the logits' shape [${x!.shape.join(', ')}].`);
  }
}

function bceLossProgram(red: Reduction, x: GpuTensorInfo, t: GpuTensorInfo, y: GpuTensorInfo): ProgramSpec {
  const n = sizeOfShape(x.shape);
  const layout = new RowLayout(singleRow(n), 'group');
  return {
    key: `train:bce-with-logits:${red}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 't', type: t.storage }, { name: 'y', type: y.storage }],
    uniforms: layout.uniforms(),
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const term = (off: string) => `bce_term(${b.loadAs('x', off, 'f32')}, ${b.loadAs('t', off, 'f32')})`;
      b.helper(`fn bce_term(v: f32, t: f32) -> f32 {
  return max(v, 0.0) - v * t + log(1.0 + exp(-abs(v)));
}`);
      const lines = [...rc.head(), ...rc.reduce('total', 'f32', '0.0', (a, v) => `${a} + ${v}`, term)];
      const divisor = red === 'sum' ? '1.0' : 'f32(u.row_len)';
      lines.push(rc.once(b.store('y', '0u', convert(computeTypeOf(y.storage), 'f32', `select(total / ${divisor}, ${nanValue(b)}, u.row_len == 0u)`))));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: layout.values() };
    },
  };
}

function bceGradProgram(red: Reduction, d: GpuTensorInfo, x: GpuTensorInfo, t: GpuTensorInfo, dx: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape(x.shape);
  return {
    key: 'train:bce-with-logits-grad',
    bindings: [{ name: 'dloss', type: d.storage }, { name: 'x', type: x.storage }, { name: 't', type: t.storage }, { name: 'dx', type: dx.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'divisor', type: 'f32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const sigmoid = mathHelper(b, 'sigmoid', 'f32');
      const lines = [
        b.linearIndex('u.size'),
        `let k = ${b.loadAs('dloss', '0u', 'f32')} / u.divisor;`,
        b.store('dx', 'index', convert(computeTypeOf(dx.storage), 'f32', `(${sigmoid}(${b.loadAs('x', 'index', 'f32')}) - ${b.loadAs('t', 'index', 'f32')}) * k`)),
      ];
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, divisor: red === 'sum' ? 1 : size } };
    },
  };
}

const bceWithLogits: GpuKernel = {
  plan(node, [x, t], [y]) {
    bceCheck(node, x, t);
    return { calls: [{ program: bceLossProgram(reduction(node), x!, t!, y!), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

const bceWithLogitsGrad: GpuKernel = {
  plan(node, [d, x, t], [dx]) {
    floatOnly(node.op, 'dLoss', d);
    bceCheck(node, x, t);
    if (sizeOfShape(x!.shape) === 0) return { calls: [] };
    return { calls: [{ program: bceGradProgram(reduction(node), d!, x!, t!, dx!), tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = {
  CrossEntropyLoss: crossEntropy,
  CrossEntropyLossGrad: crossEntropyGrad,
  BCEWithLogitsLoss: bceWithLogits,
  BCEWithLogitsLossGrad: bceWithLogitsGrad,
};
