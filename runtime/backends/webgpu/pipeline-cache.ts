import { InternalError } from '../../errors.js';
import type { GpuContext } from './device.js';
import { fullKey, type ProgramSpec } from './program.js';
import { ShaderBuilder } from './wgsl/builder.js';

/**
 * Compute pipelines by cache key. A miss generates the WGSL (the program's `source`) and compiles it with
 * createComputePipelineAsync; `prepare` does that for a whole plan before its first run, in parallel, so the first
 * run costs little more than the second.
 */
export class PipelineCache {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly ready = new Map<string, GPUComputePipeline>();
  private readonly sources = new Map<string, string>();
  /** Compilations started and finished on this device so far; `observers` hear of each change (load progress). */
  private started = 0;
  private finished = 0;
  readonly observers = new Set<(started: number, finished: number) => void>();

  constructor(private readonly ctx: GpuContext) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** The WGSL of a program (generated once per key; also what the snapshot tests look at). */
  source(p: ProgramSpec): string {
    const key = fullKey(p);
    let src = this.sources.get(key);
    if (src === undefined) {
      src = generateSource(p, this.ctx.hasF16);
      this.sources.set(key, src);
    }
    return src;
  }

  get(p: ProgramSpec): Promise<GPUComputePipeline> {
    const key = fullKey(p);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.compile(key, this.source(p));
      this.pipelines.set(key, pipeline);
      this.notify(1, 0);
      pipeline.then((pl) => this.ready.set(key, pl), () => this.pipelines.delete(key)).finally(() => this.notify(0, 1));
    }
    return pipeline;
  }

  /** Compilations started and finished on this device so far. */
  get compiles(): { started: number; finished: number } {
    return { started: this.started, finished: this.finished };
  }

  private notify(started: number, finished: number): void {
    this.started += started;
    this.finished += finished;
    for (const o of this.observers) o(this.started, this.finished);
  }

  /** Compiles every program not yet in the cache; resolves when all are ready. */
  async prepare(programs: Iterable<ProgramSpec>): Promise<void> {
    await Promise.all([...programs].map((p) => this.get(p)));
  }

  /** A pipeline prepare() already compiled (synchronous, for encoding). */
  getReady(p: ProgramSpec): GPUComputePipeline {
    const pl = this.ready.get(fullKey(p));
    if (!pl) throw new InternalError(`pipeline '${p.key}' was not prepared before encoding`);
    return pl;
  }

  private async compile(key: string, code: string): Promise<GPUComputePipeline> {
    this.ctx.assertAlive();
    const device = this.ctx.device;
    // Scoped, so a bad shader is reported here (with its source) rather than as an uncaptured error later.
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code, label: key });
    const moduleError = await this.ctx.guard(device.popErrorScope());
    try {
      if (moduleError) throw new Error(moduleError.message);
      return await this.ctx.guard(device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key }));
    } catch (e) {
      if (this.ctx.lost) throw e;
      const info = await module.getCompilationInfo().catch(() => undefined);
      const messages = info?.messages.map((m) => `${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n') ?? '';
      throw new InternalError(`WGSL for '${key}' failed to compile: ${(e as Error)?.message ?? e}\n${messages}\n--- source ---\n${code}`, { key }, { cause: e });
    }
  }
}

/** Runs a program's `source` on a fresh builder and returns the WGSL text. */
export function generateSource(p: ProgramSpec, f16: boolean): string {
  const b = new ShaderBuilder(p, { f16 });
  p.source(b);
  return b.build();
}
