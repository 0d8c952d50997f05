import { attrInt, type Node } from '../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../ir/ops/conv-geometry.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert, type UniformDecl } from '../wgsl/builder.js';
import { kindOf } from './elementwise.js';

/**
 * Window pools on [N, C, H, W] (1-D pools run as 2-D with H = 1): MaxPool-12 (optional Indices output,
 * storage_order), AveragePool-19 (count_include_pad, ceil_mode) and LpPool-18, one invocation per output, looping
 * over the window. Float pools of 1 or 2 spatial axes use the 2-D program; 3 or more spatial axes, and integer
 * MaxPool (uint8/int8/int32..., compared in its own 32-bit type, never through f32) at any rank, use the N-D
 * program, which walks the window as a flat tap index decoded per axis (the rank is in its key). Semantics follow the CPU reference (backends/cpu/kernels/pool.ts): padding never wins a max,
 * NaN propagates, the first of equal maxima is kept, and the average's divisor counts the taps inside the input
 * (plus, with count_include_pad, those in the declared padding; never those a ceil_mode window puts beyond it).
 */

type PoolKind = 'max' | 'average' | 'lp';

interface PoolGeometry {
  n: number; c: number; h: number; w: number; oh: number; ow: number;
  kh: number; kw: number; stride: [number, number]; dil: [number, number];
  padBegin: [number, number]; padEnd: [number, number];
}

function geometry(node: Node, x: GpuTensorInfo, y: GpuTensorInfo): PoolGeometry {
  const spatial = x.shape.length - 2;
  const win = readWindowAttrs(node, spatial);
  const cw = concreteWindow(x.shape.slice(2), win);
  const two = (v: number[], d: number): [number, number] => (spatial === 1 ? [d, v[0]!] : [v[0]!, v[1]!]);
  const [h, w] = two(x.shape.slice(2), 1);
  const [oh, ow] = two(y.shape.slice(2), 1);
  const [kh, kw] = two(win.kernel, 1);
  return {
    n: x.shape[0]!, c: x.shape[1]!, h, w, oh, ow, kh, kw,
    stride: two(win.strides, 1), dil: two(win.dilations, 1), padBegin: two(cw.padsBegin, 0), padEnd: two(cw.padsEnd, 0),
  };
}

const WINDOW = ['in_h', 'in_w', 'out_h', 'out_w', 'k_h', 'k_w', 'stride_h', 'stride_w', 'dil_h', 'dil_w', 'pad_h', 'pad_w', 'pad_end_h', 'pad_end_w'];
const WG = 64;

function poolProgram(kind: PoolKind, g: PoolGeometry, x: GpuTensorInfo, y: GpuTensorInfo, opts: { indices?: GpuTensorInfo; colMajor?: boolean; includePad?: boolean; p?: number }): ProgramSpec {
  const size = g.n * g.c * g.oh * g.ow;
  const variant = kind === 'max' ? (opts.indices ? `idx-${opts.colMajor ? 'col' : 'row'}` : '') : kind === 'average' ? (opts.includePad ? 'incl' : 'excl') : `p${opts.p}`;
  return {
    key: `pool:${kind}:${variant}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }, ...(opts.indices ? [{ name: 'indices', type: opts.indices.storage }] : [])],
    uniforms: [{ name: 'size', type: 'u32' }, ...WINDOW.map((name): UniformDecl => ({ name, type: 'i32' }))],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      const lines = [
        b.linearIndex('u.size'),
        'let ow = i32(index % u32(u.out_w));',
        'let oh = i32((index / u32(u.out_w)) % u32(u.out_h));',
        'let plane = index / u32(u.out_w * u.out_h); // n * C + c',
        'let x_base = plane * u32(u.in_h * u.in_w);',
      ];
      if (kind === 'max') {
        b.helper(`fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`);
        lines.push('var best = 0.0;', 'var arg = -1;');
      } else lines.push('var sum = 0.0;', 'var count = 0;');
      lines.push(
        'for (var kh = 0; kh < u.k_h; kh = kh + 1) {',
        '  let ih = oh * u.stride_h + kh * u.dil_h - u.pad_h;',
        '  for (var kw = 0; kw < u.k_w; kw = kw + 1) {',
        '    let iw = ow * u.stride_w + kw * u.dil_w - u.pad_w;',
        '    let inside = ih >= 0 && ih < u.in_h && iw >= 0 && iw < u.in_w;',
      );
      if (kind === 'max') {
        lines.push(
          '    if (!inside) { continue; }',
          '    let at = ih * u.in_w + iw;',
          `    let v = ${b.loadAs('x', 'x_base + u32(at)', 'f32')};`,
          '    // The first tap wins ties; a NaN wins and stays.',
          '    if (arg < 0 || v > best || (is_nan(v) && !is_nan(best))) { best = v; arg = at; }',
        );
      } else {
        const value = kind === 'lp' ? (opts.p === 1 ? 'abs(v)' : 'v * v') : 'v';
        lines.push(`    if (inside) { let v = ${b.loadAs('x', 'x_base + u32(ih * u.in_w + iw)', 'f32')}; sum = sum + ${value}; count = count + 1; }`);
        if (opts.includePad) {
          lines.push('    else if (ih >= -u.pad_h && ih < u.in_h + u.pad_end_h && iw >= -u.pad_w && iw < u.in_w + u.pad_end_w) { count = count + 1; }');
        }
      }
      lines.push('  }', '}');
      if (kind === 'max') {
        lines.push(b.store('y', 'index', convert(T, 'f32', `select(best, ${b.infinity(true)}, arg < 0)`)));
        if (opts.indices) {
          const spatial = opts.colMajor ? '(arg % u.in_w) * u.in_h + arg / u.in_w' : 'arg';
          lines.push(b.store('indices', 'index', `${computeTypeOf(opts.indices.storage)}(select(i32(x_base) + ${spatial}, -1, arg < 0))`));
        }
      } else if (kind === 'average') lines.push(b.store('y', 'index', convert(T, 'f32', 'sum / f32(count)')));
      else lines.push(b.store('y', 'index', convert(T, 'f32', opts.p === 1 ? 'sum' : 'sqrt(sum)')));
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: {
          size, in_h: g.h, in_w: g.w, out_h: g.oh, out_w: g.ow, k_h: g.kh, k_w: g.kw, stride_h: g.stride[0], stride_w: g.stride[1],
          dil_h: g.dil[0], dil_w: g.dil[1], pad_h: g.padBegin[0], pad_w: g.padBegin[1], pad_end_h: g.padEnd[0], pad_end_w: g.padEnd[1],
        },
      };
    },
  };
}

/** Geometry of any number of spatial axes, as the N-D program's uniforms. */
interface NdGeometry {
  planes: number; // N * C
  inShape: number[]; outShape: number[]; kernel: number[];
  stride: number[]; dil: number[]; padBegin: number[]; padEnd: number[];
}

function ndGeometry(node: Node, x: GpuTensorInfo, y: GpuTensorInfo): NdGeometry {
  const inShape = x.shape.slice(2);
  const win = readWindowAttrs(node, inShape.length);
  const cw = concreteWindow(inShape, win);
  return {
    planes: x.shape[0]! * x.shape[1]!, inShape, outShape: y.shape.slice(2), kernel: win.kernel,
    stride: win.strides, dil: win.dilations, padBegin: cw.padsBegin, padEnd: cw.padsEnd,
  };
}

const ND_ARRAYS = ['in_shape', 'out_shape', 'kernel', 'stride', 'dil', 'pad', 'pad_end', 'in_strides', 'col_strides'];

/**
 * N-D pool: invocation = (plane, output position). The window is walked as one flat tap index t in [0, taps),
 * decoded row-major over the kernel, so the first tap of equal maxima is the first in row-major window order,
 * as on the CPU. Integer inputs compare in their own type (i32/u32): f32 would round values past 2^24.
 */
function poolNdProgram(kind: PoolKind, g: NdGeometry, x: GpuTensorInfo, y: GpuTensorInfo, opts: { indices?: GpuTensorInfo; colMajor?: boolean; includePad?: boolean; p?: number }): ProgramSpec {
  const R = g.inShape.length;
  const outSpatial = sizeOfShape(g.outShape);
  const size = g.planes * outSpatial;
  const integer = kind === 'max' && kindOf(x.dtype) !== 'f';
  const variant = kind === 'max' ? (opts.indices ? `idx-${opts.colMajor ? 'col' : 'row'}` : '') : kind === 'average' ? (opts.includePad ? 'incl' : 'excl') : `p${opts.p}`;
  const axes = Array.from({ length: R }, (_, d) => d);
  return {
    key: `pool-nd:${kind}:${variant}:r${R}${integer ? ':int' : ''}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }, ...(opts.indices ? [{ name: 'indices', type: opts.indices.storage }] : [])],
    uniforms: [
      { name: 'size', type: 'u32' }, { name: 'out_spatial', type: 'i32' }, { name: 'in_spatial', type: 'i32' }, { name: 'taps', type: 'i32' },
      ...ND_ARRAYS.map((name): UniformDecl => ({ name, type: 'i32', length: R })),
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      const A = integer ? computeTypeOf(x.storage) : 'f32';
      const lines = [
        b.linearIndex('u.size'),
        'let plane = index / u32(u.out_spatial); // n * C + c',
        'var rest_o = i32(index % u32(u.out_spatial));',
        'let x_base = plane * u32(u.in_spatial);',
        // Output coordinates, last axis fastest.
        ...axes.slice().reverse().map((d) => `let o_${d} = rest_o % u.out_shape_${d}; rest_o = rest_o / u.out_shape_${d};`),
      ];
      if (kind === 'max') {
        if (!integer) {
          b.helper(`fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`);
        }
        lines.push(`var best = ${A}(0);`, 'var arg = -1;');
      } else lines.push('var sum = 0.0;', 'var count = 0;');
      lines.push(
        'for (var t = 0; t < u.taps; t = t + 1) {',
        '  var rest_t = t;',
        '  var at = 0;',
        '  var inside = true;',
        '  var in_pad = true;',
        ...axes.slice().reverse().flatMap((d) => [
          `  let k_${d} = rest_t % u.kernel_${d}; rest_t = rest_t / u.kernel_${d};`,
          `  let i_${d} = o_${d} * u.stride_${d} + k_${d} * u.dil_${d} - u.pad_${d};`,
          `  inside = inside && i_${d} >= 0 && i_${d} < u.in_shape_${d};`,
          `  in_pad = in_pad && i_${d} >= -u.pad_${d} && i_${d} < u.in_shape_${d} + u.pad_end_${d};`,
          `  at = at + i_${d} * u.in_strides_${d};`,
        ]),
      );
      if (kind === 'max') {
        const better = integer ? 'v > best' : 'v > best || (is_nan(v) && !is_nan(best))';
        lines.push(
          '  if (!inside) { continue; }',
          `  let v = ${b.loadAs('x', 'x_base + u32(at)', A)};`,
          '  // The first tap wins ties; a NaN wins and stays.',
          `  if (arg < 0 || ${better}) { best = v; arg = at; }`,
        );
      } else {
        const value = kind === 'lp' ? (opts.p === 1 ? 'abs(v)' : 'v * v') : 'v';
        lines.push(`  if (inside) { let v = ${b.loadAs('x', 'x_base + u32(at)', 'f32')}; sum = sum + ${value}; count = count + 1; }`);
        // count_include_pad counts taps in the declared padding, never those a ceil_mode window puts beyond it.
        if (opts.includePad) lines.push('  else if (in_pad) { count = count + 1; }');
      }
      lines.push('}');
      if (kind === 'max') {
        // An empty window (all taps in the padding): -inf for floats; 0 for integers, as the CPU's typed arrays give.
        const empty = integer ? `${A}(0)` : b.infinity(true);
        lines.push(b.store('y', 'index', convert(T, A, `select(best, ${empty}, arg < 0)`)));
        if (opts.indices) {
          let spatial = 'arg';
          if (opts.colMajor) {
            lines.push('var rest_a = arg;', 'var col = 0;', ...axes.slice().reverse().map((d) => `col = col + (rest_a % u.in_shape_${d}) * u.col_strides_${d}; rest_a = rest_a / u.in_shape_${d};`));
            spatial = 'col';
          }
          lines.push(b.store('indices', 'index', `${computeTypeOf(opts.indices.storage)}(select(i32(x_base) + ${spatial}, -1, arg < 0))`));
        }
      } else if (kind === 'average') lines.push(b.store('y', 'index', convert(T, 'f32', 'sum / f32(count)')));
      else lines.push(b.store('y', 'index', convert(T, 'f32', opts.p === 1 ? 'sum' : 'sqrt(sum)')));
      b.main(lines.join('\n  '));
    },
    run() {
      const colStrides: number[] = [];
      g.inShape.reduce((acc, n, d) => ((colStrides[d] = acc), acc * n), 1);
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: {
          size, out_spatial: outSpatial, in_spatial: sizeOfShape(g.inShape), taps: sizeOfShape(g.kernel),
          in_shape: g.inShape, out_shape: g.outShape, kernel: g.kernel, stride: g.stride, dil: g.dil, pad: g.padBegin, pad_end: g.padEnd,
          in_strides: stridesFor(g.inShape), col_strides: colStrides,
        },
      };
    },
  };
}

function pool(kind: PoolKind): GpuKernel {
  return {
    plan(node, [x], [y, indices]): KernelPlan {
      const k = kindOf(x!.dtype);
      if (k !== 'f' && !(kind === 'max' && (k === 'i' || k === 'u'))) {
        throw new GpuUnsupported(`${node.op} on ${x!.dtype} has no WebGPU kernel (${kind === 'max' ? 'float and integer' : 'float'} only)`);
      }
      const spatial = x!.shape.length - 2;
      if (spatial < 1) throw new GpuUnsupported(`${node.op} needs at least one spatial dimension`);
      let p: number | undefined;
      if (kind === 'lp') {
        p = attrInt(node, 'p', 2);
        if (p !== 1 && p !== 2) throw new GpuUnsupported(`LpPool with p=${p} has no WebGPU kernel (p = 1 or 2)`);
      }
      const opts = {
        indices, p,
        colMajor: attrInt(node, 'storage_order', 0) === 1,
        includePad: attrInt(node, 'count_include_pad', 0) !== 0,
      };
      const nd = spatial > 2 || k !== 'f';
      // Validates the attributes against the rank before anything else (as the 2-D geometry does).
      const g = nd ? ndGeometry(node, x!, y!) : geometry(node, x!, y!);
      if (sizeOfShape(y!.shape) === 0) return { calls: [] };
      if (sizeOfShape(x!.shape) > 0x7fffffff) throw new GpuUnsupported(`${node.op} input too large for 32-bit indexing`);
      const program = nd ? poolNdProgram(kind, g as NdGeometry, x!, y!, opts) : poolProgram(kind, g as PoolGeometry, x!, y!, opts);
      const tensors: TensorSlot[] = [{ input: 0 }, { output: 0 }, ...(indices ? [{ output: 1 }] : [])];
      return { calls: [{ program, tensors }] };
    },
  };
}

export const kernels: Record<string, GpuKernel> = { MaxPool: pool('max'), AveragePool: pool('average'), LpPool: pool('lp') };
