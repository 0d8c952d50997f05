import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fuzz } from './importer-fuzz.js';
import { fuzzInWorker } from './worker-fuzz.js';

/**
 * The per-case watchdog of `npm run fuzz` (worker-fuzz.ts). Cases 2 and 4 of a short stream are made to hang
 * synchronously inside the worker (injectHangAt: the worker spins before running them, so the case's own timer can
 * never fire). Each must be reported as a hang with its number, its input written to the corpus folder (a
 * scratch one here, not the committed corpus), and the stream must go on in a fresh worker: the other cases end as
 * they do on the main thread.
 */

describe('importer fuzzing in a worker: per-case watchdog', () => {
  it('terminates a worker stuck in a synchronous loop, reports the case, saves its input and goes on', async () => {
    const seed = 20261207;
    const cases = 7;
    const corpusDir = mkdtempSync(join(tmpdir(), 'edgekit-fuzz-corpus-'));
    const log: string[] = [];
    const s = await fuzzInWorker({ cases, seed, timeoutMs: 20_000, watchdogMs: 6_000, injectHangAt: [2, 4], writeCorpus: true, corpusDir, log: (l) => log.push(l) });

    expect(s.counts.hang).toBe(2);
    expect(s.failures.map((f) => [f.index, f.outcome])).toEqual([[2, 'hang'], [4, 'hang']]);
    expect(s.failures[0]!.error).toMatch(/no answer in 6000 ms .* the worker was terminated/);
    expect(log.join('\n')).toMatch(/case 2 \(seed 20261207\): hang/);
    expect(log.join('\n')).toMatch(/case 4 \(seed 20261207\): hang/);
    expect(s.workers).toBe(3);

    // The inputs of both hung cases are in the corpus folder, each with a note naming seed and case.
    const onnx = readdirSync(corpusDir).filter((f) => f.endsWith('.onnx')).sort();
    expect(onnx).toEqual(s.failures.map((f) => f.file!.split('/').pop()).sort());
    const notes = onnx.map((f) => readFileSync(join(corpusDir, f.replace(/\.onnx$/, '.txt')), 'utf8')).join('\n');
    expect(notes).toContain(`seed ${seed} case 2 (cpu, worker)`);
    expect(notes).toContain(`seed ${seed} case 4 (cpu, worker)`);

    // Every other case, including those run by the fresh workers, ends as it does on the main thread.
    const main = await fuzz({ backend: 'cpu', cases, seed, timeoutMs: 20_000 });
    expect(main.failures).toEqual([]);
    expect(s.outcomes.filter((_, i) => i !== 2 && i !== 4)).toEqual(main.outcomes.filter((_, i) => i !== 2 && i !== 4));
    // Both kinds of end occur among them, so the comparison says something.
    expect(new Set(main.outcomes)).toEqual(new Set(['ran', 'typed-error']));
  }, 900_000);
});
