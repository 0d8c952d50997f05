import { InvalidArgumentError } from '../../../../errors.js';
import { toNumbers } from '../../../../ir/dtype.js';
import { attrInt } from '../../../../ir/graph.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../../program.js';
import { computeTypeOf } from '../../storage.js';
import { convert } from '../../wgsl/builder.js';
import { floatOnly } from './common.js';

/**
 * SeededDropout(data, ratio?, seed?) {salt} -> output, mask: the twin of runtime/train/ops/dropout.ts with the SAME
 * masks bit for bit. mulberry32 is counter-based: its i-th draw (i from 0) mixes state = s + (i + 1) * 0x6D2B79F5
 * (mod 2^32), s = fmix32(seed ^ salt * 0x9E3779B9), so every element draws its value independently. The CPU keeps
 * an element when u / 2^32 >= ratio; for an integer u that is u >= ceil(ratio * 2^32), exact in float64 on the
 * host, so the comparison is done on u32 in the shader and no float rounding can flip a mask bit.
 * The seed is read on the GPU (it changes every step); the ratio must be a constant (it decides the threshold).
 */

const WG = 64;

function program(x: GpuTensorInfo, seed: GpuTensorInfo | undefined, y: GpuTensorInfo, mask: GpuTensorInfo | undefined, p: { threshold: number; keepNone: boolean; scale: number; saltMix: number }): ProgramSpec {
  const size = sizeOfShape(x.shape);
  return {
    key: `train:seeded-dropout:${seed ? 'seed' : 'noseed'}${mask ? ':mask' : ''}`,
    bindings: [
      { name: 'x', type: x.storage },
      ...(seed ? [{ name: 'seed', type: seed.storage }] : []),
      { name: 'y', type: y.storage },
      ...(mask ? [{ name: 'mask', type: mask.storage }] : []),
    ],
    uniforms: [
      { name: 'size', type: 'u32' }, { name: 'threshold', type: 'u32' }, { name: 'keep_none', type: 'u32' },
      { name: 'salt_mix', type: 'u32' }, { name: 'scale', type: 'f32' },
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      const lines = [
        b.linearIndex('u.size'),
        `var h = ${seed ? `bitcast<u32>(${b.load('seed', '0u')})` : '0u'} ^ u.salt_mix; // murmur3 fmix32(seed ^ salt * 0x9E3779B9)`,
        'h = h ^ (h >> 16u);',
        'h = h * 0x85ebca6bu;',
        'h = h ^ (h >> 13u);',
        'h = h * 0xc2b2ae35u;',
        'h = h ^ (h >> 16u);',
        '// mulberry32, draw number index: the state after index + 1 Weyl steps.',
        'var t = h + (index + 1u) * 0x6d2b79f5u;',
        't = (t ^ (t >> 15u)) * (t | 1u);',
        't = t ^ (t + (t ^ (t >> 7u)) * (t | 61u));',
        'let draw = t ^ (t >> 14u);',
        'let keep = u.keep_none == 0u && draw >= u.threshold;',
        `let v = ${b.loadAs('x', 'index', 'f32')};`,
        b.store('y', 'index', convert(T, 'f32', 'select(0.0, v * u.scale, keep)')),
      ];
      if (mask) lines.push(b.store('mask', 'index', `${computeTypeOf(mask.storage)}(select(0u, 1u, keep))`));
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: { size, threshold: p.threshold, keep_none: p.keepNone ? 1 : 0, salt_mix: p.saltMix, scale: p.scale },
      };
    },
  };
}

const seededDropout: GpuKernel = {
  hostInputs: [1],
  plan(node, [x, ratioIn, seed], [y, mask]) {
    floatOnly(node.op, 'data', x);
    let ratio = 0.5;
    if (ratioIn) {
      if (!ratioIn.value) throw new GpuUnsupported('SeededDropout needs its ratio input to be a constant (known when the graph is planned)');
      ratio = Number(toNumbers(ratioIn.value.dtype, ratioIn.value.data)[0]);
    }
    if (!(ratio >= 0 && ratio <= 1)) throw new InvalidArgumentError(`SeededDropout ratio must be in [0, 1], got ${ratio}.`);
    if (seed && seed.storage !== 'u32' && seed.storage !== 'i32') throw new GpuUnsupported(`SeededDropout seed of type ${seed.dtype} has no WebGPU kernel`);
    const threshold = Math.ceil(ratio * 2 ** 32);
    const params = {
      threshold: Math.min(threshold, 2 ** 32 - 1),
      keepNone: threshold > 2 ** 32 - 1,
      scale: ratio < 1 ? 1 / (1 - ratio) : 0,
      saltMix: Math.imul(attrInt(node, 'salt', 0), 0x9e3779b9) >>> 0,
    };
    if (sizeOfShape(x!.shape) === 0) return { calls: [] };
    const tensors: TensorSlot[] = [{ input: 0 }, ...(seed ? [{ input: 2 }] : []), { output: 0 }, ...(mask ? [{ output: 1 }] : [])];
    return { calls: [{ program: program(x!, seed, y!, mask, params), tensors }] };
  },
};

export const kernels: Record<string, GpuKernel> = { SeededDropout: seededDropout };
