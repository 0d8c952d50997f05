import { ignoreIndex, lossReduction, type LossReduction } from '../../../ir/ops/loss.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';

/**
 * NegativeLogLikelihoodLoss-13 and SoftmaxCrossEntropyLoss-13 on WebGPU, computed in f32. The input is viewed as
 * [N, C, D]; a WGSL `term(p)` gives target p's (loss, weight): -logp[n, t, d] * w[t] and w[t], or zeros where t is
 * ignore_index (or not a class: a shader cannot throw; the CPU reference rejects such targets). For the softmax
 * form logp = x - logsumexp over the C classes of that position, recomputed where needed (no scratch tensor).
 * - reduction none: one invocation per target writes its loss;
 * - sum / mean: one invocation per target writes (loss, weight) to a scratch, then one workgroup strides over the
 *   pairs and tree-reduces them in workgroup memory; mean divides by the summed weights.
 * - log_prob (softmax form's second output): one invocation per position writes its C log-probabilities.
 */

const WG = 64;
const REDUCE_WG = 256;

interface LossGeometry {
  n: number;
  c: number;
  d: number;
}

const uniforms = [
  { name: 'count', type: 'u32' as const }, { name: 'c', type: 'u32' as const }, { name: 'd', type: 'u32' as const },
  { name: 'has_ignore', type: 'u32' as const }, { name: 'ignore', type: 'i32' as const },
];

/** Declares `lse(b, j)`: log(sum_k exp(x[b, k, j])), max-shifted. */
function declareLse(b: ShaderBuilder): void {
  const x = (i: string) => b.loadAs('x', i, 'f32');
  b.helper(`// log(sum_k exp(x[b, k, j])), max-shifted.
fn lse(b: u32, j: u32) -> f32 {
  var m = ${x('b * u.c * u.d + j')};
  for (var k = 1u; k < u.c; k = k + 1u) { m = max(m, ${x('(b * u.c + k) * u.d + j')}); }
  var s = 0.0;
  for (var k = 0u; k < u.c; k = k + 1u) { s = s + exp(${x('(b * u.c + k) * u.d + j')} - m); }
  return m + log(s);
}`);
}

/** Declares `term(p) -> vec2<f32>` (and lse for the softmax form). */
function declareTerm(b: ShaderBuilder, softmax: boolean, weighted: boolean): void {
  const x = (i: string) => b.loadAs('x', i, 'f32');
  if (softmax) declareLse(b);
  b.helper(`// (loss, weight) of target p = (b, j).
fn term(p: u32) -> vec2<f32> {
  let b = p / u.d;
  let j = p % u.d;
  let t = i32(${b.load('labels', 'p')});
  if ((u.has_ignore == 1u && t == u.ignore) || t < 0 || t >= i32(u.c)) { return vec2<f32>(0.0, 0.0); }
  let w = ${weighted ? b.loadAs('weight', 'u32(t)', 'f32') : '1.0'};
  let logp = ${x('(b * u.c + u32(t)) * u.d + j')}${softmax ? ' - lse(b, j)' : ''};
  return vec2<f32>(-logp * w, w);
}`);
}

/**
 * Per-target terms: reduction none writes each loss to y; for sum/mean each (loss, weight) pair goes to a scratch
 * [count, 2] that lossReduceProgram folds. Either way every target is its own invocation.
 */
function termsProgram(x: GpuTensorInfo, t: GpuTensorInfo, w: GpuTensorInfo | undefined, out: GpuTensorInfo, g: LossGeometry, pairs: boolean, softmax: boolean, ii: number | undefined): ProgramSpec {
  const count = g.n * g.d;
  const T = computeTypeOf(out.storage);
  return {
    key: `${softmax ? 'sce' : 'nll'}:${pairs ? 'terms' : 'none'}:${w ? 'w' : 'nw'}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'labels', type: t.storage }, ...(w ? [{ name: 'weight', type: w.storage }] : []), { name: 'y', type: out.storage }],
    uniforms,
    workgroupSize: [WG, 1, 1],
    source(b) {
      declareTerm(b, softmax, !!w);
      b.main(pairs
        ? `${b.linearIndex('u.count')}
  let tw = term(index);
  y[2u * index] = tw.x;
  y[2u * index + 1u] = tw.y;`
        : `${b.linearIndex('u.count')}
  ${b.store('y', 'index', `${T}(term(index).x)`)}`);
    },
    run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, c: g.c, d: g.d, has_ignore: ii === undefined ? 0 : 1, ignore: ii ?? 0 } }),
  };
}

/** Sum (or weighted mean) of the [count, 2] (loss, weight) pairs: one workgroup, strided sums, then a tree. */
function lossReduceProgram(y: GpuTensorInfo, count: number, red: LossReduction): ProgramSpec {
  const T = computeTypeOf(y.storage);
  return {
    key: `loss-reduce:${red}`,
    bindings: [{ name: 'terms', type: 'f32' }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'count', type: 'u32' }],
    workgroupSize: [REDUCE_WG, 1, 1],
    source(b) {
      b.helper(`var<workgroup> partial: array<vec2<f32>, ${REDUCE_WG}>;`);
      b.main(`var s = vec2<f32>(0.0, 0.0);
  for (var p = lid.x; p < u.count; p = p + ${REDUCE_WG}u) { s = s + vec2<f32>(terms[2u * p], terms[2u * p + 1u]); }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var k = ${REDUCE_WG / 2}u; k > 0u; k = k >> 1u) {
    if (lid.x < k) { partial[lid.x] = partial[lid.x] + partial[lid.x + k]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { ${b.store('y', '0u', `${T}(${red === 'mean' ? 'partial[0].x / partial[0].y' : 'partial[0].x'})`)} }`);
    },
    run: () => ({ workgroups: [1, 1, 1], uniforms: { count } }),
  };
}

function logProbProgram(x: GpuTensorInfo, lp: GpuTensorInfo, g: LossGeometry): ProgramSpec {
  const count = g.n * g.d;
  const T = computeTypeOf(lp.storage);
  return {
    key: 'sce-log-prob',
    bindings: [{ name: 'x', type: x.storage }, { name: 'log_prob', type: lp.storage }],
    uniforms: uniforms.slice(0, 3),
    workgroupSize: [WG, 1, 1],
    source(b) {
      declareLse(b);
      b.main(`${b.linearIndex('u.count')}
  let bb = index / u.d;
  let j = index % u.d;
  let l = lse(bb, j);
  for (var k = 0u; k < u.c; k = k + 1u) {
    let at = (bb * u.c + k) * u.d + j;
    ${b.store('log_prob', 'at', `${T}(${b.loadAs('x', 'at', 'f32')} - l)`)}
  }`);
    },
    run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, c: g.c, d: g.d } }),
  };
}

function planLoss(softmax: boolean): GpuKernel {
  return {
    plan(node, [x, t, w], [y, lp]) {
      const red = lossReduction(node);
      const ii = ignoreIndex(node);
      if (ii !== undefined && (ii < -(2 ** 31) || ii >= 2 ** 31)) throw new GpuUnsupported(`${node.op} ignore_index ${ii} does not fit the 32 bits targets live in on the GPU`);
      const g = { n: x!.shape[0]!, c: x!.shape[1]!, d: sizeOfShape(x!.shape.slice(2)) };
      const count = g.n * g.d;
      const calls: ProgramCall[] = [];
      const scratch: GpuTensorInfo[] = [];
      const ins: TensorSlot[] = [{ input: 0 }, { input: 1 }, ...(w ? [{ input: 2 }] : [])];
      if (y && red === 'none' && count > 0) calls.push({ program: termsProgram(x!, t!, w, y, g, false, softmax, ii), tensors: [...ins, { output: 0 }] });
      if (y && red !== 'none') {
        const terms: GpuTensorInfo = { dtype: 'float32', shape: [Math.max(1, 2 * count)], storage: 'f32' };
        scratch.push(terms);
        if (count > 0) calls.push({ program: termsProgram(x!, t!, w, terms, g, true, softmax, ii), tensors: [...ins, { scratch: 0 }] });
        calls.push({ program: lossReduceProgram(y, count, red), tensors: [{ scratch: 0 }, { output: 0 }] });
      }
      if (lp && sizeOfShape(lp.shape) > 0) calls.push({ program: logProbProgram(x!, lp, g), tensors: [{ input: 0 }, { output: 1 }] });
      return { calls, scratch };
    },
  };
}

export const kernels: Record<string, GpuKernel> = { NegativeLogLikelihoodLoss: planLoss(false), SoftmaxCrossEntropyLoss: planLoss(true) };
