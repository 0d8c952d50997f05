import { InternalError, InvalidArgumentError, ShapeError } from '../../../errors.js';
import { allocStorage } from '../../../ir/dtype.js';
import { type Graph } from '../../../ir/graph.js';
import { bodyOf, scanParams } from '../../../ir/ops/control-flow.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { hostTensor, sizeOf, type HostTensor } from '../../../ir/tensor.js';
import { around, cells } from '../data-index.js';
import type { CpuKernel, CpuKernelContext } from '../kernel.js';

/**
 * CPU kernels for If-21, Loop-21 and Scan-21 (ONNX operator docs): each runs its body graph nested through
 * CpuKernelContext.runBody, which the graph executor sets so the body sees the enclosing graphs' values at any
 * depth. Loops are bounded by maxLoopIterations so a condition that never turns false throws instead of hanging.
 */

/** Default of SessionOptions.maxLoopIterations: far more than any real model's loop, few enough to fail in seconds. */
export const DEFAULT_MAX_LOOP_ITERATIONS = 1_000_000;

function run(ctx: CpuKernelContext, body: Graph, feeds: Record<string, HostTensor>): HostTensor[] {
  if (!ctx.runBody) throw new InternalError('A control-flow kernel ran without a graph executor to run its body.');
  return ctx.runBody(body, feeds);
}

const truthy = (t: HostTensor | undefined, what: string): boolean => {
  if (!t || t.data.length !== 1) throw new ShapeError(`${what} must hold exactly one element, not shape [${t?.shape.join(', ') ?? ''}].`);
  return Boolean(t.data[0]);
};

/** Element `index` along `axis`: [..., len, ...] -> [..., ...]. */
function take(t: HostTensor, axis: number, index: number): HostTensor {
  const [outer, len, inner] = around(t.shape, axis);
  const out = allocStorage(t.dtype, outer * inner);
  const o = cells(out);
  const s = cells(t.data);
  for (let a = 0; a < outer; a++) for (let i = 0; i < inner; i++) o[a * inner + i] = s[(a * len + index) * inner + i];
  return hostTensor(t.dtype, t.shape.filter((_, k) => k !== axis), out);
}

/**
 * Stacks equally shaped per-step tensors along a new `axis`. With no step at all, `empty` gives the element type
 * and per-step shape (the body's declared output).
 */
function stack(parts: HostTensor[], axis: number, what: string, empty: Graph['outputs'][number], maxElements: number): HostTensor {
  const first = parts[0];
  if (!first) {
    const dims = (empty.shape ?? []).map((d) => (typeof d === 'number' ? d : 0));
    const shape = [...dims];
    shape.splice(normalizeAxis(axis, dims.length + 1, `${what} axis`), 0, 0);
    return hostTensor(empty.dtype, shape);
  }
  const step = first.shape;
  const ax = normalizeAxis(axis, step.length + 1, `${what} axis`);
  const shape = [...step];
  shape.splice(ax, 0, parts.length);
  const out = allocStorage(first.dtype, sizeOf(shape, maxElements));
  const o = cells(out);
  const [outer, , inner] = around([...step.slice(0, ax), 1, ...step.slice(ax)], ax);
  parts.forEach((p, t) => {
    if (p.dtype !== first.dtype || p.shape.length !== step.length || p.shape.some((d, i) => d !== step[i])) {
      throw new ShapeError(`${what}: step ${t} gives ${p.dtype}[${p.shape.join(', ')}], step 0 gave ${first.dtype}[${step.join(', ')}]; every step must agree.`);
    }
    const s = cells(p.data);
    for (let a = 0; a < outer; a++) for (let i = 0; i < inner; i++) o[(a * parts.length + t) * inner + i] = s[a * inner + i];
  });
  return hostTensor(first.dtype, shape, out);
}

/** If-21: runs then_branch or else_branch by the condition. */
const ifKernel: CpuKernel = (inputs, node, ctx) => {
  const branch = truthy(inputs[0], "If's condition") ? 'then_branch' : 'else_branch';
  return run(ctx, bodyOf(node, branch), {});
};

/**
 * Loop-21:  for (i = 0; (M omitted || i < M) && cond; i++) { cond, v..., scan... = body(i, cond, v...) }
 * with cond true when omitted. Outputs: the final carried values, then each scan output stacked over the
 * iterations ([iterations, ...]).
 */
const loopKernel: CpuKernel = (inputs, node, ctx) => {
  const body = bodyOf(node, 'body');
  const [m, cond0, ...initial] = inputs;
  const n = initial.length;
  const k = body.outputs.length - 1 - n;
  const limit = m ? Number(m.data[0]) : Infinity;
  if (m && m.data.length !== 1) throw new ShapeError(`Loop's trip count M must hold one element, not shape [${m.shape.join(', ')}].`);
  const maxIterations = ctx.maxLoopIterations ?? DEFAULT_MAX_LOOP_ITERATIONS;
  let cond = cond0 ? truthy(cond0, "Loop's condition") : true;
  let carried = initial as HostTensor[];
  const scans: HostTensor[][] = Array.from({ length: k }, () => []);
  let i = 0;
  for (; i < limit && cond; i++) {
    if (i >= maxIterations) {
      throw new InvalidArgumentError(
        `Loop node '${node.name}' would run more than maxLoopIterations = ${maxIterations} iterations` +
          `${m ? ` (trip count ${limit})` : ' (no trip count: its condition has not turned false)'}. ` +
          'If the model really loops this long, raise the session option maxLoopIterations.',
        { node: node.name, op: 'Loop', maxLoopIterations: maxIterations },
      );
    }
    const feeds: Record<string, HostTensor> = {
      [body.inputs[0]!.name]: hostTensor('int64', [], BigInt64Array.of(BigInt(i))),
      [body.inputs[1]!.name]: hostTensor('bool', [], Uint8Array.of(cond ? 1 : 0)),
    };
    carried.forEach((v, j) => (feeds[body.inputs[2 + j]!.name] = v));
    const outs = run(ctx, body, feeds);
    cond = truthy(outs[0], "Loop body's condition output");
    carried = outs.slice(1, 1 + n);
    for (let j = 0; j < k; j++) scans[j]!.push(outs[1 + n + j]!);
  }
  return [...carried, ...scans.map((s, j) => stack(s, 0, `Loop scan output ${j}`, body.outputs[1 + n + j]!, ctx.maxElements))];
};

/**
 * Scan-21: for t in 0..T-1, the body gets the states and step t of each scan input (along its scan axis, from
 * the end when its direction is 1); outputs are the final states and the body's scan outputs stacked along each
 * output's axis (in reverse order when its direction is 1).
 */
const scanKernel: CpuKernel = (inputs, node, ctx) => {
  const body = bodyOf(node, 'body');
  const { n, m, k, inAxes, inDirs, outAxes, outDirs } = scanParams(node);
  const xs = inputs.slice(n) as HostTensor[];
  const axes = xs.map((x, j) => normalizeAxis(inAxes[j]!, x.shape.length, `Scan input ${j}'s scan axis`));
  const T = xs[0]!.shape[axes[0]!]!;
  xs.forEach((x, j) => {
    if (x.shape[axes[j]!] !== T) throw new ShapeError(`Scan input ${j} has ${x.shape[axes[j]!]} steps along its scan axis; input 0 has ${T}.`);
  });
  let state = inputs.slice(0, n) as HostTensor[];
  const scans: HostTensor[][] = Array.from({ length: k }, () => []);
  for (let t = 0; t < T; t++) {
    const feeds: Record<string, HostTensor> = {};
    state.forEach((v, j) => (feeds[body.inputs[j]!.name] = v));
    for (let j = 0; j < m; j++) feeds[body.inputs[n + j]!.name] = take(xs[j]!, axes[j]!, inDirs[j] ? T - 1 - t : t);
    const outs = run(ctx, body, feeds);
    state = outs.slice(0, n);
    for (let j = 0; j < k; j++) scans[j]!.push(outs[n + j]!);
  }
  return [
    ...state,
    ...scans.map((s, j) => stack(outDirs[j] ? [...s].reverse() : s, outAxes[j]!, `Scan output ${j}`, body.outputs[n + j]!, ctx.maxElements)),
  ];
};

export const kernels: Record<string, CpuKernel> = { If: ifKernel, Loop: loopKernel, Scan: scanKernel };
