import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusFiles, describeFailures, fuzz, fuzzEnv, runCase } from './importer-fuzz.js';
import { fuzzInWorker } from './worker-fuzz.js';

/**
 * Importer fuzzing on the CPU backend (issue #14): a fixed-seed stream of mutated real models (importer-fuzz.ts),
 * each of which must load and run or fail with a typed EdgeKitError (not InternalError) within 30 s (plus a
 * grace period on a loaded machine, importer-fuzz.ts). The committed
 * corpus (tests/fuzz/corpus: inputs that once failed) is replayed first. `npm run fuzz -- --cases 100000` runs a
 * longer stream through this same file and saves new failures into the corpus.
 *
 * With EDGEKIT_FUZZ_WORKER=1 (set by `npm run fuzz`) the cases run in a worker_threads worker under a per-case
 * watchdog (worker-fuzz.ts), so a synchronous hang is reported as that case, saved, and the stream goes on. npm test
 * keeps its fixed stream on this thread: that stream is known to end (it passes), and a worker costs a start-up.
 */

const env = fuzzEnv({ cases: 4600 });
const inWorker = process.env.EDGEKIT_FUZZ_WORKER === '1';

describe('importer fuzzing (CPU)', () => {
  it('replays the corpus of past failures: each ends in a session that runs or a typed error', async () => {
    for (const f of corpusFiles()) {
      const r = await runCase(new Uint8Array(readFileSync(f)), 0, [basename(f)], { backend: 'cpu', timeoutMs: 30_000 });
      expect(['ran', 'typed-error', 'slow'], `${basename(f)}: ${r.error ?? r.outcome}`).toContain(r.outcome);
    }
  });

  it(`${env.cases} mutated models (seed ${env.seed}${inWorker ? ', in a worker with a per-case watchdog' : ''}): no crash, no hang`, async () => {
    const onProgress = (n: number) => env.cases > 10_000 && console.log(`fuzz: ${n} cases`);
    const s = inWorker
      ? await fuzzInWorker({ cases: env.cases, seed: env.seed, writeCorpus: env.writeCorpus, timeoutMs: 30_000, onProgress, log: (l) => console.log(l) })
      : await fuzz({ backend: 'cpu', cases: env.cases, seed: env.seed, writeCorpus: env.writeCorpus, timeoutMs: 30_000, onProgress });
    console.log(`importer fuzz (cpu${inWorker ? `, ${'workers' in s ? s.workers : 1} worker(s)` : ''}): ${s.cases} cases in ${(s.ms / 1000).toFixed(1)} s: ${s.counts.ran} ran, ${s.counts['typed-error']} typed errors, ${s.counts.crash} crashes, ${s.counts.hang} hangs, ${s.counts.slow} slow (past the limit, settled in the grace period)`);
    expect(s.counts.ran + s.counts['typed-error'] + s.counts.crash + s.counts.slow + s.counts.hang).toBe(env.cases);
    // Both outcomes occur: a fuzzer whose mutants all fail to decode (or all pass untouched) tests nothing.
    expect(s.counts.ran).toBeGreaterThan(env.cases / 20);
    expect(s.counts['typed-error']).toBeGreaterThan(env.cases / 5);
    expect(s.failures, describeFailures(s)).toEqual([]);
  }, 3_600_000);
});
