import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { corpusFiles, describeFailures, fuzz, fuzzEnv, runCase } from './importer-fuzz.js';

/**
 * Importer fuzzing on WebGPU: a subset of the CPU suite's stream (every 11th case, so other mutants than the CPU's
 * first ones), loaded and planned on the GPU and run; same rule: a session that runs or a typed EdgeKitError.
 */

const env = fuzzEnv({ cases: 0 });
const gpuCases = Number(process.env.EDGEKIT_FUZZ_GPU_CASES ?? (process.env.EDGEKIT_FUZZ_CASES ? Math.ceil(env.cases / 10) : 400));

beforeAll(async () => {
  await gpuForTests();
});

describe('importer fuzzing (WebGPU)', () => {
  it('replays the corpus on WebGPU', async () => {
    for (const f of corpusFiles()) {
      const r = await runCase(new Uint8Array(readFileSync(f)), 0, [basename(f)], { backend: 'webgpu', timeoutMs: 60_000 });
      expect(['ran', 'typed-error', 'slow'], `${basename(f)}: ${r.error ?? r.outcome}`).toContain(r.outcome);
    }
  });

  it(`${gpuCases} mutated models on WebGPU: no crash, no hang`, async () => {
    const s = await fuzz({ backend: 'webgpu', cases: gpuCases, seed: env.seed, stride: 11, writeCorpus: env.writeCorpus, timeoutMs: 60_000 });
    console.log(`importer fuzz (webgpu): ${s.cases} cases in ${(s.ms / 1000).toFixed(1)} s: ${s.counts.ran} ran, ${s.counts['typed-error']} typed errors, ${s.counts.crash} crashes, ${s.counts.hang} hangs, ${s.counts.slow} slow (past the limit, settled in the grace period)`);
    expect(s.counts.ran).toBeGreaterThan(0);
    expect(s.failures, describeFailures(s)).toEqual([]);
  }, 3_600_000);
});
