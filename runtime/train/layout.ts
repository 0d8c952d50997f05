import { InvalidArgumentError, ShapeError } from '../errors.js';
import { hostTensor, tensorToNumbers, type HostTensor } from '../ir/tensor.js';

/**
 * The flat parameter layout: trainable weights, their gradients and every optimizer state slot share ONE set of
 * per-parameter offsets into float32 arrays of the same length, and all of them live in ONE Float32Array:
 *
 *   flat = [ params | grads | slot 0 | slot 1 | ... ]     each section `layout.length` floats
 *
 * so an optimizer step is one pass over i in [0, length) reading params[i], grads[i], slots[k][i] (one dispatch
 * on the GPU), gradient clipping is one norm over one array, and a parameter's forward view is a subarray (the
 * forward and backward graphs read the weights the optimizer just wrote, without copies).
 *
 * Offsets are aligned to 64 floats (256 bytes, WebGPU's default minStorageBufferOffsetAlignment) so each parameter
 * can be bound as its own buffer range later. The padding holds zeros in every section; optimizers map zeros to
 * zeros (grad 0, param 0, state 0 stays 0), so they run over the whole length without masks.
 */
export const PARAM_ALIGNMENT = 64;

export interface ParamEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface ParamLayout {
  entries: ParamEntry[];
  byName: Readonly<Record<string, ParamEntry>>;
  /** Floats per section, padding included. */
  length: number;
}

export function createLayout(params: readonly { name: string; shape: readonly number[] }[], alignment = PARAM_ALIGNMENT): ParamLayout {
  const entries: ParamEntry[] = [];
  const byName: Record<string, ParamEntry> = {};
  let offset = 0;
  for (const p of params) {
    if (byName[p.name]) throw new InvalidArgumentError(`Parameter '${p.name}' is listed twice.`);
    const size = p.shape.reduce((a, b) => a * b, 1);
    const e = { name: p.name, shape: [...p.shape], offset, size };
    entries.push(e);
    byName[p.name] = e;
    offset += Math.ceil(size / alignment) * alignment;
  }
  return { entries, byName, length: offset };
}

export interface TrainBuffers {
  /** The one allocation: (2 + slots) sections of layout.length floats. */
  flat: Float32Array;
  params: Float32Array;
  grads: Float32Array;
  /** Optimizer state sections (momentum, second moments...), as the optimizer defines them. */
  slots: Float32Array[];
}

export function allocateBuffers(layout: ParamLayout, slotCount: number): TrainBuffers {
  const L = layout.length;
  const flat = new Float32Array(L * (2 + slotCount));
  const section = (k: number) => flat.subarray(k * L, (k + 1) * L);
  return { flat, params: section(0), grads: section(1), slots: Array.from({ length: slotCount }, (_, k) => section(2 + k)) };
}

function entry(layout: ParamLayout, name: string): ParamEntry {
  const e = layout.byName[name];
  if (!e) throw new InvalidArgumentError(`'${name}' is not a trainable parameter of this layout.`);
  return e;
}

/** A HostTensor VIEW of one parameter inside a section: writes through the buffer are visible to every reader. */
export function sectionView(layout: ParamLayout, section: Float32Array, name: string): HostTensor {
  const e = entry(layout, name);
  return hostTensor('float32', e.shape, section.subarray(e.offset, e.offset + e.size));
}

/** Copies tensor values into a section at the parameter's offset (shape-checked). */
export function writeSection(layout: ParamLayout, section: Float32Array, name: string, t: HostTensor): void {
  const e = entry(layout, name);
  if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
    throw new ShapeError(`Parameter '${name}' has shape [${e.shape.join(', ')}], got a tensor of shape [${t.shape.join(', ')}].`);
  }
  section.set(t.data instanceof Float32Array ? t.data : Float32Array.from(tensorToNumbers(t)), e.offset);
}
