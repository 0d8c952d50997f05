import { gridSampleAttrs, roiAlignAttrs, type GridSampleAttrs, type RoiAlignAttrs } from '../../../ir/ops/vision.js';
import { dispatchLinear, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';

/**
 * GridSample (2-D and 3-D) on WebGPU: one invocation per output element [N, C, out...], in f32, with the same definition as
 * the CPU reference (runtime/backends/cpu/kernels/vision.ts): unnormalize, pad the coordinate (bilinear, nearest)
 * or each tap (bicubic), zeros outside. The mode, padding, align_corners and spatial rank choose the WGSL (the key).
 */

const WG = 64;

/** WGSL helpers for S spatial axes (input order; uniforms dims_0.. hold their sizes). */
function helpers(b: ShaderBuilder, a: GridSampleAttrs, S: number): void {
  const params = Array.from({ length: S }, (_, k) => `p${k}: i32`).join(', ');
  const inside = Array.from({ length: S }, (_, k) => `p${k} < 0 || p${k} >= i32(u.dims_${k})`).join(' || ');
  let off = 'u32(p0)';
  for (let k = 1; k < S; k++) off = `(${off}) * u.dims_${k} + u32(p${k})`;
  b.helper(`fn tap(base: u32, ${params}) -> f32 {
  if (${inside}) { return 0.0; }
  return ${b.loadAs('x', `base + ${off}`, 'f32')};
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
  const S = x.shape.length - 2;
  const c = x.shape[1]!;
  const dims = x.shape.slice(2);
  const outPlane = sizeOfShape(g.shape.slice(1, -1));
  const count = sizeOfShape(y.shape);
  const T = computeTypeOf(y.storage);
  return {
    key: `grid-sample:${a.mode}:${a.padding}:${a.alignCorners ? 'ac' : 'nac'}:s${S}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'grid', type: g.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'count', type: 'u32' }, { name: 'c', type: 'u32' }, { name: 'plane', type: 'u32' }, { name: 'out_plane', type: 'u32' }, { name: 'dims', type: 'u32', length: S }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      helpers(b, a, S);
      // Grid component k addresses spatial axis S - 1 - k (x is the width).
      const src = Array.from({ length: S }, (_, k) => `let s${k} = unnorm(${b.loadAs('grid', `(bb * u.out_plane + i) * ${S}u + ${S - 1 - k}u`, 'f32')}, u.dims_${k});`);
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
          ? 'tap(base, y0 - 1 + r, x0 - 1 + k)'
          : 'tap(base, i32(pad_coord(f32(y0 - 1 + r), u.dims_0)), i32(pad_coord(f32(x0 - 1 + k), u.dims_1)))';
        body = `let y0 = i32(floor(s0));
  let x0 = i32(floor(s1));
  let wy = cubic_weights(s0 - floor(s0));
  let wx = cubic_weights(s1 - floor(s1));
  var v = 0.0;
  for (var r = 0; r < 4; r = r + 1) {
    var row = 0.0;
    for (var k = 0; k < 4; k = k + 1) { row = row + wx[k] * ${tapExpr}; }
    v = v + wy[r] * row;
  }`;
      } else {
        const padded = Array.from({ length: S }, (_, k) => `let p${k} = pad_coord(s${k}, u.dims_${k});`).join('\n  ');
        if (a.mode === 'nearest') {
          // WGSL round() rounds half to even, as C nearbyint does.
          body = `${padded}
  let v = tap(base, ${Array.from({ length: S }, (_, k) => `i32(round(p${k}))`).join(', ')});`;
        } else {
          const lines = [padded, ...Array.from({ length: S }, (_, k) => `let l${k} = floor(p${k});\n  let f${k} = p${k} - l${k};`), 'var v = 0.0;'];
          for (let corner = 0; corner < 1 << S; corner++) {
            const up = Array.from({ length: S }, (_, k) => (corner >> (S - 1 - k)) & 1);
            const wgt = up.map((u1, k) => (u1 ? `f${k}` : `(1.0 - f${k})`)).join(' * ');
            lines.push(`v = v + ${wgt} * tap(base, ${up.map((u1, k) => `i32(l${k})${u1 ? ' + 1' : ''}`).join(', ')});`);
          }
          body = lines.join('\n  ');
        }
      }
      b.main(`${b.linearIndex('u.count')}
  let i = index % u.out_plane;
  let nc = index / u.out_plane;
  let bb = nc / u.c;
  let base = nc * u.plane;
  ${src.join('\n  ')}
  ${body}
  ${b.store('y', 'index', `${T}(v)`)}`);
    },
    run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, c, plane: sizeOfShape(dims), out_plane: outPlane, dims } }),
  };
}

const gridSample: GpuKernel = {
  plan(node, [x, g], [y]) {
    const a = gridSampleAttrs(node);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    return { calls: [{ program: gridSampleProgram(x!, g!, y!, a), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

/**
 * RoiAlign: one invocation per output element [R, C, oh, ow] reads its roi and batch index, derives the sampling
 * grid (sampling_ratio, or ceil(roi / bins) when 0) and averages (or maxes) the bilinear samples, exactly as the CPU
 * reference does. A batch index outside [0, N) gives 0 (the CPU reference rejects it).
 */
function roiAlignProgram(x: GpuTensorInfo, rois: GpuTensorInfo, bi: GpuTensorInfo, y: GpuTensorInfo, a: RoiAlignAttrs): ProgramSpec {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const count = sizeOfShape(y.shape);
  const T = computeTypeOf(y.storage);
  return {
    key: `roi-align:${a.max ? 'max' : 'avg'}:${a.halfPixel ? 'hp' : 'ohp'}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'rois', type: rois.storage }, { name: 'batch_indices', type: bi.storage }, { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'count', type: 'u32' }, { name: 'n', type: 'u32' }, { name: 'c', type: 'u32' }, { name: 'h', type: 'u32' }, { name: 'w', type: 'u32' },
      { name: 'out_h', type: 'u32' }, { name: 'out_w', type: 'u32' }, { name: 'sampling_ratio', type: 'u32' }, { name: 'scale', type: 'f32' },
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const px = (i: string) => b.loadAs('x', i, 'f32');
      b.helper(`fn roi_sample(plane: u32, y_in: f32, x_in: f32) -> f32 {
  let hf = f32(u.h);
  let wf = f32(u.w);
  if (y_in < -1.0 || y_in > hf || x_in < -1.0 || x_in > wf) { return 0.0; }
  var sy = max(y_in, 0.0);
  var sx = max(x_in, 0.0);
  var yl = u32(floor(sy));
  var xl = u32(floor(sx));
  var yh = yl + 1u;
  var xh = xl + 1u;
  if (yl >= u.h - 1u) { yl = u.h - 1u; yh = yl; sy = f32(yl); }
  if (xl >= u.w - 1u) { xl = u.w - 1u; xh = xl; sx = f32(xl); }
  let ly = sy - f32(yl);
  let lx = sx - f32(xl);
  let t = vec4<f32>((1.0 - ly) * (1.0 - lx) * ${px('plane + yl * u.w + xl')}, (1.0 - ly) * lx * ${px('plane + yl * u.w + xh')},
                    ly * (1.0 - lx) * ${px('plane + yh * u.w + xl')}, ly * lx * ${px('plane + yh * u.w + xh')});
  return ${a.max ? 'max(max(t.x, t.y), max(t.z, t.w))' : 't.x + t.y + t.z + t.w'};
}`);
      const roi = (k: number) => `${b.loadAs('rois', `q * 4u + ${k}u`, 'f32')} * u.scale - ${a.halfPixel ? '0.5' : '0.0'}`;
      b.main(`${b.linearIndex('u.count')}
  let pw = index % u.out_w;
  let ph = (index / u.out_w) % u.out_h;
  let ch = (index / (u.out_w * u.out_h)) % u.c;
  let q = index / (u.out_w * u.out_h * u.c);
  let bb = i32(${b.load('batch_indices', 'q')});
  if (bb < 0 || bb >= i32(u.n)) { ${b.store('y', 'index', `${T}(0)`)} return; }
  let x1 = ${roi(0)};
  let y1 = ${roi(1)};
  var rw = ${roi(2)} - x1;
  var rh = ${roi(3)} - y1;
  ${a.halfPixel ? '' : 'rw = max(rw, 1.0); rh = max(rh, 1.0);'}
  let bh = rh / f32(u.out_h);
  let bw = rw / f32(u.out_w);
  let gh = select(u32(ceil(rh / f32(u.out_h))), u.sampling_ratio, u.sampling_ratio > 0u);
  let gw = select(u32(ceil(rw / f32(u.out_w))), u.sampling_ratio, u.sampling_ratio > 0u);
  let plane = (u32(bb) * u.c + ch) * u.h * u.w;
  var acc = ${a.max ? b.infinity(true) : '0.0'};
  for (var iy = 0u; iy < gh; iy = iy + 1u) {
    let sy = y1 + f32(ph) * bh + (f32(iy) + 0.5) * bh / f32(gh);
    for (var ix = 0u; ix < gw; ix = ix + 1u) {
      let s = roi_sample(plane, sy, x1 + f32(pw) * bw + (f32(ix) + 0.5) * bw / f32(gw));
      acc = ${a.max ? 'max(acc, s)' : 'acc + s'};
    }
  }
  ${a.max ? 'if (gh * gw == 0u) { acc = 0.0; }' : 'acc = acc / f32(max(gh * gw, 1u));'}
  ${b.store('y', 'index', `${T}(acc)`)}`);
    },
    run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, n, c, h, w, out_h: a.outH, out_w: a.outW, sampling_ratio: a.samplingRatio, scale: a.scale } }),
  };
}

const roiAlign: GpuKernel = {
  plan(node, [x, rois, bi], [y]) {
    const a = roiAlignAttrs(node);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    return { calls: [{ program: roiAlignProgram(x!, rois!, bi!, y!, a), tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { GridSample: gridSample, RoiAlign: roiAlign };
