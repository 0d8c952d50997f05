import { InternalError } from '../../errors.js';
import { toNumbers, type DType, type TensorStorage } from '../../ir/dtype.js';
import type { Node } from '../../ir/graph.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { isConcrete } from '../../ir/shape.js';
import { hostTensor, sizeOf, tensorFromNumbers, type HostTensor } from '../../ir/tensor.js';
import type { CpuKernelContext } from './kernel.js';

/**
 * The bridge between the math op schemas and their CPU kernels: a kernel sizes its outputs by running the op's
 * own `infer` on the concrete input shapes (with every input's value known), so inference and execution cannot
 * disagree. Any ShapeError/DTypeError `infer` throws for invalid inputs surfaces from the kernel unchanged.
 */
export interface ConcreteOutput {
  dtype: DType;
  shape: number[];
}

export function inferConcrete(schema: OpSchema | undefined, node: Node, inputs: readonly (HostTensor | undefined)[], ctx: CpuKernelContext): ConcreteOutput[] {
  if (!schema) throw new InternalError(`No schema for ${node.op} in the math op families.`);
  const outs = schema.infer({
    node,
    inputs: inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape], value: t }),
    symbol: (hint) => {
      throw new InternalError(`${node.op} inference asked for a symbol ('${hint}') although every input value is known.`);
    },
  });
  return outs.map((o, i) => {
    if (!isConcrete(o.shape)) {
      throw new InternalError(`${node.op} inference left output ${i} with shape [${o.shape?.join(', ') ?? '?'}] on concrete inputs.`);
    }
    // Checks the allocation-bomb guard before any kernel allocates scratch space of this size.
    sizeOf(o.shape, ctx.maxElements);
    return { dtype: o.dtype, shape: o.shape };
  });
}

/** A tensor from float64 results, rounded/truncated into `dtype` with Cast semantics. */
export function fromF64(o: ConcreteOutput, values: ArrayLike<number>): HostTensor {
  return tensorFromNumbers(o.dtype, o.shape, values);
}

/** The values of a tensor as float64 (float16 decoded; int64 exact below 2^53). */
export function toF64(t: HostTensor): Float64Array {
  return toNumbers(t.dtype, t.data);
}

export function withStorage(o: ConcreteOutput, data: TensorStorage): HostTensor {
  return hostTensor(o.dtype, o.shape, data);
}
