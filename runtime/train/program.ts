import { InvalidArgumentError } from '../errors.js';
import type { Graph, Node } from '../ir/graph.js';
import type { HostTensor } from '../ir/tensor.js';
import { buildBackward } from './autodiff.js';
import { attachLoss, type LossOptions, type LossSpec } from './losses.js';
import { createLayout, sectionView, type ParamLayout } from './layout.js';
import { TRAIN_DOMAIN } from './ops/common.js';
import { trainableInitializers } from './split.js';

/**
 * A training program: everything a backend needs to train a tail, as plain IR graphs plus the parameter layout.
 *   forward   tail + loss, Dropout in training mode (SeededDropout, seeded per step through `seedInput`); outputs
 *             the loss, the model outputs and the tensors the backward pass saved.
 *   backward  saved tensors -> one gradient per trainable parameter (program.grads).
 *   evaluate  tail + loss in inference mode (Dropout off): the loss and predictions without side effects.
 * Parameters are initializers of these graphs; bindParams() swaps them for views into the flat buffer, so the
 * optimizer's in-place updates are what the next forward pass reads.
 */
export interface TrainingProgramOptions {
  loss: LossSpec & LossOptions;
  /** Initializers to train (default: split.ts's choice, every float32 initializer a gradient can reach). */
  trainable?: readonly string[];
}

export interface TrainingProgram {
  forward: Graph;
  backward: Graph;
  evaluate: Graph;
  loss: string;
  target: string;
  /** uint32 scalar input of `forward` seeding every training Dropout mask; undefined when the tail has no Dropout. */
  seedInput?: string;
  params: string[];
  grads: Record<string, string>;
  saved: string[];
  layout: ParamLayout;
  /** Trainable parameters the loss does not depend on (their gradient is always zero). */
  unreachable: string[];
}

export function createTrainingProgram(tail: Graph, opts: TrainingProgramOptions): TrainingProgram {
  const { graph: evaluate, loss, target } = attachLoss(tail, opts.loss, opts.loss);
  const params = [...(opts.trainable ?? trainableInitializers(evaluate).trainable)];
  for (const p of params) {
    const t = evaluate.initializers[p];
    if (!t) throw new InvalidArgumentError(`Trainable parameter '${p}' is not an initializer of the tail.`);
    if (t.dtype !== 'float32') throw new InvalidArgumentError(`Trainable parameter '${p}' is ${t.dtype}; only float32 weights train.`);
  }
  const { graph: training, seedInput } = trainingMode(evaluate);
  const bw = buildBackward(training, { loss, wrt: params });
  const layout = createLayout(params.map((p) => ({ name: p, shape: evaluate.initializers[p]!.shape })));
  return {
    forward: bw.forward,
    backward: bw.backward,
    evaluate,
    loss,
    target,
    ...(seedInput ? { seedInput } : {}),
    params,
    grads: bw.grads,
    saved: bw.saved,
    layout,
    unreachable: bw.unreachable,
  };
}

/**
 * Rewrites every default-domain Dropout into SeededDropout (ops/dropout.ts) reading a shared per-step seed input,
 * with salt = the node's index among the Dropouts so masks differ between nodes. The node's training_mode input is
 * dropped: in a training program Dropout is active, as in PyTorch's model.train().
 */
function trainingMode(g: Graph): { graph: Graph; seedInput?: string } {
  const dropouts = g.nodes.filter((n) => n.op === 'Dropout' && n.domain === '');
  if (!dropouts.length) return { graph: g };
  let seedInput = 'dropout_seed';
  const used = new Set([...Object.keys(g.values), ...Object.keys(g.initializers)]);
  for (let k = 1; used.has(seedInput); k++) seedInput = `dropout_seed_${k}`;
  let salt = 0;
  const nodes = g.nodes.map((n): Node => {
    if (!dropouts.includes(n)) return n;
    return {
      ...n,
      op: 'SeededDropout',
      domain: TRAIN_DOMAIN,
      inputs: [n.inputs[0]!, n.inputs[1] ?? '', seedInput],
      outputs: [n.outputs[0]!, n.outputs[1] ?? ''],
      attrs: { salt: { type: 'int', value: salt++ } },
    };
  });
  return { graph: { ...g, nodes, inputs: [...g.inputs, { name: seedInput, dtype: 'uint32', shape: [] }] }, seedInput };
}

/** Points every graph of the program at the parameter views of a flat params section (layout.ts). */
export function bindParams(program: TrainingProgram, params: Float32Array): void {
  for (const p of program.params) {
    const view = sectionView(program.layout, params, p);
    for (const g of [program.forward, program.backward, program.evaluate]) if (p in g.initializers) g.initializers[p] = view;
  }
}

/** The initial values of the parameters (the tail's initializers, before bindParams). */
export function initialParams(program: TrainingProgram): Record<string, HostTensor> {
  return Object.fromEntries(program.params.map((p) => [p, program.evaluate.initializers[p]!]));
}
