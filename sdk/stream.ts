import { InvalidArgumentError } from '../runtime/errors.js';
import { allocStorage } from '../runtime/ir/dtype.js';
import type { OutputLocation, RunOptions, ValueMetadata } from './session.js';
import { Tensor } from './tensor.js';

/**
 * Streaming a stateful model (voice activity detection, wake words, a keyboard's next-key model) one chunk at a
 * time: `session.createStream({ state: { h0: 'hn', c0: 'cn' } })`. Each `state` entry names an input and the
 * output that becomes that input on the next chunk. The stream feeds the state inputs itself, zeros at the start
 * and after reset(), and keeps each state output for the next chunk: on WebGPU as a GPU-resident tensor that feeds
 * the next run buffer to buffer, so recurrent state never leaves the GPU; on the CPU as a host tensor. The previous
 * state is released as soon as the next one exists, so memory stays where the first chunk left it.
 *
 * Chunks run one after another in call order (a chunk needs the state of the one before). Feeding a state input
 * explicitly overrides the held state for that chunk (to restore a saved state). State outputs are not returned
 * unless named in `outputs`, and then as a CPU copy the caller owns.
 */

export interface StreamOptions {
  /** Input name → the output that feeds it on the next chunk, e.g. { h0: 'hn', c0: 'cn' }. */
  state: Record<string, string>;
}

/** What a stream needs of its session (InferenceSession implements it). */
export interface StreamHost {
  readonly backend: 'cpu' | 'webgpu';
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  run(feeds: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>>;
}

export class SessionStream {
  readonly #session: StreamHost;
  readonly #state: [input: string, output: string][];
  readonly #held = new Map<string, Tensor>();
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;
  /** Chunks run since the start or the last reset(). */
  #chunks = 0;

  constructor(session: StreamHost, options: StreamOptions) {
    if (!options || typeof options.state !== 'object' || options.state === null || !Object.keys(options.state).length) {
      throw new InvalidArgumentError("createStream needs { state: { <input>: <output>, ... } }, e.g. { state: { h0: 'hn' } }.");
    }
    const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
    const outputs = new Map(session.outputMetadata.map((m) => [m.name, m]));
    for (const [i, o] of Object.entries(options.state)) {
      const inp = inputs.get(i);
      const out = outputs.get(o);
      if (!inp) throw new InvalidArgumentError(`Stream state input '${i}' is not an input of this model; its inputs are ${[...inputs.keys()].map((n) => `'${n}'`).join(', ')}.`);
      if (!out) throw new InvalidArgumentError(`Stream state output '${o}' is not an output of this model; its outputs are ${[...outputs.keys()].map((n) => `'${n}'`).join(', ')}.`);
      if (inp.type !== out.type) throw new InvalidArgumentError(`Stream state '${i}' is ${inp.type} but output '${o}' is ${out.type}.`);
    }
    this.#session = session;
    this.#state = Object.entries(options.state);
  }

  /** Chunks run since the stream started or was last reset. */
  get position(): number {
    return this.#chunks;
  }

  /**
   * Runs one chunk: `feeds` holds the model's other inputs (state inputs are optional overrides). Returns the
   * requested outputs (default: every output that is not state), like InferenceSession.run.
   */
  run(feeds: Record<string, Tensor>, options: RunOptions = {}): Promise<Record<string, Tensor>> {
    const next = this.#queue.then(() => this.#runChunk(feeds, options));
    this.#queue = next.catch(() => {});
    return next;
  }

  async #runChunk(feeds: Record<string, Tensor>, options: RunOptions): Promise<Record<string, Tensor>> {
    if (this.#disposed) throw new InvalidArgumentError('This stream was disposed; create a new one with session.createStream().');
    const stateOutputs = new Set(this.#state.map(([, o]) => o));
    const wanted = options.outputs ?? this.#session.outputMetadata.map((m) => m.name).filter((o) => !stateOutputs.has(o));
    const all = [...new Set([...wanted, ...stateOutputs])];
    const full: Record<string, Tensor> = { ...feeds };
    const zeros: Tensor[] = [];
    for (const [i] of this.#state) {
      if (full[i]) continue;
      const held = this.#held.get(i);
      if (held) full[i] = held;
      else {
        const z = this.#zeros(i, feeds);
        zeros.push(z);
        full[i] = z;
      }
    }
    const userLocation = options.preferredOutputLocation;
    const location: Record<string, OutputLocation> = {};
    for (const o of all) {
      const user = typeof userLocation === 'string' ? userLocation : userLocation?.[o] ?? 'cpu';
      location[o] = stateOutputs.has(o) && this.#session.backend === 'webgpu' ? 'gpu-buffer' : user;
    }
    let out: Record<string, Tensor>;
    try {
      out = await this.#session.run(full, { outputs: all, preferredOutputLocation: location });
    } finally {
      for (const z of zeros) z.dispose();
    }
    const result: Record<string, Tensor> = {};
    for (const o of wanted) if (!stateOutputs.has(o)) result[o] = out[o]!;
    for (const [i, o] of this.#state) {
      const t = out[o]!;
      if (wanted.includes(o)) result[o] = t.location === 'cpu' ? new Tensor(t.type, (t.data as Float32Array).slice(), t.dims) : new Tensor(t.type, await t.getData(), t.dims);
      if (this.#disposed) t.dispose();
      else {
        this.#held.get(i)?.dispose();
        this.#held.set(i, t);
      }
    }
    this.#chunks++;
    return result;
  }

  /** Zeros of a state input's shape: its symbolic dims take the sizes the same names have in this chunk's feeds. */
  #zeros(input: string, feeds: Record<string, Tensor>): Tensor {
    const meta = this.#session.inputMetadata.find((m) => m.name === input)!;
    const sizes = new Map<string, number>();
    for (const m of this.#session.inputMetadata) {
      const t = feeds[m.name];
      if (t) m.shape.forEach((d, k) => typeof d === 'string' && t.dims[k] !== undefined && sizes.set(d, t.dims[k]!));
    }
    const dims = meta.shape.map((d) => (typeof d === 'number' ? d : sizes.get(d)));
    if (dims.some((d) => d === undefined)) {
      throw new InvalidArgumentError(
        `Stream state '${input}' has shape [${meta.shape.join(', ')}], and no other input names ${meta.shape.filter((d, k) => dims[k] === undefined).map((d) => `'${d}'`).join(', ')}: ` +
          `feed '${input}' with the first chunk, or fix the dims with freeDimensionOverrides.`,
      );
    }
    const n = (dims as number[]).reduce((a, b) => a * b, 1);
    return new Tensor(meta.type, allocStorage(meta.type, n) as Float32Array, dims as number[]);
  }

  /** Drops the held state: the next chunk starts from zeros (a new utterance). Waits for chunks in flight. */
  async reset(): Promise<void> {
    await this.#queue;
    for (const t of this.#held.values()) t.dispose();
    this.#held.clear();
    this.#chunks = 0;
  }

  /** Releases the held state; later runs throw. Idempotent. */
  dispose(): void {
    this.#disposed = true;
    for (const t of this.#held.values()) t.dispose();
    this.#held.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
