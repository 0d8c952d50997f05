import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
    const m = model({ irVersion: 12, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')] });
    await rejects(m, ModelFormatError, /IR version 12/);
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

  it('a node with more outputs or fewer inputs than its op takes is an InvalidGraphError, not a crash later', async () => {
    const conv = model({
      nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y', 'extra'], name: 'c' }],
      inputs: [vi('x', 1, [1, 1, 3, 3])], outputs: [vi('y')],
      initializers: [{ name: 'w', dims: [1, 1, 1, 1], dataType: 1, floatData: [1] }],
    });
    await rejects(conv, InvalidGraphError, /Node 'c' \(Conv\) has 2 output\(s\); Conv produces 1/);
    const gemm = model({ nodes: [{ op: 'Gemm', inputs: ['x', ''], outputs: ['y'], name: 'g' }], inputs: [vi('x', 1, [2, 2])], outputs: [vi('y')] });
    await rejects(gemm, InvalidGraphError, /Node 'g' \(Gemm\) has inputs \['x', ''\]; Gemm takes 2 to 3/);
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
        { op: 'LpNormalization', inputs: ['a'], outputs: ['b'], name: 'lpn' },
        { op: 'FancyOp', inputs: ['b'], outputs: ['c'], name: 'custom', domain: 'com.example' },
        { op: 'Col2Im', inputs: ['c'], outputs: ['y'], name: 'col2im' },
      ],
      inputs: [vi('x', 1, [4])], outputs: [vi('y')],
      // a weight that would be an allocation bomb: the support check must come first
      initializers: [{ name: 'huge', dims: [1 << 30, 1 << 30], dataType: 1 }],
    });
    const err = (await importOnnx(m).catch((e: unknown) => e)) as UnsupportedOpError;
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect(err.code).toBe('UNSUPPORTED_OP');
    expect(err.nodes.map((n) => [n.op, n.domain, n.opset, n.node])).toEqual([
      ['LpNormalization', '', 13, 'lpn'], ['FancyOp', 'com.example', 1, 'custom'], ['Col2Im', '', 13, 'col2im'],
    ]);
    expect(err.message).toMatch(/com\.example::FancyOp \(opset 1\) at node 'custom'/);
  });

  it('opsets outside 1-23 are refused by name', async () => {
    const m = model({ opset: 24, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')] });
    await rejects(m, UnsupportedOpError, /opset 24 is outside 1-23/);
  });

  it('control flow decodes (nested graphs); an unsupported op inside a body is reported with its path rather than crashing', async () => {
    const branch = (op: string) => ({ name: op, node: [{ opType: op, input: ['x'], output: [`${op}_out`], name: op }], output: [vi(`${op}_out`)] });
    const m = model({
      nodes: [{ op: 'If', inputs: ['cond'], outputs: ['y'], name: 'branch', attrs: [graphAttr('then_branch', branch('Relu')), graphAttr('else_branch', branch('NotAnOnnxOp'))] }],
      inputs: [vi('cond', 9, []), vi('x', 1, [2])], outputs: [vi('y')],
    });
    await rejects(m, UnsupportedOpError, /ai\.onnx::NotAnOnnxOp \(opset 13\) at node 'branch\/NotAnOnnxOp'/);
  });

  it('sequence-typed inputs are imported with their kind; maps and sequences of maps are refused with a clear message', async () => {
    const seq = model({
      nodes: [{ op: 'Identity', inputs: ['s'], outputs: ['y'] }],
      inputs: [{ name: 's', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }], outputs: [vi('y')],
    });
    expect((await importOnnx(seq)).graph.inputs[0]).toMatchObject({ name: 's', dtype: 'float32', kind: 'sequence' });
    const map = model({
      nodes: [{ op: 'Identity', inputs: ['m'], outputs: ['y'] }],
      inputs: [{ name: 'm', type: { mapType: { keyType: 7, valueType: { tensorType: { elemType: 1 } } } } }], outputs: [vi('y')],
    });
    await rejects(map, ModelFormatError, /'m' .* is a map/);
    const seqOfMaps = model({
      nodes: [{ op: 'Identity', inputs: ['s'], outputs: ['y'] }],
      inputs: [{ name: 's', type: { sequenceType: { elemType: { mapType: { keyType: 7, valueType: { tensorType: { elemType: 1 } } } } } } }], outputs: [vi('y')],
    });
    await rejects(seqOfMaps, ModelFormatError, /'s' .* is a sequence of non-tensors/);
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

describe('external data on disk (nodeExternalDataResolver)', () => {
  const root = mkdtempSync(join(tmpdir(), 'edgekit-ext-'));
  const modelDir = join(root, 'model');
  mkdirSync(join(modelDir, 'sub'), { recursive: true });
  const weights = new Uint8Array(new Float32Array([0, 1.5, -2, 0]).buffer);
  writeFileSync(join(modelDir, 'sub', 'w.bin'), weights);
  writeFileSync(join(root, 'secret.bin'), weights);
  symlinkSync(join(root, 'secret.bin'), join(modelDir, 'link.bin'));
  symlinkSync(root, join(modelDir, 'up'));
  const modelPath = join(modelDir, 'm.onnx');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const ext = (location: string, entries: Record<string, string> = { offset: '4', length: '8' }) => model({
    nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }],
    inputs: [vi('x', 1, [2])], outputs: [vi('y')],
    initializers: [{ name: 'w', dims: [2], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: location }, ...Object.entries(entries).map(([key, value]) => ({ key, value }))] }],
  });
  const load = (location: string, entries?: Record<string, string>) => importOnnx(ext(location, entries), { externalData: nodeExternalDataResolver(modelPath) });

  it('reads a file beside the model, also through a path that normalizes inside the folder', async () => {
    for (const location of ['sub/w.bin', './sub/../sub/w.bin', 'sub\\w.bin']) {
      const m = await load(location);
      expect(Array.from(m.graph.initializers.w!.data as Float32Array), location).toEqual([1.5, -2]);
    }
  });

  it('refuses absolute paths, escapes, and symlinks that resolve outside the folder', async () => {
    await expect(load(join(root, 'secret.bin'))).rejects.toThrow(/is absolute/);
    await expect(load('sub/../../secret.bin')).rejects.toThrow(/leaves the model's folder/);
    await expect(load('C:\\weights.bin')).rejects.toThrow(/is absolute/);
    await expect(load('link.bin')).rejects.toThrow(/resolves outside the model's folder/);
    await expect(load('up/secret.bin')).rejects.toThrow(/resolves outside the model's folder/);
    for (const bad of ['link.bin', 'up/secret.bin', '../secret.bin']) await expect(load(bad)).rejects.toBeInstanceOf(ModelFormatError);
  });

  it('missing files, short files, directories and lengths that disagree with the dims are ModelFormatErrors', async () => {
    await expect(load('sub/none.bin')).rejects.toThrow(/cannot be read/);
    await expect(load('sub/w.bin', { offset: '12', length: '8' })).rejects.toThrow(/shorter than the model says/);
    await expect(load('sub', { length: '8' })).rejects.toThrow(ModelFormatError);
    // The declared length is checked against the dims before anything is read.
    await expect(load('sub/w.bin', { length: '1000000000000' })).rejects.toThrow(/declares 1000000000000 external bytes but its dims need 8/);
    await expect(load('sub/w.bin', { offset: '-4' })).rejects.toThrow(/invalid external offset/);
    // Without a length, exactly the bytes the dims need are read.
    const m = await load('sub/w.bin', { offset: '8' });
    expect(Array.from(m.graph.initializers.w!.data as Float32Array)).toEqual([-2, 0]);
  });
});

describe('never a raw exception or a hang', () => {
  it('maxTensorElements bounds every initializer', async () => {
    const m = model({
      nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['y'] }], inputs: [vi('x', 1, [1])], outputs: [vi('y')],
      initializers: [{ name: 'w', dims: [10, 10], dataType: 1, rawData: new Uint8Array(400) }],
    });
    await expect(importOnnx(m, { maxTensorElements: 99 })).rejects.toBeInstanceOf(AllocationLimitError);
    await expect(importOnnx(m, { maxTensorElements: 100 })).resolves.toBeDefined();
  });

  it('a thousand mutations of a real model each load or fail with an EdgeKitError', async () => {
    let s = 12345;
    const rand = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n);
    const kinds = { loaded: 0, failed: 0 };
    for (let k = 0; k < 1000; k++) {
      const bytes = Uint8Array.from(digits);
      const edits = 1 + rand(4);
      for (let e = 0; e < edits; e++) bytes[rand(bytes.length)] = rand(256);
      const cut = k % 5 === 0 ? bytes.subarray(0, rand(bytes.length)) : bytes;
      const err = await importOnnx(cut).then(() => undefined, (x: unknown) => x);
      if (err === undefined) kinds.loaded++;
      else {
        expect(err, `mutation ${k}: ${(err as Error)?.stack}`).toBeInstanceOf(EdgeKitError);
        kinds.failed++;
      }
    }
    // Most single-byte edits land in weights (which still load); the rest must all have been typed errors.
    expect(kinds.loaded + kinds.failed).toBe(1000);
    expect(kinds.failed).toBeGreaterThan(50);
  });
});
