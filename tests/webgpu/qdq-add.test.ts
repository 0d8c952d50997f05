import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Graph, Node } from '../../runtime/ir/graph.js';
import { QUANT_RANGE, roundHalfEven } from '../../runtime/ir/ops/quantize.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';
import { importOnnx } from '../../importers/onnx/import.js';
import { GpuGraphPlan } from '../../runtime/backends/webgpu/executor.js';
import { fuseQdqAdd } from '../../runtime/backends/webgpu/fuse-qdq-add.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { int, ints, model, vi, type NodeSpec } from '../importer/model-builder.js';
import { tensorProto } from '../helpers/ort-single-node.js';
import { Rng } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * The fused int8 residual Add on WebGPU (issue #11; runtime/backends/webgpu/fuse-qdq-add.ts, kernels/qdq-add.ts):
 * DequantizeLinear(a_q), DequantizeLinear(b_q) -> Add (-> Relu) -> QuantizeLinear becomes one QdqAdd node, whose
 * codes must equal the unfused WebGPU chain's and the CPU backend's exactly (both compute f32 products and sum and
 * a correctly rounded division; `reference` below does the same in JS), and onnxruntime's within one step (it runs
 * its own QLinearAdd). The packed layout "c4" is checked on QdqAdd nodes built here for every mix of packed and
 * unpacked a, b and y, against the same reference and the padding rule (bytes past C hold the zero point).
 */

const ELEM: Record<string, number> = { float32: 1, uint8: 2, int8: 3 };
type Q = 'uint8' | 'int8';

interface Params {
  sa: number; za: number; sb: number; zb: number; sy: number; zy: number;
  relu?: boolean;
}

/** The chain as the CPU backend and the WebGPU kernels compute it: f32 products, f32 sum, f32 quotient, half-even. */
function reference(a: number[], b: number[], p: Params, yType: Q): number[] {
  const f = Math.fround;
  const [lo, hi] = QUANT_RANGE[yType]!;
  return a.map((qa, i) => {
    const s = f(f((qa - p.za) * f(p.sa)) + f((b[i]! - p.zb) * f(p.sb)));
    const r = p.relu ? Math.max(s, 0) : s;
    return Math.min(hi, Math.max(lo, roundHalfEven(f(r / f(p.sy))) + p.zy));
  });
}

const size = (s: number[]) => s.reduce((x, y) => x * y, 1);

/**
 * Codes for an operand: random over the whole range, with the extremes and the zero point at the first places so
 * sums saturate both ways.
 */
function codes(rng: Rng, t: Q, n: number, zp: number): number[] {
  const [lo, hi] = QUANT_RANGE[t]!;
  const edge = [lo, hi, zp, lo + 1, hi - 1];
  return Array.from({ length: n }, (_, i) => (i < edge.length ? edge[i]! : rng.int(lo, hi)));
}

/** DQ(a), DQ(b) -> Add (-> Relu) -> Q as ONNX bytes: inputs a, b, output y. */
function chainModel(shape: number[], types: { a: Q; b: Q; y: Q }, p: Params): Uint8Array {
  const nodes: NodeSpec[] = [
    { op: 'DequantizeLinear', inputs: ['a', 'sa', 'za'], outputs: ['af'], name: 'dq_a' },
    { op: 'DequantizeLinear', inputs: ['b', 'sb', 'zb'], outputs: ['bf'], name: 'dq_b' },
    { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'], name: 'add' },
    ...(p.relu ? [{ op: 'Relu', inputs: ['s'], outputs: ['r'], name: 'relu' }] : []),
    { op: 'QuantizeLinear', inputs: [p.relu ? 'r' : 's', 'sy', 'zy'], outputs: ['y'], name: 'q' },
  ];
  const scalar = (name: string, t: DType, v: number) => tensorProto(name, tensorFromNumbers(t, [], [v]));
  return model({
    opset: 13,
    nodes,
    inputs: [vi('a', ELEM[types.a], shape), vi('b', ELEM[types.b], shape)],
    outputs: [vi('y', ELEM[types.y], shape)],
    initializers: [scalar('sa', 'float32', p.sa), scalar('za', types.a, p.za), scalar('sb', 'float32', p.sb), scalar('zb', types.b, p.zb),
      scalar('sy', 'float32', p.sy), scalar('zy', types.y, p.zy)],
  });
}

let res: Awaited<ReturnType<typeof gpuForTests>>;
const sessions: InferenceSession[] = [];

beforeAll(async () => {
  res = await gpuForTests();
  console.log(`QdqAdd WebGPU suite on ${describeDevice(res)}`);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function planOf(g: Graph, fuse: boolean, feeds: Record<string, HostTensor>): Promise<{ y: HostTensor; ops: string[]; kernels: string[] }> {
  const plan = await GpuGraphPlan.create(res, g, { fuse });
  try {
    const r = plan.report();
    return { y: (await plan.run(feeds)).y!, ops: r.nodes.map((n) => n.op), kernels: r.nodes.flatMap((n) => n.kernels) };
  } finally {
    plan.dispose();
  }
}

async function imported(bytes: Uint8Array, shapes: Record<string, number[]>): Promise<Graph> {
  const { graph } = await importOnnx(bytes);
  return specialize(optimize(graph).graph, shapes);
}

interface ChainCase {
  title: string;
  shape: number[];
  types: { a: Q; b: Q; y: Q };
  p: Params;
}

const CHAINS: ChainCase[] = [
  // Power-of-two scales: every sum is a multiple of 0.25 and y_scale 0.5, so half the quotients are exact ties.
  { title: 'uint8, ties to even everywhere, saturating both ways', shape: [2, 6, 3, 5], types: { a: 'uint8', b: 'uint8', y: 'uint8' }, p: { sa: 0.5, za: 128, sb: 0.25, zb: 100, sy: 0.5, zy: 120 } },
  { title: 'int8, different scales and zero points for a, b, y', shape: [1, 7, 4, 3], types: { a: 'int8', b: 'int8', y: 'int8' }, p: { sa: 0.0371, za: -3, sb: 0.0213, zb: 11, sy: 0.043, zy: -7 } },
  { title: 'uint8 + int8 -> uint8 with Relu (the clamp at y_zp), rank 3', shape: [2, 5, 9], types: { a: 'uint8', b: 'int8', y: 'uint8' }, p: { sa: 0.02, za: 131, sb: 0.03, zb: 0, sy: 0.05, zy: 37, relu: true } },
  { title: 'int8 with Relu and ties, a zero point past the middle', shape: [3, 10], types: { a: 'int8', b: 'int8', y: 'int8' }, p: { sa: 0.125, za: 5, sb: 0.125, zb: -5, sy: 0.25, zy: -100, relu: true } },
];

describe('DequantizeLinear x2 -> Add (-> Relu) -> QuantizeLinear runs as one QdqAdd', () => {
  for (const c of CHAINS) {
    it(c.title, async () => {
      const rng = new Rng(c.title.length * 17 + 3);
      const n = size(c.shape);
      const a = codes(rng, c.types.a, n, c.p.za);
      const b = codes(rng, c.types.b, n, c.p.zb).reverse();
      const want = reference(a, b, c.p, c.types.y);
      const bytes = chainModel(c.shape, c.types, c.p);
      const feeds = { a: tensorFromNumbers(c.types.a, c.shape, a), b: tensorFromNumbers(c.types.b, c.shape, b) };
      const g = await imported(bytes, { a: c.shape, b: c.shape });
      const fused = await planOf(g, true, feeds);
      expect(fused.ops).toEqual(['QdqAdd']);
      const unfused = await planOf(g, false, feeds);
      expect(unfused.ops).toContain('QuantizeLinear');
      expect(Array.from(tensorToNumbers(fused.y)), 'fused vs unfused WebGPU').toEqual(Array.from(tensorToNumbers(unfused.y)));
      expect(Array.from(tensorToNumbers(fused.y)), 'fused vs the f32 reference').toEqual(want);
      const session = await InferenceSession.create(bytes, { backend: 'cpu' });
      sessions.push(session);
      const cpu = await session.run<Record<string, Tensor>>({ a: new Tensor(c.types.a, feeds.a.data, c.shape), b: new Tensor(c.types.b, feeds.b.data, c.shape) });
      expect(Array.from(tensorToNumbers(cpu.y!.toHost())), 'CPU backend vs the reference').toEqual(want);
      const ort = tensorToNumbers((await runModelOrt(bytes, feeds)).y!);
      const far = want.filter((v, i) => Math.abs(v - ort[i]!) > 1).length;
      expect(far, 'codes more than one step from onnxruntime').toBe(0);
    });
  }
});

describe('both operands from one DequantizeLinear (x + x)', () => {
  it('fuses, drops the DequantizeLinear, and binds a_q twice', async () => {
    const shape = [1, 5, 3];
    const p: Params = { sa: 0.1, za: 128, sb: 0.1, zb: 128, sy: 0.3, zy: 100 };
    const scalar = (nm: string, t: DType, v: number) => tensorProto(nm, tensorFromNumbers(t, [], [v]));
    const bytes = model({
      opset: 13,
      nodes: [
        { op: 'DequantizeLinear', inputs: ['a', 'sa', 'za'], outputs: ['af'], name: 'dq_a' },
        { op: 'Add', inputs: ['af', 'af'], outputs: ['s'], name: 'add' },
        { op: 'QuantizeLinear', inputs: ['s', 'sy', 'zy'], outputs: ['y'], name: 'q' },
      ],
      inputs: [vi('a', ELEM.uint8, shape)],
      outputs: [vi('y', ELEM.uint8, shape)],
      initializers: [scalar('sa', 'float32', p.sa), scalar('za', 'uint8', p.za), scalar('sy', 'float32', p.sy), scalar('zy', 'uint8', p.zy)],
    });
    const a = codes(new Rng(5), 'uint8', size(shape), p.za);
    const fused = await planOf(await imported(bytes, { a: shape }), true, { a: tensorFromNumbers('uint8', shape, a) });
    expect(fused.ops).toEqual(['QdqAdd']);
    expect(Array.from(tensorToNumbers(fused.y))).toEqual(reference(a, a, p, 'uint8'));
  });
});

// ---- the packed layout c4 (layout contract: byte j of word (n, c4, s) = channel 4 c4 + j, int8-domain) ----

const offset = (t: Q) => (t === 'uint8' ? 128 : 0);

/** [N, C, ...spatial] codes packed per the c4 contract; channels past C hold zp. */
function packC4(v: number[], shape: number[], t: Q, zp: number): Uint32Array {
  const [N, C] = shape as [number, number];
  const S = size(shape.slice(2));
  const C4 = Math.ceil(C / 4);
  const words = new Uint32Array(N * C4 * S);
  for (let n = 0; n < N; n++) for (let c = 0; c < 4 * C4; c++) for (let s = 0; s < S; s++) {
    const q = c < C ? v[(n * C + c) * S + s]! : zp;
    const w = (n * C4 + (c >> 2)) * S + s;
    words[w] = (words[w]! | (((q - offset(t)) & 0xff) << ((c & 3) * 8))) >>> 0;
  }
  return words;
}

/** The codes of a c4 tensor and the codes its padding bytes hold. */
function unpackC4(words: ArrayLike<number>, shape: number[], t: Q): { v: number[]; pad: number[] } {
  const [N, C] = shape as [number, number];
  const S = size(shape.slice(2));
  const C4 = Math.ceil(C / 4);
  const v = new Array<number>(N * C * S);
  const pad: number[] = [];
  for (let n = 0; n < N; n++) for (let c = 0; c < 4 * C4; c++) for (let s = 0; s < S; s++) {
    const byte = (words[(n * C4 + (c >> 2)) * S + s]! >>> ((c & 3) * 8)) & 0xff;
    const q = ((byte << 24) >> 24) + offset(t);
    if (c < C) v[(n * C + c) * S + s] = q;
    else pad.push(q);
  }
  return { v, pad };
}

type Layout = { a: boolean; b: boolean; y: boolean };

/** A graph of one QdqAdd node with a, b and y packed as `layout` says (what H1's layout pass hands the kernel). */
function qdqAddGraph(shape: number[], types: { a: Q; b: Q; y: Q }, p: Params, layout: Layout): Graph {
  const words = [shape[0]!, Math.ceil(shape[1]! / 4), ...shape.slice(2)];
  const value = (name: string, packed: boolean, t: Q) => ({ name, dtype: (packed ? 'uint32' : t) as DType, shape: packed ? words : shape });
  const inits: Record<string, HostTensor> = {
    sa: tensorFromNumbers('float32', [], [p.sa]), za: tensorFromNumbers(types.a, [], [p.za]),
    sb: tensorFromNumbers('float32', [], [p.sb]), zb: tensorFromNumbers(types.b, [], [p.zb]),
    sy: tensorFromNumbers('float32', [], [p.sy]), zy: tensorFromNumbers(types.y, [], [p.zy]),
  };
  const attrs: Record<string, Attr> = p.relu ? { clip_min: { type: 'float', value: 0 } } : {};
  for (const k of ['a', 'b', 'y'] as const) {
    if (!layout[k]) continue;
    attrs[`${k}_layout`] = { type: 'string', value: 'c4' };
    attrs[`${k}_qtype`] = { type: 'string', value: types[k] };
  }
  const node: Node = { name: 'add_qdq', op: 'QdqAdd', domain: '', inputs: ['a', 'sa', 'za', 'b', 'sb', 'zb', 'sy', 'zy'], outputs: ['y'], attrs };
  const a = value('a', layout.a, types.a);
  const b = value('b', layout.b, types.b);
  const y = value('y', layout.y, types.y);
  const values: Graph['values'] = { a, b, y };
  for (const [k, t] of Object.entries(inits)) values[k] = { name: k, dtype: t.dtype, shape: t.shape };
  return { name: 'qdq-add', inputs: [a, b], outputs: [y], initializers: inits, nodes: [node], values };
}

const LAYOUTS: Layout[] = [0, 1, 2, 3, 4, 5, 6, 7].map((m) => ({ a: !!(m & 1), b: !!(m & 2), y: !!(m & 4) }));
const name = (l: Layout) => ['a', 'b', 'y'].map((k) => `${k} ${l[k as keyof Layout] ? 'c4' : 'unpacked'}`).join(', ');

describe('QdqAdd reads and writes the packed c4 layout in every combination', () => {
  const cases: ChainCase[] = [
    { title: 'C = 6 (a half-filled last word), uint8 + int8 -> uint8, ties', shape: [2, 6, 3, 5], types: { a: 'uint8', b: 'int8', y: 'uint8' }, p: { sa: 0.5, za: 140, sb: 0.25, zb: -20, sy: 0.5, zy: 128 } },
    { title: 'C = 5, int8 + uint8 -> int8 with Relu, rank 3', shape: [1, 5, 7], types: { a: 'int8', b: 'uint8', y: 'int8' }, p: { sa: 0.0371, za: 9, sb: 0.0213, zb: 120, sy: 0.043, zy: -30, relu: true } },
    { title: 'C = 8 (whole words), uint8, rank 2', shape: [3, 8], types: { a: 'uint8', b: 'uint8', y: 'uint8' }, p: { sa: 0.1, za: 128, sb: 0.1, zb: 128, sy: 0.2, zy: 128 } },
  ];
  for (const c of cases) {
    it(c.title, async () => {
      const rng = new Rng(c.title.length * 13 + 1);
      const n = size(c.shape);
      const a = codes(rng, c.types.a, n, c.p.za);
      const b = codes(rng, c.types.b, n, c.p.zb).reverse();
      const want = reference(a, b, c.p, c.types.y);
      for (const layout of LAYOUTS) {
        const g = qdqAddGraph(c.shape, c.types, c.p, layout);
        const feed = (k: 'a' | 'b', v: number[], zp: number) => layout[k]
          ? tensorFromNumbers('uint32', g.values[k]!.shape as number[], Array.from(packC4(v, c.shape, c.types[k], zp)))
          : tensorFromNumbers(c.types[k], c.shape, v);
        const { y, kernels } = await planOf(g, false, { a: feed('a', a, c.p.za), b: feed('b', b, c.p.zb) });
        expect(kernels.length, name(layout)).toBe(1);
        if (layout.y) {
          const u = unpackC4(tensorToNumbers(y), c.shape, c.types.y);
          expect(u.v, `${name(layout)}: codes`).toEqual(want);
          expect(u.pad, `${name(layout)}: bytes past C hold y's zero point`).toEqual(u.pad.map(() => c.p.zy));
        } else {
          expect(y.dtype).toBe(c.types.y);
          expect(Array.from(tensorToNumbers(y)), `${name(layout)}: codes`).toEqual(want);
        }
      }
    });
  }
});

describe('the pass leaves groups it cannot run as written', () => {
  const types = { a: 'uint8', b: 'uint8', y: 'uint8' } as const;
  const p: Params = { sa: 0.02, za: 128, sb: 0.03, zb: 128, sy: 0.05, zy: 128 };
  const scalar = (nm: string, t: DType, v: number | number[], shape: number[] = []) => tensorProto(nm, tensorFromNumbers(t, shape, Array.isArray(v) ? v : [v]));
  const inits = [scalar('sa', 'float32', p.sa), scalar('za', 'uint8', p.za), scalar('sb', 'float32', p.sb), scalar('zb', 'uint8', p.zb), scalar('sy', 'float32', p.sy), scalar('zy', 'uint8', p.zy)];
  const dq = (x: string, out: string, s = 'sa', z = 'za', attrs?: NodeSpec['attrs']): NodeSpec => ({ op: 'DequantizeLinear', inputs: [x, s, z], outputs: [out], name: `dq_${x}`, attrs });
  const shape = [1, 4, 3, 3];
  const cases: [string, Parameters<typeof model>[0], string[]][] = [
    ['a broadcasting Add (b is [1, 4, 1, 1])', {
      nodes: [dq('a', 'af'), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'] }, { op: 'QuantizeLinear', inputs: ['s', 'sy', 'zy'], outputs: ['y'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, [1, 4, 1, 1])], outputs: [vi('y', 2)], initializers: inits,
    }, ['Add']],
    ['a per-channel DequantizeLinear', {
      nodes: [dq('a', 'af', 'sc', 'zc', [int('axis', 1)]), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'] }, { op: 'QuantizeLinear', inputs: ['s', 'sy', 'zy'], outputs: ['y'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, shape)], outputs: [vi('y', 2)],
      initializers: [...inits, scalar('sc', 'float32', [0.1, 0.2, 0.3, 0.4], [4]), scalar('zc', 'uint8', [1, 2, 3, 4], [4])],
    }, ['Add']],
    ['the sum is also a graph output', {
      nodes: [dq('a', 'af'), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'] }, { op: 'QuantizeLinear', inputs: ['s', 'sy', 'zy'], outputs: ['y'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, shape)], outputs: [vi('y', 2), vi('s', 1)], initializers: inits,
    }, ['Add']],
    ['the sum has a second reader', {
      nodes: [dq('a', 'af'), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'] }, { op: 'QuantizeLinear', inputs: ['s', 'sy', 'zy'], outputs: ['y'] },
        { op: 'Sigmoid', inputs: ['s'], outputs: ['z'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, shape)], outputs: [vi('y', 2), vi('z', 1)], initializers: inits,
    }, ['Add']],
    ['no QuantizeLinear after the Add (a float output)', {
      nodes: [dq('a', 'af'), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['y'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, shape)], outputs: [vi('y', 1)], initializers: inits,
    }, ['Add']],
    ['a y_scale fed at run time', {
      nodes: [dq('a', 'af'), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'] }, { op: 'QuantizeLinear', inputs: ['s', 'ys_in', 'zy'], outputs: ['y'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, shape), vi('ys_in', 1, [])], outputs: [vi('y', 2)], initializers: inits,
    }, ['Add']],
    ['a Sigmoid (not Relu) between the Add and the QuantizeLinear', {
      nodes: [dq('a', 'af'), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'] }, { op: 'Sigmoid', inputs: ['s'], outputs: ['r'] }, { op: 'QuantizeLinear', inputs: ['r', 'sy', 'zy'], outputs: ['y'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, shape)], outputs: [vi('y', 2)], initializers: inits,
    }, ['Add']],
    // Fused, but a DequantizeLinear another node reads stays (and so does that reader).
    ['a DequantizeLinear with another reader stays (the group still fuses)', {
      nodes: [dq('a', 'af'), dq('b', 'bf', 'sb', 'zb'), { op: 'Add', inputs: ['af', 'bf'], outputs: ['s'] }, { op: 'QuantizeLinear', inputs: ['s', 'sy', 'zy'], outputs: ['y'] },
        { op: 'Relu', inputs: ['af'], outputs: ['z'] }],
      inputs: [vi('a', 2, shape), vi('b', 2, shape)], outputs: [vi('y', 2), vi('z', 1)], initializers: inits,
    }, ['DequantizeLinear', 'QdqAdd', 'Relu']],
  ];
  for (const [title, spec, want] of cases) {
    it(title, async () => {
      const g = await imported(model({ opset: 13, ...spec }), Object.fromEntries(spec.inputs!.map((i) => [i.name!, (i.type!.tensorType!.shape!.dim ?? []).map((d) => Number(d.dimValue))])));
      const ops = fuseQdqAdd(g).nodes.map((n) => n.op);
      for (const op of want) expect(ops, title).toContain(op);
      if (!want.includes('QdqAdd')) expect(ops, title).not.toContain('QdqAdd');
      else expect(ops.filter((o) => o === 'DequantizeLinear').length, `${title}: only the shared DequantizeLinear stays`).toBe(1);
    });
  }
  it('a fused group carries fusion = qdq and the names it replaces', async () => {
    const c = CHAINS[2]!;
    const g = fuseQdqAdd(await imported(chainModel(c.shape, c.types, c.p), { a: c.shape, b: c.shape }));
    expect(g.nodes.map((n) => n.op)).toEqual(['QdqAdd']);
    const n = g.nodes[0]!;
    expect(n.attrs.fusion).toEqual({ type: 'string', value: 'qdq' });
    expect(n.attrs.fused_from).toEqual({ type: 'strings', value: ['add', 'relu', 'q', 'dq_a', 'dq_b'] });
    expect(n.attrs.clip_min).toEqual({ type: 'float', value: 0 });
    expect(n.inputs).toEqual(['a', 'sa', 'za', 'b', 'sb', 'zb', 'sy', 'zy']);
  });
});

/**
 * The public path on a small residual block as a quantizer writes it: x -> Q -> x_q; DQ(x_q) feeds both a QDQ conv
 * (3x3, pad 1, int8 weights per channel, int32 bias, -> Q) and the residual Add; DQ(conv_q) + DQ(x_q) -> Relu -> Q
 * -> DQ -> y. WebGPU plans QdqConv and QdqAdd (the shared DequantizeLinear goes: fuse-qdq.ts's conv no longer reads
 * it) and agrees with onnxruntime-node within one step.
 */
describe('a QDQ residual block through InferenceSession on WebGPU', () => {
  it('QdqConv + QdqAdd, within one step of onnxruntime-node and the CPU backend', async () => {
    const rng = new Rng(2024);
    const C = 6;
    const shape = [2, C, 5, 5];
    const w = Array.from({ length: C * C * 9 }, () => rng.int(-127, 127));
    const f = (nm: string, t: DType, v: number[], s: number[] = []) => tensorProto(nm, tensorFromNumbers(t, s, v));
    const bytes = model({
      opset: 13,
      nodes: [
        { op: 'QuantizeLinear', inputs: ['x', 'xs', 'xz'], outputs: ['x_q'], name: 'q_x' },
        { op: 'DequantizeLinear', inputs: ['x_q', 'xs', 'xz'], outputs: ['x_f'], name: 'dq_x' },
        { op: 'DequantizeLinear', inputs: ['w', 'ws', 'wz'], outputs: ['w_f'], name: 'dq_w', attrs: [int('axis', 0)] },
        { op: 'DequantizeLinear', inputs: ['bias', 'bs'], outputs: ['b_f'], name: 'dq_b', attrs: [int('axis', 0)] },
        { op: 'Conv', inputs: ['x_f', 'w_f', 'b_f'], outputs: ['c'], name: 'conv', attrs: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])] },
        { op: 'QuantizeLinear', inputs: ['c', 'cs', 'cz'], outputs: ['c_q'], name: 'q_c' },
        { op: 'DequantizeLinear', inputs: ['c_q', 'cs', 'cz'], outputs: ['c_f'], name: 'dq_c' },
        { op: 'Add', inputs: ['c_f', 'x_f'], outputs: ['s'], name: 'add' },
        { op: 'Relu', inputs: ['s'], outputs: ['r'], name: 'relu' },
        { op: 'QuantizeLinear', inputs: ['r', 'ys', 'yz'], outputs: ['y_q'], name: 'q_y' },
        { op: 'DequantizeLinear', inputs: ['y_q', 'ys', 'yz'], outputs: ['y'], name: 'dq_y' },
      ],
      inputs: [vi('x', 1, shape)],
      outputs: [vi('y', 1, shape)],
      initializers: [
        f('xs', 'float32', [0.02]), f('xz', 'uint8', [128]),
        f('w', 'int8', w, [C, C, 3, 3]), f('ws', 'float32', Array.from({ length: C }, (_, i) => 0.004 + 0.001 * i), [C]), f('wz', 'int8', new Array<number>(C).fill(0), [C]),
        f('bias', 'int32', Array.from({ length: C }, () => rng.int(-2000, 2000)), [C]), f('bs', 'float32', Array.from({ length: C }, (_, i) => 0.02 * (0.004 + 0.001 * i)), [C]),
        f('cs', 'float32', [0.05]), f('cz', 'uint8', [120]), f('ys', 'float32', [0.04]), f('yz', 'uint8', [0]),
      ],
    });
    const x = tensorFromNumbers('float32', shape, Array.from({ length: size(shape) }, () => rng.uniform(-2.5, 2.5)));
    const read = async (backend: 'cpu' | 'webgpu') => {
      const session = await InferenceSession.create(bytes, { backend });
      sessions.push(session);
      const out = await session.run<Record<string, Tensor>>({ x: new Tensor('float32', x.data, shape) });
      return { y: tensorToNumbers(out.y!.toHost()), session };
    };
    const gpu = await read('webgpu');
    const ops = gpu.session.report().nodes.map((n) => n.op);
    expect(ops).toContain('QdqConv');
    expect(ops).toContain('QdqAdd');
    expect(ops).not.toContain('Add');
    expect(ops.filter((o) => o === 'DequantizeLinear'), 'only the output DequantizeLinear is left').toHaveLength(1);
    const cpu = (await read('cpu')).y;
    const ort = tensorToNumbers((await runModelOrt(bytes, { x })).y!);
    for (const [ref, what] of [[cpu, 'CPU'], [ort, 'onnxruntime']] as const) {
      let max = 0;
      for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.round(Math.abs(gpu.y[i]! - ref[i]!) / 0.04));
      expect(max, `steps from ${what}`).toBeLessThanOrEqual(1);
    }
  });
});
