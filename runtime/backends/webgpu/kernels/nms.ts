import { attrInt } from '../../../ir/graph.js';
import { toNumbers } from '../../../ir/dtype.js';
import { dispatchLinear, GpuUnsupported, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type Uniforms } from '../program.js';

/**
 * NonMaxSuppressionPadded (the WebGPU lowering of NonMaxSuppression, ir/ops/nms.ts), in three dispatches:
 *  1. rank: one invocation per (batch, class, box) counts the candidates that come before it (higher score, or equal
 *     score and lower index; candidates pass score_threshold) and writes its box index at that rank: a sort without
 *     a sorting network, O(boxes) per invocation, fine for the few thousand boxes detectors emit;
 *  2. greedy: one invocation per (batch, class) walks its candidates in rank order and keeps a box unless its IoU
 *     with one already kept exceeds iou_threshold, until max_output_boxes_per_class: the selection is inherently
 *     sequential within a class, and classes run in parallel;
 *  3. compact: one invocation per (batch, class) writes its rows after those of the pairs before it, and the first
 *     writes the total, which the staged plan reads back to slice the padded rows (lower-counts.ts).
 * The thresholds and the per-class maximum are read at plan time (they are scalars, initializers in practice).
 * IoU is computed in float32 here and in float64 by the CPU reference: a pair within rounding of the threshold may
 * be decided differently.
 */

const WORKGROUP = 64;

function hostScalar(t: GpuTensorInfo | undefined, dflt: number, what: string): number {
  if (!t) return dflt;
  if (!t.value) throw new GpuUnsupported(`NonMaxSuppression ${what} must be known at plan time`);
  return Number(toNumbers(t.value.dtype, t.value.data)[0]);
}

const COMMON = `fn nms_corners(o: u32) -> vec4<f32> {
  let a = vec4<f32>(boxes[o], boxes[o + 1u], boxes[o + 2u], boxes[o + 3u]);
  if (u.center_point_box == 1u) {
    return vec4<f32>(a.y - a.w * 0.5, a.x - a.z * 0.5, a.y + a.w * 0.5, a.x + a.z * 0.5);
  }
  return vec4<f32>(min(a.x, a.z), min(a.y, a.w), max(a.x, a.z), max(a.y, a.w));
}

fn nms_iou(a: vec4<f32>, b: vec4<f32>) -> f32 {
  let ih = min(a.z, b.z) - max(a.x, b.x);
  let iw = min(a.w, b.w) - max(a.y, b.y);
  if (ih <= 0.0 || iw <= 0.0) { return 0.0; }
  let inter = ih * iw;
  let area_a = (a.z - a.x) * (a.w - a.y);
  let area_b = (b.z - b.x) * (b.w - b.y);
  let union_area = area_a + area_b - inter;
  if (area_a <= 0.0 || area_b <= 0.0 || union_area <= 0.0) { return 0.0; }
  return inter / union_area;
}`;

function program(key: string, names: string[], uniforms: Uniforms, invocations: number, body: string): ProgramSpec {
  return {
    key: `nms:${key}`,
    bindings: names.map((name) => ({ name, type: name === 'boxes' || name === 'scores' ? ('f32' as const) : ('i32' as const) })),
    uniforms: [...Object.keys(uniforms), 'invocations'].map((name) => ({ name, type: name === 'score_threshold' || name === 'iou_threshold' ? ('f32' as const) : ('u32' as const) })),
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      if (names.includes('boxes')) b.helper(COMMON);
      b.main(`${b.linearIndex('u.invocations')}\n  ${body}`);
    },
    run() {
      return { workgroups: dispatchLinear(invocations, WORKGROUP), uniforms: { ...uniforms, invocations } };
    },
  };
}

const nmsPadded: GpuKernel = {
  hostInputs: [2, 3, 4],
  plan(node, [boxes, scores, maxT, iouT, scoreT]) {
    const [batches, n] = boxes!.shape as [number, number];
    const classes = scores!.shape[1]!;
    const max = hostScalar(maxT, 0, 'max_output_boxes_per_class');
    const cap = Math.max(0, Math.min(max, n));
    const pairs = batches * classes;
    const u = {
      n,
      cap,
      pairs,
      center_point_box: attrInt(node, 'center_point_box', 0),
      has_score_threshold: scoreT ? 1 : 0,
      score_threshold: hostScalar(scoreT, 0, 'score_threshold'),
      iou_threshold: hostScalar(iouT, 0, 'iou_threshold'),
    };
    const candidate = '(u.has_score_threshold == 0u || scores[base + i] > u.score_threshold)';
    const rank = program('rank', ['scores', 'order'], { n: u.n, has_score_threshold: u.has_score_threshold, score_threshold: u.score_threshold }, cap ? pairs * n : 0, `
  let i = index % u.n;
  let base = index - i;
  if (!${candidate}) { return; }
  let s = scores[base + i];
  var r = 0u;
  for (var j = 0u; j < u.n; j++) {
    let t = scores[base + j];
    if ((u.has_score_threshold == 0u || t > u.score_threshold) && (t > s || (t == s && j < i))) { r++; }
  }
  order[base + r] = i32(i);`);
    const greedy = program('greedy', ['boxes', 'scores', 'order', 'kept', 'kept_count'], { n: u.n, cap: u.cap, center_point_box: u.center_point_box, has_score_threshold: u.has_score_threshold, score_threshold: u.score_threshold, iou_threshold: u.iou_threshold, classes }, cap ? pairs : 0, `
  let base = index * u.n;
  let batch = index / u.classes;
  var m = 0u;
  for (var i = 0u; i < u.n; i++) { if (${candidate}) { m++; } }
  var kept_n = 0u;
  for (var k = 0u; k < m && kept_n < u.cap; k++) {
    let i = u32(order[base + k]);
    let box = nms_corners((batch * u.n + i) * 4u);
    var suppressed = false;
    for (var q = 0u; q < kept_n; q++) {
      let other = nms_corners((batch * u.n + u32(kept[index * u.cap + q])) * 4u);
      if (nms_iou(other, box) > u.iou_threshold) { suppressed = true; break; }
    }
    if (!suppressed) {
      kept[index * u.cap + kept_n] = i32(i);
      kept_n++;
    }
  }
  kept_count[index] = i32(kept_n);`);
    const compact = program('compact', ['kept', 'kept_count', 'rows', 'count'], { cap: u.cap, pairs: u.pairs, classes }, Math.max(pairs, 1), `
  var before = 0u;
  var total = 0u;
  if (u.cap > 0u) {
    for (var q = 0u; q < u.pairs; q++) {
      let c = u32(kept_count[q]);
      if (q < index) { before += c; }
      total += c;
    }
  }
  if (index == 0u) { count[0] = i32(total); }
  if (index >= u.pairs || u.cap == 0u) { return; }
  for (var k = 0u; k < u32(kept_count[index]); k++) {
    let row = (before + k) * 3u;
    rows[row] = i32(index / u.classes);
    rows[row + 1u] = i32(index % u.classes);
    rows[row + 2u] = kept[index * u.cap + k];
  }`);
    const scratch: GpuTensorInfo[] = [
      { dtype: 'int32', shape: [Math.max(pairs * n, 1)], storage: 'i32' },
      { dtype: 'int32', shape: [Math.max(pairs * cap, 1)], storage: 'i32' },
      { dtype: 'int32', shape: [Math.max(pairs, 1)], storage: 'i32' },
    ];
    return {
      scratch,
      calls: [
        { program: rank, tensors: [{ input: 1 }, { scratch: 0 }] },
        { program: greedy, tensors: [{ input: 0 }, { input: 1 }, { scratch: 0 }, { scratch: 1 }, { scratch: 2 }] },
        { program: compact, tensors: [{ scratch: 1 }, { scratch: 2 }, { output: 0 }, { output: 1 }] },
      ],
    };
  },
};

export const kernels: Record<string, GpuKernel> = { NonMaxSuppressionPadded: nmsPadded };
