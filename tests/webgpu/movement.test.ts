import { beforeAll, describe, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, buildGraph, i64, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu, checkGraphAgainstCpu } from './ew-harness.js';

/** Data movement, gathers, Pad and Cast against the CPU reference: exact equality (elements are only moved). */
let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const EXACT = { rtol: 0, atol: 0 };
const rng = new Rng(2024);
const rand = (dtype: DType, shape: number[]) => randomTensor(rng, dtype, shape);

/** Runs `op` with data inputs `xs` and constant parameter inputs `params` (named p0, p1...; undefined = omitted). */
async function check(op: string, xs: HostTensor[], params: (HostTensor | undefined)[] = [], attrs: Record<string, Attr> = {}, outputs = 1): Promise<void> {
  const names = [...xs.map((_, i) => `x${i}`), ...params.map((p, i) => (p ? `p${i}` : ''))];
  const n = node(op, names, Array.from({ length: outputs }, (_, i) => `y${i}`), attrs);
  const constInputs = params.map((_, i) => xs.length + i);
  await checkAgainstCpu(res, n, [...xs, ...params], EXACT, { constInputs });
}

describe('strided-copy ops', () => {
  it('Transpose (explicit and default perm, several dtypes)', async () => {
    await check('Transpose', [rand('float32', [2, 3, 4])], [], { perm: attr([2, 0, 1]) });
    await check('Transpose', [rand('float32', [2, 3, 4, 5])]);
    await check('Transpose', [rand('int32', [3, 7])]);
    await check('Transpose', [rand('bool', [3, 1, 2])], [], { perm: attr([1, 2, 0]) });
    await check('Transpose', [rand('float16', [5, 3])]);
    await check('Transpose', [rand('int64', [2, 3, 2])], [], { perm: attr([0, 2, 1]) });
  });

  it('Concat on several axes, with an empty input', async () => {
    await check('Concat', [rand('float32', [2, 3, 4]), rand('float32', [2, 1, 4]), rand('float32', [2, 5, 4])], [], { axis: attr(1) });
    await check('Concat', [rand('int32', [3, 2]), rand('int32', [3, 3])], [], { axis: attr(-1) });
    await check('Concat', [rand('float32', [2, 0, 4]), rand('float32', [2, 2, 4])], [], { axis: attr(1) });
    await check('Concat', [rand('float32', [1, 3]), rand('float32', [2, 3]), rand('float32', [1, 3])], [], { axis: attr(0) });
  });

  it('Split by sizes, by num_outputs, and in equal parts', async () => {
    await check('Split', [rand('float32', [2, 5, 3])], [i64([1, 4])], { axis: attr(1) }, 2);
    await check('Split', [rand('float32', [7])], [], { num_outputs: attr(3) }, 3);
    await check('Split', [rand('int32', [4, 6])], [], { axis: attr(-1) }, 3);
  });

  it('Slice with negative starts, steps and axes', async () => {
    const x = rand('float32', [6, 7, 5]);
    await check('Slice', [x], [i64([1, -6]), i64([5, 100])]);
    await check('Slice', [x], [i64([-1, 0]), i64([-100, 5]), i64([2, 0]), i64([-2, 2])]);
    await check('Slice', [x], [i64([5]), i64([0]), i64([1]), i64([-3])]);
    await check('Slice', [rand('int32', [10])], [i64([-1]), i64([-11]), undefined, i64([-2])]);
    await check('Slice', [x], [i64([3]), i64([3]), i64([0])]); // empty result
  });

  it('Expand and Tile', async () => {
    await check('Expand', [rand('float32', [3, 1])], [i64([2, 3, 4])]);
    await check('Expand', [rand('int32', [1])], [i64([5])]);
    await check('Expand', [rand('float32', [2, 1, 3])], [i64([4, 1])]);
    await check('Tile', [rand('float32', [2, 3])], [i64([2, 3])]);
    await check('Tile', [rand('bool', [1, 2, 1])], [i64([3, 1, 2])]);
    await check('Tile', [rand('float32', [2, 2])], [i64([1, 0])]);
  });

  it('DepthToSpace (DCR, CRD) and SpaceToDepth', async () => {
    await check('DepthToSpace', [rand('float32', [2, 8, 2, 3])], [], { blocksize: attr(2) });
    await check('DepthToSpace', [rand('float32', [1, 18, 2, 2])], [], { blocksize: attr(3), mode: attr('CRD') });
    await check('SpaceToDepth', [rand('float32', [1, 2, 4, 6])], [], { blocksize: attr(2) });
  });

  it('Reshape, Flatten, Squeeze, Unsqueeze, Identity', async () => {
    await check('Reshape', [rand('float32', [2, 3, 4])], [i64([4, -1])]);
    await check('Reshape', [rand('int32', [2, 6])], [i64([0, 3, -1])]);
    await check('Flatten', [rand('float32', [2, 3, 4, 5])], [], { axis: attr(2) });
    await check('Squeeze', [rand('float32', [1, 3, 1, 4])], [i64([0, 2])]);
    await check('Unsqueeze', [rand('float32', [3, 4])], [i64([0, -1])]);
    await check('Identity', [rand('bool', [5])]);
  });
});

describe('Gather, GatherElements, Pad', () => {
  it('Gather along each axis with negative and scalar indices', async () => {
    await check('Gather', [rand('float32', [5, 4]), tensorFromNumbers('int64', [2, 3], [0, -1, 3, 2, -5, 4])]);
    await check('Gather', [rand('float32', [3, 5, 2]), tensorFromNumbers('int64', [], [-2])], [], { axis: attr(1) });
    await check('Gather', [rand('int32', [3, 6]), tensorFromNumbers('int32', [4], [5, 0, 0, 2])], [], { axis: attr(-1) });
  });

  it('GatherElements on both axes', async () => {
    await check('GatherElements', [rand('float32', [3, 4]), tensorFromNumbers('int64', [3, 2], [0, 3, -1, 2, 1, 1])], [], { axis: attr(1) });
    await check('GatherElements', [rand('float32', [3, 4]), tensorFromNumbers('int64', [2, 4], [0, 2, 1, -3, 2, 2, 0, 1])], [], { axis: attr(0) });
  });

  it('Pad in every mode, with cropping and axes', async () => {
    const x = rand('float32', [3, 4]);
    await check('Pad', [x], [i64([1, 2, 2, 1]), tensorFromNumbers('float32', [], [1.5])]);
    await check('Pad', [x], [i64([2, 3, 2, 3])], { mode: attr('reflect') });
    await check('Pad', [x], [i64([1, 5, 4, 0])], { mode: attr('edge') });
    await check('Pad', [x], [i64([2, 6, 3, 5])], { mode: attr('wrap') });
    await check('Pad', [x], [i64([-1, 1, 0, -2])]);
    await check('Pad', [rand('int32', [2, 3, 4])], [i64([1, 2]), tensorFromNumbers('int32', [], [-7]), i64([-1])]);
    await check('Pad', [rand('float32', [1, 2, 5, 5])], [i64([0, 0, 2, 2, 0, 0, 2, 2])], { mode: attr('reflect') });
  });
});

describe('Cast', () => {
  const specials = [0, -0, 0.5, -0.5, 1.5, -2.7, 127.9, -128.5, 255, 300.2, -1];
  const cases: [DType, DType][] = [
    ['float32', 'int32'], ['float32', 'int64'], ['float32', 'uint8'], ['float32', 'int8'], ['float32', 'bool'],
    ['float32', 'float16'], ['float16', 'float32'], ['int32', 'float32'], ['int32', 'int8'], ['int32', 'uint16'],
    ['int32', 'bool'], ['bool', 'float32'], ['bool', 'int32'], ['int64', 'int32'], ['uint8', 'int32'], ['int8', 'uint8'],
  ];
  for (const [from, to] of cases) {
    it(`${from} -> ${to}`, async () => {
      const x = from.startsWith('float')
        ? randomTensor(rng, from, [3, 7], { lo: -100, hi: 100, specials, specialRate: 0.4 })
        : randomTensor(rng, from, [3, 7], from === 'bool' ? {} : { lo: from.startsWith('u') ? 0 : -300, hi: 300 });
      await check('Cast', [x], [], { to: attr(to) });
    });
  }
});

describe('narrow integers stay wrapped between GPU kernels', () => {
  it('Cast int32 -> int8 -> int32 and float32 -> float16 -> float32 in one plan', async () => {
    const g = buildGraph({
      inputs: [['i', 'int32', [4, 5]], ['f', 'float32', [4, 5]]],
      nodes: [
        node('Cast', ['i'], ['i8'], { to: attr('int8') }), node('Cast', ['i8'], ['i32'], { to: attr('int32') }),
        node('Cast', ['f'], ['h'], { to: attr('float16') }), node('Cast', ['h'], ['f32'], { to: attr('float32') }),
      ],
      outputs: ['i32', 'f32'],
    });
    const feeds = {
      i: randomTensor(rng, 'int32', [4, 5], { lo: -400, hi: 400 }),
      f: randomTensor(rng, 'float32', [4, 5], { lo: -70000, hi: 70000, specials: [1e-3, 0.1, 65519, -65520, 2049, 1 / 3], specialRate: 0.5 }),
    };
    await checkGraphAgainstCpu(res, g, feeds, EXACT);
  });
});
