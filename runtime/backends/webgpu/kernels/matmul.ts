import { attrFloat, attrInt, type Node } from '../../../ir/graph.js';
import { gemmDims, matmulGeometry } from '../../../ir/ops/matmul.js';
import type { InferContext } from '../../../ir/ops/schema.js';
import { GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramSpec, type Uniforms } from '../program.js';
import { computeTypeOf, type ComputeType } from '../storage.js';
import type { BindingDecl, ShaderBuilder, UniformDecl } from '../wgsl/builder.js';
import { planBroadcast } from './broadcast.js';
import { activationExpr, activationFromNode, activationKey, activationUniforms, activationValues, residualFromNode, RESIDUAL_INPUT, type Activation } from './epilogue.js';
import { kindOf } from './elementwise.js';

/**
 * Matrix products: MatMul-13 (numpy.matmul: batched, broadcast batch dims, 1-D operands) and Gemm-13
 * (Y = alpha A' B' + beta C). One program: the output is cut into TM x TN tiles, one per workgroup; K is walked in
 * TK-deep slices staged through workgroup memory; each invocation keeps an RM x RN block of accumulators in
 * registers (register blocking), reading RM values of A and RN of B per k step for RM*RN multiply-adds.
 *
 * Operand layouts travel as strides in uniforms (a_stride_m, a_stride_k...), so transA/transB and shapes never
 * change the WGSL; the key holds the element types, tile configuration, batch rank, C presence and activation.
 * The epilogue applies alpha, adds beta * C (or a fused bias) broadcast over [M, N], then the fused activation.
 */

export interface MatMulTiling {
  /** Workgroup size (x over N, y over M). */
  wx: number;
  wy: number;
  /** Accumulators per invocation (rows, cols). */
  rm: number;
  rn: number;
  /** Depth of a K slice. */
  tk: number;
  /**
   * No workgroup memory and no barriers: each invocation reads its RM rows of A and RN columns of B straight from
   * storage for every k (tk unused).
   */
  direct?: boolean;
}

/**
 * Tile choice by problem size: big tiles reuse more, small ones waste less on skinny products. Wide products
 * (N >= 128) take 64x128 tiles, 4x8 outputs per invocation (5-10 % faster than 4x4 on SwiftShader). The middle case
 * (one side under 64) computes 2x4 outputs per invocation (1x4 when M <= 16, where a second row would be mostly
 * padding): against 1x2 it cut mobilenet_v2's warm run by about a quarter and resnet18's by a third on SwiftShader
 * (bench notes in the README); to be re-checked on real GPUs, where it means fewer workgroups for small layers.
 *
 * A CPU adapter (SwiftShader) always gets the direct kernel: no workgroup memory, no barriers, RM x 4 outputs per
 * invocation. There a barrier is a switch between the workgroup's coroutines: a tiled workgroup costs about 2 ms
 * before it multiplies anything, and compiling a tiled kernel takes 1.5-2 s against 0.2 s for a direct one (which
 * is most of a cold start). Measured with `edgekit profile` on SwiftShader (2 cores), GPU ms per run, tiled ->
 * direct: mobilenet_v2 3087 -> 940, resnet18 7700 -> 4320, squeezenet1_1 1340 -> 860. RM grows with M (4, 8, 16)
 * because the im2col gathers of B are shared by the RM rows; 16x4 beat 4x4, 8x4, 8x8 and 4x8 on resnet18. GPU
 * adapters keep the tiled kernels until they are measured on one.
 */
export function chooseTiling(m: number, n: number, cpuAdapter = false): MatMulTiling {
  if (cpuAdapter) {
    if (m <= 4) return { wx: 64, wy: 1, rm: 1, rn: 4, tk: 0, direct: true };
    return { wx: 16, wy: 4, rm: m <= 16 ? 4 : m < 128 ? 8 : 16, rn: 4, tk: 0, direct: true };
  }
  if (m <= 4) return { wx: 64, wy: 1, rm: 1, rn: 1, tk: 32 };
  if (m >= 64 && n >= 128) return { wx: 16, wy: 16, rm: 4, rn: 8, tk: 16 };
  if (m >= 64 && n >= 64) return { wx: 16, wy: 16, rm: 4, rn: 4, tk: 16 };
  return { wx: 16, wy: 16, rm: m > 16 ? 2 : 1, rn: 4, tk: 16 };
}

export interface MatMulDims {
  /** Batch dims (collapsed, rank >= 1; [1] when there is no batch) and each operand's element strides over them. */
  batchShape: number[];
  aBatchStrides: number[];
  bBatchStrides: number[];
  /** C's strides over the batch (a per-group bias); zeros when absent. */
  cBatchStrides?: number[];
  m: number;
  n: number;
  k: number;
  /** Element strides of A[m, k] and B[k, n] within one matrix. */
  aStride: [number, number];
  bStride: [number, number];
}

export interface DirectLoader {
  columns: ((c: number, n: string) => string)[];
  open: string;
  close: string;
  load(c: number): string;
}

export interface MatMulExtras {
  alpha?: number;
  beta?: number;
  /** C (Gemm) or a fused bias: broadcast over [M, N] with these element strides (0 = broadcast). */
  c?: { info: GpuTensorInfo; strideM: number; strideN: number };
  activation?: Activation;
  /** A fused residual add (the graph's Add after the product, fusion.ts): a tensor laid out exactly like Y. */
  residual?: GpuTensorInfo;
  /**
   * Several outputs instead of Y (fusion-qkv.ts: sibling projections as one product): columns [0, N_0) go to the
   * first, the next N_1 to the second, and so on, each output laid out [batch, M, N_i]. No residual with these.
   */
  splitOutputs?: GpuTensorInfo[];
  /**
   * Computes B[k, n] instead of reading a stored matrix (Conv's implicit im2col). `define` adds a WGSL function
   * `fn(b_base: u32, k: u32, n: u32) -> <acc type>` and returns its name; it is called only for k < K, n < N.
   */
  bLoader?: {
    key: string;
    uniforms: UniformDecl[];
    values: Uniforms;
    define(sb: ShaderBuilder, acc: ComputeType): string;
    /**
     * The direct kernel's form (optional): statements per column (given its clamped index name), loop header(s)
     * that define `k` and whatever the loads share, their closing, and the load of column c's B[k, n].
     */
    direct?(sb: ShaderBuilder, acc: ComputeType, columns: number): DirectLoader;
  };
}

/** Batch strides of batched MatMul operands: broadcast batch dims collapsed (broadcast.ts), in elements. */
export function matmulBatch(batch: number[], aBatch: number[], bBatch: number[], aSize: number, bSize: number): Pick<MatMulDims, 'batchShape' | 'aBatchStrides' | 'bBatchStrides'> {
  const bc = planBroadcast(batch, [aBatch, bBatch]);
  return { batchShape: bc.shape, aBatchStrides: bc.strides[0]!.map((s) => s * aSize), bBatchStrides: bc.strides[1]!.map((s) => s * bSize) };
}

export function matmulProgram(a: GpuTensorInfo, b: GpuTensorInfo, y: GpuTensorInfo, d: MatMulDims, extras: MatMulExtras = {}, cpuAdapter = false): ProgramSpec {
  const t = chooseTiling(d.m, d.n, cpuAdapter);
  const tm = t.wy * t.rm;
  const tn = t.wx * t.rn;
  const threads = t.wx * t.wy;
  const rank = d.batchShape.length;
  const batchCount = sizeOfShape(d.batchShape);
  const loader = extras.bLoader;
  const kind = kindOf(a.dtype);
  const acc: ComputeType = kind === 'f' ? 'f32' : kind === 'u' ? 'u32' : 'i32';
  const hasC = !!extras.c;
  const split = extras.splitOutputs ?? [];
  if (split.length && extras.residual) throw new GpuUnsupported('MatMul with split outputs takes no residual');
  const bindings: BindingDecl[] = [
    { name: 'a', type: a.storage },
    { name: 'b', type: b.storage },
    ...(hasC ? [{ name: 'c', type: extras.c!.info.storage }] : []),
    ...(extras.residual ? [{ name: 'r', type: extras.residual.storage }] : []),
    ...(split.length ? split.map((o, i) => ({ name: `y_${i}`, type: o.storage })) : [{ name: 'y', type: y.storage }]),
  ];
  const uniforms: UniformDecl[] = [
    ...['m', 'n', 'k', 'a_stride_m', 'a_stride_k', 'b_stride_k', 'b_stride_n', 'c_stride_m', 'c_stride_n'].map((name) => ({ name, type: 'u32' as const })),
    { name: 'alpha', type: 'f32' },
    { name: 'beta', type: 'f32' },
    { name: 'batch_shape', type: 'u32', length: rank },
    { name: 'a_batch_strides', type: 'u32', length: rank },
    { name: 'b_batch_strides', type: 'u32', length: rank },
    { name: 'c_batch_strides', type: 'u32', length: rank },
    ...(loader?.uniforms ?? []),
    ...activationUniforms(extras.activation),
    ...split.map((_, i) => ({ name: `n_${i}`, type: 'u32' as const })),
  ];
  const tilingKey = `${t.wx}x${t.wy}:${t.rm}x${t.rn}:${t.direct ? 'direct' : `k${t.tk}`}`;
  return {
    key: `matmul:${tilingKey}:b${rank}:${hasC ? 'c' : 'noc'}:${extras.residual ? 'res:' : ''}${split.length ? `split${split.length}:` : ''}${activationKey(extras.activation)}${loader ? `:${loader.key}` : ''}`,
    bindings,
    uniforms,
    workgroupSize: [t.wx, t.wy, 1],
    source(sb) {
      const cvt = (name: string, v: string) => (sb.scalarType(name) === acc ? v : `${acc}(${v})`);
      const loaderFn = loader ? loader.define(sb, acc) : '';
      const loadBAt = (n: string) => (loader ? `${loaderFn}(b_base, k, ${n})` : cvt('b', sb.load('b', `b_base + k * u.b_stride_k + ${n} * u.b_stride_n`)));
      const loadB = loadBAt('n');
      // Epilogue: alpha, beta * C, residual, activation, store.
      let v = acc === 'f32' ? `${acc}(u.alpha) * acc_value` : 'acc_value';
      if (hasC) v = `${v} + ${acc}(u.beta) * ${cvt('c', sb.load('c', 'c_base + m * u.c_stride_m + n * u.c_stride_n'))}`;
      if (extras.residual) v = `${v} + ${cvt('r', sb.load('r', 'y_index'))}`;
      const outT = computeTypeOf(y.storage);
      sb.helper(`fn epilogue(acc_value: ${acc}, c_base: u32, m: u32, n: u32, y_index: u32) -> ${outT} {
  let v = ${v};
  let activated = ${activationExpr(sb, extras.activation, 'v', acc)};
  return ${outT === acc ? 'activated' : `${outT}(activated)`};
}`);
      // The store of one output element (batch z, row m, column n), into Y or into the split output n falls in.
      // Inline branches, not a helper function: SwiftShader ran the helper form about 4x slower.
      const store = (m: string, n: string, value: string) => {
        if (!split.length) return sb.store('y', `y_base + ${m} * u.n + ${n}`, value);
        const lines = [`let v = ${value};`, `var col = ${n};`];
        split.forEach((_, i) => {
          const put = sb.store(`y_${i}`, `(wid.z * u.m + ${m}) * u.n_${i} + col`, 'v');
          lines.push(i === split.length - 1 ? put : `if (col < u.n_${i}) { ${put} } else {`, ...(i === split.length - 1 ? [] : [`col = col - u.n_${i};`]));
        });
        lines.push('}'.repeat(split.length - 1));
        return lines.join(' ');
      };
      const batchCoords = sb.coordsFn('batch_coords', 'batch_shape', rank);
      const prologue = `let bc = ${batchCoords}(wid.z);
  let a_base = ${sb.offset('bc', 'a_batch_strides', rank)};
  let b_base = ${sb.offset('bc', 'b_batch_strides', rank)};
  let c_base = ${sb.offset('bc', 'c_batch_strides', rank)};
  let y_base = wid.z * u.m * u.n;
  let row0 = wid.y * ${tm}u;
  let col0 = wid.x * ${tn}u;`;
      if (t.direct) {
        // Rows and columns of this invocation, clamped into the matrix so the k loop needs no bounds checks
        // (edge invocations compute duplicates that the store masks off).
        const lines: string[] = [];
        for (let r = 0; r < t.rm; r++) lines.push(`let a_row_${r} = a_base + min(row0 + lid.y * ${t.rm}u + ${r}u, u.m - 1u) * u.a_stride_m;`);
        for (let c = 0; c < t.rn; c++) lines.push(`let n_${c} = min(col0 + lid.x * ${t.rn}u + ${c}u, u.n - 1u);`);
        // B through the loader's direct form (conv: the window walked by nested loops, no per-element decode).
        const direct = loader?.direct?.(sb, acc, t.rn) ?? {
          columns: [],
          open: 'for (var k = 0u; k < u.k; k = k + 1u) {',
          close: '}',
          load: (c: number) => loadBAt(`n_${c}`),
        };
        for (let c = 0; c < t.rn; c++) lines.push(...direct.columns.map((f) => f(c, `n_${c}`)));
        const body: string[] = [];
        for (let r = 0; r < t.rm; r++) body.push(`let a_${r} = ${cvt('a', sb.load('a', `a_row_${r} + k * u.a_stride_k`))};`);
        for (let c = 0; c < t.rn; c++) body.push(`let b_${c} = ${direct.load(c)};`);
        for (let r = 0; r < t.rm; r++) for (let c = 0; c < t.rn; c++) body.push(`acc[${r * t.rn + c}] = acc[${r * t.rn + c}] + a_${r} * b_${c};`);
        sb.main(`${prologue}
  ${lines.join('\n  ')}
  var acc: array<${acc}, ${t.rm * t.rn}>;
  ${direct.open}
    ${body.join('\n    ')}
  ${direct.close}
  for (var r = 0u; r < ${t.rm}u; r = r + 1u) {
    let m = row0 + lid.y * ${t.rm}u + r;
    for (var c = 0u; c < ${t.rn}u; c = c + 1u) {
      let n = col0 + lid.x * ${t.rn}u + c;
      if (m < u.m && n < u.n) { ${store('m', 'n', `epilogue(acc[r * ${t.rn}u + c], c_base, m, n, y_base + m * u.n + n)`)} }
    }
  }`);
        return;
      }
      sb.helper(`var<workgroup> a_tile: array<${acc}, ${tm * t.tk}>; // [TM=${tm}, TK=${t.tk}]`);
      sb.helper(`var<workgroup> b_tile: array<${acc}, ${t.tk * tn}>; // [TK=${t.tk}, TN=${tn}]`);
      const reads: string[] = [];
      for (let r = 0; r < t.rm; r++) reads.push(`let a_${r} = a_tile[(lid.y + ${r * t.wy}u) * ${t.tk}u + kk];`);
      for (let c = 0; c < t.rn; c++) reads.push(`let b_${c} = b_tile[kk * ${tn}u + lid.x + ${c * t.wx}u];`);
      for (let r = 0; r < t.rm; r++) for (let c = 0; c < t.rn; c++) reads.push(`acc[${r * t.rn + c}] = acc[${r * t.rn + c}] + a_${r} * b_${c};`);
      // The stores as loops, not unrolled: SwiftShader compiled the tiled kernels (split into coroutines at their
      // barriers) about a quarter faster with this short tail (1.6-1.9 s instead of 2.1-2.7 s each for 4x8).
      const stores = [`for (var r = 0u; r < ${t.rm}u; r = r + 1u) {
    let m = row0 + lid.y + r * ${t.wy}u;
    for (var c = 0u; c < ${t.rn}u; c = c + 1u) {
      let n = col0 + lid.x + c * ${t.wx}u;
      if (m < u.m && n < u.n) { ${store('m', 'n', `epilogue(acc[r * ${t.rn}u + c], c_base, m, n, y_base + m * u.n + n)`)} }
    }
  }`];
      sb.main(`${prologue}
  let tid = lid.y * ${t.wx}u + lid.x;
  var acc: array<${acc}, ${t.rm * t.rn}>;
  let slices = (u.k + ${t.tk - 1}u) / ${t.tk}u;
  // No early return: every invocation must reach the barriers.
  for (var s = 0u; s < slices; s = s + 1u) {
    let k0 = s * ${t.tk}u;
    for (var i = tid; i < ${tm * t.tk}u; i = i + ${threads}u) {
      let m = row0 + i / ${t.tk}u;
      let k = k0 + i % ${t.tk}u;
      var value = ${acc}(0);
      if (m < u.m && k < u.k) { value = ${cvt('a', sb.load('a', 'a_base + m * u.a_stride_m + k * u.a_stride_k'))}; }
      a_tile[i] = value;
    }
    for (var i = tid; i < ${t.tk * tn}u; i = i + ${threads}u) {
      let k = k0 + i / ${tn}u;
      let n = col0 + i % ${tn}u;
      var value = ${acc}(0);
      if (n < u.n && k < u.k) { value = ${loadB}; }
      b_tile[i] = value;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${t.tk}u; kk = kk + 1u) {
      ${reads.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${stores.join('\n  ')}`);
    },
    run() {
      return {
        workgroups: [Math.ceil(d.n / tn), Math.ceil(d.m / tm), batchCount],
        uniforms: {
          m: d.m, n: d.n, k: d.k,
          a_stride_m: d.aStride[0], a_stride_k: d.aStride[1], b_stride_k: d.bStride[0], b_stride_n: d.bStride[1],
          c_stride_m: extras.c?.strideM ?? 0, c_stride_n: extras.c?.strideN ?? 0,
          alpha: extras.alpha ?? 1, beta: extras.beta ?? 0,
          batch_shape: d.batchShape,
          a_batch_strides: d.aBatchStrides,
          b_batch_strides: d.bBatchStrides,
          c_batch_strides: d.cBatchStrides ?? d.batchShape.map(() => 0),
          ...loader?.values,
          ...activationValues(extras.activation),
          ...Object.fromEntries(split.map((o, i) => [`n_${i}`, o.shape[o.shape.length - 1]!])),
        },
      };
    },
  };
}

function inferCtx(node: Node): InferContext {
  return { node, inputs: [], symbol: (h) => h };
}

function checkTypes(node: Node, ...ts: GpuTensorInfo[]): void {
  for (const x of ts) if (kindOf(x.dtype) === 'b') throw new GpuUnsupported(`${node.op} on bool has no WebGPU kernel`);
}

function checkBatch(node: Node, batch: number, limit: number): void {
  if (batch > limit) throw new GpuUnsupported(`${node.op} with ${batch} batched matrices exceeds one dispatch (${limit})`);
}

const matmul: GpuKernel = {
  plan(node, inputs, outputs, env): KernelPlan {
    const [a, b, bias] = inputs;
    // Several outputs: sibling projections fused by fusion-qkv.ts; the product's columns split among them.
    const split = outputs.length > 1 ? (outputs as GpuTensorInfo[]) : undefined;
    const y = split ? { ...split[0]!, shape: [...split[0]!.shape.slice(0, -1), split.reduce((s, o) => s + o.shape[o.shape.length - 1]!, 0)] } : outputs[0];
    const residual = residualFromNode(node, inputs, y!);
    checkTypes(node, a!, b!);
    const g = matmulGeometry(inferCtx(node), a!.shape, b!.shape);
    const m = g.m as number;
    const k = g.k as number;
    const n = g.n as number;
    const aBatch = a!.shape.length > 2 ? a!.shape.slice(0, -2) : [];
    const bBatch = b!.shape.length > 2 ? b!.shape.slice(0, -2) : [];
    const batch = g.batch as number[];
    checkBatch(node, sizeOfShape(batch), env.limits.maxComputeWorkgroupsPerDimension);
    const dims: MatMulDims = { ...matmulBatch(batch, aBatch, bBatch, m * k, k * n), m, n, k, aStride: [k, 1], bStride: [n, 1] };
    // A fused row bias (fusion.ts: MatMul -> Add(bias [N])): C broadcast along every row of every batch.
    if (bias && sizeOfShape(bias.shape) !== n) throw new GpuUnsupported(`MatMul bias of shape [${bias.shape.join(', ')}] is not a row of ${n}`);
    const c = bias ? { info: bias, strideM: 0, strideN: 1 } : undefined;
    const program = matmulProgram(a!, b!, y!, dims, { c, beta: 1, activation: activationFromNode(node), residual, splitOutputs: split }, env.cpuAdapter);
    const outs = split ? split.map((_, i) => ({ output: i })) : [{ output: 0 }];
    return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, ...(bias ? [{ input: 2 }] : []), ...(residual ? [{ input: RESIDUAL_INPUT }] : []), ...outs] }] };
  },
};

const gemm: GpuKernel = {
  plan(node, inputs, [y], env): KernelPlan {
    const [a, b, c] = inputs;
    const residual = residualFromNode(node, inputs, y!);
    checkTypes(node, a!, b!);
    if (kindOf(a!.dtype) !== 'f') throw new GpuUnsupported(`Gemm on ${a!.dtype} has no WebGPU kernel (float only)`);
    const { m, k, n } = gemmDims(inferCtx(node), a!.shape, b!.shape) as { m: number; k: number; n: number };
    const transA = attrInt(node, 'transA', 0) !== 0;
    const transB = attrInt(node, 'transB', 0) !== 0;
    const dims: MatMulDims = {
      batchShape: [1], aBatchStrides: [0], bBatchStrides: [0], m, n, k,
      // A is [M, K] or, transposed, [K, M]; B is [K, N] or [N, K].
      aStride: transA ? [1, m] : [k, 1],
      bStride: transB ? [1, k] : [n, 1],
    };
    let cInfo: MatMulExtras['c'];
    if (c) {
      // Unidirectional broadcast of C to [M, N]: a dim of size 1 (or missing) has stride 0.
      const cs = [...new Array<number>(2 - c.shape.length).fill(1), ...c.shape];
      cInfo = { info: c, strideM: cs[0] === 1 ? 0 : cs[1]!, strideN: cs[1] === 1 ? 0 : 1 };
    }
    const program = matmulProgram(a!, b!, y!, dims, {
      alpha: attrFloat(node, 'alpha', 1),
      beta: attrFloat(node, 'beta', 1),
      c: cInfo,
      activation: activationFromNode(node),
      residual,
    }, env.cpuAdapter);
    return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, ...(c ? [{ input: 2 }] : []), ...(residual ? [{ input: RESIDUAL_INPUT }] : []), { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { MatMul: matmul, Gemm: gemm };
