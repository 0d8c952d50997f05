import { DTypeError, InvalidArgumentError } from '../runtime/errors.js';
import type { ValueInfo } from '../runtime/ir/graph.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { describeKind, kindOf, type HostValue } from '../runtime/ir/value.js';
import type { GpuFeed } from '../runtime/backends/webgpu/gpu-session.js';
import { Tensor } from './tensor.js';

/**
 * Inputs and outputs that are not tensors (ONNX sequence and optional types, runtime/ir/value.ts) at the public API:
 *  - a sequence is an array of Tensors (all of the sequence's element type; shapes may differ), possibly empty;
 *  - an optional is what it holds (a Tensor or an array) or `null` when empty.
 * `session.run` takes and returns them in those forms; `inputMetadata`/`outputMetadata` mark them `isTensor: false`
 * with their `kind`. onnxruntime-web's InferenceSession has no such values; the forms follow its OnnxValue where it has.
 */
export type SessionValue = Tensor | Tensor[] | null;

/** One fed tensor as the backends take it: on the host, or (WebGPU) a buffer it already lives in. */
type FedTensor = HostTensor | GpuFeed;
/** A fed value: a tensor, a sequence of tensors, or null (an empty optional). */
export type FedValue = FedTensor | FedTensor[] | null;

const what = (v: unknown) => (v === null ? 'null (an empty optional)' : Array.isArray(v) ? 'an array (a sequence)' : v instanceof Tensor ? 'a Tensor' : typeof v);

/**
 * Checks a feed for an input that is a sequence or optional, and returns it in backend form. Tensor inputs are
 * checked by the caller (feeds.ts); `tensor` checks one tensor (dtype, and shape where `checkShape`).
 */
export function nonTensorFeed(info: ValueInfo, v: unknown, tensor: (t: Tensor, where: string, checkShape: boolean) => FedTensor): FedValue {
  const kind = kindOf(info);
  const expected = describeKind(kind, info.dtype);
  if (v === null) {
    if (kind === 'optional-tensor' || kind === 'optional-sequence') return null;
    throw new InvalidArgumentError(`Input '${info.name}' is ${expected}; null (an empty optional) is accepted only for optional inputs.`, { input: info.name, kind });
  }
  if (Array.isArray(v)) {
    if (kind !== 'sequence' && kind !== 'optional-sequence') {
      throw new InvalidArgumentError(`Input '${info.name}' is ${expected}; it cannot be fed an array (arrays feed sequence inputs).`, { input: info.name, kind });
    }
    return v.map((e, i) => {
      if (!(e instanceof Tensor)) throw new InvalidArgumentError(`Input '${info.name}' is a sequence: element ${i} must be a Tensor, got ${what(e)}.`, { input: info.name, element: i });
      return tensor(e, `Input '${info.name}' element ${i}`, false);
    });
  }
  if (v instanceof Tensor) {
    if (kind !== 'optional-tensor') {
      throw new InvalidArgumentError(`Input '${info.name}' is ${expected}; feed it ${kind === 'sequence' || kind === 'optional-sequence' ? 'an array of Tensors' : 'a Tensor'}, not a Tensor.`, {
        input: info.name,
        kind,
      });
    }
    return tensor(v, `Input '${info.name}'`, true);
  }
  throw new InvalidArgumentError(`Input '${info.name}' is ${expected}; got ${what(v)}.`, { input: info.name, kind });
}

/** The dtype check every element of a sequence (or an optional's tensor) gets. */
export function checkElementType(info: ValueInfo, t: { dtype: string }, where: string): void {
  if (t.dtype !== info.dtype) {
    throw new DTypeError(`${where} must be ${info.dtype} (${describeKind(kindOf(info), info.dtype)}), got ${t.dtype}.`, { input: info.name, expected: info.dtype, got: t.dtype });
  }
}

/** A backend's output value in public form. */
export function toSessionValue(v: HostValue, fromHost: (t: HostTensor) => Tensor): SessionValue {
  if (v === null) return null;
  return Array.isArray(v) ? v.map(fromHost) : fromHost(v);
}
