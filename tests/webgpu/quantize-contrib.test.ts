import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { expectMatches, fourBitCases, gatherBlockCases, quantCases } from '../helpers/quant-contrib-cases.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * The quantized com.microsoft ops (issue #11 §1) on WebGPU through InferenceSession.create(bytes, { backend: 'webgpu' }),
 * every case of tests/helpers/quant-contrib-cases.ts against the CPU reference and onnxruntime-node. The integer
 * products (MatMulIntegerToFloat, DynamicQuantizeMatMul) run with the packed dot4I8Packed path and the unpack path.
 * MatMulNBits must keep its weights packed: the session's resident weight bytes stay under a fifth (4 bits) or a
 * third (8 bits) of the float32 matrix (on the two large layers) the codes stand for, so no float copy of W exists on the GPU.
 */

const sessions: InferenceSession[] = [];
const PATHS: QuantDotPath[] = ['packed', 'unpacked'];

beforeAll(async () => {
  console.log(`quantized contrib WebGPU suite on ${describeDevice(await gpuForTests())}`);
});
afterEach(() => setQuantDotPath(undefined));
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function runOn(bytes: Uint8Array, backend: 'cpu' | 'webgpu', feeds: Record<string, HostTensor>): Promise<{ out: Record<string, HostTensor>; session: InferenceSession }> {
  const session = await InferenceSession.create(bytes, { backend });
  sessions.push(session);
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) tensors[k] = new Tensor(t.dtype, t.data, t.shape);
  const r = await session.run<Record<string, Tensor>>(tensors);
  return { out: Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.toHost()])), session };
}

describe('quantized com.microsoft ops on WebGPU vs the CPU and onnxruntime-node', () => {
  for (const c of quantCases()) {
    const integer = /MatMulIntegerToFloat|DynamicQuantizeMatMul/.test(c.name);
    it(c.name, async () => {
      const cpu = (await runOn(c.bytes, 'cpu', c.feeds)).out;
      const ort = await runModelOrt(c.bytes, c.feeds);
      for (const path of integer ? PATHS : [undefined]) {
        setQuantDotPath(path);
        const { out, session } = await runOn(c.bytes, 'webgpu', c.feeds);
        for (const k of Object.keys(cpu)) {
          // Against the CPU: the same formula in f32 instead of f64 (float outputs), one step at a rounding tie.
          expectMatches(out[k]!, cpu[k]!, c, `${c.name} ${k} vs CPU (${path ?? 'float'})`);
          expectMatches(out[k]!, ort[k]!, { tol: c.tol >= 1 ? c.tol : 2 * c.tol }, `${c.name} ${k} vs onnxruntime (${path ?? 'float'})`);
        }
        if (c.floatWeightBytes && c.floatWeightBytes >= 1 << 18) {
          // W packed: 1/8 (4 bits) or 1/4 (8 bits) of float32, plus scales and zero points; a float copy would be 1.
          const fraction = c.name.includes('bits=4') ? 1 / 5 : 1 / 3;
          const resident = session.report().weightBytes;
          expect(resident, `${c.name}: resident weight bytes ${resident} vs float32 W ${c.floatWeightBytes}`).toBeLessThan(c.floatWeightBytes * fraction);
        }
      }
    });
  }
});

describe('int4 / uint4 QuantizeLinear, DequantizeLinear and GatherBlockQuantized on WebGPU vs the CPU and onnxruntime-node', () => {
  for (const c of [...fourBitCases(), ...gatherBlockCases()]) {
    it(c.name, async () => {
      const cpu = (await runOn(c.bytes, 'cpu', c.feeds)).out;
      const ort = await runModelOrt(c.bytes, c.feeds);
      const gpu = (await runOn(c.bytes, 'webgpu', c.feeds)).out;
      for (const k of Object.keys(cpu)) {
        expectMatches(gpu[k]!, cpu[k]!, c, `${c.name} ${k} vs CPU`);
        expectMatches(gpu[k]!, ort[k]!, { tol: 2 * c.tol }, `${c.name} ${k} vs onnxruntime`);
      }
    });
  }
});
