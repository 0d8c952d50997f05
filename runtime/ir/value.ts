import type { ValueKind } from './graph.js';
import type { HostTensor } from './tensor.js';

/**
 * Values beyond tensors (ONNX sequence and optional types, ir/graph.ts ValueKind) at run time, on the host:
 *  - a tensor is a HostTensor, as everywhere else;
 *  - a sequence is a plain array of HostTensor (all of one dtype, shapes may differ), possibly empty;
 *  - an optional that holds something is that tensor or sequence itself; an empty optional is `null`.
 * The CPU executor keeps these in its environment; only the sequence/optional kernels (backends/cpu/kernels/
 * sequences.ts) look inside them, control flow and Identity pass them along untouched.
 */
export type HostValue = HostTensor | HostTensor[] | null;

export const isSequenceValue = (v: HostValue | undefined): v is HostTensor[] => Array.isArray(v);
export const isTensorValue = (v: HostValue | undefined): v is HostTensor => !!v && !Array.isArray(v);

export const kindOf = (v: { kind?: ValueKind }): ValueKind => v.kind ?? 'tensor';
export const isOptionalKind = (k: ValueKind | undefined): boolean => k === 'optional-tensor' || k === 'optional-sequence';
/** The kind an optional holds (a non-optional kind is returned as is). */
export const unwrapOptional = (k: ValueKind | undefined): 'tensor' | 'sequence' => (k === 'sequence' || k === 'optional-sequence' ? 'sequence' : 'tensor');
/** The optional of a tensor or sequence kind (an optional stays what it is). */
export const optionalOf = (k: ValueKind | undefined): ValueKind => (unwrapOptional(k) === 'sequence' ? 'optional-sequence' : 'optional-tensor');
/** `{ kind }` for non-tensor kinds, `{}` for tensors: what the IR stores (a tensor's kind is left out). */
export const kindField = (k: ValueKind | undefined): { kind?: ValueKind } => (k && k !== 'tensor' ? { kind: k } : {});

/** 'sequence(float32)', 'optional(tensor(int64))'... for error messages. */
export function describeKind(k: ValueKind | undefined, dtype: string): string {
  switch (k ?? 'tensor') {
    case 'tensor': return `tensor(${dtype})`;
    case 'sequence': return `sequence(tensor(${dtype}))`;
    case 'optional-tensor': return `optional(tensor(${dtype}))`;
    default: return `optional(sequence(tensor(${dtype})))`;
  }
}
