import { optimizerParams, parameterCount, schemas, type OptimizerParams } from '../../../ir/ops/optimizers.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec } from '../program.js';
import type { BindingDecl, ShaderBuilder } from '../wgsl/builder.js';

/**
 * ai.onnx.preview.training Adagrad, Momentum and Adam on WebGPU (formulas: cpu/kernels/optimizers.ts), float32.
 * Elementwise per updated tensor: R and T stay on the GPU (read as element 0 of their buffers, so a training loop
 * can feed them without a new plan); the attributes are uniforms. Adam runs as two dispatches, moments first
 * (x, g, v, h -> v', h') and then the step (R, T, x, v', h' -> x'), so no dispatch needs more than 6 storage
 * buffers (WebGPU guarantees 8 per stage); Adagrad and Momentum need 7 in one.
 */

const WG = 64;

const UNIFORMS = [
  { name: 'size', type: 'u32' as const }, { name: 'norm', type: 'f32' as const }, { name: 'decay', type: 'f32' as const },
  { name: 'epsilon', type: 'f32' as const }, { name: 'alpha', type: 'f32' as const }, { name: 'beta', type: 'f32' as const },
  { name: 'post', type: 'f32' as const },
];

function uniformValues(p: OptimizerParams, size: number) {
  return {
    size, norm: p.normCoefficient, decay: p.decayFactor, epsilon: p.epsilon, alpha: p.alpha, beta: p.beta, post: p.normCoefficientPost,
  };
}

/** Body computing `x` and `g` (the regularized gradient) at `index`. */
function loadXG(b: ShaderBuilder): string {
  return `${b.linearIndex('u.size')}
  let x = ${b.load('x_in', 'index')};
  let g = u.norm * x + ${b.load('grad', 'index')};`;
}

/** The learning rate and update count: element 0 of the R and T inputs. */
function loadRT(b: ShaderBuilder): string {
  return `let r = ${b.load('learning_rate', '0u')};
  let t = ${b.load('update_count', '0u')};`;
}

function program(key: string, bindings: string[], size: number, p: OptimizerParams, body: (b: ShaderBuilder) => string): ProgramSpec {
  const types: Record<string, BindingDecl['type']> = { update_count: 'i32' };
  return {
    key: `preview-training:${key}`,
    bindings: bindings.map((name) => ({ name, type: types[name] ?? 'f32' })),
    uniforms: UNIFORMS,
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(body(b));
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: uniformValues(p, size) }),
  };
}

/** The calls updating parameter i of n: slots are node inputs (R, T, X_i, G_i, states) and outputs. */
function callsFor(p: OptimizerParams, n: number, i: number, size: number): ProgramCall[] {
  const X = { input: 2 + i };
  const G = { input: 2 + n + i };
  const state = (s: number) => ({ input: 2 + (2 + s) * n + i });
  const out = (j: number) => ({ output: j * n + i });
  const R = { input: 0 };
  const T = { input: 1 };
  if (p.kind === 'Adagrad') {
    // r' = R / (1 + T decay); h' = h + g^2; x' = x - r' g / (sqrt(h') + epsilon)
    const prog = program('adagrad', ['learning_rate', 'update_count', 'x_in', 'grad', 'h', 'x_new', 'h_new'], size, p, (b) => `${loadXG(b)}
  ${loadRT(b)}
  let h = ${b.load('h', 'index')} + g * g;
  let rate = r / (1.0 + f32(t) * u.decay);
  ${b.store('x_new', 'index', 'x - rate * g / (sqrt(h) + u.epsilon)')}
  ${b.store('h_new', 'index', 'h')}`);
    return [{ program: prog, tensors: [R, T, X, G, state(0), out(0), out(1)] }];
  }
  if (p.kind === 'Momentum') {
    // v' = alpha v + (T > 0 ? beta : 1) g; x' = x - R v' (standard) or x - R (g + alpha v') (nesterov)
    const step = p.nesterov ? 'x - r * (g + u.alpha * v)' : 'x - r * v';
    const prog = program(p.nesterov ? 'momentum-nesterov' : 'momentum', ['learning_rate', 'update_count', 'x_in', 'grad', 'v', 'x_new', 'v_new'], size, p, (b) => `${loadXG(b)}
  ${loadRT(b)}
  let v = u.alpha * ${b.load('v', 'index')} + select(1.0, u.beta, t > 0) * g;
  ${b.store('x_new', 'index', step)}
  ${b.store('v_new', 'index', 'v')}`);
    return [{ program: prog, tensors: [R, T, X, G, state(0), out(0), out(1)] }];
  }
  // Adam. Moments: v' = alpha v + (1 - alpha) g; h' = beta h + (1 - beta) g^2.
  const moments = program('adam-moments', ['x_in', 'grad', 'v', 'h', 'v_new', 'h_new'], size, p, (b) => `${loadXG(b)}
  ${b.store('v_new', 'index', `u.alpha * ${b.load('v', 'index')} + (1.0 - u.alpha) * g`)}
  ${b.store('h_new', 'index', `u.beta * ${b.load('h', 'index')} + (1.0 - u.beta) * g * g`)}`);
  // Step: r' = T > 0 ? R sqrt(1 - beta^T) / (1 - alpha^T) : R; x' = (1 - post) (x - r' v' / (sqrt(h') + epsilon)).
  const stepProg = program('adam-step', ['learning_rate', 'update_count', 'x_in', 'v', 'h', 'x_new'], size, p, (b) => `${b.linearIndex('u.size')}
  ${loadRT(b)}
  let tf = f32(t);
  let rate = select(r, r * sqrt(1.0 - pow(u.beta, tf)) / (1.0 - pow(u.alpha, tf)), t > 0);
  let x = ${b.load('x_in', 'index')};
  ${b.store('x_new', 'index', `(1.0 - u.post) * (x - rate * ${b.load('v', 'index')} / (sqrt(${b.load('h', 'index')}) + u.epsilon))`)}`);
  return [
    { program: moments, tensors: [X, G, state(0), state(1), out(1), out(2)] },
    { program: stepProg, tensors: [R, T, X, out(1), out(2), out(0)] },
  ];
}

const optimizer: GpuKernel = {
  plan(node, inputs) {
    const p = optimizerParams(node);
    const n = parameterCount(node);
    for (const t of inputs) {
      if (t && t.dtype !== 'float32' && t.dtype !== 'int64') throw new GpuUnsupported(`${node.op} on ${t.dtype} has no WebGPU kernel (float32 only: WGSL has no float64)`);
    }
    const calls: ProgramCall[] = [];
    for (let i = 0; i < n; i++) {
      const size = sizeOfShape((inputs[2 + i] as GpuTensorInfo).shape);
      if (size > 0) calls.push(...callsFor(p, n, i, size));
    }
    return { calls };
  },
};

export const kernels: Record<string, GpuKernel> = Object.fromEntries(Object.keys(schemas).map((op) => [op, optimizer]));
