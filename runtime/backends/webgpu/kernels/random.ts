import { attrFloat, type Node } from '../../../ir/graph.js';
import { distribution, freshKeys, sampleSize, seedKeys } from '../../../ir/ops/random.js';
import type { HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramCall, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf, gpuSupportsDType } from '../storage.js';
import type { BindingDecl, ShaderBuilder } from '../wgsl/builder.js';

/**
 * The random generators on WebGPU, drawing the same bits as the CPU reference (the generator: ir/ops/random.ts):
 * RandomUniform/RandomNormal(-Like), Bernoulli and Multinomial, one invocation per output element. Keys are
 * uniforms. With `seed` they are the seed's and every run draws the same values; without it the keys are drawn when
 * the plan is made and a run counter (a one-word table of the plan, kept on the GPU) is hashed into the second key,
 * so every run draws fresh values: a last one-invocation dispatch advances the counter for the next run.
 */

const WG = 64;
const KEYS = [{ name: 'k0', type: 'u32' as const }, { name: 'k1', type: 'u32' as const }];

/** WGSL twin of ir/ops/random.ts's mix32, shared by every GPU generator (random ops, the text sampler, diffusion noise). */
export const MIX32_WGSL = `// lowbias32 (Wellons): xorshift-multiply, two rounds.
fn mix32(v: u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  return x ^ (x >> 16u);
}`;

/** WGSL twins of mix32 / draw and the uniform/normal maps (ir/ops/random.ts). */
function declareGenerator(b: ShaderBuilder): void {
  b.helper(MIX32_WGSL);
  b.helper(`// Draw j of element i under keys (k0, k1).
fn draw(i: u32, j: u32, k0: u32, k1: u32) -> u32 {
  return mix32(mix32(i ^ k0) ^ k1 ^ (j * 0x68e31da4u));
}`);
  b.helper(`// Uniform in [0, 1): the top 24 bits of draw 0, times 2^-24.
fn uniform_at(i: u32, k0: u32, k1: u32) -> f32 {
  return f32(draw(i, 0u, k0, k1) >> 8u) * 5.9604644775390625e-8;
}`);
  // cos(2 pi u2) as -cos(2 pi u2 - pi): WGSL bounds cos's error (2^-11 absolute) on [-pi, pi] only.
  b.helper(`// Standard normal (Box-Muller): u1 in (0, 1] from draw 0, u2 in [0, 1) from draw 1.
fn normal_at(i: u32, k0: u32, k1: u32) -> f32 {
  let u1 = (f32(draw(i, 0u, k0, k1) >> 8u) + 1.0) * 5.9604644775390625e-8;
  let u2 = f32(draw(i, 1u, k0, k1) >> 8u) * 5.9604644775390625e-8;
  return -sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2 - 3.141592653589793);
}`);
}

/** The keys statement: the uniforms, the second hashed with the run counter when the node has no seed. */
const keysLine = (fresh: boolean) => `let k0 = u.k0;
  let k1 = ${fresh ? 'mix32(u.k1 ^ u32(run_count[0]))' : 'u.k1'};`;

interface Stream {
  fresh: boolean;
  keys: [number, number];
}

function streamOf(node: Node): Stream {
  const seed = attrFloat(node, 'seed');
  return seed === undefined ? { fresh: true, keys: freshKeys() } : { fresh: false, keys: seedKeys(seed) };
}

/** A generating program: bindings (+ run_count when fresh), keys and `extra` uniforms, and its body. */
function program(
  key: string, s: Stream, bindings: BindingDecl[], size: number, extra: { name: string; type: 'u32' | 'f32' }[],
  values: Record<string, number>, body: (b: ShaderBuilder) => string,
): ProgramSpec {
  return {
    key: `random:${key}:${s.fresh ? 'fresh' : 'seeded'}`,
    bindings: s.fresh ? [...bindings, { name: 'run_count', type: 'i32' }] : bindings,
    uniforms: [{ name: 'size', type: 'u32' }, ...KEYS, ...extra],
    workgroupSize: [WG, 1, 1],
    source(b) {
      declareGenerator(b);
      b.main(`${b.linearIndex('u.size')}
  ${keysLine(s.fresh)}
  ${body(b)}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, k0: s.keys[0], k1: s.keys[1], ...values } }),
  };
}

/** run_count[0] += 1, after the draws of this run (a uniform step, so the layout keeps its uniform binding). */
const advance: ProgramSpec = {
  key: 'random:advance',
  bindings: [{ name: 'run_count', type: 'i32' }],
  uniforms: [{ name: 'step', type: 'i32' }],
  workgroupSize: [1, 1, 1],
  source(b) {
    b.main('run_count[0] = run_count[0] + u.step;');
  },
  run: () => ({ workgroups: [1, 1, 1], uniforms: { step: 1 } }),
};

/** The plan of one generating call: with the counter table and the advance dispatch when fresh. */
function planOf(s: Stream, p: ProgramSpec, tensors: TensorSlot[]): KernelPlan {
  if (!s.fresh) return { calls: [{ program: p, tensors }] };
  const counter: HostTensor = { dtype: 'int32', shape: [1], data: new Int32Array(1) };
  const calls: ProgramCall[] = [{ program: p, tensors: [...tensors, { constant: 0 }] }, { program: advance, tensors: [{ constant: 0 }] }];
  return { calls, constants: [counter] };
}

function checkOut(node: Node, y: GpuTensorInfo): void {
  if (!gpuSupportsDType(y.dtype)) throw new GpuUnsupported(`${node.op} producing ${y.dtype} has no WebGPU kernel (WGSL has no such type)`);
}

/** RandomUniform(-Like): a + (b - a) u; RandomNormal(-Like): a + b z (computed in f32). */
const generate: GpuKernel = {
  plan(node, _inputs, [y]) {
    checkOut(node, y!);
    const size = sizeOfShape(y!.shape);
    if (size === 0) return { calls: [] };
    const s = streamOf(node);
    const { normal, a, b } = distribution(node);
    const T = computeTypeOf(y!.storage);
    const value = normal ? 'u.a + u.b * normal_at(index, k0, k1)' : 'u.a + (u.b - u.a) * uniform_at(index, k0, k1)';
    const p = program(normal ? 'normal' : 'uniform', s, [{ name: 'y', type: y!.storage }], size, [{ name: 'a', type: 'f32' }, { name: 'b', type: 'f32' }], { a, b },
      (bd) => bd.store('y', 'index', T === 'f32' ? value : `${T}(${value})`));
    return planOf(s, p, [{ output: 0 }]);
  },
};

/** Bernoulli: y = u < p ? 1 : 0 in y's type. */
const bernoulli: GpuKernel = {
  plan(node, [x], [y]) {
    checkOut(node, y!);
    if (!gpuSupportsDType(x!.dtype)) throw new GpuUnsupported(`Bernoulli of ${x!.dtype} probabilities has no WebGPU kernel`);
    const size = sizeOfShape(y!.shape);
    if (size === 0) return { calls: [] };
    const s = streamOf(node);
    const T = computeTypeOf(y!.storage);
    const p = program('bernoulli', s, [{ name: 'x', type: x!.storage }, { name: 'y', type: y!.storage }], size, [], {},
      (b) => `let hit = uniform_at(index, k0, k1) < ${b.loadAs('x', 'index', 'f32')};
  ${b.store('y', 'index', `select(${T}(0), ${T}(1), hit)`)}`);
    return planOf(s, p, [{ input: 0 }, { output: 0 }]);
  },
};

/** Multinomial: per (row, sample), the first class whose cumulative exp(x - max) exceeds u * sum (f32). */
const multinomial: GpuKernel = {
  plan(node, [x], [y]) {
    if (!gpuSupportsDType(x!.dtype)) throw new GpuUnsupported(`Multinomial of ${x!.dtype} has no WebGPU kernel`);
    const [, classes] = x!.shape as [number, number];
    const samples = sampleSize(node);
    const size = sizeOfShape(y!.shape);
    if (size === 0) return { calls: [] };
    if (classes === 0) throw new GpuUnsupported('Multinomial over zero classes has no sample to draw');
    const s = streamOf(node);
    const ld = (b: ShaderBuilder, i: string) => b.loadAs('x', i, 'f32');
    const p = program('multinomial', s, [{ name: 'x', type: x!.storage }, { name: 'y', type: y!.storage }], size,
      [{ name: 'classes', type: 'u32' }, { name: 'samples', type: 'u32' }], { classes, samples },
      (b) => `let row = (index / u.samples) * u.classes;
  var m = ${ld(b, 'row')};
  for (var k = 1u; k < u.classes; k = k + 1u) { m = max(m, ${ld(b, 'row + k')}); }
  var total = 0.0;
  for (var k = 0u; k < u.classes; k = k + 1u) { total = total + exp(${ld(b, 'row + k')} - m); }
  let goal = uniform_at(index, k0, k1) * total;
  var k = 0u;
  var acc = exp(${ld(b, 'row')} - m);
  while (k + 1u < u.classes && acc <= goal) {
    k = k + 1u;
    acc = acc + exp(${ld(b, 'row + k')} - m);
  }
  ${b.store('y', 'index', `${computeTypeOf(y!.storage)}(k)`)}`);
    return planOf(s, p, [{ input: 0 }, { output: 0 }]);
  },
};

export const kernels: Record<string, GpuKernel> = {
  RandomUniform: generate, RandomNormal: generate, RandomUniformLike: generate, RandomNormalLike: generate,
  Bernoulli: bernoulli, Multinomial: multinomial,
};
