import { attrInt, attrString, type Node } from '../../../ir/graph.js';
import { blocksize, transposePerm } from '../../../ir/ops/movement.js';
import { sliceAxis, sliceSpec } from '../../../ir/ops/data-params.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramCall } from '../program.js';
import { constInts, copyProgram, gatherView, type CopyView } from './copy.js';
import { fillProgram } from './generate.js';
import { toNumbers } from '../../../ir/dtype.js';

/**
 * Data movement through the strided copy (copy.ts), ONNX opset 21 forms: Transpose, Concat, Split, Slice, Expand,
 * Tile, DepthToSpace, SpaceToDepth, and the ops that only reinterpret the shape (Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity, Dropout in inference). Output shapes come from the IR schemas; kernels only work out
 * strides. Parameters that shape the copy (Slice's starts, Tile's repeats...) must be constants.
 */

function one(x: GpuTensorInfo, y: GpuTensorInfo, view: CopyView): KernelPlan {
  if (sizeOfShape(y.shape) === 0) return { calls: [] };
  return { calls: [{ program: copyProgram(x, y, view), tensors: [{ input: 0 }, { output: 0 }] }] };
}

/** Same elements, new shape: a flat copy (the planner may later alias these instead). */
const reshapeLike = (hostInputs: number[]): GpuKernel => ({
  hostInputs,
  plan(_node, [x], [y]) {
    return one(x!, y!, gatherView([sizeOfShape(y!.shape)], [1]));
  },
});

const transpose: GpuKernel = {
  plan(node, [x], [y]) {
    const st = stridesFor(x!.shape);
    const perm = transposePerm(node, x!.shape.length);
    return one(x!, y!, gatherView(y!.shape, perm.map((p) => st[p]!)));
  },
};

/** Concat-13: one copy per input into its slab of the output (dispatches write disjoint ranges). */
const concat: GpuKernel = {
  plan(node, inputs, [y]) {
    const axis = normalizeAxis(attrInt(node, 'axis')!, y!.shape.length);
    const yst = stridesFor(y!.shape);
    const calls: ProgramCall[] = [];
    let at = 0;
    inputs.forEach((x, i) => {
      if (!x) return;
      if (sizeOfShape(x.shape) > 0) {
        const view: CopyView = { shape: x.shape, src: stridesFor(x.shape), dst: yst, srcBase: 0, dstBase: at * yst[axis]! };
        calls.push({ program: copyProgram(x, y!, view), tensors: [{ input: i }, { output: 0 }] });
      }
      at += x.shape[axis]!;
    });
    return { calls };
  },
};

/** Split-18: one copy per output from its slab of the input (sizes from the schema's output shapes). */
const split: GpuKernel = {
  hostInputs: [1],
  plan(node, [x], outputs) {
    const axis = normalizeAxis(attrInt(node, 'axis', 0), x!.shape.length);
    const st = stridesFor(x!.shape);
    const calls: ProgramCall[] = [];
    let at = 0;
    outputs.forEach((out, i) => {
      const y = out!;
      if (sizeOfShape(y.shape) > 0) calls.push({ program: copyProgram(x!, y, gatherView(y.shape, st, at * st[axis]!)), tensors: [{ input: 0 }, { output: i }] });
      at += y.shape[axis]!;
    });
    return { calls };
  },
};

/** Slice-13: start offset and step-scaled (possibly negative) strides. */
const slice: GpuKernel = {
  hostInputs: [1, 2, 3, 4],
  plan(node, [x, s, e, a, p], [y]) {
    const [starts, ends, axes, steps] = [s, e, a, p].map((t, i) => constInts(t, 'Slice', ['starts', 'ends', 'axes', 'steps'][i]!));
    const spec = sliceSpec(x!.shape.length, starts!, ends!, axes, steps);
    const st = stridesFor(x!.shape);
    const strides = [...st];
    let base = 0;
    spec.axes.forEach((ax, i) => {
      const { start } = sliceAxis(x!.shape[ax]!, starts![i]!, ends![i]!, spec.steps[i]!);
      base += start * st[ax]!;
      strides[ax] = st[ax]! * spec.steps[i]!;
    });
    return one(x!, y!, gatherView(y!.shape, strides, base));
  },
};

/** Input strides aligned to an output of higher or equal rank, 0 where the input broadcasts. */
function broadcastStrides(from: readonly number[], to: readonly number[]): number[] {
  const st = stridesFor(from);
  const lead = to.length - from.length;
  return to.map((_, i) => (i < lead || from[i - lead] === 1 ? 0 : st[i - lead]!));
}

const expand: GpuKernel = {
  hostInputs: [1],
  plan(_node, [x], [y]) {
    return one(x!, y!, gatherView(y!.shape, broadcastStrides(x!.shape, y!.shape)));
  },
};

/** Tile-13: output dim i of size r*n iterates as two dims [r, n]: the repeat (source stride 0) and the element. */
const tile: GpuKernel = {
  hostInputs: [1],
  plan(_node, [x], [y]) {
    const st = stridesFor(x!.shape);
    const yst = stridesFor(y!.shape);
    const view: CopyView = { shape: [], src: [], dst: [], srcBase: 0, dstBase: 0 };
    x!.shape.forEach((n, i) => {
      const reps = n === 0 ? 0 : y!.shape[i]! / n;
      view.shape.push(reps, n);
      view.src.push(0, st[i]!);
      view.dst.push(n * yst[i]!, yst[i]!);
    });
    return one(x!, y!, view);
  },
};

/** Reads x as the 6-D `view` permuted by `perm` (ONNX DepthToSpace-13 / SpaceToDepth-13 are such transposes). */
function viewTranspose(x: GpuTensorInfo, y: GpuTensorInfo, view: number[], perm: number[]): KernelPlan {
  const st = stridesFor(view);
  return one(x, y, gatherView(perm.map((p) => view[p]!), perm.map((p) => st[p]!)));
}

const depthToSpace: GpuKernel = {
  plan(node: Node, [x], [y]) {
    const b = blocksize(node);
    const [n, c, h, w] = x!.shape as [number, number, number, number];
    const cc = c / (b * b);
    return attrString(node, 'mode', 'DCR') === 'DCR'
      ? viewTranspose(x!, y!, [n, b, b, cc, h, w], [0, 3, 4, 1, 5, 2])
      : viewTranspose(x!, y!, [n, cc, b, b, h, w], [0, 1, 4, 2, 5, 3]);
  },
};

const spaceToDepth: GpuKernel = {
  plan(node: Node, [x], [y]) {
    const b = blocksize(node);
    const [n, c, h, w] = x!.shape as [number, number, number, number];
    return viewTranspose(x!, y!, [n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4]);
  },
};

/**
 * Dropout where it drops nothing (inference, or training_mode with ratio 0): the data passes through and the mask,
 * when asked for, is all true. Training with a ratio above 0 draws its mask from the CPU reference's sequential
 * generator, which a shader cannot reproduce: refused here; fine-tuning on WebGPU has its own counter-based
 * dropout (kernels/train/dropout.ts).
 */
const dropout: GpuKernel = {
  hostInputs: [1, 2],
  plan(node, [x, ratioIn, training], [y, mask]) {
    const train = training ? constInts(training, 'Dropout', 'training_mode')!.some((v) => v !== 0) : false;
    const ratio = ratioIn?.value ? Number(toNumbers(ratioIn.value.dtype, ratioIn.value.data)[0]) : 0.5;
    if (train && ratio !== 0) {
      throw new GpuUnsupported('Dropout with training_mode=true and a ratio above 0 draws a random mask: on WebGPU only fine-tuning (FineTuner) runs training-mode dropout');
    }
    const copy = one(x!, y!, gatherView([sizeOfShape(y!.shape)], [1]));
    if (!mask || !sizeOfShape(mask.shape)) return copy;
    return { calls: [...copy.calls, { program: fillProgram(mask, 1), tensors: [{ output: 1 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = {
  Reshape: reshapeLike([1]),
  Flatten: reshapeLike([]),
  Squeeze: reshapeLike([1]),
  Unsqueeze: reshapeLike([1]),
  Identity: reshapeLike([]),
  Dropout: dropout,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Slice: slice,
  Expand: expand,
  Tile: tile,
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
};
