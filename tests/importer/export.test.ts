import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import { InvalidArgumentError } from '../../runtime/errors.js';
import type { Attr, Graph, Node } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose, relativeError } from '../helpers/compare.js';
import { randomTensor, Rng } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { P } from './model-builder.js';

/** The exporter: IR → ModelProto bytes that onnxruntime-node loads, and that the importer reads back unchanged. */

const rng = new Rng(11);
const f32 = (values: number[], shape = [values.length]) => tensorFromNumbers('float32', shape, values);
const i64 = (values: number[], shape = [values.length]) => tensorFromNumbers('int64', shape, values);
const n = (op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}, domain = ''): Node => ({ name: `${op}_${outputs[0]}`, op, domain, inputs, outputs, attrs });
const graph = (g: Partial<Graph> & Pick<Graph, 'inputs' | 'outputs' | 'nodes'>): Graph => ({ name: 'g', initializers: {}, values: {}, ...g });

describe('exportOnnx', () => {
  it('writes a model onnxruntime runs: symbolic dims as dim_param, weights as raw_data, opset 21 / IR 10', async () => {
    const w = randomTensor(rng, 'float32', [4, 3], {});
    const g = graph({
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 3] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 4] }],
      initializers: { w, b: f32([1, 2, 3, 4]), axes: i64([1]) },
      nodes: [
        n('Gemm', ['x', 'w', 'b'], ['h'], { transB: { type: 'int', value: 1 } }),
        n('Relu', ['h'], ['r']),
        n('ReduceSum', ['r', 'axes'], ['s'], { keepdims: { type: 'int', value: 1 } }),
        n('Div', ['r', 's'], ['y']),
      ],
    });
    const bytes = exportOnnx(g);
    const m = P.ModelProto.decode(bytes);
    expect(Number(m.irVersion)).toBe(10);
    expect(m.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 21]]);
    expect(m.producerName).toBe('edgekit');
    expect(m.graph!.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['batch', 3]);
    const wt = m.graph!.initializer!.find((t) => t.name === 'w')!;
    expect(wt.rawData!.length).toBe(48);
    expect(wt.floatData).toHaveLength(0);
    // The same symbolic model runs at two batch sizes; the expected values are computed by hand from the formula.
    for (const batch of [1, 5]) {
      const x = randomTensor(rng, 'float32', [batch, 3], {});
      const y = (await runModelOrt(bytes, { x })).y!;
      const want: number[] = [];
      for (let r = 0; r < batch; r++) {
        const h = [0, 1, 2, 3].map((j) => Math.max(0, [0, 1, 2].reduce((acc, k) => acc + (x.data[r * 3 + k] as number) * (w.data[j * 3 + k] as number), j + 1)));
        const sum = h.reduce((a, b) => a + b, 0);
        want.push(...h.map((v) => v / sum));
      }
      expect(allClose(y, f32(want, [batch, 4]), { rtol: 1e-5, atol: 1e-6 })).toEqual({ ok: true });
    }
  });

  it('writes every tensor dtype as raw_data (strings as string_data) and reads them back bit-exact', async () => {
    const tensors: Record<string, HostTensor> = {
      f16: { dtype: 'float16', shape: [2], data: new Uint16Array([0x3c00, 0xfbff]) },
      bf16: { dtype: 'bfloat16', shape: [2], data: new Uint16Array([0x3f80, 0xc120]) },
      b: { dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) },
      i64: { dtype: 'int64', shape: [2], data: new BigInt64Array([9223372036854775807n, -9223372036854775808n]) },
      u64: { dtype: 'uint64', shape: [1], data: new BigUint64Array([18446744073709551615n]) },
      i8: { dtype: 'int8', shape: [2], data: new Int8Array([-128, 127]) },
      u16: { dtype: 'uint16', shape: [1], data: new Uint16Array([65535]) },
      f64: { dtype: 'float64', shape: [1, 1], data: new Float64Array([Math.PI]) },
      s: { dtype: 'string', shape: [2], data: ['héllo', ''] },
      empty: { dtype: 'float32', shape: [0, 3], data: new Float32Array(0) },
    };
    const names = Object.keys(tensors);
    const g = graph({
      inputs: [],
      outputs: names.map((k) => ({ name: `${k}_out`, dtype: tensors[k]!.dtype, shape: tensors[k]!.shape })),
      initializers: tensors,
      nodes: names.map((k) => n('Identity', [k], [`${k}_out`])),
    });
    const bytes = exportOnnx(g);
    const m = P.ModelProto.decode(bytes);
    for (const t of m.graph!.initializer!) {
      if (t.name === 's') expect(t.stringData).toHaveLength(2);
      else expect(t.rawData!.length).toBe(t.name === 'empty' ? 0 : tensors[t.name!]!.data.length * (tensors[t.name!]!.data as Uint8Array).BYTES_PER_ELEMENT);
    }
    const back = (await importOnnx(bytes)).graph.initializers;
    for (const k of names) expect(back[k], k).toEqual(tensors[k]);
  });

  it('writes every attribute type, and the importer reads them back identically', async () => {
    const body = graph({
      inputs: [{ name: 'a', dtype: 'float32', shape: [] }],
      outputs: [{ name: 'b', dtype: 'float32', shape: [] }],
      nodes: [n('Neg', ['a'], ['b'])],
    });
    const attrs: Record<string, Attr> = {
      f: { type: 'float', value: 0.25 },
      i: { type: 'int', value: -3 },
      s: { type: 'string', value: 'ünïcode' },
      t: { type: 'tensor', value: f32([1, 2], [2]) },
      g: { type: 'graph', value: body },
      fs: { type: 'floats', value: [0.5, -1] },
      is: { type: 'ints', value: [1, 2, 3] },
      ss: { type: 'strings', value: ['x', 'yz'] },
      ts: { type: 'tensors', value: [i64([4]), f32([5])] },
      gs: { type: 'graphs', value: [body, body] },
      empty_ints: { type: 'ints', value: [] },
    };
    // Identity ignores attributes it does not know, so it can carry all of them through the importer.
    const g = graph({ inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32', shape: [2] }], nodes: [n('Identity', ['x'], ['y'], attrs)] });
    const bytes = exportOnnx(g);
    const T = P.AttributeProto.AttributeType;
    const protoTypes = Object.fromEntries(P.ModelProto.decode(bytes).graph!.node![0]!.attribute!.map((a) => [a.name, a.type]));
    expect(protoTypes).toEqual({
      f: T.FLOAT, i: T.INT, s: T.STRING, t: T.TENSOR, g: T.GRAPH, fs: T.FLOATS, is: T.INTS, ss: T.STRINGS, ts: T.TENSORS, gs: T.GRAPHS, empty_ints: T.INTS,
    });
    const back = (await importOnnx(bytes)).graph.nodes[0]!.attrs;
    const strip = (gr: Graph) => ({ name: gr.name, inputs: gr.inputs, outputs: gr.outputs, nodes: gr.nodes, initializers: gr.initializers });
    for (const [k, a] of Object.entries(attrs)) {
      const b = back[k]!;
      expect(b.type, k).toBe(a.type);
      if (a.type === 'graph') expect(strip(b.value as Graph)).toEqual(strip(a.value));
      else if (a.type === 'graphs') expect((b.value as Graph[]).map(strip)).toEqual(a.value.map(strip));
      else if (a.type === 'float' || a.type === 'floats') expect(b.value).toEqual(a.value); // exactly representable in float32
      else expect(b.value, k).toEqual(a.value);
    }
  });

  it('saturates integer attributes beyond 2^53 instead of letting protobuf wrap 2^63 to INT64_MIN', () => {
    const g = graph({
      inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32', shape: [2] }],
      nodes: [n('Identity', ['x'], ['y'], { big: { type: 'int', value: 2 ** 63 }, many: { type: 'ints', value: [-(2 ** 63), 2 ** 64, 5] } })],
    });
    const attrs = P.ModelProto.decode(exportOnnx(g)).graph!.node![0]!.attribute!;
    expect(String(attrs[0]!.i)).toBe('9223372036854775807');
    expect(attrs[1]!.ints!.map(String)).toEqual(['-9223372036854775808', '9223372036854775807', '5']);
  });

  it('exports control-flow subgraphs that read outer-scope values, and other domains with their own opset import', async () => {
    // If(cond) then x * 2 else com.microsoft::Gelu(x): the branches read 'x' and 'two' from the enclosing graph.
    const branch = (name: string, nodes: Node[]): Graph => graph({ name, inputs: [], outputs: [{ name: `${name}_out`, dtype: 'float32', shape: [3] }], nodes });
    const g = graph({
      inputs: [{ name: 'cond', dtype: 'bool', shape: [] }, { name: 'x', dtype: 'float32', shape: [3] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [3] }],
      initializers: { two: f32([2], []) },
      nodes: [n('If', ['cond'], ['y'], {
        then_branch: { type: 'graph', value: branch('then', [n('Mul', ['x', 'two'], ['then_out'])]) },
        else_branch: { type: 'graph', value: branch('else', [n('Gelu', ['x'], ['else_out'], {}, 'com.microsoft')]) },
      })],
    });
    const bytes = exportOnnx(g);
    expect(P.ModelProto.decode(bytes).opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 21], ['com.microsoft', 1]]);
    const x = f32([-1, 0.5, 2]);
    const yes = (await runModelOrt(bytes, { cond: { dtype: 'bool', shape: [], data: new Uint8Array([1]) }, x })).y!;
    expect(Array.from(yes.data as Float32Array)).toEqual([-2, 1, 4]);
    const no = (await runModelOrt(bytes, { cond: { dtype: 'bool', shape: [], data: new Uint8Array([0]) }, x })).y!;
    // GELU(v) = v * Φ(v): Φ(-1) = 0.158655, Φ(0.5) = 0.691462, Φ(2) = 0.977250
    expect(allClose(no, f32([-0.158655, 0.345731, 1.954500]), { rtol: 1e-5, atol: 1e-6 })).toEqual({ ok: true });
  });

  it('declares an older opset (and its IR version) when every op had its current form then; refuses otherwise', () => {
    const g = graph({
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2] }], outputs: [{ name: 'y', dtype: 'float32', shape: [2] }],
      initializers: { axes: i64([0]) },
      nodes: [n('Relu', ['x'], ['r']), n('Squeeze', ['r', 'axes'], ['y'])],
    });
    const m = P.ModelProto.decode(exportOnnx(g, { opset: 13, producer: 'tuner' }));
    expect([Number(m.irVersion), Number(m.opsetImport[0]!.version), m.producerName]).toEqual([7, 13, 'tuner']);
    // Squeeze took its axes as an attribute before opset 13.
    expect(() => exportOnnx(g, { opset: 12 })).toThrow(/at opset 12 these ops had a different form \(or did not exist\): Squeeze/);
    expect(() => exportOnnx(g, { opset: 24 })).toThrow(InvalidArgumentError);
    // 23 (the IR's own form) is accepted and written with IR version 11.
    const m23 = P.ModelProto.decode(exportOnnx(g, { opset: 23 }));
    expect([Number(m23.irVersion), Number(m23.opsetImport[0]!.version)]).toEqual([11, 23]);
    expect(() => exportOnnx(g, { opset: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('real models: import → export gives the same outputs in onnxruntime-node', () => {
  const models: [string, URL, number[]][] = [
    ['digits CNN (BatchNorm kept)', new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url), [3, 1, 8, 8]],
    ['transfer-learning CNN', new URL('../fixtures/transfer/digits04-cnn.onnx', import.meta.url), [2, 1, 8, 8]],
    ['squeezenet1_1', new URL('../fixtures/generated/squeezenet1_1.onnx', import.meta.url), [1, 3, 224, 224]],
    ['resnet18', new URL('../fixtures/generated/resnet18.onnx', import.meta.url), [1, 3, 224, 224]],
    ['mobilenet_v2', new URL('../fixtures/generated/mobilenet_v2.onnx', import.meta.url), [1, 3, 224, 224]],
  ];
  for (const [name, url, shape] of models) {
    it.skipIf(!existsSync(url))(name, async () => {
      const original = new Uint8Array(readFileSync(url));
      const imported = await importOnnx(original);
      const feeds = { [imported.graph.inputs[0]!.name]: randomTensor(rng, 'float32', shape, {}) };
      const want = await runModelOrt(original, feeds);
      const got = await runModelOrt(exportOnnx(imported.graph), feeds);
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      for (const k of Object.keys(want)) expect(relativeError(got[k]!, want[k]!), k).toBeLessThan(1e-5);
    });
  }
});
