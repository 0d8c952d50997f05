import { attrFloat, attrInt, type Node } from '../../../ir/graph.js';
import { resolveReduceAxes } from '../../../ir/ops/reduce.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert, type ShaderBuilder } from '../wgsl/builder.js';
import { constInts } from './copy.js';
import { kindOf } from './elementwise.js';
import { RowLayout, rowView, type RowView } from './rows.js';

/**
 * Reductions on the row skeleton (rows.ts): Reduce*-18 (axes input, keepdims, noop_with_empty_axes), the global
 * pools, ArgMax/ArgMin-13 and CumSum-14. Float data accumulates in f32 (f16 storage included); integers in their
 * 32-bit type, wrapping like the CPU reference's int32 results. Semantics follow the CPU reference
 * (backends/cpu/reduce-core.ts): NaN propagates through every reduction, Max/Min included; an empty reduction
 * gives the identity (Sum 0, Prod 1, Max -inf, Mean NaN).
 */

type Acc = 'f32' | 'i32' | 'u32';

interface ReduceDef {
  floatOnly?: boolean;
  init(t: Acc): string;
  /** Per-element value before combining (x already converted to Acc). */
  map?(x: string): string;
  combine(b: ShaderBuilder, t: Acc): (a: string, v: string) => string;
  /** Final value from the combined `acc` (and the element count `n`, a u32 expression). */
  finish?(acc: string, n: string, t: Acc): string;
}

function nanHelper(b: ShaderBuilder): string {
  b.helper(`fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`);
  return 'is_nan';
}

const LIMITS: Record<Acc, [string, string]> = {
  f32: ['-f32_infinity()', 'f32_infinity()'], // ShaderBuilder.infinity()
  i32: ['i32(-2147483647 - 1)', 'i32(2147483647)'],
  u32: ['0u', '0xffffffffu'],
};

/** max/min that let NaN through (WGSL's are free to drop it): a NaN operand makes the sum, hence the result, NaN. */
function extreme(fn: 'max' | 'min') {
  return (b: ShaderBuilder, t: Acc) => (a: string, v: string) =>
    t === 'f32' ? `select(${fn}(${a}, ${v}), ${a} + ${v}, ${nanHelper(b)}(${a}) || ${nanHelper(b)}(${v}))` : `${fn}(${a}, ${v})`;
}
const add = () => (a: string, v: string) => `${a} + ${v}`;

const REDUCE: Readonly<Record<string, ReduceDef>> = {
  ReduceSum: { init: (t) => `${t}(0)`, combine: add },
  ReduceMean: { init: (t) => `${t}(0)`, combine: add, finish: (a, n, t) => `${a} / ${t}(${n})` },
  ReduceProd: { init: (t) => `${t}(1)`, combine: () => (a: string, v: string) => `${a} * ${v}` },
  ReduceMax: { init: (t) => LIMITS[t][0], combine: extreme('max') },
  ReduceMin: { init: (t) => LIMITS[t][1], combine: extreme('min') },
  ReduceL1: { init: (t) => `${t}(0)`, map: (x) => `abs(${x})`, combine: add },
  ReduceSumSquare: { init: (t) => `${t}(0)`, map: (x) => `${x} * ${x}`, combine: add },
  ReduceL2: { floatOnly: true, init: () => '0.0', map: (x) => `${x} * ${x}`, combine: add, finish: (a) => `sqrt(${a})` },
  ReduceLogSum: { floatOnly: true, init: () => '0.0', combine: add, finish: (a) => `log(${a})` },
};

function accType(x: GpuTensorInfo): Acc {
  const k = kindOf(x.dtype);
  return k === 'f' ? 'f32' : k === 'i' ? 'i32' : 'u32';
}

/** One reduction program over `view`; `op` is a REDUCE entry or ReduceLogSumExp (two passes: max, then sum). */
function reduceProgram(op: string, x: GpuTensorInfo, y: GpuTensorInfo, view: RowView): ProgramSpec {
  const layout = new RowLayout(view);
  const t = accType(x);
  const def = REDUCE[op];
  return {
    key: `reduce:${op}:${layout.key}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: layout.uniforms(),
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const load = (off: string) => b.loadAs('x', off, t);
      if (t === 'f32') b.infinity();
      const lines = rc.head();
      let result: string;
      if (op === 'ReduceLogSumExp') {
        // log sum exp(x) = m + log sum exp(x - m), m the maximum; m = +-inf or NaN is the answer itself.
        lines.push(...rc.reduce('m', 'f32', LIMITS.f32[0], extreme('max')(b, 'f32'), (off) => load(off)));
        lines.push(`let finite = !(abs(m) == ${b.infinity()} || ${nanHelper(b)}(m));`);
        lines.push(...rc.reduce('s', 'f32', '0.0', add(), (off) => `select(0.0, exp(${load(off)} - m), finite)`));
        result = 'select(m, m + log(s), finite)';
      } else {
        lines.push(...rc.reduce('acc', t, def!.init(t), def!.combine(b, t), (off) => (def!.map ? def!.map(load(off)) : load(off))));
        result = def!.finish ? def!.finish('acc', 'u.row_len', t) : 'acc';
      }
      const T = computeTypeOf(y.storage);
      lines.push(rc.once(b.store('y', 'row', convert(T, t, result))));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: layout.values() };
    },
  };
}

function plan(op: string, x: GpuTensorInfo, y: GpuTensorInfo, axes: number[]): KernelPlan {
  if (sizeOfShape(y.shape) === 0) return { calls: [] };
  return { calls: [{ program: reduceProgram(op, x, y, rowView(x.shape, axes)), tensors: [{ input: 0 }, { output: 0 }] }] };
}

function reduceKernel(op: string): GpuKernel {
  return {
    hostInputs: [1],
    plan(node, [x, axesIn], [y]) {
      const k = kindOf(x!.dtype);
      if (k === 'b' || ((REDUCE[op]?.floatOnly || op === 'ReduceLogSumExp') && k !== 'f')) {
        throw new GpuUnsupported(`${op} on ${x!.dtype} has no WebGPU kernel`);
      }
      const axes = resolveReduceAxes(node, constInts(axesIn, op, 'axes') ?? [], x!.shape.length);
      return plan(op, x!, y!, axes);
    },
  };
}

/** Global pools: a reduction over every spatial axis of [N, C, ...]. */
function globalPool(op: string): GpuKernel {
  return {
    plan(node: Node, [x], [y]) {
      const spatial = Array.from({ length: x!.shape.length - 2 }, (_, i) => i + 2);
      if (op === 'GlobalLpPool') {
        const p = attrFloat(node, 'p', 2);
        if (p !== 1 && p !== 2) throw new GpuUnsupported(`GlobalLpPool with p=${p} has no WebGPU kernel (p = 1 or 2)`);
        return plan(p === 1 ? 'ReduceL1' : 'ReduceL2', x!, y!, spatial);
      }
      return plan(op === 'GlobalAveragePool' ? 'ReduceMean' : 'ReduceMax', x!, y!, spatial);
    },
  };
}

/**
 * ArgMax/ArgMin: one invocation per row walks the axis. NaN counts as the extreme (numpy): the first NaN wins, or
 * the last with select_last_index, and only another NaN (with select_last_index) replaces a chosen NaN.
 */
function argProgram(op: 'ArgMax' | 'ArgMin', x: GpuTensorInfo, y: GpuTensorInfo, view: RowView, last: boolean): ProgramSpec {
  const layout = new RowLayout(view, 'thread');
  const t = accType(x);
  const cmp = op === 'ArgMax' ? (last ? '>=' : '>') : last ? '<=' : '<';
  return {
    key: `arg:${op}:${last ? 'last' : 'first'}:${layout.key}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: layout.uniforms(),
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const load = (off: string) => b.loadAs('x', off, t);
      const nan = t === 'f32' ? nanHelper(b) : '';
      const better = t === 'f32'
        ? `select(${nan}(v) || v ${cmp} best, ${last ? `${nan}(v)` : 'false'}, ${nan}(best))`
        : `v ${cmp} best`;
      const lines = [...rc.head(), `var best = ${load(rc.offset('0u'))};`, 'var arg = 0u;'];
      lines.push(...rc.forEach((off, r) => [`let v = ${load(off)};`, `if (${r} > 0u && ${better}) { best = v; arg = ${r}; }`]));
      lines.push(b.store('y', 'row', convert(computeTypeOf(y.storage), 'u32', 'arg')));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: layout.values() };
    },
  };
}

function argKernel(op: 'ArgMax' | 'ArgMin'): GpuKernel {
  return {
    plan(node, [x], [y]) {
      if (kindOf(x!.dtype) === 'b') throw new GpuUnsupported(`${op} on bool has no WebGPU kernel`);
      const axis = normalizeAxis(attrInt(node, 'axis', 0), x!.shape.length);
      if (sizeOfShape(y!.shape) === 0) return { calls: [] };
      const program = argProgram(op, x!, y!, rowView(x!.shape, [axis]), attrInt(node, 'select_last_index', 0) !== 0);
      return { calls: [{ program, tensors: [{ input: 0 }, { output: 0 }] }] };
    },
  };
}

/** CumSum-14: one invocation per row runs the scan (exclusive shifts by one; reverse walks backwards). */
function cumSumProgram(x: GpuTensorInfo, y: GpuTensorInfo, view: RowView, exclusive: boolean, reverse: boolean): ProgramSpec {
  const layout = new RowLayout(view, 'thread');
  const t = accType(x);
  return {
    key: `cumsum:${exclusive ? 'excl' : 'incl'}:${reverse ? 'rev' : 'fwd'}:${layout.key}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: layout.uniforms(),
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const T = computeTypeOf(y.storage);
      const cv = (v: string) => convert(T, t, v);
      const lines = [...rc.head(), `var sum = ${t}(0);`, 'for (var step = 0u; step < u.row_len; step = step + 1u) {'];
      lines.push(`  let off = ${rc.offset(reverse ? 'u.row_len - 1u - step' : 'step')};`, `  let v = ${b.loadAs('x', 'off', t)};`);
      if (exclusive) lines.push(`  ${b.store('y', 'off', cv('sum'))}`, '  sum = sum + v;');
      else lines.push('  sum = sum + v;', `  ${b.store('y', 'off', cv('sum'))}`);
      lines.push('}');
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: layout.values() };
    },
  };
}

const cumSum: GpuKernel = {
  hostInputs: [1],
  plan(node, [x, axisIn], [y]) {
    const k = kindOf(x!.dtype);
    if (k === 'b') throw new GpuUnsupported('CumSum on bool has no WebGPU kernel');
    const axis = normalizeAxis(constInts(axisIn, 'CumSum', 'axis')![0]!, x!.shape.length);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const program = cumSumProgram(x!, y!, rowView(x!.shape, [axis]), attrInt(node, 'exclusive', 0) !== 0, attrInt(node, 'reverse', 0) !== 0);
    return { calls: [{ program, tensors: [{ input: 0 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = {
  ...Object.fromEntries([...Object.keys(REDUCE), 'ReduceLogSumExp'].map((op) => [op, reduceKernel(op)])),
  GlobalAveragePool: globalPool('GlobalAveragePool'),
  GlobalMaxPool: globalPool('GlobalMaxPool'),
  GlobalLpPool: globalPool('GlobalLpPool'),
  ArgMax: argKernel('ArgMax'),
  ArgMin: argKernel('ArgMin'),
  CumSum: cumSum,
};
