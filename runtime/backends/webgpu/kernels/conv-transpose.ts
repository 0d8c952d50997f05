import { attrInt, type Node } from '../../../ir/graph.js';
import { readTransposeAttrs, transposeAxis } from '../../../ir/ops/conv-geometry.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert, type UniformDecl } from '../wgsl/builder.js';
import { activationExpr, activationFromNode, activationKey, activationUniforms, activationValues, type Activation } from './epilogue.js';
import { kindOf } from './elementwise.js';

/**
 * ConvTranspose-11 (1-D and 2-D; 1-D runs as 2-D with H = 1) as a gather: one invocation per output element sums
 * the input elements that scatter onto it. Along an axis, output o receives input i through tap t when
 * i * stride - pad_begin + t * dilation = o, i.e. i = (o + pad_begin - t * dilation) / stride when that divides
 * exactly and lands inside the input. Geometry (output_shape, output_padding, auto_pad, negative pads) comes from
 * the shared conv-geometry.ts, as on the CPU. W is [C, M/group, kH, kW]; bias and a fused activation are applied
 * before the store. Three or more spatial axes (3-D) run on the N-D form of the same gather (rank in the key).
 */

interface Geometry {
  n: number; c: number; m: number; group: number;
  h: number; w: number; oh: number; ow: number; kh: number; kw: number;
  stride: [number, number]; dil: [number, number]; pad: [number, number];
}

function geometry(node: Node, x: GpuTensorInfo, wt: GpuTensorInfo, y: GpuTensorInfo): Geometry {
  const spatial = x.shape.length - 2;
  if (spatial !== 1 && spatial !== 2) throw new GpuUnsupported(`ConvTranspose with ${spatial} spatial dimension(s) has no WebGPU kernel (1-D and 2-D here; 3-D and more on the N-D gather)`);
  const attrs = readTransposeAttrs(node, spatial, wt.shape.slice(2));
  const axes = x.shape.slice(2).map((n, i) => transposeAxis(n, attrs, i));
  const two = (v: number[], d: number): [number, number] => (spatial === 1 ? [d, v[0]!] : [v[0]!, v[1]!]);
  const [h, w] = two(x.shape.slice(2), 1);
  const [oh, ow] = two(y.shape.slice(2), 1);
  const [kh, kw] = two(attrs.kernel, 1);
  return {
    n: x.shape[0]!, c: x.shape[1]!, m: y.shape[1]!, group: attrInt(node, 'group', 1), h, w, oh, ow, kh, kw,
    stride: two(attrs.strides, 1), dil: two(attrs.dilations, 1), pad: two(axes.map((a) => a.padBegin), 0),
  };
}

const NAMES = ['in_c', 'group_in', 'group_out', 'in_h', 'in_w', 'out_h', 'out_w', 'k_h', 'k_w', 'stride_h', 'stride_w', 'dil_h', 'dil_w', 'pad_h', 'pad_w'];
const WG = 64;

function convTransposeProgram(g: Geometry, x: GpuTensorInfo, wt: GpuTensorInfo, bias: GpuTensorInfo | undefined, y: GpuTensorInfo, act: Activation | undefined): ProgramSpec {
  const size = g.n * g.m * g.oh * g.ow;
  return {
    key: `conv-transpose:${bias ? 'bias' : 'nobias'}:${activationKey(act)}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'w', type: wt.storage }, ...(bias ? [{ name: 'bias', type: bias.storage }] : []), { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'out_c', type: 'i32' }, ...NAMES.map((name): UniformDecl => ({ name, type: 'i32' })), ...activationUniforms(act)],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
      b.main(`${b.linearIndex('u.size')}
  let ow = i32(index) % u.out_w;
  let oh = (i32(index) / u.out_w) % u.out_h;
  let m = (i32(index) / (u.out_w * u.out_h)) % u.out_c;
  let n = i32(index) / (u.out_w * u.out_h * u.out_c);
  let group = m / u.group_out;
  let m_local = m % u.group_out;
  var sum = ${bias ? f('bias', 'u32(m)') : '0.0'};
  for (var kh = 0; kh < u.k_h; kh = kh + 1) {
    let th = oh + u.pad_h - kh * u.dil_h; // = ih * stride_h when this tap reaches (oh, .)
    if (th < 0 || th % u.stride_h != 0 || th / u.stride_h >= u.in_h) { continue; }
    let ih = th / u.stride_h;
    for (var kw = 0; kw < u.k_w; kw = kw + 1) {
      let tw = ow + u.pad_w - kw * u.dil_w;
      if (tw < 0 || tw % u.stride_w != 0 || tw / u.stride_w >= u.in_w) { continue; }
      let iw = tw / u.stride_w;
      for (var cl = 0; cl < u.group_in; cl = cl + 1) {
        let c = group * u.group_in + cl;
        let x_at = ((n * u.in_c + c) * u.in_h + ih) * u.in_w + iw;
        let w_at = ((c * u.group_out + m_local) * u.k_h + kh) * u.k_w + kw;
        sum = sum + ${f('x', 'u32(x_at)')} * ${f('w', 'u32(w_at)')};
      }
    }
  }
  ${b.store('y', 'index', convert(computeTypeOf(y.storage), 'f32', activationExpr(b, act, 'sum', 'f32')))}`);
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: {
          size, out_c: g.m, in_c: g.c, group_in: g.c / g.group, group_out: g.m / g.group, in_h: g.h, in_w: g.w, out_h: g.oh, out_w: g.ow,
          k_h: g.kh, k_w: g.kw, stride_h: g.stride[0], stride_w: g.stride[1], dil_h: g.dil[0], dil_w: g.dil[1], pad_h: g.pad[0], pad_w: g.pad[1],
          ...activationValues(act),
        },
      };
    },
  };
}

/**
 * The gather for R spatial axes: per output, a flat tap index t walks the kernel row-major (W [C, M/group, K_0..]),
 * each axis checking that (o + pad_begin - k * dilation) divides by the stride and lands inside the input.
 */
function convTransposeNdProgram(node: Node, x: GpuTensorInfo, wt: GpuTensorInfo, bias: GpuTensorInfo | undefined, y: GpuTensorInfo, act: Activation | undefined): ProgramSpec {
  const inShape = x.shape.slice(2);
  const R = inShape.length;
  const attrs = readTransposeAttrs(node, R, wt.shape.slice(2));
  const pads = inShape.map((n, i) => transposeAxis(n, attrs, i).padBegin);
  const group = attrInt(node, 'group', 1);
  const outShape = y.shape.slice(2);
  const size = sizeOfShape(y.shape);
  const axes = Array.from({ length: R }, (_, d) => d);
  return {
    key: `conv-transpose-nd:r${R}:${bias ? 'bias' : 'nobias'}:${activationKey(act)}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'w', type: wt.storage }, ...(bias ? [{ name: 'bias', type: bias.storage }] : []), { name: 'y', type: y.storage }],
    uniforms: [
      ...['size', 'out_c', 'in_c', 'group_in', 'group_out', 'out_spatial', 'in_spatial', 'taps'].map((name): UniformDecl => ({ name, type: 'i32' })),
      ...['in_shape', 'out_shape', 'kernel', 'stride', 'dil', 'pad', 'in_strides'].map((name): UniformDecl => ({ name, type: 'i32', length: R })),
      ...activationUniforms(act),
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
      b.main(`${b.linearIndex('u32(u.size)')}
  var rest_o = i32(index) % u.out_spatial;
  ${axes.slice().reverse().map((d) => `let o_${d} = rest_o % u.out_shape_${d}; rest_o = rest_o / u.out_shape_${d};`).join('\n  ')}
  let m = (i32(index) / u.out_spatial) % u.out_c;
  let n = i32(index) / (u.out_spatial * u.out_c);
  let c0 = (m / u.group_out) * u.group_in; // the group's first input channel
  let m_local = m % u.group_out;
  var sum = ${bias ? f('bias', 'u32(m)') : '0.0'};
  for (var t = 0; t < u.taps; t = t + 1) {
    var rest_t = t;
    var at = 0;
    var hit = true;
    ${axes.slice().reverse().map((d) => [
      `let k_${d} = rest_t % u.kernel_${d}; rest_t = rest_t / u.kernel_${d};`,
      `let t_${d} = o_${d} + u.pad_${d} - k_${d} * u.dil_${d}; // = i * stride when this tap reaches o`,
      `hit = hit && t_${d} >= 0 && t_${d} % u.stride_${d} == 0 && t_${d} / u.stride_${d} < u.in_shape_${d};`,
      `at = at + (t_${d} / u.stride_${d}) * u.in_strides_${d};`,
    ].join('\n    ')).join('\n    ')}
    if (!hit) { continue; }
    for (var cl = 0; cl < u.group_in; cl = cl + 1) {
      let c = c0 + cl;
      let x_at = (n * u.in_c + c) * u.in_spatial + at;
      let w_at = (c * u.group_out + m_local) * u.taps + t;
      sum = sum + ${f('x', 'u32(x_at)')} * ${f('w', 'u32(w_at)')};
    }
  }
  ${b.store('y', 'index', convert(computeTypeOf(y.storage), 'f32', activationExpr(b, act, 'sum', 'f32')))}`);
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: {
          size, out_c: y.shape[1]!, in_c: x.shape[1]!, group_in: x.shape[1]! / group, group_out: y.shape[1]! / group,
          out_spatial: sizeOfShape(outShape), in_spatial: sizeOfShape(inShape), taps: sizeOfShape(attrs.kernel),
          in_shape: inShape, out_shape: outShape, kernel: attrs.kernel, stride: attrs.strides, dil: attrs.dilations, pad: pads,
          in_strides: stridesFor(inShape), ...activationValues(act),
        },
      };
    },
  };
}

const convTranspose: GpuKernel = {
  plan(node, [x, wt, bias], [y]) {
    if (kindOf(x!.dtype) !== 'f') throw new GpuUnsupported(`ConvTranspose on ${x!.dtype} has no WebGPU kernel (float only)`);
    if (x!.shape.length > 4) {
      const program = convTransposeNdProgram(node, x!, wt!, bias, y!, activationFromNode(node));
      if (sizeOfShape(y!.shape) === 0) return { calls: [] };
      if (Math.max(sizeOfShape(x!.shape), sizeOfShape(y!.shape)) > 0x7fffffff) throw new GpuUnsupported('ConvTranspose tensors too large for 32-bit indexing');
      return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, ...(bias ? [{ input: 2 }] : []), { output: 0 }] }] };
    }
    const g = geometry(node, x!, wt!, y!);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const tensors: TensorSlot[] = [{ input: 0 }, { input: 1 }, ...(bias ? [{ input: 2 }] : []), { output: 0 }];
    return { calls: [{ program: convTransposeProgram(g, x!, wt!, bias, y!, activationFromNode(node)), tensors }] };
  },
};

export const kernels: Record<string, GpuKernel> = { ConvTranspose: convTranspose };
