import { InvalidArgumentError } from '../../runtime/errors.js';
import type { Graph } from '../../runtime/ir/graph.js';
import type { TypedArray } from '../../runtime/ir/dtype.js';
import type { ParamLayout } from '../../runtime/train/layout.js';
import type { TrainerState } from '../../runtime/train/trainer.js';

/**
 * The fine-tuning checkpoint: one self-describing byte array (docs/fine-tuning.md, "Checkpoint format").
 *
 *   bytes 0-7    magic "EKFTCKPT"
 *   8-11         u32 format version (1)
 *   12-15        u32 header length H
 *   16..16+H     header, UTF-8 JSON (CheckpointHeader), zero-padded to a multiple of 4 bytes
 *   then         float32 sections of layout.length floats: params, then each optimizer slot (layout order)
 *   last 4       u32 FNV-1a of every byte before it
 * All numbers little-endian. The header identifies the program (model fingerprint, cut, parameter layout with
 * names and shapes, optimizer kind and slot count) so that loading into a different program fails with a clear
 * InvalidArgumentError instead of training on garbage.
 */
export interface CheckpointHeader {
  format: 'edgekit-finetune-checkpoint';
  /** FNV-1a hashes of the model graph's structure and of its frozen initializers' bytes (modelFingerprint). */
  fingerprint: { structure: string; frozen: string };
  trainFrom: string;
  output: string;
  loss: string;
  layout: { length: number; entries: { name: string; shape: number[]; offset: number }[] };
  optimizer: { kind: string; slots: number };
  step: number;
  attempts: number;
  /** Epochs completed since creation (the shuffle stream's index). */
  epochs: number;
  seed: number;
  /**
   * Where an interrupted epoch stopped (absent or batch 0 when the checkpoint lies between epochs): the next fit()
   * resumes epoch `epochs` at this batch of the same shuffled order. batchSize and count (examples) must match it.
   */
  epochPosition?: { batch: number; batches: number; batchSize: number; count: number };
}

const MAGIC = 'EKFTCKPT';
const VERSION = 1;

export function fnv1a(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

const asBytes = (a: TypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Identifies the model a program came from, independent of the trained values: `structure` hashes the graph (nodes,
 * inputs, outputs, initializer names, dtypes and shapes), `frozen` the bytes of every initializer that does not train.
 */
export function modelFingerprint(g: Graph, trainable: readonly string[]): CheckpointHeader['fingerprint'] {
  const structure = JSON.stringify({
    inputs: g.inputs.map((i) => [i.name, i.dtype]),
    outputs: g.outputs.map((o) => o.name),
    nodes: g.nodes.map((n) => [n.op, n.domain, n.inputs, n.outputs]),
    initializers: Object.entries(g.initializers).map(([k, t]) => [k, t.dtype, t.shape]),
  });
  let h = 0x811c9dc5;
  for (const [k, t] of Object.entries(g.initializers)) {
    if (!trainable.includes(k) && t.dtype !== 'string') h = fnv1a(asBytes(t.data as TypedArray), h);
  }
  const hex = (v: number) => v.toString(16).padStart(8, '0');
  return { structure: hex(fnv1a(new TextEncoder().encode(structure))), frozen: hex(h) };
}

export function layoutHeader(layout: ParamLayout): CheckpointHeader['layout'] {
  return { length: layout.length, entries: layout.entries.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset })) };
}

export function encodeCheckpoint(header: CheckpointHeader, state: TrainerState): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const hLen = Math.ceil(json.length / 4) * 4;
  const L = header.layout.length;
  const total = 16 + hLen + 4 * L * (1 + state.slots.length) + 4;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, VERSION, true);
  view.setUint32(12, json.length, true);
  out.set(json, 16);
  let at = 16 + hLen;
  for (const section of [state.params, ...state.slots]) {
    for (let i = 0; i < L; i++, at += 4) view.setFloat32(at, section[i]!, true);
  }
  view.setUint32(at, fnv1a(out.subarray(0, at)), true);
  return out;
}

const bad = (msg: string, reason: string): never => {
  throw new InvalidArgumentError(`Cannot load this checkpoint: ${msg}`, { reason });
};

export function decodeCheckpoint(bytes: unknown): { header: CheckpointHeader; state: TrainerState } {
  if (!(bytes instanceof Uint8Array)) return bad('expected the Uint8Array that saveCheckpoint() returned.', 'not-a-checkpoint');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 20 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    return bad('these bytes are not an EdgeKit fine-tuning checkpoint (the output of saveCheckpoint()).', 'not-a-checkpoint');
  }
  const version = view.getUint32(8, true);
  if (version !== VERSION) bad(`it has format version ${version}; this EdgeKit reads version ${VERSION}.`, 'version');
  const end = bytes.length - 4;
  if (view.getUint32(end, true) !== fnv1a(bytes.subarray(0, end))) bad('it is truncated or corrupted (checksum mismatch).', 'corrupt');
  const jLen = view.getUint32(12, true);
  const hLen = Math.ceil(jLen / 4) * 4;
  if (16 + hLen > end) bad('it is truncated (header).', 'corrupt');
  let header: CheckpointHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + jLen))) as CheckpointHeader;
  } catch {
    return bad('its header is not valid JSON.', 'corrupt');
  }
  const wellFormed =
    header?.format === 'edgekit-finetune-checkpoint' && Number.isSafeInteger(header.layout?.length) && Array.isArray(header.layout.entries) &&
    Number.isSafeInteger(header.optimizer?.slots) && typeof header.optimizer.kind === 'string' &&
    [header.step, header.attempts, header.epochs, header.seed].every((v) => Number.isSafeInteger(v) && v >= 0) &&
    (header.epochPosition === undefined ||
      [header.epochPosition.batch, header.epochPosition.batches, header.epochPosition.batchSize, header.epochPosition.count].every((v) => Number.isSafeInteger(v) && v >= 0));
  if (!wellFormed) bad('its header does not describe a fine-tuning checkpoint.', 'corrupt');
  const L = header.layout.length;
  const sections = 1 + header.optimizer.slots;
  if (16 + hLen + 4 * L * sections !== end) bad(`its size does not match its header (${sections} sections of ${L} floats).`, 'corrupt');
  let at = 16 + hLen;
  const read = () => {
    const s = new Float32Array(L);
    for (let i = 0; i < L; i++, at += 4) s[i] = view.getFloat32(at, true);
    return s;
  };
  const params = read();
  const slots = Array.from({ length: header.optimizer.slots }, read);
  return { header, state: { params, slots, step: header.step, attempts: header.attempts } };
}

/** Throws when a checkpoint header does not belong to the program described by `here`. */
export function checkCompatible(saved: CheckpointHeader, here: CheckpointHeader): void {
  const layoutText = (h: CheckpointHeader) => h.layout.entries.map((e) => `${e.name} [${e.shape.join(', ')}]`).join(', ');
  const sameLayout = JSON.stringify(saved.layout) === JSON.stringify(here.layout);
  const what =
    saved.fingerprint?.structure !== here.fingerprint.structure ? 'a different model (its graph differs)'
    : !sameLayout ? 'a different cut or head'
    : saved.fingerprint.frozen !== here.fingerprint.frozen ? 'a different model (same graph, other frozen weights)'
    : undefined;
  if (what) {
    bad(
      `it was saved from ${what}. Checkpoint: trainFrom '${saved.trainFrom}', parameters ${layoutText(saved)}; ` +
        `this tuner: trainFrom '${here.trainFrom}', parameters ${layoutText(here)}. Create the tuner from the same model with the same trainFrom and newHead options.`,
      'model',
    );
  }
  if (saved.optimizer.kind !== here.optimizer.kind || saved.optimizer.slots !== here.optimizer.slots) {
    bad(
      `it holds ${saved.optimizer.kind} state (${saved.optimizer.slots} slot(s)); this tuner uses ${here.optimizer.kind} (${here.optimizer.slots}). ` +
        'Resume with the optimizer the checkpoint was saved with (momentum/centered settings change the slots).',
      'optimizer',
    );
  }
}
