import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { TextGenerator, loadTokenizer, type GenerationResult } from '../sdk/node.js';
import { describeDevice, gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * TextGenerator on the fixture GPT (tests/fixtures/gpt: 2 layers, d 64, context 128, byte vocabulary) on this
 * machine's WebGPU adapter (SwiftShader where there is no GPU) and on the CPU backend: a 29-byte prompt, 32 new
 * tokens, greedy, batch 1 and batch 5; time to first token and tokens per second as the results report them:
 *
 *   npx vitest bench --run bench/generate.bench.ts
 *
 * The first call per generator is a warm-up (plans for each past length, pipelines); the printed numbers are the
 * last measured call's.
 */

const dir = 'tests/fixtures/gpt';
const golden = JSON.parse(readFileSync(`${dir}/gpt.json`, 'utf8')) as { generations: { prompt: string }[] };
const prompts = golden.generations.map((g) => g.prompt);
const gens: Record<string, TextGenerator> = {};
const last: Record<string, GenerationResult> = {};

beforeAll(async () => {
  console.log(`generate bench WebGPU on ${describeDevice(await gpuForTests())}`);
  const tokenizer = await loadTokenizer(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
  for (const backend of ['cpu', 'webgpu'] as const) {
    gens[backend] = await TextGenerator.create(readFileSync(`${dir}/gpt-op17.onnx`), { tokenizer, session: { backend } });
    await gens[backend]!.generate(prompts, { maxNewTokens: 32 });
    await gens[backend]!.generate(prompts[0]!, { maxNewTokens: 32 });
  }
});

afterAll(async () => {
  for (const [k, r] of Object.entries(last)) {
    console.log(`${k}: time to first token ${r.timeToFirstTokenMs.toFixed(1)} ms, ${r.tokensPerSecond.toFixed(1)} tokens/s (${r.rows.length} row${r.rows.length > 1 ? 's' : ''})`);
  }
  for (const g of Object.values(gens)) await g.release();
});

describe('fixture GPT, 32 new tokens, greedy', () => {
  for (const backend of ['cpu', 'webgpu']) {
    for (const batch of [1, 5]) {
      bench(`${backend} batch ${batch}`, async () => {
        last[`${backend} batch ${batch}`] = await gens[backend]!.generate(batch === 1 ? prompts[0]! : prompts, { maxNewTokens: 32 });
      }, { iterations: 3, warmupIterations: 0, time: 0 });
    }
  }
});
