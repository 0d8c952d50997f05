import { ShapeError } from '../../../../errors.js';
import { attrInt, type Node } from '../../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../../ir/ops/conv-geometry.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type Uniforms } from '../../program.js';
import { computeTypeOf } from '../../storage.js';
import { convert, type UniformDecl } from '../../wgsl/builder.js';
import { floatOnly, twoD } from './common.js';

/**
 * ConvGradInput(dY, W, x_shape) -> dX and ConvGradWeight(X, dY, w_shape) -> dW: twins of
 * runtime/train/ops/conv-grad.ts for 1-D and 2-D Convs (the forward GPU Conv's reach), any groups (depthwise
 * included), strides, dilations and pads. With tap(p, t) = p * stride - pad + t * dilation per axis:
 *   dX[n, c, q] = sum over (m in c's group, t, p with tap(p, t) = q) of dY[n, m, p] W[m, c % C/g, t]
 *     one invocation per dX element; p is recovered from (q, t) by exact division by the stride, so the
 *     kernel gathers (no atomics, no scatter races). A 1x1 stride-1 Conv is the transposed GEMM it reduces to.
 *   dW[m, c, t] = sum over (n, p) of dY[n, m, p] X[n, g(m) C/g + c, tap(p, t)]
 *     per group a GEMM [M/g, K] = dY [M/g, N P] x col^T, K = C/g kh kw, tiled 16 x 16 through workgroup memory
 *     with the im2col operand gathered from X on the fly (no col buffer); one invocation per dW element. CPU
 *     adapters get a barrier-free form instead (gradWeightDirectProgram).
 * The shape inputs are read from the planned output shape and never uploaded.
 */

interface Geometry {
  n: number; c: number; m: number; group: number;
  h: number; w: number; oh: number; ow: number; kh: number; kw: number;
  stride: [number, number]; pad: [number, number]; dil: [number, number];
}

function geometry(node: Node, xShape: number[], wShape: number[], dyShape: number[]): Geometry {
  const spatial = xShape.length - 2;
  if (spatial !== 1 && spatial !== 2) throw new GpuUnsupported(`${node.op} with ${spatial} spatial dimension(s) has no WebGPU kernel (1-D and 2-D only)`);
  if (wShape.length !== xShape.length) throw new ShapeError(`${node.op}: W [${wShape.join(', ')}] and X [${xShape.join(', ')}] differ in rank.`);
  const attrs = readWindowAttrs(node, spatial, wShape.slice(2));
  const win = concreteWindow(xShape.slice(2), attrs);
  const group = attrInt(node, 'group', 1);
  const want = [xShape[0]!, wShape[0]!, ...win.out];
  if (dyShape.length !== want.length || dyShape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${node.op}: dY has shape [${dyShape.join(', ')}] but the forward Conv output is [${want.join(', ')}].`);
  }
  if (xShape[1]! !== wShape[1]! * group || wShape[0]! % group !== 0) {
    throw new ShapeError(`${node.op}: X has ${xShape[1]} channels but W [${wShape.join(', ')}] with group ${group} expects ${wShape[1]! * group}.`);
  }
  const [h, w] = twoD(xShape.slice(2), spatial, 1);
  const [oh, ow] = twoD(win.out, spatial, 1);
  const [kh, kw] = twoD(attrs.kernel, spatial, 1);
  return {
    n: xShape[0]!, c: xShape[1]!, m: wShape[0]!, group, h, w, oh, ow, kh, kw,
    stride: twoD(attrs.strides, spatial, 1), pad: twoD(win.padsBegin, spatial, 0), dil: twoD(attrs.dilations, spatial, 1),
  };
}

const NAMES = ['batch', 'chans', 'out_chans', 'chans_per_group', 'out_per_group', 'in_h', 'in_w', 'out_h', 'out_w', 'k_h', 'k_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w', 'dil_h', 'dil_w'];

function values(g: Geometry, size: number): Uniforms {
  return {
    size, batch: g.n, chans: g.c, out_chans: g.m, chans_per_group: g.c / g.group, out_per_group: g.m / g.group,
    in_h: g.h, in_w: g.w, out_h: g.oh, out_w: g.ow, k_h: g.kh, k_w: g.kw,
    stride_h: g.stride[0], stride_w: g.stride[1], pad_h: g.pad[0], pad_w: g.pad[1], dil_h: g.dil[0], dil_w: g.dil[1],
  };
}

const UNIFORMS: UniformDecl[] = [{ name: 'size', type: 'u32' }, ...NAMES.map((name): UniformDecl => ({ name, type: 'i32' }))];
const WG = 64;

function gradInputProgram(g: Geometry, dy: GpuTensorInfo, wt: GpuTensorInfo, dx: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape([g.n, g.c, g.h, g.w]);
  return {
    key: 'train:conv-grad-input',
    bindings: [{ name: 'dy', type: dy.storage }, { name: 'w', type: wt.storage }, { name: 'dx', type: dx.storage }],
    uniforms: UNIFORMS,
    workgroupSize: [WG, 1, 1],
    source(b) {
      const lines = [
        b.linearIndex('u.size'),
        'let i = i32(index);',
        'let iw = i % u.in_w;',
        'let ih = (i / u.in_w) % u.in_h;',
        'let c = (i / (u.in_w * u.in_h)) % u.chans;',
        'let n = i / (u.in_w * u.in_h * u.chans);',
        'let group = c / u.chans_per_group;',
        'let cl = c % u.chans_per_group;',
        'var acc = 0.0;',
        'for (var m = group * u.out_per_group; m < (group + 1) * u.out_per_group; m = m + 1) {',
        '  let dy_base = (n * u.out_chans + m) * u.out_h;',
        '  let w_base = (m * u.chans_per_group + cl) * u.k_h;',
        '  for (var kh = 0; kh < u.k_h; kh = kh + 1) {',
        '    // The output row whose tap kh lands on ih: oh * stride = ih + pad - kh * dil, exactly.',
        '    let th = ih + u.pad_h - kh * u.dil_h;',
        '    if (th < 0 || th % u.stride_h != 0 || th / u.stride_h >= u.out_h) { continue; }',
        '    let oh = th / u.stride_h;',
        '    for (var kw = 0; kw < u.k_w; kw = kw + 1) {',
        '      let tw = iw + u.pad_w - kw * u.dil_w;',
        '      if (tw < 0 || tw % u.stride_w != 0 || tw / u.stride_w >= u.out_w) { continue; }',
        '      let ow = tw / u.stride_w;',
        `      acc = acc + ${b.loadAs('dy', 'u32((dy_base + oh) * u.out_w + ow)', 'f32')} * ${b.loadAs('w', 'u32((w_base + kh) * u.k_w + kw)', 'f32')};`,
        '    }',
        '  }',
        '}',
        b.store('dx', 'index', convert(computeTypeOf(dx.storage), 'f32', 'acc')),
      ];
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: values(g, size) };
    },
  };
}

const TILE = 16;

function gradWeightProgram(g: Geometry, x: GpuTensorInfo, dy: GpuTensorInfo, dw: GpuTensorInfo): ProgramSpec {
  const mg = g.m / g.group;
  const k = (g.c / g.group) * g.kh * g.kw;
  return {
    key: 'train:conv-grad-weight:tiled16',
    bindings: [{ name: 'x', type: x.storage }, { name: 'dy', type: dy.storage }, { name: 'dw', type: dw.storage }],
    uniforms: UNIFORMS,
    workgroupSize: [TILE, TILE, 1],
    source(b) {
      b.helper(`var<workgroup> tile_dy: array<array<f32, ${TILE}>, ${TILE}>; // [m][r]`);
      b.helper(`var<workgroup> tile_col: array<array<f32, ${TILE}>, ${TILE}>; // [k][r]`);
      const lines = [
        '// dW of one group as a GEMM: [M/g, K] = dY [M/g, N*P] x col^T [N*P, K], K = (C/g) kh kw, col gathered from X.',
        'let group = i32(wid.z);',
        'let lx = i32(lid.x);',
        'let ly = i32(lid.y);',
        `let k_out = i32(wid.x) * ${TILE} + lx;`,
        `let m_out = i32(wid.y) * ${TILE} + ly;`,
        'let window = u.k_h * u.k_w;',
        'let k_total = u.chans_per_group * window;',
        'let positions = u.out_h * u.out_w;',
        'let reduce_len = u.batch * positions;',
        'var acc = 0.0;',
        `for (var r0 = 0; r0 < reduce_len; r0 = r0 + ${TILE}) {`,
        '  // tile_dy[ly][lx] = dY[n, m, p] at m = m_out, r = r0 + lx.',
        '  var v = 0.0;',
        '  let r = r0 + lx;',
        '  if (m_out < u.out_per_group && r < reduce_len) {',
        '    let m = group * u.out_per_group + m_out;',
        `    v = ${b.loadAs('dy', 'u32((r / positions * u.out_chans + m) * positions + r % positions)', 'f32')};`,
        '  }',
        '  tile_dy[ly][lx] = v;',
        '  // tile_col[lx][ly] = X at the tap of k = k_out, r = r0 + ly (0 in the padding).',
        '  var c_val = 0.0;',
        '  let rc = r0 + ly;',
        '  if (k_out < k_total && rc < reduce_len) {',
        '    let c = group * u.chans_per_group + k_out / window;',
        '    let t = k_out % window;',
        '    let n = rc / positions;',
        '    let p = rc % positions;',
        '    let ih = (p / u.out_w) * u.stride_h - u.pad_h + (t / u.k_w) * u.dil_h;',
        '    let iw = (p % u.out_w) * u.stride_w - u.pad_w + (t % u.k_w) * u.dil_w;',
        '    if (ih >= 0 && ih < u.in_h && iw >= 0 && iw < u.in_w) {',
        `      c_val = ${b.loadAs('x', 'u32(((n * u.chans + c) * u.in_h + ih) * u.in_w + iw)', 'f32')};`,
        '    }',
        '  }',
        '  tile_col[lx][ly] = c_val;',
        '  workgroupBarrier();',
        `  for (var j = 0; j < ${TILE}; j = j + 1) { acc = acc + tile_dy[ly][j] * tile_col[lx][j]; }`,
        '  workgroupBarrier();',
        '}',
        'if (m_out < u.out_per_group && k_out < k_total) {',
        `  ${b.store('dw', 'u32((group * u.out_per_group + m_out) * k_total + k_out)', convert(computeTypeOf(dw.storage), 'f32', 'acc'))}`,
        '}',
      ];
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: [Math.ceil(k / TILE), Math.ceil(mg / TILE), g.group], uniforms: values(g, sizeOfShape([g.m, k])) };
    },
  };
}

/**
 * dW on a CPU adapter (GpuContext.cpuAdapter): the same GEMM without workgroup memory or barriers, which cost a
 * coroutine switch each on SwiftShader. Each invocation owns a 4 x 4 block of dW (4 output channels x 4 taps),
 * decodes its taps once, and walks (n, oh, ow) in nested loops, so the reduction has no divisions.
 */
const DR = 4;

function gradWeightDirectProgram(g: Geometry, x: GpuTensorInfo, dy: GpuTensorInfo, dw: GpuTensorInfo): ProgramSpec {
  const mg = g.m / g.group;
  const k = (g.c / g.group) * g.kh * g.kw;
  const WX = 16;
  const WY = 4;
  return {
    key: 'train:conv-grad-weight:direct4x4',
    bindings: [{ name: 'x', type: x.storage }, { name: 'dy', type: dy.storage }, { name: 'dw', type: dw.storage }],
    uniforms: UNIFORMS,
    workgroupSize: [WX, WY, 1],
    source(b) {
      const rows = Array.from({ length: DR }, (_, r) => r);
      const lines = [
        'let group = i32(wid.z);',
        'let window = u.k_h * u.k_w;',
        'let k_total = u.chans_per_group * window;',
        'let positions = u.out_h * u.out_w;',
        'let in_plane = u.in_h * u.in_w;',
        `let m0 = i32(wid.y) * ${WY * DR} + i32(lid.y) * ${DR};`,
        `let k0 = i32(wid.x) * ${WX * DR} + i32(lid.x) * ${DR};`,
        ...rows.map((r) => `let dy_m_${r} = (group * u.out_per_group + min(m0 + ${r}, u.out_per_group - 1)) * positions;`),
        ...rows.flatMap((j) => [
          `let kc_${j} = min(k0 + ${j}, k_total - 1);`,
          `let x_c_${j} = (group * u.chans_per_group + kc_${j} / window) * in_plane;`,
          `let dh_${j} = ((kc_${j} % window) / u.k_w) * u.dil_h - u.pad_h;`,
          `let dw_${j} = (kc_${j} % u.k_w) * u.dil_w - u.pad_w;`,
        ]),
        `var acc: array<f32, ${DR * DR}>;`,
        'for (var n = 0; n < u.batch; n = n + 1) {',
        '  let dy_n = n * u.out_chans * positions;',
        '  let x_n = n * u.chans * in_plane;',
        '  for (var oh = 0; oh < u.out_h; oh = oh + 1) {',
        ...rows.flatMap((j) => [`    let ih_${j} = oh * u.stride_h + dh_${j};`, `    let row_ok_${j} = ih_${j} >= 0 && ih_${j} < u.in_h;`]),
        '    for (var ow = 0; ow < u.out_w; ow = ow + 1) {',
        '      let p = dy_n + oh * u.out_w + ow;',
        ...rows.map((r) => `      let d_${r} = ${b.loadAs('dy', `u32(p + dy_m_${r})`, 'f32')};`),
        ...rows.flatMap((j) => [
          `      let iw_${j} = ow * u.stride_w + dw_${j};`,
          `      let in_${j} = row_ok_${j} && iw_${j} >= 0 && iw_${j} < u.in_w;`,
          `      let x_${j} = select(0.0, ${b.loadAs('x', `u32(select(0, x_n + x_c_${j} + ih_${j} * u.in_w + iw_${j}, in_${j}))`, 'f32')}, in_${j});`,
        ]),
        ...rows.flatMap((r) => rows.map((j) => `      acc[${r * DR + j}] = acc[${r * DR + j}] + d_${r} * x_${j};`)),
        '    }',
        '  }',
        '}',
        `for (var r = 0; r < ${DR}; r = r + 1) {`,
        `  for (var j = 0; j < ${DR}; j = j + 1) {`,
        '    if (m0 + r < u.out_per_group && k0 + j < k_total) {',
        `      ${b.store('dw', 'u32((group * u.out_per_group + m0 + r) * k_total + k0 + j)', convert(computeTypeOf(dw.storage), 'f32', `acc[r * ${DR} + j]`))}`,
        '    }',
        '  }',
        '}',
      ];
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: [Math.ceil(k / (WX * DR)), Math.ceil(mg / (WY * DR)), g.group], uniforms: values(g, sizeOfShape([g.m, k])) };
    },
  };
}

const convGradInput: GpuKernel = {
  hostInputs: [2],
  plan(node, [dy, wt], [dx]) {
    floatOnly(node.op, 'dY', dy);
    floatOnly(node.op, 'W', wt);
    const g = geometry(node, dx!.shape, wt!.shape, dy!.shape);
    if (sizeOfShape(dx!.shape) === 0) return { calls: [] };
    return { calls: [{ program: gradInputProgram(g, dy!, wt!, dx!), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

const convGradWeight: GpuKernel = {
  hostInputs: [2],
  plan(node, [x, dy], [dw], env) {
    floatOnly(node.op, 'X', x);
    floatOnly(node.op, 'dY', dy);
    const g = geometry(node, x!.shape, dw!.shape, dy!.shape);
    if (sizeOfShape(dw!.shape) === 0) return { calls: [] };
    const tiles = [Math.ceil(sizeOfShape(dw!.shape.slice(1)) / TILE), Math.ceil(g.m / g.group / TILE), g.group];
    if (tiles.some((t) => t > env.limits.maxComputeWorkgroupsPerDimension)) {
      throw new GpuUnsupported(`ConvGradWeight of W [${dw!.shape.join(', ')}] needs more than ${env.limits.maxComputeWorkgroupsPerDimension} workgroups along one dimension`);
    }
    const program = env.cpuAdapter ? gradWeightDirectProgram(g, x!, dy!, dw!) : gradWeightProgram(g, x!, dy!, dw!);
    return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { ConvGradInput: convGradInput, ConvGradWeight: convGradWeight };
