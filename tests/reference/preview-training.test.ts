import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import { P } from '../../importers/onnx/proto.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelCpu } from '../helpers/run-model.js';

/**
 * ai.onnx.preview.training Adagrad, Momentum and Adam on the CPU reference, through the public session path. No
 * ONNX runtime implements these (onnxruntime's are training-build kernels), so the expected values come from the
 * update rules as the ONNX operator pages write them, computed here element by element in float64.
 */

const DOMAIN = 'ai.onnx.preview.training';
const rng = new Rng(2024);
const scalar = (dtype: DType, v: number) => tensorFromNumbers(dtype, [], [v]);
const nums = (t: HostTensor) => Array.from(t.data as ArrayLike<number>, Number);

interface Case {
  op: 'Adagrad' | 'Momentum' | 'Adam';
  attrs: Record<string, Attr>;
  /** per parameter: x, g and state tensors */
  params: { x: HostTensor; g: HostTensor; states: HostTensor[] }[];
  r: number;
  t: number;
  dtype?: DType;
}

async function run(c: Case): Promise<Record<string, HostTensor>> {
  const k = c.params[0]!.states.length;
  const inputs: Record<string, HostTensor> = { R: scalar(c.dtype ?? 'float32', c.r), T: scalar('int64', c.t) };
  const names = (p: string) => c.params.map((_, i) => `${p}${i}`);
  c.params.forEach((p, i) => {
    inputs[`X${i}`] = p.x;
    inputs[`G${i}`] = p.g;
    p.states.forEach((s, j) => (inputs[`S${j}_${i}`] = s));
  });
  const stateNames = Array.from({ length: k }, (_, j) => names(`S${j}_`));
  const outputs = [...names('X_new'), ...stateNames.flatMap((s) => s.map((v) => `${v}new`))];
  const bytes = encodeModel({
    nodes: [{ op: c.op, domain: DOMAIN, inputs: ['R', 'T', ...names('X'), ...names('G'), ...stateNames.flat()], outputs, attrs: c.attrs }],
    inputs,
    outputs,
    opsets: { '': 21, [DOMAIN]: 1 },
  });
  return runModelCpu(bytes, inputs);
}

/** The spec's update of one element, float64. Returns [x', state'...]. */
function expected(c: Case, x: number, g0: number, s: number[]): number[] {
  const a = (name: string, d: number) => (c.attrs[name] ? Number((c.attrs[name] as { value: number }).value) : d);
  const g = a('norm_coefficient', 0) * x + g0;
  if (c.op === 'Adagrad') {
    const r = c.r / (1 + c.t * a('decay_factor', 0));
    const h = s[0]! + g * g;
    return [x - (r * g) / (Math.sqrt(h) + a('epsilon', 1e-6)), h];
  }
  if (c.op === 'Momentum') {
    const v = a('alpha', NaN) * s[0]! + (c.t > 0 ? a('beta', NaN) : 1) * g;
    const nesterov = (c.attrs.mode as { value: string }).value === 'nesterov';
    return [nesterov ? x - c.r * (g + a('alpha', NaN) * v) : x - c.r * v, v];
  }
  const [alpha, beta] = [a('alpha', 0.9), a('beta', 0.999)];
  const v = alpha * s[0]! + (1 - alpha) * g;
  const h = beta * s[1]! + (1 - beta) * g * g;
  const r = c.t > 0 ? (c.r * Math.sqrt(1 - beta ** c.t)) / (1 - alpha ** c.t) : c.r;
  return [(1 - a('norm_coefficient_post', 0)) * (x - (r * v) / (Math.sqrt(h) + a('epsilon', 1e-6))), v, h];
}

async function check(c: Case, rtol = 1e-5) {
  const out = await run(c);
  c.params.forEach((p, i) => {
    const xs = nums(p.x);
    const gs = nums(p.g);
    const ss = p.states.map(nums);
    const names = [`X_new${i}`, ...p.states.map((_, j) => `S${j}_${i}new`)];
    names.forEach((name, j) => {
      const got = out[name]!;
      expect(got.dtype).toBe(p.x.dtype);
      expect(got.shape).toEqual(p.x.shape);
      const g = nums(got);
      xs.forEach((x, e) => {
        const want = expected(c, x, gs[e]!, ss.map((s) => s[e]!))[j]!;
        expect(Math.abs(g[e]! - want), `${c.op} ${name}[${e}] = ${g[e]} vs ${want}`).toBeLessThanOrEqual(1e-6 + rtol * Math.abs(want));
      });
    });
  });
}

function params(shapes: number[][], states: number, dtype: DType = 'float32') {
  return shapes.map((s) => ({
    x: randomTensor(rng, dtype, s, { lo: -2, hi: 2 }),
    g: randomTensor(rng, dtype, s, { lo: -1, hi: 1 }),
    states: Array.from({ length: states }, () => randomTensor(rng, dtype, s, { lo: 0.01, hi: 2 })),
  }));
}

describe('ai.onnx.preview.training optimizers (CPU reference)', () => {
  it('Adagrad: several tensors, decay over T, epsilon default', async () => {
    for (const t of [0, 1, 7]) {
      await check({ op: 'Adagrad', attrs: { decay_factor: attr(0.3, true), norm_coefficient: attr(0.01, true) }, params: params([[3, 4], [5], []], 1), r: 0.05, t });
    }
    await check({ op: 'Adagrad', attrs: {}, params: params([[2, 3]], 1), r: 0.1, t: 2 });
  });

  it('Momentum: standard and nesterov, beta only from T > 0', async () => {
    for (const mode of ['standard', 'nesterov']) {
      for (const t of [0, 3]) {
        const attrs = { alpha: attr(0.9, true), beta: attr(0.25, true), norm_coefficient: attr(0.02, true), mode: attr(mode) };
        await check({ op: 'Momentum', attrs, params: params([[4, 2, 3], [1]], 1), r: 0.1, t });
      }
    }
  });

  it('Momentum without its required attributes is refused', async () => {
    await expect(check({ op: 'Momentum', attrs: { mode: attr('standard') }, params: params([[2]], 1), r: 0.1, t: 1 })).rejects.toThrow(/Momentum needs the '(alpha|beta|norm_coefficient)' attribute/);
  });

  it('Adam: bias correction from T > 0, post-update decay, float64', async () => {
    for (const t of [0, 1, 10]) {
      await check({ op: 'Adam', attrs: { alpha: attr(0.8, true), beta: attr(0.95, true), epsilon: attr(1e-3, true), norm_coefficient: attr(0.01, true), norm_coefficient_post: attr(0.05, true) }, params: params([[7], [2, 5]], 2), r: 0.01, t });
    }
    await check({ op: 'Adam', attrs: {}, params: params([[3, 3]], 2, 'float64'), r: 0.001, t: 4, dtype: 'float64' }, 1e-12);
  });

  it('rejects mismatched state shapes and input counts', async () => {
    const p = params([[3]], 2);
    p[0]!.states[1] = randomTensor(rng, 'float32', [4]);
    await expect(check({ op: 'Adam', attrs: {}, params: p, r: 0.1, t: 1 })).rejects.toThrow(/shape \[4\] but X_1 has \[3\]/);
    const bytes = encodeModel({
      nodes: [{ op: 'Adagrad', domain: DOMAIN, inputs: ['R', 'T', 'X', 'G'], outputs: ['Y'] }],
      inputs: { R: scalar('float32', 1), T: scalar('int64', 0), X: tensorFromNumbers('float32', [1], [1]), G: tensorFromNumbers('float32', [1], [1]) },
      outputs: ['Y'],
      opsets: { '': 21, [DOMAIN]: 1 },
    });
    await expect(runModelCpu(bytes, {})).rejects.toThrow(/takes|groups of n tensors/);
  });

  it('exports back to its domain: the file names ai.onnx.preview.training::Adam and runs the same', async () => {
    const p = params([[2, 3]], 2);
    const feeds: Record<string, HostTensor> = { R: scalar('float32', 0.1), T: scalar('int64', 3), X: p[0]!.x, G: p[0]!.g, V: p[0]!.states[0]!, H: p[0]!.states[1]! };
    const bytes = encodeModel({
      nodes: [{ op: 'Adam', domain: DOMAIN, inputs: ['R', 'T', 'X', 'G', 'V', 'H'], outputs: ['X2', 'V2', 'H2'], attrs: { alpha: attr(0.8, true), norm_coefficient_post: attr(0.01, true) } }],
      inputs: feeds, outputs: ['X2', 'V2', 'H2'], opsets: { '': 21, [DOMAIN]: 1 },
    });
    const { graph } = await importOnnx(bytes);
    expect(graph.nodes.map((n) => [n.domain, n.op])).toEqual([['', 'ai.onnx.preview.training.Adam']]);
    for (const opset of [21, 13]) {
      const again = exportOnnx(graph, { opset });
      const m = P.ModelProto.decode(again);
      expect(m.graph!.node!.map((n) => [n.domain, n.opType])).toEqual([[DOMAIN, 'Adam']]);
      expect(m.opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([['', opset], [DOMAIN, 1]]);
      expect(await runModelCpu(again, feeds)).toEqual(await runModelCpu(bytes, feeds));
    }
  });

  it('Gradient (the other op of the domain) is reported unsupported, naming the domain', async () => {
    const bytes = encodeModel({
      nodes: [{ op: 'Gradient', domain: DOMAIN, inputs: ['X'], outputs: ['dX'] }],
      inputs: { X: tensorFromNumbers('float32', [1], [1]) },
      outputs: ['dX'],
      opsets: { '': 21, [DOMAIN]: 1 },
    });
    await expect(runModelCpu(bytes, {})).rejects.toMatchObject({ code: 'UNSUPPORTED_OP', nodes: [{ op: 'Gradient', domain: DOMAIN, opset: 1 }] });
  });
});
