import { ShapeError } from '../../../../errors.js';
import { sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../../program.js';
import { computeTypeOf } from '../../storage.js';
import { convert } from '../../wgsl/builder.js';
import { RowLayout, rowView } from '../rows.js';
import { floatOnly } from './common.js';

/**
 * SumToShape(X, shape) -> Y (runtime/train/ops/sum-to-shape.ts): the adjoint of broadcasting `shape` to X's shape,
 * i.e. a ReduceSum over the axes broadcasting stretched (leading axes X has beyond the target's rank, and axes
 * where the target has 1 and X more), on the row skeleton: the kept axes are exactly Y's non-1 dims, so the row
 * index is Y's flat index. The shape input is read from Y's planned shape, never uploaded.
 */

function stretchedAxes(x: readonly number[], target: readonly number[]): number[] {
  const lead = x.length - target.length;
  if (lead < 0) throw new ShapeError(`SumToShape target [${target.join(', ')}] has a higher rank than X [${x.join(', ')}].`);
  const axes = Array.from({ length: lead }, (_, i) => i);
  target.forEach((d, i) => {
    const xd = x[lead + i]!;
    if (d === xd) return;
    if (d !== 1) throw new ShapeError(`SumToShape: [${target.join(', ')}] does not broadcast to X's shape [${x.join(', ')}].`);
    axes.push(lead + i);
  });
  return axes;
}

function program(x: GpuTensorInfo, y: GpuTensorInfo, axes: number[]): ProgramSpec {
  const layout = new RowLayout(rowView(x.shape, axes));
  return {
    key: `train:sum-to-shape:${layout.key}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: layout.uniforms(),
    workgroupSize: layout.workgroupSize,
    source(b) {
      const rc = layout.code(b);
      const lines = [...rc.head(), ...rc.reduce('s', 'f32', '0.0', (a, v) => `${a} + ${v}`, (off) => b.loadAs('x', off, 'f32'))];
      lines.push(rc.once(b.store('y', 'row', convert(computeTypeOf(y.storage), 'f32', 's'))));
      b.main(lines.join('\n  '));
    },
    run() {
      return { workgroups: layout.workgroups(), uniforms: layout.values() };
    },
  };
}

const sumToShape: GpuKernel = {
  hostInputs: [1],
  plan(node, [x], [y]) {
    floatOnly(node.op, 'X', x);
    const axes = stretchedAxes(x!.shape, y!.shape);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    return { calls: [{ program: program(x!, y!, axes), tensors: [{ input: 0 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { SumToShape: sumToShape };
