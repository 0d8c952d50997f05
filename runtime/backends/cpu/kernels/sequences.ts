import { DTypeError, InternalError, InvalidArgumentError, ShapeError } from '../../../errors.js';
import { toNumbers } from '../../../ir/dtype.js';
import type { Node } from '../../../ir/graph.js';
import { concatFromSequenceAxis, positionError, sequenceDtype, sequenceMapBody, splitToSequenceAxis } from '../../../ir/ops/sequences.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { isSequenceValue, isTensorValue, type HostValue } from '../../../ir/value.js';
import { CPU_KERNELS } from './index.js';
import type { CpuKernelContext } from '../kernel.js';

/**
 * CPU kernels for the sequence and optional ops (ONNX operator docs; values as in ir/value.ts: a sequence is a
 * HostTensor[], an empty optional null). They take and return HostValues, so they live in their own table
 * (SEQUENCE_KERNELS) that the graph executor consults before the tensor kernels. SplitToSequence and
 * ConcatFromSequence run the Split/Concat/Unsqueeze kernels, SequenceMap its body through ctx.runBody.
 * Sequences are never mutated: every op returns a new array holding the same element tensors.
 */
export type CpuValueKernel = (inputs: (HostValue | undefined)[], node: Node, ctx: CpuKernelContext) => HostValue[];

function sequenceIn(v: HostValue | undefined, node: Node, what: string): HostTensor[] {
  if (!isSequenceValue(v)) throw new DTypeError(`${node.op} input '${what}' must be a sequence, got ${v === null ? 'an empty optional' : 'a tensor'}.`);
  return v;
}

function tensorIn(v: HostValue | undefined, node: Node, what: string): HostTensor {
  if (!isTensorValue(v)) throw new DTypeError(`${node.op} input '${what}' must be a tensor, got ${v === null ? 'an empty optional' : v === undefined ? 'nothing' : 'a sequence'}.`);
  return v;
}

/** A position input's value, checked against [lo, hi] and made non-negative (negative counts from the back). */
function positionIn(v: HostValue | undefined, node: Node, n: number, lo: number, hi: number): number {
  const t = tensorIn(v, node, 'position');
  if (t.data.length !== 1) throw new ShapeError(`${node.op}'s position must be a scalar, got shape [${t.shape.join(', ')}].`);
  const p = Number(t.data[0]);
  if (p < lo || p > hi) throw positionError(node.op, p, n, lo, hi);
  return p < 0 ? p + n : p;
}

function checkElement(s: HostTensor[], t: HostTensor, node: Node): void {
  if (s.length && s[0]!.dtype !== t.dtype) throw new DTypeError(`${node.op}: a sequence of ${s[0]!.dtype} cannot take a ${t.dtype} tensor.`);
}

/** Runs a tensor op on the CPU reference as a helper of a sequence op (same node name, for errors). */
function tensorOp(node: Node, op: string, inputs: (HostTensor | undefined)[], outputs: number, attrs: Node['attrs'], ctx: CpuKernelContext): HostTensor[] {
  const helper: Node = { name: node.name, op, domain: '', inputs: inputs.map((_, i) => `in${i}`), outputs: Array.from({ length: outputs }, (_, i) => `out${i}`), attrs };
  return CPU_KERNELS[op]!(inputs, helper, { maxElements: ctx.maxElements });
}

const int64s = (values: number[]) => hostTensor('int64', [values.length], BigInt64Array.from(values.map(BigInt)));

export const SEQUENCE_KERNELS: Readonly<Record<string, CpuValueKernel>> = {
  SequenceEmpty: (_, node) => [[]],

  SequenceConstruct: (inputs, node) => {
    const ts = inputs.map((v, i) => tensorIn(v, node, `input ${i}`));
    const s: HostTensor[] = [];
    for (const t of ts) {
      checkElement(s, t, node);
      s.push(t);
    }
    return [s];
  },

  SequenceInsert: ([seqIn, t, pos], node) => {
    const s = sequenceIn(seqIn, node, 'input_sequence');
    const x = tensorIn(t, node, 'tensor');
    checkElement(s, x, node);
    const at = pos ? positionIn(pos, node, s.length, -s.length, s.length) : s.length;
    return [[...s.slice(0, at), x, ...s.slice(at)]];
  },

  SequenceAt: ([seqIn, pos], node) => {
    const s = sequenceIn(seqIn, node, 'input_sequence');
    return [s[positionIn(pos, node, s.length, -s.length, s.length - 1)]!];
  },

  SequenceErase: ([seqIn, pos], node) => {
    const s = sequenceIn(seqIn, node, 'input_sequence');
    if (!pos && !s.length) throw new InvalidArgumentError(`${node.op}: cannot erase from an empty sequence.`);
    const at = pos ? positionIn(pos, node, s.length, -s.length, s.length - 1) : s.length - 1;
    return [s.filter((_, i) => i !== at)];
  },

  SequenceLength: ([seqIn], node) => [hostTensor('int64', [], BigInt64Array.of(BigInt(sequenceIn(seqIn, node, 'input_sequence').length)))],

  // SplitToSequence-11: `split` a scalar (chunks of that size, the last one smaller), a list of sizes, or absent
  // (chunks of 1, the axis dropped unless keepdims).
  SplitToSequence: ([xIn, splitIn], node, ctx) => {
    const x = tensorIn(xIn, node, 'input');
    if (x.shape.length === 0) throw new ShapeError('SplitToSequence cannot split a scalar.');
    const { axis, keepdims } = splitToSequenceAxis(node, x.shape.length);
    const len = x.shape[axis]!;
    let sizes: number[];
    const split = splitIn ? tensorIn(splitIn, node, 'split') : undefined;
    if (!split) sizes = new Array<number>(len).fill(1);
    else {
      const v = Array.from(toNumbers(split.dtype, split.data));
      if (split.shape.length === 0) {
        const c = v[0]!;
        if (!(c > 0)) throw new InvalidArgumentError(`SplitToSequence's split must be positive, got ${c}.`);
        sizes = Array.from({ length: Math.ceil(len / c) }, (_, i) => Math.min(c, len - i * c));
      } else sizes = v;
      if (sizes.some((s) => s < 0) || sizes.reduce((a, b) => a + b, 0) !== len) {
        throw new ShapeError(`SplitToSequence's split [${sizes.join(', ')}] must add up to the axis length ${len}.`);
      }
    }
    if (sizes.length === 0) return [[]];
    const parts = tensorOp(node, 'Split', [x, int64s(sizes)], sizes.length, { axis: { type: 'int', value: axis } }, ctx);
    if (split || keepdims) return [parts];
    return [parts.map((p) => tensorOp(node, 'Squeeze', [p, int64s([axis])], 1, {}, ctx)[0]!)];
  },

  // ConcatFromSequence-11: Concat along `axis`, or with new_axis=1 a stack (each element unsqueezed at `axis`).
  ConcatFromSequence: ([seqIn], node, ctx) => {
    const s = sequenceIn(seqIn, node, 'input_sequence');
    if (!s.length) throw new InvalidArgumentError('ConcatFromSequence needs at least one element; the sequence is empty.');
    const { axis, newAxis } = concatFromSequenceAxis(node, s[0]!.shape.length);
    const parts = newAxis ? s.map((t) => tensorOp(node, 'Unsqueeze', [t, int64s([axis])], 1, {}, ctx)[0]!) : s;
    return tensorOp(node, 'Concat', parts, 1, { axis: { type: 'int', value: axis } }, ctx);
  },

  // SequenceMap-17: the body runs once per element of the first input; sequence inputs give their element at that
  // position (every one must be as long as the first), tensor inputs are passed whole.
  SequenceMap: (inputs, node, ctx) => {
    const body = sequenceMapBody(node);
    if (!ctx.runBody) throw new InternalError('SequenceMap ran without a graph executor to run its body.');
    const n = sequenceIn(inputs[0], node, 'input_sequence').length;
    inputs.forEach((v, i) => {
      if (isSequenceValue(v) && v.length !== n) throw new ShapeError(`SequenceMap input ${i} has ${v.length} element(s); input 0 has ${n}.`);
      if (!isSequenceValue(v)) tensorIn(v, node, `input ${i}`);
    });
    const outs: HostTensor[][] = body.outputs.map(() => []);
    for (let k = 0; k < n; k++) {
      const feeds: Record<string, HostTensor> = {};
      inputs.forEach((v, i) => (feeds[body.inputs[i]!.name] = isSequenceValue(v) ? v[k]! : (v as HostTensor)));
      ctx.runBody(body, feeds).forEach((t, j) => outs[j]!.push(t));
    }
    return outs;
  },

  Optional: ([x], node) => {
    if (x === undefined) return [null];
    if (x === null) throw new DTypeError('Optional takes a tensor or a sequence, not an optional.');
    return [x];
  },

  // OptionalHasElement-18: false for an empty optional or no input at all; true for anything else.
  OptionalHasElement: ([x]) => [hostTensor('bool', [], Uint8Array.of(x === undefined || x === null ? 0 : 1))],

  OptionalGetElement: ([x], node) => {
    if (x === undefined || x === null) throw new InvalidArgumentError(`OptionalGetElement: the optional '${node.inputs[0]}' is empty.`, { node: node.name });
    return [x];
  },
};
