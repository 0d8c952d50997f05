import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chooseNBitsForm, setNBitsForm, type NBitsForm } from '../../runtime/backends/webgpu/kernels/matmul-nbits.js';
import { msOp } from '../../runtime/ir/ops/contrib.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession } from '../../sdk/node.js';
import { runHost } from '../helpers/session-runs.js';
import { expectMatches } from '../helpers/quant-contrib-cases.js';
import { Rng } from '../helpers/random.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES } from '../models/fixture-files.js';

/**
 * 4-bit weights stay 4-bit on the GPU (issue #11 §1; runtime/backends/webgpu/fuse-int4.ts): opset-21 models with
 * DequantizeLinear(INT4 / UINT4 initializer) -> MatMul | Gemm, written by python onnx
 * (scripts/fixtures/qdq_int4_fixture.py -> tests/fixtures/qdq-int4/), through InferenceSession.create(bytes,
 * { backend: 'webgpu' }) against the CPU reference (the model as written) and onnxruntime-node. Forms: per tensor,
 * per axis, blocked along K with block sizes 16, 32, 48 (MatMulNBits block 16), 64 and 128 and K not a multiple of
 * the block, with and without zero points, MatMul with 2-D and batched 3-D x (float16 x too, and an Add(bias)
 * after), Gemm transB 0/1 with a row bias and a [M, N] bias, and a full QDQ group x -> Q -> DQ -> MatMul(DQ(w4)) -> Q.
 * A rewritten case must plan one MatMulNBits node and no DequantizeLinear / MatMul / Gemm reading the weight, on the
 * CPU adapter's direct form and on the GPU adapters' forms (gemv / tiled, forced); the 256 x 512 layer's resident
 * weight bytes must stay under 0.15 of its float32 bytes. The forms left as written (blocks along N, block_size 24,
 * a computed 4-bit weight, an int8 weight) must plan no MatMulNBits and still match. com.microsoft
 * GatherBlockQuantized of a constant 4-bit table (int4, uint4, packed uint8; D a multiple of 8 or not) must gather
 * packed words (a BitShift in the plan), match exactly, and keep the 512 x 128 table's resident bytes under 0.15 of
 * float32.
 *
 * Tolerances: float outputs 2e-4 relative and absolute vs the CPU (MatMulNBits sums s * sum_k x (q - zp) per block,
 * the reference sum_k x ((q - zp) s): the same f32 products in another order), 4e-4 vs onnxruntime (run as written,
 * see runOrt); the QDQ group's uint8 output within one quantization step (a float rounding at a tie of the
 * requantization); float16 outputs 4e-3 (the reference rounds each dequantized weight to float16 before the
 * product, MatMulNBits multiplies the f32 scale into its f32 sums: both round the output to float16 once).
 */

interface Case {
  name: string;
  inputs: Record<string, number[]>;
  fused: boolean;
  floatWeightBytes: number;
  /** x's and y's type (float32 when absent). */
  dtype?: 'float16';
  /** GatherBlockQuantized's int64 indices input, in [0, rows). */
  indices?: { name: string; shape: number[]; rows: number };
}

const DIR = join(FIXTURES, 'qdq-int4');
const { cases } = JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as { cases: Case[] };
const NBITS = msOp('MatMulNBits');
const sessions: InferenceSession[] = [];

beforeAll(async () => {
  console.log(`int4 QDQ weights on ${describeDevice(await gpuForTests())}`);
});
afterEach(() => setNBitsForm(undefined));
afterAll(async () => {
  for (const s of sessions) await s.release();
});

function feedsFor(c: Case, seed: number): Record<string, HostTensor> {
  const rng = new Rng(seed);
  const out: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(c.inputs)) {
    out[name] = tensorFromNumbers(c.dtype ?? 'float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)));
  }
  const idx = c.indices;
  if (idx) out[idx.name] = tensorFromNumbers('int64', idx.shape, Array.from({ length: idx.shape.reduce((a, b) => a * b, 1) }, () => rng.int(0, idx.rows - 1)));
  return out;
}

/**
 * onnxruntime-node with graph optimizations off, running the model as written: its own DequantizeLinear -> MatMul
 * fusion into MatMulNBits quantizes x to int8 at its default accuracy level (session option
 * qdq_matmulnbits_accuracy_level = 4), which moves outputs by about 1 % (measured) and is not the reference.
 */
async function runOrt(bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<HostTensor> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  try {
    // float16 goes in and out as raw bits in a Uint16Array, as HostTensor holds it; int64 as a BigInt64Array.
    const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape)]));
    const y = (await session.run(ortFeeds)).y!;
    return { dtype: y.type as HostTensor['dtype'], shape: [...y.dims], data: y.data as Float32Array };
  } finally {
    await session.release();
  }
}

async function runOn(bytes: Uint8Array, backend: 'cpu' | 'webgpu', feeds: Record<string, HostTensor>) {
  const session = await InferenceSession.create(bytes, { backend });
  sessions.push(session);
  return { y: (await runHost(session, feeds)).y!, session };
}

describe('DequantizeLinear(int4 / uint4 weight) -> MatMul / Gemm on WebGPU vs the CPU and onnxruntime-node', () => {
  cases.forEach((c, i) => {
    if (c.indices) return;
    it(`${c.name}${c.fused ? '' : ' (not rewritten)'}`, async () => {
      const bytes = new Uint8Array(readFileSync(join(DIR, `${c.name}.onnx`)));
      const feeds = feedsFor(c, 100 + i);
      const cpu = (await runOn(bytes, 'cpu', feeds)).y;
      const ort = await runOrt(bytes, feeds);
      const tol = cpu.dtype === 'float32' ? 2e-4 : cpu.dtype === 'float16' ? 4e-3 : 1;
      expectMatches(cpu, ort, { tol: tol < 1 ? 2 * tol : tol }, `${c.name}: CPU vs onnxruntime`);
      const rows = c.inputs.x!.slice(0, -1).reduce((a, b) => a * b, 1);
      // The CPU adapter's form (direct), then the form a GPU adapter takes for these rows, and tiled when that is gemv.
      const gpuForm = chooseNBitsForm(rows, false);
      const forms: (NBitsForm | undefined)[] = c.fused ? [undefined, gpuForm, ...(gpuForm === 'gemv' ? ['tiled' as const] : [])] : [undefined];
      for (const form of forms) {
        setNBitsForm(form);
        const { y, session } = await runOn(bytes, 'webgpu', feeds);
        const what = `${c.name} (${form ?? 'default form'})`;
        expectMatches(y, cpu, { tol }, `${what} vs CPU`);
        expectMatches(y, ort, { tol: tol < 1 ? 2 * tol : tol }, `${what} vs onnxruntime`);
        const report = session.report();
        const ops = report.nodes.map((n) => n.op);
        if (!c.fused) {
          expect(ops, what).not.toContain(NBITS);
          continue;
        }
        // The weight is read by MatMulNBits, on the form asked for; nothing dequantizes it or multiplies in float.
        const nbits = report.nodes.filter((n) => n.op === NBITS);
        expect(nbits.length, `${what}: ${ops.join(', ')}`).toBe(1);
        // MatMul -> Add(row bias) and Gemm's row C fold into MatMulNBits' bias; Gemm's [M, N] C stays an Add.
        expect(ops.filter((op) => op === 'MatMul' || op === 'Gemm' || op === 'Add'), what).toEqual(c.name.includes('bias-matrix') ? ['Add'] : []);
        expect(ops.filter((op) => op === 'DequantizeLinear').length, what).toBe(c.name.includes('qdq-group') ? 1 : 0);
        const key = nbits[0]!.kernels![0]!;
        expect(key.startsWith(form === 'gemv' ? 'matmul-nbits-gemv:' : form === 'tiled' ? 'matmul-nbits-tiled:' : 'matmul-nbits:'), `${what}: kernel ${key}`).toBe(true);
        if (c.floatWeightBytes >= 256 * 512 * 4) {
          // Codes eight per u32 (1/8 of float32) plus one scale per 128 values: about 0.133 of the float32 matrix.
          expect(report.weightBytes / c.floatWeightBytes, `${what}: resident ${report.weightBytes} B vs float32 ${c.floatWeightBytes} B`).toBeLessThanOrEqual(0.15);
        }
      }
    });
  });
});

describe('GatherBlockQuantized of a constant 4-bit table on WebGPU vs the CPU and onnxruntime-node', () => {
  cases.forEach((c, i) => {
    if (!c.indices) return;
    it(c.name, async () => {
      const bytes = new Uint8Array(readFileSync(join(DIR, `${c.name}.onnx`)));
      const feeds = feedsFor(c, 100 + i);
      const cpu = (await runOn(bytes, 'cpu', feeds)).y;
      const ort = await runOrt(bytes, feeds);
      expectMatches(cpu, ort, { tol: 1e-6 }, `${c.name}: CPU vs onnxruntime`);
      const { y, session } = await runOn(bytes, 'webgpu', feeds);
      expectMatches(y, cpu, { tol: 1e-6 }, `${c.name}: WebGPU vs CPU`);
      expectMatches(y, ort, { tol: 1e-6 }, `${c.name}: WebGPU vs onnxruntime`);
      // The table is gathered as packed words and only the gathered ones are unpacked (importers/onnx/ops/com-microsoft-quant.ts).
      const report = session.report();
      expect(report.nodes.map((n) => n.op), c.name).toContain('BitShift');
      if (c.floatWeightBytes >= 512 * 128 * 4) {
        // Codes eight per u32 (1/8 of float32), one scale and one zero point (one per word) per 128 values: 0.141.
        expect(report.weightBytes / c.floatWeightBytes, `${c.name}: resident ${report.weightBytes} B vs float32 ${c.floatWeightBytes} B`).toBeLessThanOrEqual(0.15);
      }
    });
  });
});
