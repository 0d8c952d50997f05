import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chooseNBitsForm, GEMV_MAX_ROWS, setNBitsForm, setNBitsSubgroups, type NBitsForm } from '../../runtime/backends/webgpu/kernels/matmul-nbits.js';
import type { DType } from '../../runtime/ir/dtype.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { tensorProto } from '../helpers/ort-single-node.js';
import { packedZeroPoints } from '../helpers/quant-contrib-cases.js';
import { Rng } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { int, model, vi } from '../importer/model-builder.js';

/**
 * com.microsoft MatMulNBits's WebGPU forms (runtime/backends/webgpu/kernels/matmul-nbits.ts, issue #11 §1): the
 * decode GEMV (threads split K, one workgroup reduction, with and without subgroups), the workgroup-tiled prefill
 * (B dequantized once per tile into workgroup memory) and the direct form (CPU adapters), each forced on every case and compared with the CPU
 * reference and onnxruntime-node through InferenceSession. Cases cover 4 and 8 bits, block sizes 16..256, no /
 * packed / float zero points, K not a multiple of the block, N not a multiple of the 64-column tile (nor of 4),
 * 1, 3, 17 and 128 rows, batch dims, bias, and float16 A. The kernel key each node ran is checked, so a case
 * cannot pass on another form than the one it names; the resident weight bytes stay packed on every form.
 *
 * Tolerances: float32 outputs 2e-4 relative and absolute, as the MatMulNBits cases of quantize-contrib.test.ts (the
 * forms sum the same f32 products in other orders: s * (a . q - zp * sum a) per word, or dequantized s * (q - zp)
 * per code; the differences measured are under 1e-5 at these sizes). float16 outputs: 2e-3, two float16 ulps (each
 * side rounds its f32 result to float16 once, at most one ulp, 2^-10 relative, apart; onnxruntime's CPU also rounds A
 * products through its own float16 path).
 */

const MS = 'com.microsoft';
const sessions: InferenceSession[] = [];
let subgroups = false;

beforeAll(async () => {
  const res = await gpuForTests();
  subgroups = res.ctx.features.has('subgroups');
  console.log(`MatMulNBits forms on ${describeDevice(res)}, ${subgroups ? 'with' : 'without'} subgroups`);
});
afterEach(() => {
  setNBitsForm(undefined);
  setNBitsSubgroups(undefined);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

interface NBitsCase {
  name: string;
  bytes: Uint8Array;
  feeds: Record<string, HostTensor>;
  rows: number;
  tol: number;
  floatWeightBytes: number;
  /** Only these forms (a case about one form's dispatch). */
  only?: NBitsForm[];
}

function nbitsCase(rng: Rng, bits: 4 | 8, block: number, K: number, N: number, aShape: number[], zp: 'none' | 'packed' | 'float', bias: boolean, aType: DType = 'float32'): NBitsCase {
  const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const kBlocks = Math.ceil(K / block);
  const blob = (block * bits) / 8;
  const codes = Array.from({ length: N * kBlocks * block }, () => rng.int(0, 2 ** bits - 1));
  const packed = new Uint8Array(N * kBlocks * blob);
  if (bits === 8) packed.set(codes);
  else for (let i = 0; i < packed.length; i++) packed[i] = codes[2 * i]! | (codes[2 * i + 1]! << 4);
  const floats = (shape: number[], lo: number, hi: number) => tensorFromNumbers(aType, shape, Array.from({ length: count(shape) }, () => rng.uniform(lo, hi)));
  const inits: HostTensor[] = [tensorFromNumbers('uint8', [N, kBlocks, blob], packed), floats([N * kBlocks], 0.005, 0.05)];
  const names = ['A', 'B', 'scales'];
  if (zp === 'float') {
    inits.push(tensorFromNumbers(aType, [N * kBlocks], Array.from({ length: N * kBlocks }, () => rng.int(0, 2 ** bits - 1))));
    names.push('zp');
  } else if (zp === 'packed') {
    inits.push(packedZeroPoints(rng, N, kBlocks, bits));
    names.push('zp');
  } else if (bias) names.push('');
  if (bias) {
    names.push('', 'bias');
    inits.push(floats([N], -1, 1));
  }
  const initNames = names.slice(1).filter((n) => n);
  const code = aType === 'float16' ? 10 : 1;
  const bytes = model({
    opset: 21,
    extraOpsets: [{ domain: MS, version: 1 }],
    nodes: [{ op: 'MatMulNBits', domain: MS, name: 'mm', inputs: names, outputs: ['y'], attrs: [int('K', K), int('N', N), int('bits', bits), int('block_size', block)] }],
    inputs: [vi('A', code, [...aShape, K])],
    initializers: initNames.map((n, i) => tensorProto(n, inits[i]!)),
    outputs: [vi('y', code)],
  });
  const rows = count(aShape);
  return {
    name: `bits=${bits} block=${block} K=${K} N=${N} A=[${aShape}] ${aType} zp=${zp}${bias ? ' bias' : ''}`,
    bytes,
    feeds: { A: floats([...aShape, K], -1, 1) },
    rows,
    tol: aType === 'float16' ? 2e-3 : 2e-4,
    floatWeightBytes: N * K * 4,
  };
}

function cases(): NBitsCase[] {
  const rng = new Rng(2026);
  const out: NBitsCase[] = [];
  // Every block size with both bit widths; K ragged against the block, N ragged against the tile and against 4.
  const blocks = [16, 32, 64, 128, 256];
  const rowsOf = [[1], [3], [17], [128]];
  blocks.forEach((block, i) => {
    const K = block * 3 + (block >> 1) + 4; // 3.5 blocks and 4 values: the last block is partly padding, and so is one 4-bit word
    out.push(nbitsCase(rng, 4, block, K, 70 + i, rowsOf[i % 4]!, (['none', 'packed', 'float'] as const)[i % 3]!, i % 2 === 0));
    out.push(nbitsCase(rng, 8, block, K, 67 + 2 * i, rowsOf[(i + 1) % 4]!, (['packed', 'none'] as const)[i % 2]!, i % 2 === 1));
  });
  // Batch dims: 1 x 3 rows (GEMV), 2 x 2 (GEMV at its limit), 2 x 5 (4 rows per direct invocation), 2 x 3 x 7 (tiled,
  // partial tiles in both directions).
  out.push(nbitsCase(rng, 4, 32, 200, 33, [1, 3], 'packed', true));
  out.push(nbitsCase(rng, 4, 64, 96, 9, [2, 2], 'float', false));
  out.push(nbitsCase(rng, 4, 16, 56, 10, [2, 5], 'none', false));
  out.push(nbitsCase(rng, 8, 16, 40, 130, [2, 3, 7], 'packed', true));
  // float16 A (scales, float zero points and bias float16 too), decode and prefill.
  out.push(nbitsCase(rng, 4, 32, 104, 21, [1], 'packed', true, 'float16'));
  out.push(nbitsCase(rng, 4, 16, 72, 66, [17], 'float', false, 'float16'));
  out.push(nbitsCase(rng, 8, 64, 100, 12, [2, 65], 'none', true, 'float16'));
  // One larger layer (K = N = 512, 4 bits) for the resident-weight check on every form.
  out.push(nbitsCase(rng, 4, 32, 512, 512, [3], 'packed', false));
  out.push(nbitsCase(rng, 4, 128, 512, 512, [128], 'none', true));
  // N over 4 x 65,535: the GEMV's 65,550 column groups fold into a second dispatch dimension.
  out.push({ ...nbitsCase(rng, 4, 16, 16, 262_200, [1], 'none', false), only: ['gemv'] });
  return out;
}

async function run(bytes: Uint8Array, backend: 'cpu' | 'webgpu', feeds: Record<string, HostTensor>) {
  const session = await InferenceSession.create(bytes, { backend });
  sessions.push(session);
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) tensors[k] = new Tensor(t.dtype, t.data, t.shape);
  const r = await session.run<Record<string, Tensor>>(tensors);
  return { y: r.y!.toHost(), session };
}

const KEY_PREFIX: Record<NBitsForm, string> = { gemv: 'matmul-nbits-gemv:', tiled: 'matmul-nbits-tiled:', direct: 'matmul-nbits:', legacy: 'matmul-nbits:' };

/** Whether kernel key `k` is `form` (with subgroups or not, for the GEMV; unrolled or the first kernel, for direct). */
function isForm(k: string, form: NBitsForm, sg: boolean): boolean {
  const key = k.split('|')[0]!;
  if (!key.startsWith(KEY_PREFIX[form])) return false;
  if (form === 'gemv') return key.endsWith(':sg') === sg;
  if (form === 'direct' || form === 'legacy') return key.endsWith(':unrolled') === (form === 'direct');
  return true;
}

describe('MatMulNBits WebGPU forms vs the CPU reference and onnxruntime-node', () => {
  it('takes the GEMV form up to GEMV_MAX_ROWS rows and the tiled form above on a GPU, the direct form on a CPU adapter', () => {
    expect(chooseNBitsForm(1)).toBe('gemv');
    expect(chooseNBitsForm(GEMV_MAX_ROWS)).toBe('gemv');
    expect(chooseNBitsForm(GEMV_MAX_ROWS + 1)).toBe('tiled');
    expect(chooseNBitsForm(128)).toBe('tiled');
    expect(chooseNBitsForm(1, true)).toBe('direct');
    expect(chooseNBitsForm(128, true)).toBe('direct');
  });

  for (const c of cases()) {
    it(c.name, async () => {
      const cpu = (await run(c.bytes, 'cpu', c.feeds)).y;
      const ort = (await runModelOrt(c.bytes, c.feeds)).y!;
      // The GEMV with its workgroup-memory reduction, and with subgroupAdd where the device has subgroups.
      // The first kernel ('legacy', kept for the benchmark's "before") on the few-row cases.
      const forms: [NBitsForm, boolean][] = c.rows <= GEMV_MAX_ROWS
        ? [['gemv', false], ...(subgroups ? [['gemv', true] as [NBitsForm, boolean]] : []), ['tiled', false], ['direct', false], ['legacy', false]]
        : [['tiled', false], ['direct', false]];
      for (const [form, sg] of forms.filter(([f]) => !c.only || c.only.includes(f))) {
        setNBitsForm(form);
        setNBitsSubgroups(sg);
        const { y, session } = await run(c.bytes, 'webgpu', c.feeds);
        const report = session.report();
        const kernels = report.nodes.find((n) => n.name === 'mm')?.kernels ?? [];
        const ran = kernels.some((k) => isForm(k, form, sg));
        expect(ran, `${c.name}: ${form}${sg ? ' with subgroups' : ''} ran ${kernels.join(', ')}`).toBe(true);
        for (const [want, what] of [[cpu, 'CPU'], [ort, 'onnxruntime']] as const) {
          const r = allClose(y, want, { rtol: c.tol, atol: c.tol });
          if (!r.ok) expect.fail(`${c.name} (${form}${sg ? ', subgroups' : ''}) vs ${what}: ${r.message}`);
        }
        if (c.floatWeightBytes >= 1 << 20) {
          // W stays packed (1/8 of float32) plus scales, zero points and bias; a float copy of W would be over 1.
          expect(report.weightBytes, `${c.name} (${form}): resident weight bytes vs float32 W`).toBeLessThan(c.floatWeightBytes / 5);
        }
      }
    });
  }
});
