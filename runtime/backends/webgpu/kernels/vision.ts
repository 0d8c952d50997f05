import { gridSampleAttrs, type GridSampleAttrs } from '../../../ir/ops/vision.js';
import { dispatchLinear, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';

/**
 * GridSample (2-D) on WebGPU: one invocation per output element [N, C, Ho, Wo], in f32, with the same definition as
 * the CPU reference (runtime/backends/cpu/kernels/vision.ts): unnormalize, pad the coordinate (bilinear, nearest)
 * or each tap (bicubic), zeros outside. The mode, padding and align_corners choose the WGSL (they are in the key).
 */

const WG = 64;

function helpers(b: ShaderBuilder, a: GridSampleAttrs): void {
  b.helper(`fn tap(plane: u32, yy: i32, xx: i32) -> f32 {
  if (yy < 0 || yy >= i32(u.h) || xx < 0 || xx >= i32(u.w)) { return 0.0; }
  return ${b.loadAs('x', 'plane + u32(yy) * u.w + u32(xx)', 'f32')};
}`);
  b.helper(`fn unnorm(v: f32, size: u32) -> f32 {
  return ${a.alignCorners ? '(v + 1.0) * 0.5 * f32(size - 1u)' : '((v + 1.0) * f32(size) - 1.0) * 0.5'};
}`);
  b.helper(`// Mirror v into [lo2 / 2, hi2 / 2] (bounds given doubled).
fn reflect(v: f32, lo2: f32, hi2: f32) -> f32 {
  if (lo2 == hi2) { return 0.0; }
  let lo = lo2 * 0.5;
  let span = (hi2 - lo2) * 0.5;
  let d = abs(v - lo);
  let flips = floor(d / span);
  let extra = d - flips * span;
  return select(span - extra + lo, extra + lo, (i32(flips) & 1) == 0);
}`);
  const padded = a.padding === 'border'
    ? 'clamp(v, 0.0, f32(size) - 1.0)'
    : a.padding === 'reflection'
      ? `clamp(reflect(v, ${a.alignCorners ? '0.0, 2.0 * (f32(size) - 1.0)' : '-1.0, 2.0 * f32(size) - 1.0'}), 0.0, f32(size) - 1.0)`
      : 'v';
  b.helper(`fn pad_coord(v: f32, size: u32) -> f32 {
  return ${padded};
}`);
}

function gridSampleProgram(x: GpuTensorInfo, g: GpuTensorInfo, y: GpuTensorInfo, a: GridSampleAttrs): ProgramSpec {
  const [, c, h, w] = x.shape as [number, number, number, number];
  const [ho, wo] = [g.shape[1]!, g.shape[2]!];
  const count = sizeOfShape(y.shape);
  const T = computeTypeOf(y.storage);
  return {
    key: `grid-sample:${a.mode}:${a.padding}:${a.alignCorners ? 'ac' : 'nac'}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'grid', type: g.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'count', type: 'u32' }, { name: 'c', type: 'u32' }, { name: 'h', type: 'u32' }, { name: 'w', type: 'u32' }, { name: 'hw_out', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      helpers(b, a);
      let body: string;
      if (a.mode === 'bicubic') {
        b.helper(`// Keys cubic convolution weights (A = -0.75) of taps -1, 0, 1, 2 at fraction t.
fn cubic_weights(t: f32) -> vec4<f32> {
  let A = -0.75;
  let near0 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
  let s = 1.0 - t;
  let near1 = ((A + 2.0) * s - (A + 3.0)) * s * s + 1.0;
  let f0 = t + 1.0;
  let f1 = 2.0 - t;
  return vec4<f32>(((A * f0 - 5.0 * A) * f0 + 8.0 * A) * f0 - 4.0 * A, near0, near1, ((A * f1 - 5.0 * A) * f1 + 8.0 * A) * f1 - 4.0 * A);
}`);
        const tapExpr = a.padding === 'zeros'
          ? 'tap(plane, y0 - 1 + r, x0 - 1 + k)'
          : 'tap(plane, i32(pad_coord(f32(y0 - 1 + r), u.h)), i32(pad_coord(f32(x0 - 1 + k), u.w)))';
        body = `let ix = unnorm(gx, u.w);
  let iy = unnorm(gy, u.h);
  let x0 = i32(floor(ix));
  let y0 = i32(floor(iy));
  let wx = cubic_weights(ix - floor(ix));
  let wy = cubic_weights(iy - floor(iy));
  var v = 0.0;
  for (var r = 0; r < 4; r = r + 1) {
    var row = 0.0;
    for (var k = 0; k < 4; k = k + 1) { row = row + wx[k] * ${tapExpr}; }
    v = v + wy[r] * row;
  }`;
      } else if (a.mode === 'nearest') {
        // WGSL round() rounds half to even, as C nearbyint does.
        body = `let ix = pad_coord(unnorm(gx, u.w), u.w);
  let iy = pad_coord(unnorm(gy, u.h), u.h);
  let v = tap(plane, i32(round(iy)), i32(round(ix)));`;
      } else {
        body = `let ix = pad_coord(unnorm(gx, u.w), u.w);
  let iy = pad_coord(unnorm(gy, u.h), u.h);
  let x0 = i32(floor(ix));
  let y0 = i32(floor(iy));
  let fx = ix - floor(ix);
  let fy = iy - floor(iy);
  let v = (1.0 - fy) * ((1.0 - fx) * tap(plane, y0, x0) + fx * tap(plane, y0, x0 + 1)) + fy * ((1.0 - fx) * tap(plane, y0 + 1, x0) + fx * tap(plane, y0 + 1, x0 + 1));`;
      }
      b.main(`${b.linearIndex('u.count')}
  let i = index % u.hw_out;
  let nc = index / u.hw_out;
  let bb = nc / u.c;
  let plane = nc * u.h * u.w;
  let gx = ${b.loadAs('grid', '(bb * u.hw_out + i) * 2u', 'f32')};
  let gy = ${b.loadAs('grid', '(bb * u.hw_out + i) * 2u + 1u', 'f32')};
  ${body}
  ${b.store('y', 'index', `${T}(v)`)}`);
    },
    run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, c, h, w, hw_out: ho * wo } }),
  };
}

const gridSample: GpuKernel = {
  plan(node, [x, g], [y]) {
    const a = gridSampleAttrs(node);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    return { calls: [{ program: gridSampleProgram(x!, g!, y!, a), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { GridSample: gridSample };
