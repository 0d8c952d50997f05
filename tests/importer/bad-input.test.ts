import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeTensorProtoBytes, importOnnx, memoryExternalDataResolver } from '../../importers/onnx/index.js';
import { nodeExternalDataResolver } from '../../importers/onnx/external-data-node.js';
import {
  AllocationLimitError, EdgeKitError, InvalidGraphError, ModelFormatError, UnsupportedOpError,
} from '../../runtime/errors.js';
import { graphAttr, model, P, vi } from './model-builder.js';

const digits = new Uint8Array(readFileSync(new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url)));

async function rejects(bytes: Uint8Array, cls: new (...a: never[]) => EdgeKitError, message: RegExp, opts = {}) {
  const err = await importOnnx(bytes, opts).then(() => undefined, (e: unknown) => e);
  expect(err, 'the import should have failed').toBeInstanceOf(cls);
  expect((err as Error).message).toMatch(message);
}

describe('malformed bytes', () => {
  it('empty, truncated and garbage bytes are ModelFormatErrors', async () => {
    await rejects(new Uint8Array(), ModelFormatError, /empty/);
    await rejects(digits.subarray(0, digits.length >> 1), ModelFormatError, /not an ONNX model|not as an ONNX ModelProto|truncated/);
    let s = 1;
    const noise = Uint8Array.from({ length: 4096 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24));
    await rejects(noise, ModelFormatError, /ONNX/);
  });

  it('a protobuf that is not a model (a TensorProto) is refused', async () => {
    const tensor = P.TensorProto.encode({ name: 'x', dims: [2], dataType: 1, floatData: [1, 2] }).finish();
    await rejects(tensor, ModelFormatError, /not an ONNX model|not as an ONNX ModelProto/);
  });

  it('unsupported IR versions are refused', async () => {
    const m = model({ irVersion: 11, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')] });
    await rejects(m, ModelFormatError, /IR version 11/);
  });
});

describe('invalid graphs', () => {
  it('a cycle is an InvalidGraphError naming the nodes', async () => {
    const m = model({
      nodes: [{ op: 'Relu', inputs: ['b'], outputs: ['a'], name: 'first' }, { op: 'Relu', inputs: ['a'], outputs: ['b'], name: 'second' }],
      inputs: [vi('x', 1, [1])], outputs: [vi('b')],
    });
    await rejects(m, InvalidGraphError, /cycle through node\(s\) 'first', 'second'/);
  });

  it('a dangling value is an InvalidGraphError naming the node and value', async () => {
    const m = model({ nodes: [{ op: 'Add', inputs: ['x', 'ghost'], outputs: ['y'], name: 'adder' }], inputs: [vi('x', 1, [2])], outputs: [vi('y')] });
    await rejects(m, InvalidGraphError, /'adder' \(Add\) reads 'ghost'/);
  });

  it('two producers of one value are refused', async () => {
    const m = model({
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }, { op: 'Neg', inputs: ['x'], outputs: ['y'] }],
      inputs: [vi('x', 1, [2])], outputs: [vi('y')],
    });
    await rejects(m, InvalidGraphError, /produced by two nodes/);
  });
});

describe('allocation bombs and bad payloads', () => {
  it('initializer dims beyond the element limit fail before allocating', async () => {
    const m = model({
      nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
      inputs: [vi('x', 1, [1])], outputs: [vi('y')],
      initializers: [{ name: 'w', dims: [1 << 20, 1 << 20, 1 << 20], dataType: 1 }],
    });
    await rejects(m, AllocationLimitError, /more than \d+ elements/);
  });

  it('a payload that does not match its dims is a ModelFormatError', async () => {
    const m = model({
      nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
      inputs: [vi('x', 1, [4])], outputs: [vi('y')],
      initializers: [{ name: 'w', dims: [4], dataType: 1, rawData: new Uint8Array(12) }],
    });
    await rejects(m, ModelFormatError, /12 bytes but dims \[4\] of float32 need 16/);
  });

  it('a negative dimension is refused', async () => {
    const m = model({
      nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
      inputs: [vi('x', 1, [4])], outputs: [vi('y')],
      initializers: [{ name: 'w', dims: [-4], dataType: 1 }],
    });
    await rejects(m, ModelFormatError, /invalid dimension -4/);
  });
});

describe('unsupported ops', () => {
  it('one error lists every unsupported node with op, domain, opset and name', async () => {
    const m = model({
      opset: 13,
      extraOpsets: [{ domain: 'com.example', version: 1 }],
      nodes: [
        { op: 'Relu', inputs: ['x'], outputs: ['a'] },
        { op: 'NonMaxSuppression', inputs: ['a'], outputs: ['b'], name: 'nms' },
        { op: 'FancyOp', inputs: ['b'], outputs: ['c'], name: 'custom', domain: 'com.example' },
        { op: 'Unique', inputs: ['c'], outputs: ['y'], name: 'uniq' },
      ],
      inputs: [vi('x', 1, [4])], outputs: [vi('y')],
      // a weight that would be an allocation bomb: the support check must come first
      initializers: [{ name: 'huge', dims: [1 << 30, 1 << 30], dataType: 1 }],
    });
    const err = (await importOnnx(m).catch((e: unknown) => e)) as UnsupportedOpError;
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect(err.code).toBe('UNSUPPORTED_OP');
    expect(err.nodes.map((n) => [n.op, n.domain, n.opset, n.node])).toEqual([
      ['NonMaxSuppression', '', 13, 'nms'], ['FancyOp', 'com.example', 1, 'custom'], ['Unique', '', 13, 'uniq'],
    ]);
    expect(err.message).toMatch(/com\.example::FancyOp \(opset 1\) at node 'custom'/);
  });

  it('opsets outside 7-21 are refused by name', async () => {
    const m = model({ opset: 6, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')] });
    await rejects(m, UnsupportedOpError, /opset 6 is outside 7-21/);
  });

  it('control flow decodes (nested graphs) and is reported as unsupported rather than crashing', async () => {
    const branch = (op: string) => ({ name: op, node: [{ opType: op, input: ['x'], output: [`${op}_out`] }], output: [vi(`${op}_out`)] });
    const m = model({
      nodes: [{ op: 'If', inputs: ['cond'], outputs: ['y'], name: 'branch', attrs: [graphAttr('then_branch', branch('Relu')), graphAttr('else_branch', branch('Neg'))] }],
      inputs: [vi('cond', 9, []), vi('x', 1, [2])], outputs: [vi('y')],
    });
    await rejects(m, UnsupportedOpError, /ai\.onnx::If \(opset 13\) at node 'branch'/);
  });

  it('sequence-typed inputs are refused with a clear message', async () => {
    const m = model({
      nodes: [{ op: 'Identity', inputs: ['s'], outputs: ['y'] }],
      inputs: [{ name: 's', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }], outputs: [vi('y')],
    });
    await rejects(m, ModelFormatError, /'s' .* is a sequence/);
  });
});

describe('external data', () => {
  const ext = (location: string) => model({
    nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
    inputs: [vi('x', 1, [2])], outputs: [vi('y')],
    initializers: [{ name: 'w', dims: [2], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: location }, { key: 'offset', value: '4' }, { key: 'length', value: '8' }] }],
  });

  it('reads external data through a resolver, at the given offset', async () => {
    const file = new Uint8Array(new Float32Array([9, 1.5, -2, 9]).buffer);
    const m = await importOnnx(ext('weights.bin'), { externalData: memoryExternalDataResolver({ 'weights.bin': file }) });
    expect(Array.from(m.graph.initializers.w!.data as Float32Array)).toEqual([1.5, -2]);
  });

  it('refuses locations that escape the model folder, and says how to provide missing data', async () => {
    await rejects(ext('../secret.bin'), ModelFormatError, /leaves the model's folder/, { externalData: nodeExternalDataResolver('/tmp/models/m.onnx') });
    await rejects(ext('/etc/passwd'), ModelFormatError, /absolute/, { externalData: memoryExternalDataResolver({}) });
    await rejects(ext('weights.bin'), ModelFormatError, /load the model from its path or URL, or pass externalData/);
  });
});

describe('TensorProto payload forms', () => {
  const dec = (t: object) => decodeTensorProtoBytes(P.TensorProto.encode(t).finish());
  it('decodes typed fields, raw data, float16 bits, bool, int64 and strings', () => {
    expect(Array.from(dec({ dims: [2], dataType: 1, floatData: [1.5, -2] }).data as Float32Array)).toEqual([1.5, -2]);
    expect(Array.from(dec({ dims: [2], dataType: 11, doubleData: [0.1, 3] }).data as Float64Array)).toEqual([0.1, 3]);
    expect(Array.from(dec({ dims: [2], dataType: 10, int32Data: [0x3c00, 0xc000] }).data as Uint16Array)).toEqual([0x3c00, 0xc000]);
    expect(Array.from(dec({ dims: [3], dataType: 9, int32Data: [1, 0, 1] }).data as Uint8Array)).toEqual([1, 0, 1]);
    const big = dec({ dims: [2], dataType: 7, int64Data: ['9223372036854775807', '-5'] as never });
    expect(Array.from(big.data as BigInt64Array)).toEqual([9223372036854775807n, -5n]);
    expect(dec({ dims: [2], dataType: 8, stringData: [new TextEncoder().encode('héllo'), new Uint8Array()] }).data).toEqual(['héllo', '']);
    const raw = dec({ dims: [2, 1], dataType: 6, rawData: new Uint8Array(new Int32Array([7, -7]).buffer) });
    expect(raw.shape).toEqual([2, 1]);
    expect(Array.from(raw.data as Int32Array)).toEqual([7, -7]);
    expect(() => dec({ dims: [2], dataType: 14 })).toThrow(/complex|float8/);
    expect(() => decodeTensorProtoBytes(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(ModelFormatError);
  });
});

describe('well-formed models', () => {
  it('keeps symbolic dims and producer metadata', async () => {
    const m = await importOnnx(digits);
    expect(m.graph.inputs[0]!.shape).toEqual(['N', 1, 8, 8]);
    expect(m.opset).toBe(13);
    expect(m.producer).toMatch(/pytorch/);
  });

  it('a Constant of every kind becomes an initializer', async () => {
    const T = P.AttributeProto.AttributeType;
    const m = model({
      nodes: [
        { op: 'Constant', inputs: [], outputs: ['a'], attrs: [{ name: 'value_floats', type: T.FLOATS, floats: [1, 2] }] },
        { op: 'Constant', inputs: [], outputs: ['b'], attrs: [{ name: 'value_int', type: T.INT, i: 3 }] },
        { op: 'Constant', inputs: [], outputs: ['c'], attrs: [{ name: 'value', type: T.TENSOR, t: { dims: [2], dataType: 1, floatData: [5, 6] } }] },
        { op: 'Constant', inputs: [], outputs: ['d'], attrs: [{ name: 'value_ints', type: T.INTS, ints: [4, 5] }] },
        { op: 'Add', inputs: ['a', 'c'], outputs: ['y'] },
      ],
      outputs: [vi('y')],
    });
    const g = (await importOnnx(m)).graph;
    expect(g.nodes.map((n) => n.op)).toEqual(['Add']);
    expect(Array.from(g.initializers.b!.data as BigInt64Array)).toEqual([3n]);
    expect(g.initializers.d!.dtype).toBe('int64');
  });
});
