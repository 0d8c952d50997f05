import onnx from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { runNodeCpu } from '../../runtime/backends/cpu/executor.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { OP_SCHEMAS, type InferInput, type InferredOutput } from '../../runtime/ir/ops/index.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose, type CloseOptions } from './compare.js';

/**
 * Runs one ONNX node in onnxruntime-node: builds a one-node model with onnx-proto (inputs fed at run time, or
 * baked in as initializers where a test asks for constants), runs it, and returns the outputs as HostTensors.
 * This is the reference the math kernels are compared against. The second half runs the same node through
 * EdgeKit (schema inference and CPU kernel) and compares.
 */

const P = onnx.onnx;
const DATA_TYPES: Partial<Record<DType, number>> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13, bfloat16: 16,
};

function dataType(d: DType): number {
  const t = DATA_TYPES[d];
  if (t === undefined) throw new Error(`ort-single-node: no ONNX data type for ${d}`);
  return t;
}

export function tensorProto(name: string, t: HostTensor): onnx.onnx.ITensorProto {
  const base = { name, dims: t.shape, dataType: dataType(t.dtype) };
  if (t.dtype === 'string') return { ...base, stringData: (t.data as string[]).map((s) => new TextEncoder().encode(s)) };
  const d = t.data as Exclude<HostTensor['data'], string[]>;
  return { ...base, rawData: new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength)) };
}

function attributeProto(name: string, a: Attr): onnx.onnx.IAttributeProto {
  const T = P.AttributeProto.AttributeType;
  switch (a.type) {
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'int': return { name, type: T.INT, i: a.value };
    case 'string': return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'floats': return { name, type: T.FLOATS, floats: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value };
    case 'strings': return { name, type: T.STRINGS, strings: a.value.map((s) => new TextEncoder().encode(s)) };
    case 'tensor': return { name, type: T.TENSOR, t: tensorProto(name, a.value) };
    default: throw new Error(`ort-single-node: attribute type ${a.type} not supported`);
  }
}

export interface OrtNodeOptions {
  /** Default-domain opset the model imports (default 21). */
  opset?: number;
  /** Number of node outputs (default 1). */
  outputs?: number;
  /** Indices of inputs to bake into the model as initializers instead of feeding them. */
  constants?: number[];
}

/** Encodes a one-node model; undefined inputs become omitted ('') optional inputs. */
export function singleNodeModel(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], opts: OrtNodeOptions = {}): Uint8Array {
  const names = inputs.map((t, i) => (t ? `in${i}` : ''));
  const outNames = Array.from({ length: opts.outputs ?? 1 }, (_, i) => `out${i}`);
  const constants = new Set(opts.constants ?? []);
  const graphInputs: onnx.onnx.IValueInfoProto[] = [];
  const initializers: onnx.onnx.ITensorProto[] = [];
  inputs.forEach((t, i) => {
    if (!t) return;
    if (constants.has(i)) initializers.push(tensorProto(names[i]!, t));
    else {
      graphInputs.push({
        name: names[i],
        type: { tensorType: { elemType: dataType(t.dtype), shape: { dim: t.shape.map((d) => ({ dimValue: d })) } } },
      });
    }
  });
  const model: onnx.onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: opts.opset ?? 21 }],
    producerName: 'edgekit-tests',
    graph: {
      name: `single_${op}`,
      node: [{ opType: op, domain: '', name: 'n0', input: names, output: outNames, attribute: Object.entries(attrs).map(([k, a]) => attributeProto(k, a)) }],
      input: graphInputs,
      initializer: initializers,
      output: outNames.map((name) => ({ name })),
    },
  };
  return P.ModelProto.encode(model).finish();
}

/** Runs one node in onnxruntime-node and returns its outputs in order. */
export async function runOrtNode(
  op: string,
  attrs: Record<string, Attr>,
  inputs: (HostTensor | undefined)[],
  opts: OrtNodeOptions = {},
): Promise<HostTensor[]> {
  const bytes = singleNodeModel(op, attrs, inputs, opts);
  const session = await ort.InferenceSession.create(bytes);
  try {
    const constants = new Set(opts.constants ?? []);
    const feeds: Record<string, ort.Tensor> = {};
    inputs.forEach((t, i) => {
      if (!t || constants.has(i)) return;
      feeds[`in${i}`] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);
    });
    const out = await session.run(feeds);
    return session.outputNames.map((name) => {
      const t = out[name]!;
      return { dtype: t.type as DType, shape: [...t.dims], data: t.data as HostTensor['data'] };
    });
  } finally {
    await session.release();
  }
}

// ---- the same node on EdgeKit: shape inference and the CPU kernel ----

/** An IR node for `op` with inputs in0.. ('' where undefined) and outputs out0... */
export function irNode(op: string, attrs: Record<string, Attr>, inputs: readonly unknown[], outputs = 1): Node {
  return {
    name: `n_${op}`,
    op,
    domain: '',
    inputs: inputs.map((t, i) => (t ? `in${i}` : '')),
    outputs: Array.from({ length: outputs }, (_, i) => `out${i}`),
    attrs,
  };
}

/** Runs the op's schema inference on (possibly symbolic) input types; fresh symbols are named s0, s1... */
export function inferNode(op: string, attrs: Record<string, Attr>, inputs: (InferInput | undefined)[], outputs = 1): InferredOutput[] {
  const schema = OP_SCHEMAS[op];
  if (!schema) throw new Error(`no schema for ${op}`);
  let k = 0;
  return schema.infer({ node: irNode(op, attrs, inputs, outputs), inputs, symbol: () => `s${k++}` });
}

export function runCpuNode(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], outputs = 1): HostTensor[] {
  return runNodeCpu(irNode(op, attrs, inputs, outputs), inputs, { maxElements: DEFAULT_MAX_ELEMENTS });
}

export interface CompareOptions extends OrtNodeOptions, CloseOptions {}

/**
 * Runs one node on EdgeKit's CPU backend and in onnxruntime-node and compares every output (dtype, shape, values
 * with allClose: |a - e| <= atol + rtol |e|, NaN matching NaN). Returns the mismatches as readable lines, [] when
 * all agree; the CPU shapes are also checked against the op's own shape inference on the same inputs.
 */
export async function compareWithOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], opts: CompareOptions = {}): Promise<string[]> {
  const outputs = opts.outputs ?? 1;
  const expected = await runOrtNode(op, attrs, inputs, opts);
  const actual = runCpuNode(op, attrs, inputs, outputs);
  const inferred = inferNode(op, attrs, inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape], value: t }), outputs);
  const problems: string[] = [];
  expected.forEach((e, i) => {
    const a = actual[i];
    if (!a) return problems.push(`output ${i}: missing from the CPU kernel`);
    const inf = inferred[i];
    if (!inf || inf.dtype !== a.dtype || JSON.stringify(inf.shape) !== JSON.stringify(a.shape)) {
      problems.push(`output ${i}: inferred ${inf?.dtype}[${inf?.shape}] but the kernel produced ${a.dtype}[${a.shape}]`);
    }
    const r = allClose(a, e, { rtol: opts.rtol ?? 1e-5, atol: opts.atol ?? 1e-6 });
    if (!r.ok) problems.push(`output ${i}: ${r.message}`);
  });
  return problems;
}
