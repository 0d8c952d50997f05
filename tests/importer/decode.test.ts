import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeGraph } from '../../importers/onnx/graph.js';
import { decodeTensorProtoBytes, importOnnx, listSupportedOps, tensorFromProto } from '../../importers/onnx/index.js';
import { ModelFormatError } from '../../runtime/errors.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { graphAttr, model, P, vi } from './model-builder.js';

/** Decoding: graph structure, value types and dims, attributes, initializer forms, Constant nodes, supported ops. */

const T = P.AttributeProto.AttributeType;
const enc = new TextEncoder();

describe('graph structure', () => {
  it('initializers listed among the inputs (IR v3, or overridable constants in v4+) are constants, not user inputs', async () => {
    for (const irVersion of [3, 8]) {
      const m = await importOnnx(model({
        irVersion, opset: 9,
        nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
        inputs: [vi('x', 1, [2]), vi('w', 1, [2])], outputs: [vi('y', 1, [2])],
        initializers: [{ name: 'w', dims: [2], dataType: 1, floatData: [10, 20] }],
      }));
      expect(m.graph.inputs.map((i) => i.name)).toEqual(['x']);
      expect(m.irVersion).toBe(irVersion);
      const y = runGraphCpu(m.graph, { x: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) } }).y!;
      expect(Array.from(y.data as Float32Array)).toEqual([11, 22]);
    }
  });

  it('names unnamed nodes <op>_<index>, stably', async () => {
    const bytes = P.ModelProto.encode({
      irVersion: 8, opsetImport: [{ domain: '', version: 13 }],
      graph: {
        node: [{ opType: 'Relu', input: ['x'], output: ['a'] }, { opType: 'Neg', input: ['a'], output: ['b'], name: 'named' }, { opType: 'Abs', input: ['b'], output: ['y'] }],
        input: [vi('x', 1, [1])], output: [vi('y', 1, [1])],
      },
    }).finish();
    const names = async () => (await importOnnx(bytes)).graph.nodes.map((n) => n.name);
    expect(await names()).toEqual(['Relu_0', 'named', 'Abs_2']);
    expect(await names()).toEqual(['Relu_0', 'named', 'Abs_2']);
  });

  it('keeps dim_param names, dim_value 0, gives unknown dims a stable symbol, and unknown rank stays unknown', async () => {
    const bytes = P.ModelProto.encode({
      irVersion: 8, opsetImport: [{ domain: '', version: 13 }],
      graph: {
        node: [{ opType: 'Identity', input: ['x'], output: ['y'] }, { opType: 'Identity', input: ['u'], output: ['v'] }],
        input: [
          { name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 0 }, {}, { dimValue: 7 }] } } } },
          { name: 'u', type: { tensorType: { elemType: 7 } } },
        ],
        output: [vi('y', 1), { name: 'v' }],
      },
    }).finish();
    const m = await importOnnx(bytes);
    expect(m.graph.inputs[0]!.shape).toEqual(['batch', 0, 'x_dim2', 7]);
    expect(m.graph.inputs[1]!.shape).toBeUndefined();
    // Outputs take the inferred shape; an output declared without any type takes the inferred type too.
    expect(m.graph.outputs[0]).toEqual({ name: 'y', dtype: 'float32', shape: ['batch', 0, 'x_dim2', 7] });
    expect(m.graph.outputs[1]).toMatchObject({ name: 'v', dtype: 'int64' });
  });

  it('decodes nested graphs with the names each body reads from enclosing scopes', () => {
    // Loop body (inside an If branch) reads 'w' from the main graph and 'k' from the branch.
    const loopBody = {
      name: 'body',
      node: [{ opType: 'Add', input: ['acc_in', 'w'], output: ['s'] }, { opType: 'Mul', input: ['s', 'k'], output: ['acc_out'] }, { opType: 'Identity', input: ['c_in'], output: ['c_out'] }],
      input: [vi('i', 7, []), vi('c_in', 9, []), vi('acc_in', 1, [2])], output: [vi('c_out', 9, []), vi('acc_out', 1, [2])],
    };
    const thenBranch = {
      name: 'then',
      node: [
        { opType: 'Constant', input: [], output: ['k'], attribute: [{ name: 'value_float', type: T.FLOAT, f: 3 }] },
        { opType: 'Loop', input: ['n', '', 'x'], output: ['r'], attribute: [graphAttr('body', loopBody)] },
      ],
      output: [vi('r', 1, [2])],
    };
    const g = P.GraphProto.decode(P.GraphProto.encode({
      name: 'main',
      node: [{ opType: 'If', input: ['c'], output: ['y'], name: 'branch', attribute: [graphAttr('then_branch', thenBranch), graphAttr('else_branch', { name: 'else', node: [{ opType: 'Identity', input: ['x'], output: ['e'] }], output: [vi('e', 1, [2])] })] }],
      input: [vi('c', 9, []), vi('x', 1, [2]), vi('n', 7, [])], output: [vi('y', 1, [2])],
      initializer: [{ name: 'w', dims: [2], dataType: 1, floatData: [1, 2] }],
    }).finish());
    const ir = decodeGraph(g, { tensor: (t) => tensorFromProto(t), sparse: () => { throw new Error('no sparse tensors here'); } });
    expect(ir.outerScope).toBeUndefined();
    const then = ir.nodes[0]!.attrs.then_branch!.value as typeof ir;
    const body = then.nodes[1]!.attrs.body!.value as typeof ir;
    expect(body.outerScope!.sort()).toEqual(['k', 'w']);
    expect(then.outerScope!.sort()).toEqual(['n', 'w', 'x']);
    expect((ir.nodes[0]!.attrs.else_branch!.value as typeof ir).outerScope).toEqual(['x']);
  });
});

describe('attributes', () => {
  it('infers the type of untyped attributes (old models) from the field that is present, zero values included', async () => {
    const bytes = model({
      opset: 9,
      nodes: [
        { op: 'Flatten', inputs: ['x'], outputs: ['f'], attrs: [{ name: 'axis', i: 0 }] },
        { op: 'LeakyRelu', inputs: ['f'], outputs: ['l'], attrs: [{ name: 'alpha', f: 0.5 }] },
        { op: 'Transpose', inputs: ['l'], outputs: ['t'], attrs: [{ name: 'perm', ints: [1, 0] }] },
        { op: 'Identity', inputs: ['t'], outputs: ['y'], attrs: [{ name: 'note', s: enc.encode('hi') }, { name: 'nothing' }] },
      ],
      inputs: [vi('x', 1, [2, 3])], outputs: [vi('y', 1)],
    });
    const m = await importOnnx(bytes);
    const attrs = m.graph.nodes.map((n) => n.attrs);
    expect(attrs[0]!.axis).toEqual({ type: 'int', value: 0 });
    expect(attrs[1]!.alpha).toEqual({ type: 'float', value: 0.5 });
    expect(attrs[2]!.perm).toEqual({ type: 'ints', value: [1, 0] });
    expect(attrs[3]!.note).toEqual({ type: 'string', value: 'hi' });
    expect(attrs[3]!.nothing).toEqual({ type: 'ints', value: [] });
    expect(m.graph.outputs[0]!.shape).toEqual([6, 1]); // Flatten(axis 0) of [2, 3] is [1, 6], transposed
  });

  it('decodes a type-proto attribute (Optional\'s type) and refuses type-proto lists and map types with a ModelFormatError', async () => {
    const tps = model({ nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'], attrs: [{ name: 'tps', type: T.TYPE_PROTOS }] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')] });
    await expect(importOnnx(tps)).rejects.toThrow(/holds a type/);
    const optional = (tp: object) =>
      model({ opset: 18, nodes: [{ op: 'Optional', inputs: [], outputs: ['y'], attrs: [{ name: 'type', type: T.TYPE_PROTO, tp }] }], inputs: [], outputs: [{ name: 'y' }] });
    const m = await importOnnx(optional({ sequenceType: { elemType: { tensorType: { elemType: 7, shape: { dim: [{ dimValue: 2 }] } } } } }));
    expect(m.graph.nodes[0]!.attrs.type).toEqual({ type: 'type', value: { kind: 'sequence', dtype: 'int64', shape: [2] } });
    expect(m.graph.outputs[0]).toMatchObject({ kind: 'optional-sequence', dtype: 'int64' });
    await expect(importOnnx(optional({ mapType: { keyType: 7, valueType: { tensorType: { elemType: 1 } } } }))).rejects.toThrow(/is a map/);
  });
});

describe('tensors and constants', () => {
  const dec = (t: object) => decodeTensorProtoBytes(P.TensorProto.encode(t).finish());

  it('decodes the typed fields of every small integer type, uint32/uint64 and bfloat16', () => {
    expect(dec({ dims: [2], dataType: 3, int32Data: [-128, 127] }).data).toEqual(new Int8Array([-128, 127]));
    expect(dec({ dims: [2], dataType: 2, int32Data: [0, 255] }).data).toEqual(new Uint8Array([0, 255]));
    expect(dec({ dims: [1], dataType: 5, int32Data: [-32768] }).data).toEqual(new Int16Array([-32768]));
    expect(dec({ dims: [1], dataType: 4, int32Data: [65535] }).data).toEqual(new Uint16Array([65535]));
    expect(dec({ dims: [1], dataType: 16, int32Data: [0x3f80] }).data).toEqual(new Uint16Array([0x3f80]));
    expect(dec({ dims: [2], dataType: 12, uint64Data: [4294967295, 1] }).data).toEqual(new Uint32Array([4294967295, 1]));
    expect(dec({ dims: [1], dataType: 13, uint64Data: ['18446744073709551615'] as never }).data).toEqual(new BigUint64Array([18446744073709551615n]));
    expect(dec({ dims: [], dataType: 1, floatData: [2] })).toEqual({ dtype: 'float32', shape: [], data: new Float32Array([2]) });
    expect(() => dec({ dims: [3], dataType: 1, floatData: [1, 2] })).toThrow(/holds 2 elements but its dims need 3/);
  });

  it('reads the conformance suite input_N.pb files', () => {
    const dir = '/usr/lib/python3/dist-packages/onnx/backend/test/data/node/test_add/test_data_set_0';
    const t = decodeTensorProtoBytes(new Uint8Array(readFileSync(`${dir}/input_0.pb`)));
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([3, 4, 5]);
  });

  it('turns Constant nodes of every kind into initializers (strings, floats and sparse_value included)', async () => {
    const consts = [
      { name: 'value_float', type: T.FLOAT, f: 1.5 },
      { name: 'value_string', type: T.STRING, s: enc.encode('a') },
      { name: 'value_strings', type: T.STRINGS, strings: [enc.encode('b'), enc.encode('c')] },
      // 2x3 with 7 at [0, 2] and 8 at [1, 0], given as linear indices 2 and 3
      { name: 'sparse_value', type: T.SPARSE_TENSOR, sparseTensor: { dims: [2, 3], values: { dims: [2], dataType: 1, floatData: [7, 8] }, indices: { dims: [2], dataType: 7, int64Data: [2, 3] } } },
    ];
    const bytes = model({
      nodes: consts.map((a, i) => ({ op: 'Constant', inputs: [], outputs: [`c${i}`], attrs: [a] })),
      outputs: [vi('c0'), vi('c1', 8), vi('c2', 8), vi('c3')],
    });
    const g = (await importOnnx(bytes)).graph;
    expect(g.nodes).toEqual([]);
    expect(g.initializers.c0).toEqual({ dtype: 'float32', shape: [], data: new Float32Array([1.5]) });
    expect(g.initializers.c1).toEqual({ dtype: 'string', shape: [], data: ['a'] });
    expect(g.initializers.c2).toEqual({ dtype: 'string', shape: [2], data: ['b', 'c'] });
    expect(g.initializers.c3).toEqual({ dtype: 'float32', shape: [2, 3], data: new Float32Array([0, 0, 7, 8, 0, 0]) });
  });

  it('densifies sparse initializers (coordinate indices), and refuses indices outside the dims', async () => {
    const sparseModel = (indices: number[]) => P.ModelProto.encode({
      irVersion: 8, opsetImport: [{ domain: '', version: 13 }],
      graph: {
        node: [{ opType: 'Add', input: ['x', 's'], output: ['y'] }], input: [vi('x', 1, [2, 2])], output: [vi('y')],
        sparseInitializer: [{ dims: [2, 2], values: { name: 's', dims: [2], dataType: 1, floatData: [5, 6] }, indices: { dims: [2, 2], dataType: 7, int64Data: indices } }],
      },
    }).finish();
    const g = (await importOnnx(sparseModel([0, 1, 1, 1]))).graph;
    expect(g.initializers.s).toEqual({ dtype: 'float32', shape: [2, 2], data: new Float32Array([0, 5, 0, 6]) });
    const y = runGraphCpu(g, { x: { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 1, 1, 1]) } }).y!;
    expect(Array.from(y.data as Float32Array)).toEqual([1, 6, 1, 7]);
    await expect(importOnnx(sparseModel([0, 1, 2, 0]))).rejects.toThrow(/coordinate 2 of value 1 is outside dimension 0/);
  });
});

describe('listSupportedOps', () => {
  const rows = listSupportedOps();
  // The op list of the importer's scope (ONNX → IR for default-domain opsets 7..21).
  const SCOPE = `Conv ConvTranspose BatchNormalization InstanceNormalization LayerNormalization Gemm MatMul Relu LeakyRelu Elu
    Selu PRelu Sigmoid HardSigmoid HardSwish Tanh Softplus Softsign Gelu Erf Clip Exp Log Sqrt Pow Neg Abs Reciprocal Floor
    Ceil Sin Cos Add Sub Mul Div Min Max Mean Sum MaxPool AveragePool GlobalAveragePool GlobalMaxPool Softmax LogSoftmax
    ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL2 ReduceSumSquare ReduceL1 ReduceLogSum ReduceLogSumExp ArgMax
    ArgMin Flatten Reshape Transpose Squeeze Unsqueeze Concat Split Slice Gather GatherElements Expand Tile Pad Resize Upsample
    DepthToSpace SpaceToDepth Identity Dropout Shape Size Constant ConstantOfShape Cast CastLike Range Where Equal Less
    Greater LessOrEqual GreaterOrEqual Not And Or Xor TopK CumSum Sign Round Mod`.split(/\s+/);

  it('only lists ops whose IR form exists', () => {
    // Other domains' ops have domain-qualified IR names (e.g. ai.onnx.preview.training.Adam), checked by their targets.
    // Constant becomes an initializer; the deprecated Upsample and Scatter are rewritten to Resize and ScatterElements;
    // onnxruntime's default-domain SimplifiedLayerNormalization, and RMSNormalization-23 and RotaryEmbedding-23, map
    // to com.microsoft.SimplifiedLayerNormalization and com.microsoft.RotaryEmbedding.
    const renamed = ['Constant', 'Upsample', 'Scatter', 'SimplifiedLayerNormalization', 'RMSNormalization', 'RotaryEmbedding'];
    for (const r of rows) if (r.domain === 'ai.onnx' && !renamed.includes(r.op)) expect(OP_SCHEMAS, r.op).toHaveProperty(r.op);
  });

  it('covers every op in scope from its first ONNX version up to opset 23, without gaps', () => {
    // First versions (ONNX Operators.md) of the ops that did not exist in opset 1; EdgeKit starts Tile at 6 (Tile-1
    // took tiles/axis inputs) and Upsample at 7 (Upsample-1 was experimental).
    const FIRST: Record<string, number> = {
      Sin: 7, Cos: 7, Upsample: 7, Tile: 6, Expand: 8, Erf: 9, Sign: 9, Where: 9, ConstantOfShape: 9, Mod: 10, Resize: 10,
      Round: 11, Range: 11, CumSum: 11, GatherElements: 11, LessOrEqual: 12, GreaterOrEqual: 12, HardSwish: 14,
      CastLike: 15, LayerNormalization: 17, Gelu: 20,
    };
    for (const op of SCOPE) {
      const ranges = rows.filter((r) => r.op === op && r.domain === 'ai.onnx').map((r) => r.opsets).sort((a, b) => a[0] - b[0]);
      expect(ranges.length, `${op} is not listed`).toBeGreaterThan(0);
      expect(ranges[0]![0], op).toBe(FIRST[op] ?? 1);
      for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0], `${op} has a gap`).toBe(ranges[i - 1]![1] + 1);
      // Upsample was deprecated in opset 10 (Resize replaced it).
      expect(ranges[ranges.length - 1]![1], op).toBe(op === 'Upsample' ? 9 : 23);
    }
  });

  it('is sorted, with one row per op and opset range', () => {
    const keys = rows.map((r) => `${r.domain}:${r.op}@${r.opsets[0]}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(rows.every((r) => ['ai.onnx', 'ai.onnx.preview.training', 'com.microsoft'].includes(r.domain) && r.opsets[0] <= r.opsets[1])).toBe(true);
    expect(rows.filter((r) => r.op === 'Squeeze').map((r) => r.opsets)).toEqual([[1, 12], [13, 23]]);
  });

  it('an op outside its mapped range is unsupported, and the error says where it is mapped', async () => {
    const at = (opset: number) => importOnnx(model({ opset, nodes: [{ op: 'Gelu', inputs: ['x'], outputs: ['y'] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')] }));
    await expect(at(19)).rejects.toThrow(/Gelu \(opset 19\) at node 'n0': EdgeKit maps Gelu at opset\(s\) 20-23 only/);
    await expect(at(20)).resolves.toBeDefined();
  });
});
