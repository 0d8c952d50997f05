import { beforeAll, describe, expect, it } from 'vitest';
import { EdgeKitError, InferenceSession, Tensor } from '../../sdk/node.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { makeBatch, mismatch, singleChain, type GraphBatch } from './graph-fuzz.js';

/**
 * Runtime fuzzing (issue #14): random valid graphs (graph-fuzz.ts) run on the CPU reference and on WebGPU through
 * the public API. Every graph must give the same outputs on both (within tolerance) or fail on both with the same
 * typed error. Graphs travel 50 to a model so SwiftShader compiles and plans once per 50 graphs.
 */

const GRAPHS = Number(process.env.EDGEKIT_RUNTIME_FUZZ_GRAPHS ?? 2000);
const PER_MODEL = Number(process.env.EDGEKIT_RUNTIME_FUZZ_PER_MODEL ?? 100);
const SEED = Number(process.env.EDGEKIT_FUZZ_SEED ?? 20261207);

beforeAll(async () => {
  await gpuForTests();
});

const toTensor = (t: HostTensor) => new Tensor(t.dtype, t.data as Float32Array, t.shape);

type Outcome = { ok: true; out: Record<string, Float32Array> } | { ok: false; error: string };

async function runOn(backend: 'cpu' | 'webgpu', g: GraphBatch): Promise<Outcome> {
  let s: InferenceSession | undefined;
  try {
    s = await InferenceSession.create(g.bytes, { backend });
    const feeds = Object.fromEntries(Object.entries(g.feeds).map(([k, v]) => [k, toTensor(v)]));
    const r = await s.run(feeds);
    return { ok: true, out: Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array])) };
  } catch (e) {
    if (!(e instanceof EdgeKitError) || e.code === 'INTERNAL') throw e;
    return { ok: false, error: `${e.name} ${e.code}` };
  } finally {
    await s?.release();
  }
}

describe('runtime fuzzing: random graphs agree on the CPU and WebGPU', () => {
  it(`${GRAPHS} graphs (${PER_MODEL} per model, seed ${SEED})`, async () => {
    const problems: string[] = [];
    let compared = 0;
    let bothFailed = 0;
    const t0 = performance.now();
    const timing = { cpu: 0, gpu: 0 };
    for (let first = 0; first < GRAPHS; first += PER_MODEL) {
      const count = Math.min(PER_MODEL, GRAPHS - first);
      const batch = makeBatch(SEED, first, count);
      const ta = performance.now();
      const cpu = await runOn('cpu', batch);
      const tb = performance.now();
      const gpu = await runOn('webgpu', batch);
      timing.cpu += tb - ta;
      timing.gpu += performance.now() - tb;
      // A batch that fails anywhere is rerun graph by graph, to compare each graph's own outcome.
      const perGraph = cpu.ok && gpu.ok ? [{ c: -1, cpu, gpu, batch }] : await Promise.all(
        Array.from({ length: count }, async (_, k) => {
          const one = singleChain(SEED, first + k);
          return { c: first + k, cpu: await runOn('cpu', one), gpu: await runOn('webgpu', one), batch: one };
        }),
      );
      for (const p of perGraph) {
        for (const chain of p.batch.chains) {
          const label = `graph ${p.c < 0 ? batch.chains.indexOf(chain) + first : p.c} [${chain.ops.join(' > ')}] on ${chain.inputTensor.shape.join('x')}`;
          if (p.cpu.ok && p.gpu.ok) {
            const m = mismatch(p.gpu.out[chain.output]!, p.cpu.out[chain.output]!);
            if (m) problems.push(`${label}: ${m}`);
            compared++;
          } else if (!p.cpu.ok && !p.gpu.ok) {
            if (p.cpu.error !== p.gpu.error) problems.push(`${label}: CPU ${p.cpu.error}, WebGPU ${p.gpu.error}`);
            bothFailed++;
            if (process.env.EDGEKIT_FUZZ_VERBOSE) console.log(`${label}: both ${p.cpu.error}`);
          } else problems.push(`${label}: CPU ${p.cpu.ok ? 'ran' : p.cpu.error}, WebGPU ${p.gpu.ok ? 'ran' : p.gpu.error}`);
        }
      }
    }
    console.log(`runtime fuzz: ${GRAPHS} graphs in ${((performance.now() - t0) / 1000).toFixed(1)} s (CPU ${(timing.cpu / 1000).toFixed(1)} s, WebGPU ${(timing.gpu / 1000).toFixed(1)} s): ${compared} compared, ${bothFailed} failed alike, ${problems.length} disagreements`);
    expect(problems.slice(0, 30)).toEqual([]);
    expect(compared).toBeGreaterThan(GRAPHS * 0.9);
  }, 1_800_000);
});
