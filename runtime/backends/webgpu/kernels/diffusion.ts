import { InternalError } from '../../../errors.js';
import type { GpuResources } from '../executor.js';
import { UNIFORM_USAGE, type GpuBufferLease } from '../memory.js';
import { dispatchLinear, type ProgramSpec } from '../program.js';
import { packUniforms } from '../wgsl/builder.js';
import { MIX32_WGSL } from './random.js';

/**
 * The diffusion loop's own GPU work, run outside any model graph (like the text sampler in sampling.ts): every
 * scheduler update, the classifier-free-guidance combine, the model-input scaling and the previews' x0 are linear
 * combinations of a few f32 vectors with scalar coefficients the host computes per step, so one program does them
 * all; a second program writes seeded Gaussian noise. Latents therefore never leave the GPU between steps.
 *
 *   combine: dst[dst_off + i] = sum over terms k of coef_k * src[slot_k][off_k + i], i < n
 *   noise:   dst[dst_off + i] = N(0, 1) draw of (seed, step, i)
 *
 * WebGPU forbids binding one buffer twice in a dispatch when it is writable (and every binding of EdgeKit's shader
 * builder is read_write), so a term names one of four distinct source buffers by slot, with its own offset: the
 * conditional and unconditional halves of one batch-2 UNet output are two terms on one slot.
 */

export const COMBINE_TERMS = 6;
export const COMBINE_SLOTS = 4;
const WG = 64;

const COMBINE_UNIFORMS = [
  { name: 'n', type: 'u32' as const },
  { name: 'dst_off', type: 'u32' as const },
  { name: 'terms', type: 'u32' as const },
  { name: 'slot', type: 'u32' as const, length: COMBINE_TERMS },
  { name: 'off', type: 'u32' as const, length: COMBINE_TERMS },
  { name: 'coef', type: 'f32' as const, length: COMBINE_TERMS },
];

const NOISE_UNIFORMS = [
  { name: 'n', type: 'u32' as const },
  { name: 'dst_off', type: 'u32' as const },
  { name: 'seed', type: 'u32' as const },
  { name: 'step', type: 'u32' as const },
];

export function combineProgram(): ProgramSpec {
  return {
    key: 'diffusion_combine',
    bindings: [{ name: 's0', type: 'f32' }, { name: 's1', type: 'f32' }, { name: 's2', type: 'f32' }, { name: 's3', type: 'f32' }, { name: 'dst', type: 'f32' }],
    uniforms: COMBINE_UNIFORMS,
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.helper(`fn src_at(slot: u32, i: u32) -> f32 {
  switch slot {
    case 0u: { return s0[i]; }
    case 1u: { return s1[i]; }
    case 2u: { return s2[i]; }
    default: { return s3[i]; }
  }
}`);
      const terms = Array.from({ length: COMBINE_TERMS }, (_, k) =>
        `  if (u.terms > ${k}u) { acc = acc + u.coef_${k} * src_at(u.slot_${k}, u.off_${k} + index); }`).join('\n');
      b.main(`${b.linearIndex('u.n')}
  var acc = 0.0;
${terms}
  dst[u.dst_off + index] = acc;`);
    },
    run() {
      throw new InternalError('the diffusion combine is dispatched by GpuDiffusionOps, not planned as a node');
    },
  };
}

export function noiseProgram(): ProgramSpec {
  return {
    key: 'diffusion_noise',
    bindings: [{ name: 'dst', type: 'f32' }],
    uniforms: NOISE_UNIFORMS,
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.helper(MIX32_WGSL);
      b.main(`${b.linearIndex('u.n')}
  let base = mix32(mix32(u.seed) ^ (u.step * 0x9e3779b9u));
  let h1 = mix32(base ^ (index * 2u));
  let h2 = mix32(base ^ (index * 2u + 1u));
  let u1 = (f32(h1 >> 8u) + 1.0) * 5.9604644775390625e-8;
  let u2 = f32(h2 >> 8u) * 5.9604644775390625e-8;
  dst[u.dst_off + index] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);`);
    },
    run() {
      throw new InternalError('the diffusion noise is dispatched by GpuDiffusionOps, not planned as a node');
    },
  };
}

/** One source of a combine: a buffer, an element offset into it, and its coefficient. */
export interface CombineTerm {
  buffer: GPUBuffer;
  offset: number;
  coef: number;
}

/**
 * Dispatches the two programs on a session's device. Buffers are the caller's (GpuBufferLease from the same
 * GpuMemory); every call encodes one pass and submits it, in queue order with the model runs around it.
 */
export class GpuDiffusionOps {
  readonly #res: GpuResources;
  readonly #combine = combineProgram();
  readonly #noise = noiseProgram();
  readonly #dummies: GpuBufferLease[];
  #disposed = false;

  private constructor(res: GpuResources) {
    this.#res = res;
    this.#dummies = Array.from({ length: COMBINE_SLOTS }, () => res.memory.acquire(16, undefined, 'edgekit-diffusion-dummy'));
  }

  static async create(res: GpuResources): Promise<GpuDiffusionOps> {
    await res.pipelines.prepare([combineProgram(), noiseProgram()]);
    return new GpuDiffusionOps(res);
  }

  /** dst[dstOffset + i] = sum coef * src[offset + i] for i < n. `dst` must not be one of the sources. */
  combine(dst: GPUBuffer, dstOffset: number, n: number, terms: readonly CombineTerm[]): void {
    this.#check();
    const live = terms.filter((t) => t.coef !== 0);
    if (live.length > COMBINE_TERMS) throw new InternalError(`diffusion combine takes at most ${COMBINE_TERMS} terms, got ${live.length}`);
    const buffers: GPUBuffer[] = [];
    const slot: number[] = [], off: number[] = [], coef: number[] = [];
    for (const t of live) {
      if (t.buffer === dst) throw new InternalError('diffusion combine: the destination is also a source');
      let s = buffers.indexOf(t.buffer);
      if (s < 0) {
        if (buffers.length === COMBINE_SLOTS) throw new InternalError(`diffusion combine reads at most ${COMBINE_SLOTS} buffers`);
        s = buffers.push(t.buffer) - 1;
      }
      slot.push(s); off.push(t.offset); coef.push(t.coef);
    }
    while (slot.length < COMBINE_TERMS) { slot.push(0); off.push(0); coef.push(0); }
    const values = { n, dst_off: dstOffset, terms: live.length, slot, off, coef };
    const sources = Array.from({ length: COMBINE_SLOTS }, (_, s) => buffers[s] ?? this.#dummies[s]!.buffer);
    this.#dispatch(this.#combine, [...sources, dst], values, n);
  }

  /** dst[dstOffset + i] = standard normal draw i of (seed, step), for i < n. */
  noise(dst: GPUBuffer, dstOffset: number, n: number, seed: number, step: number): void {
    this.#check();
    this.#dispatch(this.#noise, [dst], { n, dst_off: dstOffset, seed: seed >>> 0, step: step >>> 0 }, n);
  }

  #dispatch(p: ProgramSpec, buffers: GPUBuffer[], values: Record<string, number | readonly number[]>, n: number): void {
    const { ctx, memory, pipelines } = this.#res;
    const packed = packUniforms(p.uniforms, values);
    // A fresh uniform buffer per dispatch (released after the submit: the pool hands it out again only once the
    // queue has consumed this write, as for every other lease released after a submit).
    const uniforms = memory.acquire(packed.byteLength, UNIFORM_USAGE, 'edgekit-diffusion-uniforms');
    memory.upload(uniforms.buffer, 0, new Uint8Array(packed));
    const pipeline = pipelines.getReady(p);
    const group = ctx.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      label: p.key,
      entries: [...buffers.map((buffer, i) => ({ binding: i, resource: { buffer } })), { binding: buffers.length, resource: { buffer: uniforms.buffer, offset: 0, size: packed.byteLength } }],
    });
    const encoder = ctx.device.createCommandEncoder({ label: `edgekit-${p.key}` });
    const pass = encoder.beginComputePass({ label: `edgekit-${p.key}` });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...dispatchLinear(n, WG));
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    memory.release(uniforms);
  }

  #check(): void {
    if (this.#disposed) throw new InternalError('GpuDiffusionOps used after dispose');
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const l of this.#dummies) this.#res.memory.release(l);
  }
}
