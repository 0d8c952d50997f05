import { ShapeError } from '../../../../errors.js';
import { attrInt, type Node } from '../../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../../ir/ops/conv-geometry.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type Uniforms } from '../../program.js';
import { computeTypeOf } from '../../storage.js';
import { convert, type UniformDecl } from '../../wgsl/builder.js';
import { floatOnly, nanFn, twoD } from './common.js';

/**
 * AveragePoolGrad(dY, x_shape) and MaxPoolGrad(dY, X): twins of runtime/train/ops/pool-grad.ts for 1-D and 2-D
 * pools (the forward GPU pools' reach). Both gather: one invocation per dX element finds the windows whose tap
 * lands on it (exact division by the stride), so no two invocations write one element.
 *   Average: each such window adds dY / count, count = taps inside the input (plus, with count_include_pad, those
 *     in the declared padding; never those a ceil_mode window puts beyond it). The count separates per axis.
 *   Max: a window adds its dY when this element is the window's argmax by the forward rule (first maximum in
 *     window order; a NaN wins), recomputed from X.
 */

interface Geometry {
  planes: number; h: number; w: number; oh: number; ow: number; kh: number; kw: number;
  stride: [number, number]; dil: [number, number]; pad: [number, number]; padEnd: [number, number];
}

function geometry(node: Node, xShape: number[], dyShape: number[]): Geometry {
  const spatial = xShape.length - 2;
  if (spatial !== 1 && spatial !== 2) throw new GpuUnsupported(`${node.op} with ${spatial} spatial dimension(s) has no WebGPU kernel (1-D and 2-D only)`);
  const win = readWindowAttrs(node, spatial);
  const cw = concreteWindow(xShape.slice(2), win);
  const want = [xShape[0]!, xShape[1]!, ...cw.out];
  if (dyShape.length !== want.length || dyShape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${node.op}: dY has shape [${dyShape.join(', ')}] but the forward pool output is [${want.join(', ')}].`);
  }
  const [h, w] = twoD(xShape.slice(2), spatial, 1);
  const [oh, ow] = twoD(cw.out, spatial, 1);
  const [kh, kw] = twoD(win.kernel, spatial, 1);
  return {
    planes: xShape[0]! * xShape[1]!, h, w, oh, ow, kh, kw,
    stride: twoD(win.strides, spatial, 1), dil: twoD(win.dilations, spatial, 1), pad: twoD(cw.padsBegin, spatial, 0), padEnd: twoD(cw.padsEnd, spatial, 0),
  };
}

const NAMES = ['in_h', 'in_w', 'out_h', 'out_w', 'k_h', 'k_w', 'stride_h', 'stride_w', 'dil_h', 'dil_w', 'pad_h', 'pad_w', 'pad_end_h', 'pad_end_w'];
const UNIFORMS: UniformDecl[] = [{ name: 'size', type: 'u32' }, ...NAMES.map((name): UniformDecl => ({ name, type: 'i32' }))];
const WG = 64;

function values(g: Geometry, size: number): Uniforms {
  return {
    size, in_h: g.h, in_w: g.w, out_h: g.oh, out_w: g.ow, k_h: g.kh, k_w: g.kw, stride_h: g.stride[0], stride_w: g.stride[1],
    dil_h: g.dil[0], dil_w: g.dil[1], pad_h: g.pad[0], pad_w: g.pad[1], pad_end_h: g.padEnd[0], pad_end_w: g.padEnd[1],
  };
}

function poolGradProgram(kind: 'average' | 'max', g: Geometry, dy: GpuTensorInfo, x: GpuTensorInfo | undefined, dx: GpuTensorInfo, includePad: boolean): ProgramSpec {
  const size = g.planes * g.h * g.w;
  return {
    key: `train:pool-grad:${kind}${kind === 'average' ? (includePad ? ':incl' : ':excl') : ''}`,
    bindings: [{ name: 'dy', type: dy.storage }, ...(x ? [{ name: 'x', type: x.storage }] : []), { name: 'dx', type: dx.storage }],
    uniforms: UNIFORMS,
    workgroupSize: [WG, 1, 1],
    source(b) {
      if (kind === 'average') {
        // Taps of window o along one axis that count: inside [0, n), or inside [-pad, n + pad_end) with count_include_pad.
        b.helper(`fn axis_count(o: i32, k: i32, stride: i32, dil: i32, pad: i32, pad_end: i32, n: i32) -> i32 {
  var count = 0;
  for (var t = 0; t < k; t = t + 1) {
    let d = o * stride - pad + t * dil;
    ${includePad ? 'if (d >= -pad && d < n + pad_end) { count = count + 1; }' : 'if (d >= 0 && d < n) { count = count + 1; }'}
  }
  return count;
}`);
      } else {
        const nan = nanFn(b);
        b.helper(`fn window_argmax(x_base: u32, oh: i32, ow: i32) -> i32 {
  var best = 0.0;
  var arg = -1;
  for (var kh = 0; kh < u.k_h; kh = kh + 1) {
    let ih = oh * u.stride_h + kh * u.dil_h - u.pad_h;
    for (var kw = 0; kw < u.k_w; kw = kw + 1) {
      let iw = ow * u.stride_w + kw * u.dil_w - u.pad_w;
      if (ih < 0 || ih >= u.in_h || iw < 0 || iw >= u.in_w) { continue; }
      let at = ih * u.in_w + iw;
      let v = ${b.loadAs('x', 'x_base + u32(at)', 'f32')};
      if (arg < 0 || v > best || (${nan}(v) && !${nan}(best))) { best = v; arg = at; }
    }
  }
  return arg;
}`);
      }
      const lines = [
        b.linearIndex('u.size'),
        'let i = i32(index);',
        'let iw = i % u.in_w;',
        'let ih = (i / u.in_w) % u.in_h;',
        'let plane = i / (u.in_w * u.in_h); // n * C + c',
        'let dy_base = plane * u.out_h * u.out_w;',
        'var acc = 0.0;',
        'for (var kh = 0; kh < u.k_h; kh = kh + 1) {',
        '  let th = ih + u.pad_h - kh * u.dil_h;',
        '  if (th < 0 || th % u.stride_h != 0 || th / u.stride_h >= u.out_h) { continue; }',
        '  let oh = th / u.stride_h;',
        '  for (var kw = 0; kw < u.k_w; kw = kw + 1) {',
        '    let tw = iw + u.pad_w - kw * u.dil_w;',
        '    if (tw < 0 || tw % u.stride_w != 0 || tw / u.stride_w >= u.out_w) { continue; }',
        '    let ow = tw / u.stride_w;',
        `    let g = ${b.loadAs('dy', 'u32(dy_base + oh * u.out_w + ow)', 'f32')};`,
      ];
      if (kind === 'average') {
        lines.push(
          '    let count = axis_count(oh, u.k_h, u.stride_h, u.dil_h, u.pad_h, u.pad_end_h, u.in_h) * axis_count(ow, u.k_w, u.stride_w, u.dil_w, u.pad_w, u.pad_end_w, u.in_w);',
          '    acc = acc + g / f32(count);',
        );
      } else {
        lines.push('    if (window_argmax(u32(plane * u.in_h * u.in_w), oh, ow) == ih * u.in_w + iw) { acc = acc + g; }');
      }
      lines.push('  }', '}', b.store('dx', 'index', convert(computeTypeOf(dx.storage), 'f32', 'acc')));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: values(g, size) };
    },
  };
}

const averagePoolGrad: GpuKernel = {
  hostInputs: [1],
  plan(node, [dy], [dx]) {
    floatOnly(node.op, 'dY', dy);
    const g = geometry(node, dx!.shape, dy!.shape);
    if (sizeOfShape(dx!.shape) === 0) return { calls: [] };
    const program = poolGradProgram('average', g, dy!, undefined, dx!, attrInt(node, 'count_include_pad', 0) !== 0);
    return { calls: [{ program, tensors: [{ input: 0 }, { output: 0 }] }] };
  },
};

const maxPoolGrad: GpuKernel = {
  plan(node, [dy, x], [dx]) {
    floatOnly(node.op, 'dY', dy);
    floatOnly(node.op, 'X', x);
    const g = geometry(node, x!.shape, dy!.shape);
    if (sizeOfShape(dx!.shape) === 0) return { calls: [] };
    return { calls: [{ program: poolGradProgram('max', g, dy!, x!, dx!, false), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { AveragePoolGrad: averagePoolGrad, MaxPoolGrad: maxPoolGrad };
