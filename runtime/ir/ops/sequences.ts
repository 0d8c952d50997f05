import { DTypeError, InternalError, InvalidArgumentError, InvalidGraphError, ShapeError } from '../../errors.js';
import { isInteger, type DType } from '../dtype.js';
import { attrInt, type Dim, type Graph, type Node, type ValueKind } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import { describeKind, kindField, kindOf, optionalOf, unwrapOptional } from '../value.js';
import { dataInput } from './data-dims.js';
import { castTarget } from './data-onnx-types.js';
import { defineOps, type InferContext, type InferInput, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Sequence and optional ops (ONNX SequenceEmpty/Construct/Insert/At/Erase/Length-11, SplitToSequence-11,
 * ConcatFromSequence-11, SequenceMap-17, Optional-15, OptionalHasElement/OptionalGetElement-18). Their values are
 * not tensors (graph.ts ValueKind): a sequence value's dtype is its elements' type and its shape the dims every
 * element shares, dims that differ between elements becoming symbols. Every other op takes tensors only
 * (infer.ts checks that with NON_TENSOR_OPS).
 */

/** Ops that may read or produce sequences and optionals; Identity and control flow pass them through. */
export const NON_TENSOR_OPS: ReadonlySet<string> = new Set([
  'SequenceEmpty', 'SequenceConstruct', 'SequenceInsert', 'SequenceAt', 'SequenceErase', 'SequenceLength',
  'SplitToSequence', 'ConcatFromSequence', 'SequenceMap', 'Optional', 'OptionalHasElement', 'OptionalGetElement',
  'Identity', 'If', 'Loop', 'Scan',
]);

const seq = (dtype: DType, shape?: Dim[]): InferredOutput => ({ dtype, ...(shape ? { shape } : {}), kind: 'sequence' });

/** The element type two sequence elements share: one dtype; dims that differ become symbols, ranks that differ unknown. */
export function mergeElement(ctx: InferContext, a: { dtype: DType; shape?: Dim[] }, b: { dtype: DType; shape?: Dim[] }, what: string): { dtype: DType; shape?: Dim[] } {
  if (a.dtype !== b.dtype) throw new DTypeError(`${what}: a sequence holds one element type, got ${a.dtype} and ${b.dtype}.`);
  if (!a.shape || !b.shape || a.shape.length !== b.shape.length) return { dtype: a.dtype };
  return { dtype: a.dtype, shape: a.shape.map((d, i) => (d === b.shape![i] ? d : ctx.symbol(`${ctx.node.name}_elem${i}`))) };
}

function want(ctx: InferContext, i: number, what: string, kinds: ValueKind[]): InferInput {
  const x = dataInput(ctx, i, what);
  const k = kindOf(x);
  if (!kinds.includes(k)) {
    throw new DTypeError(`${ctx.node.op} input ${i} (${what}) must be ${kinds.map((c) => describeKind(c, 'T')).join(' or ')}, got ${describeKind(k, x.dtype)}.`, {
      input: i,
      kind: k,
    });
  }
  return x;
}

/** A position input: an int32/int64 scalar (or one-element tensor, as onnxruntime accepts). */
function position(ctx: InferContext, i: number): void {
  const p = ctx.inputs[i];
  if (!p) return;
  if (p.kind && p.kind !== 'tensor') throw new DTypeError(`${ctx.node.op}'s position must be a tensor, got ${describeKind(p.kind, p.dtype)}.`);
  if (p.dtype !== 'int32' && p.dtype !== 'int64') throw new DTypeError(`${ctx.node.op}'s position must be int32 or int64, got ${p.dtype}.`);
  if (p.shape && p.shape.some((d) => d !== 1)) throw new ShapeError(`${ctx.node.op}'s position must be a scalar, got shape [${p.shape.join(', ')}].`);
}

const sequenceEmpty: OpSchema = {
  op: 'SequenceEmpty',
  inputs: [0, 0],
  outputs: [1, 1],
  infer: (ctx) => [seq(sequenceDtype(ctx.node))],
};

/**
 * SequenceEmpty's element type: the `dtype` attribute, an ONNX DataType code as in the file (a dtype name is accepted
 * too, for graphs the lowering builds), float32 when absent. Read like Cast's `to`.
 */
export function sequenceDtype(node: Node): DType {
  const a = node.attrs.dtype;
  if (!a) return 'float32';
  return castTarget({ ...node, attrs: { to: a } });
}

const sequenceConstruct: OpSchema = {
  op: 'SequenceConstruct',
  inputs: [1, Infinity],
  outputs: [1, 1],
  infer(ctx) {
    let elem: { dtype: DType; shape?: Dim[] } = want(ctx, 0, 'input 0', ['tensor']);
    for (let i = 1; i < ctx.inputs.length; i++) elem = mergeElement(ctx, elem, want(ctx, i, `input ${i}`, ['tensor']), 'SequenceConstruct');
    return [seq(elem.dtype, elem.shape && [...elem.shape])];
  },
};

const sequenceInsert: OpSchema = {
  op: 'SequenceInsert',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const s = want(ctx, 0, 'input_sequence', ['sequence']);
    const t = want(ctx, 1, 'tensor', ['tensor']);
    position(ctx, 2);
    // A sequence whose element shape is unknown (SequenceEmpty's) takes the tensor's: the first insert decides.
    const fromEmpty = !s.shape;
    const elem = fromEmpty ? { dtype: t.dtype, shape: t.shape } : mergeElement(ctx, s, t, 'SequenceInsert');
    if (fromEmpty && s.dtype !== t.dtype) throw new DTypeError(`SequenceInsert: a sequence of ${s.dtype} cannot take a ${t.dtype} tensor.`);
    return [seq(elem.dtype, elem.shape && [...elem.shape])];
  },
};

const sequenceAt: OpSchema = {
  op: 'SequenceAt',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const s = want(ctx, 0, 'input_sequence', ['sequence']);
    dataInput(ctx, 1, 'position');
    position(ctx, 1);
    return [{ dtype: s.dtype, ...(s.shape ? { shape: [...s.shape] } : {}) }];
  },
};

const sequenceErase: OpSchema = {
  op: 'SequenceErase',
  inputs: [1, 2],
  outputs: [1, 1],
  infer(ctx) {
    const s = want(ctx, 0, 'input_sequence', ['sequence']);
    position(ctx, 1);
    return [seq(s.dtype, s.shape && [...s.shape])];
  },
};

const sequenceLength: OpSchema = {
  op: 'SequenceLength',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    want(ctx, 0, 'input_sequence', ['sequence']);
    return [{ dtype: 'int64', shape: [] }];
  },
};

/** SplitToSequence-11 parameters: axis, keepdims (used only without `split`). */
export function splitToSequenceAxis(node: Node, rank: number): { axis: number; keepdims: boolean } {
  return { axis: normalizeAxis(attrInt(node, 'axis', 0), rank, 'SplitToSequence axis'), keepdims: attrInt(node, 'keepdims', 1) !== 0 };
}

const splitToSequence: OpSchema = {
  op: 'SplitToSequence',
  inputs: [1, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = want(ctx, 0, 'input', ['tensor']);
    const split = ctx.inputs[1];
    if (split && !isInteger(split.dtype)) throw new DTypeError(`SplitToSequence's split must be int32 or int64, got ${split.dtype}.`);
    if (split?.shape && split.shape.length > 1) throw new ShapeError(`SplitToSequence's split must be a scalar or 1-D, got rank ${split.shape.length}.`);
    if (!x.shape) return [seq(x.dtype)];
    if (x.shape.length === 0) throw new ShapeError('SplitToSequence cannot split a scalar.');
    const { axis, keepdims } = splitToSequenceAxis(ctx.node, x.shape.length);
    const dims = [...x.shape];
    if (!split) {
      if (keepdims) dims[axis] = 1;
      else dims.splice(axis, 1);
      return [seq(x.dtype, dims)];
    }
    const v = split.value;
    const sizes = v ? Array.from(v.data as ArrayLike<number | bigint>, Number) : undefined;
    const len = x.shape[axis]!;
    if (sizes && v!.shape.length === 1 && typeof len === 'number') {
      const total = sizes.reduce((a, b) => a + b, 0);
      if (sizes.some((s) => s < 0) || total !== len) throw new ShapeError(`SplitToSequence's split [${sizes.join(', ')}] must add up to the axis length ${len}.`);
    }
    if (sizes && sizes.length > 0 && sizes.every((s) => s === sizes[0]) && (v!.shape.length === 1 || (typeof len === 'number' && len % sizes[0]! === 0))) dims[axis] = sizes[0]!;
    else dims[axis] = ctx.symbol(`${ctx.node.name}_chunk`);
    return [seq(x.dtype, dims)];
  },
};

/** ConcatFromSequence-11 parameters: axis (required) and new_axis. */
export function concatFromSequenceAxis(node: Node, rank: number): { axis: number; newAxis: boolean } {
  const a = attrInt(node, 'axis');
  if (a === undefined) throw new InvalidGraphError(`ConcatFromSequence node '${node.name}' needs an axis attribute.`, { node: node.name });
  const newAxis = attrInt(node, 'new_axis', 0) !== 0;
  return { axis: normalizeAxis(a, newAxis ? rank + 1 : rank, 'ConcatFromSequence axis'), newAxis };
}

const concatFromSequence: OpSchema = {
  op: 'ConcatFromSequence',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const s = want(ctx, 0, 'input_sequence', ['sequence']);
    if (!s.shape) return [{ dtype: s.dtype }];
    const { axis, newAxis } = concatFromSequenceAxis(ctx.node, s.shape.length);
    if (!newAxis && s.shape.length === 0) throw new ShapeError('ConcatFromSequence cannot concatenate scalars without new_axis=1.');
    const dims = [...s.shape];
    // The number of elements is a run-time value.
    if (newAxis) dims.splice(axis, 0, ctx.symbol(`${ctx.node.name}_count`));
    else dims[axis] = ctx.symbol(`${ctx.node.name}_axis`);
    return [{ dtype: s.dtype, shape: dims }];
  },
};

/** SequenceMap's body attribute. */
export function sequenceMapBody(node: Node): Graph {
  const a = node.attrs.body;
  if (!a || a.type !== 'graph') throw new InvalidGraphError(`SequenceMap node '${node.name}' has no 'body' graph attribute.`, { node: node.name });
  const b = a.value;
  if (b.inputs.length !== node.inputs.length) {
    throw new InvalidGraphError(`SequenceMap node '${node.name}': its body takes ${b.inputs.length} input(s) but the node has ${node.inputs.length}.`, { node: node.name });
  }
  if (b.outputs.length !== node.outputs.length) {
    throw new InvalidGraphError(`SequenceMap node '${node.name}': its body gives ${b.outputs.length} output(s) but the node has ${node.outputs.length}.`, { node: node.name });
  }
  return b;
}

const sequenceMap: OpSchema = {
  op: 'SequenceMap',
  inputs: [1, Infinity],
  outputs: [1, Infinity],
  infer(ctx) {
    const b = sequenceMapBody(ctx.node);
    want(ctx, 0, 'input_sequence', ['sequence']);
    // The body sees one element of each sequence input and every tensor input whole.
    const ins = ctx.inputs.map((x, i): InferInput => {
      const v = want(ctx, i, `input ${i}`, ['sequence', 'tensor']);
      return { dtype: v.dtype, ...(v.shape ? { shape: [...v.shape] } : {}), ...(kindOf(v) === 'tensor' && v.value ? { value: v.value } : {}) };
    });
    if (!ctx.inferBody) throw new InternalError('SequenceMap bodies are inferred only with their outer scope.');
    return ctx.inferBody(b, ins).map((o, k) => {
      if (o.kind && o.kind !== 'tensor') throw new DTypeError(`SequenceMap body output ${k} must be a tensor, got ${describeKind(o.kind, o.dtype)}.`);
      return seq(o.dtype, o.shape && [...o.shape]);
    });
  },
};

const optional: OpSchema = {
  op: 'Optional',
  inputs: [0, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = ctx.inputs[0];
    if (x) {
      const k = kindOf(x);
      if (k !== 'tensor' && k !== 'sequence') throw new DTypeError(`Optional's input must be a tensor or a sequence, got ${describeKind(k, x.dtype)}.`);
      return [{ dtype: x.dtype, ...(x.shape ? { shape: [...x.shape] } : {}), kind: optionalOf(k) }];
    }
    const t = ctx.node.attrs.type;
    if (!t || t.type !== 'type') throw new InvalidGraphError(`Optional node '${ctx.node.name}' has neither an input nor a type attribute.`, { node: ctx.node.name });
    const k = t.value.kind ?? 'tensor';
    if (k !== 'tensor' && k !== 'sequence') throw new DTypeError(`Optional's type attribute must be a tensor or sequence type, got ${describeKind(k, t.value.dtype)}.`);
    return [{ dtype: t.value.dtype, ...(t.value.shape ? { shape: [...t.value.shape] } : {}), kind: optionalOf(k) }];
  },
};

const optionalHasElement: OpSchema = {
  op: 'OptionalHasElement',
  // OptionalHasElement-18 takes an optional, a tensor or a sequence, or no input at all (false).
  inputs: [0, 1],
  outputs: [1, 1],
  infer: () => [{ dtype: 'bool', shape: [] }],
};

const optionalGetElement: OpSchema = {
  op: 'OptionalGetElement',
  // OptionalGetElement-18 also takes a tensor or sequence, returned as it is.
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    return [{ dtype: x.dtype, ...(x.shape ? { shape: [...x.shape] } : {}), ...kindField(unwrapOptional(x.kind)) }];
  },
};

export const schemas: Record<string, OpSchema> = defineOps(
  sequenceEmpty, sequenceConstruct, sequenceInsert, sequenceAt, sequenceErase, sequenceLength,
  splitToSequence, concatFromSequence, sequenceMap, optional, optionalHasElement, optionalGetElement,
);

/** Used by InvalidArgumentError messages of the kernels. */
export const positionError = (op: string, p: number, n: number, lo: number, hi: number) =>
  new InvalidArgumentError(`${op}: position ${p} is out of range for a sequence of ${n} element(s) (valid: ${lo} to ${hi}).`, { position: p, length: n });
