import { Worker } from 'node:worker_threads';
import { CORPUS_DIR, makeCase, saveFailure, seedModels, type CaseResult, type FuzzSummary, type Outcome } from './importer-fuzz.js';

/**
 * The importer fuzzer's CPU cases in a worker_threads worker with a per-case watchdog (issue #14; used by
 * `npm run fuzz`). runCase's own time limit is a timer, so it catches a case that never settles but not one that
 * never yields: a synchronous loop inside the importer or a CPU kernel blocks the thread, its timers included, and
 * on the main thread only the test's overall limit ended it, naming the test rather than the case. Here the cases
 * run in a worker (tests/fuzz/case-worker.mjs) while this thread keeps the watchdog: a case that does not answer in
 * `watchdogMs` is a hang; the worker is terminated, the case's number reported, its input written to the corpus,
 * and the stream goes on in a fresh worker. A worker that dies (an uncaught error, V8 out of memory under its
 * resourceLimits) makes that case a crash, the same way.
 *
 * The cases are generated here, on the main thread (makeCase is deterministic from seed and index), so the input
 * of a case that took its worker down is still at hand. WebGPU cases stay on the main thread (docs/workers.md:
 * Dawn in a terminated worker_threads thread can abort the process); the worker refuses WebGPU.
 */

export interface WorkerFuzzOptions {
  cases: number;
  seed: number;
  /** runCase's own limit for a case that does not settle (async); a 'slow' grace of 4x follows it. */
  timeoutMs?: number;
  /** No answer after this long: the worker is terminated and the case is a hang. Default 5 x timeoutMs + 10 s. */
  watchdogMs?: number;
  writeCorpus?: boolean;
  /** Where failing inputs go with writeCorpus (default tests/fuzz/corpus, which npm test replays). */
  corpusDir?: string;
  /** Test-only: case numbers at which the worker spins forever instead of running the case. */
  injectHangAt?: number[];
  /** The worker's V8 heap limit: a case that exhausts it kills the worker, not the process. */
  maxOldGenerationSizeMb?: number;
  onProgress?: (done: number) => void;
  log?: (line: string) => void;
}

export interface WorkerFuzzSummary extends FuzzSummary {
  /** Workers started: 1 + one for each hang or crash that took a worker down. */
  workers: number;
}

const WORKER_URL = new URL('./case-worker.mjs', import.meta.url);
/** Bringing a worker up transpiles the sources on a cold cache (ts-hooks.mjs): generous, and not a case's time. */
const START_LIMIT_MS = 600_000;

type Answer = { kind: 'result'; r: CaseResult } | { kind: 'timeout' } | { kind: 'died'; why: string };

class CaseWorker {
  private readonly w: Worker;
  private pending: ((a: Answer) => void) | undefined;
  private deadReason: string | undefined;

  constructor(opts: WorkerFuzzOptions) {
    this.w = new Worker(WORKER_URL, {
      workerData: { injectHangAt: opts.injectHangAt ?? [] },
      resourceLimits: { maxOldGenerationSizeMb: opts.maxOldGenerationSizeMb ?? 2048 },
      stdout: false,
      stderr: false,
    });
    this.w.on('message', (m: CaseResult | { ready: true }) => {
      if ('ready' in m) this.settle({ kind: 'result', r: undefined as unknown as CaseResult });
      else this.settle({ kind: 'result', r: m });
    });
    this.w.on('error', (e: Error) => this.die(`${e?.name ?? 'Error'}${(e as { code?: string })?.code ? ` (${(e as { code?: string }).code})` : ''}: ${e?.message ?? e}`));
    this.w.on('exit', (code) => this.die(`the worker exited with code ${code}`));
  }

  private settle(a: Answer): void {
    const p = this.pending;
    this.pending = undefined;
    p?.(a);
  }

  private die(why: string): void {
    this.deadReason ??= why;
    this.settle({ kind: 'died', why: this.deadReason });
  }

  /** Waits for the next message (or death), at most `ms`. */
  private next(ms: number, send?: () => void): Promise<Answer> {
    if (this.deadReason) return Promise.resolve({ kind: 'died', why: this.deadReason });
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(() => this.settle({ kind: 'timeout' }), ms);
      this.pending = (a) => {
        clearTimeout(timer);
        resolve(a);
      };
      send?.();
    });
  }

  async ready(): Promise<void> {
    const a = await this.next(START_LIMIT_MS);
    if (a.kind !== 'result') throw new Error(`the fuzz worker (${WORKER_URL.pathname}) did not start: ${a.kind === 'died' ? a.why : `no answer in ${START_LIMIT_MS / 1000} s`}`);
  }

  run(msg: { index: number; bytes: Uint8Array; mutations: string[]; opts: { backend: 'cpu'; timeoutMs: number } }, watchdogMs: number): Promise<Answer> {
    return this.next(watchdogMs, () => this.w.postMessage(msg));
  }

  async terminate(): Promise<void> {
    this.deadReason ??= 'terminated';
    await this.w.terminate();
  }
}

export async function fuzzInWorker(opts: WorkerFuzzOptions): Promise<WorkerFuzzSummary> {
  const seeds = seedModels();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const watchdogMs = opts.watchdogMs ?? 5 * timeoutMs + 10_000;
  const counts: Record<Outcome, number> = { ran: 0, 'typed-error': 0, crash: 0, slow: 0, hang: 0 };
  const failures: FuzzSummary['failures'] = [];
  const outcomes: Outcome[] = [];
  const t0 = performance.now();
  let workers = 0;
  const start = async (): Promise<CaseWorker> => {
    workers++;
    const w = new CaseWorker(opts);
    try {
      await w.ready();
    } catch (e) {
      await w.terminate();
      throw e;
    }
    return w;
  };
  let w = await start();
  try {
    for (let i = 0; i < opts.cases; i++) {
      const c = makeCase(seeds, opts.seed, i);
      const c0 = performance.now();
      const a = await w.run({ index: i, bytes: c.bytes, mutations: c.mutations, opts: { backend: 'cpu', timeoutMs } }, watchdogMs);
      let r: CaseResult;
      if (a.kind === 'result') r = a.r;
      else {
        const error =
          a.kind === 'timeout'
            ? `no answer in ${watchdogMs} ms (a synchronous hang: the case's own ${timeoutMs} ms timer never fired); the worker was terminated`
            : `the worker died during the case: ${a.why}`;
        r = { index: i, outcome: a.kind === 'timeout' ? 'hang' : 'crash', mutations: c.mutations, error, ms: performance.now() - c0 };
        await w.terminate();
        opts.log?.(`fuzz: case ${i} (seed ${opts.seed}): ${r.outcome}: ${error}; going on in a fresh worker`);
        w = await start();
      }
      counts[r.outcome]++;
      outcomes.push(r.outcome);
      if (r.outcome === 'crash' || r.outcome === 'hang') {
        const file = opts.writeCorpus ? saveFailure(opts.corpusDir ?? CORPUS_DIR, c, r, opts.seed, 'cpu, worker') : undefined;
        failures.push({ ...r, seedName: c.seedName, file });
      }
      if (opts.onProgress && i % 1000 === 999) opts.onProgress(i + 1);
    }
  } finally {
    await w.terminate();
  }
  return { backend: 'cpu', cases: opts.cases, counts, failures, ms: performance.now() - t0, workers, outcomes };
}
