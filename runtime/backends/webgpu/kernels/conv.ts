import { attrInt, type Node } from '../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../ir/ops/conv-geometry.js';
import {
  dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor,
  type GpuKernel, type GpuTensorInfo, type KernelEnv, type KernelPlan, type ProgramSpec,
} from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert, type UniformDecl } from '../wgsl/builder.js';
import { activationExpr, activationFromNode, activationKey, activationUniforms, activationValues, residualFromNode, RESIDUAL_INPUT, type Activation } from './epilogue.js';
import { kindOf } from './elementwise.js';
import { matmulProgram, type MatMulDims, type MatMulExtras } from './matmul.js';

/**
 * Conv-11 (1-D and 2-D; a 1-D conv is a 2-D one with H = 1) in three forms, chosen at plan time:
 * - 1x1, stride 1, no padding, one group: a plain batched GEMM, Y[n] = W [OC, C] x X[n] [C, H*W];
 * - depthwise (one input channel per group): a direct kernel, one invocation per output, looping over the window;
 * - everything else (groups, dilations, strides, pads): implicit GEMM per (image, group), M = OC/G output channels,
 *   N = OH*OW positions, K = C/G*KH*KW, with B[k, p] gathered from X on the fly (no im2col buffer).
 * Bias, a fused residual add and the fused activation are applied in the epilogue, in that order.
 * Three or more spatial axes (3-D conv) run on a direct N-D kernel (convNd below): one invocation per output.
 */

interface ConvGeometry {
  n: number; c: number; h: number; w: number;
  oc: number; group: number; kh: number; kw: number;
  oh: number; ow: number;
  stride: [number, number]; pad: [number, number]; dil: [number, number];
}

function geometry(node: Node, x: GpuTensorInfo, wt: GpuTensorInfo, y: GpuTensorInfo): ConvGeometry {
  const spatial = x.shape.length - 2;
  if (spatial !== 1 && spatial !== 2) throw new GpuUnsupported(`Conv with ${spatial} spatial dimension(s) has no WebGPU kernel (1-D and 2-D here; 3-D and more on the direct N-D kernel)`);
  const win = readWindowAttrs(node, spatial, wt.shape.slice(2));
  const cw = concreteWindow(x.shape.slice(2), win);
  const two = <T>(v: T[], d: T): [T, T] => (spatial === 1 ? [d, v[0]!] : [v[0]!, v[1]!]);
  const [h, w] = two(x.shape.slice(2), 1);
  const [kh, kw] = two(win.kernel, 1);
  const [oh, ow] = two(y.shape.slice(2), 1);
  return {
    n: x.shape[0]!, c: x.shape[1]!, h, w, oc: wt.shape[0]!, group: attrInt(node, 'group', 1), kh, kw, oh, ow,
    stride: two(win.strides, 1), pad: two(cw.padsBegin, 0), dil: two(win.dilations, 1),
  };
}

const WINDOW_UNIFORMS = ['in_h', 'in_w', 'out_h', 'out_w', 'k_h', 'k_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w', 'dil_h', 'dil_w'];

function windowValues(g: ConvGeometry): Record<string, number> {
  return {
    in_h: g.h, in_w: g.w, out_h: g.oh, out_w: g.ow, k_h: g.kh, k_w: g.kw,
    stride_h: g.stride[0], stride_w: g.stride[1], pad_h: g.pad[0], pad_w: g.pad[1], dil_h: g.dil[0], dil_w: g.dil[1],
  };
}

/** Implicit GEMM (or the plain GEMM of a 1x1 conv). */
function gemmConv(g: ConvGeometry, x: GpuTensorInfo, wt: GpuTensorInfo, bias: GpuTensorInfo | undefined, y: GpuTensorInfo, act: Activation | undefined, residual: GpuTensorInfo | undefined, cpuAdapter: boolean): ProgramSpec {
  const cg = g.c / g.group;
  const ocg = g.oc / g.group;
  const pointwise = g.kh === 1 && g.kw === 1 && g.stride.every((s) => s === 1) && g.pad.every((p) => p === 0) && g.group === 1;
  const k = cg * g.kh * g.kw;
  const hw = g.h * g.w;
  const dims: MatMulDims = {
    batchShape: [g.n, g.group],
    aBatchStrides: [0, ocg * k],
    bBatchStrides: [g.c * hw, cg * hw],
    cBatchStrides: [0, ocg],
    m: ocg, n: g.oh * g.ow, k,
    aStride: [k, 1],
    bStride: [hw, 1], // X[n] viewed as [C, H*W]: used by the pointwise form only
  };
  const extras: MatMulExtras = { activation: act, residual, ...(bias ? { c: { info: bias, strideM: 1, strideN: 0 }, beta: 1 } : {}) };
  if (!pointwise) {
    extras.bLoader = {
      key: 'im2col',
      uniforms: WINDOW_UNIFORMS.map((name): UniformDecl => ({ name, type: 'u32' })),
      values: windowValues(g),
      define(sb, acc) {
        const value = sb.load('b', 'b_base + (c * u.in_h + u32(ih)) * u.in_w + u32(iw)');
        sb.helper(`// B[k, p] of the implicit GEMM: k = (c, kh, kw), p = (oh, ow); zero in the padding.
fn conv_input(b_base: u32, k: u32, p: u32) -> ${acc} {
  let window = u.k_h * u.k_w;
  let c = k / window;
  let kh = (k % window) / u.k_w;
  let kw = k % u.k_w;
  let ih = i32((p / u.out_w) * u.stride_h + kh * u.dil_h) - i32(u.pad_h);
  let iw = i32((p % u.out_w) * u.stride_w + kw * u.dil_w) - i32(u.pad_w);
  if (ih < 0 || iw < 0 || ih >= i32(u.in_h) || iw >= i32(u.in_w)) { return ${acc}(0); }
  return ${sb.scalarType('b') === acc ? value : `${acc}(${value})`};
}`);
        return 'conv_input';
      },
      direct(sb, acc, columns) {
        // Per column: the window's top-left corner. Per (c, kh, kw): one offset shared by every column.
        const value = (c: number) => sb.load('b', `select(0u, x_c + u32(ih_${c}) * u.in_w + u32(iw_${c}), inside_${c})`);
        return {
          columns: [
            (c, n) => `let ih0_${c} = i32((${n} / u.out_w) * u.stride_h) - i32(u.pad_h);`,
            (c, n) => `let iw0_${c} = i32((${n} % u.out_w) * u.stride_w) - i32(u.pad_w);`,
          ],
          open: `let chans = u.k / (u.k_h * u.k_w);
  var k = 0u;
  for (var c = 0u; c < chans; c = c + 1u) {
  let x_c = b_base + c * u.in_h * u.in_w;
  for (var kh = 0u; kh < u.k_h; kh = kh + 1u) {
  let dh = i32(kh * u.dil_h);
  for (var kw = 0u; kw < u.k_w; kw = kw + 1u) {
    let dw = i32(kw * u.dil_w);
    ${Array.from({ length: columns }, (_, c) => [
      `let ih_${c} = ih0_${c} + dh;`,
      `let iw_${c} = iw0_${c} + dw;`,
      `let inside_${c} = ih_${c} >= 0 && iw_${c} >= 0 && ih_${c} < i32(u.in_h) && iw_${c} < i32(u.in_w);`,
    ].join('\n    ')).join('\n    ')}`,
          close: `k = k + 1u;
  }
  }
  }`,
          load: (c) => `select(${acc}(0), ${sb.scalarType('b') === acc ? value(c) : `${acc}(${value(c)})`}, inside_${c})`,
        };
      },
    };
  }
  return matmulProgram(wt, x, y, dims, extras, cpuAdapter);
}

/**
 * Depthwise: output channel oc reads input channel oc / multiplier only. Each invocation computes DW_RUN outputs
 * along a row: the position decode, the row checks and each weight load are shared by them (on SwiftShader this
 * cut mobilenet_v2's depthwise layers by about half against one output per invocation).
 */
const DW_RUN = 4;

function depthwiseConv(g: ConvGeometry, x: GpuTensorInfo, wt: GpuTensorInfo, bias: GpuTensorInfo | undefined, y: GpuTensorInfo, act: Activation | undefined, residual: GpuTensorInfo | undefined): ProgramSpec {
  const WG = 64;
  const runs = Math.ceil(g.ow / DW_RUN);
  const total = g.n * g.oc * g.oh * runs;
  const acc = 'f32';
  const outT = computeTypeOf(y.storage);
  return {
    key: `conv-depthwise:r${DW_RUN}:${bias ? 'bias' : 'nobias'}:${residual ? 'res:' : ''}${activationKey(act)}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: wt.storage }, ...(bias ? [{ name: 'bias', type: bias.storage }] : []),
      ...(residual ? [{ name: 'r', type: residual.storage }] : []), { name: 'y', type: y.storage },
    ],
    uniforms: [
      { name: 'size', type: 'u32' },
      { name: 'run_shape', type: 'u32', length: 4 },
      { name: 'in_c', type: 'u32' },
      { name: 'multiplier', type: 'u32' },
      ...WINDOW_UNIFORMS.map((name): UniformDecl => ({ name, type: 'u32' })),
      ...activationUniforms(act),
    ],
    workgroupSize: [WG, 1, 1],
    source(sb) {
      const cv = (name: string, v: string) => (sb.scalarType(name) === acc ? v : `${acc}(${v})`);
      sb.coordsFn('run_coords', 'run_shape', 4);
      const taps: string[] = [];
      const stores: string[] = [];
      for (let j = 0; j < DW_RUN; j++) {
        taps.push(`{
        let iw = iw0 + ${j}i * i32(u.stride_w);
        if (iw >= 0 && iw < i32(u.in_w)) { sum[${j}] = sum[${j}] + ${cv('x', sb.load('x', 'row + u32(iw)'))} * wv; }
      }`);
        const out = `(${j} < u.out_w - ow0)`;
        const value = residual ? `sum[${j}] + ${cv('r', sb.load('r', `y_row + ow0 + ${j}u`))}` : `sum[${j}]`;
        stores.push(`if ${out} {
    let v = ${value};
    let activated = ${activationExpr(sb, act, 'v', acc)};
    ${sb.store('y', `y_row + ow0 + ${j}u`, outT === acc ? 'activated' : `${outT}(activated)`)}
  }`);
      }
      sb.main(`${sb.linearIndex('u.size')}
  let coords = run_coords(index); // [n, oc, oh, run]
  let oc = coords[1];
  let ow0 = coords[3] * ${DW_RUN}u;
  let x_base = (coords[0] * u.in_c + oc / u.multiplier) * u.in_h * u.in_w;
  let y_row = ((coords[0] * u.run_shape_1 + oc) * u.out_h + coords[2]) * u.out_w;
  let b = ${bias ? cv('bias', sb.load('bias', 'oc')) : `${acc}(0)`};
  var sum = array<${acc}, ${DW_RUN}>(${Array(DW_RUN).fill('b').join(', ')});
  for (var kh = 0u; kh < u.k_h; kh = kh + 1u) {
    let ih = i32(coords[2] * u.stride_h + kh * u.dil_h) - i32(u.pad_h);
    if (ih < 0 || ih >= i32(u.in_h)) { continue; }
    let row = x_base + u32(ih) * u.in_w;
    for (var kw = 0u; kw < u.k_w; kw = kw + 1u) {
      let wv = ${cv('w', sb.load('w', '(oc * u.k_h + kh) * u.k_w + kw'))};
      let iw0 = i32(ow0 * u.stride_w + kw * u.dil_w) - i32(u.pad_w);
      ${taps.join('\n      ')}
    }
  }
  ${stores.join('\n  ')}`);
    },
    run() {
      return {
        workgroups: dispatchLinear(total, WG),
        uniforms: { size: total, run_shape: [g.n, g.oc, g.oh, runs], in_c: g.c, multiplier: g.oc / g.group, ...windowValues(g), ...activationValues(act) },
      };
    },
  };
}

/**
 * Conv of any number of spatial axes (used for 3 and more): invocation = (n, oc, output position) over
 * Y [N, OC, O_0, ..., O_{R-1}]; the window is one flat tap index t decoded row-major over the kernel, matching W's
 * layout [OC, C/G, K_0, ..., K_{R-1}], so the input offset and bounds are computed once per tap and shared by the
 * C/G channels of the group. The rank is in the key; every size is a uniform.
 */
function convNdProgram(node: Node, x: GpuTensorInfo, wt: GpuTensorInfo, bias: GpuTensorInfo | undefined, y: GpuTensorInfo, act: Activation | undefined, residual: GpuTensorInfo | undefined): ProgramSpec {
  const inShape = x.shape.slice(2);
  const R = inShape.length;
  const win = readWindowAttrs(node, R, wt.shape.slice(2));
  const cw = concreteWindow(inShape, win);
  const group = attrInt(node, 'group', 1);
  const outShape = y.shape.slice(2);
  const outSpatial = sizeOfShape(outShape);
  const size = sizeOfShape(y.shape);
  const axes = Array.from({ length: R }, (_, d) => d);
  const WG = 64;
  const acc = 'f32';
  return {
    key: `conv-direct-nd:r${R}:${bias ? 'bias' : 'nobias'}:${residual ? 'res:' : ''}${activationKey(act)}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: wt.storage }, ...(bias ? [{ name: 'bias', type: bias.storage }] : []),
      ...(residual ? [{ name: 'r', type: residual.storage }] : []), { name: 'y', type: y.storage },
    ],
    uniforms: [
      ...['size', 'out_c', 'in_c', 'group_in', 'group_out', 'out_spatial', 'in_spatial', 'taps'].map((name): UniformDecl => ({ name, type: 'i32' })),
      ...['in_shape', 'out_shape', 'kernel', 'stride', 'dil', 'pad', 'in_strides'].map((name): UniformDecl => ({ name, type: 'i32', length: R })),
      ...activationUniforms(act),
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const f = (name: string, i: string) => b.loadAs(name, i, acc);
      const outT = computeTypeOf(y.storage);
      b.main(`${b.linearIndex('u32(u.size)')}
  var rest_o = i32(index) % u.out_spatial;
  ${axes.slice().reverse().map((d) => `let o_${d} = rest_o % u.out_shape_${d}; rest_o = rest_o / u.out_shape_${d};`).join('\n  ')}
  let oc = (i32(index) / u.out_spatial) % u.out_c;
  let n = i32(index) / (u.out_spatial * u.out_c);
  let c0 = (oc / u.group_out) * u.group_in; // the group's first input channel
  let x_base = (n * u.in_c + c0) * u.in_spatial;
  let w_base = oc * u.group_in * u.taps;
  var sum = ${bias ? f('bias', 'u32(oc)') : `${acc}(0)`};
  for (var t = 0; t < u.taps; t = t + 1) {
    var rest_t = t;
    var at = 0;
    var inside = true;
    ${axes.slice().reverse().map((d) => [
      `let k_${d} = rest_t % u.kernel_${d}; rest_t = rest_t / u.kernel_${d};`,
      `let i_${d} = o_${d} * u.stride_${d} + k_${d} * u.dil_${d} - u.pad_${d};`,
      `inside = inside && i_${d} >= 0 && i_${d} < u.in_shape_${d};`,
      `at = at + i_${d} * u.in_strides_${d};`,
    ].join('\n    ')).join('\n    ')}
    if (!inside) { continue; }
    for (var cl = 0; cl < u.group_in; cl = cl + 1) {
      sum = sum + ${f('x', 'u32(x_base + cl * u.in_spatial + at)')} * ${f('w', 'u32(w_base + cl * u.taps + t)')};
    }
  }
  ${residual ? `sum = sum + ${f('r', 'index')};` : ''}
  ${b.store('y', 'index', convert(outT, acc, activationExpr(b, act, 'sum', acc)))}`);
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: {
          size, out_c: y.shape[1]!, in_c: x.shape[1]!, group_in: x.shape[1]! / group, group_out: y.shape[1]! / group,
          out_spatial: outSpatial, in_spatial: sizeOfShape(inShape), taps: sizeOfShape(win.kernel),
          in_shape: inShape, out_shape: outShape, kernel: win.kernel, stride: win.strides, dil: win.dilations, pad: cw.padsBegin,
          in_strides: stridesFor(inShape), ...activationValues(act),
        },
      };
    },
  };
}

const conv: GpuKernel = {
  plan(node, inputs, [y], env: KernelEnv): KernelPlan {
    const [x, wt, bias] = inputs;
    const residual = residualFromNode(node, inputs, y!);
    const res = residual ? [{ input: RESIDUAL_INPUT }] : [];
    if (kindOf(x!.dtype) !== 'f') throw new GpuUnsupported(`Conv on ${x!.dtype} has no WebGPU kernel (float only)`);
    if (x!.shape.length > 4) {
      const program = convNdProgram(node, x!, wt!, bias, y!, activationFromNode(node), residual);
      if (sizeOfShape(y!.shape) === 0) return { calls: [] };
      if (Math.max(sizeOfShape(x!.shape), sizeOfShape(y!.shape)) > 0x7fffffff) throw new GpuUnsupported('Conv tensors too large for 32-bit indexing');
      return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, ...(bias ? [{ input: 2 }] : []), ...res, { output: 0 }] }] };
    }
    const g = geometry(node, x!, wt!, y!);
    const act = activationFromNode(node);
    const tensors = [{ input: 1 }, { input: 0 }, ...(bias ? [{ input: 2 }] : []), ...res, { output: 0 }];
    if (g.c / g.group === 1 && g.group > 1) {
      return { calls: [{ program: depthwiseConv(g, x!, wt!, bias, y!, act, residual), tensors: [{ input: 0 }, { input: 1 }, ...(bias ? [{ input: 2 }] : []), ...res, { output: 0 }] }] };
    }
    if (g.n * g.group > env.limits.maxComputeWorkgroupsPerDimension) throw new GpuUnsupported(`Conv with ${g.n * g.group} (batch x groups) exceeds one dispatch`);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    return { calls: [{ program: gemmConv(g, x!, wt!, bias, y!, act, residual, env.cpuAdapter ?? false), tensors }] };
  },
};

export const kernels: Record<string, GpuKernel> = { Conv: conv };
