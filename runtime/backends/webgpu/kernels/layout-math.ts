import { lrnAttrs, mvnAxes, reverseAxes, unpoolFrame } from '../../../ir/ops/layout-math.js';
import { dispatchLinear, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';

/**
 * WebGPU kernels for MeanVarianceNormalization-13, LRN-13, ReverseSequence-10, Det-11 and MaxUnpool-11, all
 * computing in f32 (float16 values are widened on load and rounded on store).
 * - MVN: a stats pass (one invocation per group of the kept axes: E[x], E[x^2] into a scratch [groups, 2]) and an
 *   elementwise pass (the ONNX function's (x - mean) / (sqrt(E[x^2] - mean^2) + 1e-9)).
 * - LRN, ReverseSequence: one invocation per output element.
 * - Det: one invocation per matrix runs Gaussian elimination with partial pivoting on its own copy in a scratch
 *   tensor (private arrays need a size known when the shader compiles).
 * - MaxUnpool: a zero fill, then one invocation per input element writes it where its index points (re-addressed
 *   from the default unpooled shape to output_shape). An index outside the output is skipped.
 */

const WG = 64;

function mvnStatsProgram(x: GpuTensorInfo, keptShape: number[], keptStrides: number[], redShape: number[], redStrides: number[]): ProgramSpec {
  const [kr, rr] = [keptShape.length, redShape.length];
  const groups = sizeOfShape(keptShape);
  const n = sizeOfShape(redShape);
  return {
    key: `mvn-stats:k${kr}:r${rr}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'stats', type: 'f32' }],
    uniforms: [
      { name: 'groups', type: 'u32' }, { name: 'n', type: 'u32' },
      { name: 'kept_shape', type: 'u32', length: kr }, { name: 'kept_strides', type: 'u32', length: kr },
      { name: 'red_shape', type: 'u32', length: rr }, { name: 'red_strides', type: 'u32', length: rr },
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const decode = (shape: string, strides: string, rank: number, v: string, out: string) => {
        const lines = [`var ${out} = 0u;`, `var ${v}_rest = ${v};`];
        for (let d = rank - 1; d >= 0; d--) lines.push(`${out} = ${out} + (${v}_rest % u.${shape}_${d}) * u.${strides}_${d};`, `${v}_rest = ${v}_rest / u.${shape}_${d};`);
        return lines.join('\n  ');
      };
      b.main(`${b.linearIndex('u.groups')}
  ${decode('kept_shape', 'kept_strides', kr, 'index', 'base')}
  var s = 0.0;
  var sq = 0.0;
  for (var r = 0u; r < u.n; r = r + 1u) {
  ${decode('red_shape', 'red_strides', rr, 'r', 'off')}
  let v = ${b.loadAs('x', 'base + off', 'f32')};
  s = s + v;
  sq = sq + v * v;
  }
  stats[2u * index] = s / f32(u.n);
  stats[2u * index + 1u] = sq / f32(u.n);`);
    },
    run: () => ({ workgroups: dispatchLinear(groups, WG), uniforms: { groups, n, kept_shape: keptShape, kept_strides: keptStrides, red_shape: redShape, red_strides: redStrides } }),
  };
}

function mvnApplyProgram(x: GpuTensorInfo, y: GpuTensorInfo, groupStrides: number[]): ProgramSpec {
  const rank = x.shape.length;
  const size = sizeOfShape(x.shape);
  const T = computeTypeOf(y.storage);
  return {
    key: `mvn-apply:r${rank}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'stats', type: 'f32' }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'shape', type: 'u32', length: rank }, { name: 'group_strides', type: 'u32', length: rank }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  let c = ${b.coordsFn('x_coords', 'shape', rank)}(index);
  let g = ${b.offset('c', 'group_strides', rank)};
  let mean = stats[2u * g];
  let sd = sqrt(max(stats[2u * g + 1u] - mean * mean, 0.0));
  ${b.store('y', 'index', `${T}((${b.loadAs('x', 'index', 'f32')} - mean) / (sd + 1e-9))`)}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, shape: x.shape, group_strides: groupStrides } }),
  };
}

const mvn: GpuKernel = {
  plan(node, [x], [y]) {
    const axes = new Set(mvnAxes(node, x!.shape.length));
    const st = stridesFor(x!.shape);
    const kept = x!.shape.map((_, a) => a).filter((a) => !axes.has(a));
    const red = x!.shape.map((_, a) => a).filter((a) => axes.has(a));
    const keptShape = kept.map((a) => x!.shape[a]!);
    const groups = sizeOfShape(keptShape);
    if (sizeOfShape(x!.shape) === 0) return { calls: [] };
    const gst = stridesFor(keptShape);
    const groupStrides = x!.shape.map((_, a) => (axes.has(a) ? 0 : gst[kept.indexOf(a)]!));
    const scratch: GpuTensorInfo = { dtype: 'float32', shape: [groups * 2], storage: 'f32' };
    return {
      scratch: [scratch],
      calls: [
        { program: mvnStatsProgram(x!, keptShape, kept.map((a) => st[a]!), red.map((a) => x!.shape[a]!), red.map((a) => st[a]!)), tensors: [{ input: 0 }, { scratch: 0 }] },
        { program: mvnApplyProgram(x!, y!, groupStrides), tensors: [{ input: 0 }, { scratch: 0 }, { output: 0 }] },
      ],
    };
  },
};

const lrn: GpuKernel = {
  plan(node, [x], [y]) {
    const { size, alpha, beta, bias } = lrnAttrs(node);
    const count = sizeOfShape(x!.shape);
    if (count === 0) return { calls: [] };
    const T = computeTypeOf(y!.storage);
    const program: ProgramSpec = {
      key: 'lrn',
      bindings: [{ name: 'x', type: x!.storage }, { name: 'y', type: y!.storage }],
      uniforms: [
        { name: 'count', type: 'u32' }, { name: 'c', type: 'u32' }, { name: 'inner', type: 'u32' }, { name: 'lo', type: 'u32' },
        { name: 'hi', type: 'u32' }, { name: 'scale', type: 'f32' }, { name: 'beta', type: 'f32' }, { name: 'bias', type: 'f32' },
      ],
      workgroupSize: [WG, 1, 1],
      source(b) {
        b.main(`${b.linearIndex('u.count')}
  let ch = (index / u.inner) % u.c;
  let base = index - ch * u.inner;
  var s = 0.0;
  for (var k = select(0u, ch - u.lo, ch >= u.lo); k <= min(u.c - 1u, ch + u.hi); k = k + 1u) {
    let v = ${b.loadAs('x', 'base + k * u.inner', 'f32')};
    s = s + v * v;
  }
  ${b.store('y', 'index', `${T}(${b.loadAs('x', 'index', 'f32')} / pow(u.bias + u.scale * s, u.beta))`)}`);
      },
      run: () => ({
        workgroups: dispatchLinear(count, WG),
        uniforms: { count, c: x!.shape[1]!, inner: sizeOfShape(x!.shape.slice(2)), lo: Math.floor((size - 1) / 2), hi: Math.ceil((size - 1) / 2), scale: alpha / size, beta, bias },
      }),
    };
    return { calls: [{ program, tensors: [{ input: 0 }, { output: 0 }] }] };
  },
};

const reverseSequence: GpuKernel = {
  plan(node, [x, lens], [y]) {
    const { time, batch } = reverseAxes(node);
    const count = sizeOfShape(x!.shape);
    if (count === 0) return { calls: [] };
    const st = stridesFor(x!.shape);
    const program: ProgramSpec = {
      key: 'reverse-sequence',
      bindings: [{ name: 'x', type: x!.storage }, { name: 'lens', type: lens!.storage }, { name: 'y', type: y!.storage }],
      uniforms: [{ name: 'count', type: 'u32' }, { name: 'steps', type: 'u32' }, { name: 'time_stride', type: 'u32' }, { name: 'batch', type: 'u32' }, { name: 'batch_stride', type: 'u32' }],
      workgroupSize: [WG, 1, 1],
      source(b) {
        // A length outside [0, steps] is clamped (the CPU reference rejects it).
        b.main(`${b.linearIndex('u.count')}
  let t = (index / u.time_stride) % u.steps;
  let bb = (index / u.batch_stride) % u.batch;
  let len = u32(clamp(i32(${b.load('lens', 'bb')}), 0, i32(u.steps)));
  let src_t = select(t, len - 1u - t, t < len);
  ${b.store('y', 'index', b.load('x', 'index + src_t * u.time_stride - t * u.time_stride'))}`);
      },
      run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, steps: x!.shape[time]!, time_stride: st[time]!, batch: x!.shape[batch]!, batch_stride: st[batch]! } }),
    };
    return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

const det: GpuKernel = {
  plan(_node, [x], [y]) {
    const m = x!.shape[x!.shape.length - 1]!;
    const count = sizeOfShape(y!.shape);
    if (count === 0) return { calls: [] };
    const T = computeTypeOf(y!.storage);
    const program: ProgramSpec = {
      key: 'det',
      bindings: [{ name: 'x', type: x!.storage }, { name: 'a', type: 'f32' }, { name: 'y', type: y!.storage }],
      uniforms: [{ name: 'count', type: 'u32' }, { name: 'm', type: 'u32' }],
      workgroupSize: [WG, 1, 1],
      source(b) {
        b.main(`${b.linearIndex('u.count')}
  let m = u.m;
  let base = index * m * m;
  for (var i = 0u; i < m * m; i = i + 1u) { a[base + i] = ${b.loadAs('x', 'base + i', 'f32')}; }
  var det = 1.0;
  for (var k = 0u; k < m; k = k + 1u) {
    var p = k;
    for (var r = k + 1u; r < m; r = r + 1u) {
      if (abs(a[base + r * m + k]) > abs(a[base + p * m + k])) { p = r; }
    }
    let piv = a[base + p * m + k];
    if (piv == 0.0) { det = 0.0; break; }
    if (p != k) {
      for (var j = 0u; j < m; j = j + 1u) {
        let t = a[base + k * m + j];
        a[base + k * m + j] = a[base + p * m + j];
        a[base + p * m + j] = t;
      }
      det = -det;
    }
    det = det * piv;
    for (var r = k + 1u; r < m; r = r + 1u) {
      let f = a[base + r * m + k] / piv;
      for (var j = k + 1u; j < m; j = j + 1u) { a[base + r * m + j] = a[base + r * m + j] - f * a[base + k * m + j]; }
    }
  }
  ${b.store('y', 'index', `${T}(det)`)}`);
      },
      run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, m } }),
    };
    return { scratch: [{ dtype: 'float32', shape: [Math.max(1, count * m * m)], storage: 'f32' }], calls: [{ program, tensors: [{ input: 0 }, { scratch: 0 }, { output: 0 }] }] };
  },
};

function zeroProgram(y: GpuTensorInfo): ProgramSpec {
  const count = sizeOfShape(y.shape);
  const T = computeTypeOf(y.storage);
  return {
    key: 'unpool-zero',
    bindings: [{ name: 'y', type: y.storage }],
    uniforms: [{ name: 'count', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.count')}
  ${b.store('y', 'index', `${T}(0)`)}`);
    },
    run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count } }),
  };
}

function unpoolProgram(x: GpuTensorInfo, idx: GpuTensorInfo, y: GpuTensorInfo, frame: number[]): ProgramSpec {
  const rank = frame.length;
  const count = sizeOfShape(x.shape);
  return {
    key: `max-unpool:r${rank}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'indices', type: idx.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'count', type: 'u32' }, { name: 'frame', type: 'u32', length: rank }, { name: 'out_shape', type: 'u32', length: rank }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const lines = [b.linearIndex('u.count'), `let k = i32(${b.load('indices', 'index')});`, 'if (k < 0) { return; }', 'var rest = u32(k);', 'var off = 0u;', 'var mul = 1u;'];
      for (let d = rank - 1; d >= 0; d--) {
        lines.push(`{ let c = rest % u.frame_${d}; rest = rest / u.frame_${d}; if (c >= u.out_shape_${d}) { return; } off = off + c * mul; mul = mul * u.out_shape_${d}; }`);
      }
      lines.push('if (rest != 0u) { return; }', b.store('y', 'off', b.load('x', 'index')));
      b.main(lines.join('\n  '));
    },
    run: () => ({ workgroups: dispatchLinear(count, WG), uniforms: { count, frame, out_shape: y.shape } }),
  };
}

const maxUnpool: GpuKernel = {
  hostInputs: [2],
  plan(node, [x, idx], [y]) {
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const calls: ProgramCall[] = [{ program: zeroProgram(y!), tensors: [{ output: 0 }] }];
    if (sizeOfShape(x!.shape) > 0) calls.push({ program: unpoolProgram(x!, idx!, y!, unpoolFrame(node, x!.shape)), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] });
    return { calls };
  },
};

export const kernels: Record<string, GpuKernel> = {
  MeanVarianceNormalization: mvn, LRN: lrn, ReverseSequence: reverseSequence, Det: det, MaxUnpool: maxUnpool,
};
