import { runNodeCpu } from '../../cpu/executor.js';
import { toNumbers } from '../../../ir/dtype.js';
import { attrTensor } from '../../../ir/graph.js';
import type { HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf, gpuSupportsDType, storageFor } from '../storage.js';
import { copyProgram, gatherView } from './copy.js';

/**
 * Ops that create a tensor from values known when the plan is made: ConstantOfShape-21 (its shape input) and
 * Range-11 (start, limit, delta). Constant folding turns small ones into initializers; these kernels cover the
 * ones too large to keep in the model (a [batch, seq, 768] mask of zeros) and those whose inputs are fed or
 * computed at run time: the inputs are host inputs, so a plan is made per their values (graph inputs are baked by
 * value-inputs.ts; computed ones are read back at a stage boundary, see staged-plan.ts).
 */

const WORKGROUP = 64;

/** y[i] = value for every i: the fill value is a uniform of y's compute type (f16 storage converts from f32). */
export function fillProgram(y: GpuTensorInfo, value: number): ProgramSpec {
  const size = sizeOfShape(y.shape);
  const T = computeTypeOf(y.storage);
  const U = T === 'f16' ? 'f32' : T;
  return {
    key: 'fill',
    bindings: [{ name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'value', type: U }],
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  ${b.store('y', 'index', T === U ? 'u.value' : `${T}(u.value)`)}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WORKGROUP), uniforms: { size, value } };
    },
  };
}

const constantOfShape: GpuKernel = {
  hostInputs: [0],
  plan(node, _inputs, [y]) {
    if (!gpuSupportsDType(y!.dtype)) throw new GpuUnsupported(`ConstantOfShape of ${y!.dtype} has no WebGPU kernel`);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const v = attrTensor(node, 'value');
    const value = v ? Number(toNumbers(v.dtype, v.data)[0]) : 0;
    if (computeTypeOf(y!.storage) === 'i32' && (value < -(2 ** 31) || value >= 2 ** 31)) {
      throw new GpuUnsupported(`ConstantOfShape value ${value} does not fit the GPU's 32-bit integers`);
    }
    return { calls: [{ program: fillProgram(y!, value), tensors: [{ output: 0 }] }] };
  },
};

/**
 * Range: the spec defines each element by repeated addition (value += delta), which for float32 rounds after
 * every step, so element i is not start + i * delta and cannot be computed per invocation. All three inputs are
 * known at plan time, so the table is computed once then, uploaded with the plan's constants, and copied into the
 * output by each run.
 */
const range: GpuKernel = {
  hostInputs: [0, 1, 2],
  plan(node, [start, limit, delta], [y], env) {
    if (!gpuSupportsDType(y!.dtype)) throw new GpuUnsupported(`Range of ${y!.dtype} has no WebGPU kernel`);
    const n = y!.shape[0]!;
    if (n === 0) return { calls: [] };
    // The CPU reference computes the table, as constant folding would for a smaller one.
    const [table] = runNodeCpu(node, [start!.value!, limit!.value!, delta!.value!], { maxElements: env.maxElements }) as [HostTensor];
    const src: GpuTensorInfo = { dtype: table.dtype, shape: [n], storage: storageFor(table.dtype, env.f16, true) };
    return { calls: [{ program: copyProgram(src, y!, gatherView([n], stridesFor([n]))), tensors: [{ constant: 0 }, { output: 0 }] }], constants: [table] };
  },
};

export const kernels: Record<string, GpuKernel> = { ConstantOfShape: constantOfShape, Range: range };
