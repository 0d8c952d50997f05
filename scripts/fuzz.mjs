// Longer importer fuzzing than npm test's fixed corpus (issue #14; docs/reliability.md):
//   npm run fuzz -- --cases 100000 [--seed 7] [--gpu-cases 2000]
// runs tests/fuzz/importer.test.ts (CPU) and importer-gpu.test.ts (WebGPU, default cases / 10) on that stream and
// saves every failing input to tests/fuzz/corpus/<id>.onnx (+ .txt: seed, case, mutations, error), which npm test
// then replays. Minimize a saved input by hand (or keep it as is) and commit it with the fix.
// The CPU cases run in a worker_threads worker with a per-case watchdog (tests/fuzz/worker-fuzz.ts): a case stuck
// in synchronous code is reported by its number, saved, and the stream goes on in a fresh worker. The WebGPU cases
// run on the main thread (no Dawn in Node workers, docs/workers.md).
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const cases = Number(opt('cases', '20000'));
const seed = Number(opt('seed', String(Date.now() % 1_000_000)));
const gpuCases = Number(opt('gpu-cases', String(Math.ceil(cases / 10))));
if (!(cases > 0) || !(gpuCases >= 0) || !Number.isFinite(seed)) {
  console.error('usage: npm run fuzz -- --cases N [--seed S] [--gpu-cases M]');
  process.exit(2);
}
console.log(`fuzz: seed ${seed}, ${cases} CPU cases, ${gpuCases} WebGPU cases; failures go to tests/fuzz/corpus/`);
const files = ['tests/fuzz/importer.test.ts', ...(gpuCases > 0 ? ['tests/fuzz/importer-gpu.test.ts'] : [])];
const r = spawnSync('npx', ['vitest', 'run', ...files, '--testTimeout', '86400000'], {
  stdio: 'inherit',
  env: {
    ...process.env,
    EDGEKIT_FUZZ_CASES: String(cases),
    EDGEKIT_FUZZ_GPU_CASES: String(gpuCases),
    EDGEKIT_FUZZ_SEED: String(seed),
    EDGEKIT_FUZZ_WRITE_CORPUS: '1',
    EDGEKIT_FUZZ_WORKER: '1',
  },
});
process.exit(r.status ?? 1);
