import { dftGeometry, melWeights, scalarValue, stftGeometry, WINDOW_COEFFS, windowPeriod } from '../../../ir/ops/signal.js';
import { tensorFromNumbers } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';
import { mathHelper } from '../wgsl/math.js';

/**
 * Signal ops on WebGPU, in f32: cosine windows (one invocation per sample), DFT and STFT as direct sums (one
 * invocation per output bin, O(N) each; the twiddle index k n mod N advances incrementally so angles stay small),
 * and MelWeightMatrix (the filter points are computed at plan time from the constant scalars, the triangles in the
 * shader). Shape-deciding scalars (window size, dft_length, frame_step, frame_length, the mel parameters) must be
 * constants: they are host inputs.
 */

const WG = 64;

function storeOut(b: ShaderBuilder, y: GpuTensorInfo, index: string, v: string): string {
  const T = computeTypeOf(y.storage);
  return b.store('y', index, y.dtype === 'bool' ? `u32(${v} != 0.0)` : `${T}(${v})`);
}

function windowKernel(op: string): GpuKernel {
  return {
    hostInputs: [0],
    plan(node, _inputs, [y]) {
      const size = y!.shape[0]!;
      const [a0, a1, a2] = WINDOW_COEFFS[op]!;
      const period = windowPeriod(node, size);
      const program: ProgramSpec = {
        key: 'cosine-window',
        bindings: [{ name: 'y', type: y!.storage }],
        uniforms: [{ name: 'size', type: 'u32' }, { name: 'period', type: 'f32' }, { name: 'a0', type: 'f32' }, { name: 'a1', type: 'f32' }, { name: 'a2', type: 'f32' }],
        workgroupSize: [WG, 1, 1],
        source(b) {
          b.main(`${b.linearIndex('u.size')}
  let t = 6.283185307179586 * f32(index) / u.period;
  let v = u.a0 - u.a1 * ${mathHelper(b, 'cos', 'f32')}(t) + u.a2 * ${mathHelper(b, 'cos', 'f32')}(2.0 * t);
  ${storeOut(b, y!, 'index', 'v')}`);
        },
        run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, period, a0, a1, a2 } }),
      };
      return { calls: [{ program, tensors: [{ output: 0 }] }] };
    },
  };
}

/**
 * The direct-sum body shared by DFT and STFT: accumulates (sr, si) over t < count of x(t) e^(sign 2 pi i k t / n),
 * with `re(t)` / `im(t)` expressions for the input.
 */
function sumBody(b: ShaderBuilder, re: string, im: string, sign: string): string {
  // The WGSL builtins promise only ~5e-4 absolute error; wgsl/math.ts has accurate ones. Multiples of a quarter turn
  // are exact, so bins that cancel exactly (the Nyquist bin's imaginary part of a real signal) come out as 0.
  const [cosFn, sinFn] = [mathHelper(b, 'cos', 'f32'), mathHelper(b, 'sin', 'f32')];
  b.helper(`// (cos, sin) of 2 pi m / n for 0 <= m < n.
fn twiddle(m: u32, n: u32) -> vec2<f32> {
  if ((4u * m) % n == 0u) {
    let q = (4u * m) / n;
    return vec2<f32>(select(select(0.0, -1.0, q == 2u), 1.0, q == 0u), select(select(0.0, -1.0, q == 3u), 1.0, q == 1u));
  }
  let ang = 6.283185307179586 * (f32(i32(select(m, m - n, 2u * m > n))) / f32(n));
  return vec2<f32>(${cosFn}(ang), ${sinFn}(ang));
}`);
  return `var sr = 0.0;
  var si = 0.0;
  var kt = 0u;
  for (var t = 0u; t < count; t = t + 1u) {
    let tw = twiddle(kt, n);
    let c = tw.x;
    let s = ${sign} * tw.y;
    let xr = ${re};
    let xi = ${im};
    sr = sr + xr * c - xi * s;
    si = si + xr * s + xi * c;
    kt = (kt + k) % n;
  }`;
}

const dft: GpuKernel = {
  hostInputs: [1, 2],
  plan(node, [x, lenIn, axisIn], [y]) {
    if ((lenIn && !lenIn.value) || (axisIn && !axisIn.value)) throw new GpuUnsupported('DFT needs its dft_length and axis inputs to be constants');
    const g = dftGeometry(node, x!.shape, scalarValue(lenIn?.value), scalarValue(axisIn?.value));
    const c = x!.shape[x!.shape.length - 1]!;
    const outer = sizeOfShape(x!.shape.slice(0, g.axis));
    const inner = sizeOfShape(x!.shape.slice(g.axis + 1, -1));
    const count = outer * g.outLen * inner;
    if (count === 0) return { calls: [] };
    const program: ProgramSpec = {
      key: `dft:${g.complex ? 'c' : 'r'}:${g.inverse ? 'inv' : 'fwd'}`,
      bindings: [{ name: 'x', type: x!.storage }, { name: 'y', type: y!.storage }],
      uniforms: [{ name: 'count', type: 'u32' }, { name: 'len', type: 'u32' }, { name: 'n', type: 'u32' }, { name: 'out_len', type: 'u32' }, { name: 'inner', type: 'u32' }],
      workgroupSize: [WG, 1, 1],
      source(b) {
        const src = '((a * u.len + t) * u.inner + i)';
        const re = b.loadAs('x', g.complex ? `${src} * 2u` : src, 'f32');
        const im = g.complex ? b.loadAs('x', `${src} * 2u + 1u`, 'f32') : '0.0';
        b.main(`${b.linearIndex('u.count')}
  let i = index % u.inner;
  let k = (index / u.inner) % u.out_len;
  let a = index / (u.inner * u.out_len);
  let n = u.n;
  let count = min(u.len, n);
  ${sumBody(b, re, im, g.inverse ? '1.0' : '-1.0')}
  let scale = ${g.inverse ? '1.0 / f32(n)' : '1.0'};
  ${storeOut(b, y!, '2u * index', 'sr * scale')}
  ${storeOut(b, y!, '2u * index + 1u', 'si * scale')}`);
      },
      run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, len: g.len, n: g.n, out_len: g.outLen, inner } }),
    };
    return { calls: [{ program, tensors: [{ input: 0 }, { output: 0 }] }] };
  },
};

const stft: GpuKernel = {
  hostInputs: [1, 3],
  plan(node, [x, stepIn, w, flIn], [y]) {
    if (!stepIn?.value || (flIn && !flIn.value)) throw new GpuUnsupported('STFT needs frame_step and frame_length to be constants');
    const g = stftGeometry(node, x!.shape, scalarValue(stepIn.value)!, flIn ? scalarValue(flIn.value) : undefined, w?.shape[0]);
    const count = g.batch * g.frames * g.bins;
    if (count === 0) return { calls: [] };
    const program: ProgramSpec = {
      key: `stft:${g.complex ? 'c' : 'r'}:${w ? 'w' : 'nw'}`,
      bindings: [{ name: 'x', type: x!.storage }, ...(w ? [{ name: 'window', type: w.storage }] : []), { name: 'y', type: y!.storage }],
      uniforms: [{ name: 'count', type: 'u32' }, { name: 'len', type: 'u32' }, { name: 'step', type: 'u32' }, { name: 'frame_length', type: 'u32' }, { name: 'frames', type: 'u32' }, { name: 'bins', type: 'u32' }],
      workgroupSize: [WG, 1, 1],
      source(b) {
        const src = '(bb * u.len + f * u.step + t)';
        const win = w ? ` * ${b.loadAs('window', 't', 'f32')}` : '';
        const re = `${b.loadAs('x', g.complex ? `${src} * 2u` : src, 'f32')}${win}`;
        const im = g.complex ? `${b.loadAs('x', `${src} * 2u + 1u`, 'f32')}${win}` : '0.0';
        b.main(`${b.linearIndex('u.count')}
  let k = index % u.bins;
  let f = (index / u.bins) % u.frames;
  let bb = index / (u.bins * u.frames);
  let n = u.frame_length;
  let count = n;
  ${sumBody(b, re, im, '-1.0')}
  ${storeOut(b, y!, '2u * index', 'sr')}
  ${storeOut(b, y!, '2u * index + 1u', 'si')}`);
      },
      run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, len: g.len, step: g.step, frame_length: g.frameLength, frames: g.frames, bins: g.bins } }),
    };
    return { calls: [{ program, tensors: [{ input: 0 }, ...(w ? [{ input: 2 }] : []), { output: 0 }] }] };
  },
};

const melWeightMatrix: GpuKernel = {
  hostInputs: [0, 1, 2, 3, 4],
  plan(_node, inputs, [y]) {
    const v = inputs.map((t) => {
      if (!t?.value) throw new GpuUnsupported('MelWeightMatrix needs constant inputs');
      return scalarValue(t.value)!;
    });
    const { rows, points } = melWeights(v[0]!, v[1]!, v[2]!, v[3]!, v[4]!);
    const mels = v[0]!;
    const count = rows * mels;
    const program: ProgramSpec = {
      key: 'mel-weight-matrix',
      bindings: [{ name: 'points', type: 'i32' }, { name: 'y', type: y!.storage }],
      uniforms: [{ name: 'count', type: 'u32' }, { name: 'mels', type: 'u32' }],
      workgroupSize: [WG, 1, 1],
      source(b) {
        // Filter i rises over [l, c] and falls over [c, r); the falling edge wins where both apply (as on the CPU).
        b.main(`${b.linearIndex('u.count')}
  let i = index % u.mels;
  let j = i32(index / u.mels);
  let l = points[i];
  let c = points[i + 1u];
  let r = points[i + 2u];
  var v = 0.0;
  if (c == l) { v = select(0.0, 1.0, j == c); } else if (j >= l && j <= c) { v = f32(j - l) / f32(c - l); }
  if (r > c && j >= c && j < r) { v = f32(r - j) / f32(r - c); }
  ${storeOut(b, y!, 'index', 'v')}`);
      },
      run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, mels } }),
    };
    return { constants: [tensorFromNumbers('int32', [points.length], Array.from(points))], calls: [{ program, tensors: [{ constant: 0 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = {
  HannWindow: windowKernel('HannWindow'), HammingWindow: windowKernel('HammingWindow'), BlackmanWindow: windowKernel('BlackmanWindow'),
  DFT: dft, STFT: stft, MelWeightMatrix: melWeightMatrix,
};
